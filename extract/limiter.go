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
// admits (at first the configured rate, never above it): the 2% absorb the
// jitter between a request leaving and reaching the server, so that neither
// a token bucket nor a one-second window (sliding or fixed) sees more than it
// allows. At the rates APIs grant (a slot of punctualSlot or more, up to 500
// requests a second) every gap is a whole slot, kept punctually: a worker
// sleeps until a millisecond before its turn and yields until the time, so
// that a server that paces requests (a token bucket of one token) sees no
// gap shorter than its own. At higher rates a sleeping worker wakes late by
// a good share of a slot: a request that leaves up to two slots late keeps
// the schedule, so the next ones may follow sooner, but never more than the
// rate in any second and 20 ms. Of the requests waiting, the one with the
// lowest priority (the oldest window) goes first.
//
// A 429 pauses every worker for its Retry-After. The first 429 of a storm is
// read as a measurement of the server, not as a penalty (estimate.go):
//
//   - at a rate that held for a while (steadyHold): the edge of the limit, or
//     arrival jitter; the estimate drops by 2% and climbs back by 1% every
//     30 s without a 429;
//   - to the shortest gap, where every longer one was admitted: the server
//     paces requests; spacing becomes strict (no catching up) and later
//     429s widen the gaps by 2% (5% when they come soon);
//   - soon after the start or a change: the limit may be far below. The
//     requests admitted in the second before bound it from above and are
//     tested; within the first second of activity only if the next 429
//     comes after as many again (a one-second window), else the search
//     starts 15% lower. Below half the estimate the number is a guess,
//     not a bound (a token bucket with a small burst repeats it too): it
//     is tested and the search goes on above it, where a failure with the
//     same number admitted in a second confirms a window of it. One or two
//     admitted each time (a server that paces requests refuses the first
//     short gap at any rate below ours) say nothing: half the estimate is
//     tested;
//   - when a tested rate fails: the requests admitted since the previous 429
//     over the time since measure the server's rate, exactly for a token
//     bucket (empty at both), from below for a window (the pause wasted
//     capacity). The limiter bisects between the highest rate that held
//     3 s (once a rate was measured, until a bucket of that rate refilled
//     by the pause would have spent its burst; none yet: it halves) and
//     the lowest that failed until they are within 2.5%, or two measures
//     agree (a token bucket) that were taken at rates 20% apart, each over
//     a second after its pause (a window repeats itself at close rates).
//     That rate is probed once, 20% above, 3 s later: a bucket fails the
//     probe at the same measure, a window that agreed with itself by
//     chance holds it. A test refused at once (a pacing server) costs a
//     Retry-After: the next one goes a quarter of the way up, not half.
//
// A limit answers a rate below it with no 429 (but a rare one at its edge).
// 429s that go on at settled rates 10% below the fastest recent storm, at
// least noiseStorms of them over noiseShare of the requests, are a
// background (a gateway that sheds load): then a 429 that comes no sooner
// than the background brings one only pauses, a sooner one is an edge step
// (a search would read the background's next 429s as failures), and the
// estimate climbs back by tested steps of noiseClimb.
type Limiter struct {
	target float64 // the configured rate; <= 0 unlimited
	now    func() time.Time

	mu          sync.Mutex
	est         float64       // the estimate of the server's limit, at most target
	rate        float64       // pacing rate: pace × est
	strict      bool          // the server punished a short gap: it paces requests
	tat         time.Time     // when the next request is due on the schedule
	pausedUntil time.Time     // every worker waits until then (Retry-After)
	resumed     time.Time     // the end of the last pause
	partial     float64       // requests admitted before a 429 that came within a second of the start or a pause
	window      float64       // the same number admitted twice within a second of a pause, while searching
	stormFrom   time.Time     // 429s to requests sent before this were already counted
	sends       []sendRecord  // the last historySpan of requests, in order
	lastCut     time.Time     // send time of the request whose 429 was the last cut
	cutPrevRate float64       // the admitted rate measured at the last cut (0: none)
	cutPrevPace float64       // the pacing rate it was measured at
	bucketRate  float64       // the lowest rate measured between 429s in this search (0: none)
	probeAbove  float64       // a rate two measures agreed on, to probe above (0: none)
	probeBad    float64       // the lowest rate that failed before they agreed
	probing     bool          // the current test is that probe (good is the rate)
	started     time.Time     // the first request
	testing     bool          // est is being tested (a search is on)
	testFrom    time.Time     // when the current test began
	good, bad   float64       // the highest rate that held, the lowest that failed, while searching
	lastAdjust  time.Time     // of the slow climb
	waiting     []*waiter     // requests in Wait
	seq         uint64        // of the last waiter
	log         *slog.Logger  // how each 429 was read, at debug level
	latency     time.Duration // moving average of the time per request outside the limiter; 0 before the first

	// What came back while no search was on, decayed with noiseHalfLife:
	// requests sent, and 429 storms to them (background).
	settledSent, settledStorms float64
	settledAt                  time.Time   // of the last decay
	storms                     []stormMark // the first 429 of each storm in the last stormSpan
}

