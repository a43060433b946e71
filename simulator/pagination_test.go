package simulator_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/simulator"
)

func TestWalkReturnsEveryEventOnceNewestFirst(t *testing.T) {
	s, base := start(t, testConfig())
	events := s.Events()
	cases := []struct {
		name        string
		from, to    time.Time
		kv          []string
		keep        func(simulator.Event) bool
		wantAtLeast int
	}{
		{name: "whole range", from: day(0), to: day(3), wantAtLeast: 3000},
		{name: "small pages", from: day(1), to: day(2), kv: []string{"limit", "7"}, wantAtLeast: 900},
		{name: "one key", from: day(0), to: day(3), kv: []string{"event_key", "user_login"},
			keep: func(e simulator.Event) bool { return e.Key == "user_login" }, wantAtLeast: 100},
		{name: "one actor", from: day(0), to: day(3), kv: []string{"actor_id", "10001"},
			keep: func(e simulator.Event) bool { return head(t, e.Raw).ActorID == "10001" }, wantAtLeast: 1},
		{name: "bots", from: day(0), to: day(3), kv: []string{"actor_type", "Bot", "limit", "13"},
			keep: func(e simulator.Event) bool { return head(t, e.Raw).ActorType == "Bot" }, wantAtLeast: 10},
		{name: "entity", from: day(0), to: day(3), kv: []string{"entity_id", "10001", "entity_type", "User"},
			keep: func(e simulator.Event) bool { h := head(t, e.Raw); return h.EntityID == "10001" }, wantAtLeast: 1},
		{name: "unknown actor type", from: day(0), to: day(3), kv: []string{"actor_type", "Robot"},
			keep: func(simulator.Event) bool { return false }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := walk(t, base, query(c.from, c.to, c.kv...))
			want := inRange(events, c.from, c.to, c.keep)
			require.GreaterOrEqual(t, len(want), c.wantAtLeast)
			require.Equal(t, len(want), len(got))
			for i := range want {
				require.JSONEq(t, string(want[i]), string(got[i]), "event %d", i)
			}
		})
	}
}

func TestTiesAndMidnightAreThere(t *testing.T) {
	s, _ := start(t, testConfig())
	perMs := map[time.Time]int{}
	for _, e := range s.Events() {
		perMs[e.CreatedAt]++
	}
	biggest := 0
	for _, n := range perMs {
		biggest = max(biggest, n)
	}
	require.Greater(t, biggest, 50, "a tie group larger than a page")
	for d := range 3 {
		require.GreaterOrEqual(t, perMs[day(d)], 2, "events at midnight of day %d", d)
	}
	require.Positive(t, perMs[day(1).Add(-time.Millisecond)], "an event at 23:59:59.999")
}

func TestBoundsAreInclusiveToTheMillisecond(t *testing.T) {
	s, base := start(t, testConfig())
	events := s.Events()
	count := func(from, to time.Time) int {
		return len(walk(t, base, query(from, to)))
	}
	mid := day(1)
	atMid := len(inRange(events, mid, mid, nil))
	require.GreaterOrEqual(t, atMid, 2)
	require.Equal(t, atMid, count(mid, mid), "start_time = end_time = the events' millisecond")
	require.Equal(t, 0, count(mid.Add(time.Millisecond), mid.Add(time.Millisecond)))
	require.Equal(t, len(inRange(events, mid.Add(-time.Millisecond), mid, nil)), count(mid.Add(-time.Millisecond), mid))

	// Half-open day windows [d 00:00:00.000, d 23:59:59.999] tile the range exactly.
	seen := map[string]bool{}
	for d := range 3 {
		for _, raw := range walk(t, base, query(day(d), day(d+1).Add(-time.Millisecond))) {
			id := head(t, raw).ID
			require.False(t, seen[id], "event %s in two day windows", id)
			seen[id] = true
		}
	}
	require.Len(t, seen, len(events))

	// A bound inside a millisecond: start rounds up, end rounds down.
	q := query(mid, mid)
	q.Set("start_time", "2026-11-01T23:59:59.9995Z")
	q.Set("end_time", "2026-11-02T00:00:00.0005+00:00")
	require.Equal(t, atMid, len(decodePage(t, get(t, base, "sim-token", q)).Data))
}

