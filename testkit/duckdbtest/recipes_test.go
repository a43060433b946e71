package duckdbtest_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Moscow wherever the test runs

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/testkit/duckdbtest"
	"github.com/pachca-export/pachca-export/testkit/exporttest"
)

// The incident the README's recipes are about, planted among the
// simulator's events: user 10042, who signs in every morning from the
// office, fails the second factor four times on a Sunday night from an
// address never seen, gets in, makes a token, searches messages in bulk,
// deletes messages and makes user 10077 an administrator; the owner's
// token reads the log from the same address.
const (
	suspect    = "10042"
	accomplice = 10077
	owner      = 10001
	newIP      = "198.51.100.23"
	officeIP   = "203.0.113.7"
	homeIP     = "192.0.2.44"
	oldIP      = "192.0.2.45"
	browser    = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
	office     = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	script     = "python-requests/2.32.3"
)

var (
	simFrom  = time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	simTo    = time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC)
	incident = time.Date(2026, 11, 8, 3, 0, 0, 0, time.UTC) // a Sunday, 06:00 in Moscow
)

// plant writes the incident and the suspect's ordinary days.
func plant(sim *simulator.Server) {
	id, _ := strconv.ParseUint(suspect, 10, 64)
	w := func(key string, at time.Time, ip, ua, details string) {
		sim.WriteEventSpec(simulator.EventSpec{Key: key, At: at, Actor: id, IP: ip, UserAgent: ua, Details: details})
	}
	for d := time.Date(2026, 10, 5, 6, 5, 0, 0, time.UTC); d.Before(incident.Truncate(24 * time.Hour)); d = d.AddDate(0, 0, 1) {
		w("user_login", d, officeIP, office, "")
	}
	// From home: again after 15 days (known), and after 34 (new again).
	w("user_login", time.Date(2026, 10, 20, 20, 0, 0, 0, time.UTC), homeIP, office, "")
	w("user_login", time.Date(2026, 11, 4, 20, 0, 0, 0, time.UTC), homeIP, office, "")
	w("user_login", time.Date(2026, 10, 2, 21, 0, 0, 0, time.UTC), oldIP, office, "")
	w("user_login", time.Date(2026, 11, 5, 21, 0, 0, 0, time.UTC), oldIP, office, "")
	// Two failures before a success: below the recipe's three.
	morning := time.Date(2026, 11, 3, 6, 0, 0, 0, time.UTC)
	w("user_2fa_fail", morning, officeIP, office, "")
	w("user_2fa_fail", morning.Add(2*time.Minute), officeIP, office, "")
	w("user_2fa_success", morning.Add(3*time.Minute), officeIP, office, "")

	for i := range 4 {
		w("user_2fa_fail", incident.Add(time.Duration(i)*3*time.Minute), newIP, browser, "")
	}
	w("user_2fa_success", incident.Add(13*time.Minute+5*time.Second), newIP, browser, "")
	w("user_login", incident.Add(13*time.Minute+6*time.Second), newIP, browser, "")
	w("access_token_created", incident.Add(20*time.Minute), newIP, browser, `{"scopes":["messages:read","chats:read","search:messages"]}`)
	for i := range 40 {
		w("search_messages_api", incident.Add(25*time.Minute+time.Duration(i)*20*time.Second), newIP, script,
			fmt.Sprintf(`{"search_type":"messages","query_present":true,"cursor_present":%v,"limit":50,"filters":{"chat_ids":[300017]}}`, i > 0))
	}
	for i := range 25 {
		w("message_deleted", incident.Add(45*time.Minute+time.Duration(i)*20*time.Second), newIP, script, "")
	}
	sim.WriteEventSpec(simulator.EventSpec{Key: "user_role_changed", At: incident.Add(50 * time.Minute), Actor: id, Entity: accomplice,
		IP: newIP, UserAgent: browser, Details: `{"new_company_role":"admin","previous_company_role":"user","initiator_id":10042}`})
	sim.WriteEventSpec(simulator.EventSpec{Key: "audit_events_accessed", At: incident.Add(58 * time.Minute), Actor: owner, IP: newIP, UserAgent: "curl/8.5.0"})
}

