// Package simulator is a local stand-in for the Pachca API: GET /audit_events
// with pagination, rate limits and injected faults, and POST /messages. The
// exporter's tests, the demo and the benchmarks run against it.
package simulator

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// BasePath is the path prefix of every API route, as on api.pachca.com.
const BasePath = "/api/shared/v1"

// Tokens with a fixed meaning besides Config.Token: they authenticate, but
// GET /audit_events refuses them like the API refuses a token without the
// audit_events:read scope (403) or a workspace without the Corporation plan (402).
const (
	TokenNoScope = "sim-no-scope"
	TokenNoPlan  = "sim-no-plan"
)

// Fault kinds accepted in Config.Faults and SetFaults.
const (
	Fault500      = "500"      // 500 with an ApiError body
	Fault502      = "502"      // 502 with an ApiError body
	Fault503      = "503"      // 503 with an ApiError body and Retry-After: 1
	FaultReset    = "reset"    // the connection is reset, no response
	FaultTruncate = "truncate" // 200, full Content-Length, half the body, then close
	FaultHTML     = "html"     // an HTML error page with status 200 or 502
	FaultSlow     = "slow"     // the answer comes after SlowDelay
	// Fault429: 429 with Retry-After: 1 whatever the request rate, as a
	// gateway shedding load answers; the rate model is not charged. Not among
	// the recoverable kinds DefaultConfig draws from, because every one costs
	// a client a second.
	Fault429 = "429"

	// Pagination faults shape a 200 answer to a request that carries a
	// cursor; a request without one is answered normally and counts no fault.

	// FaultCursorLoop: the page's events, has_next true, and as next_page the
	// request's own cursor: a client that follows it loops forever.
	FaultCursorLoop = "cursor_loop"
	// FaultEmptyPage: no events, has_next true, and a next_page (spelt
	// differently from any cursor before) that leads to the page this one
	// should have been. Nothing is lost.
	FaultEmptyPage = "empty_page"
	// FaultDupPage: the page starts with the event the request's cursor points
	// at, the last event of the previous page, then the events that follow it
	// (one fewer, so that the page keeps its size). Nothing is lost. Applies
	// to newest-first cursors only.
	FaultDupPage = "dup_page"
)

// AllFaults lists every fault kind, in a fixed order; Config.Faults and
// SetFaults accept these.
func AllFaults() []string {
	return append(RecoverableFaults(), Fault429, FaultCursorLoop)
}

// RecoverableFaults lists the kinds a correct client gets through with every
// event exactly once (slow ones need a timeout below SlowDelay): every kind
// but FaultCursorLoop, after which a client can only stop. DefaultConfig
// draws from these.
func RecoverableFaults() []string {
	return []string{Fault500, Fault502, Fault503, FaultReset, FaultTruncate, FaultHTML, FaultSlow,
		FaultEmptyPage, FaultDupPage}
}

