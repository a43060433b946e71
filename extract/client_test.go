package extract

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/internal/failure"
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
		// usage: a configuration error (exit status 2, a follow loop
		// stops), not only a permanent one.
		usage bool
	}{
		{name: "ok", requests: 1},
		{name: "500 then ok", replies: []reply{{status: 500, body: "oops"}}, requests: 2},
		{name: "502 then ok", replies: []reply{{status: 502, body: "<html>bad gateway</html>"}}, requests: 2},
		{name: "503 with Retry-After", replies: []reply{{status: 503, header: map[string]string{"Retry-After": "7"}}}, requests: 2},
		{name: "reset then ok", replies: []reply{{reset: true}}, requests: 2},
		{name: "truncated body", replies: []reply{{status: 200, body: okBody[:40], short: true}}, requests: 2},
		{name: "html with 200", replies: []reply{{status: 200, body: "<html><body>Maintenance</body></html>"}}, requests: 2},
		{name: "json without data", replies: []reply{{status: 200, body: `{"meta":{}}`}}, requests: 2},
		{name: "meta without paginate", replies: []reply{{status: 200, body: `{"data":[{"id":"a"}],"meta":{}}`}}, requests: 2},
		{name: "paginate without has_next or next_page", replies: []reply{{status: 200, body: `{"data":[{"id":"a"}],"meta":{"paginate":{"prev_page":"p","next_page":null}}}`}}, requests: 2},
		{name: "has_next without cursor", replies: []reply{{status: 200, body: `{"data":[],"meta":{"paginate":{"has_next":true}}}`}}, requests: 2},
		{name: "gives up", replies: []reply{{status: 500}, {status: 500}, {status: 500}, {status: 500}}, requests: 4, errText: "giving up after 3 retries: server error 500"},
		{name: "400", replies: []reply{{status: 400, body: apiErr("required")}}, requests: 1, errText: "the API refused the request (400 required: bad, parameter start_time)"},
		{name: "401", replies: []reply{{status: 401, body: oauth}}, requests: 1, errText: "the API rejected the token (401 invalid_token: Access token is missing): check the token (source.token, source.token_file or --token)", usage: true},
		{name: "402", replies: []reply{{status: 402, body: apiErr("payment_required")}}, requests: 1, errText: "Corporation plan", usage: true},
		{name: "403", replies: []reply{{status: 403, body: `{"error":"insufficient_scope","error_description":"no"}`}}, requests: 1, errText: "scope audit_events:read", usage: true},
		{name: "403 of a firewall", replies: []reply{{status: 403, body: "<html><title>Attention Required! | Cloudflare</title>Sorry, you have been blocked</html>"}}, requests: 1,
			errText: "the server at source.base_url answered 403: <html><title>Attention Required! | Cloudflare</title>Sorry, you have been blocked</html>, which is not the API's error: a proxy or firewall on the way may refuse the request; check source.base_url and the way to it. From the API, 403 would be a token without scope audit_events:read"},
		{name: "401 of a gateway", replies: []reply{{status: 401, body: `{"message":"Unauthorized"}`}}, requests: 1,
			errText: `the server at source.base_url answered 401: {"message":"Unauthorized"}, which is not the API's error`},
		{name: "401 without a body", replies: []reply{{status: 401}}, requests: 1, errText: "the API rejected the token (401): check the token (source.token, source.token_file or --token)", usage: true},
		{name: "404", replies: []reply{{status: 404, body: "not found"}}, requests: 1, errText: "check source.base_url"},
		{name: "422", replies: []reply{{status: 422, body: apiErr("invalid_date_range")}}, requests: 1, errText: "invalid_date_range"},
		{name: "422 on a filter", replies: []reply{{status: 422, body: `{"errors":[{"key":"event_key","value":"user_logn","message":"is not included in the list","code":"inclusion","payload":null}]}`}},
			requests: 1, errText: "the API refused the request (422 inclusion: is not included in the list, parameter event_key): check source.filters.event_keys", usage: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, n := scripted(t, tc.replies...)
			c, slept := testClient(srv.URL)
			p, err := c.Page(t.Context(), Query{Start: time.Unix(0, 0), End: time.Unix(10, 0)}, "")
			require.Equal(t, tc.requests, *n)
			if tc.errText != "" {
				require.ErrorContains(t, err, tc.errText)
				require.Equal(t, tc.requests == 1, failure.IsPermanent(err), "no retry fixes an answer sent once")
				require.Equal(t, tc.usage, failure.IsUsage(err), "a configuration error")
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

// TestServerTextCannotDriveTheTerminal: an error quotes what the server
// sent, and the command prints it to stderr, often a terminal. A line break
// in it must not start a line that reads as the program's own, nor an
// escape sequence reach the terminal (clear the screen, set its title).
func TestServerTextCannotDriveTheTerminal(t *testing.T) {
	const hostile = `bad\u001b[2J\u001b]0;owned\u0007\npachca-export: run finished\r\u202e`
	cases := []struct {
		name    string
		replies []reply
		errText string
	}{
		{name: "ApiError", replies: []reply{{status: 400, body: `{"errors":[{"key":"k\u001b[1m","message":"` + hostile + `","code":"c\nx"}]}`}},
			errText: `(400 c x: bad\x1b[2J\x1b]0;owned\a pachca-export: run finished \u202e, parameter k\x1b[1m)`},
		{name: "OAuthError", replies: []reply{{status: 401, body: `{"error":"e\u001b[31m","error_description":"` + hostile + `"}`}},
			errText: `(401 e\x1b[31m: bad\x1b[2J\x1b]0;owned\a pachca-export: run finished \u202e)`},
		{name: "5xx body", replies: slices.Repeat([]reply{{status: 500, body: "oops\x1b[31m\npachca-export: ok\u009b"}}, 4),
			errText: `giving up after 3 retries: server error 500 oops\x1b[31m pachca-export: ok\u009b`},
		{name: "foreign 403", replies: []reply{{status: 403, body: "<html>\x1b]0;t\x07</html>"}},
			errText: `answered 403: <html>\x1b]0;t\a</html>,`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := scripted(t, tc.replies...)
			c, _ := testClient(srv.URL)
			_, err := c.Page(t.Context(), Query{Start: time.Unix(0, 0), End: time.Unix(10, 0)}, "")
			require.ErrorContains(t, err, tc.errText)
			require.NotContains(t, err.Error(), "\n")
			require.False(t, strings.ContainsFunc(err.Error(), func(r rune) bool { return r != ' ' && !strconv.IsPrint(r) }), "%q", err.Error())
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
	initial := c.limiter.Rate()
	start := time.Now()
	_, err := c.Page(t.Context(), Query{}, "")
	require.NoError(t, err)
	require.GreaterOrEqual(t, time.Since(start), time.Second)
	require.Equal(t, 2, *n)
	require.EqualValues(t, 1, c.Stats().Throttled.Load())
	require.Equal(t, initial, c.limiter.Rate(), "one 429 at the very start is not yet a reason to slow down")
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
		"99999999999":                   10 * time.Minute, // 3,000 years: no overflow to 0
	}
	for in, want := range cases {
		require.Equal(t, want, parseRetryAfter(in, now), in)
	}
}

// TestLongRetryAfterEndsTheRequest: a 429 whose Retry-After is longer
// than the ten-minute cap (a day, in seconds or as an HTTP date) is the
// token restricted, not a rate limit: the request ends at once with the
// time the API named, and no request of the client is sent before it,
// whatever its rate or retry deadline (was: waited as ten minutes and
// sent again, 31 times over some five hours, each time before the API
// allowed, which the API documents as the way to get a token restricted;
// the first ten minutes without a line at warning level). A shorter one is
// waited out, and said at once.
func TestLongRetryAfterEndsTheRequest(t *testing.T) {
	srvNow := time.Now().UTC()
	for _, tc := range []struct {
		name   string
		header map[string]string
		rps    float64
	}{
		{name: "seconds", header: map[string]string{"Retry-After": "86400"}},
		{name: "seconds, limited rate", header: map[string]string{"Retry-After": "86400"}, rps: 100},
		{name: "HTTP date", header: map[string]string{"Date": srvNow.Format(http.TimeFormat), "Retry-After": srvNow.Add(24 * time.Hour).Format(http.TimeFormat)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, n := scripted(t, reply{status: 429, header: tc.header})
			c, slept := testClient(srv.URL)
			c.cfg.RPS = tc.rps
			var retries []Retry
			c.cfg.OnRetry = func(r Retry) { retries = append(retries, r) }
			_, err := c.Page(t.Context(), Query{}, "")
			require.Regexp(t, `^the API answered 429 Too Many Requests asking that no request be sent until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(2[34]h\d+m\d+s from now\), longer than the 10m0s a request waits: the token may be restricted until then; run again after it$`, err.Error())
			until, perr := time.Parse(time.RFC3339, regexp.MustCompile(`until (\S+)`).FindStringSubmatch(err.Error())[1])
			require.NoError(t, perr)
			require.WithinDuration(t, time.Now().Add(24*time.Hour), until, 2*time.Second)
			require.Equal(t, 1, *n)
			require.Empty(t, retries, "no retry")
			require.Empty(t, *slept)

			// Every later request, a follow loop's next cycle's, is refused
			// without being sent.
			_, err = c.Page(WithRetryDeadline(t.Context(), time.Now().Add(time.Minute)), Query{}, "")
			require.ErrorContains(t, err, "no request be sent until")
			require.ErrorContains(t, c.Post(t.Context(), "/messages", []byte(`{}`)), "no request be sent until")
			_, err = c.TokenInfo(t.Context())
			require.ErrorContains(t, err, "no request be sent until")
			require.Equal(t, 1, *n, "nothing sent before the time the API named")
			require.False(t, failure.IsPermanent(err), "a follow loop goes on after it")
		})
	}

	t.Run("ten minutes, waited and said at once", func(t *testing.T) {
		srv, n := scripted(t, reply{status: 429, header: map[string]string{"Retry-After": "600"}}, reply{status: 429, header: map[string]string{"Retry-After": "600"}})
		c, _ := testClient(srv.URL) // unlimited: the limiter does not pause
		var retries []Retry
		c.cfg.OnRetry = func(r Retry) { retries = append(retries, r) }
		_, err := c.TokenInfo(t.Context()) // once: not retried, but every request waits
		require.ErrorContains(t, err, "429")
		_, err = c.Page(t.Context(), Query{}, "")
		require.NoError(t, err)
		require.Equal(t, 3, *n)
		require.Len(t, retries, 2, "each 429 said at once, the token info's too")
		for _, r := range retries {
			require.True(t, r.Throttled)
			require.Equal(t, 10*time.Minute, r.Wait)
		}
	})
}

// TestRetryAfterDateOnTheServerClock: an HTTP-date Retry-After counts from
// the server's Date header, not from this machine's clock: a server an hour
// ahead that says "in 2 s" means 2 s, not the ten minute cap.
func TestRetryAfterDateOnTheServerClock(t *testing.T) {
	for _, tc := range []struct {
		name string
		skew time.Duration // server clock minus ours
	}{
		{name: "server ahead", skew: time.Hour},
		{name: "server behind", skew: -time.Hour},
		{name: "same clock", skew: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			at := time.Now().Add(tc.skew).UTC()
			srv, _ := scripted(t, reply{status: 429, header: map[string]string{
				"Date":        at.Format(http.TimeFormat),
				"Retry-After": at.Add(2 * time.Second).Format(http.TimeFormat),
			}})
			ctx, cancel := context.WithCancel(t.Context())
			var waits []time.Duration
			c := NewClient(ClientConfig{BaseURL: srv.URL, Token: "t", RPS: 100, MaxRetries: 3, Timeout: 2 * time.Second,
				OnRetry: func(r Retry) { waits = append(waits, r.Wait); cancel() }})
			_, err := c.Page(ctx, Query{}, "")
			require.ErrorIs(t, err, context.Canceled)
			require.Equal(t, []time.Duration{2 * time.Second}, waits)
		})
	}
}

// TestPageTooLarge: a 200 answer over 64 MiB is a retried failure that says
// so, not "unexpected end of JSON input" after reading 64 MiB of it; with a
// Content-Length that says so, not a byte of it is read.
func TestPageTooLarge(t *testing.T) {
	for _, tc := range []struct {
		name    string
		length  bool // announce the length
		errText string
	}{
		{name: "announced", length: true, errText: "response of 68157440 bytes over the 64 MiB a page may take"},
		{name: "chunked", errText: "response over the 64 MiB a page may take"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const size = 65 << 20
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.length {
					w.Header().Set("Content-Length", strconv.Itoa(size))
				}
				chunk := make([]byte, 1<<20)
				for range size >> 20 {
					if _, err := w.Write(chunk); err != nil {
						return
					}
				}
			}))
			t.Cleanup(srv.Close)
			// Reading 64 MiB under -race took over 10 s on a loaded
			// 2-core machine: the timeout is not what is tested here.
			c := NewClient(ClientConfig{BaseURL: srv.URL, Token: "t", MaxRetries: 0, Timeout: 2 * time.Minute})
			_, err := c.Page(t.Context(), Query{}, "")
			require.ErrorContains(t, err, tc.errText)
			require.ErrorContains(t, err, "giving up after 0 retries")
			if tc.length {
				require.Zero(t, c.Stats().Bytes.Load())
			}
		})
	}
}

