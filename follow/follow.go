// Package follow is the follow mode, a continuous feed for a SIEM: one
// pipeline session that executes a plan every interval. Each cycle exports
// what the API published since the last one, [watermark - lookback, now -
// lag), delivering only the events not delivered before, so that events the
// API publishes late are caught without duplicates; a day whose end is past
// lag + lookback is sealed: read once more whole, completed, compacted into
// the one-file-per-day layout and recorded as exported, as `run` would.
//
// Its position lives in the state (state.Follow): a cycle is recorded as
// pending before it delivers and committed after every sink committed it,
// so a process killed at any moment redoes exactly the pending cycle, and
// file sinks end up with every event once.
package follow

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"time"

	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/extract"
	"github.com/pachca-export/pachca-export/internal/failure"
	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/state"
)

// Options are what the command line adds to the configuration.
type Options struct {
	// From is where a loop that never ran on this state starts; zero for
	// the day after the last exported one, or the start of today.
	From time.Time
	// Listen overrides follow.listen.
	Listen string
	// Listening, when set, is called once the endpoints answer, before the
	// session opens (addr: where; not called without an address).
	Listening func(addr string)
	// CycleEvents, when set, replaces maxCycleEvents (tests).
	CycleEvents int
	// Ready, when set, is called once the loop has loaded its position and
	// its endpoints report it (tests).
	Ready func(addr string)
	// Redact, when set, removes the secrets from the error /readyz shows
	// of a failing cycle, as the command removes them from every line it
	// prints (the log's Logger included): the error may quote a page that
	// echoes what the request sent.
	Redact func(string) string
}

// grace is how long a cycle in progress may go on after a stop was asked
// for, before it is abandoned (and redone by the next start).
const grace = 5 * time.Second

// alertsFile holds the recent events of the alert rules across cycles.
const alertsFile = "alerts-recent.json"

