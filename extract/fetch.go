package extract

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// Window is a half-open time range [Start, End) in Unix milliseconds of one
// stream: an event key, or "" for every key.
type Window struct {
	Stream     string
	Start, End int64
}

func (w Window) String() string {
	s := time.UnixMilli(w.Start).UTC().Format(apiTime) + ".." + time.UnixMilli(w.End).UTC().Format(apiTime)
	if w.Stream != "" {
		s = w.Stream + " " + s
	}
	return s
}

// WindowWriter receives the events of one window as they arrive, each at most
// once and all within the window; Commit is called once with the range that
// was finally covered (a window may be narrowed when the fetcher splits it or
// cuts a checkpoint off it), or Abort when the window is given up.
type WindowWriter interface {
	Add(ev Event) error
	Commit(done Window) error
	Abort()
}

// DefaultMaxWindowEvents bounds the events of one window file: the run loop
// holds one file's records in memory to sort them, some 3 MB for 1,000.
const DefaultMaxWindowEvents = 1000

// DefaultMaxWindowBytes bounds a window file by the bytes of its events as
// the API sent them, for events of many kilobytes: a thousand events of a
// megabyte each would be a gigabyte to sort.
const DefaultMaxWindowBytes = 8 << 20

// DefaultCheckpointEvery is how often the finished part of a running window
// is committed: what a killed run loses, at most, of each window in flight.
const DefaultCheckpointEvery = time.Second

// FetcherConfig configures a Fetcher.
type FetcherConfig struct {
	Client  *Client
	Workers int // at most this many windows in flight
	// MaxWindowEvents, MaxWindowBytes and CheckpointEvery bound a window
	// file: once it holds MaxWindowEvents events or MaxWindowBytes bytes of
	// them (checked after each page), or CheckpointEvery has passed since it was
	// opened, the part of the window walked so far is committed as a window
	// of its own (up to the oldest millisecond seen, which may continue on
	// the next page) and the walk goes on with the same cursor into a new
	// file. No request is repeated for it.
	MaxWindowEvents int
	MaxWindowBytes  int
	CheckpointEvery time.Duration
	// Open starts a window file; called from worker goroutines, once per
	// queued window and once more per checkpoint cut off it.
	Open func(w Window) (WindowWriter, error)
	// OnQueue is called for every window that enters the queue, including the
	// ones the fetcher creates by splitting; OnFinish when a worker is done with
	// a window (committed, or replaced by the windows it was split into); never
	// for a window that failed.
	// Both are called from worker goroutines and from Add.
	OnQueue, OnFinish func(w Window)
	// OnCovered reports, as pages arrive, how many more milliseconds of
	// stream w.Stream were walked through (for progress; optional).
	OnCovered func(w Window, ms int64)
	// Retract removes a part of a window that was committed (a checkpoint)
	// when an event of it comes later in the walk, after events older than
	// it by more than the fetcher allows for (DisorderSpan and what it saw
	// before): the part is queued again, and fetched whole. Called from
	// worker goroutines. Nil: such an event fails the window, and the next
	// run's plan would not ask for it again.
	Retract func(part Window) error
}

// DisorderSpan is how far the API's pages may depart from newest first
// with no cost but a little memory: an event may come after events up to
// this much older than it (an API that orders by its log, where
// concurrent writers commit out of order). Checkpoints and cut windows
// keep that much back. The fetcher widens it to the most it saw (up to
// maxDisorder); beyond it, a committed part is retracted and fetched again.
const DisorderSpan = 2 * time.Second

// maxDisorder bounds how far the fetcher widens DisorderSpan: a wider one
// would keep window files from being checkpointed for as long.
const maxDisorder = 10 * time.Minute

// Fetcher fetches windows with up to Workers goroutines, but keeps only as
// many windows in flight as the rate limit and the measured time per request
// need (rate × time requests under way at once): each further window costs a
// partial last page. Queued windows are taken oldest first, and the client
// serves the oldest window's requests first, so days finish in order and are
// delivered while later ones are fetched. While fewer windows are in flight
// than needed, it cuts parts off a running one: one with staggerPages left
// even while others are queued, one with tailPages left once none is.
// Windows the API rejects as too large are split too.
type Fetcher struct {
	cfg FetcherConfig

	mu      sync.Mutex
	cond    *sync.Cond
	queue   []Window
	walks   []*walk // windows in flight
	pending int     // splits asked for and not yet queued
	closed  bool

	disorder atomic.Int64 // the most an event came after older ones, in ms
}

