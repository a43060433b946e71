package extract

import (
	"context"
	"fmt"
	"sync"
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
// was finally covered (a window may be narrowed when the fetcher splits it),
// or Abort when the window is given up.
type WindowWriter interface {
	Add(ev Event) error
	Commit(done Window) error
	Abort()
}

// DefaultMaxWindowEvents bounds a window: the run loop holds one window's
// records in memory to sort them, and 5,000 of them are about 12 MB.
const DefaultMaxWindowEvents = 5000

// FetcherConfig configures a Fetcher.
type FetcherConfig struct {
	Client  *Client
	Workers int
	// MaxWindowEvents bounds the events of one window: past it, the window is
	// closed at a millisecond boundary and the rest queued as a new window.
	MaxWindowEvents int
	// Open starts a window; called from worker goroutines.
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
}

// Fetcher fetches windows with a fixed number of workers. While workers are
// idle it splits busy windows in two, so that one dense day still keeps every
// worker busy; windows the API rejects as too large are split too.
type Fetcher struct {
	cfg FetcherConfig

	mu     sync.Mutex
	cond   *sync.Cond
	queue  []Window
	active int
	closed bool
}

// NewFetcher returns a fetcher; windows are added with Add, and Run works
// until CloseInput was called and the queue is drained.
func NewFetcher(cfg FetcherConfig) *Fetcher {
	if cfg.Workers < 1 {
		cfg.Workers = 1
	}
	if cfg.MaxWindowEvents <= 0 {
		cfg.MaxWindowEvents = DefaultMaxWindowEvents
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
	for range f.cfg.Workers {
		g.Go(func() error {
			for {
				w, ok := f.next(ctx)
				if !ok {
					return ctx.Err()
				}
				err := f.fetch(ctx, w)
				if err == nil {
					// Only a window that is done may let its day be delivered.
					f.cfg.OnFinish(w)
				}
				f.finish(w)
				if err != nil {
					return err
				}
			}
		})
	}
	return g.Wait()
}

// next pops the oldest queued window, blocking while the queue is empty and
// more may come.
func (f *Fetcher) next(ctx context.Context) (Window, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for len(f.queue) == 0 {
		if ctx.Err() != nil || (f.closed && f.active == 0) {
			return Window{}, false
		}
		f.cond.Wait()
	}
	if ctx.Err() != nil {
		return Window{}, false
	}
	best := 0
	for i, w := range f.queue {
		if w.Start < f.queue[best].Start {
			best = i
		}
	}
	w := f.queue[best]
	f.queue = append(f.queue[:best], f.queue[best+1:]...)
	f.active++
	return w, true
}

func (f *Fetcher) finish(w Window) {
	f.mu.Lock()
	f.active--
	f.mu.Unlock()
	f.cond.Broadcast()
}

// idle reports whether a worker waits with nothing to do.
func (f *Fetcher) idle() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.queue) == 0 && f.active < f.cfg.Workers
}

// maxEmptyPages bounds a run of empty pages that still say has_next.
const maxEmptyPages = 20

// fetch walks one window's pages, newest first. It holds back the events of
// the oldest millisecond seen so far, so that the window can be closed at a
// millisecond boundary without splitting a group of events that share one.
func (f *Fetcher) fetch(ctx context.Context, w Window) error {
	wr, err := f.cfg.Open(w)
	if err != nil {
		return err
	}
	committed := false
	defer func() {
		if !committed {
			wr.Abort()
		}
	}()
	q := Query{Start: time.UnixMilli(w.Start), End: time.UnixMilli(w.End - 1), EventKey: w.Stream}
	var (
		cursor     string
		cursors    = map[string]struct{}{}
		seen       = map[string]struct{}{}
		pending    []Event
		minAt      = w.End
		written    int
		emptyPages int
		walked     = w.End // pages walk from End down; [walked, End) is covered
	)
	cover := func(to int64) {
		if to < walked {
			f.cfg.OnCovered(w, walked-to)
			walked = to
		}
	}
	add := func(ev Event) error {
		written++
		return wr.Add(ev)
	}
	flush := func() error {
		for _, ev := range pending {
			if err := add(ev); err != nil {
				return err
			}
		}
		pending = pending[:0]
		return nil
	}
	for {
		page, err := f.cfg.Client.Page(ctx, q, cursor)
		if err != nil {
			if IsRangeTooLarge(err) && cursor == "" && w.End-w.Start >= 2 {
				mid := w.Start + (w.End-w.Start)/2
				f.Add(Window{w.Stream, w.Start, mid}, Window{w.Stream, mid, w.End})
				return nil
			}
			return fmt.Errorf("fetch %s: %w", w, err)
		}
		reachedStart := false
		for _, ev := range page.Events {
			if _, dup := seen[ev.ID]; dup && ev.ID != "" {
				continue // events without a usable id are never merged
			}
			switch {
			case !ev.TimeOK:
				// Unreadable time: kept, so the run loop sends it to the dead letters.
			case ev.At >= w.End:
				continue // not ours; the window that owns it fetches it
			case ev.At < w.Start:
				reachedStart = true
				continue
			case ev.At < minAt:
				if err := flush(); err != nil {
					return err
				}
				minAt = ev.At
				pending = append(pending, ev)
				seen[ev.ID] = struct{}{}
				continue
			case ev.At == minAt:
				pending = append(pending, ev)
				seen[ev.ID] = struct{}{}
				continue
			}
			seen[ev.ID] = struct{}{}
			if err := add(ev); err != nil {
				return err
			}
		}
		if reachedStart || !page.HasNext {
			if err := flush(); err != nil {
				return err
			}
			committed = true
			if err := wr.Commit(w); err != nil {
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
		if len(page.Events) == 0 {
			if emptyPages++; emptyPages > maxEmptyPages {
				return fmt.Errorf("fetch %s: %d empty pages in a row that say has_next", w, emptyPages)
			}
		} else {
			emptyPages = 0
		}
		if minAt < w.End {
			// Close a long window at the held-back millisecond; the rest is a new window.
			if written >= f.cfg.MaxWindowEvents && minAt > w.Start {
				f.Add(Window{w.Stream, w.Start, minAt + 1})
				committed = true
				return wr.Commit(Window{w.Stream, minAt + 1, w.End})
			}
			// Hand the older half of what remains to an idle worker.
			if minAt-w.Start >= 2 && f.idle() {
				mid := w.Start + (minAt-w.Start)/2
				f.Add(Window{w.Stream, w.Start, mid})
				w.Start = mid
			}
		}
		cursor = page.Next
	}
}