// Run opens a session and follows until ctx ends (SIGTERM, SIGINT, SIGHUP), which
// is a clean stop (nil): the cycle in progress commits or is abandoned
// within a few seconds. It returns an error for a permanent failure (a
// rejected token, a damaged state) or when cycles have failed for longer
// than follow.give_up_after.
func Run(ctx context.Context, po pipeline.Options, o Options) (err error) {
	// What was asked is checked, and the endpoints' address bound, before
	// anything is written to the state: a mistake is an exit 2 that leaves
	// no position behind for the corrected command to be refused by.
	now := po.Now
	if now == nil {
		now = time.Now
	}
	if t := now(); o.From.After(t) {
		return failure.Usagef("--from %s is later than now (%s): the follow mode exports what the API has published", fmtT(o.From), fmtT(t))
	}
	listen := o.Listen
	if listen != "" {
		if err := config.CheckListen(listen); err != nil {
			return failure.Usagef("--listen %q: %w", listen, err)
		}
	} else {
		listen = po.Config.Follow.Listen // checked with the configuration
	}
	var ep *endpoints
	addr := ""
	if listen != "" {
		ln, err := net.Listen("tcp", listen)
		if err != nil {
			return fmt.Errorf("follow: listen on %s (--listen or follow.listen): %w", listen, err)
		}
		log := po.Logger
		if log == nil {
			log = slog.New(slog.DiscardHandler)
		}
		ep = serve(ln, idleTimeout, log, o.Redact)
		defer ep.srv.Close()
		if addr = ep.srv.Addr; o.Listening != nil {
			o.Listening(addr)
		}
	}
	po.Mode = state.ModeFollow
	s, err := pipeline.Open(ctx, po)
	if err != nil {
		return err
	}
	defer func() {
		if stuck := (*StuckSinkError)(nil); errors.As(err, &stuck) {
			// A sink call is still under way on another goroutine: its sink
			// is not closed under it; the state's lock is released, as the
			// process's exit would.
			err = errors.Join(err, s.Abandon())
			return
		}
		if left := (*leftBehindError)(nil); errors.As(err, &left) {
			// A stop: the same, and a clean one.
			if po.Logger != nil {
				po.Logger.Warn(left.Error())
			}
			err = s.Abandon()
			return
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
		defer cancel()
		cerr := s.Close(cctx)
		if cerr != nil && err == nil && ctx.Err() != nil {
			// A clean stop: every committed cycle is durable, and what did
			// not close (messages of an abandoned cycle still in flight to
			// a broker that hangs) is redone by the next start.
			if po.Logger != nil {
				po.Logger.Warn("follow: stopped; the sinks did not close cleanly: the abandoned cycle is redone at the next start", "error", cerr)
			}
			return
		}
		err = errors.Join(err, cerr)
	}()
	// The sinks are claimed for this configuration now, so that a sink
	// holding another's data is refused before a position is recorded. A
	// sink that cannot be reached yet is the next cycles' to retry: the
	// start is the first failing cycle, give_up_after counts from it.
	started := time.Now()
	openErr := openSinks(ctx, s, po.Config.Follow, started)
	if openErr != nil {
		var stuck *StuckSinkError
		var left *leftBehindError
		switch {
		case errors.As(openErr, &stuck) || errors.As(openErr, &left) || failure.IsPermanent(openErr):
			return openErr
		case ctx.Err() != nil:
			if po.Logger != nil {
				po.Logger.Info("follow: stopped while the sinks were opening")
			}
			return nil
		case time.Since(started) >= po.Config.Follow.GiveUpAfter:
			return fmt.Errorf("follow: the sinks could not be opened within follow.give_up_after (%s), giving up: %w", po.Config.Follow.GiveUpAfter, openErr)
		}
		if po.Logger != nil {
			po.Logger.Warn("follow: the sinks are not ready; the next cycles try again, until follow.give_up_after from the start", "error", openErr)
		}
	}
	l, err := newLoop(ctx, s, po.Config, po.Logger, o)
	if err != nil {
		return err
	}
	if openErr != nil {
		l.failed(openErr, started)
	}
	l.m = newMetrics(func() float64 { return l.freshness().Seconds() }, po.Config.Source.Workspace)
	// The feed goes on when the messages cannot be sent (a recipient gone,
	// a token without messages:create, POST /messages failing): the rules
	// keep their events, and the next cycles send what is missing.
	s.OnAlertsFailed(func(err error) {
		l.m.alerts.Inc()
		l.log.Error("follow: the alert messages could not all be sent; the feed goes on, and the next cycles try again", "error", err)
	})
	// What a cycle or a seal costs the API shows while it runs, not only
	// once it ends: a first cycle reads the day so far, for minutes.
	s.OnSample(l.m.ObserveProgress)
	l.m.watermark.Set(float64(l.pos.Watermark.UnixMilli()) / 1000)
	if ep != nil {
		ep.attach(l)
	}
	if o.Ready != nil {
		o.Ready(addr)
	}
	return l.run(ctx)
}

// Loop is one follow loop over a session. Its methods run one at a time
// (a cycle on a goroutine of its own, which run waits for, or leaves
// behind in a stuck sink call and returns), except the status readers
// (ready, metrics).
type Loop struct {
	s   *pipeline.Session
	st  *state.Store
	cfg config.Follow
	lag time.Duration
	// timeout is source.timeout: what a sink call begun past the give-up
	// time of failing cycles is given (cycleWithGrace).
	timeout time.Duration
	// retention is how far back the API keeps events: a day wholly
	// before now - retention is never read, nor sealed as exported.
	retention time.Duration
	log       *slog.Logger
	pos       state.Follow
	recent    *recentIDs      // ids delivered with created_at at or after watermark - lookback
	lost      map[string]bool // days past the retention, not sealed, already warned of
	// counted are the events written as dead letters or counted dropped
	// (by a hash of their bytes) by day, until the day is sealed: the
	// look-back and the seal read them again.
	counted map[string]map[string]bool
	m       *metrics
	// behindNoted is how far behind the API's clock was last said to be,
	// in whole seconds.
	behindNoted time.Duration
	// answered: a cycle of this process that was no redo committed, so the
	// API answered it and its clock is known (APIBehind), if its answers
	// carry a Date.
	answered bool
	// clockWall and clockMono are this host's clock (the session's, its
	// wall reading) and its monotonic clock when the last cycle began: a
	// step of the first is told from the second (clockStep).
	clockWall, clockMono time.Time
	// began is when the loop was made: a seal goes on from the windows
	// an earlier process spooled (before it), not from its own.
	began time.Time
	// soon: the cycle that just committed left due days unsealed, the
	// API's clock unknown when it began, or stopped short of now - lag
	// (capped); the next one begins at once.
	soon bool
	// cycleEvents is about the most events a cycle is to deliver
	// (maxCycleEvents); lastAdvance and lastFresh are how far the last
	// committed cycle moved the watermark and the events it delivered,
	// which cap the next one's range (maxAdvance).
	cycleEvents int
	lastAdvance time.Duration
	lastFresh   int
	// horizon is where the last committed cycle of this process would have
	// ended had it not been capped (now - lag at its start, by the API's
	// clock as its answers told it); zero until then, and after a redo:
	// the look-back is re-read behind it (rereadFrom).
	horizon time.Time

	mu     sync.Mutex
	status status
	wm     time.Time // pos.Watermark, for the metrics' goroutine
}

// status is what the endpoints report.
type status struct {
	lastSuccess  time.Time // end of the last cycle that committed
	failingSince time.Time // start of the first failing cycle of the current run of failures
	lastErr      error
}

func newLoop(ctx context.Context, s *pipeline.Session, cfg *config.Config, log *slog.Logger, o Options) (*Loop, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Loop{began: time.Now(), s: s, st: s.State(), cfg: cfg.Follow, lag: cfg.Period.Lag, timeout: cfg.Source.Timeout, retention: cfg.Period.Retention, log: log, recent: newRecentIDs(), counted: map[string]map[string]bool{}, cycleEvents: cmp.Or(o.CycleEvents, maxCycleEvents)}
	pos, ok, err := l.st.Follow()
	if err != nil {
		return nil, err
	}
	exported, err := l.st.Exported()
	if err != nil {
		return nil, err
	}
	followed := false // another loop's state beside a first start's
	switch {
	case !ok:
		pos.Start = o.From
		if pos.Start.IsZero() {
			pos.Start = startAfter(pipeline.CaughtUp(cfg, &l.st.View, exported), s.Now())
		}
		if oldest := l.oldest(); pos.Start.Before(oldest) {
			// As run does: the API returns nothing older, and sealing such
			// days would record empty days as exported.
			log.Warn(fmt.Sprintf("follow: events before %s are past the API's %d-day retention: they can no longer be exported; following from there",
				fmtT(oldest), int(l.retention/day)), "asked_from", fmtT(pos.Start))
			pos.Start = oldest
		}
		pos.Watermark = pos.Start
		if len(exported) == 0 && o.From.IsZero() {
			for _, n := range pipeline.MovedSinkNotes(cfg, &l.st.View, pos.Start.UTC().Format(time.DateOnly), s.Now(), nil) {
				log.Warn("follow: " + n)
			}
		}
		for _, n := range pipeline.FollowedNotes(cfg, &l.st.View, pos.Start) {
			log.Warn("follow: " + n)
			followed = true
		}
		if err := l.st.SetFollow(pos); err != nil {
			return nil, err
		}
		log.Info("follow: first start", "from", fmtT(pos.Start))
	case !o.From.IsZero() && !o.From.Equal(pos.Start):
		log.Warn("follow: --from is ignored: this state already follows", "from", fmtT(pos.Start), "watermark", fmtT(pos.Watermark))
	}
	// What the sinks hold past where the cycles go on (a cycle to redo
	// writes its files again under the same names): a state restored from
	// a backup; on a first start, a state lost, or the output moved with
	// its cycle files (another loop's state beside it: said above).
	if !followed {
		after := pos.Watermark
		if pos.Pending != nil && pos.Pending.To.After(after) {
			after = pos.Pending.To
		}
		for _, n := range s.AheadNotes(ctx, after, exported) {
			log.Warn("follow: " + n)
		}
	}
	l.pos, l.wm = pos, pos.Watermark
	if err := l.loadRecent(exported); err != nil {
		return nil, err
	}
	if a := s.Alerts(); a != nil {
		if err := a.Load(filepath.Join(l.st.Dir(), alertsFile)); err != nil {
			return nil, err
		}
		// A run on this state may have left the events of findings it
		// could not send: the first cycle sends them.
		if err := s.LoadPendingAlerts(); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// oldest is the earliest instant the API still holds events of (on the
// session's clock, to the millisecond).
func (l *Loop) oldest() time.Time {
	return l.s.Now().Add(-l.retention).UTC().Truncate(time.Millisecond).Add(time.Millisecond)
}

// startAfter is where a loop without --from starts: after the last exported
// day, or at the start of today.
func startAfter(exported map[string]state.Day, now time.Time) time.Time {
	start := now.UTC().Truncate(24 * time.Hour)
	var last time.Time
	for d := range exported {
		if t, err := time.Parse(time.DateOnly, d); err == nil && t.After(last) {
			last = t
		}
	}
	if !last.IsZero() && last.Add(24*time.Hour).Before(start) {
		start = last.Add(24 * time.Hour)
	}
	return start
}

// loadRecent reads back the ids delivered at or after watermark - lookback,
// from the day logs of committed cycles, and drops the logs of days that
// are exported (a seal that died before removing its log).
func (l *Loop) loadRecent(exported map[string]state.Day) error {
	days, err := l.st.DeliveredDays()
	if err != nil {
		return err
	}
	floor := l.pos.Watermark.Add(-l.cfg.Lookback).UnixMilli()
	for _, d := range days {
		if _, done := exported[d]; done {
			if err := l.st.RemoveDelivered(d); err != nil {
				return err
			}
			continue
		}
		err := l.st.Delivered(d, l.pos.Seq, func(id state.DeliveredID) {
			if id.At >= floor {
				l.recent.add(id)
			}
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// run cycles until ctx ends. Cycles failing since longer than
// give_up_after (from the start of the first failing one) end it; a cycle
// retries the API, and waits for its sinks, only within what is left of
// that time (cycleWithGrace), so that the end comes about give_up_after
// after the failures began, not cycles later.
func (l *Loop) run(ctx context.Context) error {
	interval := l.cfg.Interval
	failures := 0
	for {
		began := time.Now()
		giveUp, failing := began.Add(l.cfg.GiveUpAfter), false
		if since := l.failingSince(); !since.IsZero() {
			giveUp, failing = since.Add(l.cfg.GiveUpAfter), true
		}
		err := l.cycleWithGrace(ctx, giveUp, failing)
		if stuck, left := (*StuckSinkError)(nil), (*leftBehindError)(nil); errors.As(err, &stuck) || errors.As(err, &left) {
			return err // the cycle's goroutine is left in the sink call
		}
		idle := errors.Is(err, errIdle) || errors.Is(err, errStopped)
		if idle {
			err = nil
		} else {
			l.m.cycleEnded(err == nil, time.Now(), time.Since(began))
		}
		if ctx.Err() != nil {
			if err != nil {
				// Cut at the end of the grace, or failed within it: the
				// watermark held, so the next start does it again.
				l.log.Info("follow: stopped; the cycle under way did not finish and is redone at the next start",
					"watermark", fmtT(l.pos.Watermark), "error", err)
			} else {
				l.log.Info("follow: stopped", "watermark", fmtT(l.pos.Watermark))
			}
			return nil
		}
		wait := interval - time.Since(began)
		if err != nil {
			if failure.IsPermanent(err) {
				return err
			}
			failures++
			since := l.failed(err, began)
			if time.Since(since) >= l.cfg.GiveUpAfter {
				return fmt.Errorf("follow: cycles have failed for %s, giving up: %w", time.Since(since).Round(time.Second), err)
			}
			// Back off: the watermark holds, the next cycle covers the gap;
			// the last try comes at give_up_after.
			wait = min(backoff(interval, failures), time.Until(since.Add(l.cfg.GiveUpAfter)))
			l.log.Warn("follow: cycle failed; trying again", "error", err, "in", wait.Round(time.Second).String(), "failing_for", time.Since(since).Round(time.Second).String())
		} else if !idle {
			failures = 0
			if l.soon {
				wait, l.soon = 0, false
			}
		}
		t := time.NewTimer(max(wait, 0))
		select {
		case <-ctx.Done():
			t.Stop()
			l.log.Info("follow: stopped", "watermark", fmtT(l.pos.Watermark))
			return nil
		case <-t.C:
		}
	}
}

// maxBackoff caps the wait between failing cycles, unless the interval is
// longer: the feed resumes within that of its dependency's return (was:
// 5 minutes, which left a feed of interval 1m idle up to 5 minutes past an
// outage's end). A failing cycle costs little: the API's requests of one
// retry within the cycle, their 429s wait in the client's limiter, shared
// by the cycles.
const maxBackoff = 30 * time.Second

// backoff is the wait after the failures-th failing cycle in a row: the
// interval doubled at each, up to max(interval, maxBackoff).
func backoff(interval time.Duration, failures int) time.Duration {
	return min(interval<<min(max(failures-1, 0), 6), max(interval, maxBackoff))
}

// cycleWithGrace runs one cycle, retrying the API until giveUp at most; a
// stop asked for during it lets it finish for up to grace, then abandons it.
//
// Its sink calls are bounded too. In a run of failing cycles (failing), by
// giveUp, or, begun after it (the last try comes at giveUp), by one
// source.timeout, as a request is. Otherwise each by its start plus
// give_up_after: a call that lasts that long is a failure that long, while
// a healthy cycle (a catch-up of many days) may well last longer. A sink
// that honours its context returns then, and the cycle fails; for one that
// does not (a file sink in a syscall on a hung NFS mount), the watchdog
// returns a *StuckSinkError shortly after, leaving the cycle's goroutine
// in the call.
func (l *Loop) cycleWithGrace(ctx context.Context, giveUp time.Time, failing bool) error {
	// A request's failures, as a sink call, are bounded by give_up_after
	// from their own start in a cycle not failing yet (a healthy cycle may
	// read a flood of events for longer than that), by giveUp in a run of
	// failing ones.
	rctx := extract.WithRetryFor(context.WithoutCancel(ctx), l.cfg.GiveUpAfter)
	bound := func(start time.Time) time.Time { return start.Add(l.cfg.GiveUpAfter) }
	if failing {
		rctx = extract.WithRetryDeadline(rctx, giveUp)
		bound = func(start time.Time) time.Time { return maxTime(giveUp, start.Add(l.timeout)) }
	}
	cctx, cancel := context.WithCancel(rctx)
	defer cancel()
	cctx = pipeline.WithSinkDeadline(cctx, bound, noAnswer(l.cfg.GiveUpAfter))
	stop := context.AfterFunc(ctx, func() {
		// Said at once: the process may take the whole grace to end.
		l.log.Info("follow: stop asked; the cycle under way may finish within the grace", "grace", grace.String())
		t := time.AfterFunc(grace, cancel)
		context.AfterFunc(cctx, func() { t.Stop() })
	})
	defer stop()
	done := make(chan error, 1) // never read after the watchdog ends the wait
	go func() { done <- l.cycle(cctx, ctx) }()
	return watch(l.s, l.cfg.GiveUpAfter, done, ctx.Done(), grace)
}

// noAnswer is the cause of a sink call cut by its deadline.
func noAnswer(giveUpAfter time.Duration) error {
	return fmt.Errorf("no answer within follow.give_up_after (%s)", giveUpAfter)
}

// openSinks opens (claims and checks) the sinks of s at the start of a
// loop, as cycleWithGrace runs a cycle: each sink call ends by started +
// give_up_after, and the watchdog ends the wait for one that ignores its
// context (a file sink's claim on a hung NFS mount: was, a process hung
// there for ever). A stop ends it at once, or, for a call that ignores its
// context, after the grace.
func openSinks(ctx context.Context, s *pipeline.Session, cfg config.Follow, started time.Time) error {
	cctx := pipeline.WithSinkDeadline(ctx, func(time.Time) time.Time { return started.Add(cfg.GiveUpAfter) }, noAnswer(cfg.GiveUpAfter))
	done := make(chan error, 1) // never read after the watchdog ends the wait
	go func() { done <- s.OpenSinks(cctx) }()
	return watch(s, cfg.GiveUpAfter, done, ctx.Done(), 0) // nothing to finish
}

// StuckSinkError ends a follow loop whose sink call went on past its
// deadline (follow.give_up_after) and the slack after it: the sink ignores
// its context, and only a new process gets past it. The cycle under way is
// redone by the next start, as after a kill.
type StuckSinkError struct {
	pipeline.SinkCall
	Waited      time.Duration // how long the call had gone on
	GiveUpAfter time.Duration
}

func (e *StuckSinkError) Error() string {
	return fmt.Sprintf("follow: giving up: sink %s has not answered its %s for %s, past follow.give_up_after (%s): it ignores its deadline (a hung NFS mount, a pipe nobody reads?); %s",
		e.Sink, e.call(), e.Waited.Round(time.Second), e.GiveUpAfter, e.next())
}

// call names the step, and its day if any (a claim or check of the sinks
// has none).
func (c *StuckSinkError) call() string {
	if c.Day == "" {
		return c.Step
	}
	return c.Step + " of " + c.Day
}

func (c *StuckSinkError) next() string {
	if c.Day == "" {
		return "the next start tries again"
	}
	return "the next start redoes the cycle"
}

// leftBehindError ends a loop stopped (SIGTERM) while a sink call of its
// cycle, or of the opening of its sinks, went on past the grace and the
// slack after it (a call that ignores its context): the process stops
// without it, cleanly, as after a kill (was: it waited until the call's
// deadline, give_up_after from its start: half an hour by default, past
// any supervisor's stop timeout).
type leftBehindError struct{ pipeline.SinkCall }

func (e *leftBehindError) Error() string {
	c := StuckSinkError{SinkCall: e.SinkCall}
	return fmt.Sprintf("follow: stopped; sink %s has not answered its %s for %s, past the grace of the stop: it ignores its deadline, left behind; %s",
		c.Sink, c.call(), time.Since(c.Since).Round(time.Second), c.next())
}

// watch waits for the result of a cycle, or of the opening of the sinks,
// on done, until the session's sink call has gone on for slack past its
// context's deadline (a *StuckSinkError), or, once stop is closed (the
// work's context ends at most grace later), until one is still under way
// grace and slack after the stop (a *leftBehindError).
func watch(s *pipeline.Session, giveUpAfter time.Duration, done <-chan error, stop <-chan struct{}, grace time.Duration) error {
	slack := slackOf(giveUpAfter)
	t := time.NewTicker(slack / 2)
	defer t.Stop()
	var stopped time.Time
	for {
		select {
		case err := <-done:
			return err
		case <-stop:
			stop, stopped = nil, time.Now()
		case now := <-t.C:
			c, ok := s.SinkCall()
			var err error
			switch {
			case !ok:
				continue
			case !c.Deadline.IsZero() && now.Sub(c.Deadline) >= slack:
				err = &StuckSinkError{SinkCall: c, Waited: now.Sub(c.Since), GiveUpAfter: giveUpAfter}
			case !stopped.IsZero() && now.Sub(stopped) >= grace+slack:
				err = &leftBehindError{c}
			default:
				continue
			}
			select {
			case err := <-done: // it ended meanwhile
				return err
			default:
			}
			return err
		}
	}
}

// slackOf is how long past its deadline a sink call may take to return
// before the watchdog gives up on it: a tenth of give_up_after, between 1
// and 5 s (grace).
func slackOf(giveUpAfter time.Duration) time.Duration {
	return min(max(giveUpAfter/10, time.Second), grace)
}

// failed records a failed cycle that began at began; it returns when the
// current run of failures began: the cycle's start, or for a cycle that
// went on for longer than give_up_after, healthy until it failed (reading a
// flood of events, sealing a big day), its end (was: its start, so that
// its first failure, a sink's or a request's, ended the loop at once,
// "cycles have failed for" as long as it had run). Its requests had
// retried for give_up_after at most.
func (l *Loop) failed(err error, began time.Time) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.status.failingSince.IsZero() {
		l.status.failingSince = began
		if now := time.Now(); now.Sub(began) > l.cfg.GiveUpAfter {
			l.status.failingSince = now
		}
	}
	l.status.lastErr = err
	return l.status.failingSince
}

// failingSince is when the current run of failures began; zero when the
// last cycle committed.
func (l *Loop) failingSince() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.status.failingSince
}

func (l *Loop) succeeded() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.status = status{lastSuccess: time.Now()}
	l.wm = l.pos.Watermark
}

// watermark is the position's watermark, for readers on other goroutines.
func (l *Loop) watermark() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.wm
}

func fmtT(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
