package pipeline_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinkset"
	"github.com/pachca-export/pachca-export/testkit/logbuf"
	"github.com/pachca-export/pachca-export/transform"
)

// TestProgressLogETAUnknown: the progress log of a run that has fetched
// nothing (an API that does not answer) says the ETA is unknown, as the
// terminal's status line does with "ETA -", not "0s".
func TestProgressLogETAUnknown(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/oauth/token/info" {
			http.NotFound(w, r) // not told: the run goes on
			return
		}
		<-r.Context().Done()
	}))
	defer api.Close()
	cfg := testConfig(t, api.URL)
	var logs logbuf.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctx := stopWhenLogged(t, &logs, "msg=progress", 3)
	from := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -2)
	_, err := pipeline.Run(ctx, pipeline.Options{Config: cfg, Logger: log, ProgressEvery: 200 * time.Millisecond},
		pipeline.Range{From: from, To: from.AddDate(0, 0, 1)}, false)
	require.Error(t, err)
	require.Contains(t, logs.String(), "msg=progress")
	require.Contains(t, logs.String(), "covered_pct=0")
	require.Contains(t, logs.String(), "eta=unknown")
	require.NotContains(t, logs.String(), "eta=0s")
}

// TestProgressWhileDaysArePlanned: progress sampled every millisecond while
// the days of a long range are planned one after another: under -race, no
// read of a day's total outside the lock its planning writes it under
// (was: the count of planned days read them unlocked).
func TestProgressWhileDaysArePlanned(t *testing.T) {
	_, base := startSim(t, func(c *simulator.Config) { c.Events = 2000 })
	cfg := testConfig(t, base)
	log, logs := logBuffer()
	rng := pipeline.Range{From: day0().AddDate(0, 0, -60), To: day0().AddDate(0, 0, 3)}
	_, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: log, ProgressEvery: time.Millisecond}, rng, false)
	require.NoError(t, err)
	require.Contains(t, logs.String(), "msg=progress")
}

// TestProgressLogWhileDelivering: once every window is fetched and a sink
// still holds the day back, the progress log says the run is delivering,
// with the day not done (was: covered_pct=100 and eta=0s, which reads as
// done, while the run hung on the sink).
func TestProgressLogWhileDelivering(t *testing.T) {
	_, base := startSim(t, func(c *simulator.Config) { c.Events = 200 })
	cfg := testConfig(t, base)
	set, err := sinkset.Build(t.Context(), cfg.Sinks, nil)
	require.NoError(t, err)
	var logs logbuf.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctx := stopWhenLogged(t, &logs, "eta=delivering", 3)
	_, err = pipeline.Run(ctx, pipeline.Options{Config: cfg, Logger: log, ProgressEvery: 100 * time.Millisecond,
		Sinks: []sinks.Sink{hangingCommit(set.Sinks[0])}},
		pipeline.Range{From: day0(), To: day0().AddDate(0, 0, 1)}, false)
	require.Error(t, err)
	require.Contains(t, logs.String(), "covered_pct=100 days_done=0 days=1")
	require.Contains(t, logs.String(), "eta=delivering")
	require.NotContains(t, logs.String(), "eta=0s")
}

// stopWhenLogged is a context cancelled once the log holds n lines with
// want, or after a minute (was: a run of 1.5 s, which a loaded machine
// could spend before its fetching was done).
func stopWhenLogged(t *testing.T, logs *logbuf.Buffer, want string, n int) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	go func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for strings.Count(logs.String(), want) < n {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
		cancel()
	}()
	return ctx
}

// hangingCommit is a sink whose commits wait for the run's end.
func hangingCommit(s sinks.Sink) sinks.Sink {
	return commitSink{s, func(ctx context.Context, w sinks.Writer) (sinks.Result, error) {
		<-ctx.Done()
		return sinks.Result{}, errors.Join(ctx.Err(), w.Abort(context.Background()))
	}}
}

