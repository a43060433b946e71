package follow_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/follow"
	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/testkit/exporttest"
)

// TestFollowBigTieGroup: a bulk operation's events, all in one millisecond
// and more than the records of a window held in memory to sort them,
// reach the file sink once each, also as the look-back reads them again.
func TestFollowBigTieGroup(t *testing.T) {
	t.Parallel()
	c, sim, base := startLive(t, 6*time.Hour, simulator.Live{}) // no midnight in the test
	cfg := testConfig(t, base)
	start := c.now().Add(-time.Second)
	f := startFollow(t, cfg, c, follow.Options{From: start})

	at := c.now().Truncate(time.Millisecond)
	const group = 2500
	for i := range group {
		sim.WriteEvent("message_deleted", at, uint64(i+1))
	}
	// Cycles read the group again until the look-back has passed it.
	waitPast(t, cfg, at.Add(cfg.Follow.Lookback+time.Second), "the look-back to pass the group")
	after := sim.WriteEvent("user_login", c.now(), 1)
	waitPast(t, cfg, after.CreatedAt, "a cycle past the event after the group")
	require.NoError(t, f.stop())

	want := exporttest.Expected(sim, start, c.now())
	require.Len(t, want, group+1)
	exporttest.Compare(t, want, exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir), "acme")
}
