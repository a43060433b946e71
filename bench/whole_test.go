package bench

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/simulator"
)

func TestCount(t *testing.T) {
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return start.Add(time.Duration(ms) * time.Millisecond) }
	var log []simulator.Request
	log = append(log, simulator.Request{At: at(100), Status: http.StatusOK})
	log = append(log, simulator.Request{At: at(200), Status: http.StatusTooManyRequests})
	for ms := 10_000; ms < 25_000; ms += 100 { // 10 a second from the tenth second on
		log = append(log, simulator.Request{At: at(ms), Status: http.StatusOK})
	}
	log = append(log, simulator.Request{At: at(24_950), Status: 0}) // aborted: no answer
	r := WholeResult{Wall: 25 * time.Second, Pages: 151}
	r.count(simulator.Stats{Log: log, Blocked: 1}, start)
	require.Equal(t, 151, r.OK)
	require.Equal(t, 1, r.Throttled)
	require.Equal(t, 152, r.Requests)
	require.Equal(t, 1, r.Blocked)
	require.Equal(t, []float64{0.2, 0, 10, 10, 10, 0}, r.Series)
	require.True(t, r.SettledSet)
	require.InDelta(t, 150/14.9, r.SettledOK, 1e-9)
	require.Equal(t, 100*time.Millisecond, r.Head)
	require.Equal(t, 50*time.Millisecond, r.Tail)
	require.InDelta(t, 100.0/152, r.ThrottledShare(), 1e-9)
}

func TestParseSlowServers(t *testing.T) {
	got, err := ParseSlowServers("25, pacing:40,fixed-window:35.5")
	require.NoError(t, err)
	require.Equal(t, []SlowServer{{simulator.LimitTokenBucket, 25}, {simulator.LimitPacing, 40}, {simulator.LimitFixedWindow, 35.5}}, got)
	for _, none := range []string{"", "0"} {
		got, err = ParseSlowServers(none)
		require.NoError(t, err)
		require.Empty(t, got)
	}
	for _, bad := range []string{"leaky:5", "pacing:", "pacing:-1", "x"} {
		_, err = ParseSlowServers(bad)
		require.Error(t, err, bad)
	}
}

// TestGapsBefore429: each 429 is shown with the gap the server saw before
// it, in the order requests came (the log is in the order answers went),
// beside the median gap of the admitted ones.
func TestGapsBefore429(t *testing.T) {
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	at := func(us int) time.Time { return start.Add(time.Duration(us) * time.Microsecond) }
	log := []simulator.Request{
		{At: at(0), Status: http.StatusOK},
		{At: at(40_800), Status: http.StatusOK}, // answered before the one that came before it
		{At: at(20_400), Status: http.StatusOK},
		{At: at(60_000), Status: http.StatusTooManyRequests}, // 19.2 ms after the one before
		{At: at(61_000), Status: http.StatusTooManyRequests},
		{At: at(81_400), Status: http.StatusOK},
	}
	r := WholeResult{Wall: time.Second, Pages: 4}
	r.count(simulator.Stats{Log: log}, start)
	require.Equal(t, []time.Duration{19200 * time.Microsecond, time.Millisecond}, r.GapsBefore429)
	require.Equal(t, 20400*time.Microsecond, r.MedianGap)
	var out strings.Builder
	PrintWhole(&out, r, 0)
	require.Contains(t, out.String(), "| 2 (33.33%; after 19.20, 1.00 ms of a median 20.40) |")
}
