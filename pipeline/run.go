// Package pipeline is the run loop: it plans the days of a run, fetches their
// time windows in parallel into the spool (the checkpoint), and delivers each
// complete day to every sink, oldest first. A day counts as exported only
// after every sink committed it.
package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/pachca-export/pachca-export/alerts"
	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/extract"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/shape"
	"github.com/pachca-export/pachca-export/state"
)

// Progress receives snapshots while a plan executes.
type Progress interface {
	Update(s Snapshot)
	Done()
}

func newRunID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b)
}

// Run is the `run` command: one session and one plan, or only the plan
// with dryRun (nothing fetched, nothing written, no lock). The error is a
// usage error (failure.Usage, exit 2) for problems with what was asked;
// any other error is a failed run (exit 1), after which the days not
// delivered stay unexported. The summary is returned with the error when
// something was done; a dry run's summary carries the Plan.
func Run(ctx context.Context, o Options, rng Range, dryRun bool) (sum *Summary, err error) {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	if dryRun {
		plan, err := DryRun(ctx, o.Config, rng, now(), orDiscard(o.Logger))
		if err != nil {
			return nil, err
		}
		sum := newSummary("", now())
		sum.From, sum.To, sum.Plan = plan.From, plan.To, &plan
		return sum, nil
	}
	s, err := Open(ctx, o)
	if err != nil {
		var following *state.FollowingError
		if errors.As(err, &following) {
			err = fmt.Errorf("%w; %s", err, besideFollow(o.Config, rng, now()))
		}
		return nil, err
	}
	defer func() {
		if ctx.Err() == nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
			defer cancel()
			err = errors.Join(err, s.Close(cctx))
			return
		}
		// Interrupted: no day is committed any more, and what a sink still
		// holds (messages in flight to a Kafka broker that does not answer)
		// belongs to a day left unexported, which the next run delivers
		// again. Waiting ShutdownTimeout for it kept a stopped run silent
		// for 30 s, and a Kubernetes pod's default grace ends there.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), InterruptedCloseTimeout)
		defer cancel()
		if cerr := s.Close(cctx); cerr != nil {
			orDiscard(o.Logger).Warn("run: interrupted; the sinks did not close cleanly", "error", cerr)
		}
	}()
	plan, err := s.Plan(rng)
	if err != nil {
		return nil, err
	}
	if plan, err = s.resumeFromSinks(ctx, plan); err != nil {
		return nil, err
	}
	if err := s.warnMissing(ctx, plan); err != nil {
		return nil, err
	}
	if err := s.LoadPendingAlerts(); err != nil {
		return nil, err
	}
	s.keepsPending = true
	sum, err = s.Execute(ctx, plan)
	return sum, s.keepPendingAlerts(err, plan.To)
}

// pendingAlertsFile holds, in the state, the alert rules' events of the
// days a run delivered before it failed (a later day, or the sending of the
// messages): those days are exported, and no later run delivers them again
// to evaluate them, so the next run adds these events to its own and sends
// what was not sent. After a run that succeeded it holds the events of the
// last window of its range, which the next run adds to its own, so that a
// burst across the boundary between two runs (midnight, for nightly runs)
// is one finding.
const pendingAlertsFile = "alerts-pending.json"

// LoadPendingAlerts adds the events a run left pending to the rules: their
// findings go out with the next plan executed, even one with no day to
// deliver. A run calls it, and a follow loop at its start, since a run may
// have used its state before it.
func (s *Session) LoadPendingAlerts() error {
	if s.alerts == nil {
		return nil
	}
	if err := s.alerts.Load(filepath.Join(s.store.Dir(), pendingAlertsFile)); err != nil {
		return err
	}
	s.alertsPending = len(s.alerts.Findings()) > 0
	return nil
}