func TestCursors(t *testing.T) {
	s, base := start(t, testConfig())
	q := query(day(0), day(3))
	first := get(t, base, "sim-token", q)
	p := decodePage(t, first)
	require.True(t, p.Meta.Paginate.HasNext)
	require.False(t, p.Meta.Paginate.HasPrev, "has_prev on the first request without a cursor")

	raw, err := base64.StdEncoding.DecodeString(p.Meta.Paginate.NextPage)
	require.NoError(t, err)
	require.Regexp(t, `^\{"id":\d+,"dir":"desc"\}$`, string(raw))
	raw, err = base64.StdEncoding.DecodeString(p.Meta.Paginate.PrevPage)
	require.NoError(t, err)
	require.Regexp(t, `^\{"id":\d+,"dir":"asc"\}$`, string(raw))

	// The same cursor twice: the same page.
	next := cloneWith(q, "cursor", p.Meta.Paginate.NextPage)
	a, b := get(t, base, "sim-token", next), get(t, base, "sim-token", next)
	require.Equal(t, string(a.Body), string(b.Body))
	second := decodePage(t, a)
	require.True(t, second.Meta.Paginate.HasPrev)

	// prev_page of the second page leads back to the first page.
	back := decodePage(t, get(t, base, "sim-token", cloneWith(q, "cursor", second.Meta.Paginate.PrevPage)))
	require.Equal(t, p.Data, back.Data)
	require.False(t, back.Meta.Paginate.HasPrev)

	// prev_page of the first page: nothing newer yet, and it stays usable.
	top := decodePage(t, get(t, base, "sim-token", cloneWith(q, "cursor", p.Meta.Paginate.PrevPage)))
	require.Empty(t, top.Data)
	require.False(t, top.Meta.Paginate.HasPrev)
	require.True(t, top.Meta.Paginate.HasNext)
	require.Equal(t, p.Meta.Paginate.PrevPage, top.Meta.Paginate.PrevPage)
	require.Len(t, s.Events(), 3000)

	for name, c := range map[string]string{
		"not base64":  "!!!",
		"not json":    base64.StdEncoding.EncodeToString([]byte("id=3")),
		"no id":       base64.StdEncoding.EncodeToString([]byte(`{"dir":"desc"}`)),
		"bad dir":     base64.StdEncoding.EncodeToString([]byte(`{"id":3,"dir":"up"}`)),
		"unknown id":  base64.StdEncoding.EncodeToString([]byte(`{"id":999999,"dir":"desc"}`)),
		"negative id": base64.StdEncoding.EncodeToString([]byte(`{"id":-1,"dir":"desc"}`)),
	} {
		t.Run(name, func(t *testing.T) {
			r := get(t, base, "sim-token", cloneWith(q, "cursor", c))
			require.Equal(t, http.StatusUnprocessableEntity, r.Status, "body: %s", r.Body)
			e := decodeErrors(t, r)
			require.Equal(t, "cursor", e.Errors[0].Key)
			require.Equal(t, "invalid", e.Errors[0].Code)
		})
	}
}