// tolerance is how much older than an event the events before it in a
// walk may be, in ms: DisorderSpan and the most seen so far.
func (f *Fetcher) tolerance() int64 {
	return DisorderSpan.Milliseconds() + f.disorder.Load()
}

// sawDisorder records that an event came d ms after an older one.
func (f *Fetcher) sawDisorder(d int64) {
	d = min(d, maxDisorder.Milliseconds())
	for {
		old := f.disorder.Load()
		if d <= old || f.disorder.CompareAndSwap(old, d) {
			return
		}
	}
}

// walk is a window in flight, as the fetcher's scheduler sees it.
type walk struct {
	start  int64     // the window still to walk starts here (a split moves it)
	left   float64   // estimated pages left; < 0 before the first page with events
	splits int       // older parts the scheduler wants cut off it as windows of their own
	seen   time.Time // its last page came (or it began)
}

// Split thresholds, in estimated pages left in a window: a split costs one
// extra partial page. A window is cut into as many parts as the scheduler
// asked for by its next page, each with at least half the threshold.
const (
	staggerPages = 200 // rather than start another queued window
	tailPages    = 2   // when nothing else is queued
)

// NewFetcher returns a fetcher; windows are added with Add, and Run works
// until CloseInput was called and the queue is drained.
func NewFetcher(cfg FetcherConfig) *Fetcher {
	if cfg.Workers < 1 {
		cfg.Workers = 1
	}
	if cfg.MaxWindowEvents <= 0 {
		cfg.MaxWindowEvents = DefaultMaxWindowEvents
	}
	if cfg.MaxWindowBytes <= 0 {
		cfg.MaxWindowBytes = DefaultMaxWindowBytes
	}
	if cfg.CheckpointEvery <= 0 {
		cfg.CheckpointEvery = DefaultCheckpointEvery
	}
	if cfg.OnQueue == nil {
		cfg.OnQueue = func(Window) {}
	}
	if cfg.OnFinish == nil {
		cfg.OnFinish = func(Window) {}
	}
	if cfg.OnCovered == nil {
		cfg.OnCovered = func(Window, int64) {}
	}
	f := &Fetcher{cfg: cfg}
	f.cond = sync.NewCond(&f.mu)
	return f
}

// Add queues windows. Safe for concurrent use.
func (f *Fetcher) Add(ws ...Window) {
	for _, w := range ws {
		f.cfg.OnQueue(w)
	}
	f.mu.Lock()
	f.queue = append(f.queue, ws...)
	f.mu.Unlock()
	f.cond.Broadcast()
}

// CloseInput says no more windows will be added; Run returns once the queue
// is empty.
func (f *Fetcher) CloseInput() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.cond.Broadcast()
}

// Run works until the input is closed and every window is done, or the first
// error, which cancels the others.
func (f *Fetcher) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	stop := context.AfterFunc(ctx, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.cond.Broadcast()
	})
	defer stop()
	// Wake idle workers now and then: a window held up frees their share
	// (moving) with no event to tell them.
	tick := time.NewTicker(stuckCheck)
	defer tick.Stop()
	done := make(chan struct{})
	var ticking sync.WaitGroup
	ticking.Go(func() {
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				f.cond.Broadcast()
			}
		}
	})
	defer ticking.Wait()
	defer close(done)
	for range f.cfg.Workers {
		g.Go(func() error {
			for {
				w, a, ok := f.next(ctx)
				if !ok {
					return ctx.Err()
				}
				err := f.fetch(ctx, w, a)
				if err == nil {
					// Only a window that is done may let its day be delivered.
					f.cfg.OnFinish(w)
				}
				f.finish(a)
				if err != nil {
					return err
				}
			}
		})
	}
	return g.Wait()
}

