package pipeline

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pachca-export/pachca-export/extract"
	"github.com/pachca-export/pachca-export/internal/failure"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/state"
	"github.com/pachca-export/pachca-export/transform"
)

const batchSize = 2000

// deliver sends one fetched day from the spool to every sink, window by
// window, each window's records ordered by time. Every sink commits, or the
// day fails, every writer is aborted and the spool stays for the next run.
//
// With plan.Delivered (a follow loop) a record already delivered goes to no
// sink, except to file-like sinks in a Compact partition, which hold the
// whole day; and such a day must hold every record delivered before.
//
// With relink, the manifests of the days after it are linked to it again
// (it ends a block of consecutive days). It reports whether the day was
// delivered: false, with no error, when it was refused.
func (r *runner) deliver(ctx context.Context, p sinks.Partition, relink bool) (bool, error) {
	err := r.deliverDay(ctx, p, relink)
	var refused errRefused
	if errors.As(err, &refused) {
		return false, nil
	}
	return err == nil, err
}

// ShrunkDayError refuses to compact a followed day (a Compact partition
// with plan.Delivered): one file would hold fewer of the events delivered
// before for it than were delivered (the API no longer returns some, or
// returns two delivered events with one id, which a file holds once), and
// the day's files are left as they are. It is permanent.
type ShrunkDayError struct {
	Day                 string
	Returned, Delivered int
}

func (e *ShrunkDayError) Error() string {
	return fmt.Sprintf("%s: the API now returns %d of the %d events delivered before for this day: not replacing the day's files (check with `pachca-export verify --against-api`)",
		e.Day, e.Returned, e.Delivered)
}

// errRefused ends deliverDay for a day it refused (and recorded as such).
type errRefused struct{}

func (errRefused) Error() string { return "refused" }

