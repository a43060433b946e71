package pipeline

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pachca-export/pachca-export/alerts"
	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/extract"
	"github.com/pachca-export/pachca-export/internal/failure"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinkset"
	"github.com/pachca-export/pachca-export/state"
	"github.com/pachca-export/pachca-export/transform"
)

// Options configure a session.
type Options struct {
	Config *config.Config
	Logger *slog.Logger
	// Progress, when set, receives live progress (a terminal); otherwise
	// progress goes to the log every ProgressEvery.
	Progress      Progress
	ProgressEvery time.Duration
	Now           func() time.Time
	HTTPClient    *http.Client
	// Sinks replaces the sinks built from the configuration (tests). The
	// session closes them.
	Sinks []sinks.Sink
	// Stdout is where a stdout sink writes; os.Stdout when nil.
	Stdout io.Writer
	// AlertsDryRun prints alert findings to AlertsOut instead of sending them.
	AlertsDryRun bool
	AlertsOut    io.Writer
	// Replace lets a day replace files or objects that hold more events
	// than it has (run --replace); without it such a day is refused.
	Replace bool
	// Mode is what the session is for ("run", state.ModeFollow, ...), for
	// the message of a process that finds the state locked.
	Mode string
}

// ShutdownTimeout bounds Close: flushing and closing the sinks.
const ShutdownTimeout = 30 * time.Second

// InterruptedCloseTimeout bounds the Close of a run stopped by a signal,
// which has nothing left to commit.
const InterruptedCloseTimeout = 5 * time.Second

// Session is what a run or a follow loop opens once and uses for many plans:
// the locked state, the sinks, the API client with its one limiter (and what
// it learnt of the server's limit), the alert rules. Its methods are used by
// one goroutine at a time.
type Session struct {
	cfg     *config.Config
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	store   *state.Store
	client  *extract.Client
	retries *retryLog      // the client's retries, to the log
	alerts  *alerts.Engine // nil without rules
	// alertsPending: the rules hold events a failed run left pending,
	// whose findings go out even when a plan has no day to deliver.
	alertsPending bool
	// keepsPending: a run (not a follow loop) keeps the rules' events in
	// pendingAlertsFile while it sends their messages.
	keepsPending bool
	// alertsFailed, when set, is told a failure to send the messages,
	// which then does not fail the plan (OnAlertsFailed).
	alertsFailed func(error)
	signer       ed25519.PrivateKey  // signs manifests; nil without signing
	retired      []ed25519.PublicKey // signing.previous_public_key_files

	sinks   *sinkset.Set // built and checked by the first plan that delivers
	checked bool
	claims  []sinks.ClaimResult // what checking found, one per sink
	marked  bool                // the sinks' locations are marked for this configuration (markSinks)
	// ownerChecked: the token's owner was compared with the state's
	// (checkOwner), or the API will not tell it. Written by ownerCheck's
	// goroutine, read by the next plan, after the plan waited for it.
	ownerChecked bool
	// ownerToken is the client's TokenGeneration that ownerChecked is
	// of: a new token in source.token_file may be another user's, and
	// is checked again by the next plan.
	ownerToken uint64
	closed     bool
	// concurrencyWarned: the warning that source.concurrency bounds the
	// request rate was logged (once a session; concurrencyWatch).
	concurrencyWarned atomic.Bool
	// cpuWarned: the warning that a CPU limit bounds the request rate
	// was logged (once a session; cpuWatch).
	cpuWarned atomic.Bool
	// waiting is the sink call the plan under way is in: for its progress
	// log, and for a follow loop's watchdog (SinkCall).
	waiting sinkWait
	// drop tells the records not exported (transform.drop_event_keys,
	// transform.drop_own_reads).
	drop transform.Drop
	// sampled, when set, is given every progress sample (OnSample).
	sampled func(Snapshot)
}

// Open opens a session: it checks that a token is set, locks the state
// (failing at once with state.ErrLocked while another process holds it),
// removes what a killed run left in the spool, and builds the API client
// and the alert rules. Sinks are built and checked by the first Execute
// that has something to deliver. Close releases everything.
func Open(ctx context.Context, o Options) (*Session, error) {
	cfg := o.Config
	if err := cfg.Source.RequireToken(cfg.File); err != nil {
		return nil, failure.AsUsage(err)
	}
	s := &Session{cfg: cfg, opts: o, log: o.Logger, now: o.Now}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if len(cfg.Alerts.Rules) > 0 {
		var err error
		if s.alerts, err = alerts.New(cfg.Alerts); err != nil {
			return nil, err
		}
	}
	var err error
	if s.signer, err = Signer(cfg); err != nil {
		return nil, err
	}
	if s.retired, err = PreviousKeys(cfg); err != nil {
		return nil, err
	}
	st, err := state.Open(cfg.State.Dir, Identity(cfg), FormerIdentities(cfg)...)
	if err != nil {
		return nil, err
	}
	s.store = st
	if w := state.Exposed(cfg.State.Dir); w != "" {
		s.log.Warn(w)
	}
	if o.Mode != "" {
		// Open said who, this says what for and with which file: a second
		// workspace's configuration copied from the first and keyed to
		// its state is told whose state it is.
		file := cfg.File
		if abs, err := filepath.Abs(file); err == nil && file != "" {
			file = abs
		}
		st.Hold(o.Mode, file)
	}
	// The partial window files a killed run left.
	if err := st.Spool().CleanTemp(); err != nil {
		st.Close()
		return nil, err
	}
	// The spool of days already exported, and what a year of runs would
	// leave behind: the progress of ranges interrupted and never repeated,
	// spooled days and follow id logs no run reads again (was: kept for
	// ever, read by every check).
	pruned, err := st.Prune(s.now().Add(-cfg.Period.Retention))
	if err != nil {
		st.Close()
		return nil, err
	}
	if pruned.Any() {
		s.log.Info("state: removed what no run reads again (days past period.retention, id logs of exported days): "+pruned.String(), "state", st.Dir())
	}
	s.retries = newRetryLog(s.log, s.now)
	reader, err := st.EnsureReaderID()
	if err != nil {
		st.Close()
		return nil, err
	}
	cc := cfg.Source.ClientConfig(o.HTTPClient)
	cc.UserAgent = extract.Agent(reader)
	s.drop = Drop(cfg, reader)
	cc.OnRetry = s.retries.observe
	cc.Logger = s.log // the limiter reads 429s at debug level
	cc.Now = s.now
	s.client = extract.NewClient(cc)
	if o.Sinks != nil {
		s.sinks = &sinkset.Set{Sinks: o.Sinks}
	}
	return s, nil
}

// Client is the session's API client; every plan of the session shares it
// and its limiter.
func (s *Session) Client() *extract.Client { return s.client }

// State is the session's locked state.
func (s *Session) State() *state.Store { return s.store }

// Alerts is the session's alert engine, nil without rules; every plan's
// records are observed by it.
func (s *Session) Alerts() *alerts.Engine { return s.alerts }

// OnAlertsFailed makes a failure to send the alert messages no failure of
// the plan, whose sinks committed: f is told it instead. The findings not
// sent go out with a later plan, whose rules still hold their events (the
// record of sent messages says what is missing). A follow loop sets it: a
// recipient gone or a token without messages:create must not stop the
// feed.
func (s *Session) OnAlertsFailed(f func(error)) { s.alertsFailed = f }

// OnSample has f given every progress sample of the plans executed, about
// a second apart while one runs (from the progress goroutine, never two at
// once): a long-running process's metrics follow a plan under way, whose
// summary comes only at its end (was: a follow loop's /metrics showed 0
// requests throughout a first cycle of minutes). Set it before a plan.
func (s *Session) OnSample(f func(Snapshot)) { s.sampled = f }

// alertsError is err, the failure to send the alert messages of a plan
// whose sinks committed, or nil when OnAlertsFailed took it (any failure
// but a stop asked for).
func (s *Session) alertsError(ctx context.Context, err error) error {
	if err != nil && s.alertsFailed != nil && ctx.Err() == nil {
		s.alertsFailed(err)
		return nil
	}
	return err
}

// Now is the session's clock (Options.Now).
func (s *Session) Now() time.Time { return s.now() }

