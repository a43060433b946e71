package follow_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/follow"
	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/state"
	"github.com/pachca-export/pachca-export/testkit/exporttest"
)

// TestFollowAPIClockStepsBackOverMidnight: the API's clock steps back 4 s
// a second past a UTC midnight, while events of the day before are
// published late; the watermark, which never passes the API's now less the
// lag, then holds for a few cycles, whose look-back begins before midnight:
// each writes the day before's late events to a file of its own, and every
// event of the day is in the kept cycle files at the seal (was: the cycles
// with a watermark that did not move all began at one instant, so each
// named its file of the day before [from, midnight): the second was
// refused, exit 1 at every restart, or replaced the first, whose events
// were lost from the kept cycle files).
func TestFollowAPIClockStepsBackOverMidnight(t *testing.T) {
	c, sim, base := startLive(t, 2*time.Second, simulator.Live{})
	cfg := testConfig(t, base)
	cfg.Follow.Lookback, cfg.Follow.KeepCycleFiles = 20*time.Second, true
	require.NoError(t, cfg.Validate())
	midnight := c.now().Truncate(24 * time.Hour).Add(24 * time.Hour)
	yesterday := midnight.Add(-24 * time.Hour).Format(time.DateOnly)
	start := c.now().Add(-500 * time.Millisecond)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ended := make(chan error, 1)
	go func() {
		ended <- follow.Run(ctx, pipeline.Options{Config: cfg, Logger: logger(t), Now: c.now}, follow.Options{From: start})
	}()
	v, err := state.Peek(cfg.State.Dir, pipeline.Identity(cfg))
	require.NoError(t, err)
	deadline := time.Now().Add(2 * patience)
	stepped := false
	for i := 0; ; i++ {
		if !stepped && position(t, cfg).Watermark.After(midnight.Add(time.Second)) {
			sim.SetClockOffset(c.offset - 4*time.Second)
			stepped = true
		}
		// Late events of the day before, until a second before the seal by
		// this host's clock (the API's is behind: later still by its own).
		if c.now().Before(midnight.Add(cfg.Period.Lag + cfg.Follow.Lookback - time.Second)) {
			sim.WriteEvent("user_login", midnight.Add(-time.Duration(1+i%300)*time.Millisecond), uint64(1000+i))
		}
		ex, err := v.Exported()
		require.NoError(t, err)
		if _, ok := ex[yesterday]; ok {
			break
		}
		select {
		case err := <-ended:
			require.Failf(t, "the loop ended before the seal", "%v", err)
		case <-time.After(100 * time.Millisecond):
		}
		require.False(t, time.Now().After(deadline), "timed out waiting for the seal")
	}
	cancel()
	require.NoError(t, <-ended)
	want := exporttest.Expected(sim, midnight.Add(-24*time.Hour), midnight)
	got := map[string]exporttest.Line{}
	for id, l := range exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir) {
		if l.Dir == "dt="+yesterday {
			got[id] = l
		}
	}
	exporttest.Compare(t, want, got, "acme")
}
