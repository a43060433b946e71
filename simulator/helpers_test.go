package simulator_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/simulator"
)

// day returns 00:00 UTC of the n-th day of the test workspace.
func day(n int) time.Time { return time.Date(2026, 11, 1+n, 0, 0, 0, 0, time.UTC) }

// testConfig is a small workspace over three days with ties and midnight events.
func testConfig() simulator.Config {
	cfg := simulator.DefaultConfig()
	cfg.Events, cfg.From, cfg.To, cfg.Seed = 3000, day(0), day(3), 7
	return cfg
}

// start serves cfg on an httptest server and returns the server and base URL.
func start(t *testing.T, cfg simulator.Config) (*simulator.Server, string) {
	t.Helper()
	s, err := simulator.New(cfg)
	require.NoError(t, err)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		require.NoError(t, s.Close())
		ts.Close()
	})
	return s, ts.URL + simulator.BasePath
}

// apiPage is the 200 answer of GET /audit_events.
type apiPage struct {
	Data []json.RawMessage `json:"data"`
	Meta struct {
		Paginate struct {
			NextPage string `json:"next_page"`
			PrevPage string `json:"prev_page"`
			HasNext  bool   `json:"has_next"`
			HasPrev  bool   `json:"has_prev"`
		} `json:"paginate"`
	} `json:"meta"`
}

// apiErrors is the ApiError answer.
type apiErrors struct {
	Errors []struct {
		Key, Message, Code string
		Value              *string
	} `json:"errors"`
}

// eventHead holds the top-level fields of an event.
type eventHead struct {
	ID        string `json:"id"`
	CreatedAt string `json:"created_at"`
	EventKey  string `json:"event_key"`
	ActorID   string `json:"actor_id"`
	ActorType string `json:"actor_type"`
	EntityID  string `json:"entity_id"`
}

func head(t *testing.T, raw []byte) eventHead {
	t.Helper()
	var h eventHead
	require.NoError(t, json.Unmarshal(raw, &h))
	return h
}

// ms formats t as the API does.
func ms(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// query builds GET /audit_events parameters.
func query(start, end time.Time, kv ...string) url.Values {
	v := url.Values{"start_time": {ms(start)}, "end_time": {ms(end)}}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// get sends GET /audit_events with token ("" for none).
func get(t *testing.T, base, token string, q url.Values) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/audit_events?"+q.Encode(), nil)
	require.NoError(t, err)
	return do(t, req, token)
}

func do(t *testing.T, req *http.Request, token string) response {
	t.Helper()
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{resp.StatusCode, resp.Header, body}
}

// post sends POST /messages with a JSON body.
func post(t *testing.T, base, token, body string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/messages", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	return do(t, req, token)
}

func decodePage(t *testing.T, r response) apiPage {
	t.Helper()
	require.Equal(t, http.StatusOK, r.Status, "body: %s", r.Body)
	var p apiPage
	require.NoError(t, json.Unmarshal(r.Body, &p))
	return p
}

func decodeErrors(t *testing.T, r response) apiErrors {
	t.Helper()
	var e apiErrors
	require.NoError(t, json.Unmarshal(r.Body, &e), "body: %s", r.Body)
	require.NotEmpty(t, e.Errors)
	return e
}

// walk follows next_page from the first page of q and returns every event,
// failing on a repeated cursor.
func walk(t *testing.T, base string, q url.Values) [][]byte {
	t.Helper()
	var out [][]byte
	seen := map[string]bool{}
	for {
		p := decodePage(t, get(t, base, "sim-token", q))
		for _, e := range p.Data {
			out = append(out, e)
		}
		if !p.Meta.Paginate.HasNext {
			return out
		}
		next := p.Meta.Paginate.NextPage
		require.False(t, seen[next], "cursor %s repeated", next)
		seen[next] = true
		q = cloneWith(q, "cursor", next)
	}
}

func cloneWith(q url.Values, k, v string) url.Values {
	c := url.Values{}
	for key, vals := range q {
		c[key] = append([]string(nil), vals...)
	}
	c.Set(k, v)
	return c
}

// inRange returns the stored events in [from, to] (inclusive), newest first.
func inRange(events []simulator.Event, from, to time.Time, keep func(simulator.Event) bool) [][]byte {
	var out [][]byte
	for i := len(events) - 1; i >= 0; i-- {
		e := events[i]
		if !e.CreatedAt.Before(from) && !e.CreatedAt.After(to) && (keep == nil || keep(e)) {
			out = append(out, e.Raw)
		}
	}
	return out
}

func retryAfterSeconds(t *testing.T, h http.Header) int {
	t.Helper()
	n, err := strconv.Atoi(h.Get("Retry-After"))
	require.NoError(t, err, "Retry-After %q", h.Get("Retry-After"))
	return n
}