// TestREADMERecipes: every SQL recipe of the README's "Querying the
// exports", as written there, run by DuckDB over the Parquet files of an
// export (pipeline.Run against the simulator, the incident above planted)
// through the README's view, returns the rows computed in Go from the
// NDJSON files of the same run; and the incident is in them.
func TestREADMERecipes(t *testing.T) {
	setup, recipes := readmeRecipes(t)
	require.ElementsMatch(t, slices.Collect(maps.Keys(oracles)), slices.Collect(maps.Keys(recipes)), "the README's recipes and this test's answers")

	sc := simulator.DefaultConfig()
	sc.Events, sc.From, sc.To, sc.Seed = 20000, simFrom, simTo, 11
	sc.AccessedEvents = true
	sc.ClockOffset = time.Until(incident.Add(9 * time.Hour)) // the exporter's reads are logged on the incident's day
	sim, err := simulator.New(sc)
	require.NoError(t, err)
	base, err := sim.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { sim.Close() })
	plant(sim)

	dir := t.TempDir()
	now := func() time.Time { return simTo.Add(time.Hour) }
	export := func(state string, from time.Time, sinks ...config.Sink) {
		cfg := config.Default()
		cfg.File = "test.yaml"
		cfg.Source.BaseURL, cfg.Source.Token, cfg.Source.Workspace = base, "sim-token", "acme"
		cfg.Source.RequestsPerSecond, cfg.Source.Timeout = 500, 5*time.Second
		cfg.State.Dir = filepath.Join(dir, state)
		cfg.Sinks = sinks
		require.NoError(t, cfg.Validate())
		sum, err := pipeline.Run(t.Context(), pipeline.Options{Config: &cfg, Logger: slog.New(slog.DiscardHandler), Now: now},
			pipeline.Range{From: from, To: simTo}, false)
		require.NoError(t, err)
		require.Zero(t, sum.DeadLetters)
	}
	// Another exporter's run first, so that the log holds reads of it
	// before the export starts.
	export("other-state", simTo.AddDate(0, 0, -1), config.Sink{Type: "ndjson", File: &config.FileSink{Dir: filepath.Join(dir, "other")}})
	export("state", simFrom,
		config.Sink{Type: "ndjson", File: &config.FileSink{Dir: filepath.Join(dir, "out", "ndjson")}},
		config.Sink{Type: "parquet", File: &config.FileSink{Dir: filepath.Join(dir, "out", "parquet")}})

	var recs []rec
	for _, l := range exporttest.ReadNDJSON(t, filepath.Join(dir, "out", "ndjson")) {
		recs = append(recs, newRec(l.Fields))
	}
	slices.SortFunc(recs, func(a, b rec) int { return cmpAtID(a, b) })
	t.Chdir(dir) // the README's view reads out/parquet
	for title, sql := range recipes {
		t.Run(strings.ReplaceAll(title, " ", "_"), func(t *testing.T) {
			want := oracles[title].answer(recs)
			oracles[title].found(t, want)
			got := normalize(duckdbtest.Query(t, setup+"\n"+sql))
			require.Equal(t, want, got, "README recipe %q", title)
			t.Logf("%d rows", len(got))
		})
	}
}

