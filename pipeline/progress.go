package pipeline

import (
	"context"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Snapshot is the state of a run at one moment, for a progress display.
type Snapshot struct {
	RunID     string // the plan's (Summary.RunID)
	Elapsed   time.Duration
	Events    int64         // events received from the API
	Delivered int64         // of them, read back from the spool and handed to the sinks
	Pages     int64         // pages received
	Requests  int64         // requests sent
	Retries   int64         // requests repeated
	Throttled int64         // 429 answers
	RPS       float64       // requests per second over the last interval
	Covered   float64       // share of the period fetched, 0..1
	DaysDone  int           // days delivered
	Days      int           // days planned
	ETA       time.Duration // time left; 0 when unknown (see etaEstimator.add) or done
}

func (r *runner) snapshot(elapsed time.Duration) Snapshot {
	st := r.client.Stats().Snapshot().Sub(r.before)
	s := Snapshot{
		RunID: r.sum.RunID, Elapsed: elapsed, Events: st.Events, Pages: st.Pages, Requests: st.Requests,
		Retries: st.Retries, Throttled: st.Throttled, Days: len(r.plan.Days),
	}
	s.DaysDone, _ = r.sum.snapshot()
	s.Delivered = r.handed.Load()
	var covered, total int64
	planned := 0
	r.mu.Lock()
	for _, dw := range r.days {
		covered += dw.covered
		total += dw.total
		if dw.total > 0 {
			planned++
		}
	}
	r.mu.Unlock()
	// Days not yet planned have no total yet: count them whole.
	if total > 0 {
		if unplanned := len(r.days) - planned; unplanned > 0 && planned > 0 {
			total += total / int64(planned) * int64(unplanned)
		}
		s.Covered = float64(covered) / float64(total)
	}
	return s
}

// etaWindow is how far back the pace that predicts the rest is measured:
// long enough to even out pages and pauses, short enough to follow a change
// of pace (a server that slows down, sparse hours after dense ones), which
// an average since the start reports only when it is too late.
const etaWindow = 10 * time.Second

// etaEstimator predicts the time left from the recent pace of coverage.
type etaEstimator struct {
	samples []etaSample // the last etaWindow, oldest first
	// base is where the pace is measured from while the samples span
	// under a second: the start (zero), or where a phase began.
	base etaSample
}

type etaSample struct {
	at      time.Duration // since the start
	covered float64
}

// add records the coverage at elapsed and returns the time left: the
// uncovered share at the pace of the last etaWindow (at the average pace
// while the window is younger than a second); 0 while under 1% is covered
// or nothing moved.
func (e *etaEstimator) add(elapsed time.Duration, covered float64) time.Duration {
	e.samples = append(e.samples, etaSample{elapsed, covered})
	i := 0
	for i < len(e.samples)-1 && elapsed-e.samples[i+1].at >= etaWindow {
		i++
	}
	e.samples = e.samples[i:]
	if covered <= 0.01 || covered >= 1 {
		return 0
	}
	from := e.samples[0]
	if elapsed-from.at < time.Second {
		from = e.base
	}
	if elapsed <= from.at {
		return 0
	}
	pace := (covered - from.covered) / (elapsed - from.at).Seconds()
	if pace <= 0 {
		pace = (covered - e.base.covered) / (elapsed - e.base.at).Seconds()
	}
	if pace <= 0 {
		return 0
	}
	return time.Duration((1 - covered) / pace * float64(time.Second))
}

// deliveryETA is the time left once every window is fetched: the events
// received and not yet handed to the sinks, at the recent pace of the
// delivery, measured from where it stood when the fetching ended (was:
// "delivering" and nothing that moved for the 88 s a day of 5,000,000
// events took to write after its fetch, whose ETA had said 24 s). 0 while
// nothing moved.
func deliveryETA(e *etaEstimator, s Snapshot) time.Duration {
	if s.Events <= 0 {
		return 0
	}
	done := float64(s.Delivered) / float64(s.Events)
	if len(e.samples) == 0 {
		e.base = etaSample{s.Elapsed, done}
	}
	return e.add(s.Elapsed, done)
}

// startProgress reports progress until the returned function is called.
func (r *runner) startProgress(ctx context.Context) (stop func()) {
	o := r.s.opts
	every := o.ProgressEvery
	if o.Progress != nil {
		every = 250 * time.Millisecond
	} else if every <= 0 {
		every = 30 * time.Second
	}
	start := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		// Coverage is sampled at least every second for the ETA, and
		// reported every `every`.
		t := time.NewTicker(min(every, time.Second))
		defer t.Stop()
		var (
			eta     etaEstimator
			deliver etaEstimator // once every window is fetched
			lastReq int64
			last    = start
			watch   = concurrencyWatch{workers: r.cfg.Source.Concurrency}
			cpu     cpuWatch
			sampled = start
			warned  uint64 // the sink call last warned of (sinkWait)
		)
		// A sink call that lasts this long is named: at once with a
		// warning, then in every progress line while it lasts.
		slow := time.Minute
		if o.Progress == nil {
			slow = 2 * every
		}
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				s := r.snapshot(now.Sub(start))
				if s.Covered >= 1 && s.DaysDone < s.Days {
					s.ETA = deliveryETA(&deliver, s)
				} else {
					s.ETA = eta.add(s.Elapsed, s.Covered)
				}
				if r.s.sampled != nil {
					r.s.sampled(s)
				}
				r.watchConcurrency(&watch, s.Throttled)
				r.watchCPU(&cpu, s, now.Sub(sampled))
				sampled = now
				w, busy := r.waiting.current()
				busy = busy && now.Sub(w.since) >= slow
				if busy && w.seq != warned {
					warned = w.seq
					r.log.Warn("a sink has not answered for a while: the run waits for it, as long as its own timeouts allow (s3: timeout × max_attempts; kafka: delivery_timeout), a follow loop at most until follow.give_up_after",
						"sink", w.sink, "step", w.step, "day", w.day, "waiting", now.Sub(w.since).Round(time.Second).String())
				}
				if now.Sub(last) < every-every/10 {
					continue
				}
				s.RPS = float64(s.Requests-lastReq) / now.Sub(last).Seconds()
				lastReq, last = s.Requests, now
				if o.Progress != nil {
					o.Progress.Update(s)
					continue
				}
				attrs := []any{"events", s.Events, "delivered", s.Delivered, "pages", s.Pages, "req_per_s", round1(s.RPS),
					"covered_pct", round1(100 * s.Covered), "days_done", s.DaysDone, "days", s.Days,
					"retries", s.Retries, "throttled", s.Throttled, "eta", s.ETAText("unknown")}
				if busy {
					attrs = append(attrs, "waiting_for", w.sink+": "+strings.TrimSpace(w.step+" "+w.day), "waiting", now.Sub(w.since).Round(time.Second).String())
				}
				r.log.Info("progress", attrs...)
			}
		}
	})
	return func() {
		cancel()
		wg.Wait()
		if o.Progress != nil {
			o.Progress.Done()
		}
	}
}

