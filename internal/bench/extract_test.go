package bench

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/simulator"
)

func TestMeasure(t *testing.T) {
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return start.Add(time.Duration(ms) * time.Millisecond) }
	log := []simulator.Request{
		{At: at(500), Status: http.StatusOK},               // warm-up: counted in totals only
		{At: at(1500), Status: http.StatusOK},              // measured
		{At: at(2500), Status: http.StatusTooManyRequests}, // measured
		{At: at(3000), Status: http.StatusOK},              // measured
		{At: at(3700), Status: http.StatusOK},              // in the last 500 ms: left out
		{At: at(3800), Status: 0},                          // aborted at the stop: ignored
	}
	r := measure(log, start, at(4000), time.Second, 2*time.Second)
	require.Equal(t, 2, r.OK)
	require.Equal(t, 1, r.Throttled)
	require.Equal(t, 5, r.TotalRequests)
	require.Equal(t, 1, r.Total429)
	require.Equal(t, 2500*time.Millisecond, r.Span)
	require.InDelta(t, 0.8, r.OKPerSecond(), 1e-9)
	require.InDelta(t, 100.0/3, r.ThrottledShare(), 1e-9)
	require.Equal(t, []float64{1, 1}, r.Buckets, "200s per second in [0, 2s) and [2s, 4s)")
}