// want is how many windows should be in flight: enough that rate × latency
// requests are under way (with a margin for the jitter of both), all the
// workers while the rate is unlimited or no latency is measured yet.
// Called with f.mu held.
func (f *Fetcher) want() int {
	need := f.cfg.Client.Limiter().InFlight()
	if need <= 0 {
		return f.cfg.Workers
	}
	return min(max(int(math.Ceil(need/0.85)), 1), f.cfg.Workers)
}

// moving is how many windows in flight are moving. A window whose page
// has waited far longer than one takes (a request the API holds until
// source.timeout, retries of one that fails) leaves its share of the
// rate to another: where one or two windows are enough (an API that
// answers in milliseconds), one held-up request would stop the whole
// fetch (was: 5 s without a request behind a request held 5 s, in a test;
// 30 s with the default source.timeout). Called with f.mu held.
func (f *Fetcher) moving(now time.Time) int {
	lim := f.cfg.Client.Limiter()
	rate := lim.Rate()
	if rate <= 0 {
		return len(f.walks) // unlimited: every worker walks anyway
	}
	// A page of one window takes its turn among the windows' (at the
	// rate) and the time a request takes (need/rate).
	page := time.Duration((float64(len(f.walks)) + lim.InFlight()) / rate * float64(time.Second))
	stuck := max(stuckAfter, stuckPages*page)
	// A Retry-After holds every window alike: its time counts for none.
	paused := lim.PausedUntil()
	n := 0
	for _, a := range f.walks {
		if now.Sub(maxTime(a.seen, paused)) < stuck {
			n++
		}
	}
	return n
}

// A window counts as held up once its page has waited stuckPages times as
// long as a page takes, and at least stuckAfter, not counting a pause for
// a Retry-After, which holds every window alike. The fetcher looks again
// every stuckCheck.
const (
	stuckPages = 10
	stuckAfter = 3 * time.Second
	stuckCheck = 250 * time.Millisecond
)

// next returns the window a free worker should walk: the oldest queued one,
// or, when a running window is worth splitting, its older half. It blocks
// while enough windows are in flight, or nothing is left to take.
func (f *Fetcher) next(ctx context.Context) (Window, *walk, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for {
		if ctx.Err() != nil {
			return Window{}, nil, false
		}
		if f.moving(time.Now())+f.pending < f.want() {
			if c := f.splitCandidate(); c != nil {
				c.splits++
				f.pending++
			} else if len(f.queue) > 0 {
				return f.pop(), f.walks[len(f.walks)-1], true
			}
		}
		if f.closed && len(f.walks) == 0 && len(f.queue) == 0 {
			return Window{}, nil, false
		}
		f.cond.Wait()
	}
}

// pop takes the oldest queued window into flight. Called with f.mu held.
func (f *Fetcher) pop() Window {
	best := 0
	for i, w := range f.queue {
		if w.Start < f.queue[best].Start {
			best = i
		}
	}
	w := f.queue[best]
	f.queue = append(f.queue[:best], f.queue[best+1:]...)
	f.walks = append(f.walks, &walk{start: w.Start, left: -1, seen: time.Now()})
	return w
}

// splitCandidate is the window in flight whose parts would be the largest,
// if cutting one more part off it leaves every part at least half the
// threshold: when several workers fall idle at once (the older windows
// finish together at the end of a run), the last window is cut into as
// many parts at its next page, not halved once per page. Called with f.mu
// held.
func (f *Fetcher) splitCandidate() *walk {
	threshold := float64(staggerPages)
	if len(f.queue) == 0 {
		threshold = tailPages
	}
	var best *walk
	for _, a := range f.walks {
		if a.part() >= threshold/2 && (best == nil || a.part() > best.part()) {
			best = a
		}
	}
	return best
}

// part is the pages each part of a would have with one more cut off it.
func (a *walk) part() float64 { return a.left / float64(a.splits+2) }

func (f *Fetcher) finish(a *walk) {
	f.mu.Lock()
	f.walks = slices.DeleteFunc(f.walks, func(x *walk) bool { return x == a })
	f.pending -= a.splits
	f.mu.Unlock()
	f.cond.Broadcast()
}