// openSinks builds the sinks on first use and checks them before anything
// is fetched, so that a read-only directory or a missing bucket costs no API
// request. It checks the file-like sinks' claims for this configuration's
// data identity: a root that holds or is marked for another identity's data
// is refused (a usage error) before anything is written anywhere. The
// markers are written before the first write (markSinks).
func (s *Session) openSinks(ctx context.Context) (*sinkset.Set, error) {
	if s.sinks == nil {
		stdout := s.opts.Stdout
		if stdout == nil {
			stdout = os.Stdout
		}
		set, err := sinkset.Build(ctx, s.cfg.Sinks, stdout)
		if err != nil {
			return nil, failure.AsUsage(err) // construction does no I/O: the settings are wrong
		}
		for _, sk := range set.Sinks {
			if l, ok := sk.(logSetter); ok {
				l.SetLogger(s.log)
			}
		}
		s.sinks = set
	}
	if !s.checked {
		claim := sinks.Claim{Identity: DataIdentity(s.cfg), Signer: s.signer, Previous: s.retired}
		res, err := s.claimSinks(ctx, claim)
		if err != nil {
			return nil, err
		}
		if err := s.checkSinks(ctx); err != nil {
			return nil, err
		}
		if err := CheckDeadLetterDir(s.cfg.Output); err != nil {
			return nil, err
		}
		s.claims = res
		for _, sk := range s.sinks.Sinks {
			if g, ok := sk.(groupWarner); ok {
				if w := g.GroupWarning(); w != "" {
					s.log.Warn(w, "sink", sk.Name())
				}
			}
		}
		for i, r := range res {
			if len(r.Others) > 0 {
				s.log.Warn("the sink's location holds other data: readers of it read that too, and verify reports it; give the sink a location of its own",
					"sink", s.sinks.Sinks[i].Name(), "other", strings.Join(r.Others, ", "))
			}
			if r.Within != "" {
				s.log.Warn("the sink's location lies inside another sink's: readers and verify of that one read this one's files too; give the sink a location outside it",
					"sink", s.sinks.Sinks[i].Name(), "marker", r.Within)
			}
			if r.Adopted {
				s.log.Info("the sink already holds data but no marker: adopted as this configuration's",
					"sink", s.sinks.Sinks[i].Name(), "marker", r.Location)
			}
		}
		s.checked = true
	}
	return s.sinks, nil
}

// markSinks writes the markers of the file-like sinks' locations for this
// configuration, once, before the first write there (a day's files, a
// relink), and cleans up what killed runs left in them. A run that fails
// before it delivers anything (a base_url or an event key the API refuses)
// leaves no location marked, so that the corrected configuration is not
// refused there; one that another configuration marked meanwhile is
// refused as at the start, before anything is written.
func (s *Session) markSinks(ctx context.Context) error {
	if s.marked {
		return nil
	}
	claim := sinks.Claim{Identity: DataIdentity(s.cfg), Signer: s.signer, Previous: s.retired, Create: true}
	if _, err := s.claimSinks(ctx, claim); err != nil {
		return err
	}
	s.marked = true
	return nil
}

// claimSinks claims every file-like sink for c (sinkset.ClaimOne), with every
// refusal joined, each naming its sink; each claim a sink call (sinkCall):
// under the plan's sink deadline, if any, and seen by a follow loop's
// watchdog.
func (s *Session) claimSinks(ctx context.Context, c sinks.Claim) ([]sinks.ClaimResult, error) {
	res := make([]sinks.ClaimResult, len(s.sinks.Sinks))
	var all []error
	for i, sk := range s.sinks.Sinks {
		if _, ok := sk.(sinks.Claimer); !ok {
			continue
		}
		cctx, done := s.sinkCall(ctx, sk.Name(), "claim")
		r, err := sinkset.ClaimOne(cctx, sk, c)
		res[i] = r
		if err = done(err); err != nil {
			all = append(all, fmt.Errorf("sinks[%d] %s: %w", i, sk.Name(), err))
		}
	}
	return res, errors.Join(all...)
}

// checkSinks probes every sink that can be probed (sinkset.CheckOne), and
// returns the first failure, named by its index; each check a sink call.
func (s *Session) checkSinks(ctx context.Context) error {
	for i, sk := range s.sinks.Sinks {
		if _, ok := sk.(sinks.Checker); !ok {
			continue
		}
		cctx, done := s.sinkCall(ctx, sk.Name(), "check")
		if err := done(sinkset.CheckOne(cctx, sk)); err != nil {
			return fmt.Errorf("sinks[%d]: %w", i, err)
		}
	}
	return nil
}

// ownerCheck starts checkOwner beside the plan's first requests, unless it
// is done, and returns what waits for its result: the plan commits nothing
// it fetched (a checkpoint, a day) before that says yes, so another
// workspace's events never reach the spool or a sink, while the answer's
// latency is not added to the run's. The plan waits for it before it ends.
// A token changed in source.token_file during the plan has its owner
// checked before anything more is committed: the windows fetched with it
// may be another workspace's (was: not before the next plan, after a
// catch-up of days had delivered them). Safe for concurrent use.
func (s *Session) ownerCheck(ctx context.Context) func() error {
	var first func() error
	if !s.ownerChecked || s.ownerToken != s.client.TokenGeneration() {
		done := make(chan error, 1)
		go func() { done <- s.checkOwner(ctx) }()
		first = func() error { return <-done }
	}
	var mu sync.Mutex
	var err error
	return func() error {
		mu.Lock()
		defer mu.Unlock()
		if first != nil {
			err, first = first(), nil
		}
		if err == nil && s.ownerChecked && s.ownerToken != s.client.TokenGeneration() {
			err = s.checkOwner(ctx)
		}
		return err
	}
}

