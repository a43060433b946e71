package follow_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/follow"
	"github.com/pachca-export/pachca-export/internal/failure"
	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/filesink"
	"github.com/pachca-export/pachca-export/sinkset"
	"github.com/pachca-export/pachca-export/state"
	"github.com/pachca-export/pachca-export/testkit/exporttest"
	"github.com/pachca-export/pachca-export/testkit/logbuf"
	"github.com/pachca-export/pachca-export/transform"
)

// slowSink is a file sink whose writes, once hang is set, block until
// release is closed: ignoring their context, as a syscall on a hung NFS
// mount does, or, with honour, returning when it ends, as the S3 SDK and
// kafka-go do. Each commit first waits commitDelay.
type slowSink struct {
	*filesink.Sink
	honour      bool
	commitDelay time.Duration
	hang        atomic.Bool
	hung        chan struct{} // closed at the first write that hangs
	once        sync.Once
	release     chan struct{}
}

// slowSinkConfig is the test configuration of base with give_up_after
// 2 s, and its file sink wrapped in a slowSink.
func slowSinkConfig(t *testing.T, base string) (*config.Config, *slowSink) {
	t.Helper()
	cfg := testConfig(t, base)
	cfg.Follow.GiveUpAfter = 2 * time.Second
	require.NoError(t, cfg.Validate())
	built, err := sinkset.BuildOne(t.Context(), cfg.Sinks[0], nil)
	require.NoError(t, err)
	fs, ok := built.(*filesink.Sink)
	require.True(t, ok, "a file sink")
	return cfg, &slowSink{Sink: fs, hung: make(chan struct{}), release: make(chan struct{})}
}

func (s *slowSink) Open(ctx context.Context, p sinks.Partition) (sinks.Writer, error) {
	w, err := s.Sink.Open(ctx, p)
	if err != nil {
		return nil, err
	}
	return slowWriter{w, s}, nil
}

type slowWriter struct {
	sinks.Writer
	s *slowSink
}

func (w slowWriter) Write(ctx context.Context, recs []transform.Record) error {
	if !w.s.hang.Load() {
		return w.Writer.Write(ctx, recs)
	}
	w.s.once.Do(func() { close(w.s.hung) })
	if w.s.honour {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-w.s.release:
		}
	} else {
		<-w.s.release
	}
	return errors.New("input/output error")
}

func (w slowWriter) Commit(ctx context.Context) (sinks.Result, error) {
	time.Sleep(w.s.commitDelay)
	if err := ctx.Err(); err != nil {
		return sinks.Result{}, errors.Join(err, w.Abort(ctx))
	}
	return w.Writer.Commit(ctx)
}

// TestFollowGivesUpOnAHungSink: a sink write that never returns ends the
// loop about follow.give_up_after after it began, with an error naming the
// sink, the step and the day (was: the loop waited for as long as the
// sink's own bounds allowed: for ever, for a file sink on a hung mount):
// through the call's deadline for a sink that honours its context, through
// the watchdog, leaving the call behind, for one that does not. The next
// start redoes the abandoned cycle: every event once in the files.
func TestFollowGivesUpOnAHungSink(t *testing.T) {
	for _, tc := range []struct {
		name   string
		honour bool
		want   string
	}{
		{"ignores its context", false, "it ignores its deadline"},
		{"honours its context", true, "write: no answer within follow.give_up_after (2s)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, sim, base := startLive(t, time.Hour, simulator.Live{Rate: 20})
			cfg, hs := slowSinkConfig(t, base)
			hs.honour = tc.honour
			released := false
			release := func() {
				if !released {
					released = true
					close(hs.release)
				}
			}
			defer release()
			before := goleak.IgnoreCurrent()
			start := c.now().Add(-time.Second).Truncate(time.Millisecond)
			done := make(chan error, 1)
			go func() {
				done <- follow.Run(t.Context(), pipeline.Options{Config: cfg, Logger: logger(t), Now: c.now, Sinks: []sinks.Sink{hs}},
					follow.Options{From: start})
			}()
			waitFor(t, "a committed cycle", func() bool { return position(t, cfg).Seq >= 1 })
			hs.hang.Store(true)
			select {
			case <-hs.hung:
			case <-time.After(patience):
				t.Fatal("timed out waiting for a write")
			}
			var err error
			select {
			case err = <-done:
			case <-time.After(patience):
				t.Fatal("the loop went on waiting for the hung sink")
			}
			t.Log(err)
			require.ErrorContains(t, err, tc.want)
			require.ErrorContains(t, err, hs.Name())
			require.ErrorContains(t, err, c.now().Format(time.DateOnly))
			require.False(t, failure.IsUsage(err), "exit 1: %v", err)
			var stuck *follow.StuckSinkError
			require.Equal(t, !tc.honour, errors.As(err, &stuck), "%v", err)
			require.NotNil(t, position(t, cfg).Pending, "the abandoned cycle is redone at the next start")

			// The call returns at last (the mount comes back): what the
			// abandoned cycle goes on to do ends with it.
			release()
			waitFor(t, "the abandoned cycle to end", func() bool {
				return goleak.Find(before, goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
					goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
					goleak.IgnoreTopFunction("internal/poll.runtime_pollWait")) == nil
			})

			f := startFollow(t, cfg, c, follow.Options{})
			sim.StopLive()
			stopped := c.now()
			waitFor(t, "the watermark to pass the last event", func() bool {
				return position(t, cfg).Watermark.After(stopped.Add(cfg.Follow.Lookback))
			})
			require.NoError(t, f.stop())
			want := exporttest.Expected(sim, start, position(t, cfg).Watermark)
			require.NotEmpty(t, want)
			exporttest.Compare(t, want, exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir), "acme")
		})
	}
}

