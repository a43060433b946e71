// Package verify reads back what the file and S3 sinks hold and checks it:
// each day against its manifest (files present, sizes, sha256, record
// counts, schema version, no id twice in the day, S3 checksums), the
// manifests against the root's identity and against each other (the
// chain, optionally signed), and the days against the record of exported
// days. With AgainstAPI it also compares each day with what the API returns
// now, and with Repair it delivers the days that fail again, through a
// pipeline session, then checks them once more.
package verify

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/extract"
	"github.com/pachca-export/pachca-export/internal/failure"
	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinkset"
	"github.com/pachca-export/pachca-export/state"
	"github.com/pachca-export/pachca-export/transform"
)

// Options configure a verification.
type Options struct {
	Config *config.Config
	Logger *slog.Logger
	// From and To bound the days checked, [From, To); both zero: every day
	// the sinks hold or the state records as exported; one of them zero:
	// those days, on or after From's day, or before To.
	From, To time.Time
	// PublicKey must have signed every manifest. Nil: the public half of
	// signing.private_key_file when configured, else signatures are not
	// checked (and reported as such).
	PublicKey ed25519.PublicKey
	// PreviousKeys are accepted as well as PublicKey: keys it replaced.
	// Both nil: signing.previous_public_key_files.
	PreviousKeys []ed25519.PublicKey
	// AgainstAPI compares each day with the events the API returns now.
	AgainstAPI bool
	// Repair delivers the failing days again (implies AgainstAPI).
	Repair     bool
	HTTPClient *http.Client
	Now        func() time.Time
}

// Status is the verdict of one line.
type Status string

// The verdicts.
const (
	OK   Status = "OK"
	Fail Status = "FAIL"
	Skip Status = "SKIP" // a sink that cannot be read back (a stream)
)

// Line is one verdict: one day of one sink, or a whole sink (Day "").
type Line struct {
	Day    string
	Sink   string
	Status Status
	Detail string
}

// Report is the outcome of Run.
type Report struct {
	Lines []Line
	// Repaired are the days delivered again (not those refused); After
	// the lines of every day tried, afterwards.
	Repaired []string
	After    []Line
	// Empty: no day was checked, in any sink (none held in the range, none
	// recorded as exported). A verification of nothing is no success.
	Empty bool
	// Streams: every sink is a stream (Kafka, stdout), which cannot be
	// read back, so Empty whatever the state records as exported.
	Streams bool
}

// Failed reports whether anything is wrong in the end: a FAIL line that a
// repair did not set right, or nothing checked at all (Empty).
func (r *Report) Failed() bool {
	if r.Empty {
		return true
	}
	for _, l := range r.Lines {
		if l.Status != Fail {
			continue
		}
		if l.Day == "" && slices.ContainsFunc(r.After, func(a Line) bool { return a.Day == "" && a.Sink == l.Sink }) {
			continue // checked once more after the repair
		}
		if l.Day == "" || !slices.Contains(r.Repaired, l.Day) {
			return true
		}
	}
	return slices.ContainsFunc(r.After, func(l Line) bool { return l.Status == Fail })
}

// verifier holds what every day's check needs.
type verifier struct {
	o        Options
	cfg      *config.Config
	roots    []*root
	exported map[string]state.Day
	// followStart is where a follow loop on this state took over ("" for
	// none): the days from its day on are the loop's to seal.
	followStart string
	client      *extract.Client
	drop        transform.Drop // what a run does not export, for --against-api
	deadLetters string         // where a run puts the events that do not parse
	// session delivers the days a repair does; opened first, it holds the
	// state's lock from before the check to the end.
	session *pipeline.Session
	// foreign are the days a sink holds whole with none of the events the
	// API returns for them (check): another source's events, which a
	// repair would replace, not complete.
	foreign map[string]bool
}

