package pipeline

import (
	"context"
	"sync"
	"time"
)

// Snapshot is the state of a run at one moment, for a progress display.
type Snapshot struct {
	Elapsed   time.Duration
	Events    int64         // events received from the API
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
		Elapsed: elapsed, Events: st.Events, Pages: st.Pages, Requests: st.Requests,
		Retries: st.Retries, Throttled: st.Throttled, Days: len(r.plan.Days),
	}
	s.DaysDone, _ = r.sum.snapshot()
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
		from = etaSample{}
	}
	pace := (covered - from.covered) / (elapsed - from.at).Seconds()
	if pace <= 0 {
		pace = covered / elapsed.Seconds()
	}
	return time.Duration((1 - covered) / pace * float64(time.Second))
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
			lastReq int64
			last    = start
		)
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				s := r.snapshot(now.Sub(start))
				s.ETA = eta.add(s.Elapsed, s.Covered)
				if now.Sub(last) < every-every/10 {
					continue
				}
				s.RPS = float64(s.Requests-lastReq) / now.Sub(last).Seconds()
				lastReq, last = s.Requests, now
				if o.Progress != nil {
					o.Progress.Update(s)
					continue
				}
				r.log.Info("progress", "events", s.Events, "pages", s.Pages, "req_per_s", round1(s.RPS),
					"covered_pct", round1(100*s.Covered), "days_done", s.DaysDone, "days", s.Days,
					"retries", s.Retries, "throttled", s.Throttled, "eta", s.ETAText("unknown"))
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

// ETAText is the ETA as text: unknown while the estimator has none (under
// 1% of the period covered), "delivering" once every window is fetched and
// days are still being written (was: "0s" while a sink held the last days
// back, which reads as done), never a 0s before the end.
func (s Snapshot) ETAText(unknown string) string {
	switch {
	case s.Covered >= 1 && s.DaysDone < s.Days:
		return "delivering"
	case s.ETA == 0 && s.Covered < 1:
		return unknown
	}
	return s.ETA.Round(time.Second).String()
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }
