package extract_test

import (
	"cmp"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/extract"
	"github.com/pachca-export/pachca-export/simulator"
)

// tieSim is a simulator whose events include one millisecond of group
// events (more than extract.DefaultMaxWindowEvents), and that millisecond.
func tieSim(t *testing.T, group int, faults bool) (*simulator.Server, string, int64) {
	t.Helper()
	s, base := sim(t, func(c *simulator.Config) {
		c.TieGroup = group
		if !faults {
			c.Faults = nil
		}
	})
	per := map[int64]int{}
	for _, ev := range s.Events() {
		per[ev.CreatedAt.UnixMilli()]++
	}
	var tie int64
	for ms, n := range per {
		if n >= group {
			tie = ms
		}
	}
	require.NotZero(t, tie, "no millisecond holds the group")
	return s, base, tie
}

// tieWindow records, for each event of the group's millisecond it is
// given, how many requests the API had answered by then.
type tieWindow struct {
	memWindow
	tie   int64
	api   *simulator.Server
	added *[]int // requests answered at each Add of a group event
}

func (w *tieWindow) Add(ev extract.Event) error {
	if ev.At == w.tie {
		*w.added = append(*w.added, w.api.Stats().Requests)
	}
	return w.memWindow.Add(ev)
}

// TestTieGroupGoesToTheFile: the events of one millisecond are held back
// (a window is cut only between milliseconds), but not all of them: past
// DefaultMaxWindowEvents they go to the window file as they come, and no
// checkpoint cuts the window until the millisecond ends (memWindow fails a
// commit that holds an event outside its window). Was: 100,000 events in
// one millisecond were all held, 35 MB of raw events.
func TestTieGroupGoesToTheFile(t *testing.T) {
	const group = 2500
	s, base, tie := tieSim(t, group, true)
	got := &memSpool{events: map[string]int64{}}
	var added []int
	c := extract.NewClient(extract.ClientConfig{BaseURL: base, Token: "sim-token", MaxRetries: 3, Timeout: 5 * time.Second})
	f := extract.NewFetcher(extract.FetcherConfig{
		// A checkpoint every DefaultMaxWindowEvents events written: when
		// the group goes to the file, as it does.
		Client: c, Workers: 1, CheckpointEvery: time.Hour,
		Open: func(extract.Window) (extract.WindowWriter, error) {
			return &tieWindow{memWindow: memWindow{s: got}, tie: tie, api: s, added: &added}, nil
		},
	})
	f.Add(extract.Window{Start: s.Events()[0].CreatedAt.UnixMilli(), End: time.Date(2026, 10, 3, 0, 0, 0, 0, time.UTC).UnixMilli()})
	f.CloseInput()
	require.NoError(t, f.Run(t.Context()))

	require.Zero(t, got.dupes)
	want := map[string]int64{}
	for _, ev := range s.Events() {
		want[ev.ID] = ev.CreatedAt.UnixMilli()
	}
	require.Equal(t, want, got.events)
	require.GreaterOrEqual(t, len(added), group)
	// The group takes 50 pages; held back whole, every event of it would
	// be added after the last of them.
	require.Less(t, added[0]+group/2/simulator.MaxLimit, added[len(added)-1],
		"the group's first events reached the file only after its last page")
}

// TestTieGroupCutShortIsFetchedAgain: a walk that fails in the middle of a
// millisecond whose events already went to the file keeps no part of it
// (its file would hold events outside the part it commits, or lose the
// rest of the millisecond), and a second fetch of what is not committed
// gives every event once.
func TestTieGroupCutShortIsFetchedAgain(t *testing.T) {
	const group = 2500
	s, base, tie := tieSim(t, group, false)
	target, err := url.Parse(base)
	require.NoError(t, err)
	var failing atomic.Bool
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host})
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			http.Error(w, `{"errors":[{"key":"token","value":null,"message":"forbidden","code":"forbidden"}]}`, http.StatusForbidden)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	frontBase := front.URL + target.Path

	got := &memSpool{events: map[string]int64{}}
	var mu sync.Mutex
	seen := 0
	whole := extract.Window{Start: s.Events()[0].CreatedAt.UnixMilli(), End: time.Date(2026, 10, 3, 0, 0, 0, 0, time.UTC).UnixMilli()}
	fetch := func(base string, ws ...extract.Window) error {
		c := extract.NewClient(extract.ClientConfig{BaseURL: base, Token: "sim-token", MaxRetries: 1, Timeout: 5 * time.Second})
		f := extract.NewFetcher(extract.FetcherConfig{
			Client: c, Workers: 1, CheckpointEvery: time.Hour,
			Open: func(extract.Window) (extract.WindowWriter, error) {
				return &failAfter{memWindow: memWindow{s: got}, tie: tie, mu: &mu, seen: &seen, at: extract.DefaultMaxWindowEvents + 100, fail: &failing}, nil
			},
		})
		f.Add(ws...)
		f.CloseInput()
		return f.Run(t.Context())
	}
	require.Error(t, fetch(frontBase, whole), "the API refused mid-group")
	require.Greater(t, seen, extract.DefaultMaxWindowEvents)

	// Again, what no committed part covers (as a resumed run does).
	failing.Store(false)
	seen = -1 << 30 // no failure this time
	var gaps []extract.Window
	cur := whole.Start
	for _, w := range sortedWindows(got.done) {
		if w.Start > cur {
			gaps = append(gaps, extract.Window{Start: cur, End: w.Start})
		}
		cur = max(cur, w.End)
	}
	if cur < whole.End {
		gaps = append(gaps, extract.Window{Start: cur, End: whole.End})
	}
	require.NoError(t, fetch(base, gaps...))
	require.Zero(t, got.dupes)
	want := map[string]int64{}
	for _, ev := range s.Events() {
		want[ev.ID] = ev.CreatedAt.UnixMilli()
	}
	require.Equal(t, want, got.events)
}

// failAfter makes the API refuse every request once at events of the
// group's millisecond were added: the group has gone to the file by then.
type failAfter struct {
	memWindow
	tie  int64
	mu   *sync.Mutex
	seen *int
	at   int
	fail *atomic.Bool
}

// Commit keeps every event of the file, as the spool does, whatever part
// it is committed as: a file that holds events outside its part shows as
// events twice once the rest is fetched again.
func (w *failAfter) Commit(done extract.Window) error {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	w.s.done = append(w.s.done, done)
	for _, ev := range w.evs {
		if _, ok := w.s.events[ev.ID]; ok {
			w.s.dupes++
		}
		w.s.events[ev.ID] = ev.At
	}
	return nil
}

func (w *failAfter) Add(ev extract.Event) error {
	if ev.At == w.tie {
		w.mu.Lock()
		if *w.seen++; *w.seen == w.at {
			w.fail.Store(true)
		}
		w.mu.Unlock()
	}
	return w.memWindow.Add(ev)
}

func sortedWindows(ws []extract.Window) []extract.Window {
	out := slices.Clone(ws)
	slices.SortFunc(out, func(a, b extract.Window) int { return cmp.Compare(a.Start, b.Start) })
	return out
}
