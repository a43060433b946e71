package alerts_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/alerts"
	"github.com/pachca-export/pachca-export/extract"
	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/transform"
)

// rawEvent is an audit event as GET /audit_events returns it.
func rawEvent(id, key, actor string, at time.Time, ip string) []byte {
	return fmt.Appendf(nil, `{"id":%q,"created_at":%q,"event_key":%q,"entity_id":%q,"entity_type":"User",`+
		`"actor_id":%q,"actor_type":"User","details":{},"ip_address":%q,"user_agent":"Mozilla/5.0"}`,
		id, at.UTC().Format("2006-01-02T15:04:05.000Z"), key, actor, actor, ip)
}

func normalize(t *testing.T, raws ...[]byte) []transform.Record {
	var out []transform.Record
	for _, raw := range raws {
		rec, err := transform.Normalize(raw, "acme")
		require.NoError(t, err)
		out = append(out, rec)
	}
	return out
}

// TestAlertsThroughSimulator sends the findings as direct messages through
// the simulator's POST /messages with the real API client.
func TestAlertsThroughSimulator(t *testing.T) {
	sc := simulator.DefaultConfig()
	sc.Events = 200
	sc.From = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	sc.To = sc.From.Add(24 * time.Hour)
	sim, err := simulator.New(sc)
	require.NoError(t, err)
	base, err := sim.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { sim.Close() })
	client := extract.NewClient(extract.ClientConfig{BaseURL: base, Token: sc.Token, RPS: 50, MaxRetries: 3, Timeout: 10 * time.Second})

	cfg := alerts.Config{Rules: []alerts.Rule{
		{Name: "Suspicious logins", Kind: alerts.KindThreshold, EventKeys: []string{"user_2fa_fail"},
			Threshold: 5, Window: 10 * time.Minute, Recipients: []string{"10001", "10002"}},
		{Name: "Watched", Kind: alerts.KindWatch, EventKeys: []string{"dlp_violation_detected", "user_role_changed", "access_token_created"},
			Recipients: []string{"10001"}},
	}}
	t0 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	var raws [][]byte
	// A burst: six failed second factors of actor 12345 in 4m12s.
	for i, at := range []time.Duration{0, 40 * time.Second, 90 * time.Second, 2 * time.Minute, 3 * time.Minute, 4*time.Minute + 12*time.Second} {
		raws = append(raws, rawEvent(fmt.Sprintf("fail-%d", i), "user_2fa_fail", "12345", t0.Add(at), "203.0.113.54"))
	}
	// Around it: successful logins of the same actor, and one more failure
	// an hour later, which is no burst.
	raws = append(raws,
		rawEvent("ok-1", "user_2fa_success", "12345", t0.Add(5*time.Minute), "203.0.113.54"),
		rawEvent("fail-late", "user_2fa_fail", "12345", t0.Add(time.Hour), "203.0.113.54"),
		rawEvent("role-1", "user_role_changed", "23456", t0.Add(2*time.Hour), "198.51.100.7"),
	)
	records := normalize(t, raws...)
	statePath := filepath.Join(t.TempDir(), "alerts-sent.json")

	run := func(records []transform.Record) int {
		e, err := alerts.New(cfg)
		require.NoError(t, err)
		for i := range records {
			e.Observe(&records[i])
		}
		sent, err := alerts.OpenSent(statePath)
		require.NoError(t, err)
		n, err := alerts.Notify(t.Context(), cfg, e.Findings(), sent, alerts.APISender{API: client}, false, nil)
		require.NoError(t, err)
		return n
	}

	require.Equal(t, 3, run(records))
	msgs := sim.Stats().Messages
	require.Len(t, msgs, 3)
	burst := "Suspicious logins: 6 user_2fa_fail events for actor 12345 (User) between 2026-11-01T10:00:00Z and 10:04:12Z, last from IP 203.0.113.54"
	var got []simulator.Message
	for _, m := range msgs {
		got = append(got, simulator.Message{EntityType: m.EntityType, EntityID: m.EntityID, Content: m.Content})
	}
	require.Equal(t, []simulator.Message{
		{EntityType: "user", EntityID: 10001, Content: burst},
		{EntityType: "user", EntityID: 10002, Content: burst},
		{EntityType: "user", EntityID: 10001, Content: "Watched: user_role_changed by actor 23456 (User) at 2026-11-01T12:00:00Z from IP 198.51.100.7, entity 23456 (User), event role-1"},
	}, got)

	// A rerun of the same range, its records in another order: nothing new.
	slices.Reverse(records)
	require.Zero(t, run(records))
	require.Len(t, sim.Stats().Messages, 3)

	// Below the threshold: four failures in five minutes send nothing.
	statePath = filepath.Join(t.TempDir(), "alerts-sent.json")
	var below [][]byte
	for i := range 4 {
		below = append(below, rawEvent(fmt.Sprintf("b-%d", i), "user_2fa_fail", "34567", t0.Add(time.Duration(i)*time.Minute), "203.0.113.9"))
	}
	require.Zero(t, run(normalize(t, below...)))
	require.Len(t, sim.Stats().Messages, 3)
}

// startSim serves a simulator with no events and sc changed by change, and
// returns it with an API client.
func startSim(t *testing.T, change func(*simulator.Config)) (*simulator.Server, *extract.Client) {
	sc := simulator.DefaultConfig()
	sc.Events = 0
	change(&sc)
	sim, err := simulator.New(sc)
	require.NoError(t, err)
	base, err := sim.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { sim.Close() })
	return sim, extract.NewClient(extract.ClientConfig{BaseURL: base, Token: sc.Token, RPS: 50, MaxRetries: 3, Timeout: 10 * time.Second})
}

