package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/internal/failure"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/state"
	"github.com/pachca-export/pachca-export/transform"
)

const day = 24 * time.Hour

// Range is what a run is asked to export: [From, To), or neither bound for
// the configured period (period.from/to, else the catch-up).
type Range struct {
	From, To time.Time
	// ToNow says To is --to now, read when the command started: the
	// progress of the range is keyed on "now", so that the same command
	// started again resumes it, as one of a fixed --to later than now.
	ToNow bool
}

// Plan is what one execution will export.
type Plan struct {
	From, To time.Time // the whole range, half open
	Days     []sinks.Partition
	// Explicit is true for --from/--to or period.from/to, false for catch-up.
	Explicit bool
	Notes    []string // warnings for the log: clipped ranges, days lost to retention
	Streams  []string // "" for every event key, else one stream per key
	// progressKey names an explicit range, whose delivered days are recorded
	// so that a rerun after a crash skips them; "" for the catch-up.
	progressKey string

	// The fields below serve a follow loop, which plans its own cycles.

	// Delivered, when set, holds the ids delivered before: such a record
	// goes to no sink again, except to file-like sinks in a Compact
	// partition (the whole day), which must then hold every one of them.
	// An event with a delivered id and other bytes is a dead letter.
	Delivered Delivered
	// StreamsFrom keeps records created before it (Unix ms) from every
	// sink but the file-like ones of a Compact partition, or of any
	// partition with FilesWhole.
	StreamsFrom int64
	// FilesWhole: the file-like sinks get the records StreamsFrom keeps
	// from the streams too (not delivered before, as the others): a seal
	// that adds a part to the day's files (follow.keep_cycle_files), whose
	// day began before the loop's first start, records the day as exported
	// and must hold its events before that start.
	FilesWhole bool
	// OnFresh is called with each record delivered for the first time and
	// the content sum of its event (state.DeliveredID.Sum), from the
	// goroutine that delivers, before its day commits.
	OnFresh func(rec *transform.Record, sum uint64)
	// Counted, when set, tells whether an earlier plan counted the event
	// of the day (YYYY-MM-DD) with key (a hash of its bytes): wrote
	// it as a dead letter, or counted it dropped (drop_event_keys). A
	// follow cycle's look-back and the seal read the events of earlier
	// cycles again; such an event is neither written nor counted again.
	Counted func(day, key string) bool
	// OnCount is called with the day (YYYY-MM-DD) and key of each dead
	// letter written and each event dropped, from the goroutine that
	// delivers, before the day commits.
	OnCount func(day, key string)
	// SkipEmpty writes nothing for a partition without a record to deliver:
	// no empty file every cycle.
	SkipEmpty bool
	// Quiet logs at debug level what Execute logs at info: a follow loop
	// logs one line per cycle itself.
	Quiet bool
}

// Delivered is what a follow loop delivered before; it is only read while a
// plan executes.
type Delivered interface {
	// Seen tells whether an event with id was delivered, and whether the
	// event of content sum sum was (an id logged without its sum matches
	// any). An event with a delivered id and another sum is another
	// event: a dead letter.
	Seen(id string, sum uint64) (idSeen, eventSeen bool)
	// Count is the number of events of day (YYYY-MM-DD) it holds.
	Count(day string) int
}

func usagef(format string, args ...any) error { return failure.Usagef(format, args...) }

// DryRun plans rng as a run would, reading the state without creating or
// locking it, and the file and S3 sinks without writing to them.
func DryRun(ctx context.Context, cfg *config.Config, rng Range, now time.Time, log *slog.Logger) (Plan, error) {
	v, err := state.Peek(cfg.State.Dir, Identity(cfg), FormerIdentities(cfg)...)
	if err != nil {
		return Plan{}, err
	}
	plan, err := makePlan(cfg, v, rng, now, log)
	if err != nil {
		return Plan{}, err
	}
	return dryRunFromSinks(ctx, cfg, v, plan, now)
}