// TestRetryDeadlineBoundsThrottling: under WithRetryDeadline a 429 whose
// Retry-After ends past the deadline is returned at once, as a transient
// failure would be: a follow loop facing a server that says "come back in
// ten minutes", again and again, exits about give_up_after after the
// failures began, not 30 Retry-Afters later.
func TestRetryDeadlineBoundsThrottling(t *testing.T) {
	srv, n := scripted(t, reply{status: 429, header: map[string]string{"Retry-After": "3"}}, reply{status: 429, header: map[string]string{"Retry-After": "3"}})
	c := NewClient(ClientConfig{BaseURL: srv.URL, Token: "t", RPS: 100, MaxRetries: 3, Timeout: 2 * time.Second})
	ctx := WithRetryDeadline(t.Context(), time.Now().Add(time.Second))
	_, err := c.Page(ctx, Query{}, "")
	require.ErrorContains(t, err, "out of time to wait for the Retry-After of 3s: 429 Too Many Requests")
	require.Equal(t, 1, *n)
}

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	for n := 1; n < 20; n++ {
		d := backoff(n)
		base := min(250*time.Millisecond<<min(n-1, 7), 30*time.Second)
		require.GreaterOrEqual(t, d, base/2)
		require.LessOrEqual(t, d, base)
	}
}