// Run verifies the sinks of o.Config. Its error is about the verification
// itself (a sink or the API that cannot be read, a damaged state); what
// it found wrong in the output is in the Report, which, with an API that
// cannot be read, still holds the lines of the files.
func Run(ctx context.Context, o Options) (_ *Report, err error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.AgainstAPI = o.AgainstAPI || o.Repair
	if !o.From.IsZero() && !o.To.IsZero() {
		if err := pipeline.CheckRange(o.From, o.To); err != nil {
			return nil, err
		}
	}
	if o.AgainstAPI {
		if err := o.Config.Source.RequireToken(o.Config.File); err != nil {
			return nil, failure.AsUsage(err) // as for run
		}
	}
	v := &verifier{o: o, cfg: o.Config, foreign: map[string]bool{}}
	if o.Repair {
		// The state's lock first: a run at work on it (or stopped with
		// SIGSTOP) refuses the repair at once, not after every day was read
		// from the API; and no run writes between the check and the repair.
		// A stdout sink would mix records into the verdicts: a repair is for
		// the sinks that keep what they hold (Kafka gets the days again).
		if v.session, err = pipeline.Open(ctx, pipeline.Options{Config: v.cfg, Logger: o.Logger, HTTPClient: o.HTTPClient, Now: o.Now, Stdout: io.Discard, Mode: "verify --repair"}); err != nil {
			return nil, fmt.Errorf("--repair: %w", err)
		}
		defer func() {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pipeline.ShutdownTimeout)
			defer cancel()
			err = errors.Join(err, v.session.Close(cctx))
		}()
	}
	if v.o.PublicKey == nil && v.o.PreviousKeys == nil {
		key, err := pipeline.Signer(o.Config)
		if err != nil {
			return nil, err
		}
		if key != nil {
			v.o.PublicKey = key.Public().(ed25519.PublicKey)
		}
		if v.o.PreviousKeys, err = pipeline.PreviousKeys(o.Config); err != nil {
			return nil, err
		}
	}
	set, err := sinkset.Build(ctx, o.Config.Sinks, io.Discard)
	if err != nil {
		return nil, err
	}
	defer set.Close(context.WithoutCancel(ctx))
	view, err := state.Peek(o.Config.State.Dir, pipeline.Identity(o.Config), pipeline.FormerIdentities(o.Config)...)
	if err != nil {
		return nil, err
	}
	if v.exported, err = view.Exported(); err != nil {
		return nil, err
	}
	v.deadLetters = pipeline.DeadLetterRoot(o.Config.Output, view.Dir())
	rep := &Report{}
	rep.Lines = v.open(ctx, set)
	if f, ok, err := view.Follow(); err != nil {
		return nil, err
	} else if ok {
		v.followStart = f.Start.UTC().Format(time.DateOnly)
	}
	if o.AgainstAPI {
		// With the state's reader id, as a run: its reads of the log are
		// the exporter's own, and so are those of the runs it compares.
		reader, err := view.ReaderID()
		if err != nil {
			return nil, err
		}
		cc := o.Config.Source.ClientConfig(o.HTTPClient)
		cc.UserAgent = extract.Agent(reader)
		v.client = extract.NewClient(cc)
		v.drop = pipeline.Drop(o.Config, reader)
	}
	lines, err := v.check(ctx, v.days(ctx))
	rep.Lines = append(rep.Lines, lines...)
	if err != nil {
		return rep, err
	}
	// Nothing checked, and nothing failed either: a sink that could not be
	// read (unreachable) has its FAIL line, which says why.
	rep.Empty = len(lines) == 0 && !slices.ContainsFunc(rep.Lines, func(l Line) bool { return l.Status == Fail })
	rep.Streams = !slices.ContainsFunc(set.Sinks, func(sk sinks.Sink) bool {
		_, ok := sk.(sinks.Rooted)
		return ok
	})
	if !o.Repair {
		return rep, nil
	}
	var todo []string
	for _, l := range rep.Lines {
		if l.Status == Fail && l.Day != "" && !slices.Contains(todo, l.Day) && v.inRetention(l.Day) {
			todo = append(todo, l.Day)
		}
	}
	if len(todo) == 0 {
		return rep, nil
	}
	slices.Sort(todo)
	// A day the repair could not deliver is named in its error; the others
	// are delivered and checked once more all the same.
	var repairErr error
	rep.Repaired, repairErr = v.repair(ctx, todo)
	if len(rep.Repaired) == 0 {
		return rep, repairErr
	}
	if v.exported, err = view.Exported(); err != nil { // the repair recorded the days again
		return rep, errors.Join(repairErr, err)
	}
	rep.After, err = v.check(ctx, todo)
	rep.After = append(v.recheckRoots(ctx, rep.Lines), rep.After...)
	return rep, errors.Join(repairErr, err)
}

