package digest

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/valyala/fastjson"

	"github.com/pachca-export/pachca-export/alerts"
	"github.com/pachca-export/pachca-export/report/reader"
	"github.com/pachca-export/pachca-export/transform"
)

var day0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// TestBurstsMatchTheEngine: the bounded burst search finds exactly what
// package alerts finds when it is given every event, whatever the rule's
// window (shorter or longer than a day), with ties and bursts across midnight.
func TestBurstsMatchTheEngine(t *testing.T) {
	for _, tc := range []struct {
		name      string
		threshold int
		window    time.Duration
	}{
		{"2 in 1m", 2, time.Minute},
		{"5 in 10m", 5, 10 * time.Minute},
		{"3 in 2h", 3, 2 * time.Hour},
		{"4 in 30h", 4, 30 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for seed := range uint64(5) {
				rng := rand.New(rand.NewPCG(seed, 3))
				rows := randomFails(rng, 4)
				rule := alerts.Rule{Name: "r", Kind: alerts.KindThreshold, EventKeys: []string{"user_2fa_fail", "user_login"},
					Threshold: tc.threshold, Window: tc.window, Recipients: []string{"1"}}
				engine, err := alerts.New(alerts.Config{Rules: []alerts.Rule{rule}})
				require.NoError(t, err)
				for i := range rows {
					rec := transform.Record{ID: rows[i].ID, CreatedAt: rows[i].CreatedAt, EventKey: rows[i].EventKey,
						ActorID: rows[i].ActorID, ActorType: rows[i].ActorType, IPAddress: rows[i].IPAddress}
					engine.Observe(&rec)
				}
				want := engine.Findings()

				b, err := New(Options{From: day0, To: day0.AddDate(0, 0, 4), Rules: []alerts.Rule{rule}})
				require.NoError(t, err)
				for d := range 4 {
					start, end := day0.AddDate(0, 0, d), day0.AddDate(0, 0, d+1)
					var day []reader.Row
					for _, r := range rows {
						if r.CreatedAt >= start.UnixMilli() && r.CreatedAt < end.UnixMilli() {
							day = append(day, r)
						}
					}
					rng.Shuffle(len(day), func(i, j int) { day[i], day[j] = day[j], day[i] })
					b.Add(day)
					b.Advance(end)
				}
				got := b.Finish().Bursts
				require.NotEmpty(t, want, "seed %d: the data should hold bursts", seed)
				require.Equal(t, want, got, "seed %d", seed)
			}
		})
	}
}

// randomFails draws failed 2FA and logins of a few actors in clusters, some
// sharing a millisecond and some around midnight.
func randomFails(rng *rand.Rand, days int) []reader.Row {
	var rows []reader.Row
	n := 0
	add := func(at int64, key, actor string) {
		n++
		// Unique ids, in random order (the engine keeps an id once): UUIDs
		// and others, which the search keeps apart, and addresses of every
		// form it keeps (one it could not read back the same: upper case).
		id := fmt.Sprintf("id-%05d-%d", rng.IntN(100000), n)
		if n%3 == 0 {
			id = fmt.Sprintf("%08x-0000-4000-8000-%012x", rng.Uint32(), n)
		}
		ip := transform.NullString{Valid: true, Str: fmt.Sprint("10.0.0.", n%7)}
		switch n % 5 {
		case 1:
			ip.Str = fmt.Sprintf("2001:db8::%x", n%9)
		case 2:
			ip.Str = fmt.Sprintf("2001:DB8::%X", n%9+10)
		case 3:
			ip = transform.NullString{}
		}
		rows = append(rows, reader.Row{ID: id, CreatedAt: at, EventKey: key, ActorID: actor, ActorType: "User", IPAddress: ip})
	}
	span := int64(days) * dayMs
	for range 60 {
		center := day0.UnixMilli() + rng.Int64N(span)
		if rng.IntN(4) == 0 { // near a midnight
			center = day0.UnixMilli() + int64(1+rng.IntN(days-1))*dayMs + rng.Int64N(20*60_000) - 10*60_000
		}
		actor := fmt.Sprint(100 + rng.IntN(6))
		for range 1 + rng.IntN(7) {
			at := center + rng.Int64N(15*60_000)
			if at < day0.UnixMilli() || at >= day0.UnixMilli()+span {
				continue
			}
			key := "user_2fa_fail"
			if rng.IntN(5) == 0 {
				key = "user_login"
			}
			add(at, key, actor)
			if rng.IntN(6) == 0 {
				add(at, key, actor) // a tie
			}
		}
	}
	for range 200 { // scattered ones
		add(day0.UnixMilli()+rng.Int64N(span), "user_2fa_fail", fmt.Sprint(100+rng.IntN(6)))
	}
	return rows
}