// concurrencyHoldSamples is how many progress samples in a row (a second
// apart, a quarter of a second on a terminal) must find source.concurrency
// short of what the rate needs, and no 429, before the run says so: the
// time a request takes includes its retries and backoffs (one timeout lifts
// it for a few dozen requests), and a limiter searching above a server's
// limit asks for a rate that the 429s, not the workers, deny.
const concurrencyHoldSamples = 30

// maxConcurrency is the largest source.concurrency the configuration takes.
const maxConcurrency = 64

// SuggestedConcurrency is the source.concurrency that keeps a rate which
// needs need requests under way at once: a margin of 15% for the jitter of
// the API's answers and of the workers, at most what the configuration
// takes. ok is false when more workers would not help (at the most already).
func SuggestedConcurrency(workers int, need float64) (suggest int, ok bool) {
	if need <= float64(workers) || workers >= maxConcurrency {
		return 0, false
	}
	return min(int(math.Ceil(need/0.85)), maxConcurrency), true
}

// concurrencyWatch tells when the workers, not the rate limit, bound the
// requests: an API far away (or slow) needs rate × time per request
// requests under way at once to keep the rate, and no more than
// source.concurrency are.
type concurrencyWatch struct {
	workers   int
	held      int   // samples in a row that found too few workers
	throttled int64 // 429s counted at the last sample
}