// recheckRoots checks once more, after a repair, the roots that had a
// FAIL line of their own (one removed whole, which the repair created
// again): a line each, which supersedes the first.
func (v *verifier) recheckRoots(ctx context.Context, lines []Line) []Line {
	var after []Line
	for _, r := range v.roots {
		if !slices.ContainsFunc(lines, func(l Line) bool { return l.Day == "" && l.Sink == r.label && l.Status == Fail }) {
			continue
		}
		l := Line{Sink: r.label, Status: OK, Detail: r.store.Location("") + " holds the days delivered again"}
		if problems, err := r.checkRoot(ctx); err != nil {
			l.Status, l.Detail = Fail, err.Error()
		} else if len(problems) > 0 {
			l.Status, l.Detail = Fail, strings.Join(problems, "; ")
		}
		after = append(after, l)
	}
	return after
}

// open turns every sink into a root to check, or into a line saying why it
// cannot be.
// keys are the keys a signature must check with, the current one first;
// none: signatures are not checked.
func (v *verifier) keys() []ed25519.PublicKey {
	var keys []ed25519.PublicKey
	if v.o.PublicKey != nil {
		keys = append(keys, v.o.PublicKey)
	}
	return append(keys, v.o.PreviousKeys...)
}

func (v *verifier) open(ctx context.Context, set *sinkset.Set) []Line {
	claims, errs := set.Claim(ctx, sinks.Claim{Identity: pipeline.DataIdentity(v.cfg)})
	var lines []Line
	for i, sk := range set.Sinks {
		label := fmt.Sprintf("sinks[%d] %s", i, sk.Name())
		rooted, ok := sk.(sinks.Rooted)
		switch {
		case !ok:
			lines = append(lines, Line{Sink: label, Status: Skip, Detail: "a stream: what it received cannot be read back"})
			continue
		case errs[i] != nil:
			lines = append(lines, Line{Sink: label, Status: Fail, Detail: errs[i].Error()})
			continue
		case !claims[i].Marked && claims[i].Adopted:
			lines = append(lines, Line{Sink: label, Status: Fail, Detail: "holds data but no " + sinks.MarkerName +
				" (removed, or written before markers): the next run adopts it"})
		}
		tmp := os.TempDir() // where Parquet objects are downloaded to be read
		if sc := v.cfg.Sinks[i].S3; sc != nil && sc.TempDir != "" {
			tmp = sc.TempDir
		}
		r := &root{label: label, store: rooted.Root(), layout: rooted.Layout(),
			identity: claims[i].IdentityHash, schema: claims[i].Identity.Schema, keys: v.keys(), tmpDir: tmp,
			deadLetters: v.deadLetters}
		problems, err := r.checkRoot(ctx)
		switch {
		case errors.Is(err, fs.ErrNotExist) && len(v.exported) > 0:
			// The state records days exported here: each is a FAIL line
			// of its own, which --repair delivers again.
			lines = append(lines, Line{Sink: label, Status: Fail, Detail: r.store.Location("") +
				" does not exist, but the state records days exported here: moved or removed"})
		case errors.Is(err, fs.ErrNotExist):
			lines = append(lines, Line{Sink: label, Status: Fail, Detail: r.store.Location("") +
				" does not exist: nothing was exported here (another directory?), or it was moved or removed"})
			continue
		case err != nil:
			lines = append(lines, Line{Sink: label, Status: Fail, Detail: err.Error()})
			continue
		case len(problems) > 0:
			lines = append(lines, Line{Sink: label, Status: Fail, Detail: strings.Join(problems, "; ")})
		}
		v.roots = append(v.roots, r)
	}
	return lines
}