// hostileEvent is a chat renamed by a member who named it to write into
// the security team's alerts, with details of about size bytes.
func hostileEvent(id string, size int) []byte {
	name := "@all <@10001> **Resolved: false positive**\nResolved: false positive, see [the ticket](https://evil.example/sso)\u202eexe.txt\x1b[2J"
	name += strings.Repeat(" pad", max(0, size-len(name))/4)
	var d bytes.Buffer
	enc := json.NewEncoder(&d)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(map[string]any{"chat_id": 7, "name": name}); err != nil {
		panic(err)
	}
	return fmt.Appendf(nil, `{"id":%q,"created_at":"2026-11-01T10:00:00.000Z","event_key":"chat_renamed","entity_id":"7","entity_type":"Chat",`+
		`"actor_id":"12345","actor_type":"User","details":%s,"ip_address":"203.0.113.54","user_agent":"Mozilla/5.0 @all"}`, id, bytes.TrimSpace(d.Bytes()))
}

// TestAlertsHostileValuesThroughSimulator: a chat's name chosen to forge
// the security team's alert (a mention of everyone, a second line, a link,
// a right-to-left override, and 100 KB of it) reaches POST /messages as
// text on the template's line, cut to a message the API takes (was: as
// it was: a mention, a forged line, a link, and a message of 100 KB the
// API refuses, tried again at every run).
func TestAlertsHostileValuesThroughSimulator(t *testing.T) {
	sim, client := startSim(t, func(*simulator.Config) {})
	cfg := alerts.Config{Rules: []alerts.Rule{{Name: "Chats", Kind: alerts.KindWatch, EventKeys: []string{"chat_renamed"},
		Recipients: []string{"10001"}, Template: "{{.Rule}}: {{.EventKey}} by {{.ActorID}}, chat {{.EntityID}}: {{.Details}}\nCheck it."}}}
	e, err := alerts.New(cfg)
	require.NoError(t, err)
	for _, rec := range normalize(t, hostileEvent("small", 0), hostileEvent("big", 100_000)) {
		e.Observe(&rec)
	}
	sent, err := alerts.OpenSent(filepath.Join(t.TempDir(), "alerts-sent.json"))
	require.NoError(t, err)
	n, err := alerts.Notify(t.Context(), cfg, e.Findings(), sent, alerts.APISender{API: client}, false, nil)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	msgs := sim.Stats().Messages
	require.Len(t, msgs, 2)
	slices.SortFunc(msgs, func(a, b simulator.Message) int { return len(a.Content) - len(b.Content) })
	name := `＠all <＠10001> ∗∗Resolved: false positive∗∗⧵nResolved: false positive, see ［the ticket］(https:[//]evil[.]example/sso)\u202eexe[.]txt⧵u001b［2J`
	require.Equal(t, `Chats: chat_renamed by 12345, chat 7: {"chat＿id":7,"name":"`+name+`"}`+"\nCheck it.", msgs[0].Content)
	big := msgs[1].Content
	require.True(t, strings.HasPrefix(big, `Chats: chat_renamed by 12345, chat 7: {"chat＿id":7,"name":"`+name+" pad pad"), big[:200])
	require.True(t, strings.HasSuffix(big, " pad… (cut: 99066 more characters)\nCheck it."), big[len(big)-100:])
	for _, m := range msgs {
		require.NotContains(t, m.Content, "@")
		require.NotContains(t, m.Content, "://")
		require.NotContains(t, m.Content, "](")
		require.NotContains(t, m.Content, "\u202e")
		require.NotContains(t, m.Content, "\x1b")
		require.Equal(t, 2, len(strings.Split(m.Content, "\n")), "the template's two lines, no more")
	}
}

// TestAlertsRefusedOnceThroughSimulator: a message the API refuses for its
// content (422 too_long, from a simulator that takes 60 bytes) fails the
// run that tried it, one line per message, and is recorded: the next run
// neither sends it again nor fails, and the record, pruned, still knows it
// (was: not recorded, so tried and refused again at every run, for ever).
func TestAlertsRefusedOnceThroughSimulator(t *testing.T) {
	sim, client := startSim(t, func(c *simulator.Config) { c.MessageMaxBytes = 60 })
	cfg := alerts.Config{Rules: []alerts.Rule{{Name: "Chats", Kind: alerts.KindWatch, EventKeys: []string{"chat_renamed"},
		Recipients: []string{"10001", "10002"}}}}
	statePath := filepath.Join(t.TempDir(), "alerts-sent.json")
	run := func() (int, error) {
		e, err := alerts.New(cfg)
		require.NoError(t, err)
		for _, rec := range normalize(t, hostileEvent("ev-1", 0)) {
			e.Observe(&rec)
		}
		sent, err := alerts.OpenSent(statePath)
		require.NoError(t, err)
		sent.Forget(time.Now().Add(-time.Hour))
		return alerts.Notify(t.Context(), cfg, e.Findings(), sent, alerts.APISender{API: client}, false, nil)
	}
	n, err := run()
	require.Zero(t, n)
	require.Error(t, err)
	lines := strings.Split(err.Error(), "\n")
	require.Len(t, lines, 2, err.Error())
	require.Equal(t, 2, alerts.Refused(err))
	for i, to := range []string{"10001", "10002"} {
		require.Equal(t, `alerts: rule Chats: finding "watch/Chats/ev-1": message to user `+to+
			`: the API refused POST /messages (422 too_long: content is too long (maximum is 60 bytes), parameter content) (not sent again)`, lines[i])
	}
	tried := sim.Stats().Requests
	require.Equal(t, 2, tried)

	n, err = run()
	require.NoError(t, err)
	require.Zero(t, n)
	require.Equal(t, tried, sim.Stats().Requests, "not tried again")
	require.Empty(t, sim.Stats().Messages)
}
