package extract

import (
	"context"
	"log/slog"
	"math"
	"runtime"
	"slices"
	"sort"
	"sync"
	"time"
)

// Limiter is the one request-rate limiter of a source, shared by every worker.
//
// It paces requests evenly at 98% of its estimate of the rate the server
// admits (at first the configured rate), so that neither a token bucket, a
// strict pacer nor a one-second window sees more than it allows, even when a
// request leaves a little late or early. A 429 pauses every worker for its
// Retry-After and is read as a measurement, not as a penalty:
//
//   - A 429 at a rate that held for a while (steadyHold) is the edge of the
//     server's limit, or arrival jitter: the estimate drops by 2% and climbs
//     back slowly while nothing more comes.
//   - A 429 soon after the start or a change says the server's limit is well
//     below: the new estimate is the number of requests it admitted in the
//     second before (exact for a sliding window, at most the limit for the
//     other models), and the limiter tests it.
//   - When a tested estimate fails too, the requests admitted between the two
//     429s, over the time between them, measure the server's rate: exactly a
//     token bucket's refill rate (the bucket was empty at both), a lower bound
//     for a window, whose capacity the pause wasted. The limiter then searches
//     between the highest rate that held and the lowest that failed, halving
//     the gap with each test, until the two agree within 2%, or two
//     measurements agree (a token bucket).
//
// Workers wake late on a busy machine: a request that leaves up to two
// slots late keeps the schedule, so the next ones may follow sooner, but
// never more than the rate in any second (and 20 ms). Once a 429 follows
// such a short gap, where longer gaps were all admitted, the server is
// taken to pace requests and the limiter keeps strict spacing from then on.
// Of the requests waiting, the one with the lowest priority (the oldest
// window) goes first.
type Limiter struct {
	target float64 // the configured rate; <= 0 unlimited
	now    func() time.Time

	mu          sync.Mutex
	est         float64       // the estimate of the server's limit, at most target
	rate        float64       // pacing rate: pace × est
	strict      bool          // no catch-up: the server punished a short gap
	tat         time.Time     // when the next request is due on the schedule
	pausedUntil time.Time     // every worker waits until then (Retry-After)
	resumed     time.Time     // the end of the last pause
	partial     float64       // requests admitted before a 429 that came within a second of the start or a pause
	stormFrom   time.Time     // 429s to requests sent before this were already counted
	sends       []sendRecord  // the last historySpan of requests, in order
	lastCut     time.Time     // send time of the request whose 429 was the last cut
	cutPrevRate float64       // the admitted rate measured at the last cut (0: none)
	started     time.Time     // the first request
	testing     bool          // est is being tested (a search is on)
	testFrom    time.Time     // when the current test began
	good, bad   float64       // the highest rate that held, the lowest that failed, while searching
	lastAdjust  time.Time     // of the slow climb
	waiting     []*waiter     // requests in Wait
	seq         uint64        // of the last waiter
	log         *slog.Logger  // how each 429 was read, at debug level
	latency     time.Duration // moving average of the time per request outside the limiter; 0 before the first
}

type sendRecord struct {
	at        time.Time
	gap       time.Duration // since the request before
	throttled bool
}

// Tuning of the estimator. They are shares and spans, not rates: the same
// for a limit of 5 or 500 requests per second.
const (
	pace         = 0.98             // pacing share of the estimate
	spinWindow   = time.Millisecond // strict spacing: how long before its time a worker stops sleeping
	catchUp      = 2                // slots a late request may be behind and keep the schedule
	guardSpan    = time.Second + 20*time.Millisecond
	edgeCut      = 0.98             // estimate after a 429 at a proven rate
	searchStep   = 0.85             // first test after 429s that name no limit
	pacerCut     = 0.95             // estimate after a 429 soon after another, strict spacing
	steadyHold   = 5 * time.Second  // a rate that held this long without a 429 is proven
	testHold     = 3 * time.Second  // a tested rate that held this long passes
	recentCut    = 15 * time.Second // two 429s closer than this measure the rate between them
	historySpan  = recentCut + 2*time.Second
	maxHistory   = 4096             // sends kept at most: 80 s at 50 a second, 2 s at 2,000
	agree        = 0.03             // two measures within 3% agree
	converged    = 0.025            // a search ends when its bounds are this close
	climbEvery   = 30 * time.Second // with no 429 this long, the estimate climbs
	climbStep    = 0.01             // by this share, every climbEvery
	minRate      = 0.2              // requests per second, the floor of the estimate
	minMeasured  = 10               // answers needed for a measured rate
	minGapSample = 20               // admitted requests needed to compare gaps
)