// days are the days to check: those of [From, To), or without a range
// every day a root holds or the state records (with a bound on one side
// only, those on its side of it).
func (v *verifier) days(ctx context.Context) []string {
	var out []string
	from := v.o.From.UTC().Truncate(24 * time.Hour)
	if !v.o.From.IsZero() && !v.o.To.IsZero() {
		for d := from; d.Before(v.o.To); d = d.AddDate(0, 0, 1) {
			out = append(out, d.Format(time.DateOnly))
		}
		return out
	}
	for d := range v.exported {
		out = append(out, d)
	}
	for _, r := range v.roots {
		days, err := r.store.Days(ctx, r.layout.Meta)
		if err != nil {
			continue // reported by check, which lists them again
		}
		for _, d := range days {
			out = append(out, strings.TrimPrefix(d, "dt="))
		}
	}
	out = slices.DeleteFunc(out, func(day string) bool {
		d, err := time.Parse(time.DateOnly, day)
		return err == nil && (d.Before(from) || !v.o.To.IsZero() && !d.Before(v.o.To))
	})
	slices.Sort(out)
	return slices.Compact(out)
}

func (v *verifier) inRetention(day string) bool {
	t, err := time.Parse(time.DateOnly, day)
	return err == nil && t.AddDate(0, 0, 1).After(v.o.Now().Add(-v.cfg.Period.Retention))
}

// retained reports whether the API holds day whole: it starts at or after
// the retention's edge (now - period.retention).
func (v *verifier) retained(day string) bool {
	t, err := time.Parse(time.DateOnly, day)
	return err == nil && !t.Before(v.o.Now().Add(-v.cfg.Period.Retention))
}

// over reports whether day has ended for an export: its end is at or
// before now - period.lag. A day not over can only be held in part (a
// follow loop's cycle files, a run of part of it): the API has more of it
// by then, and delivering it again would add a part beside its files.
func (v *verifier) over(day string) bool {
	t, err := time.Parse(time.DateOnly, day)
	return err == nil && !t.AddDate(0, 0, 1).After(v.o.Now().Add(-v.cfg.Period.Lag))
}

// apiChunk is how many days check reads from the API at once: as many as
// a run fetches ahead of its delivery, so that every worker has a day (and
// a day's windows are split while workers are idle).
func (v *verifier) apiChunk() int { return max(2, v.cfg.Source.Concurrency) }

