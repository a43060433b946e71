package follow

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/pachca-export/pachca-export/internal/idkey"
	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/state"
	"github.com/pachca-export/pachca-export/transform"
)

const day = 24 * time.Hour

// alertsKeep is how long, besides their longest window, the alert rules
// remember events: a burst that goes on for longer than that yields a
// second finding.
const alertsKeep = 24 * time.Hour

// errIdle is a cycle's answer when now - lag is not past where it would
// start (a --from within lag of now, a clock that went back): it commits
// nothing, so it is no cycle for the metrics and the readiness.
var errIdle = errors.New("follow: nothing to read yet")

// errStopped is a cycle's answer when a stop was asked for between two of
// its seals: the next start seals the days left, and the cycle.
var errStopped = errors.New("follow: stopped between seals")

// cycle seals the days that are due, then delivers [watermark - lookback,
// now - lag), or redoes a pending cycle first. ctx ends the cycle's work
// (at the end of the grace); stop is done once a stop is asked for, after
// which no other day's seal begins.
func (l *Loop) cycle(ctx, stop context.Context) error {
	began := time.Now()
	// A state removed under the loop would have every day since its start
	// sealed again, and its lock gone.
	if err := l.st.Held(); err != nil {
		return err
	}
	// A step of this host's clock moved how far behind the API's clock
	// seems by as much: measured anew, and until a cycle of its own read
	// it, no day is sealed, as at a first start (was: an hour's step
	// forward before a midnight sealed the day before the API's midnight).
	if step := l.clockStep(); step != 0 {
		l.log.Warn("follow: this host's clock stepped since the last cycle (an NTP correction, a VM resumed?): how far the API's clock is behind is measured anew, and no day is sealed until a cycle has read it",
			"step", step.Round(time.Millisecond).String())
		l.s.Client().ForgetAPIClock()
		l.answered = false
	}
	// Up to the API's now less the lag: when its clock is behind this
	// one, the events it creates at its now would land behind a watermark
	// moved by this clock, caught by the look-back at best, and a day
	// sealed before the API's midnight would miss its last events.
	behind := l.s.Client().APIBehind()
	l.noteBehind(behind)
	now := l.s.Now()
	end := now.Add(-behind - l.lag).Truncate(time.Millisecond)
	c := l.pos.Pending
	redo := c != nil
	sealed := 0
	// The first cycle of a process seals nothing: before the API's first
	// answer its clock is unknown, and a day is sealed once.
	if !redo && l.answered {
		var err error
		if sealed, err = l.sealDue(ctx, stop, end); err != nil {
			return err
		}
	}
	// After the seals: an exported day is never read again.
	exported, err := l.st.Exported()
	if err != nil {
		return err
	}
	// Days due and left unsealed: the next cycle, which knows the API's
	// clock once this one commits, comes at once rather than an interval
	// later (a --from weeks back waited a whole interval to begin).
	deferred := (redo || !l.answered) && l.due(end, exported)
	capped := false
	if !redo {
		// Not from pos.Start itself, but its day's start: two cycles past a
		// midnight both pinned at a start less than the look-back before
		// it would write the day before's files under one name,
		// [start, midnight), the second refused or replacing the first.
		// What precedes the start goes to no file and no stream
		// (StreamsFrom) until the seal.
		from := maxTime(l.rereadFrom(), l.pos.Start.UTC().Truncate(day), end.Add(-l.cfg.Lookback).Truncate(day), // sealed days are done
			l.oldest()) // a loop stopped for longer than the retention
		// A day sealed before a restart raised follow.lookback, or
		// exported whole by `run`, is done too.
		from = pastExported(from, end, exported)
		if !from.Before(end) {
			// The clock went back, or nothing is older than lag yet.
			l.log.Debug("follow: nothing to read yet", "from", fmtT(from), "now_minus_lag", fmtT(end))
			if behind > 0 {
				// Held back by the API's clock, as its answers told it: one
				// request reads it again, since an idle cycle asks nothing,
				// and an API clock that came back would hold the loop idle
				// for as long as it had been behind (was: hours).
				if err := l.s.Client().Probe(ctx); err != nil {
					l.log.Debug("follow: the API's clock could not be read again", "error", err)
				}
			}
			return errIdle
		}
		// A backlog (a first start late in a big day, a flood read after
		// an outage) is read in cycles of a bounded number of events, each
		// committed: one cycle of all of it held every id until its commit,
		// and a process killed at its memory limit redid it whole, to be
		// killed again.
		to := minTime(end, maxTime(from, l.pos.Watermark).Add(l.maxAdvance()))
		capped = to.Before(end)
		c = &state.Cycle{Seq: l.pos.Seq + 1, From: from, To: to}
		l.pos.Pending = c
		if err := l.st.SetFollow(l.pos); err != nil {
			return err
		}
	}

	var fresh freshIDs
	late := 0
	wm := l.pos.Watermark.UnixMilli()
	plan := l.s.PlanDays(c.From, c.To, func(p *sinks.Partition) { p.Part = true })
	// An exported day is never read again: a cycle file beside its day
	// file would double its events (one in the middle of a long look-back,
	// or exported by a run between a crash and the redo of its cycle).
	plan.Days = slices.DeleteFunc(plan.Days, func(p sinks.Partition) bool {
		_, done := exported[p.Date()]
		return done
	})
	plan.Delivered = l.recent
	plan.StreamsFrom = l.pos.Start.UnixMilli()
	plan.SkipEmpty, plan.Quiet = true, true
	plan.OnFresh = func(rec *transform.Record, sum uint64) {
		fresh.add(rec.ID, rec.CreatedAt, sum)
		if rec.CreatedAt < wm {
			late++
		}
	}
	counted := l.countOnce(&plan)
	sum, err := l.s.Execute(ctx, plan)
	l.observe(sum, err)
	if err != nil {
		return err
	}
	// The sinks committed: save what the rules saw, then log the ids, then
	// move the watermark. A process stopped in between redoes the cycle,
	// whose events the rules then hold once already; saved after the
	// watermark, they would be lost to the rules for good.
	if a := l.s.Alerts(); a != nil {
		a.Prune(maxTime(l.pos.Watermark, c.To).Add(-alertsKeep - a.LongestWindow()))
		if err := a.Save(filepath.Join(l.st.Dir(), alertsFile)); err != nil {
			return err
		}
		if !l.answered { // once a process: no loop writes it again
			if err := l.s.RemovePendingAlerts(); err != nil {
				return err
			}
		}
	}
	counted.commit()
	l.m.late.Add(float64(late))
	if err := l.st.AppendDelivered(c.Seq, fresh.all()); err != nil {
		return err
	}
	l.recent.addFresh(&fresh)
	// The reads since a range the cycles left to the seal (before the
	// first cycle, or skipped after a long stop) go on from this cycle's.
	if l.pos.Seq == 0 || c.From.After(l.pos.Watermark) || c.From.Before(l.pos.Read) {
		l.pos.Read = c.From
	}
	// No further than the API's now less the lag, as its answers to this
	// cycle tell it: the first cycle of a process chose its end before any
	// answer (a cycle redone, before a restart).
	//
	// And a millisecond past the last one at least: a cycle that does not
	// move it (the API's clock fell back, or further behind, during the
	// cycle) would leave the next one the same start, and two cycles past
	// a midnight with one start write the day before's files under one
	// name, [from, midnight), the second refused or replacing the first
	// (its events gone from kept cycle files). The look-back re-reads the
	// millisecond; with none, an event of it published late is the seal's.
	to := minTime(c.To, l.s.Now().Add(-l.s.Client().APIBehind()-l.lag).Truncate(time.Millisecond))
	prev := l.pos.Watermark
	l.pos.Watermark = maxTime(to, l.pos.Watermark.Add(time.Millisecond))
	l.pos.Seq, l.pos.Pending = c.Seq, nil
	l.lastAdvance, l.lastFresh = l.pos.Watermark.Sub(maxTime(c.From, prev)), fresh.len()
	// What the look-back must re-read is known from a cycle of this
	// process: a redo's began before it. Its now - lag as the API's clock
	// read then, as its answers tell it: an end chosen before them (a
	// first cycle, or after a step of this host's clock) may lie ahead of
	// the API's clock, and the next cycle would skip a look-back it needs.
	l.horizon = time.Time{}
	if !redo {
		l.horizon = minTime(end, now.Add(-l.s.Client().APIBehind()-l.lag))
	}
	// A redo may deliver from the spool without asking the API anything
	// (one started while the API is away): its clock is known once a cycle
	// of its own read it.
	l.answered = l.answered || !redo
	l.soon = deferred && l.answered || capped
	l.recent.prune(l.rereadFrom().UnixMilli())
	if err := l.st.SetFollow(l.pos); err != nil {
		return err
	}
	l.m.watermark.Set(float64(l.pos.Watermark.UnixMilli()) / 1000)
	l.succeeded()
	attrs := []any{"seq", c.Seq, "from", fmtT(c.From), "to", fmtT(c.To), "events", fresh.len(), "late", late,
		"sealed_days", sealed, "redo", redo, "requests", sum.Requests, "throttled", sum.Throttled,
		"freshness_s", l.freshness().Seconds(), "duration_s", time.Since(began).Seconds()}
	if capped {
		attrs = append(attrs, "backlog_s", end.Sub(c.To).Seconds()) // read by the next cycles, at once
	}
	l.log.Info("follow: cycle", attrs...)
	return nil
}