// NewLimiter returns a limiter at rps requests per second (rps <= 0: unlimited).
func NewLimiter(rps float64) *Limiter {
	l := &Limiter{target: rps, est: rps, now: time.Now, log: slog.New(slog.DiscardHandler)}
	l.rate = pace * rps
	return l
}

// Wait blocks until a request may be sent, or ctx ends. Of the requests
// waiting, the one with the lowest priority goes first, unless it is late
// for its turn by a quarter of a slot. It returns the time the request
// leaves, which the caller hands back to Succeeded or Throttled.
func (l *Limiter) Wait(ctx context.Context, priority int64) (time.Time, error) {
	if l.target <= 0 {
		return l.now(), nil
	}
	w := l.enqueue(priority)
	defer l.dequeue(w)
	for {
		now := l.now()
		at, ok := l.take(now, w)
		if ok {
			return at, nil
		}
		d := at.Sub(now)
		if l.isStrict() {
			// Strict spacing loses what a worker wakes late: sleep a little
			// less, then yield until the time.
			if d <= spinWindow {
				for l.now().Before(at) {
					runtime.Gosched()
				}
				continue
			}
			d -= spinWindow
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return time.Time{}, ctx.Err()
		case <-t.C:
		}
	}
}

func (l *Limiter) isStrict() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.strict
}

// waiter is a request waiting for its turn.
type waiter struct {
	priority int64
	seq      uint64
}

func (l *Limiter) enqueue(priority int64) *waiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	w := &waiter{priority: priority, seq: l.seq}
	l.waiting = append(l.waiting, w)
	return w
}

func (l *Limiter) dequeue(w *waiter) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.waiting = slices.DeleteFunc(l.waiting, func(x *waiter) bool { return x == w })
}

// first reports whether w goes before every other waiter. Called with l.mu held.
func (l *Limiter) first(w *waiter) bool {
	for _, x := range l.waiting {
		if x.priority < w.priority || (x.priority == w.priority && x.seq < w.seq) {
			return false
		}
	}
	return true
}

