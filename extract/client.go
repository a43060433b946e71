// Package extract reads audit events from the Pachca API: one shared rate
// limiter, retries, pagination, and time windows fetched in parallel.
// Retries live here and nowhere else.
package extract

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pachca-export/pachca-export/internal/netproxy"
	"github.com/pachca-export/pachca-export/internal/secret"
	"github.com/pachca-export/pachca-export/internal/timestamp"
	"github.com/pachca-export/pachca-export/internal/tlsversion"
	"github.com/pachca-export/pachca-export/internal/tokenfile"
)

// DefaultBaseURL is the public API.
const DefaultBaseURL = "https://api.pachca.com/api/shared/v1"

// PageSize is the API's maximum, and what every request asks for.
const PageSize = 50

const maxBody = 64 << 20

// lateDeadline: a request's deadline noticed this long after it passed was
// not kept by a running process (a busy machine delays a timer by
// milliseconds, a stopped process by as long as it was stopped).
const lateDeadline = 5 * time.Second

// Filters narrow the events requested; empty fields are not sent.
type Filters struct {
	ActorID    string
	ActorType  string
	EntityID   string
	EntityType string
}

// ClientConfig configures a Client.
type ClientConfig struct {
	BaseURL string
	Token   string
	// TokenFile, when set, is source.token_file as it is now: each request
	// carries its token (Token is its first), and a 401 or 403 of the API
	// has it read again: a new token there is tried before the request
	// fails.
	TokenFile  *tokenfile.File
	Filters    Filters
	RPS        float64       // requests per second for the whole process; <= 0 unlimited
	Timeout    time.Duration // per request, body included
	MaxRetries int           // retries of 5xx, network errors and malformed bodies per request
	UserAgent  string
	HTTPClient *http.Client // optional
	Logger     *slog.Logger // optional: how the limiter reads 429s, at debug level
	// Now is the clock the API's Date headers are compared with
	// (APIBehind); time.Now when nil.
	Now func() time.Time
	// OnRetry, when set, is told of every request about to be repeated and
	// why, so that a failing API shows its cause at once. It is called by
	// the requesting goroutines, concurrently, and must return quickly.
	OnRetry func(Retry)
}

// Retry is one request about to be sent again.
type Retry struct {
	// Attempt counts the failures of this request so far: 429s and
	// transient failures separately.
	Attempt int
	// Throttled is a 429 Too Many Requests; the shared limiter pauses every
	// worker for Wait.
	Throttled bool
	// Wait is the pause before the next attempt: the backoff, or the
	// server's Retry-After.
	Wait time.Duration
	// Err is the cause: a status, a network error, a malformed body.
	Err error
}

// Stats are counters a Client keeps for the summary, progress and metrics.
type Stats struct {
	Requests  atomic.Int64 // HTTP requests sent
	Pages     atomic.Int64 // pages received and decoded
	Events    atomic.Int64 // events received
	Retries   atomic.Int64 // requests repeated after a transient failure or a 429
	Throttled atomic.Int64 // 429 answers
	Bytes     atomic.Int64 // response bytes read
}

// Counts is a copy of Stats at one moment.
type Counts struct {
	Requests, Pages, Events, Retries, Throttled, Bytes int64
}

// Snapshot copies the counters (each read atomically, not all together).
func (s *Stats) Snapshot() Counts {
	return Counts{
		Requests: s.Requests.Load(), Pages: s.Pages.Load(), Events: s.Events.Load(),
		Retries: s.Retries.Load(), Throttled: s.Throttled.Load(), Bytes: s.Bytes.Load(),
	}
}

// Sub returns c minus o: what happened between two snapshots.
func (c Counts) Sub(o Counts) Counts {
	return Counts{
		Requests: c.Requests - o.Requests, Pages: c.Pages - o.Pages, Events: c.Events - o.Events,
		Retries: c.Retries - o.Retries, Throttled: c.Throttled - o.Throttled, Bytes: c.Bytes - o.Bytes,
	}
}

// Client calls GET /audit_events (and POST for alert messages). It is safe
// for concurrent use; all its requests share one Limiter.
type Client struct {
	cfg     ClientConfig
	http    *http.Client
	limiter *Limiter
	stats   *Stats
	sleep   func(ctx context.Context, d time.Duration) error
	// scrub removes the token from response text before any of it goes
	// into an error: a server or proxy may echo the request's headers.
	scrub secret.Scrubber
	clock apiClock
	// pauseEnd is when the limiter's pause for the latest 429's
	// Retry-After ends, in Unix nanoseconds, so that a request under a
	// retry deadline need not wait for a pause that outlasts it.
	pauseEnd atomic.Int64
	// limit is the page size asked for, PageSize unless answers over
	// maxBody halved it (events of megabytes of details): 0 means PageSize.
	limit atomic.Int64
	// answered: a server has answered a request of this client, so its
	// host names resolved once (hostNotFound).
	answered atomic.Bool
	// restricted is the end of the latest Retry-After longer than
	// maxRetryAfter, in Unix nanoseconds: no request is sent before it
	// (restriction).
	restricted atomic.Int64
}