// maxCycleEvents is about the most events one cycle delivers when it reads
// a backlog: some 17 MiB of ids held until its commit (90 bytes each), and
// at the API's rate some 80 s of reading between two commits.
const maxCycleEvents = 200_000

// firstAdvance is how far the first cycle of a process may move the
// watermark, before it knows how many events a span of the log holds: an
// hour of a day of 4 million events is about 170,000.
const firstAdvance = time.Hour

// maxAdvance is how far the next cycle may move the watermark: the span
// that held cycleEvents at the density of the last cycle, and at most
// twice its advance (the log may be denser ahead: a flood met after an
// outage), at least an interval (the span of a cycle that keeps up).
func (l *Loop) maxAdvance() time.Duration {
	if l.lastAdvance <= 0 {
		return max(firstAdvance, l.cfg.Interval)
	}
	a := 2 * l.lastAdvance
	if l.lastFresh > 0 {
		a = min(a, time.Duration(float64(l.lastAdvance)*float64(l.cycleEvents)/float64(l.lastFresh)))
	}
	return max(a, l.cfg.Interval)
}

// apiClockSlack is how far the API's now, as its answers' Date headers
// tell it, may be off: they are read to the second.
const apiClockSlack = 2 * time.Second

// rereadFrom is where the next cycle's read begins: the look-back behind
// the watermark, for the events the API publishes up to lag + lookback
// late. But an event created before horizon - lookback and published
// after the last cycle began is later than that: when that cycle stopped
// more than a look-back short of its horizon (reading a backlog), the
// next one begins at the watermark, not re-reading a look-back of the
// backlog at each of its cycles.
func (l *Loop) rereadFrom() time.Time {
	from := l.pos.Watermark.Add(-l.cfg.Lookback)
	if l.horizon.IsZero() {
		return from
	}
	return maxTime(from, minTime(l.pos.Watermark, l.horizon.Add(-l.cfg.Lookback-apiClockSlack)))
}