// TestRetryDeadline: under WithRetryDeadline a transient failure is retried
// only while the retry starts before the deadline; past it the failure is
// returned at once, and a request that succeeds is never cut short.
func TestRetryDeadline(t *testing.T) {
	for _, tc := range []struct {
		name   string
		until  time.Duration // from now
		sleeps int
		fails  bool
	}{
		{name: "time to retry", until: time.Hour, sleeps: 2},
		{name: "out of time", until: 0, sleeps: 0, fails: true},
		{name: "a later deadline does not extend an earlier one", until: -1, sleeps: 0, fails: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := scripted(t, reply{status: 503}, reply{status: 503})
			c, slept := testClient(srv.URL)
			ctx := WithRetryDeadline(t.Context(), time.Now().Add(tc.until))
			if tc.until < 0 {
				ctx = WithRetryDeadline(ctx, time.Now().Add(time.Hour))
			}
			_, err := c.Page(ctx, Query{Start: time.Now().Add(-time.Hour), End: time.Now()}, "")
			if tc.fails {
				require.ErrorContains(t, err, "out of time to retry")
				require.ErrorContains(t, err, "503")
			} else {
				require.NoError(t, err)
			}
			require.Len(t, *slept, tc.sleeps)
		})
	}
}

// TestTimeoutNamed: a server that never answers, or stops in the middle of
// its body, is cut by source.timeout, and the error says so (was: "context
// deadline exceeded", naming neither the wait nor the setting); the
// caller's own deadline is not taken for it.
func TestTimeoutNamed(t *testing.T) {
	stall := func(r *http.Request) {
		io.Copy(io.Discard, r.Body) // else the server notices no hang-up
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}
	for _, tc := range []struct {
		name, want string
		handler    http.HandlerFunc
	}{
		{"no answer", "request failed: no answer within 100ms (source.timeout)", func(w http.ResponseWriter, r *http.Request) {
			stall(r)
		}},
		{"body stalls", "reading the response: not complete within 100ms (source.timeout)", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(len(okBody)))
			w.Write([]byte(okBody[:20]))
			w.(http.Flusher).Flush()
			stall(r)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			t.Cleanup(srv.Close)
			c := NewClient(ClientConfig{BaseURL: srv.URL, Token: "t", Timeout: 100 * time.Millisecond})
			_, err := c.Page(t.Context(), Query{}, "")
			require.ErrorContains(t, err, tc.want)

			ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
			defer cancel()
			_, err = c.Page(ctx, Query{}, "")
			require.ErrorIs(t, err, context.DeadlineExceeded)
			require.NotContains(t, err.Error(), "source.timeout")
		})
	}
	t.Run("post", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { stall(r) }))
		t.Cleanup(srv.Close)
		c := NewClient(ClientConfig{BaseURL: srv.URL, Token: "t", Timeout: 100 * time.Millisecond})
		require.ErrorContains(t, c.Post(t.Context(), "/messages", []byte(`{}`)), "request failed: no answer within 100ms (source.timeout)")
	})
}