// readmeRecipes returns the README's DuckDB view (the code block that
// starts with SET) and its recipes (the code blocks that start with a
// "-- title" line), by title.
func readmeRecipes(t *testing.T) (setup string, recipes map[string]string) {
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	s := string(b)
	const head = "\n## Querying the exports\n"
	i := strings.Index(s, head)
	require.GreaterOrEqual(t, i, 0, "README: %q not found", strings.TrimSpace(head))
	s = s[i+len(head):]
	if j := strings.Index(s, "\n## "); j >= 0 {
		s = s[:j]
	}
	recipes = map[string]string{}
	for _, para := range strings.Split(s, "\n\n") {
		lines := strings.Split(strings.Trim(para, "\n"), "\n")
		code := true
		for k, l := range lines {
			code = code && strings.HasPrefix(l, "    ")
			lines[k] = strings.TrimPrefix(l, "    ")
		}
		if !code {
			continue
		}
		block := strings.Join(lines, "\n")
		switch {
		case strings.HasPrefix(block, "SET "):
			setup = block
		case strings.HasPrefix(block, "-- "):
			title := strings.TrimPrefix(lines[0], "-- ")
			require.NotContains(t, recipes, title, "README: two recipes titled %q", title)
			recipes[title] = block
		default:
			t.Fatalf("README, Querying the exports: a code block neither the view nor a recipe:\n%s", block)
		}
	}
	require.NotEmpty(t, setup, "README: the DuckDB view")
	return setup, recipes
}

// normalize makes DuckDB's rows comparable with the answers: every value
// as text, timestamps as the NDJSON writes them, null as NULL.
func normalize(rows []map[string]any) []map[string]string {
	out := []map[string]string{}
	for _, r := range rows {
		m := map[string]string{}
		for k, v := range r {
			m[k] = text(v)
		}
		out = append(out, m)
	}
	return out
}

func text(v any) string {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case string:
		if ts, err := time.Parse("2006-01-02 15:04:05.999999-07", v); err == nil {
			return stamp(ts)
		}
		return v
	case bool:
		return strconv.FormatBool(v)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case json.Number:
		return v.String()
	case []any:
		b, _ := json.Marshal(v)
		return string(b)
	}
	panic(fmt.Sprintf("duckdb value %T", v))
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// rec is one exported record, read from its NDJSON line.
type rec struct {
	id, key, category, actor, actorType, entity, entityType, dt string
	at                                                          time.Time
	f                                                           map[string]any
}

func newRec(f map[string]any) rec {
	s := func(k string) string { v, _ := f[k].(string); return v }
	at, err := time.Parse(time.RFC3339Nano, s("created_at"))
	if err != nil {
		panic(err)
	}
	return rec{id: s("id"), key: s("event_key"), category: s("event_category"), actor: s("actor_id"), actorType: s("actor_type"),
		entity: s("entity_id"), entityType: s("entity_type"), dt: at.UTC().Format(time.DateOnly), at: at.UTC(), f: f}
}

// str is a string field; ok false when null or missing.
func (r rec) str(k string) (string, bool) { v, ok := r.f[k].(string); return v, ok }

// val is a field as text, NULL when null or missing.
func (r rec) val(k string) string {
	v, ok := r.f[k]
	if !ok || v == nil {
		return "NULL"
	}
	return text(v)
}

func (r rec) in(from, to string) bool { return r.dt >= from && r.dt <= to }

func cmpAtID(a, b rec) int {
	if c := a.at.Compare(b.at); c != 0 {
		return c
	}
	return strings.Compare(a.id, b.id)
}

// cmpNullsLast orders text values as SQL does by default: NULL after
// every value.
func cmpNullsLast(a, b string) int {
	switch {
	case a == b:
		return 0
	case a == "NULL":
		return 1
	case b == "NULL":
		return -1
	}
	return strings.Compare(a, b)
}

// oracle is a recipe's answer computed in Go, and what of the incident
// it must hold.
type oracle struct {
	answer func([]rec) []map[string]string
	found  func(*testing.T, []map[string]string)
}

func rowsWith(rows []map[string]string, kv ...string) int {
	n := 0
	for _, r := range rows {
		ok := true
		for i := 0; i < len(kv); i += 2 {
			ok = ok && r[kv[i]] == kv[i+1]
		}
		if ok {
			n++
		}
	}
	return n
}