// maxClockStep is how far this host's wall clock may move apart from its
// monotonic clock between two cycles before it counts as stepped: the
// API's clock is read to within a second anyway, and a slewing NTP moves
// it by at most half a millisecond a second.
const maxClockStep = time.Second

// clockStep is how far this host's clock (the session's) stepped since the
// last cycle began, beyond what its monotonic clock measured in between; 0
// for less than maxClockStep, and for the first cycle.
func (l *Loop) clockStep() time.Duration {
	wall, mono := l.s.Now().Round(0), time.Now()
	prevWall, prevMono := l.clockWall, l.clockMono
	l.clockWall, l.clockMono = wall, mono
	if prevMono.IsZero() {
		return 0
	}
	step := wall.Sub(prevWall) - mono.Sub(prevMono)
	if step.Abs() < maxClockStep+mono.Sub(prevMono)/2000 {
		return 0
	}
	return step
}

// freshness is how old the newest exported instant is by the API's clock:
// its now minus the watermark. By this host's clock, an API clock behind it
// would read as a feed that far behind, and page for the clocks' skew,
// which api_clock_behind_seconds shows on its own.
func (l *Loop) freshness() time.Duration {
	return l.s.Now().Add(-l.s.Client().APIBehind()).Sub(l.watermark())
}

// noteBehind shows how far the API's clock is behind this one: the gauge,
// and a warning each time it changes by a second or more.
func (l *Loop) noteBehind(behind time.Duration) {
	l.m.behind.Set(behind.Seconds())
	s := behind.Truncate(time.Second)
	if s == l.behindNoted {
		return
	}
	if s > 0 {
		l.log.Warn("follow: the API's clock is behind this host's: the cycles read up to the API's now less period.lag (check the time sync of both)", "behind", s.String())
	} else {
		l.log.Info("follow: the API's clock is no longer behind this host's")
	}
	l.behindNoted = s
}

// sealDue seals, oldest first, each day the loop is responsible for whose
// end lies lookback behind end (now - lag) and which is not exported yet;
// once stop is done, it begins no other (errStopped): a catch-up of many
// days would otherwise go on until the grace ends, and be cut in a seal.
func (l *Loop) sealDue(ctx, stop context.Context, end time.Time) (int, error) {
	horizon := end.Add(-l.cfg.Lookback).Truncate(day)
	exported, err := l.st.Exported()
	if err != nil {
		return 0, err
	}
	n := 0
	oldest := l.oldest()
	var lost []string
	defer func() {
		if len(lost) > 0 {
			l.log.Warn(fmt.Sprintf("follow: %d day(s) not sealed are past the API's retention and lost: %s..%s", len(lost), lost[0], lost[len(lost)-1]))
		}
	}()
	for d := l.pos.Start.UTC().Truncate(day); d.Before(horizon); d = d.Add(day) {
		if _, done := exported[d.Format(time.DateOnly)]; done {
			continue
		}
		if !d.Add(day).After(oldest) {
			// The API holds nothing of it: sealing would record an empty
			// day as exported. Said once, when first seen.
			if l.lost == nil {
				l.lost = map[string]bool{}
			}
			if date := d.Format(time.DateOnly); !l.lost[date] {
				l.lost[date] = true
				lost = append(lost, date)
			}
			continue
		}
		if stop.Err() != nil {
			return n, errStopped
		}
		if err := l.seal(ctx, d); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// due reports whether a day is due to be sealed by end (now - lag): one
// before the horizon sealDue seals up to, within the retention, that is
// not exported.
func (l *Loop) due(end time.Time, exported map[string]state.Day) bool {
	horizon := end.Add(-l.cfg.Lookback).Truncate(day)
	for d := maxTime(l.pos.Start.UTC().Truncate(day), l.oldest().Truncate(day)); d.Before(horizon); d = d.Add(day) {
		if _, done := exported[d.Format(time.DateOnly)]; !done {
			return true
		}
	}
	return false
}

// seal reads day d once more whole and delivers it as one full day: file
// sinks get every event of the day in one file that replaces the cycles'
// files (unless follow.keep_cycle_files), streams only the events no cycle
// delivered. The day is then recorded as exported, so that `run` and the
// nightly catch-up see it done, and its id log goes.
//
// A day the API now returns fewer of its delivered events for is not
// compacted (its files would lose them): it is sealed as with
// keep_cycle_files, its cycle files left as they are, with a warning.
func (l *Loop) seal(ctx context.Context, d time.Time) error {
	date := d.Format(time.DateOnly)
	// The day is read anew at each try of this process: a try that failed
	// (a sink) left its read in the spool, which would miss what the API
	// published since, and the seal is the last read of the day. What an
	// earlier process read less than resumeWithin ago is kept: a process
	// restarted every few seconds (a crash loop, a liveness probe too
	// tight) would otherwise begin a big day's seal anew at each start,
	// and never end it.
	keepFor := max(l.cfg.Lookback, resumeWithin)
	kept, err := l.st.Spool().RemoveUnless(date, func(at time.Time) bool {
		return at.Before(l.began) && time.Since(at) < keepFor
	})
	if err != nil {
		return err
	}
	if kept > 0 {
		l.log.Info("follow: the seal goes on from what an earlier start read of the day", "day", date, "windows", kept)
	}
	delivered := newDayIDs()
	if err := l.st.Delivered(date, l.pos.Seq, delivered.add); err != nil {
		return err
	}
	keep := l.cfg.KeepCycleFiles
	sum, err := l.sealPlan(ctx, d, delivered, keep)
	var shrunk *pipeline.ShrunkDayError
	if !keep && errors.As(err, &shrunk) {
		l.log.Warn("follow: the day's delivered events no longer fit one file (the API no longer returns some, or returns two with one id): its cycle files are kept as they are, not compacted into one",
			"day", date, "returned", shrunk.Returned, "delivered", shrunk.Delivered)
		l.m.ObserveRefused()
		keep = true
		sum, err = l.sealPlan(ctx, d, delivered, keep)
	}
	if err != nil {
		return err
	}
	if keep { // a part is never recorded by the delivery itself
		if err := l.st.MarkExported(state.Day{Day: date, ExportedAt: time.Now().UTC(), RunID: sum.RunID, Records: int64(delivered.n) + sum.Events}); err != nil {
			return err
		}
	}
	if err := l.st.RemoveDelivered(date); err != nil {
		return err
	}
	l.m.sealed.Inc()
	l.log.Info("follow: day sealed", "day", date, "events_before", delivered.n, "events_new", sum.Events, "compacted", !keep)
	return nil
}

// resumeWithin is how recent what an earlier process read of a day must
// be (or within follow.lookback, when longer) for its seal to go on from
// it rather than read the day anew: a restart comes within it, even one
// delayed by Kubernetes' longest back-off (5 minutes).
const resumeWithin = 10 * time.Minute

// sealPlan delivers day d whole: compacted into one file, or with keep an
// extra part with what no cycle delivered.
func (l *Loop) sealPlan(ctx context.Context, d time.Time, delivered *dayIDs, keep bool) (*pipeline.Summary, error) {
	plan := l.s.PlanDays(d, d.Add(day), func(p *sinks.Partition) {
		p.Part, p.Compact = keep, !keep
	})
	plan.Delivered = delivered
	plan.StreamsFrom = l.pos.Start.UnixMilli()
	plan.FilesWhole = keep // the day's files hold what no cycle read
	plan.SkipEmpty, plan.Quiet = keep, true
	// What no cycle delivered of a day behind the watermark, since the
	// cycles read it, was published late: caught here rather than by a
	// look-back. Before that (a day already due at the first cycle), the
	// seal is the first to read; past the watermark (cycles that fell
	// behind, held up by a failing API), no cycle has read yet.
	late, wm := 0, l.pos.Watermark.UnixMilli()
	start := maxTime(l.pos.Start, l.pos.Read).UnixMilli() // what the cycles' range held
	plan.OnFresh = func(rec *transform.Record, _ uint64) {
		if rec.CreatedAt >= start && rec.CreatedAt < wm {
			late++
		}
	}
	counted := l.countOnce(&plan)
	sum, err := l.s.Execute(ctx, plan)
	l.observe(sum, err)
	if err == nil {
		l.m.late.Add(float64(late))
		counted.commit()
		delete(l.counted, d.Format(time.DateOnly)) // never read again
		if late > 0 {
			l.log.Warn("follow: the seal delivered events the cycles missed: the API published them more than follow.lookback after their time; a longer follow.lookback delivers such events within minutes, and any the API publishes after the seal are not exported",
				"day", d.Format(time.DateOnly), "events", late, "lookback", l.cfg.Lookback.String())
		}
	}
	return sum, err
}

// observe adds what a plan cost to the metrics, and what it delivered once
// it committed: a plan that failed is done again whole (its cycle redone, or
// its day sealed anew), which delivers the days it had delivered again,
// into files of the same names.
func (l *Loop) observe(sum *pipeline.Summary, err error) {
	if err != nil && sum != nil {
		sum = &pipeline.Summary{RunID: sum.RunID, Requests: sum.Requests, Pages: sum.Pages, Fetched: sum.Fetched,
			Retries: sum.Retries, Throttled: sum.Throttled, AlertMessages: sum.AlertMessages}
	}
	l.m.ObservePlan(sum)
}

// counts are the dead letters a plan wrote and the events it dropped,
// remembered once it committed (a plan that failed is redone whole, its
// files rewritten).
type counts struct {
	l    *Loop
	keys map[string][]string // by day
}

// countOnce sets plan to write and count each dead letter, and to count
// each dropped event, once across the cycles and the seal (while the
// process runs: a restart counts those of the look-back span once more).
func (l *Loop) countOnce(plan *pipeline.Plan) *counts {
	c := &counts{l: l, keys: map[string][]string{}}
	plan.Counted = func(day, key string) bool { return l.counted[day][key] }
	plan.OnCount = func(day, key string) { c.keys[day] = append(c.keys[day], key) }
	return c
}

func (c *counts) commit() {
	for day, keys := range c.keys {
		m := c.l.counted[day]
		if m == nil {
			m = map[string]bool{}
			c.l.counted[day] = m
		}
		for _, k := range keys {
			m[k] = true
		}
	}
}

// freshIDs are the events a cycle delivered, until it commits: a UUID as
// its 16 bytes, 32 bytes an event with its created_at and sum (was: 90,
// with a string of its own). A flood of events makes a cycle of millions.
type freshIDs struct {
	uuids []freshUUID
	other []state.DeliveredID
}

type freshUUID struct {
	id  [16]byte
	at  int64
	sum uint64
}

func (f *freshIDs) add(id string, at int64, sum uint64) {
	if u, ok := idkey.Parse(id); ok {
		f.uuids = append(f.uuids, freshUUID{u, at, sum})
		return
	}
	f.other = append(f.other, state.DeliveredID{ID: strings.Clone(id), At: at, Sum: sum})
}

func (f *freshIDs) len() int { return len(f.uuids) + len(f.other) }

// all yields every id added.
func (f *freshIDs) all() iter.Seq[state.DeliveredID] {
	return func(yield func(state.DeliveredID) bool) {
		for _, u := range f.uuids {
			if !yield(state.DeliveredID{ID: idkey.Format(u.id), At: u.at, Sum: u.sum}) {
				return
			}
		}
		for _, d := range f.other {
			if !yield(d) {
				return
			}
		}
	}
}

// mark is what the loop keeps of an event delivered: its created_at (Unix
// ms) and the sum of its content.
type mark struct {
	at  int64
	sum uint64
}

// recentIDs are the ids delivered with created_at at or after a floor: what
// a cycle's look-back must not deliver again. A flood of events inside the
// look-back keeps all of its ids here, some 40 bytes each (idkey).
type recentIDs struct{ ids *idkey.Map[mark] }

func newRecentIDs() *recentIDs { return &recentIDs{ids: idkey.New[mark]()} }

func (r *recentIDs) add(id state.DeliveredID) { r.ids.Set(id.ID, mark{id.At, id.Sum}) }

// addFresh adds what a cycle delivered, its UUIDs as they are kept (not
// formatted to be parsed again).
func (r *recentIDs) addFresh(f *freshIDs) {
	for _, u := range f.uuids {
		r.ids.SetUUID(u.id, mark{u.at, u.sum})
	}
	for _, d := range f.other {
		r.add(d)
	}
}

// Seen implements pipeline.Delivered.
func (r *recentIDs) Seen(id string, sum uint64) (bool, bool) {
	d, ok := r.ids.Get(id)
	return ok, ok && (d.sum == sum || d.sum == 0)
}

// Count implements pipeline.Delivered; a cycle never compacts, so it is
// never asked.
func (r *recentIDs) Count(string) int { return 0 }

// prune forgets the ids created before floor.
func (r *recentIDs) prune(floor int64) {
	r.ids.DeleteFunc(func(d mark) bool { return d.at < floor })
}

// dayIDs are the events the cycles delivered of one day: the sums of each
// id (more than one when cycles too far apart for the look-back delivered
// two events with one id).
type dayIDs struct {
	sums *idkey.Map[daySums]
	n    int
}

// daySums are the sums of an id: first, and rarely more.
type daySums struct {
	first uint64
	more  []uint64
}

func (s daySums) has(sum uint64) bool { return s.first == sum || slices.Contains(s.more, sum) }

func newDayIDs() *dayIDs { return &dayIDs{sums: idkey.New[daySums]()} }

func (d *dayIDs) add(id state.DeliveredID) {
	sums, ok := d.sums.Get(id.ID)
	switch {
	case !ok:
		d.sums.Set(id.ID, daySums{first: id.Sum})
	case sums.has(id.Sum):
		return
	default:
		sums.more = append(sums.more, id.Sum)
		d.sums.Set(id.ID, sums)
	}
	d.n++
}

// Seen implements pipeline.Delivered.
func (d *dayIDs) Seen(id string, sum uint64) (bool, bool) {
	sums, ok := d.sums.Get(id)
	return ok, ok && (sums.has(sum) || sums.has(0))
}

// Count implements pipeline.Delivered.
func (d *dayIDs) Count(string) int { return d.n }

// pastExported moves from past the days at its start, up to to, that the
// state records as exported.
func pastExported(from, to time.Time, exported map[string]state.Day) time.Time {
	for from.Before(to) {
		if _, done := exported[from.UTC().Format(time.DateOnly)]; !done {
			break
		}
		from = from.UTC().Truncate(day).Add(day)
	}
	return from
}

func maxTime(ts ...time.Time) time.Time {
	m := ts[0]
	for _, t := range ts[1:] {
		if t.After(m) {
			m = t
		}
	}
	return m
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
