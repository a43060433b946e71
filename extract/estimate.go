package extract

import (
	"math"
	"slices"
	"sort"
	"time"
)

// The estimator: how the Limiter reads a 429 and moves its estimate of the
// server's limit. Every function here is called with l.mu held.

// cut adjusts the estimate for the first 429 of a storm, to the request that
// left at sent, and logs how it read the 429. Called with l.mu held.
func (l *Limiter) cut(sent, now time.Time) {
	before := l.est
	gap := l.sentGap(sent)
	reason := l.read429(sent, now)
	l.log.Debug("rate limit: 429", "reading", reason, "estimate_before", round2(before), "estimate", round2(l.est),
		"rate", round2(l.rate), "sent_gap_ms", gap, "searching", l.testing, "strict_spacing", l.strict, "pause_until", l.pausedUntil.UTC().Format("15:04:05.000Z"))
}

// sentGap is the time in milliseconds from the request before to the one
// that left at sent, as this process sent them (-1: not known). Set beside
// the gaps the server saw, it tells the server's pacing from the jitter
// between the two: a request refused after a gap no shorter than the others
// reached the server late or early. Called with l.mu held.
func (l *Limiter) sentGap(sent time.Time) float64 {
	i := sort.Search(len(l.sends), func(i int) bool { return !l.sends[i].at.Before(sent) })
	if i == 0 || i == len(l.sends) || !l.sends[i].at.Equal(sent) {
		return -1
	}
	return round2(float64(l.sends[i].gap) / float64(time.Millisecond))
}

// read429 is the estimator's reading of a 429, which it applies.
// Called with l.mu held.
func (l *Limiter) read429(sent, now time.Time) string {
	top := l.fastestStorm(now)
	if !l.testing && (l.rate <= noiseBelow*top || l.background()) {
		// 429s went on at a rate settled well below the one they
		// started at: a limit would have stopped answering them (but
		// for a rare one at its edge). Once a background is suspected,
		// every 429 at a settled rate counts.
		l.decaySettled(now)
		l.settledStorms++
	}
	l.storms = append(l.storms, stormMark{at: now, rate: l.rate})
	if l.noise(sent) {
		// No reading of the rate: the pause is all it costs.
		l.lastCut, l.resumed, l.cutPrevRate = sent, l.pausedUntil, 0
		return "a background of 429s at rates that held: not the rate"
	}
	held := sent.Sub(maxTime(l.lastCut, l.started))
	active := sent.Sub(maxTime(l.started, l.resumed)) // since the start or the last pause
	sinceResume := l.admittedIn(maxTime(l.started, l.resumed), sent)
	measured, haveMeasure := l.measuredRate(sent)
	prev, prevPace := l.cutPrevRate, l.cutPrevPace
	l.cutPrevRate, l.cutPrevPace = 0, l.rate
	if haveMeasure && active >= time.Second {
		l.cutPrevRate = measured
	}
	strict := !l.strict && l.shortestGap(sent)
	if !l.testing {
		l.bucketRate, l.probeAbove, l.window = 0, 0, 0 // a new search
	}
	probing := l.probing
	l.probing = false
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
		window := l.window
		l.window = 0
		switch {
		case probing && haveMeasure && abs(measured-l.good) <= agree*l.good:
			// The probe above the rate two measures agreed on failed,
			// and the rate admitted since measures it once more: a
			// token bucket.
			l.good, l.bad = measured, measured
			reason = "the probe failed at the same measure: a token bucket"
		case window > 0 && l.est > window && abs(l.admittedIn(sent.Add(-time.Second), sent)-window) <= 1:
			// A rate above the number admitted in each of the first
			// seconds failed once as many again were admitted in a
			// second: a one-second window of that number.
			l.good, l.bad = window, window
			reason = "a one-second window: the same number again"
		case haveMeasure && active >= time.Second && prev > 0 && abs(measured-prev) <= agree*prev &&
			abs(l.rate-prevPace) >= spread*max(l.rate, prevPace):
			// Two measures taken at rates far apart agree: a token
			// bucket's rate, even below a rate that held (its burst
			// lasted the test). What a window admits over a pause and
			// the time to fill it depend on the rate it is filled at; at
			// close rates a window repeats itself. It can still agree
			// with itself by chance (two measures of 24 at 47 and 35
			// req/s for a fixed window of 35), and a server's limits may
			// change: the rate is probed once above, testHold after
			// (Succeeded).
			l.probeAbove, l.probeBad = measured, l.bad
			l.good, l.bad = measured, measured
			reason = "two measures of the admitted rate agree"
		case haveMeasure:
			l.good = max(l.good, measured)
		}
		if haveMeasure && (l.bucketRate == 0 || measured < l.bucketRate) {
			l.bucketRate = measured
		}
		// Nothing held yet (good 0): the search halves the rate.
		l.good = min(l.good, l.bad)
		if l.good > 0 && sinceResume < minWindow {
			// Refused at once, as a pacing server refuses the first
			// short gap: every such test costs a Retry-After, so the
			// next one goes a quarter of the way up, not half.
			l.step(now, quickStep)
			return reason + " at once"
		}
		l.step(now, 0.5)
		return reason
	case held >= steadyHold || l.background():
		// The edge of the limit, or jitter: a small step down. Over a
		// background, a 429 sooner than the background brings them is
		// read the same: a search would take the background's next 429s
		// for failures of the rates it tests.
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
	repeated := active < time.Second // the same number twice
	bound = max(bound, l.partial)
	l.partial = 0
	if bound < l.est/2 {
		// Fewer than half the estimate: a small one-second window, but
		// also a token bucket with a small burst (the same number after
		// every pause) or a server that paces requests (it refuses the
		// first short gap: one or two admitted). A guess, not a bound:
		// it is tested, and the search goes on above it when it holds.
		l.good, l.bad = 0, l.est
		if repeated && bound >= minWindow {
			l.startTest(now, bound)
			l.window = bound
			return "far above the limit: testing the number admitted each time"
		}
		l.startTest(now, l.est/2)
		return "far above the limit: testing half the estimate"
	}
	l.good, l.bad = 0, min(l.est, bound)
	l.startTest(now, l.bad)
	return "far above the limit: testing the requests admitted in the last second"
}

// step continues a search whose bounds are good (held) and bad (failed):
// it ends when they are close, else tests share of the way from good to
// bad. Called with l.mu held.
func (l *Limiter) step(now time.Time, share float64) {
	if l.bad-l.good <= converged*l.good {
		l.testing = false
		l.setEstimate(l.good)
		l.lastAdjust = now
		return
	}
	l.startTest(now, l.good+share*(l.bad-l.good))
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

// background reports whether 429s keep coming at rates the limiter settled
// on: at least noiseStorms, over noiseShare of the requests sent while no
// search was on. A server's limit answers a rate below it with no 429
// (but a rare one at the edge, for jitter); a gateway that sheds load, or
// counts other clients too, answers some share of the requests at any rate.
// Called with l.mu held.
func (l *Limiter) background() bool {
	return !l.strict && l.settledStorms >= noiseStorms && l.settledStorms >= noiseShare*l.settledSent
}

// noise reports whether the 429 to the request that left at sent is read as
// the background's: there is one, and this 429 came after as many admitted
// requests as the background brings one in, within noiseDense. A limit the
// rate crosses answers sooner: a window at once, a bucket once its burst is
// spent. Called with l.mu held, before the 429 is recorded as a cut.
func (l *Limiter) noise(sent time.Time) bool {
	if !l.background() {
		return false
	}
	if l.lastCut.IsZero() || !l.covers(l.lastCut) {
		return true
	}
	bg := l.settledStorms / l.settledSent
	return l.admittedIn(l.lastCut, sent)*bg*noiseDense >= 1
}

// fastestStorm is the highest pacing rate of the storms of the last
// stormSpan (0: none), whose older marks it drops. Called with l.mu held.
func (l *Limiter) fastestStorm(now time.Time) float64 {
	l.storms = slices.DeleteFunc(l.storms, func(m stormMark) bool { return now.Sub(m.at) > stormSpan })
	top := 0.0
	for _, m := range l.storms {
		top = max(top, m.rate)
	}
	return top
}

// decaySettled ages the settled counts to now. Called with l.mu held.
func (l *Limiter) decaySettled(now time.Time) {
	if !l.settledAt.IsZero() {
		f := math.Exp2(-now.Sub(l.settledAt).Seconds() / noiseHalfLife.Seconds())
		l.settledSent, l.settledStorms = l.settledSent*f, l.settledStorms*f
	}
	l.settledAt = now
}

func round2(x float64) float64 { return math.Round(x*100) / 100 }
