package follow_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/follow"
	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/filesink"
	"github.com/pachca-export/pachca-export/sinkset"
	"github.com/pachca-export/pachca-export/testkit/exporttest"
	"github.com/pachca-export/pachca-export/testkit/logbuf"
)

// TestFollowLongHealthyCycleFailsOnce: a cycle that reads a flood of
// events for longer than follow.give_up_after (here 3,000 events at 20
// requests a second, 1 s), healthy until one failure past give_up_after
// into it, goes on as any cycle does:
//   - a request answered 500 once is retried (was: not retried, "out of
//     time to retry", the deadline of its retries being the cycle's start
//     plus give_up_after);
//   - a sink's commit failing once fails the cycle, and the next one
//     commits (was: the loop ended at once, "cycles have failed for 3s",
//     counting the failures from the long cycle's start).
//
// Every event then is in the files once.
func TestFollowLongHealthyCycleFailsOnce(t *testing.T) {
	for _, tc := range []struct {
		name         string
		apiFault     bool
		cycleFailure bool // the fault fails a cycle (logged), the next commits
	}{
		{"a request fails", true, false},
		{"a sink fails", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newClock(2 * time.Hour) // the hour read lies within one UTC day
			start := c.now().Add(-time.Hour).Truncate(time.Second)
			sc := simulator.DefaultConfig()
			sc.Events, sc.From, sc.To, sc.ClockOffset = 3000, start, c.now().Add(-10*time.Second), c.offset
			sc.Faults, sc.Midnight = nil, false
			sim, base := startSim(t, sc)
			t.Cleanup(func() { sim.Close() })
			// One 500, to the first request once the cycle has gone on for
			// longer than give_up_after.
			var first atomic.Int64
			var faulted atomic.Bool
			proxy := rewritingProxy(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasSuffix(r.URL.Path, "/audit_events") {
					first.CompareAndSwap(0, time.Now().UnixNano())
					if tc.apiFault && time.Since(time.Unix(0, first.Load())) > 2*time.Second && faulted.CompareAndSwap(false, true) {
						http.Error(w, `{"errors":[{"message":"boom"}]}`, http.StatusInternalServerError)
						return
					}
				}
				sim.Handler().ServeHTTP(w, r)
			}), func(_ *http.Request, _ int, body []byte) []byte { return body })
			u, err := url.Parse(base)
			require.NoError(t, err)
			cfg := testConfig(t, proxy.URL+u.Path)
			cfg.Source.RequestsPerSecond = 20 // 60 pages: 3 s at least
			cfg.Follow.Interval, cfg.Follow.GiveUpAfter = 200*time.Millisecond, time.Second
			require.NoError(t, cfg.Validate())
			built, err := sinkset.BuildOne(t.Context(), cfg.Sinks[0], nil)
			require.NoError(t, err)
			fs, ok := built.(*filesink.Sink)
			require.True(t, ok, "a file sink")
			sink := &failOnceSink{Sink: fs, fail: !tc.apiFault}

			var logs logbuf.Buffer
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				done <- follow.Run(ctx, pipeline.Options{Config: cfg, Now: c.now, Logger: slog.New(slog.NewTextHandler(&logs, nil)), Sinks: []sinks.Sink{sink}},
					follow.Options{From: start})
			}()
			waitFor(t, "a committed cycle, or the loop to end", func() bool {
				return len(done) > 0 || position(t, cfg).Seq >= 1
			})
			if len(done) > 0 {
				t.Fatalf("the loop ended: %v\n%s", <-done, logs.String())
			}
			cancel()
			require.NoError(t, <-done)
			require.True(t, tc.apiFault == faulted.Load(), "the fault came")
			require.Equal(t, tc.cycleFailure, strings.Contains(logs.String(), "follow: cycle failed"), logs.String())
			want := exporttest.Expected(sim, start, position(t, cfg).Watermark)
			require.Greater(t, len(want), 2000)
			exporttest.Compare(t, want, exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir), "acme")
		})
	}
}

// failOnceSink is a file sink whose first commit, with fail, fails.
type failOnceSink struct {
	*filesink.Sink
	fail bool
	once sync.Once
}

func (s *failOnceSink) Open(ctx context.Context, p sinks.Partition) (sinks.Writer, error) {
	w, err := s.Sink.Open(ctx, p)
	if err != nil {
		return nil, err
	}
	return failOnceWriter{w, s}, nil
}

type failOnceWriter struct {
	sinks.Writer
	s *failOnceSink
}

func (w failOnceWriter) Commit(ctx context.Context) (sinks.Result, error) {
	failed := false
	if w.s.fail {
		w.s.once.Do(func() { failed = true })
	}
	if failed {
		return sinks.Result{}, errors.Join(errors.New("input/output error"), w.Abort(ctx))
	}
	return w.Writer.Commit(ctx)
}