var oracles = map[string]oracle{
	"sign-ins from one address": {
		answer: func(recs []rec) []map[string]string {
			out := []map[string]string{}
			for _, r := range recs {
				if ip, _ := r.str("ip_address"); r.in("2026-11-01", "2026-11-09") && r.category == "auth" && ip == newIP {
					out = append(out, map[string]string{"created_at": stamp(r.at), "actor_id": r.actor, "event_key": r.key, "user_agent": r.val("user_agent")})
				}
			}
			return out
		},
		found: func(t *testing.T, rows []map[string]string) {
			require.Equal(t, 6, rowsWith(rows, "actor_id", suspect), "four failures, a success, a login")
		},
	},
	"addresses and clients of one user": {
		answer: func(recs []rec) []map[string]string {
			type agg struct {
				n           int
				first, last time.Time
			}
			groups := map[[2]string]*agg{}
			for _, r := range recs {
				if r.in("2026-10-01", "2026-11-09") && r.key == "user_login" && r.actor == suspect {
					k := [2]string{r.val("ip_address"), r.val("user_agent")}
					if groups[k] == nil {
						groups[k] = &agg{first: r.at}
					}
					groups[k].n++
					groups[k].last = r.at // recs are in time order
				}
			}
			out := []map[string]string{}
			for k, g := range groups {
				out = append(out, map[string]string{"ip_address": k[0], "user_agent": k[1], "logins": strconv.Itoa(g.n), "first_seen": stamp(g.first), "last_seen": stamp(g.last)})
			}
			slices.SortFunc(out, func(a, b map[string]string) int {
				if c := strings.Compare(a["first_seen"], b["first_seen"]); c != 0 {
					return c
				}
				if c := cmpNullsLast(a["ip_address"], b["ip_address"]); c != 0 {
					return c
				}
				return cmpNullsLast(a["user_agent"], b["user_agent"])
			})
			return out
		},
		found: func(t *testing.T, rows []map[string]string) {
			require.Equal(t, 1, rowsWith(rows, "ip_address", officeIP, "user_agent", office, "logins", "34"))
			require.Equal(t, 1, rowsWith(rows, "ip_address", newIP, "logins", "1"))
		},
	},
	"sign-ins from an address new for the user": {
		answer: func(recs []rec) []map[string]string {
			out := []map[string]string{}
			for i, l := range recs {
				ip, ok := l.str("ip_address")
				if !ok || l.key != "user_login" || !l.in("2026-11-01", "2026-11-09") {
					continue
				}
				prev := "NULL"
				isNew := true
				for _, e := range recs[:i] { // before l in (created_at, id)
					if eip, _ := e.str("ip_address"); e.key == "user_login" && e.actor == l.actor && eip == ip && e.in("2026-10-02", "2026-11-09") {
						prev = stamp(e.at)
						isNew = e.at.Before(l.at.AddDate(0, 0, -30))
					}
				}
				if isNew {
					out = append(out, map[string]string{"created_at": stamp(l.at), "actor_id": l.actor, "ip_address": ip, "user_agent": l.val("user_agent"), "previous_login": prev})
				}
			}
			return out
		},
		found: func(t *testing.T, rows []map[string]string) {
			require.Zero(t, rowsWith(rows, "actor_id", suspect, "ip_address", officeIP), "the office, signed in from every day")
			require.Zero(t, rowsWith(rows, "actor_id", suspect, "ip_address", homeIP), "home, signed in from 15 days before")
			require.Equal(t, 1, rowsWith(rows, "actor_id", suspect, "ip_address", oldIP, "previous_login", stamp(time.Date(2026, 10, 2, 21, 0, 0, 0, time.UTC))),
				"an address last signed in from 34 days before")
			require.Equal(t, 1, rowsWith(rows, "actor_id", suspect, "ip_address", newIP, "previous_login", "NULL"), "the incident's sign-in")
		},
	},
	"failed second factor, then success": {
		answer: func(recs []rec) []map[string]string {
			out := []map[string]string{}
			for _, s := range recs {
				if s.key != "user_2fa_success" || !s.in("2026-11-01", "2026-11-09") {
					continue
				}
				n, first, ips := 0, time.Time{}, map[string]bool{}
				for _, f := range recs {
					if f.key == "user_2fa_fail" && f.actor == s.actor && f.in("2026-10-31", "2026-11-09") &&
						!f.at.Before(s.at.Add(-15*time.Minute)) && !f.at.After(s.at) {
						if n == 0 {
							first = f.at
						}
						n++
						if ip, ok := f.str("ip_address"); ok {
							ips[ip] = true
						}
					}
				}
				if n >= 3 {
					out = append(out, map[string]string{"actor_id": s.actor, "succeeded_at": stamp(s.at), "ip_address": s.val("ip_address"), "user_agent": s.val("user_agent"),
						"failures": strconv.Itoa(n), "first_failure": stamp(first), "failure_addresses": strconv.Itoa(len(ips))})
				}
			}
			slices.SortStableFunc(out, func(a, b map[string]string) int {
				if c := strings.Compare(a["succeeded_at"], b["succeeded_at"]); c != 0 {
					return c
				}
				return strings.Compare(a["actor_id"], b["actor_id"])
			})
			return out
		},
		found: func(t *testing.T, rows []map[string]string) {
			require.Equal(t, 1, rowsWith(rows, "actor_id", suspect), "the incident's four failures, not the morning's two")
			require.Equal(t, 1, rowsWith(rows, "actor_id", suspect, "failures", "4", "first_failure", stamp(incident), "ip_address", newIP))
		},
	},
	"timeline of one user": {
		answer: func(recs []rec) []map[string]string {
			out := []map[string]string{}
			from, to := time.Date(2026, 11, 8, 2, 0, 0, 0, time.UTC), time.Date(2026, 11, 8, 6, 0, 0, 0, time.UTC)
			for _, r := range recs {
				if r.dt != "2026-11-08" || r.at.Before(from) || !r.at.Before(to) {
					continue
				}
				named := r.actor == suspect || r.entityType == "User" && r.entity == suspect
				for _, k := range []string{"details_user_id", "details_initiator_id", "details_inviter_id", "details_actor_id"} {
					v, _ := r.str(k)
					named = named || v == suspect
				}
				if !named {
					continue
				}
				role := "subject"
				if r.actor == suspect {
					role = "actor"
				}
				out = append(out, map[string]string{"created_at": stamp(r.at), "event_key": r.key, "role": role, "actor_type": r.actorType, "actor_id": r.actor,
					"entity_type": r.entityType, "entity_id": r.entity, "ip_address": r.val("ip_address"), "user_agent": r.val("user_agent"), "details_json": r.val("details_json")})
			}
			return out
		},
		found: func(t *testing.T, rows []map[string]string) {
			require.Equal(t, 40, rowsWith(rows, "event_key", "search_messages_api", "role", "actor"))
			require.Equal(t, 25, rowsWith(rows, "event_key", "message_deleted", "role", "actor"))
			require.Equal(t, 1, rowsWith(rows, "event_key", "user_role_changed", "entity_id", strconv.Itoa(accomplice)))
		},
	},
	"deletions in bulk": {
		answer: func(recs []rec) []map[string]string {
			keys := []string{"message_deleted", "reaction_deleted", "user_deleted", "tag_deleted", "bot_deleted", "access_token_destroy", "user_removed_from_tag", "tag_removed_from_chat"}
			n := map[[3]string]int{}
			for _, r := range recs {
				if r.in("2026-11-01", "2026-11-09") && slices.Contains(keys, r.key) {
					n[[3]string{stamp(r.at.Truncate(time.Hour)), r.actor, r.key}]++
				}
			}
			out := []map[string]string{}
			for k, c := range n {
				if c >= 10 {
					out = append(out, map[string]string{"hour_start": k[0], "actor_id": k[1], "event_key": k[2], "deleted": strconv.Itoa(c)})
				}
			}
			slices.SortFunc(out, func(a, b map[string]string) int {
				return strings.Compare(a["hour_start"]+a["actor_id"]+"\x00"+a["event_key"], b["hour_start"]+b["actor_id"]+"\x00"+b["event_key"])
			})
			return out
		},
		found: func(t *testing.T, rows []map[string]string) {
			require.Equal(t, 1, rowsWith(rows, "actor_id", suspect, "event_key", "message_deleted", "deleted", "25", "hour_start", stamp(incident)))
		},
	},
	"searches through the API in bulk": {
		answer: func(recs []rec) []map[string]string {
			type agg struct {
				n, results, next int
				first, last      time.Time
			}
			groups := map[[3]string]*agg{}
			for _, r := range recs {
				if !r.in("2026-11-01", "2026-11-09") || r.category != "search" {
					continue
				}
				k := [3]string{r.actorType, r.actor, r.key}
				if groups[k] == nil {
					groups[k] = &agg{first: r.at}
				}
				g := groups[k]
				g.n++
				if v, ok := r.f["details_limit"].(json.Number); ok {
					l, _ := v.Int64()
					g.results += int(l)
				}
				if r.f["details_cursor_present"] == true {
					g.next++
				}
				g.last = r.at
			}
			out := []map[string]string{}
			for k, g := range groups {
				if g.n >= 20 {
					out = append(out, map[string]string{"actor_type": k[0], "actor_id": k[1], "event_key": k[2], "searches": strconv.Itoa(g.n),
						"results": strconv.Itoa(g.results), "next_pages": strconv.Itoa(g.next), "first_search": stamp(g.first), "last_search": stamp(g.last)})
				}
			}
			sortByCount(out, "results", "actor_id", "event_key")
			return out
		},
		found: func(t *testing.T, rows []map[string]string) {
			require.Equal(t, 1, rowsWith(rows, "actor_id", suspect, "event_key", "search_messages_api"), "the incident's 40 searches")
		},
	},
	"admin actions": {
		answer: func(recs []rec) []map[string]string {
			keys := []string{"user_created", "user_deleted", "user_role_changed", "access_token_created", "access_token_updated", "access_token_destroy",
				"bot_scopes_updated", "bot_webhook_settings_updated", "bot_token_recreated", "bot_oauth_client_updated", "bot_deleted",
				"oauth_authorization_granted", "chat_permission_changed"}
			has := func(r rec, k, v string) bool {
				l, _ := r.f[k].([]any)
				return slices.Contains(l, any(v))
			}
			out := []map[string]string{}
			for _, r := range recs {
				if !r.in("2026-11-01", "2026-11-09") || !slices.Contains(keys, r.key) {
					continue
				}
				role, _ := r.str("details_new_company_role")
				widens := role == "admin" || has(r, "details_scopes", "messages:read") || has(r, "details_added_scopes", "messages:read")
				out = append(out, map[string]string{"created_at": stamp(r.at), "event_key": r.key, "actor_id": r.actor, "entity_type": r.entityType, "entity_id": r.entity,
					"details_previous_company_role": r.val("details_previous_company_role"), "details_new_company_role": r.val("details_new_company_role"),
					"details_scopes": r.val("details_scopes"), "details_added_scopes": r.val("details_added_scopes"), "details_client_id": r.val("details_client_id"),
					"ip_address": r.val("ip_address"), "widens_access": strconv.FormatBool(widens)})
			}
			return out
		},
		found: func(t *testing.T, rows []map[string]string) {
			require.Equal(t, 1, rowsWith(rows, "actor_id", suspect, "event_key", "user_role_changed", "entity_id", strconv.Itoa(accomplice), "widens_access", "true"))
			require.Equal(t, 1, rowsWith(rows, "actor_id", suspect, "event_key", "access_token_created", "widens_access", "true"))
			require.Positive(t, rowsWith(rows, "widens_access", "false"))
		},
	},
	"webhook address changes": {
		answer: func(recs []rec) []map[string]string {
			out := []map[string]string{}
			for _, r := range recs {
				c, ok := r.str("details_changes")
				if !r.in("2026-11-01", "2026-11-09") || r.key != "bot_webhook_settings_updated" || !ok {
					continue
				}
				var ch struct {
					URL *struct{ Previous, New *string } `json:"outgoing_url"`
				}
				if json.Unmarshal([]byte(c), &ch) != nil || ch.URL == nil || ch.URL.New == nil {
					continue
				}
				prev := "NULL"
				if ch.URL.Previous != nil {
					prev = *ch.URL.Previous
				}
				out = append(out, map[string]string{"created_at": stamp(r.at), "actor_id": r.actor, "bot_id": r.entity, "previous_url": prev, "new_url": *ch.URL.New})
			}
			return out
		},
		found: func(t *testing.T, rows []map[string]string) {
			require.NotEmpty(t, rows, "the simulator changes webhook addresses")
		},
	},
	"outside working hours": {
		answer: func(recs []rec) []map[string]string {
			msk, err := time.LoadLocation("Europe/Moscow")
			if err != nil {
				panic(err)
			}
			cats := []string{"auth", "employees", "tokens", "bots", "oauth", "security", "search"}
			type agg struct {
				n           int
				first, last time.Time
			}
			groups := map[[2]string]*agg{}
			for _, r := range recs {
				local := r.at.In(msk)
				off := local.Hour() < 8 || local.Hour() > 19 || local.Weekday() == time.Saturday || local.Weekday() == time.Sunday
				if !r.in("2026-11-01", "2026-11-09") || r.actorType != "User" || !slices.Contains(cats, r.category) || !off {
					continue
				}
				k := [2]string{r.actor, r.category}
				if groups[k] == nil {
					groups[k] = &agg{first: r.at}
				}
				groups[k].n++
				groups[k].last = r.at
			}
			out := []map[string]string{}
			for k, g := range groups {
				out = append(out, map[string]string{"actor_id": k[0], "event_category": k[1], "events": strconv.Itoa(g.n), "first_event": stamp(g.first), "last_event": stamp(g.last)})
			}
			sortByCount(out, "events", "actor_id", "event_category")
			return out
		},
		found: func(t *testing.T, rows []map[string]string) {
			require.Equal(t, 1, rowsWith(rows, "actor_id", suspect, "event_category", "search"))
		},
	},
	"reads of the log": {
		answer: func(recs []rec) []map[string]string {
			type agg struct {
				n           int
				first, last time.Time
			}
			groups := map[[3]string]*agg{}
			for _, r := range recs {
				if r.in("2026-11-01", "2026-11-09") && r.key == "audit_events_accessed" {
					k := [3]string{r.actor, r.val("ip_address"), r.val("user_agent")}
					if groups[k] == nil {
						groups[k] = &agg{first: r.at}
					}
					groups[k].n++
					groups[k].last = r.at
				}
			}
			out := []map[string]string{}
			for k, g := range groups {
				out = append(out, map[string]string{"actor_id": k[0], "ip_address": k[1], "user_agent": k[2],
					"exporter": strconv.FormatBool(strings.HasPrefix(k[2], "pachca-export")), "reads": strconv.Itoa(g.n), "first_read": stamp(g.first), "last_read": stamp(g.last)})
			}
			slices.SortFunc(out, func(a, b map[string]string) int {
				for _, c := range []string{"first_read", "actor_id", "ip_address", "user_agent"} {
					if x := cmpNullsLast(a[c], b[c]); x != 0 {
						return x
					}
				}
				return 0
			})
			return out
		},
		found: func(t *testing.T, rows []map[string]string) {
			require.Equal(t, 1, rowsWith(rows, "ip_address", newIP, "user_agent", "curl/8.5.0", "exporter", "false"))
			require.Positive(t, rowsWith(rows, "ip_address", "127.0.0.1", "exporter", "true"), "the exporters' own reads")
		},
	},
}

// sortByCount orders rows as the recipes' ORDER BY count DESC, key...:
// the largest count first, then by the keys.
func sortByCount(rows []map[string]string, count string, keys ...string) {
	slices.SortFunc(rows, func(a, b map[string]string) int {
		x, _ := strconv.Atoi(a[count])
		y, _ := strconv.Atoi(b[count])
		if x != y {
			return y - x
		}
		for _, k := range keys {
			if c := strings.Compare(a[k], b[k]); c != 0 {
				return c
			}
		}
		return 0
	})
}