// TestPrevPagePollsNewEvents keeps prev_page between runs, as Pachca
// recommends for a SIEM: later it returns exactly the events written since.
func TestPrevPagePollsNewEvents(t *testing.T) {
	now := time.Now().UTC()
	cfg := testConfig()
	cfg.Events, cfg.From, cfg.To, cfg.AccessedEvents = 200, now.Add(-2*time.Hour), now.Add(-time.Hour), true
	s, base := start(t, cfg)
	q := query(cfg.From, now.Add(time.Hour))

	// The generated events end an hour ago; access events are written at now.
	isAccess := func(raw []byte) bool {
		h := head(t, raw)
		at, err := time.Parse(time.RFC3339Nano, h.CreatedAt)
		require.NoError(t, err)
		return h.EventKey == "audit_events_accessed" && !at.Before(cfg.To)
	}
	first := decodePage(t, get(t, base, "sim-token", q)) // writes access event #1 after answering
	for _, e := range first.Data {
		require.False(t, isAccess(e), "an answer never holds its own access event")
	}
	get(t, base, "sim-token", q)               // #2
	get(t, base, "nope", q)                    // 401: no event
	get(t, base, "sim-token", query(now, now)) // #3
	require.Len(t, s.Events(), 203)

	poll := decodePage(t, get(t, base, "sim-token", cloneWith(q, "cursor", first.Meta.Paginate.PrevPage))) // #4 after
	require.Len(t, poll.Data, 3)
	for _, e := range poll.Data {
		require.True(t, isAccess(e))
	}
	require.False(t, poll.Meta.Paginate.HasPrev)
	require.True(t, poll.Meta.Paginate.HasNext)
	again := decodePage(t, get(t, base, "sim-token", cloneWith(q, "cursor", poll.Meta.Paginate.PrevPage)))
	require.Len(t, again.Data, 1, "only the access of the previous poll")
	require.Len(t, s.Events(), 205)
}

func TestValidation(t *testing.T) {
	cfg := testConfig()
	cfg.MaxRange = 24 * time.Hour
	_, base := start(t, cfg)
	cases := []struct {
		name   string
		q      map[string]string
		status int
		key    string
		code   string
	}{
		{"no start", map[string]string{"end_time": ms(day(1))}, 400, "start_time", "required"},
		{"no end", map[string]string{"start_time": ms(day(1))}, 400, "end_time", "required"},
		{"bad time", map[string]string{"start_time": "yesterday", "end_time": ms(day(1))}, 422, "start_time", "invalid"},
		{"start after end", map[string]string{"start_time": ms(day(1)), "end_time": ms(day(0))}, 422, "start_time", "invalid"},
		{"range too large", map[string]string{"start_time": ms(day(0)), "end_time": ms(day(1).Add(time.Millisecond))}, 422, "end_time", "invalid_date_range"},
		{"range at the limit", map[string]string{"start_time": ms(day(0)), "end_time": ms(day(1))}, 200, "", ""},
		{"limit 0", map[string]string{"start_time": ms(day(0)), "end_time": ms(day(1)), "limit": "0"}, 422, "limit", "invalid"},
		{"limit 51", map[string]string{"start_time": ms(day(0)), "end_time": ms(day(1)), "limit": "51"}, 422, "limit", "invalid"},
		{"limit x", map[string]string{"start_time": ms(day(0)), "end_time": ms(day(1)), "limit": "x"}, 422, "limit", "invalid"},
		{"unknown key", map[string]string{"start_time": ms(day(0)), "end_time": ms(day(1)), "event_key": "user_teleported"}, 422, "event_key", "inclusion"},
		{"date only", map[string]string{"start_time": "2026-11-01", "end_time": "2026-11-01T12:00:00+03:00"}, 200, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := map[string][]string{}
			for k, v := range c.q {
				q[k] = []string{v}
			}
			r := get(t, base, "sim-token", q)
			require.Equal(t, c.status, r.Status, "body: %s", r.Body)
			if c.status == 200 {
				require.Len(t, decodePage(t, r).Data, 50)
				return
			}
			e := decodeErrors(t, r)
			require.Equal(t, c.key, e.Errors[0].Key)
			require.Equal(t, c.code, e.Errors[0].Code)
		})
	}
}