// short reports whether need (requests the rate needs under way) has
// exceeded the workers for concurrencyHoldSamples samples in a row with
// no 429 (throttled: the run's 429s so far).
func (c *concurrencyWatch) short(need float64, throttled int64) bool {
	if need <= float64(c.workers) || throttled != c.throttled {
		c.held, c.throttled = 0, throttled
		return false
	}
	c.held++
	return c.held >= concurrencyHoldSamples
}

// watchConcurrency logs, once a session, that source.concurrency bounds the
// request rate, with the concurrency that would keep the rate (the fetcher
// keeps a margin of 15% for the jitter of both; at most 64) (was: a run
// far from the API sent 28 of its 50 requests per second, and nothing
// said why).
func (r *runner) watchConcurrency(c *concurrencyWatch, throttled int64) {
	if r.s.concurrencyWarned.Load() || c.workers >= maxConcurrency {
		return // told already, or nothing to raise
	}
	lim := r.client.Limiter()
	rate, need := lim.Rate(), lim.InFlight()
	if rate <= 0 || !c.short(need, throttled) {
		return
	}
	r.s.concurrencyWarned.Store(true)
	perRequest := time.Duration(need / rate * float64(time.Second))
	suggest, _ := SuggestedConcurrency(c.workers, need)
	r.log.Warn("source.concurrency bounds the request rate, not requests_per_second: requests take so long (a distant or slow API) that the rate needs more of them under way at once than there are workers; raise source.concurrency",
		"concurrency", c.workers, "per_request", perRequest.Round(time.Millisecond).String(),
		"rate", round1(rate), "in_flight_needed", round1(need),
		"max_req_per_s", round1(float64(c.workers)/perRequest.Seconds()), "suggested_concurrency", suggest)
}

// watchCPU logs, once a session, that a CPU limit bounds the request rate
// (cpuWatch), with the limit and the share of its periods that stopped the
// process. s is the sample, d the time since the one before.
func (r *runner) watchCPU(c *cpuWatch, s Snapshot, d time.Duration) {
	if r.s.cpuWarned.Load() {
		return
	}
	st, ok := cpuThrottling()
	if !ok {
		return
	}
	lim := r.client.Limiter()
	rate := lim.Rate()
	expected := 0.0
	if s.Covered > 0 && s.Covered < 0.9 { // fetching, not near the last windows or delivering
		expected = rate * d.Seconds()
	}
	before := c.requests
	starved, share := c.starved(st, s.Requests, s.Throttled, expected, lim.InFlight() > float64(r.cfg.Source.Concurrency))
	if !starved {
		return
	}
	r.s.cpuWarned.Store(true)
	r.log.Warn("a CPU limit bounds the request rate, not requests_per_second: the process's cgroup stopped it for most of its CPU periods while it sent fewer requests than the rate allows; raise or remove the CPU limit (Kubernetes limits.cpu, systemd CPUQuota=): a fetch at 50 requests a second takes about 0.2 of a core (README, CPU and memory limits)",
		"cpu_limit", strconv.FormatInt(st.millis, 10)+"m", "throttled_pct", round1(100*share),
		"req_per_s", round1(float64(s.Requests-before)/d.Seconds()), "rate", round1(rate))
}

// ETAText is the ETA as text: unknown while the estimator has none (under
// 1% of the period covered); once every window is fetched and days are
// still being written, the delivery's time left, or "delivering" while it
// has none (was: "0s" while a sink held the last days back, which reads as
// done), never a 0s before the end: a time left under
// half a second while windows are still fetched is 1s (was: "0s" at 94%
// covered, which rounding gave).
func (s Snapshot) ETAText(unknown string) string {
	switch {
	case s.Covered >= 1 && s.DaysDone < s.Days && s.ETA == 0:
		return "delivering"
	case s.Covered >= 1 && s.DaysDone < s.Days:
		return max(s.ETA.Round(time.Second), time.Second).String()
	case s.ETA == 0 && s.Covered < 1:
		return unknown
	case s.Covered < 1:
		return max(s.ETA.Round(time.Second), time.Second).String()
	}
	return s.ETA.Round(time.Second).String()
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }
