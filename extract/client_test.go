package extract

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type reply struct {
	status int
	header map[string]string
	body   string
	reset  bool // close the connection without an answer
	short  bool // announce a longer body than sent
}

const okBody = `{"data":[{"id":"a","created_at":"2026-11-01T10:00:00.000Z","event_key":"user_login"}],"meta":{"paginate":{"next_page":"c2","has_next":false}}}`

// scripted serves the replies in order, then okBody.
func scripted(t *testing.T, replies ...reply) (*httptest.Server, *int) {
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		i := n
		n++
		mu.Unlock()
		rp := reply{status: 200, body: okBody}
		if i < len(replies) {
			rp = replies[i]
		}
		if rp.reset {
			conn, _, err := w.(http.Hijacker).Hijack()
			require.NoError(t, err)
			if tc, ok := conn.(interface{ SetLinger(int) error }); ok {
				tc.SetLinger(0)
			}
			conn.Close()
			return
		}
		for k, v := range rp.header {
			w.Header().Set(k, v)
		}
		if rp.short {
			w.Header().Set("Content-Length", strconv.Itoa(len(rp.body)*2))
		}
		w.WriteHeader(rp.status)
		w.Write([]byte(rp.body))
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func testClient(base string) (*Client, *[]time.Duration) {
	c := NewClient(ClientConfig{BaseURL: base, Token: "t", MaxRetries: 3, Timeout: 2 * time.Second})
	var slept []time.Duration
	var mu sync.Mutex
	c.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		slept = append(slept, d)
		mu.Unlock()
		return nil
	}
	return c, &slept
}

func TestPageRetryOrFail(t *testing.T) {
	apiErr := func(code string) string {
		return `{"errors":[{"key":"start_time","value":null,"message":"bad","code":"` + code + `","payload":null}]}`
	}
	oauth := `{"error":"invalid_token","error_description":"Access token is missing"}`
	cases := []struct {
		name     string
		replies  []reply
		requests int    // requests sent in all
		errText  string // "" = success
	}{
		{name: "ok", requests: 1},
		{name: "500 then ok", replies: []reply{{status: 500, body: "oops"}}, requests: 2},
		{name: "502 then ok", replies: []reply{{status: 502, body: "<html>bad gateway</html>"}}, requests: 2},
		{name: "503 with Retry-After", replies: []reply{{status: 503, header: map[string]string{"Retry-After": "7"}}}, requests: 2},
		{name: "reset then ok", replies: []reply{{reset: true}}, requests: 2},
		{name: "truncated body", replies: []reply{{status: 200, body: okBody[:40], short: true}}, requests: 2},
		{name: "html with 200", replies: []reply{{status: 200, body: "<html><body>Maintenance</body></html>"}}, requests: 2},
		{name: "json without data", replies: []reply{{status: 200, body: `{"meta":{}}`}}, requests: 2},
		{name: "has_next without cursor", replies: []reply{{status: 200, body: `{"data":[],"meta":{"paginate":{"has_next":true}}}`}}, requests: 2},
		{name: "gives up", replies: []reply{{status: 500}, {status: 500}, {status: 500}, {status: 500}}, requests: 4, errText: "giving up after 3 retries: server error 500"},
		{name: "400", replies: []reply{{status: 400, body: apiErr("required")}}, requests: 1, errText: "the API refused the request (400 required: bad, parameter start_time)"},
		{name: "401", replies: []reply{{status: 401, body: oauth}}, requests: 1, errText: "the API rejected the token (401 invalid_token: Access token is missing)"},
		{name: "402", replies: []reply{{status: 402, body: apiErr("payment_required")}}, requests: 1, errText: "Corporation plan"},
		{name: "403", replies: []reply{{status: 403, body: `{"error":"insufficient_scope","error_description":"no"}`}}, requests: 1, errText: "scope audit_events:read"},
		{name: "404", replies: []reply{{status: 404, body: "not found"}}, requests: 1, errText: "check source.base_url"},
		{name: "422", replies: []reply{{status: 422, body: apiErr("invalid_date_range")}}, requests: 1, errText: "invalid_date_range"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, n := scripted(t, tc.replies...)
			c, slept := testClient(srv.URL)
			p, err := c.Page(t.Context(), Query{Start: time.Unix(0, 0), End: time.Unix(10, 0)}, "")
			require.Equal(t, tc.requests, *n)
			if tc.errText != "" {
				require.ErrorContains(t, err, tc.errText)
				return
			}
			require.NoError(t, err)
			require.Len(t, p.Events, 1)
			require.Equal(t, "a", p.Events[0].ID)
			require.EqualValues(t, tc.requests-1, c.Stats().Retries.Load())
			if tc.name == "503 with Retry-After" {
				require.Equal(t, []time.Duration{7 * time.Second}, *slept)
			}
		})
	}
}

