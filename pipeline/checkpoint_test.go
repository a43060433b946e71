package pipeline_test

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/state"
	"github.com/pachca-export/pachca-export/testkit/exporttest"
)

// TestKillMidWindowKeepsItsCheckpoint: one day walked as one window (one
// worker); the run is stopped once the walked part of the window is
// committed (after 1,000 events or a second), the window still running. The rerun fetches only what that part
// does not cover, never a request reaching into it, and the output is exact.
func TestKillMidWindowKeepsItsCheckpoint(t *testing.T) {
	from, to := day0(), day0().AddDate(0, 0, 1)
	sim, base := startSim(t, func(c *simulator.Config) {
		// Checkpoints, not windows closing early, commit parts of the day
		// before its end (the code before them committed nothing here).
		c.Events, c.From, c.To = 4000, from, to
		c.Latency = 25 * time.Millisecond
	})
	cfg := testConfig(t, base)
	cfg.Source.RequestsPerSecond, cfg.Source.Concurrency = 100, 1

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := pipeline.Run(ctx, pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: from, To: to}, false)
		done <- err
	}()
	var cut [2]int64 // the committed part, [start, end)
	require.Eventually(t, func() bool {
		files, _ := filepath.Glob(filepath.Join(cfg.State.Dir, "*", "spool", from.Format(time.DateOnly), "_all~*.ndjson"))
		if len(files) == 0 {
			return false
		}
		parts := strings.Split(strings.TrimSuffix(filepath.Base(files[0]), ".ndjson"), "~")
		cut[0], _ = strconv.ParseInt(parts[1], 10, 64)
		cut[1], _ = strconv.ParseInt(parts[2], 10, 64)
		return true
	}, 30*time.Second, time.Millisecond)
	cancel()
	require.True(t, errors.Is(<-done, context.Canceled))
	stoppedAt := time.Now()
	require.Equal(t, to.UnixMilli(), cut[1], "the newest part is committed first")
	require.Greater(t, cut[0], from.UnixMilli(), "a part of the window, not all of it")
	requestsBefore := len(sim.Stats().Log)

	sum, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: from, To: to}, false)
	require.NoError(t, err)
	exporttest.Compare(t, exporttest.Expected(sim, from, to), exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir), "acme")
	var rerun []simulator.Request
	for _, r := range sim.Stats().Log {
		if r.At.After(stoppedAt) {
			rerun = append(rerun, r)
		}
	}
	require.NotEmpty(t, rerun)
	for _, r := range rerun {
		// end_time is inclusive and a window's end: the committed part's
		// first millisecond, whose events the fetcher skips.
		require.LessOrEqual(t, r.End.UnixMilli(), cut[0], "request %s..%s reaches into the committed part", r.Start, r.End)
	}
	// Nothing fetched twice: the rerun walks the rest and no more (its pages
	// hold 50 events, the last one maybe fewer, or none after a full one),
	// and both runs together send the requests of one walk, plus the one in
	// flight at the stop.
	rest := len(exporttest.Expected(sim, from, time.UnixMilli(cut[0])))
	// The rerun's own count: the log may hold, after the stop, the answer
	// to a request of the first run cut off in flight. One of the rerun's
	// requests asked for the token's owner (GET /oauth/token/info).
	pages := sum.Requests - 1
	require.LessOrEqual(t, pages, int64(rest/50+1))
	require.LessOrEqual(t, requestsBefore+int(pages), 4000/50+2)
}

// TestResumeSkipsADayRecordedButNotInProgress: a run of a range killed
// after recording its last day exported, before adding it to the range's
// progress (the state below is what that kill leaves): the same command
// again fetches nothing (was: that day fetched again from the API, its
// spool removed as exported) and the output stays exact.
func TestResumeSkipsADayRecordedButNotInProgress(t *testing.T) {
	sim, base := startSim(t, func(c *simulator.Config) { c.Events = 3000 })
	cfg := testConfig(t, base)
	rng := pipeline.Range{From: day0(), To: day0().AddDate(0, 0, 3)}
	_, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, rng, false)
	require.NoError(t, err)

	recordFirstDaysDelivered(t, cfg, rng, nil)

	before := len(sim.Stats().Log)
	_, err = pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, rng, false)
	require.NoError(t, err)
	require.Equal(t, before, len(sim.Stats().Log), "no day fetched again")
	exporttest.Compare(t, exporttest.Expected(sim, rng.From, rng.To), exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir), "acme")
}

