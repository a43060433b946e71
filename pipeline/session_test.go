package pipeline_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinkset"
	"github.com/pachca-export/pachca-export/testkit/exporttest"
)

// TestSessionRunsTwoPlans: one session executes two plans with one client,
// so what the limiter learnt of the server's limit in the first plan holds
// in the second, which meets fewer 429s; both days are exported exactly.
func TestSessionRunsTwoPlans(t *testing.T) {
	sim, base := startSim(t, func(c *simulator.Config) {
		c.Events, c.RateLimit, c.Burst = 6000, 25, 5
	})
	cfg := testConfig(t, base)
	cfg.Source.RequestsPerSecond = 200 // far above the server's 25
	s, err := pipeline.Open(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)})
	require.NoError(t, err)
	defer func() { require.NoError(t, s.Close(context.Background())) }()
	limiter := s.Client().Limiter()

	plan1, err := s.Plan(pipeline.Range{From: day0(), To: day0().AddDate(0, 0, 1)})
	require.NoError(t, err)
	sum1, err := s.Execute(t.Context(), plan1)
	require.NoError(t, err)
	require.Positive(t, sum1.Throttled, "the first plan meets the server's limit")
	learnt := limiter.Rate()
	require.Less(t, learnt, 200.0, "a 429 lowered the rate")

	plan2, err := s.Plan(pipeline.Range{From: day0().AddDate(0, 0, 1), To: day0().AddDate(0, 0, 2)})
	require.NoError(t, err)
	sum2, err := s.Execute(t.Context(), plan2)
	require.NoError(t, err)
	require.Same(t, limiter, s.Client().Limiter(), "one limiter for every plan")
	require.Less(t, sum2.Throttled, sum1.Throttled, "the second plan starts from what the first learnt")
	require.Equal(t, s.Client().Stats().Requests.Load(), sum1.Requests+sum2.Requests, "each summary counts its own plan")
	require.NotEqual(t, sum1.RunID, sum2.RunID)

	exporttest.Compare(t, exporttest.Expected(sim, day0(), day0().AddDate(0, 0, 2)),
		exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir), "acme")
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