func (r *runner) deliverDay(ctx context.Context, p sinks.Partition, relink bool) error {
	date := p.Date()
	all, err := r.spool.Windows(date)
	if err != nil {
		return err
	}
	from, to := p.From.UnixMilli(), p.To.UnixMilli()
	var use []extract.Window
	for _, w := range all {
		if slices.Contains(r.plan.Streams, w.Stream) && w.End > from && w.Start < to {
			use = append(use, w)
		}
	}
	// The day was planned and fetched whole: a part no window file covers
	// was removed since (by hand, by a cleaner of temporary files), and
	// the day would be delivered, and recorded as exported, without its
	// events. The next attempt fetches the part again.
	for _, s := range r.plan.Streams {
		if g := gaps(from, to, s, use); len(g) > 0 {
			return fmt.Errorf("spool: %s: the checkpoint of %s is missing (removed while the run went on?): the day is not delivered; run again to fetch it", r.spool.Dir(date), g[0])
		}
	}
	writers := make([]sinks.Writer, 0, len(r.sinks))
	// fail aborts every writer not yet committed and returns err with
	// whatever the aborts could not clean up.
	committed := 0
	fail := func(err error) error {
		return errors.Join(err, r.abort(ctx, date, writers[committed:], r.sinks[committed:]))
	}
	open := func() error {
		if err := r.s.markSinks(ctx); err != nil {
			return err
		}
		for _, s := range r.sinks {
			cctx, done := r.sinkCall(ctx, s.Name(), "open", date)
			w, err := s.Open(cctx, p)
			err = done(err)
			if err != nil {
				return fail(fmt.Errorf("%s: %s: %w", s.Name(), date, err))
			}
			writers = append(writers, w)
		}
		return nil
	}
	if !r.plan.SkipEmpty {
		if err := open(); err != nil {
			return err
		}
	}
	streams := make([]bool, len(r.sinks))
	for i, s := range r.sinks {
		_, streams[i] = s.(sinks.Streamer)
	}

	var (
		norm     transform.Normalizer
		recs     []transform.Record
		fresh    []transform.Record // recs not delivered before: recs, or freshBuf when the plan says what was
		streamed []transform.Record // what of fresh goes to streams (plan.FilesWhole)
		freshBuf []transform.Record
		dead     *deadFile             // nil until the first dead letter
		buryErr  error                 // of the dead-letter file, which ends the read
		twins    []string              // ids of events dead-lettered for another event's id
		ids      = map[string]uint64{} // of the window being read: their content sum with plan.Delivered, else 0
		perKey   = map[string]int64{}
		dropped  int64
		un       sinks.Unexported // of p's range, for the manifests: its part's own, or all for a whole range
		total    int64
		held     int64 // records the file-like sinks' file of the partition holds
		again    int   // records of the day delivered before (plan.Delivered)
	)
	filtered := r.plan.Delivered != nil || r.plan.StreamsFrom > 0
	// once tells whether the event of key (contentID) is to be
	// counted (dropped or dead-lettered): not if an earlier plan counted it.
	once := func(key string) bool {
		if r.plan.Counted == nil {
			return true
		}
		if r.plan.Counted(date, key) {
			return false
		}
		r.plan.OnCount(date, key)
		return true
	}
	// bury keeps d, the event of key, for the dead-letter file unless an
	// earlier plan wrote it.
	bury := func(d deadLetter, key string) bool {
		if buryErr != nil || !once(key) {
			return false
		}
		if dead == nil {
			if dead, buryErr = r.openDeadLetters(p); buryErr != nil {
				return false
			}
		}
		buryErr = dead.add(d)
		return buryErr == nil
	}
	defer func() { dead.discard() }() // after its commit, nothing
	// twin counts the event of id dead-lettered for another event's id,
	// buried by this plan (or by an earlier one).
	twin := func(id string, buried bool) {
		if buried {
			twins = append(twins, id)
		}
		if buried || !p.Part {
			un.DeadLetters++
		}
	}
	// emit sends records of the window being read, sorted, to the sinks
	// and counts them: the whole window at once, or in sorted batches.
	emit := func(recs []transform.Record) error {
		fresh, streamed = recs, recs
		if filtered {
			fresh = freshBuf[:0]
			for i := range recs {
				switch {
				case r.plan.Delivered != nil && delivered(r.plan.Delivered, recs[i].ID, ids[recs[i].ID]):
					again++
				case recs[i].CreatedAt >= r.plan.StreamsFrom || r.plan.FilesWhole:
					fresh = append(fresh, recs[i])
				}
			}
			freshBuf, streamed = fresh, fresh
			if r.plan.FilesWhole {
				// Streams start at StreamsFrom: fresh is sorted by time.
				streamed = fresh[sort.Search(len(fresh), func(i int) bool { return fresh[i].CreatedAt >= r.plan.StreamsFrom }):]
			}
		}
		if len(writers) == 0 && (len(fresh) > 0 || p.Compact && len(recs) > 0) {
			if err := open(); err != nil {
				return err
			}
		}
		for i, wr := range writers {
			src := fresh
			switch {
			case streams[i]:
				src = streamed
			case p.Compact:
				src = recs // the day file holds the whole day
			}
			for start := 0; start < len(src); start += batchSize {
				cctx, done := r.sinkCall(ctx, r.sinks[i].Name(), "write", date)
				err := done(wr.Write(cctx, src[start:min(start+batchSize, len(src))]))
				if err != nil {
					return fail(fmt.Errorf("%s: %s: %w", r.sinks[i].Name(), date, err))
				}
			}
		}
		for i := range fresh {
			perKey[fresh[i].EventKey]++
			if r.plan.OnFresh != nil {
				r.plan.OnFresh(&fresh[i], ids[fresh[i].ID])
			}
		}
		if r.s.alerts != nil {
			for i := range streamed { // as the streams: from StreamsFrom on
				r.s.alerts.Observe(&streamed[i]) // findings are used only if the whole plan succeeds
			}
		}
		total += int64(len(fresh))
		if p.Compact {
			held += int64(len(recs))
		} else {
			held += int64(len(fresh))
		}
		return nil
	}
	var (
		lines  []state.Line // where the records of recs are, in the window's file
		sorted []lineKey    // past bigWindow records: where they are, to sort, instead of them
	)
	for _, w := range use {
		recs, lines, sorted = recs[:0], lines[:0], sorted[:0]
		clear(ids)
		read := 0 // lines of the window, for the progress
		err := r.spool.Read(date, w, func(raw []byte, at state.Line) error {
			read++
			// A follow loop's plans know events by their bytes: hashed once.
			var key string
			var sum uint64
			if r.plan.Counted != nil || r.plan.Delivered != nil {
				key, sum = contentID(raw)
			}
			// Normalize in place: a Record is over 2 KB.
			recs = append(recs, transform.Record{})
			rec := &recs[len(recs)-1]
			if err := norm.NormalizeInto(raw, r.cfg.Source.Workspace, rec); err != nil {
				recs = recs[:len(recs)-1]
				if bury(newDeadLetter(err.Error(), raw, w), key) || !p.Part {
					un.DeadLetters++
				}
				return buryErr
			}
			_, repeat := ids[rec.ID]
			var idSent, sent bool // its id, the event itself, delivered before
			if r.plan.Delivered != nil {
				idSent, sent = r.plan.Delivered.Seen(rec.ID, sum)
			}
			switch {
			case rec.CreatedAt < from || rec.CreatedAt >= to:
				recs = recs[:len(recs)-1] // a window spooled for another range reaches past this one
			case r.s.drop.Dropped(rec):
				recs = recs[:len(recs)-1]
				first := once(key)
				if first {
					dropped++
				}
				if first || !p.Part {
					un.Dropped++
				}
			case r.plan.Counted != nil && r.plan.Counted(date, key):
				// An earlier plan's dead letter (another event's id, which
				// a later look-back no longer sees delivered): it stays one.
				recs = recs[:len(recs)-1]
				if !p.Part {
					un.DeadLetters++
				}
			case repeat && sent:
				// Delivered before, as was the other event with its id (by
				// cycles that did not compare them): not a dead letter, but
				// the day file cannot hold both (ShrunkDayError).
				recs = recs[:len(recs)-1]
			case repeat:
				// The fetcher keeps back repeats of an event (same id, same
				// bytes): this is another event with the id of one before
				// it. A file holds an id once; this one goes where it is
				// seen and counted.
				twin(rec.ID, bury(newDeadLetter(fmt.Sprintf("id %s: another event with this id and different content came before it in its window, and is the one delivered", strconv.Quote(rec.ID)), raw, w), key))
				recs = recs[:len(recs)-1]
			case idSent && !sent:
				// Not the delivered event read again (its bytes differ):
				// another event with its id, which goes where it is seen.
				twin(rec.ID, bury(newDeadLetter(fmt.Sprintf("id %s: an event with this id and different content was delivered before, and stays the one delivered", strconv.Quote(rec.ID)), raw, w), key))
				recs = recs[:len(recs)-1]
			default:
				if len(sorted) > 0 {
					// A copy of the id: rec.ID would hold on to the
					// whole record's text.
					k := lineKey{at: rec.CreatedAt, id: strings.Clone(rec.ID), line: at}
					ids[k.id] = sum
					sorted = append(sorted, k)
					recs = recs[:0]
					return nil
				}
				ids[rec.ID] = sum
				lines = append(lines, at)
				if len(recs) == bigWindow {
					// Many events in one millisecond, which no checkpoint
					// cuts (some 2.6 KB a record: 541 MB of RSS for 100,000
					// in one millisecond): from here on, where each is.
					for i := range recs {
						sorted = append(sorted, lineKey{at: recs[i].CreatedAt, id: strings.Clone(recs[i].ID), line: lines[i]})
					}
					recs = recs[:0]
				}
			}
			return buryErr
		})
		if err != nil {
			return fail(err)
		}
		r.handed.Add(int64(read))
		if len(sorted) == 0 {
			slices.SortFunc(recs, func(a, b transform.Record) int { return compareRecords(a.CreatedAt, a.ID, b.CreatedAt, b.ID) })
			if err := emit(recs); err != nil {
				return err
			}
			continue
		}
		// The records again, a batch at a time, in their order.
		slices.SortFunc(sorted, func(a, b lineKey) int { return compareRecords(a.at, a.id, b.at, b.id) })
		for start := 0; start < len(sorted); start += batchSize {
			part := sorted[start:min(start+batchSize, len(sorted))]
			at := lines[:0] // no longer needed for the records it was kept for
			for _, k := range part {
				at = append(at, k.line)
			}
			recs = slices.Grow(recs[:0], len(part))[:len(part)]
			err := r.spool.ReadLines(date, w, at, func(i int, raw []byte) error {
				return norm.NormalizeInto(raw, r.cfg.Source.Workspace, &recs[i])
			})
			if err != nil {
				return fail(err)
			}
			if err := emit(recs); err != nil {
				return err
			}
		}
	}
	if p.Compact && r.plan.Delivered != nil {
		if want := r.plan.Delivered.Count(date); again < want {
			return fail(failure.AsPermanent(&ShrunkDayError{Day: date, Returned: again, Delivered: want}))
		}
	}
	if len(writers) > 0 { // nothing opened (nothing new), nothing to replace
		refused, err := r.refusal(ctx, p, held)
		if err != nil {
			return fail(err)
		}
		if refused != nil {
			return r.refuse(ctx, p, *refused, writers, use)
		}
	}
	if dead.count() > 0 {
		path, err := dead.commit(r.log)
		if err != nil {
			return fail(err)
		}
		r.sum.deadLettersIn(filepath.Dir(filepath.Dir(path)))
		if len(twins) > 0 {
			r.log.Warn("events with the id of another, different event went to the dead-letter file",
				"day", date, "count", len(twins), "ids", twins[:min(len(twins), 10)], "file", path)
		}
		if n := dead.count() - len(twins); n > 0 {
			r.log.Warn("events that could not be parsed went to the dead-letter file", "day", date, "count", n, "file", path)
		}
	}
	for _, wr := range writers {
		if u, ok := wr.(sinks.UnexportedRecorder); ok {
			u.SetUnexported(un)
		}
	}
	results := make([]sinks.Result, len(writers))
	for i, wr := range writers {
		cctx, done := r.sinkCall(ctx, r.sinks[i].Name(), "commit", date)
		res, err := wr.Commit(cctx)
		err = done(err)
		if err != nil {
			committed = i + 1 // a failed Commit cleans up after itself
			return fail(fmt.Errorf("%s: %s: %w", r.sinks[i].Name(), date, err))
		}
		committed = i + 1
		results[i] = res
	}
	if relink {
		if err := r.relink(ctx, p); err != nil {
			return err // the day is not recorded: the next run delivers it again
		}
	}
	// State first, spool last: a crash in between re-delivers from the spool.
	if behind, ok := r.completeOnAPI(p); !ok {
		r.log.Warn("the API's clock is behind this host's: the day was not over on the API, less period.lag, when the run began, and may get more events; delivered, not recorded as exported, so the next run exports it again (check the time sync of both)",
			"day", date, "behind", behind.Truncate(time.Second).String())
	} else {
		if p.FullDay() {
			if err := r.store.MarkExported(state.Day{Day: date, ExportedAt: time.Now().UTC(), RunID: p.RunID, Records: held}); err != nil {
				return err
			}
		}
		if key := r.plan.progressKey; key != "" {
			if err := r.store.AddRunProgress(key, date); err != nil {
				return err
			}
		}
	}
	if p.FullDay() {
		if err := r.spool.RemoveDay(date); err != nil {
			return err
		}
	} else if err := r.spool.Remove(date, use); err != nil {
		return err
	}
	if len(writers) == 0 {
		// Nothing new: no file written; only the dropped events and the
		// dead letters count.
		r.sum.addCounts(dropped, int64(dead.count()))
		return nil
	}
	r.sum.addDay(p, total, held == 0, dropped, int64(dead.count()), perKey, r.sinks, results)
	r.log.Log(ctx, r.info(), "day delivered", "day", date, "events", total, "full_day", p.FullDay())
	r.warnOverlaps(date, results)
	if held == 0 {
		// Delivered all the same (the day is complete and empty), but a feed
		// that goes quiet usually means something upstream broke.
		r.log.Warn("a delivered day has no events: if some were expected, check the filters, drop_event_keys and the workspace",
			"day", date, "full_day", p.FullDay(), "dropped", dropped, "dead_letters", dead.count())
	}
	return nil
}

