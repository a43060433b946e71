package pipeline_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/extract"
	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/state"
)

// TestOpenPrunesWhatNoRunReadsAgain: a year of runs leaves, in the state,
// the progress of ranges killed and never repeated, the spool of their
// days and the follow id logs of days a nightly run exported after a
// follow loop stopped. Opening the state (run, follow, verify --repair)
// removes what lies wholly past period.retention, and the id logs of
// exported days; the progress, spool and id logs a rerun or a seal still
// reads stay (was: everything stayed for ever, and check read every id
// log).
func TestOpenPrunesWhatNoRunReadsAgain(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:1/api/shared/v1") // no request is made
	now := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	date := func(daysBefore int) string { return now.AddDate(0, 0, -daysBefore).Format(time.DateOnly) }
	// period.retention is 90 days: the edge is 2026-09-02T03:00, so
	// 2026-09-01 is wholly past it and 2026-09-02 straddles it.
	edgeDay, pastDay := date(90), date(91)

	st, err := state.Open(cfg.State.Dir, pipeline.Identity(cfg))
	require.NoError(t, err)
	for _, d := range []string{date(120), date(119)} {
		require.NoError(t, st.AddRunProgress("killed-long-ago", d))
	}
	for _, d := range []string{pastDay, edgeDay, date(10)} {
		require.NoError(t, st.AddRunProgress("killed-recently", d))
	}
	for _, d := range []string{date(100), edgeDay, date(5)} {
		ww, err := st.Spool().Open(d, extract.Window{Start: 1, End: 2})
		require.NoError(t, err)
		require.NoError(t, ww.Add(extract.Event{ID: "a", Raw: []byte(`{"id":"a"}`)}))
		require.NoError(t, ww.Commit(extract.Window{Start: 1, End: 2}))
	}
	at := func(d string) int64 {
		day, err := time.Parse(time.DateOnly, d)
		require.NoError(t, err)
		return day.Add(time.Hour).UnixMilli()
	}
	for _, d := range []string{date(100), edgeDay, date(20), date(1)} {
		require.NoError(t, st.AppendDelivered(1, slices.Values([]state.DeliveredID{{ID: "id-" + d, At: at(d)}})))
	}
	require.NoError(t, st.MarkExported(state.Day{Day: date(20), Records: 1}))
	require.NoError(t, st.Close())

	s, err := pipeline.Open(t.Context(), pipeline.Options{Config: cfg, Now: func() time.Time { return now }})
	require.NoError(t, err)
	require.NoError(t, s.Close(t.Context()))

	v, err := state.Peek(cfg.State.Dir, pipeline.Identity(cfg))
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(v.Dir(), "run-killed-long-ago.json"))
	require.ErrorIs(t, err, os.ErrNotExist, "every day of the range is past the retention: a rerun skips them all")
	kept, err := v.RunProgress("killed-recently")
	require.NoError(t, err)
	require.Equal(t, map[string]bool{edgeDay: true, date(10): true}, kept, "a rerun still skips the days within the retention, the edge day's part included")
	spooled, err := os.ReadDir(filepath.Join(v.Dir(), "spool"))
	require.NoError(t, err)
	var days []string
	for _, e := range spooled {
		days = append(days, e.Name())
	}
	require.Equal(t, []string{edgeDay, date(5)}, days)
	logs, err := v.DeliveredDays()
	require.NoError(t, err)
	require.Equal(t, []string{edgeDay, date(1)}, logs, "the id logs a seal still reads stay")
}

// TestOpenRemovesTheSpoolOfExportedDays: a spool directory left for a day
// the state records as exported (a crash between the record and the
// removal) goes at the next start; the spool of a day not exported stays,
// for its run to deliver.
func TestOpenRemovesTheSpoolOfExportedDays(t *testing.T) {
	_, base := startSim(t, func(c *simulator.Config) { c.Events = 200 })
	cfg := testConfig(t, base)
	from := day0()
	_, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: from, To: from.AddDate(0, 0, 1)}, false)
	require.NoError(t, err)
	states, err := filepath.Glob(filepath.Join(cfg.State.Dir, "*", "spool"))
	require.NoError(t, err)
	require.Len(t, states, 1)
	exported := filepath.Join(states[0], from.Format(time.DateOnly))
	pending := filepath.Join(states[0], from.AddDate(0, 0, 1).Format(time.DateOnly))
	for _, dir := range []string{exported, pending} {
		require.NoError(t, os.MkdirAll(dir, 0o700))
	}

	s, err := pipeline.Open(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)})
	require.NoError(t, err)
	require.NoError(t, s.Close(t.Context()))
	require.NoDirExists(t, exported)
	require.DirExists(t, pending)
}
