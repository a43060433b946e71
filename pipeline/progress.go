package pipeline

import (
	"context"
	"sync"
	"time"
)

// Snapshot is the state of a run at one moment, for a progress display.
type Snapshot struct {
	Elapsed   time.Duration
	Events    int64   // events received from the API
	Pages     int64   // pages received
	Requests  int64   // requests sent
	Retries   int64   // requests repeated
	Throttled int64   // 429 answers
	RPS       float64 // requests per second over the last interval
	Covered   float64 // share of the period fetched, 0..1
	DaysDone  int     // days delivered
	Days      int     // days planned
	ETA       time.Duration
}

func (r *runner) snapshot(elapsed time.Duration) Snapshot {
	st := r.client.Stats().Snapshot().Sub(r.before)
	s := Snapshot{
		Elapsed: elapsed, Events: st.Events, Pages: st.Pages, Requests: st.Requests,
		Retries: st.Retries, Throttled: st.Throttled, Days: len(r.plan.Days),
	}
	s.DaysDone, _ = r.sum.snapshot()
	var covered, total int64
	r.mu.Lock()
	for _, dw := range r.days {
		covered += dw.covered
		total += dw.total
	}
	r.mu.Unlock()
	// Days not yet planned have no total yet: count them whole.
	if total > 0 {
		planned := 0
		for _, dw := range r.days {
			if dw.total > 0 {
				planned++
			}
		}
		if unplanned := len(r.days) - planned; unplanned > 0 && planned > 0 {
			total += total / int64(planned) * int64(unplanned)
		}
		s.Covered = float64(covered) / float64(total)
	}
	if s.Covered > 0.01 && s.Covered < 1 {
		s.ETA = time.Duration(float64(elapsed) * (1 - s.Covered) / s.Covered)
	}
	return s
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
		t := time.NewTicker(every)
		defer t.Stop()
		var lastReq int64
		last := start
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				s := r.snapshot(now.Sub(start))
				s.RPS = float64(s.Requests-lastReq) / now.Sub(last).Seconds()
				lastReq, last = s.Requests, now
				if o.Progress != nil {
					o.Progress.Update(s)
					continue
				}
				r.log.Info("progress", "events", s.Events, "pages", s.Pages, "req_per_s", round1(s.RPS),
					"covered_pct", round1(100*s.Covered), "days_done", s.DaysDone, "days", s.Days,
					"retries", s.Retries, "throttled", s.Throttled, "eta", s.ETA.Round(time.Second).String())
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

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }
