package follow_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/follow"
	"github.com/pachca-export/pachca-export/simulator"
)

// TestFollowFromThePastSealsAtOnce: a loop started with --from two days
// back, its interval 10 minutes: the first cycle seals nothing (the API's
// clock is unknown before its answers), and the next one, which seals the
// days due, follows it at once (was: an interval later, 10 minutes here,
// the default's minute for a --from weeks back).
func TestFollowFromThePastSealsAtOnce(t *testing.T) {
	sim, base := startSim(t, simulator.DefaultConfig())
	defer sim.Close()
	cfg := testConfig(t, base)
	cfg.Follow.Interval = 10 * time.Minute
	require.NoError(t, cfg.Validate())
	today := time.Now().UTC().Truncate(24 * time.Hour)
	f := startFollow(t, cfg, clock{}, follow.Options{From: today.AddDate(0, 0, -2)})
	waitSealed(t, cfg, today.AddDate(0, 0, -1).Format(time.DateOnly))
	require.NoError(t, f.stop())
	require.EqualValues(t, 2, position(t, cfg).Seq, "the first cycle, and the one that sealed")
}