// check checks days (sorted) in every root: one line per day and root.
// With AgainstAPI the API's ids are read apiChunk days at a time, and each
// chunk's days are checked in every root before the next is read, so that
// a verify holds the API's ids of a few days, not of the whole range (was:
// every day's, 110 MB RSS for 500,000 events, past a 96 MB box's memory).
// The days of a chunk (without the API, all of them) are read workers()
// at a time, each day of each root on its own; their results are then
// walked in order for the chain, so that the lines and the error are
// those of a check of one day after another.
func (v *verifier) check(ctx context.Context, days []string) ([]Line, error) {
	apiN := map[string]int{}            // the API's event count of each day compared
	apiDead := map[string]deadLetters{} // and of those a run dead-letters
	var compared []string
	var apiErr error
	byDay := map[string][]held{}
	type walk struct {
		prev []byte // the manifest the next held day must link to
		last int    // index in all of the day checked last
	}
	walks := make([]walk, len(v.roots))
	all := make([][]string, len(v.roots)) // the days each root holds
	for i, r := range v.roots {
		var err error
		all[i], err = r.store.Days(ctx, r.layout.Meta)
		if err != nil && !errors.Is(err, fs.ErrNotExist) { // a root removed holds no day
			return nil, err
		}
		walks[i] = walk{last: -2}
	}
	started, toRead := time.Now(), 0
	// Without the API the days are checked in one go, workers() at a time;
	// with it, a chunk after each read.
	size := max(1, len(days))
	if v.o.AgainstAPI {
		size = v.apiChunk()
	}
	// A day not over is compared over what its files cover, when every
	// sink's files cover the same (was: not compared at all, though the
	// day of an incident is today, held in part by a run of its hours).
	parts := map[string][]span{}
	if v.o.AgainstAPI {
		for _, d := range days {
			if v.inRetention(d) && !v.over(d) {
				if spans, ok := v.partCoverage(ctx, d); ok {
					parts[d] = spans
				}
			}
		}
		compares := func(d string) bool { _, part := parts[d]; return v.inRetention(d) && (v.over(d) || part) }
		toRead = len(days) - len(slices.DeleteFunc(slices.Clone(days), compares))
	}
	for chunk := range slices.Chunk(days, size) {
		var api map[string]*idSet
		var dead map[string]deadLetters
		if v.o.AgainstAPI && apiErr == nil {
			these := slices.DeleteFunc(slices.Clone(chunk), func(d string) bool {
				_, part := parts[d]
				return !v.inRetention(d) || !v.over(d) && !part
			})
			var err error
			if onAPIRead != nil {
				onAPIRead(len(these))
			}
			if api, dead, err = apiIDs(ctx, v.cfg, v.client, v.drop, these, parts); err != nil {
				// The files are checked all the same: their lines, then
				// this error; the days after are not compared.
				api, apiErr = nil, fmt.Errorf("--against-api: %w", err)
			} else if len(these) > 0 {
				compared = append(compared, these...)
				// A long range far from the API reads for minutes before
				// the first line: say how far it got (was: silence,
				// then every line at once).
				n, nDead := 0, 0
				for _, ids := range api {
					n += ids.len()
				}
				for _, d := range dead {
					nDead += d.n()
				}
				v.o.Logger.Info("verify: the API's events read", "from", these[0], "to", these[len(these)-1],
					"events", n, "days_read", len(compared), "days", toRead, "elapsed", time.Since(started).Round(time.Second).String(), "dead_letters", nDead)
			}
		}
		results, err := v.checkDays(ctx, chunk, all, api)
		if err != nil {
			return nil, err
		}
		// The chain, in order: each held day links to the manifest of the
		// closest day before it that has one.
		for i, r := range v.roots {
			w := &walks[i]
			for k, day := range chunk {
				dir := "dt=" + day
				res := results[i*len(chunk)+k]
				if j, ok := slices.BinarySearch(all[i], dir); ok {
					if w.last != j-1 { // not right after the day checked last: look back
						w.prev = r.before(ctx, all[i], dir)
					}
					res.checkChain(w.prev)
					if res.manifest != nil {
						w.prev = res.manifest
					}
					w.last = j
				}
				// No day directory, or one holding neither a manifest nor a
				// data file (emptied, the directory left).
				if _, ok := v.exported[day]; ok && res.manifest == nil && len(res.problems) == 0 {
					res.fail("nothing here, but the state records the day as exported (deleted?)")
				}
				byDay[day] = append(byDay[day], held{r, res})
			}
		}
		for day, ids := range api {
			apiN[day] = ids.len()
		}
		for day, d := range dead {
			apiDead[day] = d
		}
	}
	if onChecked != nil {
		onChecked(byDay)
	}
	var lines []Line
	for _, day := range days {
		v.compare(day, byDay[day])
		for _, h := range byDay[day] {
			res := h.res
			some := res.manifest != nil || len(res.problems) > 0
			cmp := slices.Contains(compared, day)
			if spans, part := parts[day]; part && cmp && res.manifest != nil {
				// The API was asked for what the files covered before they
				// were read: a run that wrote more of the day meanwhile
				// holds events outside it, which are no extra events.
				if s, _ := manifestCoverage(res.manifest); !slices.Equal(s, spans) {
					cmp = false
					res.note("not compared with the API: the day, not over, was written while it was checked; verify again")
				}
			}
			if nAPI, ok := apiN[day]; ok && cmp {
				if res.unread {
					// Its files are there but were not read (the day fails
					// for that): they are not missing, and what they hold
					// is not known.
					res.fail("not compared with the API's %d event(s): the day's files were not read", nAPI)
				} else {
					if d := apiDead[day]; d.n() > 0 {
						// Not missing: a run sends them to its dead-letter
						// files, their only copy (was: not a word of them,
						// "all the API has" read as every event).
						var why []string
						if d.unparsed > 0 {
							why = append(why, fmt.Sprintf("%d cannot be parsed", d.unparsed))
						}
						if d.twins > 0 {
							why = append(why, fmt.Sprintf("%d with the id of another, different event", d.twins))
						}
						res.note("%d more event(s) the API returns are not exported, by design, but dead-lettered (%s): %s", d.n(), filepath.Join(v.deadLetters, "dt="+day), strings.Join(why, ", "))
					}
					if res.lost.n > 0 {
						res.fail("%d event(s) the API has are missing (%s)", res.lost.n, res.lost.sample)
					}
					// The log is immutable: within the retention the API
					// returns every event it ever had. Only the day on
					// the retention's edge has lost its first events.
					if extra := res.extra; extra.n > 0 && v.retained(day) {
						held := "the day whole"
						if !v.over(day) {
							held = "what the files cover (" + spansText(parts[day]) + ")"
						}
						if extra.n < res.nIDs {
							res.fail("%d event(s) here the API does not return (%s), though it holds %s and its log is immutable: added to the files, or exported from another source?", extra.n, extra.sample, held)
						} else {
							v.foreign[day] = true
							res.fail("none of the %d event(s) here is among the %d the API returns (%s), though it holds %s and its log is immutable: "+
								"exported from another source (another workspace's token?); --repair leaves the day as it is", extra.n, nAPI, extra.sample, held)
						}
					}
				}
				some = some || nAPI > 0 || apiDead[day].n() > 0
			}
			switch {
			case !some || !v.o.AgainstAPI:
			case !v.over(day) && cmp:
				res.note("the day is not over: compared with the API over what its files cover, %s", spansText(parts[day]))
			case !v.over(day) && slices.Contains(compared, day):
			case !v.over(day):
				res.note("not compared with the API: the day is not over (it ends after now - period.lag)")
			case !v.inRetention(day):
				res.note("not compared with the API: the day is past period.retention (the API no longer returns it)")
			}
			if some { // else a day of the range that nobody has: nothing to say
				lines = append(lines, h.r.line(day, res, cmp))
			}
		}
	}
	return lines, apiErr
}