// TestFollowSlowCycleNotCut: a cycle that lasts longer than
// follow.give_up_after while every sink call answers (seals of three days,
// each commit taking a second) is no failure: the bound of a sink call in
// a cycle that is not failing runs from the call's start, not the cycle's.
func TestFollowSlowCycleNotCut(t *testing.T) {
	sim, base := startSim(t, simulator.DefaultConfig())
	t.Cleanup(func() { sim.Close() })
	cfg, hs := slowSinkConfig(t, base)
	hs.commitDelay = time.Second
	var logs logbuf.Buffer
	today := time.Now().UTC().Truncate(24 * time.Hour)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- follow.Run(ctx, pipeline.Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(&logs, nil)), Sinks: []sinks.Sink{hs}},
			follow.Options{From: today.AddDate(0, 0, -3)})
	}()
	// Oldest first: the day before today's seal comes last.
	yesterday := today.AddDate(0, 0, -1).Format(time.DateOnly)
	waitFor(t, "the days to be sealed, or the loop to end", func() bool {
		if len(done) > 0 {
			return true
		}
		v, err := state.Peek(cfg.State.Dir, pipeline.Identity(cfg))
		if err != nil {
			return false // not created yet
		}
		ex, err := v.Exported()
		require.NoError(t, err)
		_, ok := ex[yesterday]
		return ok
	})
	require.Empty(t, done, "the loop ended")
	cancel()
	require.NoError(t, <-done)
	require.NotContains(t, logs.String(), "cycle failed")
	require.True(t, strings.Contains(logs.String(), "follow: day sealed"))
}

// claimSink is a file sink whose claims go through hook first: a claim
// that hangs ignoring its context (a hung NFS mount) or honouring it (the
// S3 SDK, kafka-go), or fails.
type claimSink struct {
	*filesink.Sink
	hook    func(ctx context.Context, c sinks.Claim) error
	calls   atomic.Int32
	hung    chan struct{} // closed at the first claim that hangs
	once    sync.Once
	release chan struct{}
}

func newClaimSink(t *testing.T, fs *filesink.Sink) *claimSink {
	s := &claimSink{Sink: fs, hung: make(chan struct{}), release: make(chan struct{})}
	t.Cleanup(func() { close(s.release) })
	return s
}

func (s *claimSink) Claim(ctx context.Context, c sinks.Claim) (sinks.ClaimResult, error) {
	s.calls.Add(1)
	if err := s.hook(ctx, c); err != nil {
		return sinks.ClaimResult{}, err
	}
	return s.Sink.Claim(ctx, c)
}

// hang blocks until release, or with honour until ctx ends too.
func (s *claimSink) hang(ctx context.Context, honour bool) error {
	s.once.Do(func() { close(s.hung) })
	if honour {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.release:
		}
	} else {
		<-s.release
	}
	return errors.New("input/output error")
}

// get is the status of GET url, answered within 5 s.
func get(t *testing.T, url string) int {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(url)
	require.NoError(t, err, "GET %s", url)
	resp.Body.Close()
	return resp.StatusCode
}

