package pipeline_test

import (
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/simulator"
)

// TestConcurrencyBoundIsTold: a run far from the API (every answer 100 ms
// late) with one worker and 50 requests per second can send about 10 a
// second: the log says once that source.concurrency bounds the rate and
// which value keeps it (was: nothing said why the run sent a fifth of its
// requests_per_second).
func TestConcurrencyBoundIsTold(t *testing.T) {
	_, base := startSim(t, func(c *simulator.Config) {
		c.Events, c.Latency = 1500, 100*time.Millisecond
		c.From, c.To = day0(), day0().AddDate(0, 0, 1)
	})
	cfg := testConfig(t, base)
	cfg.Source.RequestsPerSecond, cfg.Source.Concurrency = 50, 1
	log, logs := logBuffer()
	_, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: log, ProgressEvery: 25 * time.Millisecond},
		pipeline.Range{From: day0(), To: day0().AddDate(0, 0, 1)}, false)
	require.NoError(t, err)
	re := regexp.MustCompile(`msg="source.concurrency bounds the request rate[^\n]* concurrency=1 [^\n]*suggested_concurrency=(\d+)`)
	all := re.FindAllStringSubmatch(logs.String(), -1)
	require.Len(t, all, 1, logs.String())
	// 50/s × 100 ms = 5 under way, with the fetcher's margin: 6 or more.
	n, err := strconv.Atoi(all[0][1])
	require.NoError(t, err)
	require.GreaterOrEqual(t, n, 6)
	require.LessOrEqual(t, n, 10)
}

// TestConcurrencyBoundNotToldNearby: an API that answers at once never
// gets the warning: the rate, not the workers, bounds that run.
func TestConcurrencyBoundNotToldNearby(t *testing.T) {
	_, base := startSim(t, func(c *simulator.Config) {
		c.Events = 1500
		c.From, c.To = day0(), day0().AddDate(0, 0, 1)
	})
	cfg := testConfig(t, base)
	cfg.Source.RequestsPerSecond = 20
	log, logs := logBuffer()
	_, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: log, ProgressEvery: 50 * time.Millisecond},
		pipeline.Range{From: day0(), To: day0().AddDate(0, 0, 1)}, false)
	require.NoError(t, err)
	require.Contains(t, logs.String(), "msg=progress")
	require.NotContains(t, logs.String(), "source.concurrency bounds")
}