// progress records, after a page, what is left of a's window: [start, oldest)
// with density events per millisecond. When the scheduler asked for splits,
// it cuts that range into equal parts, keeps the newest and moves a's start
// to it. It returns the older parts to queue and the new start.
func (f *Fetcher) progress(a *walk, oldest int64, density float64) (split []Window, start int64) {
	f.mu.Lock()
	defer f.cond.Broadcast()
	defer f.mu.Unlock()
	now := time.Now()
	a.seen = now
	if density > 0 {
		a.left = density * float64(oldest-a.start) / PageSize
	}
	// Workers idle with nothing queued: cut this window now rather than at
	// its next page, once they have woken to ask for it.
	for len(f.queue) == 0 && f.moving(now)+f.pending < f.want() && a.part() >= tailPages/2 {
		a.splits++
		f.pending++
	}
	if parts := min(int64(a.splits)+1, oldest-a.start); a.splits > 0 && parts >= 2 {
		span := oldest - a.start
		for i := range parts - 1 {
			split = append(split, Window{Start: a.start + span*i/parts, End: a.start + span*(i+1)/parts})
		}
		a.start += span * (parts - 1) / parts
		a.left /= float64(parts)
		f.pending -= a.splits
		a.splits = 0
	}
	return split, a.start
}

// queueSplit queues the older parts of a split window.
func (f *Fetcher) queueSplit(ws []Window) {
	for _, w := range ws {
		f.cfg.OnQueue(w)
	}
	f.mu.Lock()
	f.queue = append(f.queue, ws...)
	f.mu.Unlock()
	f.cond.Broadcast()
}

// seenKey identifies an event received in a window: its id and a hash of
// its bytes.
type seenKey struct {
	id  string
	sum uint64
}

// maxEmptyPages bounds a run of pages that still say has_next but bring no
// event not read before: empty, or repeating the last ones under new
// cursors (a loop the repeated-cursor check does not see).
const maxEmptyPages = 20