// Agent is the user agent of a client's requests: "pachca-export", and
// with a state's reader id (state.View.ReaderID) "pachca-export (reader
// ID)", by which the audit events of the exporter's own reads of the log
// are told from others' (transform.drop_own_reads).
func Agent(reader string) string {
	if reader == "" {
		return "pachca-export"
	}
	return "pachca-export (reader " + reader + ")"
}

// NewClient returns a client; it does no I/O.
func NewClient(cfg ClientConfig) *Client {
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = Agent("")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	hc := http.Client{}
	if cfg.HTTPClient != nil {
		hc = *cfg.HTTPClient
	} else {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 64
		tr.OnProxyConnectResponse = netproxy.Refused
		hc.Transport = tr
	}
	limiter := NewLimiter(cfg.RPS)
	if cfg.Logger != nil {
		limiter.log = cfg.Logger
	}
	c := &Client{cfg: cfg, http: &hc, limiter: limiter, stats: &Stats{}, sleep: sleepCtx, scrub: secret.NewScrubber(cfg.Token)}
	hc.CheckRedirect = c.checkRedirect
	return c
}

// maxRedirects is how many redirects within source.base_url's origin one
// request follows, as net/http does.
const maxRedirects = 10

// checkRedirect follows a redirect only within the origin (scheme, host and
// port) of source.base_url. net/http keeps the Authorization header for the
// same host name whatever the scheme and port, so a redirect from https to
// http on the API's host would send the token unencrypted, and one to
// another port to another service; to another host it drops the token, and
// the API's 401 there would read as a rejected token.
func (c *Client) checkRedirect(req *http.Request, via []*http.Request) error {
	to := *req.URL
	to.RawQuery, to.Fragment, to.User = "", "", nil
	status := 0
	if req.Response != nil {
		status = req.Response.StatusCode
	}
	switch {
	case origin(req.URL) != origin(via[0].URL):
		return &redirectError{fmt.Sprintf("source.base_url answered %d, a redirect to %s: the token is sent to source.base_url's own scheme, host and port only; if the API has moved, set source.base_url to its new address", status, c.scrubber().String(to.String()))}
	case len(via) >= maxRedirects:
		return &redirectError{fmt.Sprintf("source.base_url redirected %d times in a row (the last to %s): check source.base_url", len(via), c.scrubber().String(to.String()))}
	}
	return nil
}

// origin is u's scheme, host name and port, the port spelt out.
func origin(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Hostname()) + ":" + port
}

// token is the token a request carries now: TokenFile's when set.
func (c *Client) token() string {
	if c.cfg.TokenFile != nil {
		return c.cfg.TokenFile.Token()
	}
	return c.cfg.Token
}

// scrubber removes every token the client carried, the token file's
// earlier ones included.
func (c *Client) scrubber() secret.Scrubber {
	if c.cfg.TokenFile != nil {
		return c.cfg.TokenFile.Scrubber()
	}
	return c.scrub
}

// TokenGeneration counts the changes of the token in source.token_file
// (0 with a fixed token): a caller that checked the token's owner checks
// again when it moved.
func (c *Client) TokenGeneration() uint64 {
	if c.cfg.TokenFile != nil {
		return c.cfg.TokenFile.Generation()
	}
	return 0
}

// tokenKey is the context key of the token one attempt carries (withToken).
type tokenKey struct{}

// withToken has the attempt under ctx carry the token tok: the retry loop
// knows which token the API refused.
func withToken(ctx context.Context, tok string) context.Context {
	return context.WithValue(ctx, tokenKey{}, tok)
}

// tokenOf is the token of the attempt under ctx.
func (c *Client) tokenOf(ctx context.Context) string {
	if tok, ok := ctx.Value(tokenKey{}).(string); ok {
		return tok
	}
	return c.token()
}

// maxTokenChanges bounds how many new tokens of the token file one
// request tries after the API refused the one it carried.
const maxTokenChanges = 3

// retryWithNewToken tells, for err, the answer to a request that carried
// tok, whether to send it again: the API refused the token (401, or 403
// for the scope), and the token file, read again now, holds another one.
// It returns err, saying when the file was read again to no avail.
func (c *Client) retryWithNewToken(err error, tok string) (bool, error) {
	var ae *APIError
	if c.cfg.TokenFile == nil || !errors.As(err, &ae) || ae.Foreign || (ae.Status != http.StatusUnauthorized && ae.Status != http.StatusForbidden) {
		return false, err
	}
	if c.cfg.TokenFile.Reread() != tok {
		return true, err
	}
	ae.Reread = c.cfg.TokenFile.Path()
	return false, err
}

// redirectError is a redirect the client does not follow (checkRedirect).
// The answer is the server's deliberate one: it ends the request without a
// retry, like a TLS failure, but is not permanent to a follow loop.
type redirectError struct{ msg string }

func (e *redirectError) Error() string { return e.msg }