// Config describes the simulated workspace and how the server misbehaves.
// The zero value is not useful; start from DefaultConfig.
type Config struct {
	Token string // accepted bearer token; default "sim-token"
	// Tokens are further bearer tokens of the workspace's owner accepted
	// from the start, as Token is: a token rotated while a client runs
	// (Server.RevokeToken, AddToken, POST /_sim/tokens).
	Tokens []string
	// NoMessagesScope: Token lacks scope messages:create: POST /messages
	// answers 403, and GET /oauth/token/info lists audit_events:read only.
	NoMessagesScope bool
	// MessageMaxBytes is the longest content POST /messages takes, in
	// bytes of UTF-8; a longer one is refused 422 too_long. 0 for
	// DefaultMessageMaxBytes.
	MessageMaxBytes int
	// OwnerID is the workspace owner's user id: the user of Token, which
	// GET /oauth/token/info names, and the actor of the owner's events;
	// 0 for 10001. Another workspace has another owner.
	OwnerID   uint64
	Events    int       // number of events generated
	From, To  time.Time // generated events lie in [From, To)
	Seed      int64     // same seed and config: same events, byte for byte, and the same draws of faults
	TieGroups bool      // many events share one millisecond (groups larger than a page too)
	Midnight  bool      // some events exactly at 00:00:00.000 and 23:59:59.999 UTC of days in range
	// Micros keeps created_at in microseconds, as a database does, and
	// compares start_time and end_time with them, while events show
	// milliseconds as the API writes them: an event at 23:59:59.999500 is
	// after an end_time of 23:59:59.999. Off: every event lies on a whole
	// millisecond.
	Micros bool
	// Disorder: the API orders events by their place in its log (the id
	// its cursors hold), and a generated event's created_at lies up to
	// this much before that place, as when concurrent writers commit out
	// of order: newest first only roughly; a live or written event (Live,
	// WriteEvent) takes its place at the top of the log when written, a
	// late one too. start_time and end_time still select by created_at. 0:
	// the log is in created_at order.
	Disorder    time.Duration
	UnknownKeys bool // some events with an event_key or a details field not in the spec
	// TieGroup puts this many of the events into one millisecond (one
	// group, besides TieGroups' small ones): 0 = none.
	TieGroup int
	// BigDetails pads the details of BigEvents events (spread over the
	// range) with an unlisted string field to about this many bytes: 0 = none.
	BigDetails, BigEvents int
	// ExtraKeys: about half the events get one of this many event keys that
	// no list has (unlisted_event_0001, ...), each at least once when
	// Events allows: a workspace on a newer API. 0 = none.
	ExtraKeys int
	// OddKeys: a few events whose event_key or id holds slashes, dots, "..",
	// unicode, a NUL, or 300 characters: what a broken or hostile server
	// might send. The filter event_key accepts these keys too.
	OddKeys bool
	// HostileText: the names members type (tags', chats') and the user
	// agents that clients send are now and then one of HostileTexts:
	// markup, script, terminal escape sequences, a bidirectional
	// override, line breaks; the report, the terminal and the alerts
	// must show them as text.
	HostileText bool
	MaxRange    time.Duration // end_time-start_time above it: 422 invalid_date_range (0 = unlimited)
	RateLimit   float64       // requests per second per token (0 = unlimited); over it: 429 + Retry-After
	// LimitModel is how RateLimit is enforced: one of LimitModels; "" is
	// LimitTokenBucket. The limit sits in front of the API: a 429 is answered
	// at once, without Latency.
	LimitModel string
	Burst      int // bucket size of LimitTokenBucket (at least 1 with a rate limit)
	// RetryAfterHTTPDate sends Retry-After as an HTTP date instead of seconds.
	RetryAfterHTTPDate bool
	// BlockAfter: a token that sends this many requests while it should be
	// waiting after a 429 gets blocked for BlockFor (0 = never).
	BlockAfter int
	BlockFor   time.Duration // blocked tokens get 429 for this long
	Latency    time.Duration // added to every API request
	Jitter     time.Duration // uniform extra latency in [0, Jitter)
	FaultRate  float64       // probability that a GET /audit_events request gets a fault
	Faults     []string      // kinds drawn from, uniformly: see the Fault* constants
	SlowDelay  time.Duration // how long a "slow" fault sleeps before answering
	// AccessedEvents: each GET /audit_events call that passes auth and the rate
	// limit writes an audit_events_accessed event at the server's now.
	AccessedEvents bool
	// Live writes new events at the wall clock while the server runs.
	Live Live
	// ClockOffset moves the server's now (live and accessed events, Date and
	// an HTTP-date Retry-After) from the wall clock, e.g. to a few seconds
	// before a UTC midnight in tests.
	ClockOffset time.Duration
}

// DefaultConfig returns a small workspace: 5,000 events over the seven UTC
// days before today, ties and midnight events on, no limits and no faults
// (a fault rate alone draws from RecoverableFaults).
func DefaultConfig() Config {
	to := time.Now().UTC().Truncate(24 * time.Hour)
	return Config{
		Token:      "sim-token",
		Events:     5000,
		From:       to.AddDate(0, 0, -7),
		To:         to,
		Seed:       1,
		TieGroups:  true,
		Midnight:   true,
		LimitModel: LimitTokenBucket,
		Burst:      50,
		BlockFor:   time.Minute,
		Faults:     RecoverableFaults(),
		SlowDelay:  time.Minute,
	}
}

// DefaultMessageMaxBytes is the longest message content the simulator
// takes by default: the API's OpenAPI document sets no maxLength on it, and
// Pachca's guide gives 40,000 bytes as the longest message (of an incoming
// webhook), the only figure it publishes.
const DefaultMessageMaxBytes = 40000

// messageMaxBytes is MessageMaxBytes or its default.
func (c *Config) messageMaxBytes() int {
	if c.MessageMaxBytes != 0 {
		return c.MessageMaxBytes
	}
	return DefaultMessageMaxBytes
}

// The helpers below take a pointer: a copy of the whole Config would read
// Live, which SetLive writes while the server runs.

// micros is t as an event's created_at is kept: Unix microseconds, whole
// milliseconds unless Micros.
func (c *Config) micros(t time.Time) int64 {
	if c.Micros {
		return t.UnixMicro()
	}
	return t.UnixMilli() * 1000
}

// users is how many users the workspace has: ids firstUser and up.
func (c *Config) users() int { return max(20, min(5000, c.Events/200)) }