// stormMark is the first 429 of a storm: when, at which pacing rate.
type stormMark struct {
	at   time.Time
	rate float64
}

type sendRecord struct {
	at        time.Time
	gap       time.Duration // since the request before
	throttled bool
}

// Tuning of the estimator. They are shares and spans, not rates: the same
// for a limit of 5 or 500 requests per second.
const (
	pace         = 0.98                   // pacing share of the estimate
	spinWindow   = time.Millisecond       // punctual spacing: how long before its time a worker stops sleeping
	punctualSlot = 2 * time.Millisecond   // slots at least this long are kept punctually, with no catch-up
	writeSlack   = 200 * time.Microsecond // a write later than this after its turn delays the next turn
	catchUp      = 2                      // slots a late request may be behind and keep the schedule
	guardSpan    = time.Second + 20*time.Millisecond
	edgeCut      = 0.98             // estimate after a 429 at a proven rate
	searchStep   = 0.85             // first test after 429s that name no limit
	quickStep    = 0.25             // share of the way up a search goes after a test refused at once
	probeStep    = 0.2              // the probe above a rate two measures agreed on
	pacerCut     = 0.95             // estimate after a 429 soon after another, strict spacing
	steadyHold   = 5 * time.Second  // a rate that held this long without a 429 is proven
	testHold     = 3 * time.Second  // a tested rate that held this long passes
	maxTestHold  = 10 * time.Second // longer when a bucket's burst could last it
	recentCut    = 15 * time.Second // two 429s closer than this measure the rate between them
	historySpan  = recentCut + 2*time.Second
	maxHistory   = 4096             // sends kept at most: 80 s at 50 a second, 2 s at 2,000
	agree        = 0.03             // two measures within 3% agree
	spread       = 0.2              // if taken at pacing rates at least 20% apart
	converged    = 0.025            // a search ends when its bounds are this close
	climbEvery   = 30 * time.Second // with no 429 this long, the estimate climbs
	climbStep    = 0.01             // by this share, every climbEvery
	minRate      = 0.2              // requests per second, the floor of the estimate
	minMeasured  = 10               // answers needed for a measured rate
	minGapSample = 20               // admitted requests needed to compare gaps
	minWindow    = 3                // a one-second window admits at least this many; fewer twice: a pacing server

	// 429s that do not depend on the rate (background).
	noiseStorms   = 3                // storms at settled rates needed to suspect a background
	noiseShare    = 0.001            // ... that came to at least this share of the settled requests
	noiseDense    = 4                // a 429 this many times as frequent as the background is read as usual
	noiseClimb    = 0.1              // the step of the climb back over a background
	noiseHalfLife = 60 * time.Second // of the settled counts
	noiseBelow    = 0.9              // a 429 at a settled rate this far below the fastest of the recent storms counts toward a background
	stormSpan     = 2 * time.Minute  // how long a storm's rate is remembered
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
		if l.isPunctual() {
			// Punctual spacing loses what a worker wakes late: sleep a
			// little less, then yield until the time.
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

func (l *Limiter) isPunctual() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.punctual()
}

// punctual reports whether every gap is a whole slot (no catch-up): at the
// rates APIs grant, and for a server that paces requests. Called with l.mu
// held.
func (l *Limiter) punctual() bool {
	return l.strict || float64(time.Second)/l.rate >= float64(punctualSlot)
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
	// although workers wake late. Punctual spacing keeps every gap a slot.
	if l.punctual() || now.Sub(l.tat) > catchUp*slot {
		l.tat = now.Add(slot)
	} else {
		l.tat = l.tat.Add(slot)
	}
	if !l.testing {
		l.decaySettled(now)
		l.settledSent++
	}
	gap := time.Hour
	if n := len(l.sends); n > 0 {
		gap = now.Sub(l.sends[n-1].at)
	}
	l.sends = append(l.sends, sendRecord{at: now, gap: gap})
	l.trim(now)
	return now, true
}

// Wrote records that a request which left the limiter was written to its
// connection at at. With punctual spacing, a write later than writeSlack
// after its turn (a new connection, a worker descheduled on a busy machine)
// moves the next turn to a whole slot after the write, so that the late
// request and the next one do not reach the server closer than a slot.
func (l *Limiter) Wrote(at time.Time) {
	if l.target <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.punctual() {
		return
	}
	slot := time.Duration(float64(time.Second) / l.rate)
	if next := at.Add(slot); next.Sub(l.tat) > writeSlack {
		l.tat = next
	}
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
		if now.Sub(maxTime(l.testFrom, l.pausedUntil)) >= l.holdFor() {
			l.probing = false
			l.good = max(l.good, l.est)
			l.step(now, 0.5)
		}
		return
	}
	quiet := now.Sub(maxTime(l.lastCut, l.started))
	if m := l.probeAbove; m > 0 && quiet >= testHold {
		// The probe above a rate two agreeing measures named: a token
		// bucket fails it once its burst is spent, at the same measure; a
		// window holds it, and the search goes on up to the rate that
		// failed before.
		l.probeAbove, l.probing = 0, true
		l.good, l.bad = m, max(l.probeBad, m*(1+probeStep))
		l.startTest(now, m*(1+probeStep))
		return
	}
	if l.background() && now.Sub(l.lastAdjust) >= testHold && l.est < l.target {
		// 429s keep coming at rates that held: a lower rate did not
		// stop them. Test the way back up a step at a time; the
		// background's 429s do not fail the tests (noise).
		l.good, l.bad = l.est, min(l.target, l.est*(1+noiseClimb))
		l.bucketRate, l.probeAbove = 0, 0
		l.startTest(now, l.bad)
		return
	}
	if quiet >= climbEvery && now.Sub(l.lastAdjust) >= climbEvery && l.est < l.target {
		l.setEstimate(l.est * (1 + climbStep))
		l.lastAdjust = now
	}
}

// holdFor is how long a tested rate must hold to pass: testHold, or
// longer when a rate was measured between 429s in this search. A token
// bucket of that rate, refilled by a second's pause, admits a faster test
// until its burst is spent: a test that held less says nothing about the
// rate. Called with l.mu held.
func (l *Limiter) holdFor() time.Duration {
	m := l.bucketRate * (1 + agree) // the measure's own error
	if m <= 0 || l.rate <= m {
		return testHold
	}
	burst := time.Duration(m / (l.rate - m) * float64(time.Second))
	return min(max(testHold, burst+time.Second), maxTestHold)
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

// PausedUntil is the end of the last pause a 429's Retry-After began: in
// the future while every worker waits, zero before any 429.
func (l *Limiter) PausedUntil() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pausedUntil
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