// Plan plans rng against the session's state.
func (s *Session) Plan(rng Range) (Plan, error) {
	return makePlan(s.cfg, &s.store.View, rng, s.now(), s.log)
}

// PlanDays plans [from, to) over the days it spans, each day a partition
// that mark may adjust (a follow loop marks its cycles' partitions Part and
// a sealed day Compact); the streams are the configuration's.
func (s *Session) PlanDays(from, to time.Time, mark func(p *sinks.Partition)) Plan {
	p := Plan{From: from.UTC(), To: to.UTC(), Explicit: true, Streams: streamsOf(s.cfg)}
	for d := floorDay(from); d.Before(to); d = d.Add(day) {
		part := sinks.NewPartition(d, from, to, "")
		if mark != nil {
			mark(&part)
		}
		p.Days = append(p.Days, part)
	}
	return p
}

// streamsOf is one API stream per configured event key, or "" for every key.
func streamsOf(cfg *config.Config) []string {
	if keys := cfg.Source.Filters.EventKeys; len(keys) > 0 {
		return slices.Clone(keys)
	}
	return []string{""}
}

// makePlan plans rng: an explicit range (rng, or period.from/to), or the
// catch-up. For an explicit range it leaves out the days an interrupted run
// of the same range already delivered.
func makePlan(cfg *config.Config, v *state.View, rng Range, now time.Time, log *slog.Logger) (Plan, error) {
	explicit := !rng.From.IsZero() || !rng.To.IsZero()
	var from origin // the flags
	if !explicit && cfg.Period.From != "" {
		rng.From, _ = config.ParseTime(cfg.Period.From) // validated with the configuration
		rng.To, _ = config.ParseTime(cfg.Period.To)
		explicit, from = true, origin(cfg.File)
	}
	if from == "" && !rng.From.IsZero() && rng.To.IsZero() {
		// --from alone: up to the last complete day, as the catch-up
		// goes; a run of the same day started again resumes it.
		rng.To = floorDay(now.Add(-cfg.Period.Lag))
		if !rng.From.Before(rng.To) {
			return Plan{}, usagef("nothing to export: --from %s is not before the end of the last complete day (%s); give --to too for a part of today", fmtT(rng.From), fmtT(rng.To))
		}
	}
	var plan Plan
	switch {
	case explicit && rng.From.IsZero():
		return Plan{}, usagef("--to needs --from, the start of the range (or neither, for the catch-up)")
	case !explicit:
		exported, err := v.Exported()
		if err != nil {
			return Plan{}, err
		}
		caught := CaughtUp(cfg, v, exported)
		plan = planCatchUp(caught, now, cfg.Period.Lag, cfg.Period.Retention)
		// A state with no day of its own nor a sibling's: extendFromSinks,
		// which reads the sinks, adds these notes.
		if len(exported) == 0 && len(caught) > 0 && len(plan.Days) > 0 {
			plan.Notes = append(plan.Notes, MovedSinkNotes(cfg, v, plan.Days[0].Date(), now, nil)...)
		}
	default:
		var err error
		if plan, err = planRange(rng.From, rng.To, from, now, cfg.Period.Lag, cfg.Period.Retention); err != nil {
			return Plan{}, err
		}
		if err := skipExportedParts(&plan, v); err != nil {
			return Plan{}, err
		}
		// Keyed by the range as given, not as clipped to now-lag: the same
		// command started again after a kill ends the range later, and
		// must still find the days its interrupted run delivered.
		to := fmtT(rng.To)
		if rng.ToNow {
			to = "now"
		}
		if plan.progressKey, err = state.Key([2]string{fmtT(rng.From), to}); err != nil {
			return Plan{}, err
		}
		done, err := v.RunProgress(plan.progressKey)
		if err != nil {
			return Plan{}, err
		}
		if len(done) > 0 {
			if err := doneUnrecorded(done, plan.Days, v); err != nil {
				return Plan{}, err
			}
			log.Info("resuming an interrupted run of the same range", "days_already_delivered", len(done))
			plan.Days = slices.DeleteFunc(plan.Days, func(p sinks.Partition) bool { return done[p.Date()] })
		}
	}
	plan.Streams = streamsOf(cfg)
	return plan, nil
}

