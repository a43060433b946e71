package extract_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/extract"
	"github.com/pachca-export/pachca-export/simulator"
)

// memSpool keeps committed windows in memory.
type memSpool struct {
	mu        sync.Mutex
	done      []extract.Window
	events    map[string]int64 // id -> created_at ms
	dupes     int
	aborted   int
	retracted []extract.Window
}

// retract removes a committed window and its events.
func (s *memSpool) retract(w extract.Window) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.Index(s.done, w)
	if i < 0 {
		return fmt.Errorf("retract %v: not committed", w)
	}
	s.done = slices.Delete(s.done, i, i+1)
	s.retracted = append(s.retracted, w)
	maps.DeleteFunc(s.events, func(_ string, at int64) bool { return at >= w.Start && at < w.End })
	return nil
}

type memWindow struct {
	s   *memSpool
	evs []extract.Event
}

func (w *memWindow) Add(ev extract.Event) error { w.evs = append(w.evs, ev); return nil }
func (w *memWindow) Abort()                     { w.s.mu.Lock(); w.s.aborted++; w.s.mu.Unlock() }
func (w *memWindow) Commit(done extract.Window) error {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	w.s.done = append(w.s.done, done)
	for _, ev := range w.evs {
		if ev.At < done.Start || ev.At >= done.End {
			return fmt.Errorf("event %s at %d outside its window %v", ev.ID, ev.At, done)
		}
		if _, ok := w.s.events[ev.ID]; ok {
			w.s.dupes++
		}
		w.s.events[ev.ID] = ev.At
	}
	return nil
}

func fetchAll(t *testing.T, base string, workers, maxEvents int, ws ...extract.Window) (*memSpool, error) {
	t.Helper()
	return fetchAt(t, base, 0, workers, maxEvents, ws...)
}

// fetchAt fetches at rps requests per second (0: unlimited).
func fetchAt(t *testing.T, base string, rps float64, workers, maxEvents int, ws ...extract.Window) (*memSpool, error) {
	t.Helper()
	s := &memSpool{events: map[string]int64{}}
	c := extract.NewClient(extract.ClientConfig{BaseURL: base, Token: "sim-token", RPS: rps, MaxRetries: 3, Timeout: 5 * time.Second})
	f := extract.NewFetcher(extract.FetcherConfig{
		Client: c, Workers: workers, MaxWindowEvents: maxEvents,
		Open: func(w extract.Window) (extract.WindowWriter, error) { return &memWindow{s: s}, nil },
	})
	f.Add(ws...)
	f.CloseInput()
	return s, f.Run(t.Context())
}

func sim(t *testing.T, mutate func(*simulator.Config)) (*simulator.Server, string) {
	sc := simulator.DefaultConfig()
	sc.Events = 6000
	sc.From = time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	sc.To = sc.From.Add(48 * time.Hour)
	if mutate != nil {
		mutate(&sc)
	}
	s, err := simulator.New(sc)
	require.NoError(t, err)
	base, err := s.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s, base
}

// requireExactlyOnce: got holds every event of s once, and its committed
// windows tile a period of span exactly.
func requireExactlyOnce(t *testing.T, s *simulator.Server, got *memSpool, span time.Duration) {
	t.Helper()
	require.Zero(t, got.dupes)
	want := map[string]int64{}
	for _, ev := range s.Events() {
		want[ev.ID] = ev.CreatedAt.UnixMilli()
	}
	require.Equal(t, want, got.events)
	var covered int64
	for _, w := range got.done {
		covered += w.End - w.Start
	}
	require.Equal(t, span.Milliseconds(), covered)
}