// Stats returns the client's live counters.
func (c *Client) Stats() *Stats { return c.stats }

// Limiter returns the client's shared limiter.
func (c *Client) Limiter() *Limiter { return c.limiter }

// Probe sends one request over the last minute, to tell whether the API
// accepts the token (scope audit_events:read, Corporation plan); its error
// says what is wrong.
func (c *Client) Probe(ctx context.Context) error {
	now := time.Now().UTC()
	_, err := c.Page(ctx, Query{Start: now.Add(-time.Minute), End: now}, "")
	return err
}

// Query selects the events of one request: [Start, End] with both bounds
// inclusive, as the API has them, at millisecond precision.
type Query struct {
	Start, End time.Time
	EventKey   string // "" for every key
}

// Event is one event as received: its id and time, parsed for windowing, and
// the exact JSON object.
type Event struct {
	// ID identifies the event for de-duplication: a non-empty JSON string,
	// or a JSON number as written (the transform exports both). It is ""
	// when the event has no usable id (missing, null, "", another type):
	// such events are never merged with one another.
	ID string
	// At is created_at in Unix milliseconds; valid only when TimeOK.
	At     int64
	TimeOK bool
	Raw    []byte
}

// Page is one decoded answer.
type Page struct {
	Events  []Event
	Next    string
	HasNext bool
	Prev    string
}

const apiTime = "2006-01-02T15:04:05.000Z"

func (c *Client) pageURL(q Query, cursor string, limit int) string {
	v := url.Values{}
	v.Set("start_time", q.Start.UTC().Format(apiTime))
	v.Set("end_time", q.End.UTC().Format(apiTime))
	if q.EventKey != "" {
		v.Set("event_key", q.EventKey)
	}
	f := c.cfg.Filters
	for k, s := range map[string]string{"actor_id": f.ActorID, "actor_type": f.ActorType, "entity_id": f.EntityID, "entity_type": f.EntityType} {
		if s != "" {
			v.Set(k, s)
		}
	}
	v.Set("limit", strconv.Itoa(limit))
	if cursor != "" {
		v.Set("cursor", cursor)
	}
	return c.cfg.BaseURL + "/audit_events?" + v.Encode()
}

// Page fetches one page, retrying transient failures: a 429 waits for its
// Retry-After and slows the shared limiter; 5xx, timeouts, resets and
// malformed bodies back off exponentially with jitter, up to MaxRetries. Other
// answers end with an *APIError.
func (c *Client) Page(ctx context.Context, q Query, cursor string) (Page, error) {
	return c.PageFirst(ctx, q, cursor, q.Start.UnixMilli())
}

// PageFirst is Page with a priority in the limiter's queue: of the requests
// waiting for a turn, the one with the lowest priority goes first.
func (c *Client) PageFirst(ctx context.Context, q Query, cursor string, priority int64) (Page, error) {
	var p Page
	err := c.retryFirst(ctx, priority, func(ctx context.Context) (time.Duration, error) {
		limit := c.pageLimit()
		var size int
		var retryAfter time.Duration
		var err error
		p, size, retryAfter, err = c.get(ctx, c.pageURL(q, cursor, limit))
		c.adjustLimit(limit, size, err)
		return retryAfter, err
	})
	if err != nil {
		return Page{}, err
	}
	return p, nil
}

// pageLimit is the page size to ask for.
func (c *Client) pageLimit() int {
	if l := c.limit.Load(); l > 0 {
		return int(l)
	}
	return PageSize
}

// adjustLimit halves the page size after an answer over maxBody to a
// request for limit events, down to one event a page, and doubles it back
// towards PageSize after an answer of size bytes that leaves room for
// twice as many: a page of 50 events of 2 MB each is over maxBody, and
// would be asked again, in vain, max_retries times.
func (c *Client) adjustLimit(limit, size int, err error) {
	switch {
	case errors.Is(err, errTooLarge) && limit > 1:
		c.limit.CompareAndSwap(int64(limit), int64(limit/2))
		if limit == PageSize {
			c.limit.CompareAndSwap(0, int64(limit/2))
		}
	case err == nil && limit < PageSize && size < maxBody/4:
		c.limit.CompareAndSwap(int64(limit), int64(min(2*limit, PageSize)))
	}
}

// retry sends attempt under the shared limiter until it succeeds or fails for
// good. attempt returns a *throttledError for a 429, a *retryableError for a
// transient failure (with the server's Retry-After, if any) and any other
// error for a permanent one. This loop is the client's one retry policy.
func (c *Client) retry(ctx context.Context, attempt func(ctx context.Context) (retryAfter time.Duration, err error)) error {
	return c.retryFirst(ctx, math.MinInt64, attempt)
}

