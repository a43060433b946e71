package pipeline_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/extract"
	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinkset"
	"github.com/pachca-export/pachca-export/testkit/exporttest"
)

// TestSessionRunsTwoPlans: one session executes two plans with one client,
// so what the limiter learnt of the server's limit in the first plan holds
// in the second, whose first request leaves at the learnt rate (not at
// source.requests_per_second, to meet the limit again); both days are
// exported exactly.
func TestSessionRunsTwoPlans(t *testing.T) {
	t.Parallel()
	sim, base := startSim(t, func(c *simulator.Config) {
		// Burst 1: no two requests closer than 40 ms, which the client's
		// first requests are however slow the machine (with a burst, only
		// a client that keeps up the rate for a while meets the limit).
		c.Events, c.RateLimit, c.Burst = 6000, 25, 1
	})
	cfg := testConfig(t, base)
	cfg.Source.RequestsPerSecond = 200 // far above the server's 25
	rt := &rateAtSend{next: http.DefaultTransport}
	s, err := pipeline.Open(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t), HTTPClient: &http.Client{Transport: rt}})
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close(context.Background())) }()
	limiter := s.Client().Limiter()
	rt.limiter.Store(limiter)

	plan1, err := s.Plan(pipeline.Range{From: day0(), To: day0().AddDate(0, 0, 1)})
	require.NoError(t, err)
	sum1, err := s.Execute(t.Context(), plan1)
	require.NoError(t, err)
	require.Positive(t, sum1.Throttled, "the first plan meets the server's limit")
	learnt := limiter.Rate()
	require.Less(t, learnt, 200.0, "a 429 lowered the rate")
	sent1 := len(rt.sent())

	plan2, err := s.Plan(pipeline.Range{From: day0().AddDate(0, 0, 1), To: day0().AddDate(0, 0, 2)})
	require.NoError(t, err)
	sum2, err := s.Execute(t.Context(), plan2)
	require.NoError(t, err)
	require.Same(t, limiter, s.Client().Limiter(), "one limiter for every plan")
	// The rate changes only on an answer: the first request of the second
	// plan shows the rate it started from. (Was: fewer 429s in the second
	// plan than in the first, which a busy machine's jitter can upset.)
	sent := rt.sent()
	require.Greater(t, len(sent), sent1, "the second plan sent requests")
	require.Equal(t, learnt, sent[sent1], "the second plan starts from what the first learnt")
	require.Equal(t, s.Client().Stats().Requests.Load(), sum1.Requests+sum2.Requests, "each summary counts its own plan")
	require.NotEqual(t, sum1.RunID, sum2.RunID)

	exporttest.Compare(t, exporttest.Expected(sim, day0(), day0().AddDate(0, 0, 2)),
		exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir), "acme")
}

// rateAtSend records, as each request leaves, the pacing rate of the
// limiter it holds (once set).
type rateAtSend struct {
	next    http.RoundTripper
	limiter atomic.Pointer[extract.Limiter]
	mu      sync.Mutex
	rates   []float64
}

func (r *rateAtSend) RoundTrip(req *http.Request) (*http.Response, error) {
	if l := r.limiter.Load(); l != nil {
		rate := l.Rate()
		r.mu.Lock()
		r.rates = append(r.rates, rate)
		r.mu.Unlock()
	}
	return r.next.RoundTrip(req)
}

// sent is the rate at each request sent so far, in the order they left.
func (r *rateAtSend) sent() []float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.rates)
}

// failingClose is a sink whose Close fails, as a producer that cannot flush
// what it buffered would.
type failingClose struct{ sinks.Sink }

func (f failingClose) Close(ctx context.Context) error {
	return errors.Join(f.Sink.Close(ctx), errors.New("flush: broker gone"))
}

// TestFailingCloseFailsRun: a sink that cannot close cleanly fails the run,
// even though every day was committed.
func TestFailingCloseFailsRun(t *testing.T) {
	_, base := startSim(t, func(c *simulator.Config) { c.Events = 1000 })
	cfg := testConfig(t, base)
	set, err := sinkset.Build(t.Context(), cfg.Sinks, nil)
	require.NoError(t, err)
	set.Sinks[0] = failingClose{set.Sinks[0]}
	sum, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t), Sinks: set.Sinks},
		pipeline.Range{From: day0(), To: day0().AddDate(0, 0, 1)}, false)
	require.ErrorContains(t, err, "flush: broker gone")
	require.ErrorContains(t, err, "close ndjson ")
	require.Len(t, sum.Days, 1, "the summary still says what was delivered")
}