// RemovePendingAlerts removes the events a run left pending, once a follow
// loop sent their findings and keeps the rules' events in its own record.
func (s *Session) RemovePendingAlerts() error {
	if err := os.Remove(filepath.Join(s.store.Dir(), pendingAlertsFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("alerts: %w", err)
	}
	return nil
}

// keepPendingAlerts settles the pending alert events once a run over a
// range ending at to ends with err: after a failure every event the rules
// hold is saved for the next run, after a success (every finding sent)
// those of the range's last window (the rules' longest), those of a burst
// the next run may extend. An --alerts-dry-run records nothing.
func (s *Session) keepPendingAlerts(err error, to time.Time) error {
	if s.alerts == nil || s.opts.AlertsDryRun {
		return err
	}
	path := filepath.Join(s.store.Dir(), pendingAlertsFile)
	if err == nil && !to.IsZero() {
		s.alerts.Prune(to.Add(-s.alerts.LongestWindow()))
	}
	if s.alerts.Events() > 0 {
		if serr := s.alerts.Save(path); serr != nil {
			if err == nil {
				return serr
			}
			return fmt.Errorf("%w (and the alert findings of the days delivered could not be kept for the next run: %v)", err, serr)
		}
		return err
	}
	if rerr := os.Remove(path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) && err == nil {
		return fmt.Errorf("alerts: %w", rerr)
	}
	return err
}

func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// Execute exports plan: it fetches the windows of its days in parallel into
// the spool, delivers each complete day to every sink, oldest first, and
// records it. Alert findings over the delivered records are sent once the
// days are delivered. The summary counts this plan only; it is returned
// with the error when the plan failed part way.
func (s *Session) Execute(ctx context.Context, plan Plan) (*Summary, error) {
	start := s.now()
	sum := newSummary(newRunID(), start)
	sum.From, sum.To = plan.From, plan.To
	plan.Days = slices.Clone(plan.Days)
	for i := range plan.Days {
		plan.Days[i].RunID = sum.RunID
	}
	for _, n := range plan.Notes {
		s.log.Warn(n)
	}
	if len(plan.Days) == 0 {
		if !plan.Quiet {
			s.log.Info(NothingToExport(plan))
		}
		if s.alertsPending {
			before := s.client.Stats().Snapshot()
			err := s.notify(ctx, sum)
			// The messages' requests count as a plan's do (was: sent, and
			// in no api_requests_total).
			sum.addClient(s.client.Stats().Snapshot().Sub(before))
			if err != nil {
				if err := s.alertsError(ctx, err); err != nil {
					return sum.finish(s.now()), err
				}
			} else {
				s.alertsPending = false
			}
		}
		return sum.finish(s.now()), s.clearProgress(plan)
	}
	set, err := s.openSinks(ctx)
	if err != nil {
		return sum.finish(s.now()), err // its retries took time too
	}
	before := s.client.Stats().Snapshot()
	owner := s.ownerCheck(ctx) // a request of this plan
	for i, sk := range set.Sinks {
		typ := ""
		if i < len(s.cfg.Sinks) && s.opts.Sinks == nil {
			typ = s.cfg.Sinks[i].Type
		}
		sum.sink(sk.Name(), typ)
	}
	r := &runner{
		s: s, cfg: s.cfg, log: s.log, plan: plan, store: s.store, spool: s.store.Spool(), sinks: set.Sinks,
		client: s.client, sum: sum, days: map[int64]*dayWork{}, before: before, owner: owner, waiting: &s.waiting,
	}
	r.log.Log(ctx, r.info(), "export started", "run_id", sum.RunID, "from", fmtT(plan.From), "to", fmtT(plan.To),
		"days", len(plan.Days), "streams", len(plan.Streams), "sinks", len(set.Sinks), "state", s.store.Dir())
	err = r.healRelink(ctx)
	if err == nil {
		err = r.run(ctx)
	}
	if oerr := owner(); err == nil {
		err = oerr // a plan that committed nothing
	}
	if err == nil && s.alerts != nil {
		err = s.alertsError(ctx, s.notify(ctx, sum))
	}
	s.retries.flush()
	sum.finish(s.now())
	sum.addClient(s.client.Stats().Snapshot().Sub(r.before))
	if err != nil {
		// A state taken from under the run (its lock file deleted by hand,
		// then locked by another run, which moved the spool's files) fails
		// a write with a file that is gone: that is the cause to name.
		if held := s.store.Held(); held != nil && !errors.Is(err, context.Canceled) {
			err = fmt.Errorf("%w (then: %v)", held, err)
		}
		return sum, err
	}
	if len(sum.Refused) > 0 {
		return sum, &RefusedError{Days: sum.Refused} // the range's progress stays: a rerun does only these
	}
	return sum, s.clearProgress(plan)
}

// clearProgress forgets the delivered days of a finished explicit range.
func (s *Session) clearProgress(plan Plan) error {
	if plan.progressKey == "" {
		return nil
	}
	return s.store.ClearRunProgress(plan.progressKey)
}

// dayWork tracks the fetching of one day.
type dayWork struct {
	part        sinks.Partition
	outstanding int  // windows queued or in flight
	planned     bool // all initial windows of the day are queued
	ready       chan struct{}
	total       int64 // milliseconds to cover, over all streams
	covered     int64
}

// info is the level of the plan's progress lines: debug for a quiet plan.
func (r *runner) info() slog.Level {
	if r.plan.Quiet {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

// completeOnAPI tells whether a whole day p had ended on the API's clock,
// less period.lag, when the plan began (its Started time): the plan took
// this host's clock, and an API clock behind it still writes events into
// a day this host calls complete, which a day recorded as exported would
// never get. behind is how far the API's clock is behind, as its answers'
// Date headers tell (extract.Client.APIBehind). A part of a day is never
// recorded as exported: ok.
func (r *runner) completeOnAPI(p sinks.Partition) (behind time.Duration, ok bool) {
	if !p.FullDay() {
		return 0, true
	}
	behind = r.client.APIBehind()
	return behind, !r.sum.Started.Add(-behind - r.cfg.Period.Lag).Before(p.To)
}

// runner executes one plan of a session.
type runner struct {
	s      *Session
	cfg    *config.Config
	log    *slog.Logger
	plan   Plan
	store  *state.Store
	spool  *state.Spool
	sinks  []sinks.Sink
	client *extract.Client
	sum    *Summary
	before extract.Counts // the client's counters when the plan started
	owner  func() error   // the token owner's check (Session.ownerCheck)

	mu        sync.Mutex
	days      map[int64]*dayWork // by day start in Unix ms
	delivered int                // index of the next day to deliver
	cond      *sync.Cond
	waiting   *sinkWait    // the sink call a delivery is in (Session.waiting)
	handed    atomic.Int64 // events read back from the spool for the sinks (Snapshot.Delivered)
}

func dayKey(ms int64) int64 { return ms - ms%int64(day/time.Millisecond) }

// lookahead is how many days past the one being delivered may be fetched.
func (r *runner) lookahead() int { return max(2, r.cfg.Source.Concurrency) }

// mayPlan tells whether day i may be planned now: within lookahead days of
// the next day to deliver; or, while that day waits (a request stuck until
// source.timeout, a sink retrying) and fewer than lookahead of the days
// between are still being fetched, within 4×lookahead days of it. So the
// workers go on fetching the days after a held-up one (was: with days of a
// few seconds of fetching, the whole fetch stood still until it came: 70 s
// without a request in a 318 s run of 1% faults). Called with r.mu held.
func (r *runner) mayPlan(i int) bool {
	ahead := i - r.delivered
	if ahead <= r.lookahead() {
		return true
	}
	if ahead > 4*r.lookahead() {
		return false
	}
	fetching := 0
	for _, p := range r.plan.Days[r.delivered:i] {
		select {
		case <-r.days[p.Day.UnixMilli()].ready:
		default:
			fetching++
		}
	}
	return fetching < r.lookahead()
}

// ownerGate commits a window file only once the token's owner is known to
// be the state's: until then what was fetched may be another workspace's.
type ownerGate struct {
	extract.WindowWriter
	owner func() error
}

func (g ownerGate) Commit(done extract.Window) error {
	if err := g.owner(); err != nil {
		g.Abort() // as a failed Commit does: the fetcher aborts no more
		return err
	}
	return g.WindowWriter.Commit(done)
}

func (r *runner) run(ctx context.Context) error {
	r.cond = sync.NewCond(&r.mu)
	for _, p := range r.plan.Days {
		r.days[p.Day.UnixMilli()] = &dayWork{part: p, ready: make(chan struct{})}
	}
	f := extract.NewFetcher(extract.FetcherConfig{
		Client:  r.client,
		Workers: r.cfg.Source.Concurrency,
		Open: func(w extract.Window) (extract.WindowWriter, error) {
			d := time.UnixMilli(w.Start).UTC().Format(time.DateOnly)
			wr, err := r.spool.Open(d, w)
			if err != nil {
				return nil, err
			}
			return ownerGate{wr, r.owner}, nil
		},
		OnCovered: func(w extract.Window, ms int64) {
			r.mu.Lock()
			defer r.mu.Unlock()
			if dw := r.days[dayKey(w.Start)]; dw != nil {
				dw.covered += ms
			}
		},
		OnQueue:  func(w extract.Window) { r.adjust(w, +1) },
		OnFinish: func(w extract.Window) { r.adjust(w, -1) },
		Retract: func(w extract.Window) error {
			r.log.Warn("the API's pages are not newest first: an event came after events older than it by more than was allowed for; the part of the window it belongs to is fetched again",
				"window", w.String())
			return r.spool.Remove(time.UnixMilli(w.Start).UTC().Format(time.DateOnly), []extract.Window{w})
		},
	})
	g, ctx := errgroup.WithContext(ctx)
	stop := context.AfterFunc(ctx, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.cond.Broadcast()
	})
	defer stop()
	g.Go(func() error { return f.Run(ctx) })
	g.Go(func() error {
		defer f.CloseInput()
		return r.planWindows(ctx, f)
	})
	g.Go(func() error { return r.deliverDays(ctx) })
	progressDone := r.startProgress(ctx)
	err := g.Wait()
	progressDone()
	return err
}

// planWindows queues the missing windows of each day, oldest day first,
// staying ahead of delivery as far as mayPlan lets it.
func (r *runner) planWindows(ctx context.Context, f *extract.Fetcher) error {
	for i, p := range r.plan.Days {
		r.mu.Lock()
		for !r.mayPlan(i) && ctx.Err() == nil {
			r.cond.Wait()
		}
		r.mu.Unlock()
		if err := ctx.Err(); err != nil {
			return err
		}
		have, removed, err := r.spool.Sound(p.Date())
		if err != nil {
			return err
		}
		for _, why := range removed {
			r.log.Warn("a damaged checkpoint was removed; its window is fetched again", "day", p.Date(), "error", why)
		}
		var todo []extract.Window
		var covered int64
		for _, s := range r.plan.Streams {
			gaps := gaps(p.From.UnixMilli(), p.To.UnixMilli(), s, have)
			todo = append(todo, gaps...)
			covered += p.To.UnixMilli() - p.From.UnixMilli()
			for _, g := range gaps {
				covered -= g.End - g.Start
			}
		}
		dw := r.days[p.Day.UnixMilli()]
		r.mu.Lock()
		dw.total = int64(len(r.plan.Streams)) * (p.To.UnixMilli() - p.From.UnixMilli())
		dw.covered = covered
		r.mu.Unlock()
		if len(todo) > 0 {
			f.Add(todo...)
		} else {
			r.log.Debug("day already fetched, resuming from the spool", "day", p.Date())
		}
		r.mu.Lock()
		dw.planned = true
		r.checkReady(dw)
		r.mu.Unlock()
	}
	return nil
}

// gaps returns the parts of [from, to) of stream that no spooled window covers.
func gaps(from, to int64, stream string, have []extract.Window) []extract.Window {
	var out []extract.Window
	cur := from
	for _, w := range have { // ordered by start
		if w.Stream != stream || w.End <= cur || w.Start >= to {
			continue
		}
		if w.Start > cur {
			out = append(out, extract.Window{Stream: stream, Start: cur, End: w.Start})
		}
		cur = max(cur, w.End)
	}
	if cur < to {
		out = append(out, extract.Window{Stream: stream, Start: cur, End: to})
	}
	return out
}

func (r *runner) adjust(w extract.Window, delta int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	dw := r.days[dayKey(w.Start)]
	if dw == nil {
		return
	}
	dw.outstanding += delta
	r.checkReady(dw)
}

// checkReady closes dw.ready once the day is planned and nothing is
// outstanding. Called with r.mu held.
func (r *runner) checkReady(dw *dayWork) {
	if dw.planned && dw.outstanding == 0 {
		select {
		case <-dw.ready:
		default:
			close(dw.ready)
			r.cond.Broadcast() // planWindows may plan further ahead
		}
	}
}

// notify sends the alert findings of the delivered days (and of those a
// failed run left pending) that were not sent before. A failure fails the
// run; the next run sends what is missing.
func (s *Session) notify(ctx context.Context, sum *Summary) error {
	sent, err := alerts.OpenSent(filepath.Join(s.store.Dir(), "alerts-sent.json"))
	if err != nil {
		return err
	}
	sent.UseClock(s.now)
	// No rerun finds again a finding whose events the API no longer holds.
	sent.Forget(s.now().Add(-s.cfg.Period.Retention - s.alerts.LongestWindow() - 24*time.Hour))
	o := s.opts
	out := o.AlertsOut
	if out == nil {
		out = io.Discard
	}
	findings := s.alerts.Findings()
	if !o.AlertsDryRun {
		uncertain, err := sent.Settle()
		if err != nil {
			return err
		}
		for _, k := range uncertain {
			s.log.Warn("alerts: a process stopped while this message was on its way: it may not have arrived, and is not sent again", "finding", k)
		}
		// The days are recorded exported: should the process stop while
		// sending (SIGKILL), the next run finds their findings here.
		if s.keepsPending && len(findings) > 0 {
			if err := s.alerts.Save(filepath.Join(s.store.Dir(), pendingAlertsFile)); err != nil {
				return err
			}
		}
	}
	if s.alertsFailed != nil && s.cfg.Follow.Interval > 0 {
		// A follow cycle: its messages are tried again by the next one, so
		// a POST /messages failing for minutes must not hold up the feed.
		ctx = extract.WithRetryDeadline(ctx, time.Now().Add(s.cfg.Follow.Interval))
	}
	acfg := s.cfg.Alerts
	acfg.Workspace = s.cfg.Source.Workspace
	n, err := alerts.Notify(ctx, acfg, findings, sent, alerts.APISender{API: s.client}, o.AlertsDryRun, out)
	sum.AlertFindings, sum.AlertMessages, sum.AlertRefused = len(findings), n, alerts.Refused(err)
	if err != nil {
		return err
	}
	if n > 0 {
		s.log.Info("alerts", "findings", len(findings), "messages", n, "dry_run", o.AlertsDryRun)
	}
	return nil
}

// healRelink links again, in every sink, the days after each day of the
// block a run was delivering when it stopped before relinking them (a
// SIGKILL, a failed sink): a day it rewrote would otherwise stay followed
// by a manifest linked to the one it replaced, and verify fail the chain
// there until that range ran again (was: for ever, for a backfill killed
// and never repeated). Relinking stops at the first day linked already.
func (r *runner) healRelink(ctx context.Context) error {
	b, ok, err := r.store.PendingRelink()
	if err != nil || !ok {
		return err
	}
	first, err1 := time.Parse(time.DateOnly, b.First)
	last, err2 := time.Parse(time.DateOnly, b.Last)
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Errorf("state: the days an interrupted run was delivering: %w", err)
	}
	for d := first; !d.After(last); d = d.Add(day) {
		if err := r.relink(ctx, sinks.NewPartition(d, d, d.Add(day), "")); err != nil {
			return err
		}
	}
	r.log.Info("linked the manifests after the days an interrupted run was delivering", "first", b.First, "last", b.Last)
	return r.store.ClearRelink()
}

// deliverDays delivers each day once it is fetched, in order. The days
// after a block of consecutive days are relinked once, after its last day;
// when a block ends early (a refused or failed day) they are relinked to
// the last day delivered.
func (r *runner) deliverDays(ctx context.Context) (err error) {
	var pending *sinks.Partition // delivered; the days after it not relinked yet
	// marked: the block being delivered is recorded in the state
	// (SetRelink) until the days after it are relinked, so that the next
	// run relinks them if this one is killed first (healRelink). Only a
	// range's (run --from/--to, verify --repair) may never run again: a
	// catch-up or a follow loop redoes the days it did not finish, and
	// relinks after them then.
	marked := false
	unmark := func() error {
		if !marked {
			return nil
		}
		marked = false
		return r.store.ClearRelink()
	}
	flush := func() error {
		if pending == nil {
			return nil
		}
		p := *pending
		pending = nil
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), relinkTimeout)
		defer cancel()
		return r.relink(rctx, p)
	}
	defer func() {
		if ferr := flush(); ferr != nil {
			err = errors.Join(err, ferr)
		}
	}()
	for i, p := range r.plan.Days {
		dw := r.days[p.Day.UnixMilli()]
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-dw.ready:
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		last := i == len(r.plan.Days)-1 || !r.plan.Days[i+1].Day.Equal(p.Day.Add(day))
		if !marked && r.plan.progressKey != "" {
			end := i
			for end+1 < len(r.plan.Days) && r.plan.Days[end+1].Day.Equal(r.plan.Days[end].Day.Add(day)) {
				end++
			}
			if err := r.store.SetRelink(state.Relink{First: p.Date(), Last: r.plan.Days[end].Date()}); err != nil {
				return err
			}
			marked = true
		}
		// On an error the block stays recorded (a sink may have committed
		// the failing day): the next run relinks after each of its days.
		delivered, err := r.deliver(ctx, p, last)
		switch {
		case err != nil:
			return err
		case !delivered:
			if err := flush(); err != nil {
				return err
			}
			if err := unmark(); err != nil {
				return err
			}
		case !last:
			pending = &p
		default:
			pending = nil
			if err := unmark(); err != nil {
				return err
			}
		}
		r.mu.Lock()
		r.delivered = i + 1
		r.cond.Broadcast()
		r.mu.Unlock()
	}
	return nil
}

// besideFollow says what a run refused by a follow loop on its state can do
// instead of stopping the feed: a catch-up has nothing to do, the loop
// records the days it seals as exported; a range of today is in the loop's
// file and S3 sinks already, and one of its own goes to other locations.
func besideFollow(cfg *config.Config, rng Range, now time.Time) string {
	if rng.From.IsZero() {
		return "the loop records each day it seals as exported, so a nightly catch-up beside it has nothing to do: disable the nightly timer or CronJob"
	}
	const own = "for a range of your own, run a copy of this configuration whose sinks write elsewhere (another state)"
	if !rng.To.After(now.UTC().Truncate(24 * time.Hour)) { // no part of today
		return own
	}
	today := now.UTC().Format(time.DateOnly)
	var where []string
	for _, sk := range cfg.Sinks {
		switch {
		case sk.File != nil && sk.File.Layout == shape.LayoutSecurityLake:
			where = append(where, sk.File.Dir)
		case sk.File != nil:
			where = append(where, filepath.Join(sk.File.Dir, "dt="+today)+"/")
		case sk.S3 != nil:
			where = append(where, "s3://"+path.Join(sk.S3.Bucket, sk.S3.Prefix, "dt="+today)+"/")
		}
	}
	msg := "the loop exports today as it goes, up to follow.interval + period.lag ago"
	if len(where) > 0 {
		msg += ", into " + strings.Join(where, ", ") + " (its cycle files: report and verify read them)"
	}
	return msg + "; " + own
}