// TestFetchExactlyOnce covers the ways a window is cut: split on
// invalid_date_range, split while fewer windows are in flight than the
// workers (no rate limit), and checkpoints committed at a millisecond
// boundary past MaxWindowEvents. Each way must deliver every event once.
func TestFetchExactlyOnce(t *testing.T) {
	cases := []struct {
		name      string
		maxRange  time.Duration
		workers   int
		maxEvents int
	}{
		{name: "one worker, one window", workers: 1, maxEvents: 1 << 30},
		{name: "workers split windows", workers: 8, maxEvents: 1 << 30},
		{name: "range too large", maxRange: 3 * time.Hour, workers: 4, maxEvents: 1 << 30},
		{name: "checkpoints every 120 events", workers: 2, maxEvents: 120},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, base := sim(t, func(c *simulator.Config) { c.MaxRange = tc.maxRange })
			from, to := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 10, 3, 0, 0, 0, 0, time.UTC)
			days := []extract.Window{
				{Start: from.UnixMilli(), End: from.Add(24 * time.Hour).UnixMilli()},
				{Start: from.Add(24 * time.Hour).UnixMilli(), End: to.UnixMilli()},
			}
			got, err := fetchAll(t, base, tc.workers, tc.maxEvents, days...)
			require.NoError(t, err)
			requireExactlyOnce(t, s, got, to.Sub(from))
			if tc.workers > 1 {
				require.Greater(t, len(got.done), 2, "windows were split")
			}
		})
	}
}

// TestFetchDisorder: an API whose pages are newest first only roughly
// (ordered by its log, where an event's created_at lies up to Disorder
// before its place). Within DisorderSpan the checkpoints and cut windows
// keep back enough; past it, the fetcher widens the span to what it saw,
// and a committed part that missed an event is retracted and fetched
// again (TestFetchMisbehavingPagination shows that). Every event once, the windows tiling the
// period (was: the walk failed "not newest first", and the next run, which
// found the part committed, lost the event).
func TestFetchDisorder(t *testing.T) {
	for _, tc := range []struct {
		name     string
		disorder time.Duration
		past     bool // and parts may be fetched again, whether they are depends on the walks' timing
	}{
		{name: "within the span", disorder: 500 * time.Millisecond},
		{name: "past the span", disorder: time.Minute, past: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, base := sim(t, func(c *simulator.Config) { c.Disorder, c.Micros = tc.disorder, true })
			got := &memSpool{events: map[string]int64{}}
			c := extract.NewClient(extract.ClientConfig{BaseURL: base, Token: "sim-token", MaxRetries: 3, Timeout: 5 * time.Second})
			f := extract.NewFetcher(extract.FetcherConfig{
				Client: c, Workers: 4, MaxWindowEvents: 50,
				Open:    func(w extract.Window) (extract.WindowWriter, error) { return &memWindow{s: got}, nil },
				Retract: got.retract,
			})
			from := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
			f.Add(extract.Window{Start: from.UnixMilli(), End: from.Add(24 * time.Hour).UnixMilli()},
				extract.Window{Start: from.Add(24 * time.Hour).UnixMilli(), End: from.Add(48 * time.Hour).UnixMilli()})
			f.CloseInput()
			require.NoError(t, f.Run(t.Context()))
			requireExactlyOnce(t, s, got, 48*time.Hour)
			require.Greater(t, len(got.done), 40, "checkpoints were committed")
			if !tc.past {
				require.Empty(t, got.retracted)
			}
		})
	}
}

// TestCheckpointsCostNoRequest: committing the walked part of a window after
// every page, and walking on with the same cursor into a new file, sends
// exactly the requests of one walk without checkpoints. Closing the window
// instead and fetching the rest as a new one would fetch the held-back
// events of each cut again: a page more every few dozen cuts.
func TestCheckpointsCostNoRequest(t *testing.T) {
	requests := map[int]int{}
	for _, maxEvents := range []int{1 << 30, 50} {
		s, base := sim(t, nil)
		got, err := fetchAll(t, base, 1, maxEvents, day)
		require.NoError(t, err)
		requests[maxEvents] = s.Stats().Requests
		if maxEvents == 50 {
			require.Greater(t, len(got.done), 40, "checkpoints were committed")
			// Newest first, each file the part just below the one before.
			for i := 1; i < len(got.done); i++ {
				require.Equal(t, got.done[i-1].Start, got.done[i].End)
			}
			require.Equal(t, day.End, got.done[0].End)
			require.Equal(t, day.Start, got.done[len(got.done)-1].Start)
		}
	}
	require.Equal(t, requests[1<<30], requests[50])
}