// refuse leaves day p as the sinks hold it: every writer is aborted, the
// day is not recorded, and its spool goes (a later run fetches it afresh).
// Streams (Kafka, stdout) may have sent some of its events already: they
// are at least once, and those events are real.
func (r *runner) refuse(ctx context.Context, p sinks.Partition, why Refusal, writers []sinks.Writer, use []extract.Window) error {
	if err := r.abort(ctx, p.Date(), writers, r.sinks); err != nil {
		return err
	}
	r.log.Warn("day refused: its files are left as they were", "day", p.Date(), "reason", why.Reason)
	r.sum.refuse(why)
	err := r.spool.RemoveDay(p.Date())
	if !p.FullDay() {
		err = r.spool.Remove(p.Date(), use)
	}
	return errors.Join(errRefused{}, err)
}

// relinkTimeout bounds a relink after a failure, which runs even when the
// run was cancelled.
const relinkTimeout = 30 * time.Second

// relink links the manifests of the days after p to p's again, in every
// sink that chains them (sinks.Linker). Every sink has committed p: one
// sink's error (a damaged manifest) must not leave the others' chains
// broken, so each is relinked and the errors are joined.
func (r *runner) relink(ctx context.Context, p sinks.Partition) error {
	if err := r.s.markSinks(ctx); err != nil {
		return err
	}
	var errs []error
	for _, s := range r.sinks {
		if l, ok := s.(sinks.Linker); ok {
			cctx, done := r.sinkCall(ctx, s.Name(), "relink", p.Date())
			err := done(l.Relink(cctx, p))
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %s: %w", s.Name(), p.Date(), err))
			}
		}
	}
	return errors.Join(errs...)
}