// doneUnrecorded adds to done, the days the progress of a range records,
// the days recorded as exported by the runs that delivered one of them: a
// run killed between recording a day exported and adding it to the
// progress delivered it all the same (its spool is gone: it would be
// fetched again). Only the whole days of the range tell: a run of it
// records no other day exported. It takes out of done a day whole in days
// but not recorded as exported: the range ended in it, clipped to
// now-lag, when the interrupted run delivered its part.
func doneUnrecorded(done map[string]bool, days []sinks.Partition, v *state.View) error {
	exported, err := v.Exported()
	if err != nil {
		return err
	}
	for _, p := range days {
		if _, ok := exported[p.Date()]; !ok && p.FullDay() {
			delete(done, p.Date())
		}
	}
	runs := map[string]bool{}
	for _, p := range days {
		if e, ok := exported[p.Date()]; ok && done[p.Date()] && p.FullDay() && e.RunID != "" {
			runs[e.RunID] = true
		}
	}
	for _, p := range days {
		if e, ok := exported[p.Date()]; ok && p.FullDay() && runs[e.RunID] {
			done[p.Date()] = true
		}
	}
	return nil
}

// NothingToExport says why a plan without days has nothing to export.
func NothingToExport(p Plan) string {
	if len(p.Notes) > 0 {
		return "nothing to export in the period, for the reasons above"
	}
	return "nothing to export: every day of the period is already exported"
}

// CheckRange returns the usage error of a range [from, to) that is empty
// or reversed: what run says, for every command that takes --from/--to.
func CheckRange(from, to time.Time) error {
	if !from.Before(to) {
		return usagef("--from (%s) must be before --to (%s)", fmtT(from), fmtT(to))
	}
	return nil
}

func floorDay(t time.Time) time.Time { return t.UTC().Truncate(day) }

// origin is where the bounds of an explicit range come from, for messages:
// "" for --from/--to, else the configuration file whose period.from and
// period.to they are. An operator looks for them there.
type origin string

// bound names the bound key ("from" or "to") at t as the user gave it.
func (o origin) bound(key string, t time.Time) string {
	if o == "" {
		return "--" + key + " " + fmtT(t)
	}
	return fmt.Sprintf("period.%s %s in %s", key, fmtT(t), string(o))
}

// planRange plans an explicit range [from, to), clipped to now-lag; o names
// where the bounds come from.
func planRange(from, to time.Time, o origin, now time.Time, lag, retention time.Duration) (Plan, error) {
	p := Plan{Explicit: true}
	if o == "" {
		if err := CheckRange(from, to); err != nil {
			return p, err
		}
	} else if !from.Before(to) { // refused when the configuration loads
		return p, usagef("%s must be before %s", o.bound("from", from), o.bound("to", to))
	}
	limit := now.Add(-lag).Truncate(time.Millisecond)
	if to.After(limit) {
		p.Notes = append(p.Notes, fmt.Sprintf("%s is later than now minus period.lag; exporting up to %s", o.bound("to", to), fmtMs(limit)))
		to = limit
	}
	if !from.Before(to) {
		return p, usagef("nothing to export: %s is not before now minus period.lag (%s)", o.bound("from", from), fmtMs(limit))
	}
	oldest := now.Add(-retention)
	p.From, p.To = from, to
	var expired []string
	straddled := false
	for d := floorDay(from); d.Before(to); d = d.Add(day) {
		part := sinks.NewPartition(d, from, to, "")
		if !part.To.After(oldest) {
			expired = append(expired, part.Date())
			continue
		}
		if part.From.Before(oldest) {
			p.Notes = append(p.Notes, straddleNote(part.Date(), oldest))
			straddled = true
		}
		p.Days = append(p.Days, part)
	}
	if from.Before(oldest) && !straddled {
		p.Notes = append(p.Notes, fmt.Sprintf("events before %s are past the API's %d-day retention: they can no longer be exported", fmtMs(oldest), int(retention/day)))
	}
	if len(expired) > 0 {
		// The API returns nothing for them: fetching would only replace
		// their files with empty ones.
		p.Notes = append(p.Notes, fmt.Sprintf("%d day(s) wholly past the API's retention are skipped, nothing fetched and their files left as they are: %s..%s",
			len(expired), expired[0], expired[len(expired)-1]))
	}
	return p, nil
}