// TestTightLimitWalksOneWindow: at 5 requests per second, even at 150 ms a
// request (a loaded machine), under one request is under way at once: one
// window in flight is enough, and eight workers walk six hours as one, no
// request more than one worker would send. Without a limit they split it.
func TestTightLimitWalksOneWindow(t *testing.T) {
	hours := extract.Window{Start: day.Start, End: day.Start + (6 * time.Hour).Milliseconds()}
	walk := func(rps float64, workers int) int {
		t.Helper()
		s, base := sim(t, func(c *simulator.Config) { c.Latency = 20 * time.Millisecond })
		got, err := fetchAt(t, base, rps, workers, 1<<30, hours)
		require.NoError(t, err)
		require.Zero(t, got.dupes)
		want := eventsIn(s, hours)
		require.Equal(t, want, len(got.events))
		require.Greater(t, want, 10*extract.PageSize)
		return s.Stats().Requests
	}
	one := walk(5, 1)
	require.Equal(t, one, walk(5, 8), "never split")
	unlimited := walk(0, 8)
	require.Greater(t, unlimited, one, "split without a limit")
}

// TestIdleWorkersSplitAtOnce: when several workers fall idle while one
// window is left (the start of a one-day run, the end of any run), that
// window is cut into as many equal parts at its next page, not halved once
// per page: halving needs a page's latency per doubling, with the rate
// unused meanwhile.
func TestIdleWorkersSplitAtOnce(t *testing.T) {
	s, base := sim(t, func(c *simulator.Config) { c.Latency = 100 * time.Millisecond })
	var (
		mu     sync.Mutex
		queued []extract.Window
	)
	spool := &memSpool{events: map[string]int64{}}
	c := extract.NewClient(extract.ClientConfig{BaseURL: base, Token: "sim-token", MaxRetries: 3, Timeout: 5 * time.Second})
	f := extract.NewFetcher(extract.FetcherConfig{
		Client: c, Workers: 8, MaxWindowEvents: 1 << 30, CheckpointEvery: time.Hour,
		Open: func(w extract.Window) (extract.WindowWriter, error) { return &memWindow{s: spool}, nil },
		OnQueue: func(w extract.Window) {
			mu.Lock()
			queued = append(queued, w)
			mu.Unlock()
		},
	})
	f.Add(day)
	f.CloseInput()
	require.NoError(t, f.Run(t.Context()))
	require.Zero(t, spool.dupes)
	require.Equal(t, eventsIn(s, day), len(spool.events))

	// The first cut: the parts queued after the day, each as long as the
	// first of them.
	require.Greater(t, len(queued), 2)
	first := queued[1]
	same := 0
	for _, w := range queued[1:min(len(queued), 8)] {
		if d := (w.End - w.Start) - (first.End - first.Start); d >= -1 && d <= 1 {
			same++
		}
	}
	require.GreaterOrEqual(t, same, 4, "the first cut made several equal parts: %v", queued)
}

// eventsIn counts the simulator's events in w.
func eventsIn(s *simulator.Server, w extract.Window) int {
	n := 0
	for _, ev := range s.Events() {
		if ms := ev.CreatedAt.UnixMilli(); ms >= w.Start && ms < w.End {
			n++
		}
	}
	return n
}

// page renders a page of events with the given cursor. Each id, a letter,
// has its own time (a at 10:00:59, b a second earlier, ...), so that a page
// repeating an event repeats its bytes.
func page(next string, hasNext bool, ids ...string) string {
	s := `{"data":[`
	for i, id := range ids {
		if i > 0 {
			s += ","
		}
		s += fmt.Sprintf(`{"id":%q,"created_at":"2026-10-01T10:00:%02d.000Z","event_key":"user_login"}`, id, 59-int(id[0]-'a'))
	}
	return s + fmt.Sprintf(`],"meta":{"paginate":{"next_page":%q,"has_next":%t}}}`, next, hasNext)
}

func serve(t *testing.T, pages map[string]string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := pages[r.URL.Query().Get("cursor")]
		if !ok {
			body = page("", false)
		}
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// lastSeconds holds the events a to e of page.
var lastSeconds = extract.Window{Start: time.Date(2026, 10, 1, 10, 0, 55, 0, time.UTC).UnixMilli(), End: time.Date(2026, 10, 1, 10, 1, 0, 0, time.UTC).UnixMilli()}

var day = extract.Window{Start: time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC).UnixMilli(), End: time.Date(2026, 10, 2, 0, 0, 0, 0, time.UTC).UnixMilli()}