// TestProgressNamesTheSinkItWaitsFor: a sink call that does not return (an
// S3 endpoint or a Kafka broker that accepts connections and then never
// answers: a paused container, a suspended VM) is named once it lasts two
// progress intervals, with a warning and then in the progress lines, the
// sink, the step and the day (was: "eta=delivering" every 30 s and nothing
// else for the 25 minutes an S3 sink's timeouts allow by default).
func TestProgressNamesTheSinkItWaitsFor(t *testing.T) {
	_, base := startSim(t, func(c *simulator.Config) { c.Events = 200 })
	cfg := testConfig(t, base)
	set, err := sinkset.Build(t.Context(), cfg.Sinks, nil)
	require.NoError(t, err)
	var logs logbuf.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	const warning = "a sink has not answered for a while"
	// The commit returns once the run has named it, or fails after a
	// bound that only a run that never names it reaches.
	stalled := commitSink{set.Sinks[0], func(ctx context.Context, w sinks.Writer) (sinks.Result, error) {
		bound := time.After(20 * time.Second)
		for !strings.Contains(logs.String(), "waiting_for=") {
			select {
			case <-bound:
				return sinks.Result{}, errors.Join(errors.New("never named"), w.Abort(ctx))
			case <-time.After(10 * time.Millisecond):
			}
		}
		return w.Commit(ctx)
	}}
	_, err = pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: log, ProgressEvery: 50 * time.Millisecond,
		Sinks: []sinks.Sink{stalled}},
		pipeline.Range{From: day0(), To: day0().AddDate(0, 0, 1)}, false)
	require.NoError(t, err)
	name := set.Sinks[0].Name()
	day := day0().Format(time.DateOnly)
	require.Equal(t, 1, strings.Count(logs.String(), warning), "one warning for the call")
	require.Regexp(t, `level=WARN msg="`+warning+`.*" sink="`+regexp.QuoteMeta(name)+`" step=commit day=`+day+` waiting=`, logs.String())
	require.Regexp(t, `msg=progress .* eta=delivering waiting_for="`+regexp.QuoteMeta(name)+`: commit `+day+`" waiting=`, logs.String())
}

// TestProgressLogETAWhileDelivering: once every window is fetched, the
// progress log counts the events handed to the sinks and gives the time
// the rest of the delivery takes at its pace (was: "eta=delivering" and
// nothing that moved for the 88 s a day of 5,000,000 events took to
// write after its fetch). The sink writes one window per progress line.
func TestProgressLogETAWhileDelivering(t *testing.T) {
	_, base := startSim(t, func(c *simulator.Config) { c.Events = 20000 })
	cfg := testConfig(t, base)
	set, err := sinkset.Build(t.Context(), cfg.Sinks, nil)
	require.NoError(t, err)
	var logs logbuf.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	_, err = pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: log, ProgressEvery: 50 * time.Millisecond,
		Sinks: []sinks.Sink{pacedSink{set.Sinks[0], &logs}}},
		pipeline.Range{From: day0(), To: day0().AddDate(0, 0, 1)}, false)
	require.NoError(t, err)
	require.Regexp(t, `msg=progress events=\d+ delivered=[1-9]\d* .*covered_pct=100 days_done=0 days=1 .* eta=\d+(m\d+)?s\n`, logs.String())
}

// pacedSink is a sink whose writes each wait for a progress line more.
type pacedSink struct {
	sinks.Sink
	logs *logbuf.Buffer
}

func (s pacedSink) Open(ctx context.Context, p sinks.Partition) (sinks.Writer, error) {
	w, err := s.Sink.Open(ctx, p)
	if err != nil {
		return nil, err
	}
	return &pacedWriter{Writer: w, logs: s.logs}, nil
}

type pacedWriter struct {
	sinks.Writer
	logs *logbuf.Buffer
}

func (w *pacedWriter) Write(ctx context.Context, recs []transform.Record) error {
	n := strings.Count(w.logs.String(), "msg=progress")
	for strings.Count(w.logs.String(), "msg=progress") == n {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return w.Writer.Write(ctx, recs)
}
