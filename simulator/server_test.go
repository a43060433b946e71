package simulator_test

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/simulator"
)

func TestGenerationIsDeterministic(t *testing.T) {
	a, err := simulator.New(testConfig())
	require.NoError(t, err)
	b, err := simulator.New(testConfig())
	require.NoError(t, err)
	require.Equal(t, a.Events(), b.Events())

	other := testConfig()
	other.Seed++
	c, err := simulator.New(other)
	require.NoError(t, err)
	require.NotEqual(t, a.Events()[0].ID, c.Events()[0].ID)
}

func TestGeneratedEventsLookReal(t *testing.T) {
	cfg := testConfig()
	cfg.UnknownKeys = true
	s, err := simulator.New(cfg)
	require.NoError(t, err)
	events := s.Events()
	require.Len(t, events, cfg.Events)
	require.True(t, slices.IsSortedFunc(events, func(a, b simulator.Event) int { return a.CreatedAt.Compare(b.CreatedAt) }))

	keys := map[string]int{}
	var sso, dlpNull, callNull, nullIP, longUA, emptyList, unknownField int
	for _, e := range events {
		keys[e.Key]++
		require.False(t, e.CreatedAt.Before(cfg.From) || !e.CreatedAt.Before(cfg.To), e.CreatedAt)
		var ev struct {
			ID        string                     `json:"id"`
			CreatedAt string                     `json:"created_at"`
			Details   map[string]json.RawMessage `json:"details"`
			IP        *string                    `json:"ip_address"`
			UA        *string                    `json:"user_agent"`
		}
		require.NoError(t, json.Unmarshal(e.Raw, &ev))
		require.Equal(t, e.ID, ev.ID)
		require.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, ev.ID)
		require.Equal(t, e.CreatedAt.Format("2006-01-02T15:04:05.000Z"), ev.CreatedAt)
		require.NotNil(t, ev.Details, "details is an object, {} when empty")
		if ev.IP == nil {
			nullIP++
		}
		if ev.UA != nil {
			require.LessOrEqual(t, len([]rune(*ev.UA)), 255)
			if len(*ev.UA) == 255 {
				longUA++
			}
		}
		switch {
		case e.Key == "user_updated" && string(ev.Details["context"]) == `"sso_login"`:
			sso++
		case e.Key == "dlp_violation_detected" && string(ev.Details["action_message"]) == "null":
			dlpNull++
		case strings.HasPrefix(e.Key, "video_call_") && string(ev.Details["started_message_id"]) == "null":
			callNull++
		}
		for _, v := range ev.Details {
			if string(v) == "[]" {
				emptyList++
			}
		}
		if _, ok := ev.Details["risk_score"]; ok {
			unknownField++
		}
	}
	for _, k := range append(simulator.EventKeys(), simulator.UnknownEventKeys()...) {
		require.Positive(t, keys[k], "no %s event", k)
	}
	for name, n := range map[string]int{"sso_login": sso, "null action_message": dlpNull, "null started_message_id": callNull,
		"null ip_address": nullIP, "255-character user agent": longUA, "empty list": emptyList, "unknown details field": unknownField} {
		require.Positive(t, n, "no event with %s", name)
	}
}

func TestAccessedEvents(t *testing.T) {
	cfg := testConfig()
	cfg.AccessedEvents = true
	s, base := start(t, cfg)
	q := query(day(0), day(1))
	before := time.Now().Truncate(time.Millisecond)
	get(t, base, "sim-token", q)
	get(t, base, "sim-token", nil) // 400: the method still ran
	get(t, base, "", q)            // 401: no
	get(t, base, "sim-no-scope", q)
	events := s.Events()
	require.Len(t, events, cfg.Events+2)
	last := events[len(events)-1]
	require.Equal(t, "audit_events_accessed", last.Key)
	require.False(t, last.CreatedAt.Before(before))
	require.Contains(t, string(last.Raw), `"details":{},"ip_address":"127.0.0.1","user_agent":"Go-http-client/1.1"`)
	require.Contains(t, string(last.Raw), `"actor_id":"10001"`)
}

