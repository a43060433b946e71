package extract_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/extract"
	"github.com/pachca-export/pachca-export/simulator"
)

// memSpool keeps committed windows in memory.
type memSpool struct {
	mu      sync.Mutex
	done    []extract.Window
	events  map[string]int64 // id -> created_at ms
	dupes   int
	aborted int
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
	s := &memSpool{events: map[string]int64{}}
	c := extract.NewClient(extract.ClientConfig{BaseURL: base, Token: "sim-token", MaxRetries: 3, Timeout: 5 * time.Second})
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

// TestFetchExactlyOnce covers the ways a window is cut: split on
// invalid_date_range, split for idle workers, and closed at a millisecond
// boundary past MaxWindowEvents. Each way must deliver every event once.
func TestFetchExactlyOnce(t *testing.T) {
	cases := []struct {
		name      string
		maxRange  time.Duration
		workers   int
		maxEvents int
	}{
		{name: "one worker, one window", workers: 1, maxEvents: 1 << 30},
		{name: "idle workers split", workers: 8, maxEvents: 1 << 30},
		{name: "range too large", maxRange: 3 * time.Hour, workers: 4, maxEvents: 1 << 30},
		{name: "long windows closed at a millisecond", workers: 2, maxEvents: 120},
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
			require.Zero(t, got.dupes)
			want := map[string]int64{}
			for _, ev := range s.Events() {
				want[ev.ID] = ev.CreatedAt.UnixMilli()
			}
			require.Equal(t, want, got.events)
			// The committed windows tile the period exactly.
			var covered int64
			for _, w := range got.done {
				covered += w.End - w.Start
			}
			require.Equal(t, to.UnixMilli()-from.UnixMilli(), covered)
			if tc.workers > 1 {
				require.Greater(t, len(got.done), 2, "windows were split")
			}
		})
	}
}

// page renders a page of events with the given cursor.
func page(next string, hasNext bool, ids ...string) string {
	s := `{"data":[`
	for i, id := range ids {
		if i > 0 {
			s += ","
		}
		s += fmt.Sprintf(`{"id":%q,"created_at":"2026-10-01T10:00:%02d.000Z","event_key":"user_login"}`, id, 59-i)
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
		require.ErrorContains(t, err, "empty pages in a row")
	})
	t.Run("same event on two pages", func(t *testing.T) {
		b := serve(t, map[string]string{"": page("c1", true, "a", "b"), "c1": page("c2", true, "b", "c"), "c2": page("", false, "c", "d")})
		got, err := fetchAll(t, b, 1, 1000, day)
		require.NoError(t, err)
		require.Len(t, got.events, 4)
		require.Zero(t, got.dupes)
	})
	t.Run("empty page then more", func(t *testing.T) {
		b := serve(t, map[string]string{"": page("c1", true, "a"), "c1": page("c2", true), "c2": page("", false, "b")})
		got, err := fetchAll(t, b, 1, 1000, day)
		require.NoError(t, err)
		require.Len(t, got.events, 2)
	})
}