func TestFetchMisbehavingPagination(t *testing.T) {
	t.Run("repeated cursor", func(t *testing.T) {
		base := serve(t, map[string]string{"": page("c1", true, "a"), "c1": page("c1", true, "b")})
		_, err := fetchAll(t, base, 1, 1000, day)
		require.ErrorContains(t, err, "repeated the pagination cursor")
	})
	t.Run("endless empty pages", func(t *testing.T) {
		pages := map[string]string{"": page("c0", true)}
		for i := range 30 {
			pages[fmt.Sprintf("c%d", i)] = page(fmt.Sprintf("c%d", i+1), true)
		}
		_, err := fetchAll(t, serve(t, pages), 1, 1000, day)
		require.ErrorContains(t, err, "pages in a row that say has_next but are empty")
	})
	t.Run("the last event again under new cursors", func(t *testing.T) {
		// Each page repeats the oldest event read, under a cursor not seen
		// before: skipped as a repeat, it ended no run (was: a loop, each
		// page neither empty nor of a repeated cursor).
		pages := map[string]string{"": page("c0", true, "a", "b")}
		for i := range 30 {
			pages[fmt.Sprintf("c%d", i)] = page(fmt.Sprintf("c%d", i+1), true, "b")
		}
		_, err := fetchAll(t, serve(t, pages), 1, 1000, day)
		require.ErrorContains(t, err, "repeat events already read; stopping rather than looping")
	})
	t.Run("same event on two pages", func(t *testing.T) {
		b := serve(t, map[string]string{"": page("c1", true, "a", "b"), "c1": page("c2", true, "b", "c"), "c2": page("", false, "c", "d")})
		got, err := fetchAll(t, b, 1, 1000, day)
		require.NoError(t, err)
		require.Len(t, got.events, 4)
		require.Zero(t, got.dupes)
	})
	t.Run("same id, different events", func(t *testing.T) {
		// b on the first page is repeated, byte for byte, on the second: one
		// event. The second page's other b is another event with b's id:
		// passed on, for the run loop to dead-letter, never dropped here.
		other := `{"id":"b","created_at":"2026-10-01T10:00:57.000Z","event_key":"user_logout"}`
		second := strings.Replace(page("", false, "b", "c"), `"}],`, `"},`+other+`],`, 1)
		s := &countSpool{ids: map[string]int{}}
		c := extract.NewClient(extract.ClientConfig{BaseURL: serve(t, map[string]string{"": page("c1", true, "a", "b"), "c1": second}), Token: "t", MaxRetries: 1, Timeout: 5 * time.Second})
		f := extract.NewFetcher(extract.FetcherConfig{
			Client: c, Workers: 1,
			Open: func(extract.Window) (extract.WindowWriter, error) { return &countWindow{s: s}, nil },
		})
		f.Add(day)
		f.CloseInput()
		require.NoError(t, f.Run(t.Context()))
		require.Equal(t, map[string]int{"a": 1, "b": 2, "c": 1}, s.ids)
	})
	// Pages that are not newest first, one after the other: b is newer
	// than c on the page before it, by a second, within DisorderSpan. With
	// a checkpoint after every page, the part committed ended at a, above
	// b (was: at c, and b, in the part committed already, failed the walk;
	// the next run found that part done, and lost b).
	t.Run("pages not newest first, within the span", func(t *testing.T) {
		b := serve(t, map[string]string{"": page("c1", true, "a", "c"), "c1": page("c2", true, "b", "d"), "c2": page("", false, "e")})
		got, err := fetchAll(t, b, 1, 1, day)
		require.NoError(t, err)
		require.Equal(t, []string{"a", "b", "c", "d", "e"}, slices.Sorted(maps.Keys(got.events)))
		require.Zero(t, got.dupes)
	})
	// b comes 3 s after e: past the span, in the part committed after the
	// first page. Without Retract, the walk fails rather than lose it.
	pastSpan := map[string]string{"": page("c1", true, "a", "e"), "c1": page("c2", true, "b", "f"), "c2": page("", false, "g")}
	t.Run("pages not newest first, past the span", func(t *testing.T) {
		got, err := fetchAll(t, serve(t, pastSpan), 1, 1, day)
		require.ErrorContains(t, err, `the API's pages are not newest first: event "b" at 2026-10-01T10:00:58.000Z came after events down to 2026-10-01T10:00:55.000Z`)
		require.NotContains(t, got.events, "g")
	})
	// With Retract, the part committed without b, [10:00:57.001, end), is
	// retracted and fetched again (this server ignores the range: the walk
	// of the part reads the pages from the top, and ends at has_next).
	t.Run("pages not newest first, past the span, retracted", func(t *testing.T) {
		got := &memSpool{events: map[string]int64{}}
		c := extract.NewClient(extract.ClientConfig{BaseURL: serve(t, pastSpan), Token: "t", MaxRetries: 1, Timeout: 5 * time.Second})
		f := extract.NewFetcher(extract.FetcherConfig{
			Client: c, Workers: 1, MaxWindowEvents: 1,
			Open:    func(extract.Window) (extract.WindowWriter, error) { return &memWindow{s: got}, nil },
			Retract: got.retract,
		})
		f.Add(day)
		f.CloseInput()
		require.NoError(t, f.Run(t.Context()))
		require.Equal(t, []string{"a", "b", "e", "f", "g"}, slices.Sorted(maps.Keys(got.events)))
		require.Zero(t, got.dupes)
		part := extract.Window{Start: time.Date(2026, 10, 1, 10, 0, 57, 1e6, time.UTC).UnixMilli(), End: day.End}
		require.Equal(t, []extract.Window{part}, got.retracted)
		require.Contains(t, got.done, part, "fetched again")
	})
	// The same, with no checkpoint in between: b falls in the part not
	// committed yet, and is kept.
	t.Run("pages not newest first within a part", func(t *testing.T) {
		b := serve(t, map[string]string{"": page("c1", true, "a", "e"), "c1": page("c2", true, "b", "f"), "c2": page("", false, "g")})
		got, err := fetchAll(t, b, 1, 1000, day)
		require.NoError(t, err)
		require.Equal(t, []string{"a", "b", "e", "f", "g"}, slices.Sorted(maps.Keys(got.events)))
	})
	// The second page served again in place of the third: its events were
	// all skipped as repeats, and the third page's never seen.
	t.Run("a page served twice", func(t *testing.T) {
		b := serve(t, map[string]string{"": page("c1", true, "a", "b"), "c1": page("c2", true, "c", "d"), "c2": page("c3", true, "c", "d"), "c3": page("", false, "g")})
		_, err := fetchAll(t, b, 1, 1000, day)
		require.ErrorContains(t, err, "not newest first")
	})
	// An event before start_time (z, at 10:00:34) amid the window's: the
	// walk goes on past it, where it stopped and lost c and d.
	t.Run("an event before start_time", func(t *testing.T) {
		b := serve(t, map[string]string{"": page("c1", true, "a", "b", "z"), "c1": page("", false, "c", "d")})
		got, err := fetchAll(t, b, 1, 1000, lastSeconds)
		require.NoError(t, err)
		require.Equal(t, []string{"a", "b", "c", "d"}, slices.Sorted(maps.Keys(got.events)))
	})
	// An API that ignores start_time: the walk ends at the first page with
	// nothing of the window (c3, which loops, is never asked for).
	t.Run("start_time ignored", func(t *testing.T) {
		b := serve(t, map[string]string{"": page("c1", true, "a", "b"), "c1": page("c2", true, "c", "y"), "c2": page("c3", true, "x", "w"), "c3": page("c3", true, "v")})
		got, err := fetchAll(t, b, 1, 1000, lastSeconds)
		require.NoError(t, err)
		require.Equal(t, []string{"a", "b", "c"}, slices.Sorted(maps.Keys(got.events)))
	})
	t.Run("empty page then more", func(t *testing.T) {
		b := serve(t, map[string]string{"": page("c1", true, "a"), "c1": page("c2", true), "c2": page("", false, "b")})
		got, err := fetchAll(t, b, 1, 1000, day)
		require.NoError(t, err)
		require.Len(t, got.events, 2)
	})
}

