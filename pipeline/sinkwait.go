package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// sinkWait is the sink call a delivery is in (opening a day, writing to
// it, committing it), for the progress log: a sink whose server accepts
// connections and then never answers (a paused MinIO, a frozen broker)
// holds a run for as long as its own timeouts allow (an S3 sink's
// timeout × max_attempts: 25 minutes by default), and "delivering" alone
// did not say on what. A follow loop's watchdog reads it too
// (Session.SinkCall): a call past its deadline ignores its context.
type sinkWait struct {
	mu       sync.Mutex
	seq      uint64 // counts calls, so that a warning is given once per call
	sink     string
	step     string
	day      string
	since    time.Time
	deadline time.Time // of the call's context; zero without one
}

// enter records that a call to sink's step for day begins, under a context
// with deadline (zero: none); the returned function records its end.
func (w *sinkWait) enter(sink, step, day string, deadline time.Time) (leave func()) {
	w.mu.Lock()
	w.seq++
	seq := w.seq
	w.sink, w.step, w.day, w.since, w.deadline = sink, step, day, time.Now(), deadline
	w.mu.Unlock()
	return func() {
		w.mu.Lock()
		if w.seq == seq {
			w.sink = ""
		}
		w.mu.Unlock()
	}
}

// waiting is the call under way, if any, and since when.
type waiting struct {
	seq             uint64
	sink, step, day string
	since, deadline time.Time
}

func (w *sinkWait) current() (waiting, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.sink == "" {
		return waiting{}, false
	}
	return waiting{w.seq, w.sink, w.step, w.day, w.since, w.deadline}, true
}

// sinkDeadlineKey carries the bound of a plan's sink calls (WithSinkDeadline).
type sinkDeadlineKey struct{}

type sinkDeadline struct {
	at    func(start time.Time) time.Time
	cause error
}

// WithSinkDeadline returns ctx under which each sink call of a plan (open,
// write, commit, relink, read) gets a context that ends at at(start),
// start being when the call begins, with cause (context.Cause), which the
// call's error then names. A follow loop bounds its sink calls by
// follow.give_up_after so; the clean-up of a failed day (abort) keeps its
// own bound, as it runs after the deadline. The API's requests are not
// bounded by it.
func WithSinkDeadline(ctx context.Context, at func(start time.Time) time.Time, cause error) context.Context {
	return context.WithValue(ctx, sinkDeadlineKey{}, sinkDeadline{at, cause})
}

// sinkCall begins a call to sink's step for day: its context, under the
// plan's sink deadline if any, recorded for the progress log and the
// watchdog. done(err) records its end and returns err, saying when the
// call was cut by the sink deadline.
func (r *runner) sinkCall(ctx context.Context, sink, step, day string) (context.Context, func(error) error) {
	return r.waiting.call(ctx, sink, step, day)
}

// sinkCall is runner.sinkCall for what the session does with its sinks
// outside a delivery: the claims and checks of opening them (step "claim"
// or "check", day empty). A follow loop's watchdog sees them so, and the
// sink deadline bounds them: a file sink's claim on a hung NFS mount at the
// start of a follow loop held the process for ever.
func (s *Session) sinkCall(ctx context.Context, sink, step string) (context.Context, func(error) error) {
	return s.waiting.call(ctx, sink, step, "")
}

// call is sinkCall on w.
func (w *sinkWait) call(ctx context.Context, sink, step, day string) (context.Context, func(error) error) {
	cancel := context.CancelFunc(func() {})
	var cause error
	if b, ok := ctx.Value(sinkDeadlineKey{}).(sinkDeadline); ok {
		cause = b.cause
		ctx, cancel = context.WithDeadlineCause(ctx, b.at(time.Now()), cause)
	}
	deadline, _ := ctx.Deadline()
	leave := w.enter(sink, step, day, deadline)
	return ctx, func(err error) error {
		leave()
		if err != nil && cause != nil && errors.Is(context.Cause(ctx), cause) {
			if errors.Is(err, cause) || strings.Contains(err.Error(), cause.Error()) {
				err = fmt.Errorf("%s: %w", step, err) // the sink named the cause (s3)
			} else {
				err = fmt.Errorf("%s: %w: %w", step, cause, err)
			}
		}
		cancel()
		return err
	}
}

// SinkCall is a sink call under way: which sink, which step (open, read,
// write, commit, relink, abort; claim or check, of no day, when the sinks
// are opened), for which day, since when, and until when its context runs
// (zero: no deadline).
type SinkCall struct {
	Sink, Step, Day string
	Since, Deadline time.Time
}

// SinkCall reports the sink call the session's plan is in, if any. Safe
// from any goroutine: a follow loop's watchdog reads it beside Execute.
func (s *Session) SinkCall() (SinkCall, bool) {
	w, ok := s.waiting.current()
	return SinkCall{Sink: w.sink, Step: w.step, Day: w.day, Since: w.since, Deadline: w.deadline}, ok
}
