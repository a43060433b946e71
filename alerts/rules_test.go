package alerts

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/pachca-export/pachca-export/transform"
)

var t0 = time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)

// rec is a record of key by user actor at t0+at.
func rec(id, key, actor string, at time.Duration) *transform.Record {
	return &transform.Record{
		ID: id, EventKey: key, CreatedAt: t0.Add(at).UnixMilli(),
		ActorID: actor, ActorType: "User", EntityID: actor, EntityType: "User",
		IPAddress: transform.NullString{Valid: true, Str: "203.0.113." + id}, DetailsJSON: "{}",
	}
}

func thresholdRule(n int, window time.Duration) Rule {
	return Rule{Name: "Suspicious logins", Kind: KindThreshold, EventKeys: []string{"user_2fa_fail"},
		Threshold: n, Window: window, Recipients: []string{"10001"}}
}

func TestThresholdBursts(t *testing.T) {
	type burst struct {
		actor       string
		count       int
		first, last time.Duration
	}
	m := time.Minute
	// fails makes user_2fa_fail records of one actor at the given offsets.
	fails := func(actor string, ats ...time.Duration) []*transform.Record {
		var out []*transform.Record
		for _, at := range ats {
			out = append(out, rec(fmt.Sprintf("%s-%d", actor, at/time.Millisecond), "user_2fa_fail", actor, at))
		}
		return out
	}
	cases := []struct {
		name    string
		n       int
		records []*transform.Record
		want    []burst
	}{
		{name: "exactly N within the window", n: 3, records: fails("1", 0, m, 2*m), want: []burst{{"1", 3, 0, 2 * m}}},
		{name: "N-1 within the window", n: 3, records: fails("1", 0, m)},
		{name: "N spanning exactly the window", n: 3, records: fails("1", 0, 5*m, 10*m)},
		{name: "N spanning just under the window", n: 3, records: fails("1", 0, 5*m, 10*m-time.Millisecond), want: []burst{{"1", 3, 0, 10*m - time.Millisecond}}},
		{name: "out of order", n: 3, records: fails("1", 2*m, 0, m), want: []burst{{"1", 3, 0, 2 * m}}},
		{name: "two separate bursts", n: 3, records: fails("1", 0, m, 2*m, 30*m, 31*m, 32*m),
			want: []burst{{"1", 3, 0, 2 * m}, {"1", 3, 30 * m, 32 * m}}},
		{name: "overlapping runs are one burst", n: 3, records: fails("1", 0, m, 2*m, 5*m, 8*m, 11*m, 14*m),
			want: []burst{{"1", 7, 0, 14 * m}}},
		{name: "full runs without a shared event are two bursts", n: 2, records: fails("1", 0, 30*time.Second, 30*m, 30*m+30*time.Second),
			want: []burst{{"1", 2, 0, 30 * time.Second}, {"1", 2, 30 * m, 30*m + 30*time.Second}}},
		{name: "a slow event between bursts belongs to neither", n: 3, records: fails("1", 0, m, 2*m, 20*m, 40*m, 41*m, 42*m),
			want: []burst{{"1", 3, 0, 2 * m}, {"1", 3, 40 * m, 42 * m}}},
		{name: "two actors below it together", n: 3, records: cat(fails("1", 0, m), fails("2", 0, m))},
		{name: "two actors over it", n: 3, records: cat(fails("2", m, 2*m, 3*m), fails("1", 0, m, 2*m)),
			want: []burst{{"1", 3, 0, 2 * m}, {"2", 3, m, 3 * m}}},
		{name: "a record observed twice counts once", n: 3, records: cat(fails("1", 0, m), fails("1", 0, m))},
		{name: "other event keys do not count", n: 3,
			records: append(fails("1", 0, m), rec("x", "user_2fa_success", "1", 90*time.Second), rec("y", "user_login", "1", 100*time.Second))},
		{name: "records without an actor are skipped", n: 2, records: fails("", 0, m)},
		{name: "threshold 1: every event", n: 1, records: fails("1", 0, m), want: []burst{{"1", 1, 0, 0}, {"1", 1, m, m}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, err := New(Config{Rules: []Rule{thresholdRule(tc.n, 10*m)}})
			require.NoError(t, err)
			for _, r := range tc.records {
				e.Observe(r)
			}
			var got []burst
			for _, f := range e.Findings() {
				require.Equal(t, "Suspicious logins", f.Rule)
				require.Equal(t, "user_2fa_fail", f.EventKey)
				require.Len(t, f.EventIDs, f.Count)
				got = append(got, burst{f.ActorID, f.Count, f.First.Sub(t0), f.Last.Sub(t0)})
			}
			require.Equal(t, tc.want, got)
		})
	}
}

func cat(rs ...[]*transform.Record) []*transform.Record {
	var out []*transform.Record
	for _, r := range rs {
		out = append(out, r...)
	}
	return out
}

func TestThresholdFindingFields(t *testing.T) {
	r := thresholdRule(3, 10*time.Minute)
	r.EventKeys = []string{"user_2fa_fail", "user_login"}
	e, err := New(Config{Rules: []Rule{r}})
	require.NoError(t, err)
	e.Observe(rec("a", "user_2fa_fail", "12345", 0))
	e.Observe(rec("b", "user_login", "12345", time.Minute))
	last := rec("c", "user_2fa_fail", "12345", 4*time.Minute+12*time.Second)
	last.IPAddress = transform.NullString{} // the IP is the last one known
	e.Observe(last)
	require.Equal(t, []Finding{{
		Rule: "Suspicious logins", Kind: KindThreshold, ActorID: "12345", ActorType: "User",
		EventKey: "user_2fa_fail, user_login", Count: 3, First: t0, Last: t0.Add(4*time.Minute + 12*time.Second),
		EventIDs: []string{"a", "b", "c"}, IP: "203.0.113.b",
	}}, e.Findings())
	require.Equal(t, "threshold/Suspicious logins/User:12345/a", e.Findings()[0].Key())
}

func TestWatchFindings(t *testing.T) {
	watch := Rule{Name: "Watched", Kind: KindWatch, EventKeys: []string{"dlp_violation_detected", "user_role_changed"}, Recipients: []string{"10001"}}
	e, err := New(Config{Rules: []Rule{watch, thresholdRule(2, time.Minute)}})
	require.NoError(t, err)
	role := rec("r1", "user_role_changed", "1", time.Hour)
	role.EntityID, role.DetailsJSON = "777", `{"new_company_role":"admin"}`
	e.Observe(role)
	e.Observe(rec("d1", "dlp_violation_detected", "2", 0))
	e.Observe(rec("d1", "dlp_violation_detected", "2", 0)) // again: once
	e.Observe(rec("l1", "user_login", "2", 0))             // no rule names it
	got := e.Findings()
	require.Equal(t, []Finding{
		{Rule: "Watched", Kind: KindWatch, ActorID: "2", ActorType: "User", EventKey: "dlp_violation_detected", Count: 1,
			First: t0, Last: t0, EventIDs: []string{"d1"}, IP: "203.0.113.d1", EntityID: "2", EntityType: "User", Details: "{}"},
		{Rule: "Watched", Kind: KindWatch, ActorID: "1", ActorType: "User", EventKey: "user_role_changed", Count: 1,
			First: t0.Add(time.Hour), Last: t0.Add(time.Hour), EventIDs: []string{"r1"}, IP: "203.0.113.r1",
			EntityID: "777", EntityType: "User", Details: `{"new_company_role":"admin"}`},
	}, got)
	require.Equal(t, "watch/Watched/d1", got[0].Key())
}

// TestKeysStableAsEventsArrive: findings returned after one day keep their
// Key when later days are observed, even when a burst grows across midnight.
func TestKeysStableAsEventsArrive(t *testing.T) {
	e, err := New(Config{Rules: []Rule{thresholdRule(3, 10*time.Minute)}})
	require.NoError(t, err)
	day1 := []time.Duration{0, time.Minute, 2 * time.Minute, 13*time.Hour + 55*time.Minute, 13*time.Hour + 58*time.Minute, 13*time.Hour + 59*time.Minute}
	for i, at := range day1 {
		e.Observe(rec(fmt.Sprint("a", i), "user_2fa_fail", "1", at))
	}
	before := e.Findings()
	require.Len(t, before, 2)
	for i, at := range []time.Duration{14*time.Hour + time.Minute, 14*time.Hour + 3*time.Minute, 20 * time.Hour} {
		e.Observe(rec(fmt.Sprint("b", i), "user_2fa_fail", "1", at))
	}
	after := e.Findings()
	require.Len(t, after, 2)
	for i := range before {
		require.Equal(t, before[i].Key(), after[i].Key())
	}
	require.Equal(t, 5, after[1].Count, "the second burst grew past midnight")
}

func TestRender(t *testing.T) {
	burst := Finding{Rule: "Suspicious logins", Kind: KindThreshold, ActorID: "12345", ActorType: "User", EventKey: "user_2fa_fail",
		Count: 6, First: t0, Last: t0.Add(4*time.Minute + 12*time.Second), EventIDs: []string{"a", "b"}, IP: "203.0.113.54"}
	watch := Finding{Rule: "Watched", Kind: KindWatch, ActorID: "1", ActorType: "User", EventKey: "user_role_changed", Count: 1,
		First: t0, Last: t0, EventIDs: []string{"r1"}, EntityID: "777", EntityType: "User"}
	overnight := burst
	overnight.Last, overnight.IP = t0.Add(16*time.Hour), ""
	cases := []struct {
		name     string
		template string
		kind     string
		f        Finding
		want     string
		errText  string
	}{
		{name: "default threshold", kind: KindThreshold, f: burst,
			want: "Suspicious logins: 6 user_2fa_fail events for actor 12345 (User) between 2026-11-01T10:00:00Z and 10:04:12Z, last from IP 203.0.113.54"},
		{name: "default threshold over midnight", kind: KindThreshold, f: overnight,
			want: "Suspicious logins: 6 user_2fa_fail events for actor 12345 (User) between 2026-11-01T10:00:00Z and 2026-11-02T02:00:00Z"},
		{name: "default watch", kind: KindWatch, f: watch,
			want: "Watched: user_role_changed by actor 1 (User) at 2026-11-01T10:00:00Z, entity 777 (User), event r1"},
		{name: "custom", kind: KindThreshold, f: burst, template: "{{.Count}}x <@{{.ActorID}}> from {{utc .First}}: {{join .EventIDs \",\"}}\n",
			want: "6x <@12345> from 2026-11-01T10:00:00Z: a,b"},
		{name: "unknown field", kind: KindThreshold, f: burst, template: "{{.Actor}}",
			errText: `template: Suspicious logins:1:2: executing "Suspicious logins" at <.Actor>: can't evaluate field Actor in type alerts.Finding`},
		{name: "syntax", kind: KindThreshold, f: burst, template: "{{.Count",
			errText: `template: Suspicious logins:1: unclosed action`},
		{name: "empty", kind: KindThreshold, f: burst, template: "{{if false}}x{{end}}  ",
			errText: "the template renders an empty message"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Render(Rule{Name: tc.f.Rule, Kind: tc.kind, Template: tc.template}, tc.f)
			if tc.errText != "" {
				require.EqualError(t, err, tc.errText)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestValidate(t *testing.T) {
	good := func() Rule { return thresholdRule(5, 10*time.Minute) }
	watch := Rule{Name: "Watched", Kind: KindWatch, EventKeys: []string{"dlp_violation_detected"}, Recipients: []string{"10001", "10002"}}
	cases := []struct {
		name  string
		rules func() []Rule
		want  []string // the joined errors, in order; nil = valid
	}{
		{name: "no rules", rules: func() []Rule { return nil }},
		{name: "good", rules: func() []Rule { return []Rule{good(), watch} }},
		{name: "threshold 0 and no window", rules: func() []Rule {
			r := good()
			r.Threshold, r.Window = 0, 0
			return []Rule{r}
		}, want: []string{"rules[0].threshold: must be at least 1", "rules[0].window: must be above 0 (e.g. 10m)"}},
		{name: "unknown kind", rules: func() []Rule { r := good(); r.Kind = "burst"; return []Rule{r} },
			want: []string{`rules[0].kind: unknown kind "burst" (threshold, watch)`}},
		{name: "no kind, no name", rules: func() []Rule { r := good(); r.Kind, r.Name = "", " "; return []Rule{r} },
			want: []string{"rules[0].name: required", "rules[0].kind: required (threshold, watch)"}},
		{name: "watch with threshold", rules: func() []Rule { w := watch; w.Threshold, w.Window = 3, time.Minute; return []Rule{w} },
			want: []string{"rules[0].threshold: only threshold rules take a threshold", "rules[0].window: only threshold rules take a window"}},
		{name: "duplicate names", rules: func() []Rule { w := watch; w.Name = good().Name; return []Rule{good(), w} },
			want: []string{`rules[1].name: "Suspicious logins" is also the name of rules[0]`}},
		{name: "event keys", rules: func() []Rule {
			r := good()
			r.EventKeys = []string{"user_2fa_failed", "", "user_2fa_fail", "user_2fa_fail"}
			return []Rule{r}
		}, want: []string{`rules[0].event_keys[0]: unknown event key "user_2fa_failed"`, "rules[0].event_keys[1]: empty event key", "rules[0].event_keys[3]: user_2fa_fail is listed twice"}},
		{name: "no event keys", rules: func() []Rule { r := good(); r.EventKeys = nil; return []Rule{r} },
			want: []string{"rules[0].event_keys: required: at least one event key"}},
		{name: "no recipients", rules: func() []Rule { r := good(); r.Recipients = nil; return []Rule{r} },
			want: []string{"rules[0].recipients: required: at least one user id"}},
		{name: "bad recipients", rules: func() []Rule { r := good(); r.Recipients = []string{"bob", "10001", "0", "10001"}; return []Rule{r} },
			want: []string{`rules[0].recipients[0]: "bob" is not a user id (a positive integer)`, `rules[0].recipients[2]: "0" is not a user id (a positive integer)`, "rules[0].recipients[3]: 10001 is listed twice"}},
		{name: "template", rules: func() []Rule { w := watch; w.Template = "{{.Nope}}"; return []Rule{good(), w} },
			want: []string{`rules[1].template: template: Watched:1:2: executing "Watched" at <.Nope>: can't evaluate field Nope in type alerts.Finding`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Config{Rules: tc.rules()}.Validate()
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, strings.Join(tc.want, "\n"))
			_, err = New(Config{Rules: tc.rules()})
			require.Error(t, err, "New validates")
		})
	}
}

// TestYAML: the section decodes strictly from pipeline.yaml syntax; user ids
// may be written as numbers or strings.
func TestYAML(t *testing.T) {
	const doc = `
rules:
  - name: Suspicious logins
    kind: threshold
    event_keys: [user_2fa_fail]
    threshold: 5
    window: 10m
    recipients: [10001, "10002"]
  - name: Watched
    kind: watch
    event_keys: [dlp_violation_detected, user_role_changed, access_token_created]
    recipients: [10001]
    template: "{{.EventKey}} by {{.ActorID}}"
`
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	var c Config
	require.NoError(t, dec.Decode(&c))
	require.NoError(t, c.Validate())
	require.Equal(t, Config{Rules: []Rule{
		{Name: "Suspicious logins", Kind: KindThreshold, EventKeys: []string{"user_2fa_fail"}, Threshold: 5, Window: 10 * time.Minute, Recipients: []string{"10001", "10002"}},
		{Name: "Watched", Kind: KindWatch, EventKeys: []string{"dlp_violation_detected", "user_role_changed", "access_token_created"}, Recipients: []string{"10001"}, Template: "{{.EventKey}} by {{.ActorID}}"},
	}}, c)
}
