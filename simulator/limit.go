package simulator

import (
	"fmt"
	"math"
	"sync"
	"time"
)

// Rate-limit models accepted in Config.LimitModel: the ways an API commonly
// implements "about RateLimit requests per second". Every model answers 429
// with a Retry-After in whole seconds and applies the same penalty to a token
// that ignores it (Config.BlockAfter).
const (
	// LimitTokenBucket: a bucket of Config.Burst tokens refilled at RateLimit
	// per second; a request takes one.
	LimitTokenBucket = "token-bucket"
	// LimitPacing: a token bucket of one token, so requests must arrive at
	// least 1/RateLimit apart (nginx limit_req without burst).
	LimitPacing = "pacing"
	// LimitSlidingWindow: at most floor(RateLimit) requests admitted in any
	// one second, (now-1s, now].
	LimitSlidingWindow = "sliding-window"
	// LimitFixedWindow: at most floor(RateLimit) requests admitted in each
	// calendar second of the server's clock.
	LimitFixedWindow = "fixed-window"
)

// LimitModels lists the rate-limit models, in a fixed order.
func LimitModels() []string {
	return []string{LimitTokenBucket, LimitPacing, LimitSlidingWindow, LimitFixedWindow}
}

// RateLimit is the rate limit of the simulated API: one model state per
// bearer token, with the API's penalty for clients that ignore 429: after a
// 429 the token should wait Retry-After; every request in that time is
// answered 429 again, and BlockAfter of them block the token for BlockFor.
// The server uses it for every request; tests may drive it directly, in
// virtual time, through Allow. It is safe for concurrent use.
type RateLimit struct {
	cfg Config

	mu     sync.Mutex
	tokens map[string]*tokenLimit
}

type tokenLimit struct {
	model        rateModel
	waitUntil    time.Time // the Retry-After of the last 429
	violations   int       // requests sent before waitUntil
	blockedUntil time.Time
}

// rateModel admits or refuses one request at now; a refusal comes with the
// time until a request would be admitted.
type rateModel interface {
	admit(now time.Time) (ok bool, wait time.Duration)
}

// NewRateLimit returns the rate limit cfg describes (RateLimit, LimitModel,
// Burst, BlockAfter, BlockFor); an error when cfg.Validate would refuse them.
func NewRateLimit(cfg Config) (*RateLimit, error) {
	if err := cfg.validateLimit(); err != nil {
		return nil, fmt.Errorf("simulator: %w", err)
	}
	return &RateLimit{cfg: cfg, tokens: map[string]*tokenLimit{}}, nil
}

func (l *RateLimit) newModel(now time.Time) rateModel {
	n := int(math.Floor(l.cfg.RateLimit))
	switch l.cfg.LimitModel {
	case LimitPacing:
		return &bucket{rate: l.cfg.RateLimit, burst: 1, tokens: 1, last: now}
	case LimitSlidingWindow:
		return &slidingWindow{n: n}
	case LimitFixedWindow:
		return &fixedWindow{n: n}
	}
	return &bucket{rate: l.cfg.RateLimit, burst: float64(l.cfg.Burst), tokens: float64(l.cfg.Burst), last: now}
}

// Verdict is the rate limit's answer to one request.
type Verdict struct {
	// RetryAfter is 0 to go ahead; otherwise the request is answered 429
	// with this wait, in whole seconds.
	RetryAfter time.Duration
	// Violation: the request came while the token should have been waiting
	// out an earlier 429 (or was blocked).
	Violation bool
	// BlockNow: this request started a block of the token.
	BlockNow bool
}

// Allow decides one request of token at now. Calls for one token must come
// with non-decreasing times.
func (l *RateLimit) Allow(token string, now time.Time) Verdict {
	if l.cfg.RateLimit <= 0 {
		return Verdict{}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.allow(token, now)
}

// AllowNow decides one request of token at the time it reads under the
// limit's lock, which it returns: concurrent requests are then decided in
// the order of their times. (A time read before the lock could be older
// than one decided already: a token bucket then took back the refill.)
func (l *RateLimit) AllowNow(token string) (Verdict, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if l.cfg.RateLimit <= 0 {
		return Verdict{}, now
	}
	return l.allow(token, now), now
}

// allow is Allow with l.mu held.
func (l *RateLimit) allow(token string, now time.Time) Verdict {
	t := l.tokens[token]
	if t == nil {
		t = &tokenLimit{model: l.newModel(now)}
		l.tokens[token] = t
	}
	if now.Before(t.blockedUntil) {
		return Verdict{RetryAfter: ceilSecond(t.blockedUntil.Sub(now)), Violation: true}
	}
	if now.Before(t.waitUntil) {
		t.violations++
		if l.cfg.BlockAfter > 0 && t.violations >= l.cfg.BlockAfter {
			t.blockedUntil, t.waitUntil, t.violations = now.Add(l.cfg.BlockFor), time.Time{}, 0
			return Verdict{RetryAfter: ceilSecond(l.cfg.BlockFor), Violation: true, BlockNow: true}
		}
		return Verdict{RetryAfter: ceilSecond(t.waitUntil.Sub(now)), Violation: true}
	}
	ok, wait := t.model.admit(now)
	if ok {
		t.violations = 0
		return Verdict{}
	}
	wait = ceilSecond(wait)
	t.waitUntil, t.violations = now.Add(wait), 0
	return Verdict{RetryAfter: wait}
}

// bucket is a token bucket: burst tokens, refilled at rate per second.
type bucket struct {
	rate, burst float64
	tokens      float64
	last        time.Time
}

func (b *bucket) admit(now time.Time) (bool, time.Duration) {
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
}

// slidingWindow admits at most n requests in any one second: it keeps the
// times of the admitted requests of the last second, oldest first.
type slidingWindow struct {
	n        int
	admitted []time.Time
}

func (s *slidingWindow) admit(now time.Time) (bool, time.Duration) {
	from := now.Add(-time.Second)
	i := 0
	for i < len(s.admitted) && !s.admitted[i].After(from) {
		i++
	}
	s.admitted = append(s.admitted[:0], s.admitted[i:]...)
	if len(s.admitted) < s.n {
		s.admitted = append(s.admitted, now)
		return true, 0
	}
	return false, s.admitted[0].Add(time.Second).Sub(now)
}

// fixedWindow admits at most n requests in each calendar second.
type fixedWindow struct {
	n      int
	second int64 // Unix second of count
	count  int
}

func (f *fixedWindow) admit(now time.Time) (bool, time.Duration) {
	if sec := now.Unix(); sec != f.second {
		f.second, f.count = sec, 0
	}
	if f.count < f.n {
		f.count++
		return true, 0
	}
	return false, time.Unix(f.second+1, 0).Sub(now)
}

// ceilSecond rounds d up to whole seconds, at least one: Retry-After has no fractions.
func ceilSecond(d time.Duration) time.Duration {
	return time.Duration(max(1, math.Ceil(d.Seconds()))) * time.Second
}
