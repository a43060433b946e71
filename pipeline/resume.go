package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/internal/failure"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinkset"
	"github.com/pachca-export/pachca-export/state"
)

// resumeFromSinks extends the catch-up of a new state back to the day
// after the last one its file-like sinks hold whole. A state that records
// no day (a state.dir that was lost, on an emptyDir volume, or moved or
// renamed in pipeline.yaml) would otherwise export yesterday only, and the
// days between the sinks' last one and yesterday (nights that failed) would
// be in no sink, without a word: verify's chain links across the hole. Of
// the sinks that hold a day, the one that holds the oldest last day sets
// the start, so that every sink gets every day after it (a sink that holds
// some of them gets them again: the same events, its files replaced). Days
// the plan already has are never taken out of it; an explicit range, a
// state that records days (or shares a sibling's) and sinks that hold no
// day (Kafka, a new location) leave the plan as it is.
func (s *Session) resumeFromSinks(ctx context.Context, plan Plan) (Plan, error) {
	if ok, err := newCatchUp(s.cfg, &s.store.View, plan); !ok || err != nil {
		return plan, err
	}
	set, err := s.openSinks(ctx)
	if err != nil {
		return plan, err
	}
	ids := make([]string, len(set.Sinks))
	for i := range min(len(ids), len(s.claims)) {
		ids[i] = s.claims[i].IdentityHash
	}
	return extendFromSinks(ctx, s.cfg, &s.store.View, set.Sinks, ids, plan, s.now(), true)
}

// dryRunFromSinks is resumeFromSinks for --dry-run, which has no session:
// it builds the file and S3 sinks (no I/O), lists them and closes them. A
// sink it cannot read (a directory that is a file, S3 credentials missing)
// is passed over: the dry run's check of the sinks says what is wrong.
func dryRunFromSinks(ctx context.Context, cfg *config.Config, v *state.View, plan Plan, now time.Time) (_ Plan, err error) {
	if ok, err := newCatchUp(cfg, v, plan); !ok || err != nil {
		return plan, err
	}
	built, done, err := buildReadBack(ctx, cfg)
	if err != nil {
		return plan, failure.AsUsage(err)
	}
	defer func() { err = errors.Join(err, done()) }()
	return extendFromSinks(ctx, cfg, v, built, make([]string, len(built)), plan, now, false)
}

// newCatchUp tells whether plan is the catch-up of a state that records no
// day exported, nor shares a sibling's.
func newCatchUp(cfg *config.Config, v *state.View, plan Plan) (bool, error) {
	if plan.Explicit || len(plan.Days) == 0 {
		return false, nil
	}
	exported, err := v.Exported()
	if err != nil {
		return false, err
	}
	return len(CaughtUp(cfg, v, exported)) == 0, nil
}