// straddleNote says that the day on the API's retention edge (oldest) is
// exported for what the API still holds of it. Catch-up and an explicit
// range both export such a day rather than lose the rest of it; its events
// before the edge are gone either way.
func straddleNote(date string, oldest time.Time) string {
	return fmt.Sprintf("%s straddles the API's retention edge: its events before %s are gone; the rest is exported, and the day is partial", date, fmtMs(oldest))
}

// skipExportedParts leaves out of plan the partial days (a range that
// starts or ends inside a day) of days exported whole: every sink holds
// their events already, and a file of the part would hold them twice.
func skipExportedParts(plan *Plan, v *state.View) error {
	exported, err := v.Exported()
	if err != nil {
		return err
	}
	var skipped []string
	plan.Days = slices.DeleteFunc(plan.Days, func(p sinks.Partition) bool {
		_, whole := exported[p.Date()]
		if whole && !p.FullDay() {
			skipped = append(skipped, p.Date())
		}
		return whole && !p.FullDay()
	})
	switch len(skipped) {
	case 0:
	case 1:
		plan.Notes = append(plan.Notes, fmt.Sprintf("%s exported whole already: the part of it in the range is not written again (export the whole day to fetch it afresh)", skipped[0]))
	default: // the range's first and last day
		plan.Notes = append(plan.Notes, fmt.Sprintf("%s exported whole already: the parts of them in the range are not written again (export the whole days to fetch them afresh)",
			strings.Join(skipped, " and ")))
	}
	return nil
}

// planCatchUp plans every complete UTC day not yet exported: from the
// earliest exported day (or yesterday, on the first run) up to yesterday,
// oldest first, skipping days past the retention.
func planCatchUp(exported map[string]state.Day, now time.Time, lag, retention time.Duration) Plan {
	p := Plan{}
	end := floorDay(now.Add(-lag)) // days before end are complete
	first := end.Add(-day)
	for d := range exported {
		if t, err := time.Parse(time.DateOnly, d); err == nil && t.Before(first) {
			first = t
		}
	}
	oldest := now.Add(-retention)
	var lost []string
	var straddling string
	for d := first; d.Before(end); d = d.Add(day) {
		if _, ok := exported[d.Format(time.DateOnly)]; ok {
			continue
		}
		if !d.Add(day).After(oldest) {
			lost = append(lost, d.Format(time.DateOnly))
			continue
		}
		if d.Before(oldest) {
			straddling = d.Format(time.DateOnly)
		}
		p.Days = append(p.Days, sinks.NewPartition(d, d, d.Add(day), ""))
	}
	if len(lost) > 0 {
		p.Notes = append(p.Notes, fmt.Sprintf("%d day(s) not exported are past the API's retention and lost: %s..%s", len(lost), lost[0], lost[len(lost)-1]))
	}
	if straddling != "" {
		p.Notes = append(p.Notes, straddleNote(straddling, oldest))
	}
	if len(p.Days) > 0 {
		p.From, p.To = p.Days[0].From, p.Days[len(p.Days)-1].To
	}
	for _, d := range p.Days {
		if d.From.Before(oldest) {
			continue // the straddling day, noted above
		}
		if left := d.From.Add(retention).Sub(now); left < 7*day {
			p.Notes = append(p.Notes, fmt.Sprintf("the oldest day not yet exported, %s, leaves the API's retention in %s: export it soon", d.Date(), left.Round(time.Hour)))
		}
		break
	}
	return p
}

func fmtT(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// fmtMs formats a time the program computed (now minus the lag or the
// retention) as every record's created_at: milliseconds, UTC.
func fmtMs(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