// countSpool counts every event committed, by id, whatever its time: an
// event whose time cannot be read goes on to the run loop's dead letters,
// and must reach it once too.
type countSpool struct {
	mu  sync.Mutex
	ids map[string]int
}

type countWindow struct {
	s   *countSpool
	evs []extract.Event
}

func (w *countWindow) Add(ev extract.Event) error { w.evs = append(w.evs, ev); return nil }
func (w *countWindow) Abort()                     {}
func (w *countWindow) Commit(extract.Window) error {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	for _, ev := range w.evs {
		w.s.ids[ev.ID]++
	}
	return nil
}

// TestRepeatedEventAfterCheckpoint: a page that repeats the last event of
// the one before, after a checkpoint committed that page, adds nothing,
// whatever form the event's created_at takes: one the transform reads
// (the extractor must read it alike, or the repeat is taken for a new
// event) or one nobody reads (a dead letter, to be sent once).
func TestRepeatedEventAfterCheckpoint(t *testing.T) {
	cases := []struct{ name, last string }{
		{name: "RFC 3339", last: "2026-10-01T10:00:00.000Z"},
		{name: "space separator", last: "2026-10-01 10:00:00.000Z"},
		{name: "no zone", last: "2026-10-01T10:00:00.000"},
		{name: "unreadable", last: "yesterday"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Three pages of three events, newest first; the last of each
			// page is the oldest, and the next page starts with it again.
			ev := func(id, at string) string {
				return fmt.Sprintf(`{"id":%q,"created_at":%q,"event_key":"user_login"}`, id, at)
			}
			last := func(p int) string { // at 09:00, 08:00, 07:00 in tc's form
				return ev(fmt.Sprintf("p%d-last", p), strings.Replace(tc.last, "10:00", fmt.Sprintf("%02d:00", 9-p), 1))
			}
			body := func(next string, evs ...string) string {
				return `{"data":[` + strings.Join(evs, ",") + fmt.Sprintf(`],"meta":{"paginate":{"next_page":%q,"has_next":%t}}}`, next, next != "")
			}
			pages := map[string]string{
				"":   body("c1", ev("p0-a", "2026-10-01T09:50:00.000Z"), ev("p0-b", "2026-10-01T09:40:00.000Z"), last(0)),
				"c1": body("c2", last(0), ev("p1-a", "2026-10-01T08:30:00.000Z"), last(1)),
				"c2": body("", last(1), ev("p2-a", "2026-10-01T07:20:00.000Z"), last(2)),
			}
			s := &countSpool{ids: map[string]int{}}
			c := extract.NewClient(extract.ClientConfig{BaseURL: serve(t, pages), Token: "t", MaxRetries: 1, Timeout: 5 * time.Second})
			f := extract.NewFetcher(extract.FetcherConfig{
				Client: c, Workers: 1, MaxWindowEvents: 1, // a checkpoint after every page
				Open: func(extract.Window) (extract.WindowWriter, error) { return &countWindow{s: s}, nil },
			})
			f.Add(day)
			f.CloseInput()
			require.NoError(t, f.Run(t.Context()))
			require.Equal(t, map[string]int{"p0-a": 1, "p0-b": 1, "p0-last": 1, "p1-a": 1, "p1-last": 1, "p2-a": 1, "p2-last": 1}, s.ids)
		})
	}
}

