package follow

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestBackoffCap: the wait between failing cycles doubles from the
// interval up to 30 s, or the interval when it is longer (was: up to 5
// minutes: with the default interval of 1m, a feed idle up to 5 minutes
// past the end of a 10-minute outage).
func TestBackoffCap(t *testing.T) {
	for _, tc := range []struct {
		interval time.Duration
		failures int
		want     time.Duration
	}{
		{time.Minute, 1, time.Minute},
		{time.Minute, 3, time.Minute},
		{time.Minute, 20, time.Minute},
		{2 * time.Second, 1, 2 * time.Second},
		{2 * time.Second, 3, 8 * time.Second},
		{2 * time.Second, 5, 30 * time.Second},
		{2 * time.Second, 100, 30 * time.Second},
		{100 * time.Millisecond, 100, 6400 * time.Millisecond},
		{10 * time.Minute, 4, 10 * time.Minute},
	} {
		require.Equal(t, tc.want, backoff(tc.interval, tc.failures), "interval %s, failure %d", tc.interval, tc.failures)
	}
}