// checkOwner (run by ownerCheck, beside the plan's workers: it uses only
// the client, which is safe for that, and the state's owner record, which
// nothing else touches) compares the token's owner (GET /oauth/token/info) with the
// owner whose token exported the state's days, and records it on first
// use. Only a workspace's owner reads its audit log, and the token is no
// part of the state's key: a configuration copied with only another
// workspace's token keys this state, and would mix that workspace's events
// into this output and mark its days as this one's. An API that does not
// tell leaves it unchecked, with a warning; a failure that may pass (an
// outage) is asked again by the next plan.
func (s *Session) checkOwner(ctx context.Context) error {
	rec, known, err := s.store.Owner()
	if err != nil {
		return err
	}
	// Before the request: a token changed while it is under way is
	// checked again.
	s.ownerToken = s.client.TokenGeneration()
	ti, err := s.client.TokenInfo(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// An API that refused to tell will refuse again: said once. After
		// an outage the next plan asks again, and the outage is the plan's
		// to report (a follow loop's every cycle would say it again here).
		s.ownerChecked = failure.IsPermanent(err)
		if !s.ownerChecked {
			s.log.Debug("the token's owner is not checked yet: the next plan asks again", "error", err)
			return nil
		}
		s.log.Warn("the token's owner is not checked against the state's: the API did not tell it", "error", err)
		return nil
	}
	s.ownerChecked = true
	if !known {
		return s.store.SetOwner(state.Owner{UserID: ti.UserID, Since: s.now()})
	}
	return ownerMismatch(&s.store.View, rec, ti.UserID)
}

// CheckOwner tells whether userID, the owner of a token, is the owner whose
// token exported the days of the state v (see Session's check before its
// first plan): nil when it is, or when the state records none yet.
func CheckOwner(v *state.View, userID int64) error {
	rec, known, err := v.Owner()
	if err != nil || !known {
		return err
	}
	return ownerMismatch(v, rec, userID)
}

// ownerMismatch is the usage error of a token of another owner than rec.
func ownerMismatch(v *state.View, rec state.Owner, userID int64) error {
	if userID == rec.UserID {
		return nil
	}
	return failure.Usagef("source: the token is user %d's (GET /oauth/token/info), but this state's days were exported with user %d's token (since %s): "+
		"only a workspace's owner reads its audit log, so this is another workspace's token, as in a copy of this configuration, and its events would mix into this output; "+
		"give that workspace a source.workspace and sinks of its own; if this workspace passed to user %d as its owner, remove %s and run again",
		userID, rec.UserID, rec.Since.Format(time.DateOnly), userID, v.OwnerPath())
}

// OpenSinks builds the sinks and claims them for this configuration now
// rather than at the first Execute (a follow loop, before it records a
// position): a usage error when one holds another configuration's data or
// its settings are wrong; any other error is retried by the next call.
func (s *Session) OpenSinks(ctx context.Context) error {
	_, err := s.openSinks(ctx)
	return err
}

// Close closes the sinks (flushing what they hold) within ctx and releases
// the state. Every error is returned, joined: a sink that fails to flush
// fails the run. Safe to call twice.
func (s *Session) Close(ctx context.Context) error {
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	if s.sinks != nil {
		if err := s.sinks.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("sinks: %w", err))
		}
	}
	if err := s.store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("state: %w", err))
	}
	return errors.Join(errs...)
}

// Abandon releases the state without closing the sinks, for a process
// that exits while a sink call has not returned (a follow loop's watchdog):
// closing would wait on that call, or race with it. As after a kill, the
// next start redoes what was under way. Close does nothing after it.
func (s *Session) Abandon() error {
	if s.closed {
		return nil
	}
	s.closed = true
	if err := s.store.Close(); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

// Drop tells which records cfg does not export: the keys of
// transform.drop_event_keys and, with transform.drop_own_reads, the reads
// of the log made under the state's reader id ("" for none yet: then no
// read is the exporter's own).
func Drop(cfg *config.Config, reader string) transform.Drop {
	own := ""
	if cfg.Transform.DropOwnReads && reader != "" {
		own = extract.Agent(reader)
	}
	return transform.NewDrop(cfg.Transform.DropEventKeys, own)
}

// groupWarner is a file sink (filesink.Sink.GroupWarning): it tells when
// the directories it creates lose the group a log forwarder reads through.
type groupWarner interface{ GroupWarning() string }

// logSetter is a sink that logs what it waits for (kafkasink.Sink.SetLogger:
// messages sent again while a broker restarts).
type logSetter interface{ SetLogger(*slog.Logger) }