// once runs attempt a single time under the limiter, with no retry: for a
// request whose answer the run can go without. A 429 still pauses every
// worker for its Retry-After and informs the limiter.
func (c *Client) once(ctx context.Context, attempt func(ctx context.Context) (retryAfter time.Duration, err error)) error {
	began := time.Now()
	sent, err := c.wait(ctx, math.MinInt64)
	if err != nil {
		return err
	}
	waited := time.Since(began)
	for changes := 0; ; changes++ {
		tok := c.token()
		_, err = attempt(withToken(ctx, tok))
		// The answer to a token refused says nothing of a new one.
		var retry bool
		if retry, err = c.retryWithNewToken(err, tok); !retry || changes >= maxTokenChanges {
			break
		}
	}
	var thr *throttledError
	switch {
	case err == nil:
		c.limiter.Succeeded(sent, time.Since(began)-waited)
	case errors.As(err, &thr):
		c.stats.Throttled.Add(1)
		if rerr := c.restrict(thr); rerr != nil {
			return rerr
		}
		c.limiter.Throttled(sent, thr.retryAfter)
		c.paused(time.Now().Add(thr.retryAfter))
		// Every request waits now: said at once, not after the pause.
		c.onRetry(Retry{Attempt: 1, Throttled: true, Wait: thr.retryAfter, Err: err})
	}
	return err
}

// retryFirst is retry with a priority in the limiter's queue: of the
// requests waiting for a turn, the one with the lowest priority goes first.
func (c *Client) retryFirst(ctx context.Context, priority int64, attempt func(ctx context.Context) (retryAfter time.Duration, err error)) error {
	failures, throttles, changes := 0, 0, 0
	maxThrottles := max(30, 3*c.cfg.MaxRetries)
	began := time.Now()
	var failing time.Time    // since this request's first failure (WithRetryFor)
	var waited time.Duration // in the limiter
	for {
		w := time.Now()
		sent, err := c.wait(ctx, priority)
		if err != nil {
			return err
		}
		waited += time.Since(w)
		tok := c.token()
		retryAfter, err := attempt(withToken(ctx, tok))
		if err == nil {
			c.limiter.Succeeded(sent, time.Since(began)-waited)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if failing.IsZero() {
			failing = time.Now()
		}
		var re *retryableError
		var thr *throttledError
		switch {
		case errors.As(err, &thr):
			throttles++
			c.stats.Throttled.Add(1)
			if rerr := c.restrict(thr); rerr != nil {
				return rerr
			}
			c.limiter.Throttled(sent, thr.retryAfter)
			c.paused(time.Now().Add(thr.retryAfter))
			if throttles > maxThrottles {
				return fmt.Errorf("the API kept answering 429 Too Many Requests (%d times): lower source.requests_per_second", throttles)
			}
			if until, ok := retryUntil(ctx, failing); ok && time.Now().Add(thr.retryAfter).After(until) {
				return fmt.Errorf("out of time to wait for the Retry-After of %s: 429 Too Many Requests", max(thr.asked, thr.retryAfter))
			}
			c.onRetry(Retry{Attempt: throttles, Throttled: true, Wait: thr.retryAfter, Err: err})
			// The limiter's pause makes every worker wait; nothing to sleep here.
		case errors.As(err, &re):
			failures++
			if failures > c.cfg.MaxRetries {
				return fmt.Errorf("giving up after %d retries: %w", c.cfg.MaxRetries, err)
			}
			d := backoff(failures)
			if retryAfter > d {
				d = retryAfter
			}
			if until, ok := retryUntil(ctx, failing); ok && time.Now().Add(d).After(until) {
				return fmt.Errorf("giving up after %d retries, out of time to retry: %w", failures-1, err)
			}
			c.onRetry(Retry{Attempt: failures, Wait: d, Err: err})
			if err := c.sleep(ctx, d); err != nil {
				return err
			}
		default:
			retry, err := c.retryWithNewToken(err, tok)
			if !retry || changes >= maxTokenChanges {
				return err
			}
			changes++
		}
		c.stats.Retries.Add(1)
	}
}

// wait takes a turn in the shared limiter. Under WithRetryDeadline, a
// pause for a 429's Retry-After that lasts past the deadline ends the
// request at once: the pause may be another request's of up to ten
// minutes, and a follow cycle waiting it out would end long after
// follow.give_up_after (was: the cycle after one that was out of time for
// a Retry-After sat silent in the pause). Pacing is never cut short.
func (c *Client) wait(ctx context.Context, priority int64) (time.Time, error) {
	if err := c.restriction(); err != nil {
		return time.Time{}, err
	}
	if until, ok := retryUntil(ctx, time.Now()); ok {
		now, end := time.Now(), time.Unix(0, c.pauseEnd.Load())
		if now.Before(end) && end.After(until) {
			return time.Time{}, fmt.Errorf("out of time to wait out a 429's Retry-After: every request is paused for %s more", end.Sub(now).Round(time.Second))
		}
	}
	sent, err := c.limiter.Wait(ctx, priority)
	if err != nil {
		return sent, err
	}
	// A restriction that began while this request waited for its turn.
	return sent, c.restriction()
}

// restrict records a 429's Retry-After longer than maxRetryAfter and
// returns the error that ends the request; nil for a shorter one, which
// is waited out. Such a wait (a day, say) is no rate limit but the token
// restricted: waited as maxRetryAfter and tried again (was), each request
// before the time the API named, up to 31 of them over five hours, is
// what the API documents as the way to keep a token restricted. The
// limiter is not paused for it: the requests waiting for a turn would sit
// out the pause before they learnt of the restriction (wait).
func (c *Client) restrict(thr *throttledError) error {
	if thr.asked <= maxRetryAfter {
		return nil
	}
	end := time.Now().Add(thr.asked)
	for {
		old := c.restricted.Load()
		if end.UnixNano() <= old || c.restricted.CompareAndSwap(old, end.UnixNano()) {
			break
		}
	}
	return c.restriction()
}

// restriction is the error of a request while a Retry-After longer than
// maxRetryAfter lasts (restrict): it is not sent. Not permanent: a follow
// loop's next cycles send nothing until then, and go on after it.
func (c *Client) restriction() error {
	end := time.Unix(0, c.restricted.Load())
	left := time.Until(end)
	if left <= 0 {
		return nil
	}
	return fmt.Errorf("the API answered 429 Too Many Requests asking that no request be sent until %s (%s from now), longer than the %s a request waits: the token may be restricted until then; run again after it",
		end.UTC().Format(time.RFC3339), left.Round(time.Second), maxRetryAfter)
}

// paused records the end of a pause the limiter began (Limiter.Throttled).
func (c *Client) paused(end time.Time) {
	if c.cfg.RPS <= 0 {
		return // an unlimited limiter does not pause
	}
	for {
		old := c.pauseEnd.Load()
		if end.UnixNano() <= old || c.pauseEnd.CompareAndSwap(old, end.UnixNano()) {
			return
		}
	}
}

// retryDeadlineKey carries the time after which transient failures are no
// longer retried (WithRetryDeadline).
type retryDeadlineKey struct{}

// WithRetryDeadline returns ctx under which the client retries a transient
// failure, or waits out a 429's Retry-After, only while the retry would
// start before until; past it the failure is returned at once. Unlike a
// context deadline it cuts short no request nor any work that succeeds: a
// follow loop bounds its retrying by what is left of follow.give_up_after.
// An earlier deadline ctx carries stays.
func WithRetryDeadline(ctx context.Context, until time.Time) context.Context {
	if t, ok := retryDeadline(ctx); ok && t.Before(until) {
		return ctx
	}
	return context.WithValue(ctx, retryDeadlineKey{}, until)
}

func retryDeadline(ctx context.Context) (time.Time, bool) {
	t, ok := ctx.Value(retryDeadlineKey{}).(time.Time)
	return t, ok
}

// retryForKey carries how long a request may go on failing (WithRetryFor).
type retryForKey struct{}

// WithRetryFor returns ctx under which a request retries a transient
// failure, or waits out a 429's Retry-After, only while the retry would
// start within d of the request's first failure: a follow cycle that is
// not failing bounds each request's failures by follow.give_up_after, not
// by the cycle's start, which a healthy cycle reading a flood of events
// or sealing a big day may leave far behind (was: a single 500 or 429
// past give_up_after into such a cycle failed it at once). A deadline
// ctx carries (WithRetryDeadline) still applies.
func WithRetryFor(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, retryForKey{}, d)
}