func TestRangeTooLarge(t *testing.T) {
	srv, _ := scripted(t, reply{status: 422, body: `{"errors":[{"key":"end_time","value":null,"message":"Selected date range is too large","code":"invalid_date_range","payload":null}]}`})
	c, _ := testClient(srv.URL)
	_, err := c.Page(t.Context(), Query{}, "")
	require.True(t, IsRangeTooLarge(err))
	require.False(t, IsRangeTooLarge(&APIError{Status: 401}))
}

// TestThrottled: a 429 pauses for its Retry-After before the next request.
func TestThrottled(t *testing.T) {
	srv, n := scripted(t, reply{status: 429, header: map[string]string{"Retry-After": "1"}})
	c, _ := testClient(srv.URL)
	c.limiter = NewLimiter(100)
	start := time.Now()
	_, err := c.Page(t.Context(), Query{}, "")
	require.NoError(t, err)
	require.GreaterOrEqual(t, time.Since(start), time.Second)
	require.Equal(t, 2, *n)
	require.EqualValues(t, 1, c.Stats().Throttled.Load())
	require.Less(t, c.limiter.Rate(), 100.0, "the limiter slowed down")
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	cases := map[string]time.Duration{
		"":                              0,
		"3":                             3 * time.Second,
		"0.5":                           500 * time.Millisecond,
		"garbage":                       0,
		"-4":                            0,
		"Sun, 01 Nov 2026 12:00:05 GMT": 5 * time.Second,
		"Sun, 01 Nov 2026 11:00:00 GMT": time.Second, // already past
		"99999":                         10 * time.Minute,
	}
	for in, want := range cases {
		require.Equal(t, want, parseRetryAfter(in, now), in)
	}
}

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	for n := 1; n < 20; n++ {
		d := backoff(n)
		base := min(250*time.Millisecond<<min(n-1, 7), 30*time.Second)
		require.GreaterOrEqual(t, d, base/2)
		require.LessOrEqual(t, d, base)
	}
}