// TestTLSFailureNotRetried: a certificate the client does not trust, or an
// https:// URL to a server without TLS, ends the request at once with what
// to check (was: retried max_retries times with backoff, about 95 s with
// the defaults, then "giving up after 10 retries").
func TestTLSFailureNotRetried(t *testing.T) {
	untrusted := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(okBody)) }))
	t.Cleanup(untrusted.Close)
	plain, _ := scripted(t)
	for _, tc := range []struct{ name, base, want string }{
		{"untrusted certificate", untrusted.URL, "TLS: the certificate of the server at source.base_url is not trusted (x509: certificate signed by unknown authority)"},
		{"no TLS at https", "https://" + strings.TrimPrefix(plain.URL, "http://"), "TLS: the server at source.base_url does not speak TLS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, slept := testClient(tc.base)
			_, err := c.Page(t.Context(), Query{}, "")
			require.ErrorContains(t, err, tc.want)
			require.NotContains(t, err.Error(), "giving up")
			require.Empty(t, *slept, "no retry")
			require.EqualValues(t, 1, c.Stats().Requests.Load())
			require.ErrorContains(t, c.Post(t.Context(), "/messages", []byte(`{}`)), tc.want)
		})
	}
}

// TestParseEventExactNames: id and created_at are read by their exact
// names, the last of a repeated name winning, whatever other spellings of
// them the event holds, in either order (the transform reads them so); an
// escaped spelling of the name is the name.
func TestParseEventExactNames(t *testing.T) {
	day1, day2 := `"2026-11-01T10:00:00.000Z"`, `"2026-11-02T10:00:00.000Z"`
	at1 := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC).UnixMilli()
	for _, raw := range []string{
		`{"id":"a","created_at":` + day1 + `}`,
		`{"id":"a","created_at":` + day1 + `,"CREATED_AT":` + day2 + `}`,
		`{"CREATED_AT":` + day2 + `,"created_at":` + day1 + `,"ID":"x","id":"a"}`,
		`{"id":"a","Id":"x","created_at":` + day2 + `,"created_at":` + day1 + `}`,
		`{"\u0069d":"a","created_at":` + day1 + `,"details":{"ID":"x"}}`,
	} {
		ev := parseEvent([]byte(raw))
		require.Equal(t, "a", ev.ID, raw)
		require.True(t, ev.TimeOK, raw)
		require.Equal(t, at1, ev.At, raw)
	}
	require.False(t, otherSpelling([]byte(`{"id":"a","created_at":"x","details":{"chat_id":1,"text":"an id","id_2":"ID2"}}`), "id"))
	require.True(t, otherSpelling([]byte(`{"id":"a","details":{"ID":1}}`), "id"))
}