func TestTopK(t *testing.T) {
	t.Run("exact under capacity", func(t *testing.T) {
		tk := newTopK(10)
		for i, k := range []string{"a", "b", "a", "c", "a", "b"} {
			_ = i
			tk.add(k)
		}
		require.Equal(t, []Top{{Key: "a", Count: 3}, {Key: "b", Count: 2}, {Key: "c", Count: 1}}, tk.top(5))
		require.Equal(t, Distinct{N: 3}, tk.distinct())
	})
	t.Run("heavy hitters over capacity", func(t *testing.T) {
		tk := newTopK(20)
		rng := rand.New(rand.NewPCG(1, 2))
		truth := map[string]int64{}
		for i := range 20000 {
			k := fmt.Sprint("rare-", i)
			if rng.IntN(10) < 3 {
				k = fmt.Sprint("heavy-", rng.IntN(3))
			}
			truth[k]++
			tk.add(k)
		}
		top := tk.top(3)
		require.True(t, tk.distinct().AtLeast)
		for _, e := range top {
			require.Contains(t, e.Key, "heavy-")
			require.GreaterOrEqual(t, e.Count, truth[e.Key], e.Key)
			require.LessOrEqual(t, e.Count-e.Err, truth[e.Key], e.Key)
		}
	})
}

// TestUnknownKeysAreKept: a key schema v1 does not know counts under
// other, in the key list and in the group of unknown keys.
func TestUnknownKeysAreKept(t *testing.T) {
	b, err := New(Options{From: day0, To: day0.AddDate(0, 0, 1)})
	require.NoError(t, err)
	b.Add([]reader.Row{
		{ID: "1", CreatedAt: day0.UnixMilli() + 5, EventKey: "workspace_export_requested", EventCategory: "other", ActorID: "1", ActorType: "User"},
		{ID: "2", CreatedAt: day0.UnixMilli() + 6, EventKey: "user_login", EventCategory: "auth", ActorID: "1", ActorType: "User"},
		{ID: "3", CreatedAt: day0.UnixMilli() - 1, EventKey: "user_login", EventCategory: "auth", ActorID: "1", ActorType: "User"}, // outside
	})
	s := b.Finish()
	require.EqualValues(t, 2, s.Events)
	other := s.Sensitive[len(s.Sensitive)-1]
	require.Equal(t, UnknownGroup, other.Title)
	require.EqualValues(t, 1, other.Count)
	require.Equal(t, []string{"workspace_export_requested"}, other.Keys)
	require.Contains(t, s.Keys, KeyCount{Key: "workspace_export_requested", Category: "other", Count: 1})
	require.EqualValues(t, 1, s.CategoryTotals[len(s.Categories)-1])
}

// TestFailActorAddresses: an actor's distinct addresses are counted up to
// 8; "more" only when a ninth was seen.
func TestFailActorAddresses(t *testing.T) {
	for _, tc := range []struct {
		name      string
		addresses int
		want      int
		more      bool
	}{
		{"seven", 7, 7, false},
		{"exactly eight", 8, 8, false},
		{"nine", 9, 8, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := New(Options{From: day0, To: day0.AddDate(0, 0, 1)})
			require.NoError(t, err)
			var rows []reader.Row
			for i := range 2 * tc.addresses { // each address twice
				rows = append(rows, reader.Row{ID: fmt.Sprint(i), CreatedAt: day0.UnixMilli() + int64(i)*hourMs/4, EventKey: Fail2FAKey,
					EventCategory: "auth", ActorID: "1", ActorType: "User", IPAddress: transform.NullString{Valid: true, Str: fmt.Sprint("10.0.0.", i%tc.addresses)}})
			}
			b.Add(rows)
			a := b.Finish().Fail2FA.Actors[0]
			require.Equal(t, tc.want, a.IPs)
			require.Equal(t, tc.more, a.IPsAtLeast)
		})
	}
}

// TestWhatOfNull: a detail the API sends as null, or does not send, is left
// out of the "what" column, not written as the word null or as a label of
// nothing (was: "bot ; added: chats:read").
func TestWhatOfNull(t *testing.T) {
	var p fastjson.Parser
	for _, tc := range []struct {
		name, key, details, want string
	}{
		{"DLP without action message", "dlp_violation_detected", `{"dlp_rule_name":"Cards","action_message":null}`, "Cards"},
		{"DLP with action message", "dlp_violation_detected", `{"dlp_rule_name":"Cards","action_message":"blocked"}`, "Cards; blocked"},
		{"role from null", "user_role_changed", `{"previous_company_role":null,"new_company_role":"admin"}`, " → admin"},
		{"bot id a number", "bot_deleted", `{"bot_id":42}`, "bot 42"},
		// The API sends no bot_id with these (the bot is the entity): no "bot " before nothing.
		{"bot scopes", "bot_scopes_updated", `{"added_scopes":["chats:read"],"removed_scopes":[]}`, "added: chats:read"},
		{"bot webhook settings", "bot_webhook_settings_updated", `{"changes":{"outgoing_url":{"previous":null,"new":"https://x"}}}`,
			`changes: {"outgoing_url":{"previous":null,"new":"https://x"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, what(&p, tc.key, tc.details))
		})
	}
}

// TestDaysAndHoursOfAZone: with a Location, a day and an hour are that
// zone's: a failure at 23:30 UTC is the next Moscow day's, at 02:30 its
// clock, and a burst at 02:00-05:00 Moscow is one night, not the end of
// one UTC day and the start of the next (was: every count by UTC day and
// hour).
func TestDaysAndHoursOfAZone(t *testing.T) {
	msk, err := time.LoadLocation("Europe/Moscow")
	require.NoError(t, err)
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, msk) // 2026-10-31 21:00 UTC
	b, err := New(Options{From: from, To: from.AddDate(0, 0, 2), Location: msk})
	require.NoError(t, err)
	fail := func(id string, at time.Time) reader.Row {
		return reader.Row{ID: id, CreatedAt: at.UnixMilli(), EventKey: Fail2FAKey, EventCategory: "auth", ActorID: "1", ActorType: "User"}
	}
	b.Add([]reader.Row{
		fail("a", time.Date(2026, 10, 31, 21, 30, 0, 0, time.UTC)), // 00:30 Moscow, 1 November
		fail("b", time.Date(2026, 11, 1, 23, 30, 0, 0, time.UTC)),  // 02:30 Moscow, 2 November
		fail("c", time.Date(2026, 11, 2, 0, 10, 0, 0, time.UTC)),   // 03:10 Moscow, 2 November
		fail("d", time.Date(2026, 11, 2, 21, 0, 0, 0, time.UTC)),   // 00:00 Moscow, 3 November: after the period
	})
	s := b.Finish()
	require.Len(t, s.Days, 2)
	for i, want := range []struct {
		day   string
		count int64
	}{{"2026-11-01", 1}, {"2026-11-02", 2}} {
		require.Equal(t, want.day+" 00:00 +03:00", s.Days[i].Day.Format("2006-01-02 15:04 -07:00"))
		require.Equal(t, want.count, s.Days[i].Total, want.day)
	}
	hours := s.Fail2FA.Hours
	require.Len(t, hours, 48)
	require.Equal(t, "2026-11-01 00:00 +03:00", hours[0].Format("2006-01-02 15:04 -07:00"))
	got := map[string]int64{}
	for i, n := range s.Fail2FA.Series[0].Counts {
		if n > 0 {
			got[hours[i].Format("2006-01-02 15:04")] = n
		}
	}
	require.Equal(t, map[string]int64{"2026-11-01 00:00": 1, "2026-11-02 02:00": 1, "2026-11-02 03:00": 1}, got)
}

// TestDaylightSavingDays: in a zone with daylight saving time the day of
// the change lasts 23 hours (8 March 2026 in New York) or 25 (1 November):
// each of its events counts on it, the next day starts at its midnight,
// and the hour chart has 23 or 25 hours (was: days of 24 hours from the
// period's start, which would move every later day's bounds an hour).
func TestDaylightSavingDays(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	for _, tc := range []struct {
		name  string
		day   time.Time
		hours int
	}{
		{"spring forward", time.Date(2026, 3, 8, 0, 0, 0, 0, ny), 23},
		{"fall back", time.Date(2026, 11, 1, 0, 0, 0, 0, ny), 25},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next := time.Date(tc.day.Year(), tc.day.Month(), tc.day.Day()+1, 0, 0, 0, 0, ny)
			require.Equal(t, time.Duration(tc.hours)*time.Hour, next.Sub(tc.day))
			b, err := New(Options{From: tc.day, To: tc.day.AddDate(0, 0, 2), Location: ny})
			require.NoError(t, err)
			var rows []reader.Row
			// One failure at the start of each hour of the two days, and
			// one a millisecond before the second day.
			for at := tc.day; at.Before(tc.day.AddDate(0, 0, 2)); at = at.Add(time.Hour) {
				rows = append(rows, reader.Row{ID: at.String(), CreatedAt: at.UnixMilli(), EventKey: Fail2FAKey, EventCategory: "auth", ActorID: "1", ActorType: "User"})
			}
			rows = append(rows, reader.Row{ID: "last", CreatedAt: next.UnixMilli() - 1, EventKey: Fail2FAKey, EventCategory: "auth", ActorID: "1", ActorType: "User"})
			b.Add(rows)
			s := b.Finish()
			require.Len(t, s.Days, 2)
			require.True(t, s.Days[1].Day.Equal(next), "second day starts %s", s.Days[1].Day)
			require.Equal(t, int64(tc.hours+1), s.Days[0].Total)
			require.Equal(t, int64(24), s.Days[1].Total)
			require.Len(t, s.Fail2FA.Hours, tc.hours+24)
			for i, n := range s.Fail2FA.Series[0].Counts {
				want := int64(1)
				if i == tc.hours-1 {
					want = 2
				}
				require.Equal(t, want, n, "hour %s", s.Fail2FA.Hours[i].Format("2006-01-02 15:04 -07:00"))
			}
		})
	}
}