func TestLimiterAdapts(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	newLimiter := func() *Limiter {
		l := NewLimiter(50)
		l.now, l.started = func() time.Time { return now }, now
		return l
	}

	t.Run("no history: cut and probe slowly", func(t *testing.T) {
		l := newLimiter()
		l.Throttled(time.Second)
		require.InDelta(t, 35, l.Rate(), 0.01, "cut to 70%")
		l.Throttled(time.Second) // the same storm: no second cut
		require.InDelta(t, 35, l.Rate(), 0.01)
		now = now.Add(2 * time.Second)
		l.Succeeded()
		require.InDelta(t, 35.7, l.Rate(), 0.01, "probes at 1% of the ceiling per second")
		now = now.Add(2 * time.Second)
		l.Throttled(time.Second)
		require.Less(t, l.Rate(), 20.0, "a second 429 soon after cuts harder")
		now = now.Add(time.Hour)
		l.Succeeded()
		now = now.Add(time.Hour)
		l.Succeeded()
		require.InDelta(t, 50, l.Rate(), 0.01, "never above the target")
	})

	t.Run("measured: the accepted rate is the ceiling", func(t *testing.T) {
		l := newLimiter()
		for range 40 { // the server answers 20 per second for two seconds
			now = now.Add(50 * time.Millisecond)
			l.Succeeded()
		}
		l.Throttled(time.Second)
		require.InDelta(t, 14, l.Rate(), 0.5, "70% of the accepted 20/s")
		now = now.Add(time.Second)
		l.Succeeded()
		require.InDelta(t, 16, l.Rate(), 0.5, "climbs back at 10% of the ceiling per second")
		now = now.Add(5 * time.Second)
		l.Succeeded()
		require.InDelta(t, 18, l.Rate(), 0.5, "up to 90% of it")
	})

	t.Run("between two cuts: the answers counted are the ceiling", func(t *testing.T) {
		l := newLimiter()
		l.Throttled(time.Second)
		require.InDelta(t, 35, l.Rate(), 0.01)
		for range 240 { // the server's bucket lets 24 per second through for ten seconds
			now = now.Add(time.Second / 24)
			l.Succeeded()
		}
		l.Throttled(time.Second)
		require.InDelta(t, 0.95*24, l.Rate(), 0.1, "95% of the 24/s accepted since the last cut")
	})

	t.Run("floor", func(t *testing.T) {
		l := newLimiter()
		for range 20 {
			l.Throttled(time.Second)
			now = now.Add(1100 * time.Millisecond)
		}
		require.InDelta(t, minRate, l.Rate(), 0.001)
	})
}

// TestOnRetry: every repeated request is reported with its cause and wait,
// before the wait; a permanent failure is not a retry.
func TestOnRetry(t *testing.T) {
	srv, _ := scripted(t, reply{status: 503, body: "down for maintenance"}, reply{status: 502, body: "bad gateway"},
		reply{status: 429, header: map[string]string{"Retry-After": "0.01"}})
	c, slept := testClient(srv.URL)
	var got []Retry
	c.cfg.OnRetry = func(r Retry) { got = append(got, r) }
	_, err := c.Page(t.Context(), Query{}, "")
	require.NoError(t, err)
	require.Len(t, got, 3)
	require.Equal(t, 1, got[0].Attempt)
	require.ErrorContains(t, got[0].Err, "server error 503 down for maintenance")
	require.Equal(t, (*slept)[0], got[0].Wait)
	require.Equal(t, 2, got[1].Attempt)
	require.ErrorContains(t, got[1].Err, "server error 502 bad gateway")
	require.True(t, got[2].Throttled)
	require.Equal(t, 1, got[2].Attempt)
	require.Equal(t, 10*time.Millisecond, got[2].Wait)

	srv, _ = scripted(t, reply{status: 401, body: `{"error":"invalid_token"}`})
	c, _ = testClient(srv.URL)
	got = nil
	c.cfg.OnRetry = func(r Retry) { got = append(got, r) }
	_, err = c.Page(t.Context(), Query{}, "")
	require.Error(t, err)
	require.Empty(t, got)
}

// TestEventID: only a non-empty string or a number identifies an event for
// de-duplication; every other id is "", which is never merged.
func TestEventID(t *testing.T) {
	for _, tc := range []struct{ raw, want string }{
		{`{"id":"a-1"}`, "a-1"},
		{`{"id":"a\/b\u0041"}`, "a/bA"},
		{`{"id":123}`, "123"},
		{`{"id":""}`, ""},
		{`{"id":null}`, ""},
		{`{"id":{"x":1}}`, ""},
		{`{"id":true}`, ""},
		{`{"event_key":"x"}`, ""},
	} {
		t.Run(tc.raw, func(t *testing.T) {
			require.Equal(t, tc.want, parseEvent([]byte(tc.raw)).ID)
		})
	}
}