// workers is how many days (of one root each) check reads at once: one a
// core, at most 4, for each holds the ids of its day while it is read.
var workers = func() int { return min(runtime.GOMAXPROCS(0), 4) }

// checkDays checks each day of days in each root (all: the days each
// holds), workers() at a time, and returns the results root by root, day
// by day, each with its ids settled with api; the link of each manifest
// to the day before is left to check, which walks them in order. Its
// error is that of the first day in that order whose check failed (the
// days after it are not all checked), as if they were checked one by one.
func (v *verifier) checkDays(ctx context.Context, days []string, all [][]string, api map[string]*idSet) ([]*dayResult, error) {
	n := len(days)
	results := make([]*dayResult, len(v.roots)*n)
	errs := make([]error, len(results))
	var mu sync.Mutex
	first := len(results) // the index of the first check that failed
	var g errgroup.Group
	g.SetLimit(workers())
	for u := range results {
		mu.Lock()
		stop := u > first
		mu.Unlock()
		if stop || ctx.Err() != nil {
			break
		}
		g.Go(func() error {
			// A stop (SIGINT, SIGTERM) checks no day after it: the
			// files of a local sink are read whatever the context
			// (was: every day to the end, a minute for 90 days of
			// 100,000 events, and exit status 0).
			if ctx.Err() != nil {
				return nil
			}
			r, day := v.roots[u/n], days[u%n]
			res := &dayResult{ids: newIDSet()}
			if _, ok := slices.BinarySearch(all[u/n], "dt="+day); ok {
				var err error
				if res, err = v.checkOpenDay(ctx, r, day); err != nil {
					mu.Lock()
					errs[u], first = err, min(first, u)
					mu.Unlock()
					return nil
				}
			}
			if onDay != nil {
				onDay()
			}
			res.settleIDs(api[day])
			results[u] = res
			return nil
		})
	}
	g.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return results, nil
}

