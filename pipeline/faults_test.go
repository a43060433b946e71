package pipeline_test

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/testkit/exporttest"
)

// TestFaultMatrix: for each way the API misbehaves, the run either completes
// with the exact event set or fails with a clear message; never a silent
// loss, never a duplicate.
func TestFaultMatrix(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		sim     func(*simulator.Config)
		rps     float64
		timeout time.Duration
		retries int
		errText string // "" = must succeed
	}{
		{name: "429 storm, Retry-After in seconds", rps: 45, sim: func(c *simulator.Config) {
			c.RateLimit, c.Burst, c.BlockAfter, c.BlockFor = 15, 3, 30, time.Minute
		}},
		{name: "429 storm, Retry-After as HTTP date", rps: 45, sim: func(c *simulator.Config) {
			c.RateLimit, c.Burst, c.BlockAfter, c.BlockFor, c.RetryAfterHTTPDate = 15, 3, 30, time.Minute, true
		}},
		{name: "5xx bursts", sim: faults(0.3, simulator.Fault500, simulator.Fault502, simulator.Fault503)},
		{name: "connection resets", sim: faults(0.3, simulator.FaultReset)},
		{name: "truncated bodies", sim: faults(0.3, simulator.FaultTruncate)},
		{name: "HTML error pages", sim: faults(0.3, simulator.FaultHTML)},
		{name: "answers slower than the timeout", timeout: 300 * time.Millisecond, sim: func(c *simulator.Config) {
			faults(0.2, simulator.FaultSlow)(c)
			c.SlowDelay = 2 * time.Second
		}},
		{name: "a server that never recovers", retries: 2, sim: faults(1, simulator.Fault500),
			errText: "giving up after 2 retries: server error 500"},
		// Every page after the first names its own cursor as the next one.
		{name: "a cursor loop", sim: faults(1, simulator.FaultCursorLoop),
			errText: "the API repeated the pagination cursor"},
		{name: "empty pages that say has_next", sim: faults(0.3, simulator.FaultEmptyPage)},
		{name: "the same event on two pages", sim: faults(0.3, simulator.FaultDupPage)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sim, base := startSim(t, func(c *simulator.Config) {
				c.Events, c.From, c.To = 2500, day0(), day0().AddDate(0, 0, 1)
				tc.sim(c)
			})
			cfg := testConfig(t, base)
			cfg.Source.MaxRetries = 25
			if tc.retries > 0 {
				cfg.Source.MaxRetries = tc.retries
			}
			if tc.rps > 0 {
				cfg.Source.RequestsPerSecond = tc.rps
			}
			if tc.timeout > 0 {
				cfg.Source.Timeout = tc.timeout
			}
			from, to := day0(), day0().AddDate(0, 0, 1)
			sum, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: from, To: to}, false)
			got := exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir)
			if tc.errText != "" {
				require.ErrorContains(t, err, tc.errText)
				t.Logf("the run failed with: %v", err)
				require.Empty(t, got, "a failed day writes no file")
				require.Empty(t, sum.Days)
				return
			}
			require.NoError(t, err)
			st := sim.Stats()
			require.Zero(t, st.Blocked, "the token was blocked")
			require.Positive(t, st.Faults+st.Status429, "the server misbehaved")
			exporttest.Compare(t, exporttest.Expected(sim, from, to), got, "acme")
		})
	}
}

func faults(rate float64, kinds ...string) func(*simulator.Config) {
	return func(c *simulator.Config) {
		c.FaultRate, c.Faults = rate, kinds
	}
}

// TestAllFaultsAtOnce: every fault a client can get through, mixed, at a
// moderate rate, with a rate limit below the client's: the exact event set.
func TestAllFaultsAtOnce(t *testing.T) {
	t.Parallel()
	kinds := slices.DeleteFunc(simulator.AllFaults(), func(k string) bool {
		return k == simulator.FaultCursorLoop || k == simulator.FaultSlow
	})
	sim, base := startSim(t, func(c *simulator.Config) {
		c.Events = 6000
		c.RateLimit, c.Burst, c.BlockAfter, c.BlockFor = 60, 5, 30, time.Minute
		faults(0.15, kinds...)(c)
	})
	cfg := testConfig(t, base)
	cfg.Source.RequestsPerSecond = 90
	cfg.Source.MaxRetries = 25
	from, to := day0(), day0().AddDate(0, 0, 3)
	sum, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: from, To: to}, false)
	require.NoError(t, err)
	require.Len(t, sum.Days, 3)
	st := sim.Stats()
	require.Greater(t, st.Faults, len(kinds), "faults were injected")
	require.Zero(t, st.Blocked, "the token was blocked")
	exporttest.Compare(t, exporttest.Expected(sim, from, to), exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir), "acme")
}