// TestRedirectKeepsTheTokenAtItsOrigin: a redirect to another scheme, host
// or port is not followed, and ends the request at once naming its target
// (was: net/http kept the Authorization header for the same host name, so
// the token went to another port, or from https to plain http; to another
// host it went without the token, and that host's 401 read as "the API
// rejected the token"). A redirect within the origin is followed with it.
func TestRedirectKeepsTheTokenAtItsOrigin(t *testing.T) {
	var mu sync.Mutex
	var elsewhere []string // Authorization headers the other server saw
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		elsewhere = append(elsewhere, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Write([]byte(okBody))
	}))
	t.Cleanup(other.Close)
	redirecting := func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/moved/"):
			http.Redirect(w, r, other.URL+r.URL.RequestURI(), http.StatusTemporaryRedirect)
		case strings.HasPrefix(r.URL.Path, "/old/"):
			http.Redirect(w, r, "/new/"+strings.TrimPrefix(r.URL.RequestURI(), "/old/"), http.StatusMovedPermanently)
		case r.Header.Get("Authorization") != "Bearer t":
			w.WriteHeader(http.StatusUnauthorized)
		default:
			w.Write([]byte(okBody))
		}
	}
	plain := httptest.NewServer(http.HandlerFunc(redirecting))
	t.Cleanup(plain.Close)
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(redirecting))
	t.Cleanup(tlsSrv.Close)
	otherURL := other.URL + "/moved/audit_events"
	for _, tc := range []struct {
		name, base string
		hc         *http.Client
		want       string // "" = followed
	}{
		{"another port", plain.URL + "/moved", nil, "source.base_url answered 307, a redirect to " + otherURL + ": the token is sent to source.base_url's own scheme, host and port only"},
		{"https to http", tlsSrv.URL + "/moved", tlsSrv.Client(), "a redirect to " + otherURL + ":"},
		{"within the origin", plain.URL + "/old", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			elsewhere = nil
			mu.Unlock()
			c := NewClient(ClientConfig{BaseURL: tc.base, Token: "t", MaxRetries: 3, Timeout: 2 * time.Second, HTTPClient: tc.hc})
			var slept []time.Duration
			c.sleep = func(ctx context.Context, d time.Duration) error { slept = append(slept, d); return nil }
			p, err := c.Page(t.Context(), Query{}, "")
			postErr := c.Post(t.Context(), "/messages", []byte(`{}`))
			mu.Lock()
			seen := elsewhere
			mu.Unlock()
			require.Empty(t, seen, "no request leaves the origin")
			if tc.want == "" {
				require.NoError(t, err)
				require.Len(t, p.Events, 1)
				require.NoError(t, postErr)
				return
			}
			require.ErrorContains(t, err, tc.want)
			require.NotContains(t, err.Error(), "start_time", "the query is not repeated")
			require.Empty(t, slept, "no retry")
			require.EqualValues(t, 2, c.Stats().Requests.Load())
			require.ErrorContains(t, postErr, "a redirect to "+other.URL+"/moved/messages")
		})
	}
}