func TestAuth(t *testing.T) {
	_, base := start(t, testConfig())
	q := query(day(0), day(1))
	for _, c := range []struct {
		token, want string
		status      int
	}{
		{"", `"error":"invalid_token"`, 401},
		{"wrong", `"error":"invalid_token"`, 401},
		{"sim-no-scope", "audit_events:read", 403},
		{"sim-no-plan", "Corporation", 402},
	} {
		r := get(t, base, c.token, q)
		require.Equal(t, c.status, r.Status)
		require.Contains(t, string(r.Body), c.want)
	}
	r := get(t, base, "sim-no-plan", q)
	require.Equal(t, "payment_required", decodeErrors(t, r).Errors[0].Code)
}

// TestConcurrentWalks runs parallel clients while access events are written.
func TestConcurrentWalks(t *testing.T) {
	cfg := testConfig()
	cfg.AccessedEvents = true
	s, base := start(t, cfg)
	want := len(inRange(s.Events(), day(0), day(1), nil))
	got := make([]int, 6)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() { got[i] = walkCount(t.Context(), base, query(day(0), day(1))) })
	}
	wg.Wait()
	for _, n := range got {
		require.Equal(t, want, n)
	}
	st := s.Stats()
	require.Equal(t, st.Requests, len(st.Log))
	require.Equal(t, 3000+st.Requests, len(s.Events()))
}

// walkCount is walk for other goroutines: it counts events, -1 on any error.
func walkCount(ctx context.Context, base string, q url.Values) int {
	n := 0
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/audit_events?"+q.Encode(), nil)
		if err != nil {
			return -1
		}
		req.Header.Set("Authorization", "Bearer sim-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return -1
		}
		var p apiPage
		err = json.NewDecoder(resp.Body).Decode(&p)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return -1
		}
		n += len(p.Data)
		if !p.Meta.Paginate.HasNext {
			return n
		}
		q = cloneWith(q, "cursor", p.Meta.Paginate.NextPage)
	}
}

func TestTiesAndMidnightCanBeTurnedOff(t *testing.T) {
	cfg := testConfig()
	cfg.TieGroups, cfg.Midnight = false, false
	s, err := simulator.New(cfg)
	require.NoError(t, err)
	perMs := map[time.Time]int{}
	for _, e := range s.Events() {
		perMs[e.CreatedAt]++
	}
	for at, n := range perMs {
		require.Less(t, n, 5, "%d events at %s", n, at)
	}
}

func TestUnknownKeysCanBeFiltered(t *testing.T) {
	cfg := testConfig()
	cfg.UnknownKeys = true
	s, base := start(t, cfg)
	key := simulator.UnknownEventKeys()[0]
	got := walk(t, base, query(day(0), day(3), "event_key", key))
	want := inRange(s.Events(), day(0), day(3), func(e simulator.Event) bool { return e.Key == key })
	require.NotEmpty(t, want)
	require.Len(t, got, len(want))
}