// isUser reports whether id is a user of the workspace, whom a direct
// message can reach: the owner, a user the events name, or a bot.
func (c *Config) isUser(id int64) bool {
	return id == int64(c.owner()) || id >= firstUser && id < firstUser+int64(c.users()) || id >= firstBot && id < firstBot+bots
}

// skew is the most an event's place in the log lies after its created_at,
// in microseconds (Disorder, and the millisecond a created_at is cut to).
func (c *Config) skew() int64 {
	if c.Disorder <= 0 {
		return 0
	}
	return int64(c.Disorder/time.Microsecond) + 1000
}

// owner is the workspace owner's user id (OwnerID).
func (c *Config) owner() uint64 {
	if c.OwnerID != 0 {
		return c.OwnerID
	}
	return ownerID
}

// Validate reports every impossible setting; it does no I/O.
func (c Config) Validate() error {
	var errs []error
	if c.Token == "" {
		errs = append(errs, errors.New("token: required"))
	}
	for _, tok := range append([]string{c.Token}, c.Tokens...) {
		if tok == TokenNoScope || tok == TokenNoPlan {
			errs = append(errs, fmt.Errorf("token: %q is reserved", tok))
		}
	}
	if slices.Contains(c.Tokens, "") {
		errs = append(errs, errors.New("tokens: an empty token"))
	}
	if c.Events < 0 {
		errs = append(errs, fmt.Errorf("events: %d is negative", c.Events))
	}
	if c.Events > 0 && !c.From.Before(c.To) {
		errs = append(errs, fmt.Errorf("from/to: from %s is not before to %s", c.From.Format(time.RFC3339), c.To.Format(time.RFC3339)))
	}
	if c.TieGroup < 0 || c.BigDetails < 0 || c.BigEvents < 0 || c.ExtraKeys < 0 {
		errs = append(errs, errors.New("tie-group, big-details, big-events, extra-keys: must not be negative"))
	}
	if c.TieGroup > c.Events {
		errs = append(errs, fmt.Errorf("tie-group: %d is more than events %d", c.TieGroup, c.Events))
	}
	if c.ExtraKeys > 60000 {
		errs = append(errs, fmt.Errorf("extra-keys: %d, at most 60000", c.ExtraKeys))
	}
	if c.MessageMaxBytes < 0 {
		errs = append(errs, fmt.Errorf("message-max-bytes: %d is negative", c.MessageMaxBytes))
	}
	if c.Disorder < 0 {
		errs = append(errs, fmt.Errorf("disorder: %s is negative", c.Disorder))
	}
	if c.MaxRange < 0 {
		errs = append(errs, fmt.Errorf("max-range: %s is negative", c.MaxRange))
	}
	if err := c.validateLimit(); err != nil {
		errs = append(errs, err)
	}
	if c.Latency < 0 || c.Jitter < 0 || c.SlowDelay < 0 {
		errs = append(errs, errors.New("latency, jitter, slow delay: must not be negative"))
	}
	if err := validateFaults(c.FaultRate, c.Faults); err != nil {
		errs = append(errs, err)
	}
	if err := c.Live.validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// validateLimit checks the settings of the rate limit.
func (c Config) validateLimit() error {
	var errs []error
	if c.RateLimit < 0 {
		errs = append(errs, fmt.Errorf("rate: %g is negative", c.RateLimit))
	}
	switch c.LimitModel {
	case "", LimitTokenBucket:
		if c.RateLimit > 0 && c.Burst < 1 {
			errs = append(errs, fmt.Errorf("burst: %d, must be at least 1 with a rate limit", c.Burst))
		}
	case LimitPacing:
	case LimitSlidingWindow, LimitFixedWindow:
		if c.RateLimit > 0 && c.RateLimit < 1 {
			errs = append(errs, fmt.Errorf("rate: %g, a %s limit needs at least 1 request per second", c.RateLimit, c.LimitModel))
		}
	default:
		errs = append(errs, fmt.Errorf("limit-model: unknown model %q (want one of %v)", c.LimitModel, LimitModels()))
	}
	if c.BlockAfter < 0 {
		errs = append(errs, fmt.Errorf("block-after: %d is negative", c.BlockAfter))
	}
	if c.BlockAfter > 0 && c.BlockFor <= 0 {
		errs = append(errs, errors.New("block-for: must be positive with block-after"))
	}
	return errors.Join(errs...)
}

func validateFaults(rate float64, kinds []string) error {
	if rate < 0 || rate > 1 {
		return fmt.Errorf("fault-rate: %g is not in [0, 1]", rate)
	}
	if rate > 0 && len(kinds) == 0 {
		return errors.New("faults: empty list with a positive fault rate")
	}
	for _, k := range kinds {
		if !slices.Contains(AllFaults(), k) {
			return fmt.Errorf("faults: unknown kind %q (want one of %v)", k, AllFaults())
		}
	}
	return nil
}
