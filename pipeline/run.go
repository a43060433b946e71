// Package pipeline is the run loop: it plans the days of a run, fetches their
// time windows in parallel into the spool (the checkpoint), and delivers each
// complete day to every sink, oldest first. A day counts as exported only
// after every sink committed it.
package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/pachca-export/pachca-export/alerts"
	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/extract"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/state"
)

// Options are the inputs of one run besides the configuration.
type Options struct {
	Config   *config.Config
	From, To time.Time // explicit range; both zero for the configured period
	DryRun   bool
	Logger   *slog.Logger
	// Progress, when set, receives live progress (a terminal); otherwise
	// progress goes to the log every ProgressEvery.
	Progress      Progress
	ProgressEvery time.Duration
	Now           func() time.Time
	HTTPClient    *http.Client
	// Sinks replaces the sinks built from the configuration (tests).
	Sinks []sinks.Sink
	// AlertsDryRun prints alert findings to AlertsOut instead of sending them.
	AlertsDryRun bool
	AlertsOut    io.Writer
}

// Progress receives snapshots while a run works.
type Progress interface {
	Update(s Snapshot)
	Done()
}

func newRunID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b)
}

// Run exports the planned days. The error is a *UsageError for problems with
// what was asked (exit 2); any other error is a failed run (exit 1), after
// which the days not delivered stay unexported.
func Run(ctx context.Context, o Options) (*Summary, error) {
	cfg := o.Config
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	if cfg.Source.Token == "" && !o.DryRun {
		return nil, usagef("source.token: required (set it in %s, with token_file, the PACHCA_TOKEN variable it names, or --token)", filepath.Base(cfg.File))
	}
	start := now()
	sum := newSummary(newRunID(), start)
	streams := []string{""}
	if keys := cfg.Source.Filters.EventKeys; len(keys) > 0 {
		streams = slices.Clone(keys)
	}

	id := Identity(cfg)
	st := state.Peek(cfg.State.Dir, state.Key(id)) // a dry run writes nothing
	if !o.DryRun {
		var err error
		if st, err = state.Open(cfg.State.Dir, state.Key(id), id); err != nil {
			return nil, err
		}
	}
	defer st.Close()
	exported, err := st.Exported()
	if err != nil {
		return nil, err
	}
	plan, progressKey, err := makePlan(o, st, exported, now(), log)
	if err != nil {
		return nil, err
	}
	plan.Streams = streams
	for i := range plan.Days {
		plan.Days[i].RunID = sum.RunID
	}
	for _, n := range plan.Notes {
		log.Warn(n)
	}
	sum.From, sum.To = plan.From, plan.To
	if o.DryRun {
		sum.Plan = &plan
		return sum, nil
	}
	if len(plan.Days) == 0 {
		log.Info("nothing to export: every day of the period is already exported")
		if progressKey != "" {
			if err := st.ClearRunProgress(progressKey); err != nil {
				return nil, err
			}
		}
		return sum.finish(now()), nil
	}

	sinkList := o.Sinks
	if sinkList == nil {
		sinkList, err = BuildSinks(ctx, cfg)
		if err != nil {
			return nil, err
		}
	}
	defer func() {
		for _, s := range sinkList {
			s.Close()
		}
	}()
	for _, s := range sinkList {
		sum.sink(s.Name())
	}
	// Fail before fetching, not after, when a destination cannot take data.
	for i, s := range sinkList {
		c, ok := s.(sinks.Checker)
		if !ok {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := c.Check(cctx)
		cancel()
		if err != nil {
			return sum, fmt.Errorf("sinks[%d]: %w", i, err)
		}
	}

	client := extract.NewClient(extract.ClientConfig{
		BaseURL: cfg.Source.BaseURL, Token: cfg.Source.Token, Filters: cfg.Source.Filters.Extract(),
		RPS: cfg.Source.RequestsPerSecond, Timeout: cfg.Source.Timeout, MaxRetries: cfg.Source.MaxRetries,
		HTTPClient: o.HTTPClient, Logger: log,
	})
	if err := st.Spool().CleanTemp(); err != nil {
		return nil, err
	}
	// A crash between recording a day and removing its spool leaves the spool.
	for d := range exported {
		if err := st.Spool().RemoveDay(d); err != nil {
			return nil, err
		}
	}
	r := &runner{
		cfg: cfg, log: log, plan: plan, store: st, spool: st.Spool(), sinks: sinkList, progressKey: progressKey,
		client: client, sum: sum, days: map[int64]*dayWork{},
	}
	if len(cfg.Alerts.Rules) > 0 {
		if r.alerts, err = alerts.New(cfg.Alerts); err != nil {
			return nil, err
		}
	}
	log.Info("export started", "run_id", sum.RunID, "from", fmtT(plan.From), "to", fmtT(plan.To),
		"days", len(plan.Days), "streams", len(streams), "sinks", len(sinkList), "state", st.Dir())
	err = r.run(ctx, o)
	if err == nil && r.alerts != nil {
		err = r.notify(ctx, o)
	}
	sum.finish(now())
	sum.addClient(client.Stats())
	if err != nil {
		return sum, err
	}
	if progressKey != "" {
		if err := st.ClearRunProgress(progressKey); err != nil {
			return sum, err
		}
	}
	return sum, nil
}

// makePlan plans the run: the explicit range of the options or of
// period.from/to, or the catch-up. For an explicit range it also returns the
// key of its run progress and leaves out the days an interrupted run of the
// same range already delivered.
func makePlan(o Options, st *state.Store, exported map[string]state.Day, now time.Time, log *slog.Logger) (Plan, string, error) {
	cfg := o.Config
	explicit := !o.From.IsZero() || !o.To.IsZero()
	if !explicit && cfg.Period.From != "" {
		o.From, _ = config.ParseTime(cfg.Period.From) // validated with the configuration
		o.To, _ = config.ParseTime(cfg.Period.To)
		explicit = true
	}
	switch {
	case explicit && (o.From.IsZero() || o.To.IsZero()):
		return Plan{}, "", usagef("give both --from and --to, or neither")
	case !explicit:
		return planCatchUp(exported, now, cfg.Period.Lag, cfg.Period.Retention), "", nil
	}
	plan, err := planRange(o.From, o.To, now, cfg.Period.Lag, cfg.Period.Retention)
	if err != nil {
		return Plan{}, "", err
	}
	key := state.Key([2]string{fmtT(plan.From), fmtT(plan.To)})
	done, err := st.RunProgress(key)
	if err != nil {
		return Plan{}, "", err
	}
	if len(done) > 0 {
		log.Info("resuming an interrupted run of the same range", "days_already_delivered", len(done))
		plan.Days = slices.DeleteFunc(plan.Days, func(p sinks.Partition) bool { return done[p.Date()] })
	}
	return plan, key, nil
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

type runner struct {
	cfg    *config.Config
	log    *slog.Logger
	plan   Plan
	store  *state.Store
	spool  *state.Spool
	sinks  []sinks.Sink
	client *extract.Client
	sum    *Summary
	// progressKey names the range of an explicit run, whose delivered days
	// are recorded so that a rerun after a crash skips them.
	progressKey string
	alerts      *alerts.Engine // nil without rules

	mu        sync.Mutex
	days      map[int64]*dayWork // by day start in Unix ms
	delivered int                // index of the next day to deliver
	cond      *sync.Cond
}

func dayKey(ms int64) int64 { return ms - ms%int64(day/time.Millisecond) }

// lookahead is how many days past the one being delivered may be fetched.
func (r *runner) lookahead() int { return max(2, r.cfg.Source.Concurrency) }

func (r *runner) run(ctx context.Context, o Options) error {
	r.cond = sync.NewCond(&r.mu)
	for _, p := range r.plan.Days {
		r.days[p.Day.UnixMilli()] = &dayWork{part: p, ready: make(chan struct{})}
	}
	f := extract.NewFetcher(extract.FetcherConfig{
		Client:  r.client,
		Workers: r.cfg.Source.Concurrency,
		Open: func(w extract.Window) (extract.WindowWriter, error) {
			d := time.UnixMilli(w.Start).UTC().Format(time.DateOnly)
			return r.spool.Open(d, w)
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
	progressDone := r.startProgress(ctx, o)
	err := g.Wait()
	progressDone()
	return err
}

// planWindows queues the missing windows of each day, oldest day first,
// staying at most lookahead days ahead of delivery.
func (r *runner) planWindows(ctx context.Context, f *extract.Fetcher) error {
	for i, p := range r.plan.Days {
		r.mu.Lock()
		for i-r.delivered > r.lookahead() && ctx.Err() == nil {
			r.cond.Wait()
		}
		r.mu.Unlock()
		if err := ctx.Err(); err != nil {
			return err
		}
		have, err := r.spool.Windows(p.Date())
		if err != nil {
			return err
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
		}
	}
}

// notify sends the alert findings of the delivered days that were not sent
// before. A failure fails the run; the next run sends what is missing.
func (r *runner) notify(ctx context.Context, o Options) error {
	sent, err := alerts.OpenSent(filepath.Join(r.store.Dir(), "alerts-sent.json"))
	if err != nil {
		return err
	}
	out := o.AlertsOut
	if out == nil {
		out = io.Discard
	}
	findings := r.alerts.Findings()
	n, err := alerts.Notify(ctx, r.cfg.Alerts, findings, sent, r.client, o.AlertsDryRun, out)
	r.sum.AlertFindings, r.sum.AlertMessages = len(findings), n
	if err != nil {
		return err
	}
	if n > 0 {
		r.log.Info("alerts", "findings", len(findings), "messages", n, "dry_run", o.AlertsDryRun)
	}
	return nil
}

// deliverDays delivers each day once it is fetched, in order.
func (r *runner) deliverDays(ctx context.Context) error {
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
		if err := r.deliver(ctx, p); err != nil {
			return err
		}
		r.mu.Lock()
		r.delivered = i + 1
		r.cond.Broadcast()
		r.mu.Unlock()
	}
	return nil
}

// Identity is what defines the data of a state: the source, its filters and
// the destinations. It names the state directory and is written into it; it
// holds no secret.
func Identity(cfg *config.Config) any {
	var dests []string
	for _, s := range cfg.Sinks {
		dests = append(dests, sinkIdentity(s))
	}
	return struct {
		BaseURL string         `json:"base_url"`
		Filters config.Filters `json:"filters"`
		Sinks   []string       `json:"sinks"`
	}{strings.TrimRight(cfg.Source.BaseURL, "/"), cfg.Source.Filters, dests}
}

func sinkIdentity(s config.Sink) string {
	switch {
	case s.File != nil:
		dir, err := filepath.Abs(s.File.Dir)
		if err != nil {
			dir = s.File.Dir
		}
		return fmt.Sprintf("%s:%s:%s", s.Type, dir, s.File.Compression)
	case s.S3 != nil:
		return fmt.Sprintf("s3:%s:%s/%s:%s:%s", s.S3.Endpoint, s.S3.Bucket, s.S3.Prefix, s.S3.Format, s.S3.Compression)
	case s.Kafka != nil:
		b := slices.Sorted(slices.Values(s.Kafka.Brokers))
		return fmt.Sprintf("kafka:%s:%s", strings.Join(b, ","), s.Kafka.Topic)
	}
	return s.Type
}