// checkOpenDay is r.checkDay of day. A day the state does not record as
// exported may be in the writing (a follow loop's cycle, a run): a check
// during which its manifest changed read the files and the manifest of two
// moments (a file listed but not renamed in yet when the directory was
// read, cycle files compacted away by a seal), and is done again, up to
// three times.
func (v *verifier) checkOpenDay(ctx context.Context, r *root, day string) (*dayResult, error) {
	dayDir := "dt=" + day
	if _, done := v.exported[day]; done {
		return r.checkDay(ctx, dayDir)
	}
	manifest := func() []byte {
		b, _, _ := r.store.Get(ctx, r.layout.ManifestName(dayDir))
		return b
	}
	for try := 1; ; try++ {
		before := manifest()
		res, err := r.checkDay(ctx, dayDir)
		if err != nil || try == 3 || bytes.Equal(before, res.manifest) && bytes.Equal(res.manifest, manifest()) {
			return res, err
		}
	}
}

// held is what one root holds of a day.
type held struct {
	r   *root
	res *dayResult
}

// compare checks the record counts of a day's manifests. The state records
// how many events a run delivered for a whole day, and each sink's file of
// the whole day holds them all (follow.keep_cycle_files: the day's parts
// together); a day a follow loop sealed may be recorded with only the
// events new at the seal (versions before this one did so), which makes
// the state a lower bound there. Where the state does not settle it, the
// sinks of one configuration, which get the same events, must agree.
func (v *verifier) compare(day string, hs []held) {
	d, recorded := v.exported[day]
	followed := v.followStart != "" && day >= v.followStart
	failed := map[*root]bool{}
	if recorded {
		for _, h := range hs {
			if !h.res.counted {
				continue // no manifest, or one that cannot be read: said so already
			}
			n, what := h.res.listed, "the manifest lists"
			if h.res.hasDayFile {
				n, what = h.res.dayFile, "the day's file holds"
			}
			if n != d.Records && (!followed || n < d.Records) {
				why := "files removed, or the manifest edited?"
				if n > d.Records {
					why = "events added, or the state is older than the files: restored from a backup?"
				}
				h.res.fail("the state records %d events exported for the day, %s %d (%s)", d.Records, what, n, why)
				failed[h.r] = true
			}
		}
		if !followed {
			return
		}
	}
	// Each root's count: its manifest's, or 0 for a root that holds
	// nothing of the day; a manifest that cannot be read, or a root found
	// short already, counts for none.
	// A day a loop is feeding (not recorded yet) is compared up to the last
	// cycle every sink lists: a verify that reads the manifests while a
	// cycle commits to one sink after the other finds it in some only.
	var through time.Time
	if !recorded {
		for _, h := range hs {
			last := h.res.lastPart()
			if failed[h.r] || !h.res.counted || last.IsZero() {
				through = time.Time{}
				break
			}
			if through.IsZero() || last.Before(through) {
				through = last
			}
		}
	}
	counts := map[*root]int64{}
	freq := map[int64]int{}
	for _, h := range hs {
		switch {
		case failed[h.r]:
			continue
		case h.res.counted && !through.IsZero():
			counts[h.r] = h.res.listed - h.res.partsAfter(through)
		case h.res.counted:
			counts[h.r] = h.res.listed
		case h.res.manifest == nil && len(h.res.problems) == 0:
			counts[h.r] = 0
		default:
			continue
		}
		freq[counts[h.r]]++
	}
	if len(freq) < 2 {
		return
	}
	mode, best, tie := int64(0), 0, false
	for n, f := range freq {
		switch {
		case f > best:
			mode, best, tie = n, f, false
		case f == best:
			tie = true
		}
	}
	for _, h := range hs {
		n, ok := counts[h.r]
		if !ok || n == mode && !tie {
			continue
		}
		var others []string
		for _, o := range hs {
			if m, ok := counts[o.r]; ok && m != n {
				others = append(others, fmt.Sprintf("%s holds %d", o.r.label, m))
			}
		}
		why := "sinks of one configuration get the same events"
		if n == 0 {
			why += "; a sink added after the day was exported has none of them: --repair delivers the day to it"
		}
		h.res.fail("%d events here, but %s for the day (%s)", n, strings.Join(others, ", "), why)
	}
}

