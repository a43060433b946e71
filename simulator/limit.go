package simulator

import (
	"math"
	"sync"
	"time"
)

// limiter is a token bucket per bearer token, with the API's penalty for
// clients that ignore 429: after a 429 the token should wait Retry-After;
// every request in that time is answered 429 again, and BlockAfter of them
// block the token for BlockFor.
type limiter struct {
	rate       float64
	burst      float64
	blockAfter int
	blockFor   time.Duration

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens       float64
	last         time.Time
	waitUntil    time.Time // the Retry-After of the last 429
	violations   int       // requests sent before waitUntil
	blockedUntil time.Time
}

func newLimiter(cfg Config) *limiter {
	return &limiter{rate: cfg.RateLimit, burst: float64(cfg.Burst), blockAfter: cfg.BlockAfter,
		blockFor: cfg.BlockFor, buckets: map[string]*bucket{}}
}

// verdict is the limiter's answer for one request.
type verdict struct {
	retryAfter time.Duration // 0: go ahead; else answer 429 with this wait (whole seconds)
	blockNow   bool          // this request started a block
}

// allow decides one request of token at now.
func (l *limiter) allow(token string, now time.Time) verdict {
	if l.rate <= 0 {
		return verdict{}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[token]
	if b == nil {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[token] = b
	}
	if now.Before(b.blockedUntil) {
		return verdict{retryAfter: ceilSecond(b.blockedUntil.Sub(now))}
	}
	if now.Before(b.waitUntil) {
		b.violations++
		if l.blockAfter > 0 && b.violations >= l.blockAfter {
			b.blockedUntil, b.waitUntil, b.violations = now.Add(l.blockFor), time.Time{}, 0
			return verdict{retryAfter: ceilSecond(l.blockFor), blockNow: true}
		}
		return verdict{retryAfter: ceilSecond(b.waitUntil.Sub(now))}
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		b.violations = 0
		return verdict{}
	}
	wait := ceilSecond(time.Duration((1 - b.tokens) / l.rate * float64(time.Second)))
	b.waitUntil, b.violations = now.Add(wait), 0
	return verdict{retryAfter: wait}
}

// ceilSecond rounds d up to whole seconds, at least one: Retry-After has no fractions.
func ceilSecond(d time.Duration) time.Duration {
	return time.Duration(max(1, math.Ceil(d.Seconds()))) * time.Second
}