func TestMessages(t *testing.T) {
	s, base := start(t, testConfig())
	r := post(t, base, "sim-token", `{"message":{"entity_type":"user","entity_id":10001,"content":"3 failed 2FA for 10042"}}`)
	require.Equal(t, http.StatusCreated, r.Status, "body: %s", r.Body)
	var created struct {
		Data struct {
			ID         int64  `json:"id"`
			EntityType string `json:"entity_type"`
			EntityID   int64  `json:"entity_id"`
			Content    string `json:"content"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(r.Body, &created))
	require.Equal(t, "user", created.Data.EntityType)
	require.Equal(t, int64(10001), created.Data.EntityID)
	require.Positive(t, created.Data.ID)

	for _, c := range []struct {
		body   string
		status int
		code   string
	}{
		{`not json`, 422, "invalid"},
		{`{}`, 422, "invalid"},
		{`{"message":{"entity_type":"user","content":"x"}}`, 422, "blank"},
		{`{"message":{"entity_type":"user","entity_id":1,"content":""}}`, 422, "blank"},
		{`{"message":{"entity_type":"fax","entity_id":1,"content":"x"}}`, 400, "invalid"},
	} {
		r := post(t, base, "sim-token", c.body)
		require.Equal(t, c.status, r.Status, c.body)
		require.Equal(t, c.code, decodeErrors(t, r).Errors[0].Code, c.body)
	}
	require.Equal(t, http.StatusUnauthorized, post(t, base, "", `{}`).Status)

	msgs := s.Stats().Messages
	require.Len(t, msgs, 1)
	require.Equal(t, simulator.Message{EntityType: "user", EntityID: 10001, Content: "3 failed 2FA for 10042", At: msgs[0].At}, msgs[0])

	// The same, for a test in another process.
	stats, err := http.Get(strings.TrimSuffix(base, simulator.BasePath) + "/_sim/stats")
	require.NoError(t, err)
	defer stats.Body.Close()
	var remote simulator.Stats
	require.NoError(t, json.NewDecoder(stats.Body).Decode(&remote))
	require.Equal(t, msgs[0].Content, remote.Messages[0].Content)
	require.Equal(t, 7, remote.Requests)
}

// TestMessagesLimits: POST /messages refuses what the API does not take: an
// entity_id beyond int32 (the OpenAPI document's format), a content over
// MessageMaxBytes bytes (40,000 by default, the longest message Pachca's guide
// gives) and a direct message to a user the workspace does not have (was:
// taken, as the API cannot), each with a 422 ApiError naming the field, and
// records none (was: all accepted, so that no test could see the exporter
// send a message the API refuses).
func TestMessagesLimits(t *testing.T) {
	s, base := start(t, testConfig())
	body := func(id int64, content string) string {
		b, err := json.Marshal(map[string]any{"message": map[string]any{"entity_type": "user", "entity_id": id, "content": content}})
		require.NoError(t, err)
		return string(b)
	}
	for _, c := range []struct {
		name, body, key, code string
	}{
		{"entity_id beyond int32", body(2147483648, "x"), "entity_id", "invalid"},
		{"content over 40,000 bytes", body(10001, strings.Repeat("я", 20001)), "content", "too_long"},
		{"a user the workspace does not have", body(10001+20, "x"), "entity_id", "not_found"},
		{"the largest int32, no user's", body(2147483647, "x"), "entity_id", "not_found"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := post(t, base, "sim-token", c.body)
			require.Equal(t, http.StatusUnprocessableEntity, r.Status, "body: %s", r.Body)
			e := decodeErrors(t, r).Errors[0]
			require.Equal(t, c.key, e.Key)
			require.Equal(t, c.code, e.Code)
		})
	}
	require.Empty(t, s.Stats().Messages)
	require.Equal(t, http.StatusCreated, post(t, base, "sim-token", body(10001, strings.Repeat("я", 20000))).Status, "at the limit")
	for _, id := range []int64{10001 + 19, 900001, 900020} { // the last user, bots
		require.Equal(t, http.StatusCreated, post(t, base, "sim-token", body(id, "x")).Status, id)
	}
	require.Len(t, s.Stats().Messages, 4)
	other := testConfig()
	other.OwnerID = 20001
	_, elsewhere := start(t, other)
	require.Equal(t, http.StatusCreated, post(t, elsewhere, "sim-token", body(20001, "x")).Status, "another workspace's owner")

	cfg := testConfig()
	cfg.MessageMaxBytes = 10
	_, small := start(t, cfg)
	require.Equal(t, http.StatusCreated, post(t, small, "sim-token", body(10001, "0123456789")).Status)
	require.Equal(t, http.StatusUnprocessableEntity, post(t, small, "sim-token", body(10001, "0123456789a")).Status)
	cfg.MessageMaxBytes = -1
	_, err := simulator.New(cfg)
	require.EqualError(t, err, "simulator: message-max-bytes: -1 is negative")
}

func TestStartAndClose(t *testing.T) {
	s, err := simulator.New(testConfig())
	require.NoError(t, err)
	base, err := s.Start("127.0.0.1:0")
	require.NoError(t, err)
	require.Regexp(t, `^http://127\.0\.0\.1:\d+/api/shared/v1$`, base)
	_, err = s.Start("127.0.0.1:0")
	require.Error(t, err, "a second Start")

	r := get(t, base, "sim-token", query(day(0), day(1)))
	require.Equal(t, http.StatusOK, r.Status)
	require.Equal(t, "application/json; charset=utf-8", r.Header.Get("Content-Type"))
	nf := get(t, strings.TrimSuffix(base, "/api/shared/v1")+"/nope", "sim-token", nil)
	require.Equal(t, http.StatusNotFound, nf.Status)

	require.NoError(t, s.Close())
	require.NoError(t, s.Close())
	_, err = http.Get(base + "/audit_events")
	require.Error(t, err)
}

func TestCloseWakesSleepingHandlers(t *testing.T) {
	cfg := testConfig()
	cfg.Latency = time.Hour
	s, err := simulator.New(cfg)
	require.NoError(t, err)
	base, err := s.Start("127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		req, err := http.NewRequest(http.MethodGet, base+"/audit_events", nil)
		if err != nil {
			done <- err
			return
		}
		req.Header.Set("Authorization", "Bearer sim-token") // a 401 would come before the latency
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	require.NoError(t, s.Close())
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a request still hangs after Close")
	}
}

func TestConfigErrors(t *testing.T) {
	for name, mutate := range map[string]func(*simulator.Config){
		"no token":        func(c *simulator.Config) { c.Token = "" },
		"reserved":        func(c *simulator.Config) { c.Token = simulator.TokenNoPlan },
		"empty range":     func(c *simulator.Config) { c.To = c.From },
		"fault kind":      func(c *simulator.Config) { c.FaultRate, c.Faults = 0.1, []string{"meteor"} },
		"fault rate":      func(c *simulator.Config) { c.FaultRate = 2 },
		"burst":           func(c *simulator.Config) { c.RateLimit, c.Burst = 5, 0 },
		"block for":       func(c *simulator.Config) { c.BlockAfter, c.BlockFor = 3, 0 },
		"negative events": func(c *simulator.Config) { c.Events = -1 },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig()
			mutate(&cfg)
			_, err := simulator.New(cfg)
			require.Error(t, err)
		})
	}
	cfg := testConfig()
	cfg.Events = 0
	s, err := simulator.New(cfg)
	require.NoError(t, err)
	require.Empty(t, s.Events())
}