// TestWindowsMeetAtTheMicrosecond: an API that keeps microseconds compares
// start_time and end_time with them, and writes created_at to the
// millisecond. Day windows still take every event once, the one in the
// last millisecond of a day too (was: end_time 23:59:59.999 left out an
// event at 23:59:59.999500, and the next day's start_time 00:00:00.000 too:
// it was exported by no window, without a word).
func TestWindowsMeetAtTheMicrosecond(t *testing.T) {
	d1 := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	d2, d3 := d1.AddDate(0, 0, 1), d1.AddDate(0, 0, 2)
	times := []time.Time{d1.Add(12 * time.Hour), d2.Add(-500 * time.Microsecond), d2, d2.Add(700 * time.Microsecond), d3.Add(-time.Microsecond)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start, err1 := time.Parse(time.RFC3339Nano, r.URL.Query().Get("start_time"))
		end, err2 := time.Parse(time.RFC3339Nano, r.URL.Query().Get("end_time"))
		if err1 != nil || err2 != nil {
			http.Error(w, "bad time", http.StatusUnprocessableEntity)
			return
		}
		var evs []string
		for i := len(times) - 1; i >= 0; i-- { // newest first
			if at := times[i]; !at.Before(start) && !at.After(end) {
				evs = append(evs, fmt.Sprintf(`{"id":"e%d","created_at":%q,"event_key":"user_login"}`, i,
					at.Truncate(time.Millisecond).Format("2006-01-02T15:04:05.000Z")))
			}
		}
		fmt.Fprintf(w, `{"data":[%s],"meta":{"paginate":{"next_page":"","has_next":false}}}`, strings.Join(evs, ","))
	}))
	t.Cleanup(srv.Close)
	got, err := fetchAll(t, srv.URL, 2, 1<<30,
		extract.Window{Start: d1.UnixMilli(), End: d2.UnixMilli()}, extract.Window{Start: d2.UnixMilli(), End: d3.UnixMilli()})
	require.NoError(t, err)
	require.Zero(t, got.dupes)
	want := map[string]int64{}
	for i, at := range times {
		want[fmt.Sprintf("e%d", i)] = at.Truncate(time.Millisecond).UnixMilli()
	}
	require.Equal(t, want, got.events)
}

