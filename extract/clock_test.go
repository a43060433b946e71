package extract

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestAPIBehind: the Date headers of the answers tell how far the API's
// clock is behind this one, to within a second; a clock ahead, or a Date
// absent or unreadable, reads 0, a clock in step 0 or about an answer's
// travel.
func TestAPIBehind(t *testing.T) {
	for _, tc := range []struct {
		name     string
		date     func() string
		min, max time.Duration
	}{
		{"in step", func() string { return time.Now().UTC().Format(http.TimeFormat) }, 0, 200 * time.Millisecond}, // an answer's travel at most
		{"40 s behind", func() string { return time.Now().Add(-40 * time.Second).UTC().Format(http.TimeFormat) }, 39 * time.Second, 41 * time.Second},
		{"an hour ahead", func() string { return time.Now().Add(time.Hour).UTC().Format(http.TimeFormat) }, 0, 0},
		{"no date", func() string { return "" }, 0, 0},
		{"unreadable date", func() string { return "yesterday" }, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header()["Date"] = []string{tc.date()} // net/http adds its own only when none is set
				w.Write([]byte(okBody))
			}))
			t.Cleanup(srv.Close)
			c, _ := testClient(srv.URL)
			require.Zero(t, c.APIBehind(), "no answer yet")
			for range 5 {
				_, err := c.Page(t.Context(), Query{}, "")
				require.NoError(t, err)
			}
			got := c.APIBehind()
			require.GreaterOrEqual(t, got, tc.min)
			require.LessOrEqual(t, got, tc.max)
		})
	}
}

// TestAPIBehindReadsTheAPIsAnswers: a gateway in front of an API whose
// clock is 40 s behind answers some requests 502 and 503 with its own
// clock, in step: the estimate is the API's, from its 200s and 429s only
// (was: the least sample, the gateway's, read the API as in step, and a
// follow loop sealed a day before the API's midnight).
func TestAPIBehindReadsTheAPIsAnswers(t *testing.T) {
	var n int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n++
		switch n % 4 {
		case 1, 2: // the gateway's
			w.Header()["Date"] = []string{time.Now().UTC().Format(http.TimeFormat)}
			w.WriteHeader(http.StatusBadGateway + n%2)
			return
		}
		w.Header()["Date"] = []string{time.Now().Add(-40 * time.Second).UTC().Format(http.TimeFormat)}
		w.Write([]byte(okBody))
	}))
	t.Cleanup(srv.Close)
	c, _ := testClient(srv.URL)
	for range 3 {
		_, err := c.Page(t.Context(), Query{}, "")
		require.NoError(t, err)
	}
	got := c.APIBehind()
	require.GreaterOrEqual(t, got, 39*time.Second)
	require.LessOrEqual(t, got, 41*time.Second)
}
