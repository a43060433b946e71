package simulator_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRateLimitAnswers429WithRetryAfter(t *testing.T) {
	for _, httpDate := range []bool{false, true} {
		name := map[bool]string{false: "seconds", true: "http date"}[httpDate]
		t.Run(name, func(t *testing.T) {
			cfg := testConfig()
			cfg.RateLimit, cfg.Burst, cfg.RetryAfterHTTPDate = 2, 3, httpDate
			s, base := start(t, cfg)
			q := query(day(0), day(1))
			for range 3 {
				require.Equal(t, http.StatusOK, get(t, base, "sim-token", q).Status)
			}
			r := get(t, base, "sim-token", q)
			require.Equal(t, http.StatusTooManyRequests, r.Status)
			require.Equal(t, "rate_limit", decodeErrors(t, r).Errors[0].Code)
			if httpDate {
				at, err := http.ParseTime(r.Header.Get("Retry-After"))
				require.NoError(t, err, "Retry-After %q", r.Header.Get("Retry-After"))
				require.True(t, at.After(time.Now()), "Retry-After %s is not in the future", at)
				require.WithinDuration(t, time.Now(), at, 2*time.Second)
			} else {
				require.Equal(t, 1, retryAfterSeconds(t, r.Header))
			}
			// Other tokens have buckets of their own.
			require.Equal(t, http.StatusForbidden, get(t, base, "sim-no-scope", q).Status)
			st := s.Stats()
			require.Equal(t, 1, st.Status429)
			require.Equal(t, 0, st.Blocked)
		})
	}
}

func TestHonouringRetryAfterIsNotBlocked(t *testing.T) {
	cfg := testConfig()
	cfg.RateLimit, cfg.Burst, cfg.BlockAfter, cfg.BlockFor = 1, 1, 1, time.Hour
	s, base := start(t, cfg)
	q := query(day(0), day(1))
	require.Equal(t, http.StatusOK, get(t, base, "sim-token", q).Status)
	r := get(t, base, "sim-token", q)
	require.Equal(t, http.StatusTooManyRequests, r.Status)
	time.Sleep(time.Duration(retryAfterSeconds(t, r.Header)) * time.Second)
	require.Equal(t, http.StatusOK, get(t, base, "sim-token", q).Status)
	require.Equal(t, 0, s.Stats().Blocked)
}

func TestIgnoring429BlocksTheToken(t *testing.T) {
	cfg := testConfig()
	cfg.RateLimit, cfg.Burst, cfg.BlockAfter, cfg.BlockFor = 1, 1, 3, time.Hour
	s, base := start(t, cfg)
	q := query(day(0), day(1))
	require.Equal(t, http.StatusOK, get(t, base, "sim-token", q).Status)
	require.Equal(t, 1, retryAfterSeconds(t, get(t, base, "sim-token", q).Header)) // the 429
	for range 2 {
		r := get(t, base, "sim-token", q) // sent while it should wait
		require.Equal(t, http.StatusTooManyRequests, r.Status)
		require.Equal(t, 1, retryAfterSeconds(t, r.Header))
	}
	require.Equal(t, 0, s.Stats().Blocked)
	r := get(t, base, "sim-token", q) // the third: blocked
	require.Equal(t, http.StatusTooManyRequests, r.Status)
	require.Equal(t, 3600, retryAfterSeconds(t, r.Header))
	r = get(t, base, "sim-token", q)
	require.Equal(t, http.StatusTooManyRequests, r.Status)
	require.InDelta(t, 3600, retryAfterSeconds(t, r.Header), 1)
	st := s.Stats()
	require.Equal(t, 1, st.Blocked)
	require.Equal(t, 5, st.Status429)
	require.Equal(t, 1, st.OK)
}