// abortTimeout bounds the clean-up of a failed day (a multipart upload to
// abort), which runs even when the run was cancelled.
const abortTimeout = 30 * time.Second

// abort aborts the writers of a failed day and returns what could not be
// cleaned up, naming the sink.
func (r *runner) abort(ctx context.Context, date string, ws []sinks.Writer, ss []sinks.Sink) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
	defer cancel()
	var errs []error
	deadline, _ := ctx.Deadline()
	for i, w := range ws {
		leave := r.waiting.enter(ss[i].Name(), "abort", date, deadline)
		err := w.Abort(ctx)
		leave()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %s: abort: %w", ss[i].Name(), date, err))
		}
	}
	return errors.Join(errs...)
}

func delivered(d Delivered, id string, sum uint64) bool {
	_, ok := d.Seen(id, sum)
	return ok
}

// contentID hashes an event's bytes once for a follow loop: key, which
// identifies its dead letter or its drop (plan.Counted: a follow loop
// counts each once, however often its look-back reads it), and sum, the
// content sum logged with its id (state.DeliveredID); the same event read
// again has the same.
func contentID(raw []byte) (key string, sum uint64) {
	h := sha256.Sum256(raw)
	return string(h[:16]), binary.BigEndian.Uint64(h[:8])
}

// bigWindow is the number of records of a window held in memory to sort
// them; a larger window (events in one millisecond, which no checkpoint
// cuts) is sorted by where its records are and read again in batches.
// Checkpoints keep other windows to about DefaultMaxWindowEvents.
const bigWindow = 2 * extract.DefaultMaxWindowEvents

// lineKey is a record of a big window as it is sorted: its order, and
// where its line is in the window's file.
type lineKey struct {
	at   int64
	id   string
	line state.Line
}

// compareRecords orders records by time, then id: the order of a day file.
func compareRecords(atA int64, idA string, atB int64, idB string) int {
	if c := cmp.Compare(atA, atB); c != 0 {
		return c
	}
	return strings.Compare(idA, idB)
}

// warnOverlaps says when a partial range was written beside a file of
// another range of its day that overlaps it (a pull of 10:00 up to now,
// then of 12:00 up to now): the events both cover are in the day twice,
// which verify fails, until the whole day (the nightly run) or a range
// containing both replaces them. The run has succeeded; nothing is lost
// (was: not a word until verify failed the day).
func (r *runner) warnOverlaps(date string, results []sinks.Result) {
	for i, res := range results {
		if len(res.Overlaps) > 0 {
			r.log.Warn(fmt.Sprintf("%s: this part of %s was written beside files of another range of the day that overlaps it: "+
				"the events both cover are in the day twice (verify fails it) until the whole day is exported, or a range containing both, which replaces them",
				r.sinks[i].Name(), date), "day", date, "overlaps", res.Overlaps)
		}
	}
}