// TestFollowStartGivesUpOnAHungSink: a sink whose claim does not answer
// when the loop opens its sinks at the start, or at the first cycle, ends
// the process about follow.give_up_after after the start, with an error
// naming the sink and the claim (was: a claim that ignores its context, a
// file sink on a hung NFS mount, held the process for ever; one that
// honours it, 30 s at the start and 30 s more in the first cycle, whatever
// give_up_after). /healthz answers meanwhile, /readyz is 503.
func TestFollowStartGivesUpOnAHungSink(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		hook  func(s *claimSink) func(ctx context.Context, c sinks.Claim) error
		stuck bool
		want  string
	}{
		{"start, ignores its context", func(s *claimSink) func(context.Context, sinks.Claim) error {
			return func(ctx context.Context, _ sinks.Claim) error { return s.hang(ctx, false) }
		}, true, "has not answered its claim for"},
		{"start, honours its context", func(s *claimSink) func(context.Context, sinks.Claim) error {
			return func(ctx context.Context, _ sinks.Claim) error { return s.hang(ctx, true) }
		}, false, "could not be opened within follow.give_up_after (2s), giving up: sinks[0] ndjson"},
		{"first cycle, after a failure at the start", func(s *claimSink) func(context.Context, sinks.Claim) error {
			return func(ctx context.Context, _ sinks.Claim) error {
				if s.calls.Load() == 1 {
					return errors.New("connection reset by peer")
				}
				return s.hang(ctx, false)
			}
		}, true, "has not answered its claim for"},
		{"first delivery, marking the root", func(s *claimSink) func(context.Context, sinks.Claim) error {
			return func(ctx context.Context, c sinks.Claim) error {
				if c.Create {
					return s.hang(ctx, false)
				}
				return nil
			}
		}, true, "has not answered its claim for"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, _, base := startLive(t, time.Hour, simulator.Live{Rate: 20})
			cfg, hs := slowSinkConfig(t, base)
			cs := newClaimSink(t, hs.Sink)
			cs.hook = tc.hook(cs)
			addr := make(chan string, 1)
			done := make(chan error, 1)
			go func() {
				done <- follow.Run(t.Context(), pipeline.Options{Config: cfg, Logger: logger(t), Now: c.now, Sinks: []sinks.Sink{cs}},
					follow.Options{Listen: "127.0.0.1:0", Listening: func(a string) { addr <- a }})
			}()
			endpoints := "http://" + <-addr
			select {
			case <-cs.hung:
			case <-time.After(patience):
				t.Fatal("timed out waiting for the claim to hang")
			}
			if len(done) == 0 {
				require.Equal(t, http.StatusOK, get(t, endpoints+"/healthz"))
				require.Equal(t, http.StatusServiceUnavailable, get(t, endpoints+"/readyz"))
			}
			var err error
			select {
			case err = <-done:
			case <-time.After(30 * time.Second): // give_up_after is 2 s
				t.Fatal("the process went on waiting for the hung sink")
			}
			t.Log(err)
			require.ErrorContains(t, err, tc.want)
			require.ErrorContains(t, err, hs.Name())
			require.False(t, failure.IsUsage(err), "exit 1: %v", err)
			var stuck *follow.StuckSinkError
			require.Equal(t, tc.stuck, errors.As(err, &stuck), "%v", err)
			// The state's lock is released: a new process takes it.
			st, err := state.Open(cfg.State.Dir, pipeline.Identity(cfg))
			require.NoError(t, err)
			require.NoError(t, st.Close())
		})
	}
}

// TestFollowStopWhileASinkIgnoresItsContext: a stop (SIGTERM) while a sink
// call ignores its context, at the start or in a cycle, is a clean stop
// within seconds, the call left behind (was: the process waited for the
// call's deadline, give_up_after from its start, an hour here; at the
// start, for ever).
func TestFollowStopWhileASinkIgnoresItsContext(t *testing.T) {
	t.Parallel()
	for _, where := range []string{"start", "cycle"} {
		t.Run(where, func(t *testing.T) {
			t.Parallel()
			c, _, base := startLive(t, time.Hour, simulator.Live{Rate: 20})
			cfg, hs := slowSinkConfig(t, base)
			cfg.Follow.GiveUpAfter = time.Hour
			require.NoError(t, cfg.Validate())
			cs := newClaimSink(t, hs.Sink)
			cs.hook = func(ctx context.Context, _ sinks.Claim) error {
				if where == "start" {
					return cs.hang(ctx, false)
				}
				return nil
			}
			hung := cs.hung
			var sink sinks.Sink = cs
			if where == "cycle" {
				defer close(hs.release)
				hs.hang.Store(true)
				hung, sink = hs.hung, hs
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				done <- follow.Run(ctx, pipeline.Options{Config: cfg, Logger: logger(t), Now: c.now, Sinks: []sinks.Sink{sink}}, follow.Options{})
			}()
			select {
			case <-hung:
			case <-time.After(patience):
				t.Fatal("timed out waiting for the sink to hang")
			}
			cancel()
			select {
			case err := <-done:
				require.NoError(t, err, "a clean stop")
			case <-time.After(30 * time.Second): // the grace is 5 s
				t.Fatal("the stop went on waiting for the hung sink")
			}
			if where == "cycle" {
				require.NotNil(t, position(t, cfg).Pending, "the abandoned cycle is redone at the next start")
			}
		})
	}
}