// before returns the manifest of the closest day before dir that has one
// that can be read, nil when none: the one checking the days in order
// would have kept.
func (r *root) before(ctx context.Context, all []string, dir string) []byte {
	i, _ := slices.BinarySearch(all, dir)
	for i--; i >= 0; i-- {
		if b, _, err := r.store.Get(ctx, r.layout.ManifestName(all[i])); err == nil {
			return b
		}
	}
	return nil
}

// line turns a day's result into its verdict.
func (r *root) line(day string, res *dayResult, compared bool) (l Line) {
	l = Line{Day: day, Sink: r.label, Status: OK}
	if len(res.problems) > 0 {
		l.Status, l.Detail = Fail, strings.Join(res.problems, "; ")
		return l
	}
	defer func() {
		for _, n := range res.notes {
			l.Detail += "; " + n
		}
	}()
	l.Detail = fmt.Sprintf("%d file(s), %d events", res.files, res.records)
	if compared {
		l.Detail += ", all the API has"
		if res.extra.n > 0 {
			l.Detail += fmt.Sprintf(" (%d no longer returned by it: the day straddles the API's retention edge)", res.extra.n)
		}
	}
	if res.signed != "" {
		l.Detail += ", signed by key " + res.signed + " (not checked: give --public-key)"
	} else if res.previousKey != "" {
		l.Detail += ", signature good (previous key " + res.previousKey + ")"
	} else if len(r.keys) > 0 {
		l.Detail += ", signature good"
	}
	return l
}

// onListed, when set (by tests), is called by each check of a day of a
// root between the listing of its files and the read of its manifest.
var onListed func(root, dayDir string)

// onChecked, when set (by tests), is called with every day's results
// once every root is checked, before they become lines.
var onChecked func(byDay map[string][]held)

// onDay, when set (by tests), is called by each check of a day (of one
// root), its ids read and not yet settled.
var onDay func()

// onAPIRead, when set (by tests), is called with the number of days of
// each read of the API's ids.
var onAPIRead func(days int)

// sample names up to three ids.
func sample(ids []string) string {
	if len(ids) > 3 {
		return strings.Join(ids[:3], ", ") + ", ..."
	}
	return strings.Join(ids, ", ")
}

// repair delivers days again, one plan per day in one session: the day's
// files are rewritten from what the API returns now, replacing the broken
// ones (a day that would shrink is refused, as in any run). A day that
// fails does not stop the others: it returns the days delivered and the
// errors of the others, each naming its day.
func (v *verifier) repair(ctx context.Context, days []string) (delivered []string, err error) {
	s := v.session
	var refusals, errs []error
	for _, d := range days {
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("--repair %s: %w", d, err))
			continue
		}
		if v.foreign[d] {
			// Delivering it would replace those events with the API's, as
			// a run given another workspace's token would.
			errs = append(errs, fmt.Errorf("--repair %s: the output holds none of the events the API returns for the day: "+
				"another source's (another workspace's token?), not replaced; check source.token and source.base_url, "+
				"or move the day's files away to export it again", d))
			continue
		}
		if !v.over(d) {
			// Its plan would be a part, [day, now - lag), written beside
			// the files that hold the day so far: their events twice.
			errs = append(errs, fmt.Errorf("--repair %s: the day is not over (it ends after now - period.lag): repair it once it is", d))
			continue
		}
		from, _ := time.Parse(time.DateOnly, d)
		plan, err := s.Plan(pipeline.Range{From: from, To: from.AddDate(0, 0, 1)})
		if err != nil {
			errs = append(errs, fmt.Errorf("--repair %s: %w", d, err))
			continue
		}
		if _, err := s.Execute(ctx, plan); err != nil {
			var refused *pipeline.RefusedError
			if !errors.As(err, &refused) {
				errs = append(errs, fmt.Errorf("--repair %s: %w", d, err))
				continue
			}
			refusals = append(refusals, err) // the check that follows shows the day as it is
			continue
		}
		v.o.Logger.Info("day delivered again", "day", d)
		delivered = append(delivered, d)
	}
	for _, err := range refusals {
		v.o.Logger.Warn("repair refused", "error", err)
	}
	return delivered, errors.Join(errs...)
}