// TestMicrosecondsAreComparedNotShown: with Config.Micros an event keeps
// its microseconds, which start_time and end_time are compared with, and
// shows whole milliseconds: windows that end at 23:59:59.999 inclusive lose
// the events of 23:59:59.999500; windows that end at the next midnight
// inclusive hold them, and the events of midnight's own millisecond too.
func TestMicrosecondsAreComparedNotShown(t *testing.T) {
	noon := day(1).Add(12 * time.Hour)
	for _, micros := range []bool{false, true} {
		t.Run(map[bool]string{false: "milliseconds", true: "microseconds"}[micros], func(t *testing.T) {
			cfg := testConfig()
			cfg.Micros = micros
			s, base := start(t, cfg)
			ev := s.WriteEvent("user_login", noon.Add(500*time.Microsecond), 0)
			require.True(t, ev.CreatedAt.Equal(noon), "shown as its millisecond")
			require.Equal(t, ms(noon), head(t, ev.Raw).CreatedAt)
			has := func(from, to time.Time) bool {
				for _, raw := range walk(t, base, query(from, to)) {
					if head(t, raw).ID == ev.ID {
						return true
					}
				}
				return false
			}
			require.True(t, has(noon, noon.Add(time.Hour)), "after a start_time of its millisecond")
			require.Equal(t, !micros, has(noon.Add(-time.Hour), noon), "end_time of its millisecond: before it only without microseconds")
		})
	}

	cfg := testConfig()
	cfg.Micros = true
	s, base := start(t, cfg)
	ids := func(from, to time.Time) map[string]bool {
		out := map[string]bool{}
		for _, raw := range walk(t, base, query(from, to)) {
			out[head(t, raw).ID] = true
		}
		return out
	}
	mid := day(1)
	atMid := inRange(s.Events(), mid, mid, nil)
	lastMs := inRange(s.Events(), mid.Add(-time.Millisecond), mid.Add(-time.Millisecond), nil)
	require.GreaterOrEqual(t, len(atMid), 2)
	require.NotEmpty(t, lastMs)
	inclusive := ids(day(0), mid)                    // [d, next midnight]: every event of d
	short := ids(day(0), mid.Add(-time.Millisecond)) // [d, 23:59:59.999]
	next := ids(mid, day(2))                         // the next day's
	for _, raw := range lastMs {
		id := head(t, raw).ID
		require.True(t, inclusive[id], "an event of 23:59:59.999 in the window that ends at midnight")
		require.False(t, short[id], "an event of 23:59:59.999xxx after an end_time of 23:59:59.999")
		require.False(t, next[id])
	}
	before := 0 // events of midnight's millisecond in the earlier window
	for _, raw := range atMid {
		id := head(t, raw).ID
		require.True(t, next[id], "an event of 00:00:00.000 in the window that starts at midnight")
		if inclusive[id] {
			before++
		}
	}
	require.Positive(t, before, "one at 00:00:00.000000 exactly, in both")
	require.Less(t, before, len(atMid), "one at 00:00:00.000xxx, after the earlier window's end_time")
}

// TestDisorder: with Config.Disorder the pages follow the log, whose
// created_at order is only rough, and start_time and end_time select by
// created_at: a walk of a range returns every event created in it once,
// and some after an older one.
func TestDisorder(t *testing.T) {
	cfg := testConfig()
	cfg.Disorder = 10 * time.Minute
	s, base := start(t, cfg)
	for _, r := range [][2]time.Time{{day(0), day(3)}, {day(1), day(1).Add(5 * time.Hour)}} {
		got := walk(t, base, query(r[0], r[1]))
		want := inRange(s.Events(), r[0], r[1], nil)
		require.ElementsMatch(t, want, got)
		require.Equal(t, want, got, "newest first in the log's order")
		inversions := 0
		for i := 1; i < len(got); i++ {
			if head(t, got[i]).CreatedAt > head(t, got[i-1]).CreatedAt {
				inversions++
			}
		}
		require.Positive(t, inversions, "some event after an older one")
	}
	cfg.Disorder = -time.Second
	_, err := simulator.New(cfg)
	require.EqualError(t, err, "simulator: disorder: -1s is negative")
}

// TestDisorderLateEventOnTop: in a log in the order of writing, an event
// written now with a created_at of an hour ago comes first.
func TestDisorderLateEventOnTop(t *testing.T) {
	now := time.Now().UTC()
	cfg := testConfig()
	cfg.From, cfg.To, cfg.Disorder = now.Add(-3*time.Hour), now.Add(-time.Minute), time.Millisecond
	s, base := start(t, cfg)
	late := s.WriteEvent("user_login", now.Add(-time.Hour), 0)
	first := decodePage(t, get(t, base, "sim-token", query(now.Add(-2*time.Hour), now.Add(-30*time.Minute)))).Data[0]
	require.Equal(t, late.ID, head(t, first).ID)
	got := walk(t, base, query(now.Add(-2*time.Hour), now.Add(-30*time.Minute)))
	require.ElementsMatch(t, inRange(s.Events(), now.Add(-2*time.Hour), now.Add(-30*time.Minute), nil), got)
}
