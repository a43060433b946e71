package extract

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter is the one request-rate limiter of a source, shared by every worker.
//
// It starts at the configured rate. A 429 pauses every worker until its
// Retry-After has passed and takes, as the ceiling, the rate the server
// actually accepted over the last two seconds (or the current rate, if
// lower); the rate drops to 70% of the ceiling (50% when the last cut was
// less than five seconds ago), climbs back quickly to 90% of
// it and, past that, probes slowly (1% of the ceiling per second, at least
// a quarter request per second). So a
// server limit below the configured one is found at the first 429 and then
// approached from under it, instead of hit every second.
//
// From the second cut on, the answers counted since the previous cut give a
// better ceiling: a token bucket that was empty at both 429s accepted no
// more than its refill rate in between, whatever its burst, while the
// two-second measure counts the burst too. Then the rate goes to 95% of that
// ceiling (never below half the current rate) and probes at a quarter of a
// percent of it per second up to 110% of it (1% past that), which settles
// the client just under a server limit with a 429 only when a slow probe
// crosses it. A worker that got its token during a pause waits the pause out
// and takes another token.
type Limiter struct {
	target float64
	lim    *rate.Limiter
	now    func() time.Time

	mu           sync.Mutex
	pausedUntil  time.Time
	ceiling      float64
	lastDecrease time.Time
	lastAdjust   time.Time
	accepted     []time.Time // answers of the last acceptWindow
	started      time.Time
	pauseStart   time.Time // the last pause, excluded from the accepted rate
	sinceCut     int       // answers since lastDecrease
	measured     bool      // ceiling is an inter-cut measure: probe near it gently
}

// Bounds of the inter-cut measure: enough answers over a span long enough
// to average out the burst of in-flight requests, recent enough to matter.
const (
	cutMinAnswers = 10
	cutMinSpan    = 2 * time.Second
	cutMaxSpan    = 60 * time.Second
)

// acceptWindow is how far back the accepted rate is measured.
const acceptWindow = 2 * time.Second

// minRate is the floor of the adaptive rate, in requests per second.
const minRate = 0.2

// NewLimiter returns a limiter at rps requests per second (rps <= 0: unlimited).
func NewLimiter(rps float64) *Limiter {
	l := &Limiter{target: rps, ceiling: rps, now: time.Now, started: time.Now()}
	if rps <= 0 {
		l.lim = rate.NewLimiter(rate.Inf, 1)
	} else {
		l.lim = rate.NewLimiter(rate.Limit(rps), 1)
	}
	return l
}

// Wait blocks until a request may be sent, or ctx ends.
func (l *Limiter) Wait(ctx context.Context) error {
	for {
		if err := l.waitPause(ctx); err != nil {
			return err
		}
		if err := l.lim.Wait(ctx); err != nil {
			return err
		}
		// A 429 that came while this worker held a token in the rate
		// limiter's queue paused everyone: sending now would ignore its
		// Retry-After, which the API punishes by blocking the token.
		if !l.paused() {
			return nil
		}
	}
}

func (l *Limiter) paused() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.now().Before(l.pausedUntil)
}

// waitPause blocks while a 429's Retry-After lasts.
func (l *Limiter) waitPause(ctx context.Context) error {
	for {
		l.mu.Lock()
		d := l.pausedUntil.Sub(l.now())
		l.mu.Unlock()
		if d <= 0 {
			return nil
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Throttled records a 429 answered after retryAfter.
func (l *Limiter) Throttled(retryAfter time.Duration) {
	if l.target <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	// Requests in flight together meet the same limit: slow down once per second.
	if since := now.Sub(l.lastDecrease); since >= time.Second {
		cur := float64(l.lim.Limit())
		cut := 0.7
		if since < 5*time.Second {
			cut = 0.5 // 429s again soon after a cut: the limit is far below
		}
		next := cur * cut
		// Without a measure of what the server accepts, the cut rate is the
		// ceiling: probe slowly from it rather than climb back.
		l.ceiling, l.measured = next, false
		if est, ok := l.interCutRate(since); ok {
			l.ceiling, next, l.measured = est, max(0.95*est, 0.5*cur), true
		} else if acc, ok := l.acceptedRate(now); ok && acc < cur {
			l.ceiling, next = acc, acc*0.7
		}
		l.lim.SetLimitAt(now, rate.Limit(max(next, minRate)))
		l.lastDecrease, l.lastAdjust = now, now
		l.sinceCut = 0
	}
	if !now.Before(l.pausedUntil) {
		l.pauseStart = now
	}
	if until := now.Add(retryAfter); until.After(l.pausedUntil) {
		l.pausedUntil = until
	}
}

// acceptedRate is the rate of answered requests over the last acceptWindow;
// ok is false until there is half a second of history. Called with l.mu held.
func (l *Limiter) acceptedRate(now time.Time) (float64, bool) {
	l.trim(now)
	from := now.Add(-acceptWindow)
	if l.started.After(from) {
		from = l.started
	}
	span := now.Sub(from)
	// Time spent paused by an earlier 429 accepted nothing: leave it out.
	if ps, pe := maxTime(l.pauseStart, from), minTime(l.pausedUntil, now); pe.After(ps) {
		span -= pe.Sub(ps)
	}
	// Few answers say more about how busy the workers were than about the server.
	if span < 500*time.Millisecond || len(l.accepted) < 10 {
		return 0, false
	}
	return float64(len(l.accepted)) / span.Seconds(), true
}

// interCutRate is the rate of answers since the previous cut, since ago;
// ok is false for the first cut, or too few answers or too short or long a
// span to trust. Called with l.mu held.
func (l *Limiter) interCutRate(since time.Duration) (float64, bool) {
	if l.lastDecrease.IsZero() || l.sinceCut < cutMinAnswers || since < cutMinSpan || since > cutMaxSpan {
		return 0, false
	}
	return float64(l.sinceCut) / since.Seconds(), true
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func (l *Limiter) trim(now time.Time) {
	i := 0
	for i < len(l.accepted) && now.Sub(l.accepted[i]) > acceptWindow {
		i++
	}
	l.accepted = append(l.accepted[:0], l.accepted[i:]...)
}

// Succeeded records an answered request and lets the rate recover.
func (l *Limiter) Succeeded() {
	if l.target <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.accepted = append(l.accepted, now)
	l.sinceCut++
	if len(l.accepted) > 512 {
		l.trim(now)
	}
	cur := float64(l.lim.Limit())
	if cur >= l.target {
		return
	}
	elapsed := now.Sub(l.lastAdjust).Seconds()
	if elapsed < 0.25 {
		return
	}
	step := max(0.01*l.ceiling, 0.25) // probing above the last 429
	switch {
	case cur < 0.9*l.ceiling:
		step = 0.1 * l.ceiling // climbing back after the cut
	case l.measured && cur < 1.1*l.ceiling:
		// Near a measured limit a server's burst hides the crossing for
		// a while: probing fast would overshoot it far, then 429 together.
		step = 0.0025 * l.ceiling
	}
	r := cur + step*elapsed
	if cur < 0.9*l.ceiling {
		r = min(r, 0.9*l.ceiling)
	}
	l.lim.SetLimitAt(now, rate.Limit(min(max(r, minRate), l.target)))
	l.lastAdjust = now
}

// Rate is the current limit in requests per second.
func (l *Limiter) Rate() float64 { return float64(l.lim.Limit()) }