// retryUntil is when the retries of a request failing since since end:
// the earlier of ctx's retry deadline and since plus its WithRetryFor.
func retryUntil(ctx context.Context, since time.Time) (time.Time, bool) {
	until, ok := retryDeadline(ctx)
	if d, has := ctx.Value(retryForKey{}).(time.Duration); has {
		if t := since.Add(d); !ok || t.Before(until) {
			until, ok = t, true
		}
	}
	return until, ok
}

func (c *Client) onRetry(r Retry) {
	if c.cfg.OnRetry != nil {
		c.cfg.OnRetry(r)
	}
}

// throttledError is a 429: retryAfter is the wait, asked the server's
// Retry-After, uncapped: one longer than the cap ends the request
// (restrict).
type throttledError struct{ retryAfter, asked time.Duration }

func (e *throttledError) Error() string { return "429 Too Many Requests" }

// do sends req and tells the limiter when it was written to the
// connection: a request written late (a new connection, a busy machine)
// must not shorten the gap to the next one. It reads the Date of the
// API's own answers (APIBehind): a 2xx or a 429, not an error page, which
// a gateway or proxy in front of it may answer with its own clock (the
// least sample would be the gateway's, and an API behind would read as
// in step).
func (c *Client) do(req *http.Request) (*http.Response, error) {
	c.stats.Requests.Add(1)
	trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { c.limiter.Wrote(time.Now()) }}
	resp, err := c.http.Do(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
	if err == nil {
		c.answered.Store(true)
	}
	if err == nil && (resp.StatusCode/100 == 2 || resp.StatusCode == http.StatusTooManyRequests) {
		c.clock.observe(resp.Header.Get("Date"), c.cfg.Now())
	}
	return resp, err
}

// get sends one request for a page. retryAfter is the server's
// Retry-After for a 503.
func (c *Client) get(ctx context.Context, u string) (p Page, size int, retryAfter time.Duration, err error) {
	body, retryAfter, err := c.getBody(ctx, u)
	if err != nil {
		return Page{}, 0, retryAfter, err
	}
	p, err = decodePage(body)
	if err != nil {
		return Page{}, 0, 0, &retryableError{msg: "malformed response", err: fmt.Errorf("%w (body starts %q)", err, snippet(c.scrubber().Bytes(body)))}
	}
	c.stats.Pages.Add(1)
	c.stats.Events.Add(int64(len(p.Events)))
	return p, len(body), 0, nil
}

// getBody sends one GET and returns the body of its 200 answer, at most
// maxBody bytes; other answers are errors, classified for retry.
func (c *Client) getBody(ctx context.Context, u string) (body []byte, retryAfter time.Duration, err error) {
	rctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("bad request URL (check source.base_url): %w", stripURL(err))
	}
	req.Header.Set("Authorization", "Bearer "+c.tokenOf(ctx))
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	resp, err := c.do(req)
	if err != nil {
		return nil, 0, c.netError("request failed", "no answer", ctx, rctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK && resp.ContentLength > maxBody {
		return nil, 0, tooLarge(fmt.Sprintf("response of %d bytes", resp.ContentLength))
	}
	body, err = io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	c.stats.Bytes.Add(int64(len(body)))
	if resp.StatusCode != http.StatusOK {
		ra, err := c.statusError(resp.StatusCode, resp.Header, body)
		return nil, ra, err
	}
	if err != nil {
		return nil, 0, c.netError("reading the response", "not complete", ctx, rctx, err)
	}
	if len(body) > maxBody {
		return nil, 0, tooLarge("response")
	}
	return body, 0, nil
}

// netError is a request, or the reading of its answer, that failed on the
// way: a transient failure. When the request's own deadline (rctx, of
// source.timeout) ended it, not the caller's (ctx), it says so, in the
// words of what (an answer not begun, or not complete): net/http says only
// "context deadline exceeded", naming neither the wait nor the setting.
//
// A TLS failure is not retried: a certificate the client does not trust, or
// a server that does not speak TLS at an https:// URL, answers the same at
// every try (was: retried for about 95 s, max_retries times). Nor is a
// redirect the client does not follow (checkRedirect), nor a proxy's 4xx to
// the CONNECT (netproxy.Error).
//
// Nor is a host name that does not exist (hostNotFound).
//
// A deadline noticed long after it passed means that the process did not
// run in between: the wait was not the API's.
func (c *Client) netError(msg, what string, ctx, rctx context.Context, err error) error {
	if tlsErr := tlsFailure(err); tlsErr != nil {
		return tlsErr
	}
	if nf := c.hostNotFound(err); nf != nil {
		return nf
	}
	if re := (*redirectError)(nil); errors.As(err, &re) {
		return re
	}
	if pe := (*netproxy.Error)(nil); errors.As(err, &pe) {
		if !pe.Retryable() {
			return pe
		}
		return &retryableError{msg: msg, err: pe}
	}
	if rctx.Err() != nil && ctx.Err() == nil {
		err = fmt.Errorf("%s within %s (source.timeout)", what, c.cfg.Timeout)
		if end, ok := rctx.Deadline(); ok {
			if late := time.Since(end); late > lateDeadline {
				err = fmt.Errorf("%w, a deadline this process noticed %s late: it did not run meanwhile (stopped with SIGSTOP or Ctrl-Z, its container or machine paused), so the API may well have answered in time",
					err, late.Round(time.Second))
			}
		}
	}
	return &retryableError{msg: msg + netproxy.Via(c.http.Transport, c.cfg.BaseURL), err: stripURL(err)}
}

// hostNotFound names a host name the resolver says does not exist
// (NXDOMAIN, or no address), a typo in source.base_url or in the proxy
// variable, before any server of this client has answered; nil for any
// other error. It is not retried, as a TLS failure is not: the name
// answers the same at every try (was: retried max_retries times, some
// 90 s with the defaults). A temporary failure of the resolver (SERVFAIL,
// a timeout) is retried; so is a name not found after a server answered,
// since the name did resolve: a resolver that briefly denies it.
func (c *Client) hostNotFound(err error) error {
	var dns *net.DNSError
	if !errors.As(err, &dns) || !dns.IsNotFound || dns.IsTemporary || dns.IsTimeout || c.answered.Load() {
		return nil
	}
	said := ""
	if dns.Server != "" {
		said = ", answered " + dns.Server
	}
	base, _ := url.Parse(c.cfg.BaseURL)
	if via := netproxy.Via(c.http.Transport, c.cfg.BaseURL); via != "" && (base == nil || !strings.EqualFold(dns.Name, base.Hostname())) {
		return fmt.Errorf("DNS: the host name %s does not exist (no such host%s): check the proxy's address%s", dns.Name, said, via)
	}
	return fmt.Errorf("DNS: the host name %s of source.base_url does not exist (no such host%s): check the host name in source.base_url", dns.Name, said)
}

// tlsFailure names a TLS failure on the way to source.base_url and what to
// do about it, or returns nil for any other error.
//
// A certificate for another host name is told apart from an untrusted one:
// adding a CA does not help it (was: "not trusted ... add its CA"). So is a
// server that offers only TLS versions before 1.2, which the client refuses
// (was: retried max_retries times as "remote error: tls: protocol version
// not supported").
func tlsFailure(err error) error {
	var cv *tls.CertificateVerificationError
	var host x509.HostnameError
	var rh tls.RecordHeaderError
	switch {
	case errors.As(err, &cv) && errors.As(cv.Err, &host):
		return fmt.Errorf("TLS: the certificate of the server at source.base_url is for another host name (%v): check the host name in source.base_url (a TLS-inspecting proxy must issue its certificate for that name); adding a CA does not help", cv.Err)
	case errors.As(err, &cv):
		return fmt.Errorf("TLS: the certificate of the server at source.base_url is not trusted (%v): check source.base_url, or add the CA that signed it (a TLS-inspecting proxy's, behind one) to the system's trust store, or to a bundle SSL_CERT_FILE names", cv.Err)
	case errors.Is(err, http.ErrSchemeMismatch), errors.As(err, &rh):
		return errors.New("TLS: the server at source.base_url does not speak TLS: check the URL's scheme (http:// or https://) and port")
	case tlsversion.TooOld(err):
		return fmt.Errorf("TLS: the server at source.base_url offers only TLS versions before 1.2, which the client refuses (%v): the server, or a TLS-inspecting proxy on the way, must offer TLS 1.2 or 1.3", stripURL(err))
	}
	return nil
}

// tooLarge is a 200 answer over maxBody, read no further: a page of
// PageSize events is far smaller, and reading on would hold that much per
// window in flight.
func tooLarge(what string) error {
	return &retryableError{msg: fmt.Sprintf("%s over the %d MiB a page may take", what, maxBody>>20), err: errTooLarge}
}

// errTooLarge is the cause of an answer over maxBody: pages are asked
// smaller until one event a page is, then the request fails.
var errTooLarge = fmt.Errorf("asked smaller down to one event a page (an event of more than %d MiB, or is source.base_url the API?)", maxBody>>20)

// statusError classifies an answer that is not a success: a 429 with its
// Retry-After (1 s when absent), a retryable 5xx (with a 503's Retry-After),
// a proxy's 407 (netproxy.Forwarded), or a permanent *APIError. The token is removed from the body before any of
// it is cut or quoted into the error.
func (c *Client) statusError(status int, header http.Header, body []byte) (time.Duration, error) {
	// Only a proxy answers 407 (was: "the API refused the request (407").
	if err := netproxy.Forwarded(c.http.Transport, c.cfg.BaseURL, status); err != nil {
		return 0, err
	}
	body = c.scrubber().Bytes(body)
	asked := retryAfterAsked(header.Get("Retry-After"), serverNow(header, time.Now()))
	ra := min(asked, maxRetryAfter)
	switch {
	case status == http.StatusTooManyRequests:
		if ra <= 0 {
			ra = time.Second
		}
		return ra, &throttledError{retryAfter: ra, asked: asked}
	case status >= 500:
		return ra, &retryableError{msg: strings.TrimSpace(fmt.Sprintf("server error %d %s", status, snippet(body)))}
	}
	e := parseAPIError(status, body)
	e.Code, e.Key, e.Message = c.scrubber().String(e.Code), c.scrubber().String(e.Key), c.scrubber().String(e.Message)
	return 0, e
}

// decodePage decodes a 200 body. A body that is not the documented envelope
// is an error, so that a truncated or HTML answer is retried, never taken as
// an empty page. Its errors quote nothing of the body, which may echo the
// token: the caller adds the start of the body without it.
func decodePage(body []byte) (Page, error) {
	var env struct {
		Data *[]json.RawMessage `json:"data"`
		Meta *struct {
			Paginate *struct {
				NextPage *string `json:"next_page"`
				PrevPage *string `json:"prev_page"`
				HasNext  *bool   `json:"has_next"`
			} `json:"paginate"`
		} `json:"meta"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return Page{}, err
	}
	if env.Data == nil || env.Meta == nil {
		return Page{}, errors.New("no data or meta")
	}
	// Without them a page would read as the last one, and the rest of its
	// window would be left out without a word (paginate and its next_page
	// are required in the OpenAPI document).
	if env.Meta.Paginate == nil {
		return Page{}, errors.New("no meta.paginate")
	}
	pg := *env.Meta.Paginate
	if pg.HasNext == nil && pg.NextPage == nil {
		return Page{}, errors.New("meta.paginate has neither has_next nor next_page")
	}
	p := Page{Events: make([]Event, 0, len(*env.Data))}
	if pg.NextPage != nil {
		p.Next = *pg.NextPage
	}
	if pg.PrevPage != nil {
		p.Prev = *pg.PrevPage
	}
	if pg.HasNext != nil {
		p.HasNext = *pg.HasNext
	} else {
		// has_next is optional in the OpenAPI document; without it, follow a
		// cursor as long as pages are not empty.
		p.HasNext = p.Next != "" && len(*env.Data) > 0
	}
	if p.HasNext && p.Next == "" {
		return Page{}, errors.New("has_next is true but next_page is empty")
	}
	for _, raw := range *env.Data {
		p.Events = append(p.Events, parseEvent(raw))
	}
	return p, nil
}

func parseEvent(raw json.RawMessage) Event {
	ev := Event{Raw: raw}
	// Members by their exact names, the last of a repeated name winning, as
	// the transform reads them: encoding/json also takes "ID" or
	// "CREATED_AT" for a field, and an event with both spellings would be
	// placed in the window of a time the transform does not export, then
	// left out of its day without a word. A struct is decoded at a third of
	// a map's cost; an event where another spelling of the two names
	// appears anywhere is decoded into a map instead.
	var id, at0 json.RawMessage
	if otherSpelling(raw, "id") || otherSpelling(raw, "created_at") {
		var head map[string]json.RawMessage
		if json.Unmarshal(raw, &head) != nil {
			return ev
		}
		id, at0 = head["id"], head["created_at"]
	} else {
		var head struct {
			ID        json.RawMessage `json:"id"`
			CreatedAt json.RawMessage `json:"created_at"`
		}
		if json.Unmarshal(raw, &head) != nil {
			return ev
		}
		id, at0 = head.ID, head.CreatedAt
	}
	switch {
	case len(id) > 0 && id[0] == '"':
		_ = json.Unmarshal(id, &ev.ID) // "" stays "": not usable
	case len(id) > 0 && (id[0] == '-' || id[0] >= '0' && id[0] <= '9'):
		ev.ID = string(id)
	}
	// The transform's reading of created_at, so that an event the transform
	// exports is one the fetcher could place in its window and recognise
	// when a page repeats it.
	var at string
	if len(at0) > 0 && at0[0] == '"' && json.Unmarshal(at0, &at) == nil {
		ev.At, ev.TimeOK = timestamp.Parse([]byte(at))
	}
	return ev
}

// otherSpelling reports whether raw holds the quoted string name spelt
// otherwise than exactly (another case, or an escape such as \u0069d), so
// that encoding/json might take it for name. It may say true of a value or
// a nested member: the caller then only takes the slower way.
func otherSpelling(raw []byte, name string) bool {
	for i := 0; i < len(raw); i++ {
		if raw[i] != '"' {
			continue
		}
		j := i + 1
		for j < len(raw) && raw[j] != '"' {
			if raw[j] == '\\' {
				j++
			}
			j++
		}
		if j >= len(raw) {
			return false
		}
		s := raw[i+1 : j]
		i = j
		if string(s) == name {
			continue
		}
		if bytes.EqualFold(s, []byte(name)) || bytes.IndexByte(s, '\\') >= 0 && len(s) <= 6*len(name) {
			return true
		}
	}
	return false
}

// serverNow is the time the answer was made by the server's clock: its Date
// header, or now when it has none. An HTTP-date Retry-After is a time on the
// server's clock; measured from this machine's clock instead, a server clock
// an hour ahead would turn "retry in 2 s" into the 10 minute cap.
func serverNow(header http.Header, now time.Time) time.Time {
	if t, err := http.ParseTime(header.Get("Date")); err == nil {
		return t
	}
	return now
}

// maxRetryAfter caps the wait for one Retry-After.
const maxRetryAfter = 10 * time.Minute

// parseRetryAfter reads Retry-After as seconds or an HTTP date; 0 when absent
// or unreadable. now is the server's time (serverNow). It is capped at
// maxRetryAfter.
func parseRetryAfter(v string, now time.Time) time.Duration {
	return min(retryAfterAsked(v, now), maxRetryAfter)
}

// retryAfterAsked is Retry-After as the server sent it, uncapped (a year
// at most, so that no number of seconds overflows a Duration).
func retryAfterAsked(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	const most = 365 * 24 * time.Hour
	var d time.Duration
	if secs, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
		d = time.Duration(min(max(secs, 0), most.Seconds()) * float64(time.Second))
	} else if t, err := http.ParseTime(v); err == nil {
		d = min(t.Sub(now), most)
		if d <= 0 {
			d = time.Second // the date passed while the answer travelled
		}
	}
	return max(d, 0)
}

// backoff is the wait before retry n (1-based): exponential from 250 ms,
// capped at 30 s, with jitter over its upper half.
func backoff(n int) time.Duration {
	d := 250 * time.Millisecond << min(n-1, 7)
	d = min(d, 30*time.Second)
	return d/2 + rand.N(d/2+1)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// stripURL drops the request URL from a net/http error: it is long, and the
// message should name the failure, not repeat the query.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