// TestWindowFilesBoundedByBytes: events of tens of kilobytes close a window
// file once it holds MaxWindowBytes of them (after the page that passed
// it), not only MaxWindowEvents: the run loop reads a file whole to sort it
// (was: a thousand events of a megabyte each, a gigabyte, in one file).
// Every event still comes once, and the files tile the period.
func TestWindowFilesBoundedByBytes(t *testing.T) {
	const maxBytes = 1 << 20
	s, base := sim(t, func(c *simulator.Config) {
		// No millisecond shared by a page of events, which a file cannot
		// be closed within.
		c.Events, c.BigEvents, c.BigDetails, c.TieGroups = 600, 600, 40<<10, false
	})
	from := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	day := extract.Window{Start: from.UnixMilli(), End: from.Add(48 * time.Hour).UnixMilli()}
	spool := &sizedSpool{}
	c := extract.NewClient(extract.ClientConfig{BaseURL: base, Token: "sim-token", MaxRetries: 3, Timeout: 5 * time.Second})
	f := extract.NewFetcher(extract.FetcherConfig{
		Client: c, Workers: 1, MaxWindowEvents: 1 << 30, MaxWindowBytes: maxBytes, CheckpointEvery: time.Hour,
		Open: func(w extract.Window) (extract.WindowWriter, error) { return &sizedWindow{s: spool}, nil },
	})
	f.Add(day)
	f.CloseInput()
	require.NoError(t, f.Run(t.Context()))
	require.Len(t, spool.ids, len(s.Events()), "every event, once")
	require.Greater(t, len(spool.files), 10, "files closed by their bytes")
	var covered int64
	for i, fl := range spool.files {
		covered += fl.done.End - fl.done.Start
		// A file closes after the page that took it past the bound.
		require.Less(t, fl.bytes, maxBytes+extract.PageSize*(41<<10)+8<<10, "file %d", i)
	}
	require.Equal(t, day.End-day.Start, covered)
}

type sizedSpool struct {
	mu    sync.Mutex
	ids   map[string]bool
	files []sizedFile
}

type sizedFile struct {
	done  extract.Window
	bytes int
}

type sizedWindow struct {
	s     *sizedSpool
	ids   []string
	bytes int
}

func (w *sizedWindow) Add(ev extract.Event) error {
	w.ids, w.bytes = append(w.ids, ev.ID), w.bytes+len(ev.Raw)
	return nil
}
func (w *sizedWindow) Abort() {}
func (w *sizedWindow) Commit(done extract.Window) error {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	if w.s.ids == nil {
		w.s.ids = map[string]bool{}
	}
	for _, id := range w.ids {
		if w.s.ids[id] {
			return fmt.Errorf("event %s twice", id)
		}
		w.s.ids[id] = true
	}
	w.s.files = append(w.s.files, sizedFile{done, w.bytes})
	return nil
}

