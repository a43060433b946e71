package simulator_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/simulator"
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

// TestLimitModels drives each rate-limit model in virtual time: what it
// admits, the Retry-After of its 429, and the same penalty for a client that
// ignores that Retry-After.
func TestLimitModels(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	type step struct {
		ms         int
		retryAfter time.Duration // 0: admitted
	}
	cases := []struct {
		name  string
		model string
		rate  float64
		burst int
		steps []step
	}{
		{name: "token bucket spends its burst, then refills at the rate", model: simulator.LimitTokenBucket, rate: 10, burst: 3,
			steps: []step{{0, 0}, {1, 0}, {2, 0}, {3, time.Second}, {1003, 0}, {1004, 0}, {1005, 0}, {1006, time.Second}, {2006, 0}, {2106, 0}, {2107, 0}, {2108, 0}, {2109, time.Second}}},
		{name: "pacing needs 1/rate between requests", model: simulator.LimitPacing, rate: 50, burst: 50,
			steps: []step{{0, 0}, {20, 0}, {40, 0}, {59, time.Second}, {1059, 0}, {1079, 0}, {1100, 0}, {1500, 0}, {1510, time.Second}}},
		{name: "sliding window: at most n in any second", model: simulator.LimitSlidingWindow, rate: 3.7,
			steps: []step{{0, 0}, {600, 0}, {700, 0}, {999, time.Second}, {1999, 0}, {2599, 0}, {2600, 0}, {2601, time.Second}}},
		{name: "fixed window: at most n in each calendar second", model: simulator.LimitFixedWindow, rate: 3,
			steps: []step{{900, 0}, {950, 0}, {990, 0}, {995, time.Second}, {1995, 0}, {2000, 0}, {2001, 0}, {2002, 0}, {2003, time.Second}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.RateLimit, cfg.LimitModel, cfg.Burst, cfg.BlockAfter, cfg.BlockFor = tc.rate, tc.model, tc.burst, 3, time.Hour
			l, err := simulator.NewRateLimit(cfg)
			require.NoError(t, err)
			last := 0
			for i, s := range tc.steps {
				v := l.Allow("sim-token", at(s.ms))
				require.Equal(t, s.retryAfter, v.RetryAfter, "step %d at %d ms", i, s.ms)
				require.False(t, v.Violation, "step %d at %d ms", i, s.ms)
				last = s.ms
			}
			// Ignoring the last Retry-After: answered 429 again, then blocked.
			require.Equal(t, time.Second, l.Allow("sim-token", at(last+1)).RetryAfter)
			require.True(t, l.Allow("sim-token", at(last+2)).Violation)
			v := l.Allow("sim-token", at(last+3))
			require.True(t, v.BlockNow)
			require.Equal(t, time.Hour, v.RetryAfter)
			// Other tokens have limits of their own.
			require.Zero(t, l.Allow("other", at(last+4)).RetryAfter)
		})
	}
}

func TestLimitModelErrors(t *testing.T) {
	for name, mutate := range map[string]func(*simulator.Config){
		"unknown model":             func(c *simulator.Config) { c.RateLimit, c.LimitModel = 5, "leaky" },
		"window below one a second": func(c *simulator.Config) { c.RateLimit, c.LimitModel = 0.5, simulator.LimitSlidingWindow },
		"bucket without tokens":     func(c *simulator.Config) { c.RateLimit, c.LimitModel, c.Burst = 5, simulator.LimitTokenBucket, 0 },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig()
			mutate(&cfg)
			_, err := simulator.New(cfg)
			require.Error(t, err)
			_, err = simulator.NewRateLimit(cfg)
			require.Error(t, err)
		})
	}
}

// TestLimitModelOverHTTP: the server applies the configured model, and its
// 429 comes back at once, without the latency of an admitted request.
func TestLimitModelOverHTTP(t *testing.T) {
	cfg := testConfig()
	cfg.RateLimit, cfg.LimitModel = 2, simulator.LimitFixedWindow
	cfg.Latency = 500 * time.Millisecond
	s, base := start(t, cfg)
	q := query(day(0), day(1))
	// Five at once span at most two calendar seconds: at most four admitted.
	type answer struct {
		status int
		took   time.Duration
	}
	answers := make(chan answer, 5)
	for range 5 {
		go func() {
			began := time.Now()
			r := get(t, base, "sim-token", q)
			answers <- answer{r.Status, time.Since(began)}
		}()
	}
	throttled := 0
	for range 5 {
		a := <-answers
		if a.status == http.StatusTooManyRequests {
			throttled++
			require.Less(t, a.took, cfg.Latency, "a 429 waits for nothing")
			continue
		}
		require.Equal(t, http.StatusOK, a.status)
		require.GreaterOrEqual(t, a.took, cfg.Latency)
	}
	require.GreaterOrEqual(t, throttled, 1)
	require.Equal(t, throttled, s.Stats().Status429)
}
