package pipeline

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestETAFollowsThePace: a run whose pace changes half way (a server that
// slows down) gets an ETA that is honest again within the estimator's
// window, where an average since the start stays wrong to the end.
func TestETAFollowsThePace(t *testing.T) {
	// 40% in the first 10 s, then the rest at a quarter of that pace: 60 s.
	covered := func(s float64) float64 {
		if s <= 10 {
			return 0.04 * s
		}
		return 0.4 + 0.01*(s-10)
	}
	const end = 70.0
	var e etaEstimator
	var averageErr, estimatorErr float64
	for s := 0.25; s < end; s += 0.25 {
		at := time.Duration(s * float64(time.Second))
		eta := e.add(at, covered(s))
		if s < 25 {
			continue // a quarter of the work and one window after the change
		}
		left := end - s
		average := s * (1 - covered(s)) / covered(s)
		estimatorErr = max(estimatorErr, abs(eta.Seconds()-left)/left)
		averageErr = max(averageErr, abs(average-left)/left)
	}
	require.Less(t, estimatorErr, 0.05, "the ETA follows the pace")
	require.Greater(t, averageErr, 0.3, "an average since the start does not")
	require.Zero(t, new(etaEstimator).add(time.Second, 0.005), "under 1% covered: no estimate")
}

// TestETATextNeverZeroBeforeTheEnd: a time left that rounds to nothing
// while windows are still fetched reads 1s, not 0s, which reads as done
// (a progress line at 94.5% covered said eta=0s); the end says 0s.
func TestETATextNeverZeroBeforeTheEnd(t *testing.T) {
	for _, tc := range []struct {
		s    Snapshot
		want string
	}{
		{Snapshot{Covered: 0.945, ETA: 300 * time.Millisecond, Days: 1}, "1s"},
		{Snapshot{Covered: 0.5, ETA: 1400 * time.Millisecond, Days: 1}, "1s"},
		{Snapshot{Covered: 0.5, ETA: 1600 * time.Millisecond, Days: 1}, "2s"},
		{Snapshot{Covered: 0.5, Days: 1}, "unknown"},
		{Snapshot{Covered: 1, Days: 1}, "delivering"},
		{Snapshot{Covered: 1, Days: 1, ETA: 90 * time.Second}, "1m30s"},
		{Snapshot{Covered: 1, Days: 1, ETA: 200 * time.Millisecond}, "1s"},
		{Snapshot{Covered: 1, DaysDone: 1, Days: 1}, "0s"},
	} {
		require.Equal(t, tc.want, tc.s.ETAText("unknown"), "%+v", tc.s)
	}
}

// TestDeliveryETAFromItsStart: the delivery's pace is measured from where
// it stood when the fetching ended, not since the run began: a run that
// fetched for 54 s and had 90% of its events delivered by then is told the
// time its last 10% take at the pace of the delivery (50,000 events a
// second here: 10 s), not 0.9 of the run every 54 s.
func TestDeliveryETAFromItsStart(t *testing.T) {
	var e etaEstimator
	const events = 5_000_000
	for _, tc := range []struct {
		at        float64 // seconds since the run began
		delivered int64
		want      float64 // seconds left; 0: none known
	}{
		{54, 4_500_000, 0},
		{54.5, 4_525_000, 9.5},
		{56, 4_600_000, 8},
		{60, 4_800_000, 4},
	} {
		s := Snapshot{Elapsed: time.Duration(tc.at * float64(time.Second)), Events: events, Delivered: tc.delivered, Covered: 1, Days: 30}
		got := deliveryETA(&e, s).Seconds()
		require.InDelta(t, tc.want, got, 0.01, "at %v s", tc.at)
	}
	var stuck etaEstimator
	s := Snapshot{Elapsed: 54 * time.Second, Events: events, Delivered: 2_000_000, Covered: 1, Days: 30}
	require.Zero(t, deliveryETA(&stuck, s))
	s.Elapsed += 5 * time.Second
	require.Zero(t, deliveryETA(&stuck, s), "nothing moved: no estimate")
	require.Equal(t, "delivering", s.ETAText("unknown"))
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

// TestConcurrencyWatchWaitsOutThrottling: the workers are reported short
// only after concurrencyHoldSamples samples in a row of a need above them
// with no 429 between: a limiter searching above a server's limit (275 ms
// away, a limit of 20 a second, a search at 32) asks more than 8 workers
// give, but the 429s bound that run, and raising concurrency would not
// help (was: the warning while 429s came every five seconds).
func TestConcurrencyWatchWaitsOutThrottling(t *testing.T) {
	c := concurrencyWatch{workers: 8}
	throttled := int64(0)
	for i := range 200 {
		if i%5 == 4 {
			throttled++
		}
		require.False(t, c.short(10.2, throttled), "sample %d", i)
	}
	for range concurrencyHoldSamples - 1 {
		require.False(t, c.short(10.2, throttled))
	}
	require.True(t, c.short(10.2, throttled))
	// A need within the workers starts the count again.
	require.False(t, c.short(8, throttled))
	require.False(t, c.short(10.2, throttled))
}