// TestStopKeepsTheWalkedPart: a fetch stopped part way (SIGTERM cancels the
// run's context) commits the part of each window walked since its last
// checkpoint, as a checkpoint would, so that the next run does not fetch it
// again (was: the part was aborted, as on SIGKILL: up to a second of
// fetching per window lost on every graceful stop).
func TestStopKeepsTheWalkedPart(t *testing.T) {
	s, base := sim(t, nil)
	got := &memSpool{events: map[string]int64{}}
	c := extract.NewClient(extract.ClientConfig{BaseURL: base, Token: "sim-token", RPS: 50, MaxRetries: 3, Timeout: 5 * time.Second})
	f := extract.NewFetcher(extract.FetcherConfig{
		Client: c, Workers: 1, MaxWindowEvents: 1 << 30, CheckpointEvery: time.Hour, // no checkpoint of its own
		Open: func(w extract.Window) (extract.WindowWriter, error) { return &memWindow{s: got}, nil },
	})
	f.Add(day)
	f.CloseInput()
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		for s.Stats().Requests < 10 && ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
	}()
	require.ErrorIs(t, f.Run(ctx), context.Canceled)
	require.Zero(t, got.aborted)
	require.Len(t, got.done, 1)
	kept := got.done[0]
	require.Equal(t, day.End, kept.End)
	require.Greater(t, kept.Start, day.Start)
	want := map[string]int64{}
	for _, ev := range s.Events() {
		if at := ev.CreatedAt.UnixMilli(); at >= kept.Start && at < kept.End {
			want[ev.ID] = at
		}
	}
	require.GreaterOrEqual(t, len(want), 8*extract.PageSize, "the part of some ten pages")
	require.Equal(t, want, got.events)
}

// TestHeldRequestDoesNotStopTheFetch: where one window in flight is enough
// (an API that answers in milliseconds), a request the API holds (until
// source.timeout) leaves its share to the next windows once it has waited
// far longer than a page takes (was: no request at all until it timed
// out: 30 s with the default source.timeout).
func TestHeldRequestDoesNotStopTheFetch(t *testing.T) {
	from := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	s, _ := sim(t, func(c *simulator.Config) {
		c.Events, c.From, c.To = 2000, from, from.AddDate(0, 0, 10)
	})
	var mu sync.Mutex
	held, holding, released := false, false, false
	release := make(chan struct{})
	later := from.AddDate(0, 0, 3)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		start, _ := time.Parse(time.RFC3339, q.Get("start_time"))
		mu.Lock()
		switch {
		case !held && start.Equal(from) && q.Get("cursor") == "":
			held, holding = true, true
			mu.Unlock()
			select {
			case <-release:
			case <-r.Context().Done(): // the client's timeout
				mu.Lock()
				holding = false
				mu.Unlock()
				return
			}
			s.Handler().ServeHTTP(w, r)
			return
		case holding && !released && !start.Before(later):
			released = true
			close(release)
		}
		mu.Unlock()
		s.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(api.Close)
	var ws []extract.Window
	for d := range 10 {
		ws = append(ws, extract.Window{Start: from.AddDate(0, 0, d).UnixMilli(), End: from.AddDate(0, 0, d+1).UnixMilli()})
	}
	got, err := fetchAt(t, api.URL+simulator.BasePath, 200, 2, 0, ws...)
	require.NoError(t, err)
	mu.Lock()
	defer mu.Unlock()
	require.True(t, held)
	require.True(t, released, "no window three days later was walked while the first one's request was held")
	require.Len(t, got.events, 2000)
	require.Zero(t, got.dupes)
}

// TestLongRetryAfterSplitsNothing: a Retry-After longer than the time
// after which a window counts as held up (stuckAfter) pauses every
// window alike; none of them is held up, so no window is split meanwhile,
// and a tight limit still walks one (was: after 3 s of a 5 s pause every
// window counted as held up, and the fetcher split them, each part
// costing a partial page).
func TestLongRetryAfterSplitsNothing(t *testing.T) {
	hours := extract.Window{Start: day.Start, End: day.Start + (6 * time.Hour).Milliseconds()}
	walk := func(pause bool) int {
		t.Helper()
		s, _ := sim(t, func(c *simulator.Config) { c.Latency = 20 * time.Millisecond })
		var n atomic.Int32
		api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if n.Add(1) == 3 && pause {
				w.Header().Set("Retry-After", "5")
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
			s.Handler().ServeHTTP(w, r)
		}))
		t.Cleanup(api.Close)
		got, err := fetchAt(t, api.URL+simulator.BasePath, 5, 8, 1<<30, hours)
		require.NoError(t, err)
		require.Zero(t, got.dupes)
		require.Equal(t, eventsIn(s, hours), len(got.events))
		return s.Stats().Requests
	}
	require.Equal(t, walk(false), walk(true), "the same pages, none split for the pause")
}