// TestRetryDeadlineBoundsThePause: a request under WithRetryDeadline does
// not wait for a pause an earlier 429 began that lasts past the deadline
// (was: the next follow cycle after one that was out of time for a
// Retry-After of ten minutes waited the pause out, silent, long after
// follow.give_up_after); the limiter's pacing is not cut by the deadline.
func TestRetryDeadlineBoundsThePause(t *testing.T) {
	srv, n := scripted(t, reply{status: 429, header: map[string]string{"Retry-After": "600"}})
	c := NewClient(ClientConfig{BaseURL: srv.URL, Token: "t", RPS: 100, MaxRetries: 3, Timeout: 2 * time.Second})
	_, err := c.Page(WithRetryDeadline(t.Context(), time.Now().Add(time.Second)), Query{}, "")
	require.ErrorContains(t, err, "out of time to wait for the Retry-After of 10m0s")

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second) // the test's bound, not the client's
	defer cancel()
	_, err = c.Page(WithRetryDeadline(ctx, time.Now().Add(time.Minute)), Query{}, "")
	require.ErrorContains(t, err, "out of time to wait out a 429's Retry-After: every request is paused for 10m0s more")
	require.Equal(t, 1, *n, "nothing sent during the pause")

	t.Run("pacing", func(t *testing.T) {
		srv, n := scripted(t)
		c := NewClient(ClientConfig{BaseURL: srv.URL, Token: "t", RPS: 2, MaxRetries: 3, Timeout: 2 * time.Second})
		ctx := WithRetryDeadline(t.Context(), time.Now().Add(10*time.Millisecond))
		for range 3 {
			_, err := c.Page(ctx, Query{}, "")
			require.NoError(t, err)
		}
		require.Equal(t, 3, *n)
	})
}

// TestPageTooLargeAsksSmaller: a page over 64 MiB (50 events of 2 MB of
// details) is asked again with half the events, down to one, and the
// pages after it keep the size that fit while they are large (was: the
// same request max_retries times, then the run failed: such a workspace
// could not be exported at all). A single event over 64 MiB still fails,
// saying so.
func TestPageTooLargeAsksSmaller(t *testing.T) {
	var mu sync.Mutex
	var limits []string
	fits := 12 // pages of up to this many events fit
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		limits = append(limits, r.URL.Query().Get("limit"))
		mu.Unlock()
		n, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		if n > fits {
			w.Header().Set("Content-Length", strconv.Itoa(65<<20))
			return
		}
		// A page that fits, as large as the events make it.
		pad := strings.Repeat("x", (maxBody/4)+1)
		fmt.Fprintf(w, `{"data":[{"id":"a","created_at":"2026-11-01T00:00:00.000Z","details":{"p":%q}}],"meta":{"paginate":{"has_next":false}}}`, pad)
	}))
	t.Cleanup(srv.Close)
	c, _ := testClient(srv.URL)
	c.cfg.MaxRetries = 10
	// Pages of 16 MiB, read under -race on a loaded machine: not a
	// timeout's retry, which would ask the same size again.
	c.cfg.Timeout = time.Minute
	p, err := c.Page(t.Context(), Query{}, "")
	require.NoError(t, err)
	require.Len(t, p.Events, 1)
	_, err = c.Page(t.Context(), Query{}, "")
	require.NoError(t, err)
	require.Equal(t, []string{"50", "25", "12", "12"}, limits, "halved until a page fits, then kept")

	fits, limits = 0, nil
	_, err = c.Page(t.Context(), Query{}, "")
	require.ErrorContains(t, err, "asked smaller down to one event a page (an event of more than 64 MiB")
	require.Equal(t, []string{"12", "6", "3", "1", "1", "1", "1", "1", "1", "1", "1"}, limits)
}

// TestTimeoutNoticedLate: a request's deadline noticed long after it
// passed (the process stopped with SIGSTOP, its container paused) is not
// blamed on the API alone (was: "no answer within 30s (source.timeout)"
// after a freeze of three minutes, where the API had answered at once).
func TestTimeoutNoticedLate(t *testing.T) {
	c := NewClient(ClientConfig{BaseURL: "http://127.0.0.1:1", Token: "t", Timeout: 30 * time.Second})
	for _, tc := range []struct {
		name  string
		ended time.Duration // how long ago the deadline passed
		late  bool
	}{
		{"on time", 0, false},
		{"busy machine", 800 * time.Millisecond, false},
		{"stopped", 3 * time.Minute, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rctx, cancel := context.WithDeadline(t.Context(), time.Now().Add(-tc.ended))
			defer cancel()
			err := c.netError("request failed", "no answer", t.Context(), rctx, context.DeadlineExceeded)
			require.ErrorContains(t, err, "request failed: no answer within 30s (source.timeout)")
			if tc.late {
				require.ErrorContains(t, err, "a deadline this process noticed 3m0s late: it did not run meanwhile")
			} else {
				require.NotContains(t, err.Error(), "late")
			}
		})
	}
}