// TestResumeARangeEndingAfterNow: a range whose end is later than now, so
// clipped to now minus period.lag, later at each start, killed after
// delivering its first two days (the state below is what that kill
// leaves): the same command an hour later fetches neither again (was: the
// range's progress was keyed by the clipped end, which no later start
// finds, so every rerun fetched and delivered the whole range again).
func TestResumeARangeEndingAfterNow(t *testing.T) {
	sim, base := startSim(t, func(c *simulator.Config) { c.Events = 3000 })
	cfg := testConfig(t, base)
	rng := pipeline.Range{From: day0(), To: time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, 2)}
	anHourAgo := func() time.Time { return time.Now().Add(-time.Hour) }
	_, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t), Now: anHourAgo}, rng, false)
	require.NoError(t, err)

	recordFirstDaysDelivered(t, cfg, rng, anHourAgo)

	before := len(sim.Stats().Log)
	_, err = pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, rng, false)
	require.NoError(t, err)
	resumed := day0().AddDate(0, 0, 2)
	for _, r := range sim.Stats().Log[before:] {
		require.False(t, r.Start.Before(resumed), "request %s..%s fetches a day delivered before the kill", r.Start, r.End)
	}
	exporttest.Compare(t, exporttest.Expected(sim, rng.From, rng.To), exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir), "acme")
}

// TestResumeARangeWholeAfterMidnight: the same range killed one day after
// delivering the part of its last day up to now minus period.lag, and
// started again the next day: that day is whole now and delivered whole,
// replacing its part, not skipped as delivered.
func TestResumeARangeWholeAfterMidnight(t *testing.T) {
	sim, base := startSim(t, func(c *simulator.Config) { c.Events = 3000 })
	cfg := testConfig(t, base)
	rng := pipeline.Range{From: day0(), To: day0().AddDate(0, 0, 2)}
	noon := func() time.Time { return day0().Add(12 * time.Hour) }
	_, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t), Now: noon}, rng, false)
	require.NoError(t, err)

	s, err := pipeline.Open(t.Context(), pipeline.Options{Config: cfg, Now: noon})
	require.NoError(t, err)
	plan, err := s.Plan(rng)
	require.NoError(t, err)
	require.NoError(t, s.Close(t.Context()))
	require.Len(t, plan.Days, 1)
	require.False(t, plan.Days[0].FullDay())
	st, err := state.Open(cfg.State.Dir, pipeline.Identity(cfg))
	require.NoError(t, err)
	require.NoError(t, st.AddRunProgress(pipeline.ProgressKey(plan), day0().Format(time.DateOnly)))
	require.NoError(t, st.Close())

	sum, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, rng, false)
	require.NoError(t, err)
	require.Equal(t, []string{day0().Format(time.DateOnly), day0().AddDate(0, 0, 1).Format(time.DateOnly)}, sum.Days)
	exporttest.Compare(t, exporttest.Expected(sim, rng.From, rng.To), exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir), "acme")
}

// TestResumeToNow: a range of --to now (To: now when the command
// started), killed after delivering its first two days and started again
// an hour later, fetches neither again: its progress is keyed on "now"
// (was: on the instant now was, another key at each start, so every rerun
// fetched and delivered the whole range again).
func TestResumeToNow(t *testing.T) {
	sim, base := startSim(t, func(c *simulator.Config) { c.Events = 3000 })
	cfg := testConfig(t, base)
	anHourAgo := func() time.Time { return time.Now().Add(-time.Hour) }
	rng := pipeline.Range{From: day0(), To: anHourAgo(), ToNow: true}
	_, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t), Now: anHourAgo}, rng, false)
	require.NoError(t, err)

	recordFirstDaysDelivered(t, cfg, rng, anHourAgo)

	before := len(sim.Stats().Log)
	rng.To = time.Now()
	_, err = pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, rng, false)
	require.NoError(t, err)
	resumed := day0().AddDate(0, 0, 2)
	for _, r := range sim.Stats().Log[before:] {
		require.False(t, r.Start.Before(resumed), "request %s..%s fetches a day delivered before the kill", r.Start, r.End)
	}
}

// recordFirstDaysDelivered leaves the state a run of rng (planned at now,
// nil for the clock) leaves when killed after delivering its first two
// days: their progress under the plan's key.
func recordFirstDaysDelivered(t *testing.T, cfg *config.Config, rng pipeline.Range, now func() time.Time) {
	t.Helper()
	s, err := pipeline.Open(t.Context(), pipeline.Options{Config: cfg, Now: now})
	require.NoError(t, err)
	plan, err := s.Plan(rng)
	require.NoError(t, err)
	require.NoError(t, s.Close(t.Context()))
	st, err := state.Open(cfg.State.Dir, pipeline.Identity(cfg))
	require.NoError(t, err)
	for i := range 2 {
		require.NoError(t, st.AddRunProgress(pipeline.ProgressKey(plan), day0().AddDate(0, 0, i).Format(time.DateOnly)))
	}
	require.NoError(t, st.Close())
}