// extendFromSinks plans the catch-up of a new state from what the
// file-like sinks of set hold whole (ids: the identity hash each one's
// manifests must record, "" for any): the days they all hold count as
// exported, and the catch-up exports every other day from the first of
// them, as it does from the first day a state records: the days after
// the last one they hold, and the days missing between (a night that
// failed before the state was lost). Nothing changes when they hold no
// day before plan's first, or only the day before it and none missing.
// A sink it cannot list fails it when strict, else is passed over.
func extendFromSinks(ctx context.Context, cfg *config.Config, v *state.View, set []sinks.Sink, ids []string, plan Plan, now time.Time, strict bool) (out Plan, err error) {
	first := plan.Days[0].Date()
	// The notes of the states beside v (a sink added or moved) know which
	// sinks hold days: one that holds them moved with its data.
	holding := map[int]string{} // sink index: the first day it holds whole
	defer func() {
		if err == nil {
			out.Notes = append(out.Notes, MovedSinkNotes(cfg, v, out.Days[0].Date(), now, holding)...)
		}
	}()
	// Days wholly past the retention cannot be exported again: a sink is
	// read no further back.
	oldest := now.Add(-cfg.Period.Retention).AddDate(0, 0, -1).Format(time.DateOnly)
	var held map[string]state.Day // the days every sink that holds any holds
	var by []string
	for i, sk := range set {
		rooted, ok := sk.(sinks.Rooted)
		if !ok {
			continue
		}
		days, err := heldDays(ctx, rooted, ids[i], oldest, first)
		if err != nil {
			if strict {
				return plan, fmt.Errorf("sinks[%d] %s: %w", i, sk.Name(), err)
			}
			continue
		}
		if len(days) == 0 {
			continue // a sink added since: it gets the days from then on
		}
		holding[i] = slices.Min(slices.Collect(maps.Keys(days)))
		by = append(by, fmt.Sprintf("sinks[%d] %s", i, sk.Name()))
		if held == nil {
			held = days
			continue
		}
		maps.DeleteFunc(held, func(d string, _ state.Day) bool { _, ok := days[d]; return !ok })
	}
	if len(held) == 0 {
		return plan, nil
	}
	more := planCatchUp(held, now, cfg.Period.Lag, cfg.Period.Retention)
	if len(more.Days) == 0 || more.Days[0].Date() >= first {
		return plan, nil
	}
	more.Streams = plan.Streams
	sorted := slices.Sorted(maps.Keys(held))
	heldFrom, heldTo := sorted[0], sorted[len(sorted)-1]
	var gaps []string
	for _, d := range more.Days {
		if d.Date() < heldTo {
			gaps = append(gaps, d.Date())
		}
	}
	missing := ""
	if len(gaps) > 0 {
		missing = fmt.Sprintf(", and the %d day(s) missing between them (%s)", len(gaps), strings.Join(gaps, ", "))
	}
	note := fmt.Sprintf("a new state (%s records no day exported: state.dir lost, moved or renamed, or the sinks changed) beside sinks that hold days: %s hold them from %s up to %s, so the catch-up starts at %s rather than at %s: it exports the days after them%s; if state.dir was lost, keep it on a persistent volume, and move it whole with the output",
		v.Dir(), strings.Join(by, ", "), heldFrom, heldTo, more.Days[0].Date(), first, missing)
	more.Notes = append(more.Notes, note)
	return more, nil
}

// heldDays are the days from oldest to before first whose manifest in
// r's root lists the whole day's file, written for identity id (or by a
// version that recorded none). A follow loop's cycle files of a day not
// sealed are not the whole day: that day is exported again, its files
// replaced by the day's.
func heldDays(ctx context.Context, r sinks.Rooted, id, oldest, first string) (map[string]state.Day, error) {
	held := map[string]state.Day{}
	store, layout := r.Root(), r.Layout()
	days, err := store.Days(ctx, layout.Meta)
	if errors.Is(err, fs.ErrNotExist) {
		return held, nil
	}
	if err != nil {
		return nil, err
	}
	for _, dir := range slices.Backward(days) {
		date := dir[len("dt="):]
		if date >= first {
			continue
		}
		if date < oldest {
			break
		}
		b, _, err := store.Get(ctx, layout.ManifestName(dir))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		m, err := sinks.DecodeManifest(b)
		if err != nil || m.Identity != "" && id != "" && m.Identity != id {
			continue // a damaged or foreign day: delivering it says so
		}
		start, err := time.Parse(time.DateOnly, date)
		if err != nil {
			continue
		}
		if slices.ContainsFunc(m.Files, func(f sinks.ManifestFile) bool {
			return !f.Part && f.From.Equal(start) && f.To.Equal(start.AddDate(0, 0, 1))
		}) {
			held[date] = state.Day{}
		}
	}
	return held, nil
}

// warnMissing warns, before a catch-up, of each file-like sink that holds
// no manifest of the last day the state records exported: an output
// restored from a backup older than the state, deleted, or a volume not
// mounted. The catch-up does not deliver that day again (the state
// records it), and would otherwise say only that there is nothing to
// export; verify reports every such day, and verify --repair delivers
// them again. A sink it cannot read is left to the delivery, or verify.
func (s *Session) warnMissing(ctx context.Context, plan Plan) error {
	if plan.Explicit {
		return nil
	}
	exported, err := s.store.Exported()
	if err != nil || len(exported) == 0 {
		return err
	}
	last := ""
	for d := range exported {
		last = max(last, d)
	}
	set, done := s.readBack(ctx)
	defer done()
	for i, sk := range set {
		rooted, ok := sk.(sinks.Rooted)
		if !ok {
			continue
		}
		_, _, err := rooted.Root().Get(ctx, rooted.Layout().ManifestName("dt="+last))
		if errors.Is(err, fs.ErrNotExist) {
			s.log.Warn(fmt.Sprintf("sinks[%d] %s holds no manifest of %s, the last day the state records as exported (the output restored from an older backup, deleted, or its volume not mounted?): pachca-export verify lists the days missing, and verify --repair delivers them again",
				i, sk.Name(), last))
		}
	}
	return nil
}

// readBack returns the session's sinks when they are built, else the file
// and S3 sinks of the configuration built for reading (buildReadBack; none
// when one cannot be built: the delivery, or check, says what is wrong),
// and done, which closes what it built.
func (s *Session) readBack(ctx context.Context) (_ []sinks.Sink, done func()) {
	if s.sinks != nil {
		return s.sinks.Sinks, func() {}
	}
	built, closeAll, err := buildReadBack(ctx, s.cfg)
	if err != nil {
		return nil, func() {}
	}
	return built, func() { _ = closeAll() } // nothing written: nothing to flush
}

// buildReadBack builds the file and S3 sinks of cfg for reading what they
// hold (no I/O; nil for the others: Kafka, stdout), and done, which closes
// them. A sink that cannot be built fails it, having closed the others.
func buildReadBack(ctx context.Context, cfg *config.Config) (_ []sinks.Sink, done func() error, err error) {
	built := make([]sinks.Sink, len(cfg.Sinks))
	done = func() error {
		var errs []error
		for _, sk := range built {
			if sk != nil {
				errs = append(errs, sk.Close(ctx))
			}
		}
		return errors.Join(errs...)
	}
	for i, sc := range cfg.Sinks {
		if sc.File == nil && sc.S3 == nil {
			continue
		}
		if built[i], err = sinkset.BuildOne(ctx, sc, io.Discard); err != nil {
			return nil, nil, errors.Join(fmt.Errorf("sinks[%d]: %w", i, err), done())
		}
	}
	return built, done, nil
}

// AheadNotes warn a follow loop that starts again at after (its watermark,
// or the end of the cycle it redoes) of each file-like sink that holds the
// events of a later instant in a day the state does not record exported:
// a state restored from a backup, or another state's loop or run writing
// there. The cycles from after deliver those events again, in files
// beside the ones that hold them. A sink it cannot read is passed over.
func (s *Session) AheadNotes(ctx context.Context, after time.Time, exported map[string]state.Day) []string {
	set, done := s.readBack(ctx)
	defer done()
	from := after.UTC().Truncate(day).Format(time.DateOnly)
	var notes []string
	for i, sk := range set {
		rooted, ok := sk.(sinks.Rooted)
		if !ok {
			continue
		}
		store, layout := rooted.Root(), rooted.Layout()
		days, err := store.Days(ctx, layout.Meta)
		if err != nil {
			continue
		}
		var ahead time.Time // the latest end of a file past after
		for _, dir := range days {
			date := dir[len("dt="):]
			if _, done := exported[date]; done || date < from {
				continue
			}
			b, _, err := store.Get(ctx, layout.ManifestName(dir))
			if err != nil {
				continue
			}
			m, err := sinks.DecodeManifest(b)
			if err != nil {
				continue
			}
			for _, f := range m.Files {
				if f.To.After(after) && f.To.After(ahead) {
					ahead = f.To
				}
			}
		}
		if !ahead.IsZero() {
			notes = append(notes, fmt.Sprintf("sinks[%d] %s holds events up to %s, past %s, where this state's cycles go on (a state restored from an older backup or lost, or another state's loop or run writing there): the cycles deliver those events again, in files beside the ones that hold them: twice in their day until its seal compacts it (with follow.keep_cycle_files, until a repair of the day)",
				i, sk.Name(), fmtT(ahead), fmtT(after)))
		}
	}
	return notes
}
