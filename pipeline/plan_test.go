package pipeline_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/pipeline"
)

// TestRangeOrigin: the messages about a range name its bounds where they
// were given: --from/--to on the command line, or period.from/period.to in
// the configuration file.
func TestRangeOrigin(t *testing.T) {
	now := time.Date(2026, 11, 30, 17, 50, 0, 0, time.UTC)
	cfg := testConfig(t, "http://127.0.0.1:1")
	log := testLogger(t)

	cfg.Period.From, cfg.Period.To = "2026-12-25", "2026-12-26"
	_, err := pipeline.DryRun(t.Context(), cfg, pipeline.Range{}, now, log)
	require.EqualError(t, err, "nothing to export: period.from 2026-12-25T00:00:00Z in test.yaml is not before now minus period.lag (2026-11-30T17:48:00.000Z)")

	cfg.Period.From, cfg.Period.To = "2026-11-25", "2027-11-26"
	p, err := pipeline.DryRun(t.Context(), cfg, pipeline.Range{}, now, log)
	require.NoError(t, err)
	require.Contains(t, p.Notes, "period.to 2027-11-26T00:00:00Z in test.yaml is later than now minus period.lag; exporting up to 2026-11-30T17:48:00.000Z")

	// The flags win over period.from/to, and are named as flags.
	from, to := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	p, err = pipeline.DryRun(t.Context(), cfg, pipeline.Range{From: from, To: to}, now, log)
	require.NoError(t, err)
	require.Contains(t, p.Notes, "--to 2027-01-01T00:00:00Z is later than now minus period.lag; exporting up to 2026-11-30T17:48:00.000Z")
	_, err = pipeline.DryRun(t.Context(), cfg, pipeline.Range{From: to, To: to.Add(24 * time.Hour)}, now, log)
	require.EqualError(t, err, "nothing to export: --from 2027-01-01T00:00:00Z is not before now minus period.lag (2026-11-30T17:48:00.000Z)")
}

// TestRetentionEdgeDay: the day on the API's retention edge is exported for
// what the API still holds of it, by catch-up as by an explicit range, with
// the same note (the edge in milliseconds, as created_at); the days before
// it are lost (catch-up) or skipped (a range).
func TestRetentionEdgeDay(t *testing.T) {
	now := time.Date(2026, 11, 30, 17, 54, 3, 772111966, time.UTC)
	cfg := testConfig(t, "http://127.0.0.1:1")
	cfg.Period.Retention = 120 * time.Hour // the edge: 2026-11-25T17:54:03.772
	log := testLogger(t)
	note := "2026-11-25 straddles the API's retention edge: its events before 2026-11-25T17:54:03.772Z are gone; the rest is exported, and the day is partial"
	markExported(t, cfg.State.Dir, pipeline.Identity(cfg), time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC))

	catchUp, err := pipeline.DryRun(t.Context(), cfg, pipeline.Range{}, now, log)
	require.NoError(t, err)
	require.Equal(t, "2026-11-25", catchUp.Days[0].Date())
	require.True(t, catchUp.Days[0].FullDay())
	require.Len(t, catchUp.Days, 5, "2026-11-25..2026-11-29")
	require.Equal(t, []string{"4 day(s) not exported are past the API's retention and lost: 2026-11-21..2026-11-24", note,
		"the oldest day not yet exported, 2026-11-26, leaves the API's retention in 6h0m0s: export it soon"}, catchUp.Notes)

	rng, err := pipeline.DryRun(t.Context(), cfg, pipeline.Range{From: time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)}, now, log)
	require.NoError(t, err)
	require.Len(t, rng.Days, 1)
	require.Equal(t, catchUp.Days[0], rng.Days[0], "the same partition")
	require.Equal(t, []string{note, "1 day(s) wholly past the API's retention are skipped, nothing fetched and their files left as they are: 2026-11-24..2026-11-24"}, rng.Notes)
}

// TestPartsOfExportedDays: the note on the parts of a range inside days
// exported whole speaks of one day, or of both ends of the range (was: "the
// part of it" for two days).
func TestPartsOfExportedDays(t *testing.T) {
	now := time.Date(2026, 11, 30, 17, 50, 0, 0, time.UTC)
	cfg := testConfig(t, "http://127.0.0.1:1")
	log := testLogger(t)
	d19, d20 := time.Date(2026, 11, 19, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	markExported(t, cfg.State.Dir, pipeline.Identity(cfg), d19, d20)

	p, err := pipeline.DryRun(t.Context(), cfg, pipeline.Range{From: d19.Add(21 * time.Hour), To: d20.Add(21 * time.Hour)}, now, log)
	require.NoError(t, err)
	require.Empty(t, p.Days)
	require.Equal(t, []string{"2026-11-19 and 2026-11-20 exported whole already: the parts of them in the range are not written again (export the whole days to fetch them afresh)"}, p.Notes)

	p, err = pipeline.DryRun(t.Context(), cfg, pipeline.Range{From: d19.Add(3 * time.Hour), To: d19.Add(21 * time.Hour)}, now, log)
	require.NoError(t, err)
	require.Equal(t, []string{"2026-11-19 exported whole already: the part of it in the range is not written again (export the whole day to fetch it afresh)"}, p.Notes)
}

// TestRangeFromAlone: `run --from T` exports from T up to the end of the
// last complete day, as SPEC's [--from T] [--to T] allows (was: a usage
// error asking for both); --to alone is refused, naming what is missing.
func TestRangeFromAlone(t *testing.T) {
	now := time.Date(2026, 11, 30, 17, 50, 0, 0, time.UTC)
	cfg := testConfig(t, "http://127.0.0.1:1")
	log := testLogger(t)
	p, err := pipeline.DryRun(t.Context(), cfg, pipeline.Range{From: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}, now, log)
	require.NoError(t, err)
	require.Equal(t, []string{"2026-11-27", "2026-11-28", "2026-11-29"}, dates(p.Days))
	require.Equal(t, time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), p.To)
	require.Empty(t, p.Notes, "no clipping: the range ends where the last complete day does")

	_, err = pipeline.DryRun(t.Context(), cfg, pipeline.Range{From: time.Date(2026, 11, 30, 1, 0, 0, 0, time.UTC)}, now, log)
	require.EqualError(t, err, "nothing to export: --from 2026-11-30T01:00:00Z is not before the end of the last complete day (2026-11-30T00:00:00Z); give --to too for a part of today")

	_, err = pipeline.DryRun(t.Context(), cfg, pipeline.Range{To: time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)}, now, log)
	require.EqualError(t, err, "--to needs --from, the start of the range (or neither, for the catch-up)")
}