// take claims the send slot at now for w (nil: no queue), or says when to
// try again: after the pause, or when the schedule allows the next request.
func (l *Limiter) take(now time.Time, w *waiter) (time.Time, bool) {
	if l.target <= 0 {
		return now, true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Before(l.pausedUntil) {
		return l.pausedUntil, false
	}
	slot := time.Duration(float64(time.Second) / l.rate)
	if now.Before(l.tat) {
		return l.tat, false
	}
	if grace := l.tat.Add(slot / 4); w != nil && !l.first(w) && now.Before(grace) {
		return grace, false // the first in line has its turn
	}
	// However late requests catch up, no more than the rate in any
	// second (and a little): what a one-second window admits.
	if n := int(math.Ceil(l.rate * guardSpan.Seconds())); len(l.sends) >= n {
		if free := l.sends[len(l.sends)-n].at.Add(guardSpan); now.Before(free) {
			return free, false
		}
	}
	if l.started.IsZero() {
		l.started, l.lastAdjust = now, now
	}
	// Never early; a request that left up to catchUp slots late keeps the
	// schedule, so the next ones may follow it sooner and the rate holds
	// although workers wake late. Strict spacing keeps every gap a slot.
	if l.strict || now.Sub(l.tat) > catchUp*slot {
		l.tat = now.Add(slot)
	} else {
		l.tat = l.tat.Add(slot)
	}
	gap := time.Hour
	if n := len(l.sends); n > 0 {
		gap = now.Sub(l.sends[n-1].at)
	}
	l.sends = append(l.sends, sendRecord{at: now, gap: gap})
	l.trim(now)
	return now, true
}

// trim drops the sends older than historySpan, and the oldest beyond
// maxHistory (at high rates). Called with l.mu held.
func (l *Limiter) trim(now time.Time) {
	i := sort.Search(len(l.sends), func(i int) bool { return now.Sub(l.sends[i].at) <= historySpan })
	i = max(i, len(l.sends)-maxHistory)
	if i > len(l.sends)/2 {
		l.sends = append(l.sends[:0], l.sends[i:]...)
	}
}

// covers reports whether the history holds every send since from.
// Called with l.mu held.
func (l *Limiter) covers(from time.Time) bool {
	return len(l.sends) > 0 && !l.sends[0].at.After(from)
}

// Succeeded records the answer to a request that left at sent. took is the
// time the caller spent on it outside the limiter, failed attempts and back-
// offs included: what a worker needs per request besides its turn.
func (l *Limiter) Succeeded(sent time.Time, took time.Duration) {
	if l.target <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if l.latency == 0 {
		l.latency = took
	} else {
		l.latency += (took - l.latency) / 8
	}
	if l.testing {
		// A test counts from the end of the pause that preceded it.
		if now.Sub(maxTime(l.testFrom, l.pausedUntil)) >= testHold {
			l.good = max(l.good, l.est)
			l.step(now)
		}
		return
	}
	quiet := now.Sub(maxTime(l.lastCut, l.started))
	if quiet >= climbEvery && now.Sub(l.lastAdjust) >= climbEvery && l.est < l.target {
		l.setEstimate(l.est * (1 + climbStep))
		l.lastAdjust = now
	}
}

// step continues a search whose bounds are good (held) and bad (failed):
// it ends when they are close, else tests the middle. Called with l.mu held.
func (l *Limiter) step(now time.Time) {
	if l.bad-l.good <= converged*l.good {
		l.testing = false
		l.setEstimate(l.good)
		l.lastAdjust = now
		return
	}
	l.startTest(now, (l.good+l.bad)/2)
}

func (l *Limiter) startTest(now time.Time, est float64) {
	l.testing, l.testFrom = true, now
	l.setEstimate(est)
}

// setEstimate sets the estimate and the pacing rate. Called with l.mu held.
func (l *Limiter) setEstimate(est float64) {
	l.est = min(max(est, minRate), l.target)
	l.rate = pace * l.est
}

// Throttled records a 429 to a request that left at sent, answered with
// retryAfter: every worker waits that long, and the first 429 of a storm
// adjusts the estimate.
func (l *Limiter) Throttled(sent time.Time, retryAfter time.Duration) {
	if l.target <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if until := now.Add(retryAfter); until.After(l.pausedUntil) {
		l.pausedUntil = until
	}
	i := sort.Search(len(l.sends), func(i int) bool { return !l.sends[i].at.Before(sent) })
	for ; i < len(l.sends) && l.sends[i].at.Equal(sent); i++ {
		if !l.sends[i].throttled {
			l.sends[i].throttled = true
			break
		}
	}
	// Requests that left before this storm's first 429 came back say nothing new.
	if sent.Before(l.stormFrom) {
		return
	}
	l.stormFrom = now
	l.cut(sent, now)
}

// cut adjusts the estimate for the first 429 of a storm, to the request that
// left at sent, and logs how it read the 429. Called with l.mu held.
func (l *Limiter) cut(sent, now time.Time) {
	before := l.est
	reason := l.read429(sent, now)
	l.log.Debug("rate limit: 429", "reading", reason, "estimate_before", round2(before), "estimate", round2(l.est),
		"rate", round2(l.rate), "searching", l.testing, "strict_spacing", l.strict, "pause_until", l.pausedUntil.Format("15:04:05.000"))
}

// read429 is the estimator's reading of a 429, which it applies.
// Called with l.mu held.
func (l *Limiter) read429(sent, now time.Time) string {
	held := sent.Sub(maxTime(l.lastCut, l.started))
	active := sent.Sub(maxTime(l.started, l.resumed)) // since the start or the last pause
	measured, haveMeasure := l.measuredRate(sent)
	prev := l.cutPrevRate
	l.cutPrevRate = 0
	if haveMeasure {
		l.cutPrevRate = measured
	}
	strict := !l.strict && l.shortestGap(sent)
	l.lastCut, l.lastAdjust = sent, now
	l.resumed = l.pausedUntil
	if active >= time.Second || !l.testing && held >= steadyHold {
		l.partial = 0
	}
	switch {
	case strict:
		// The server refused a request that caught up on the schedule
		// where it admitted all the others: it paces requests. Keeping
		// every gap a slot is the answer, not a lower rate.
		l.strict = true
		return "the shortest gap was refused: strict spacing"
	case l.strict:
		// A server that paces requests: its 429s say that the gaps were too
		// short for the arrival jitter, whatever the window or the count.
		// Widen them a little, a little more when it happens again soon.
		l.testing = false
		if held >= steadyHold {
			l.setEstimate(l.est * edgeCut)
			return "a pacing server: at the edge"
		}
		l.setEstimate(l.est * pacerCut)
		return "a pacing server: too fast"
	case l.testing:
		// The tested estimate failed: it bounds the limit from above, and
		// the rate admitted since the last 429 from below.
		l.bad = l.est
		reason := "the tested rate failed"
		switch {
		case haveMeasure && prev > 0 && abs(measured-prev) <= agree*prev && measured >= l.good:
			// Two measures agree, and no faster rate held: a token bucket's rate.
			l.good, l.bad = measured, measured
			reason = "two measures of the admitted rate agree"
		case haveMeasure:
			l.good = max(l.good, measured)
		}
		l.good = min(l.good, l.bad)
		if l.good <= 0 {
			l.good = l.bad / 2
		}
		l.step(now)
		return reason
	case held >= steadyHold:
		// The edge of the limit, or jitter: a small step down.
		l.setEstimate(l.est * edgeCut)
		return "at the edge of the limit"
	}
	// Soon after the start or a change: the limit may be far below. The
	// requests admitted in the second before bound it from above, if they
	// were sent over a whole second; after less, their number is the limit
	// of a one-second window only if the next 429 comes after as many
	// again, and arrival jitter otherwise.
	bound := l.admittedIn(sent.Add(-time.Second), sent)
	if active < time.Second {
		switch {
		case l.partial == 0:
			l.partial = bound
			return "too early to tell: waiting for the next 429"
		case abs(bound-l.partial) > agree*l.partial:
			// Different numbers each time: no one-second window, but too
			// fast for this server. Search from a step below.
			l.partial = 0
			l.good, l.bad = 0, l.est
			l.startTest(now, l.est*searchStep)
			return "too fast, no window: searching"
		}
	}
	bound = max(bound, l.partial)
	l.partial = 0
	l.good, l.bad = 0, min(l.est, max(bound, l.est/2))
	l.startTest(now, l.bad)
	return "far above the limit: testing the requests admitted in the last second"
}

func round2(x float64) float64 { return math.Round(x*100) / 100 }

// measuredRate is the rate of requests admitted between the previous cut and
// this one; ok is false when the previous cut is too old, or too few were
// admitted. Called with l.mu held.
func (l *Limiter) measuredRate(sent time.Time) (float64, bool) {
	if l.lastCut.IsZero() {
		return 0, false
	}
	span := sent.Sub(l.lastCut)
	if span > recentCut || span < time.Second || !l.covers(l.lastCut) {
		return 0, false
	}
	n := l.admittedIn(l.lastCut, sent)
	if n < minMeasured {
		return 0, false
	}
	return n / span.Seconds(), true
}

// admittedIn counts the requests that left in [from, to) and got no 429
// (those still in flight count: they are ahead of the one that got it).
// Called with l.mu held.
func (l *Limiter) admittedIn(from, to time.Time) float64 {
	i := sort.Search(len(l.sends), func(i int) bool { return !l.sends[i].at.Before(from) })
	n := 0
	for ; i < len(l.sends) && l.sends[i].at.Before(to); i++ {
		if !l.sends[i].throttled {
			n++
		}
	}
	return float64(n)
}

// shortestGap reports whether the request that left at sent caught up on
// the schedule (left less than a slot after the one before) by more than
// the requests the server admitted lately: a server that refuses the
// shortest gaps paces requests, and only strict spacing avoids its 429s.
// Called with l.mu held.
func (l *Limiter) shortestGap(sent time.Time) bool {
	i := sort.Search(len(l.sends), func(i int) bool { return !l.sends[i].at.Before(sent) })
	if i == len(l.sends) || l.strict {
		return false
	}
	gap := l.sends[i].gap
	if gap >= time.Duration(float64(time.Second)/l.rate) {
		return false
	}
	shorter, admitted := 0, 0
	for _, s := range l.sends {
		if !s.throttled && s.at.Before(sent) {
			admitted++
			if s.gap <= gap {
				shorter++
			}
		}
	}
	return admitted >= minGapSample && float64(shorter) < 0.01*float64(admitted)
}

// Rate is the current pacing rate in requests per second (0: unlimited).
func (l *Limiter) Rate() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.target <= 0 {
		return 0
	}
	return l.rate
}

// InFlight is how many requests must be under way at once to send at the
// current rate: rate × the time a request takes outside the limiter
// (latency, retries). It is 0 before the first answer, and for an unlimited
// rate.
func (l *Limiter) InFlight() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.target <= 0 {
		return 0
	}
	return l.rate * l.latency.Seconds()
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
