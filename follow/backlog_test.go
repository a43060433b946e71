package follow_test

import (
	"log/slog"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/follow"
	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/testkit/exporttest"
	"github.com/pachca-export/pachca-export/testkit/logbuf"
)

// TestFollowReadsABacklogInBoundedCycles: a first start three hours back,
// over 6,000 events, with cycles of about 500 events at most
// (Options.CycleEvents). The first cycle reads the hour it may before it
// knows the log's density (some 2,000 events); the next ones about 500 each,
// one right after the other, each beginning where the one before ended:
// no look-back of the backlog is read again. Was: one cycle of all 6,000,
// every id held until its commit (a first start late in a day of millions
// of events, or a flood read after an outage, passed the memory limit and
// was redone whole at each restart). Every event lands once.
func TestFollowReadsABacklogInBoundedCycles(t *testing.T) {
	t.Parallel()
	c := newClock(4 * time.Hour) // the three hours lie within one UTC day
	start := c.now().Add(-3 * time.Hour).Truncate(time.Second)
	sc := simulator.DefaultConfig()
	sc.Events, sc.From, sc.To, sc.ClockOffset = 6000, start, c.now().Add(-10*time.Second), c.offset
	sc.Faults, sc.Midnight = nil, false
	sim, base := startSim(t, sc)
	t.Cleanup(func() { sim.Close() })
	cfg := testConfig(t, base)
	cfg.Follow.Interval = time.Minute // the cycles after the first come at once, not an interval apart
	require.NoError(t, cfg.Validate())

	var logs logbuf.Buffer
	f := startFollowLogging(t, cfg, c, follow.Options{From: start, CycleEvents: 500}, slog.New(slog.NewTextHandler(&logs, nil)))
	waitFor(t, "the backlog read", func() bool {
		return c.now().Sub(position(t, cfg).Watermark) < 10*time.Second
	})
	require.NoError(t, f.stop())

	cycles := loggedCycles(t, logs.String())
	require.Greater(t, len(cycles), 6, logs.String())
	require.Equal(t, start.Add(time.Hour), cycles[0].to, "the first cycle's hour from --from")
	total := 0
	for i, cy := range cycles {
		total += cy.events
		if i == 0 {
			continue
		}
		require.Equal(t, cycles[i-1].to, cy.from, "cycle %d begins where the one before ended", cy.seq)
		// The log's density varies: each span is what held 500 events in
		// the cycle before (here 371 to 716 a cycle, the last one less).
		require.LessOrEqual(t, cy.events, 1000, "cycle %d", cy.seq)
	}
	want := exporttest.Expected(sim, start, position(t, cfg).Watermark)
	require.Equal(t, len(want), total)
	exporttest.Compare(t, want, exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir), "acme")
}

// TestFollowLookBackWithTheAPIClockBehind: the API's clock a minute
// behind this host's, more than lag + look-back. The first cycle of a
// process chooses its end by this host's clock, before any answer tells
// how far behind the API's is, and moves the watermark to the API's now
// - lag once they did. An event the API then publishes, created within
// the look-back behind the watermark, is delivered by the next cycle,
// which re-reads the look-back: that first cycle did not stop short of
// the API's now - lag, it only seemed to by the end it chose (its
// horizon is the API's now - lag when it began, not that end; else the
// event was the seal's, hours later).
func TestFollowLookBackWithTheAPIClockBehind(t *testing.T) {
	t.Parallel()
	const behind = time.Minute
	c := newClock(2 * time.Hour)
	sc := simulator.DefaultConfig()
	sc.Events, sc.ClockOffset = 0, c.offset-behind
	sim, base := startSim(t, sc)
	t.Cleanup(func() { sim.Close() })
	cfg := testConfig(t, base)
	cfg.Follow.Interval = 5 * time.Second // the event is written between the first two cycles
	require.NoError(t, cfg.Validate())
	apiNow := func() time.Time { return c.now().Add(-behind) }
	f := startFollow(t, cfg, c, follow.Options{From: apiNow().Add(-time.Second)})
	waitFor(t, "a committed cycle", func() bool { return position(t, cfg).Seq >= 1 })
	w := position(t, cfg).Watermark
	require.WithinDuration(t, apiNow().Add(-cfg.Period.Lag), w, 3*time.Second, "the watermark by the API's clock")
	ev := sim.WriteEvent("user_login", w.Add(-time.Second), 20001) // 2 s late: within lag + look-back
	waitFor(t, "a cycle to deliver it", func() bool {
		return len(exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir)) == 1
	})
	require.NoError(t, f.stop())
	require.Contains(t, exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir), ev.ID)
}

type loggedCycle struct {
	seq, events int
	from, to    time.Time
}

var cycleLine = regexp.MustCompile(`msg="follow: cycle" seq=(\d+) from=(\S+) to=(\S+) events=(\d+)`)

// loggedCycles reads the "follow: cycle" lines of a text log.
func loggedCycles(t *testing.T, log string) []loggedCycle {
	t.Helper()
	var cs []loggedCycle
	for _, m := range cycleLine.FindAllStringSubmatch(log, -1) {
		var cy loggedCycle
		var err error
		cy.seq, err = strconv.Atoi(m[1])
		require.NoError(t, err)
		cy.from, err = time.Parse(time.RFC3339Nano, m[2])
		require.NoError(t, err)
		cy.to, err = time.Parse(time.RFC3339Nano, m[3])
		require.NoError(t, err)
		cy.events, err = strconv.Atoi(m[4])
		require.NoError(t, err)
		cs = append(cs, cy)
	}
	return cs
}