// fetch walks one window's pages, newest first. It holds back the events
// within the tolerance (tolerance) of the oldest seen so far, so that the
// part walked can be committed, or the rest split off, at a boundary that
// no later event of the walk falls above, and without splitting a group of
// events that share one millisecond.
func (f *Fetcher) fetch(ctx context.Context, w Window, a *walk) error {
	end := w.End // of the current file: the parts from here on are committed
	wr, err := f.cfg.Open(w)
	if err != nil {
		return err
	}
	defer func() {
		if wr != nil {
			wr.Abort()
		}
	}()
	var parts, refetch []Window // committed by this walk; retracted and queued again
	// commit ends the current file with the part [from, end) of the window.
	commit := func(from int64) error {
		cw := wr
		wr = nil
		parts = append(parts, Window{w.Stream, from, end})
		return cw.Commit(Window{w.Stream, from, end})
	}
	// end_time is the window's end itself, inclusive: an API that keeps
	// microseconds compares them, and an event at 23:59:59.999500, which
	// it writes as 23:59:59.999, is after an end_time of 23:59:59.999 and
	// before the next window's start_time; events at the end itself are
	// the next window's, and are skipped below (ev.At >= end).
	q := Query{Start: time.UnixMilli(w.Start), End: time.UnixMilli(w.End), EventKey: w.Stream}
	var (
		cursor     string
		cursors    = map[string]struct{}{}
		seed       = maphash.MakeSeed()
		seen       = map[seenKey]struct{}{}
		untimed    []seenKey // events without a readable time, kept in seen
		held       []Event   // the events within the tolerance of the oldest so far, held back, newest first, from held[head]
		head       int       // held[:head] went to the file
		heldB      int       // the bytes of held[head:]
		fileMin    = int64(math.MaxInt64)
		minAt      = w.End
		written    int // events in the current file
		bytes      int // and their bytes
		walked     int // events received in the window, for the density
		emptyPages int
		opened     = time.Now()
		covered    = w.End // pages walk from End down; [covered, End) is walked
	)
	cover := func(to int64) {
		if to < covered {
			f.cfg.OnCovered(w, covered-to)
			covered = to
		}
	}
	add := func(ev Event) error {
		written++
		bytes += len(ev.Raw)
		if ev.TimeOK {
			fileMin = min(fileMin, ev.At)
		}
		return wr.Add(ev)
	}
	// release moves the held-back events newer than above to the file.
	release := func(above int64) error {
		for ; head < len(held) && held[head].At > above; head++ {
			if err := add(held[head]); err != nil {
				return err
			}
			heldB -= len(held[head].Raw)
			held[head] = Event{}
		}
		if head > 0 && head >= len(held)/2 {
			held, head = append(held[:0], held[head:]...), 0
		}
		return nil
	}
	// hold keeps back ev, within the tolerance of the oldest. Held back, a
	// group of many events in one millisecond would all be in memory (a
	// bulk operation: 100,000 held 35 MB of raw events): past the default
	// bounds of a window file they go to the file, and the window is not
	// cut until the walk is the tolerance past them (fileMin).
	hold := func(ev Event) error {
		i := len(held)
		for i > head && held[i-1].At < ev.At {
			i--
		}
		held, heldB = slices.Insert(held, i, ev), heldB+len(ev.Raw)
		if len(held)-head >= DefaultMaxWindowEvents || heldB >= DefaultMaxWindowBytes {
			return release(math.MinInt64)
		}
		return release(minAt + f.tolerance())
	}
	// cut is where the part walked may be committed: above every event held
	// back and every one still to come, at or below every one in the file.
	cut := func() (int64, bool) {
		c := minAt + f.tolerance() + 1
		if head < len(held) {
			c = max(c, held[head].At+1)
		}
		return c, c < end && c <= fileMin
	}
	// retract queues again the committed part that should have held ev.
	retract := func(ev Event, oldest int64) error {
		for _, p := range refetch {
			if ev.At >= p.Start && ev.At < p.End {
				return nil // fetched again: ev with it
			}
		}
		i := slices.IndexFunc(parts, func(p Window) bool { return ev.At >= p.Start && ev.At < p.End })
		if i < 0 {
			return nil
		}
		if f.cfg.Retract == nil {
			return fmt.Errorf("fetch %s: the API's pages are not newest first: event %q at %s came after events down to %s; stopping rather than risking a gap",
				w, ev.ID, time.UnixMilli(ev.At).UTC().Format(apiTime), time.UnixMilli(oldest).UTC().Format(apiTime))
		}
		p := parts[i]
		if err := f.cfg.Retract(p); err != nil {
			return err
		}
		parts = slices.Delete(parts, i, i+1)
		refetch = append(refetch, p)
		f.Add(p)
		return nil
	}
	for {
		// The oldest part walked first: days finish in order, and are
		// delivered while later ones are fetched. A window cut moves its
		// start, so that the parts cut off it go before it.
		page, err := f.cfg.Client.PageFirst(ctx, q, cursor, w.Start)
		if err != nil {
			if IsRangeTooLarge(err) && cursor == "" && w.End-w.Start >= 2 {
				mid := w.Start + (w.End-w.Start)/2
				f.Add(Window{w.Stream, w.Start, mid}, Window{w.Stream, mid, w.End})
				return nil // the file is empty: dropped
			}
			if c, ok := cut(); ok {
				// Stopped (SIGTERM, another window's failure) or failed:
				// the part walked since the last checkpoint is kept as
				// one, so that the next run does not fetch it again.
				if cerr := commit(c); cerr != nil {
					return errors.Join(fmt.Errorf("fetch %s: %w", w, err), cerr)
				}
			}
			return fmt.Errorf("fetch %s: %w", w, err)
		}
		reachedStart, before, fresh := false, 0, 0 // before: events before start_time; fresh: not repeats
		oldest := minAt                            // the oldest time of the pages before this one
		for _, ev := range page.Events {
			// A repeat is the same id with the same bytes: the API repeating
			// an event on the next page. Another event with the id goes on,
			// and the run loop dead-letters it. Events without a usable id
			// are never merged.
			key := seenKey{ev.ID, maphash.Bytes(seed, ev.Raw)}
			_, dup := seen[key]
			dup = dup && ev.ID != ""
			// A repeat of an event newer than one on an earlier page means a
			// page served again, maybe in place of the one that was due.
			if dup && ev.TimeOK && ev.At > oldest && ev.At < w.End {
				return fmt.Errorf("fetch %s: the API's pages are not newest first: event %q at %s came again after events down to %s; stopping rather than risking a gap",
					w, ev.ID, time.UnixMilli(ev.At).UTC().Format(apiTime), time.UnixMilli(oldest).UTC().Format(apiTime))
			}
			if dup {
				continue
			}
			fresh++
			if ev.TimeOK && ev.At > minAt && ev.At < w.End && minAt < w.End {
				f.sawDisorder(ev.At - minAt)
			}
			switch {
			case !ev.TimeOK:
				// Unreadable time: kept, so the run loop sends it to the dead
				// letters, once: no time says it belongs to a committed part.
				if ev.ID != "" {
					untimed = append(untimed, key)
				}
			case ev.At >= end:
				// Not ours, or in a part committed already: that part, which
				// lacks it, is fetched again.
				if ev.At < w.End {
					if err := retract(ev, oldest); err != nil {
						return err
					}
				}
				continue
			case ev.At < q.Start.UnixMilli():
				// Before start_time: the API should not have sent it. Skipped
				// without ending the walk, or the events after it would be
				// lost; a page of nothing else ends it below.
				before++
				continue
			case ev.At < w.Start:
				// A part cut off this window: its own walk has it. The walk
				// ends once past it by the tolerance, not before: an event
				// of ours may still come after it.
				if ev.At < w.Start-f.tolerance() {
					reachedStart = true
				}
				continue
			default:
				minAt = min(minAt, ev.At)
				seen[key] = struct{}{}
				walked++
				if err := hold(ev); err != nil {
					return err
				}
				continue
			}
			seen[key] = struct{}{}
			walked++
			if err := add(ev); err != nil {
				return err
			}
		}
		if before > 0 && before == len(page.Events) {
			reachedStart = true // an API that ignores start_time: nothing more of ours
		}
		if reachedStart || !page.HasNext {
			if err := release(math.MinInt64); err != nil {
				return err
			}
			if err := commit(w.Start); err != nil {
				return err
			}
			cover(w.Start)
			return nil
		}
		cover(max(minAt, w.Start))
		if _, again := cursors[page.Next]; again {
			return fmt.Errorf("fetch %s: the API repeated the pagination cursor %q; stopping rather than looping", w, page.Next)
		}
		cursors[page.Next] = struct{}{}
		if fresh == 0 {
			if emptyPages++; emptyPages > maxEmptyPages {
				return fmt.Errorf("fetch %s: %d pages in a row that say has_next but are empty or repeat events already read; stopping rather than looping", w, emptyPages)
			}
		} else {
			emptyPages = 0
		}
		if minAt < end {
			// A checkpoint: commit the part walked, [c, end), and go on
			// into a new file with the same cursor.
			full := written >= f.cfg.MaxWindowEvents || bytes >= f.cfg.MaxWindowBytes
			if c, ok := cut(); ok && (full || time.Since(opened) >= f.cfg.CheckpointEvery) {
				if err := commit(c); err != nil {
					return err
				}
				end, written, bytes, opened, fileMin = c, 0, 0, time.Now(), math.MaxInt64
				if wr, err = f.cfg.Open(Window{w.Stream, w.Start, end}); err != nil {
					return err
				}
				// Of the events with a time, only the held-back ones can
				// come again (a page that repeats the last events of the
				// one before); the others fall in the part committed.
				clear(seen)
				for _, ev := range held[head:] {
					seen[seenKey{ev.ID, maphash.Bytes(seed, ev.Raw)}] = struct{}{}
				}
				for _, k := range untimed {
					seen[k] = struct{}{}
				}
			}
			density := float64(walked) / float64(max(w.End-minAt, 1))
			var split []Window
			if split, w.Start = f.progress(a, minAt, density); len(split) > 0 {
				for i := range split {
					split[i].Stream = w.Stream
				}
				f.queueSplit(split)
			}
		}
		cursor = page.Next
	}
}
