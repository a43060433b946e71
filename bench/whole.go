package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/pachca-export/pachca-export/extract"
	"github.com/pachca-export/pachca-export/simulator"
)

// WholeRun is one export measured from the start of the pachca-export
// process to its exit, against a pachca-sim process.
type WholeRun struct {
	Name       string
	Sim        SimConfig // Events, Rate, Model, ... ; From/To are set from Days
	Days       int
	ClientRate float64 // source.requests_per_second
	Workers    int     // source.concurrency
}

// WholeResult is what a whole run measured; the counts come from the
// simulator's request log, so they are what the server saw.
type WholeResult struct {
	Run        WholeRun
	Wall       time.Duration // process start to exit
	Pages      int           // complete pages: the events / 50, rounded up
	Requests   int           // answered by the server, 429s included
	OK         int
	Throttled  int
	Blocked    int
	Lines      int64     // NDJSON lines written: must equal the events
	Series     []float64 // 200 answers per second, per 5 s of the run
	SettledOK  float64   // 200 answers per second from 10 s on
	SettledSet bool      // the run was long enough for SettledOK
	// Head is the time from the start to the first request, Tail from the
	// last request to the exit; Middle is the rate of requests in between.
	Head, Tail time.Duration
	Middle     float64
	// GapsBefore429 is, for each 429, the time since the request before
	// it reached the server, as the server saw it: set beside the client's
	// pace (MedianGap, of the admitted requests), it tells a 429 from a
	// short gap on the way (arrival jitter) from a rate too high.
	GapsBefore429 []time.Duration
	MedianGap     time.Duration
}

// PagesPerSecond is complete pages per second of wall time.
func (r WholeResult) PagesPerSecond() float64 { return float64(r.Pages) / r.Wall.Seconds() }

// ThrottledShare is the 429s as a share of the requests, in percent.
func (r WholeResult) ThrottledShare() float64 {
	if r.Requests == 0 {
		return 0
	}
	return 100 * float64(r.Throttled) / float64(r.Requests)
}

// settleAfter is when a run counts as settled: the "within 10 s".
const settleAfter = 10 * time.Second

// RunWhole runs one whole export and checks that every event was written.
func RunWhole(ctx context.Context, b Bins, w WholeRun) (WholeResult, error) {
	res := WholeResult{Run: w, Pages: (w.Sim.Events + extract.PageSize - 1) / extract.PageSize}
	st, err := prepare(ctx, b, &w, "run")
	if err != nil {
		return res, err
	}
	defer st.close()
	cmd := exportCmd(ctx, b.Export, st.cfg, w.Sim.From, w.Sim.To)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return res, fmt.Errorf("%s: pachca-export run: %w: %s", w.Name, err, strings.TrimSpace(stderr.String()))
	}
	res.Wall = time.Since(start)
	stats, err := st.sim.stats(ctx)
	if err != nil {
		return res, err
	}
	res.count(stats, start)
	if res.Lines, _, err = countLines(filepath.Join(st.dir, "ndjson")); err != nil {
		return res, err
	}
	if res.Lines != int64(w.Sim.Events) {
		return res, fmt.Errorf("%s: %d events written, want %d", w.Name, res.Lines, w.Sim.Events)
	}
	return res, nil
}

// count fills the request counts and rates from the server's log.
func (r *WholeResult) count(st simulator.Stats, start time.Time) {
	r.Blocked = st.Blocked
	const width = 5 * time.Second
	buckets := make([]int, int(r.Wall/width)+1)
	var lastOK, first, last time.Time
	settled := 0
	for _, q := range st.Log {
		if first.IsZero() {
			first = q.At
		}
		last = maxTime(last, q.At)
		switch q.Status {
		case http.StatusOK:
			r.OK++
			if b := int(q.At.Sub(start) / width); b >= 0 && b < len(buckets) {
				buckets[b]++
			}
			if q.At.Sub(start) >= settleAfter {
				settled++
			}
			lastOK = maxTime(lastOK, q.At)
		case http.StatusTooManyRequests:
			r.Throttled++
		}
		if q.Status != 0 {
			r.Requests++
		}
	}
	for _, n := range buckets {
		r.Series = append(r.Series, float64(n)/width.Seconds())
	}
	r.gaps(st.Log)
	r.Head, r.Tail = first.Sub(start), start.Add(r.Wall).Sub(last)
	if d := last.Sub(first); d > 0 {
		r.Middle = float64(r.Requests-1) / d.Seconds()
	}
	if span := lastOK.Sub(start.Add(settleAfter)); span > 10*time.Second {
		r.SettledOK, r.SettledSet = float64(settled)/span.Seconds(), true
	}
}

// gaps fills GapsBefore429 and MedianGap from the server's log, which is
// in the order the answers went out: the gaps are of the order requests came.
func (r *WholeResult) gaps(log []simulator.Request) {
	arrived := slices.SortedFunc(slices.Values(log), func(a, b simulator.Request) int { return a.At.Compare(b.At) })
	var admitted []time.Duration
	for i := 1; i < len(arrived); i++ {
		gap := arrived[i].At.Sub(arrived[i-1].At)
		switch arrived[i].Status {
		case http.StatusTooManyRequests:
			r.GapsBefore429 = append(r.GapsBefore429, gap)
		case http.StatusOK:
			admitted = append(admitted, gap)
		}
	}
	if len(admitted) > 0 {
		slices.Sort(admitted)
		r.MedianGap = admitted[len(admitted)/2]
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Walk measures the sequential cursor walk the official CLI and SDK do (one
// request at a time, following next_page) over the run's period, against
// the same server, for d.
func Walk(ctx context.Context, b Bins, w WholeRun, d time.Duration) (float64, error) {
	w.Sim.From, w.Sim.To = period(w.Days)
	s, err := startSim(ctx, b.Sim, w.Sim)
	if err != nil {
		return 0, err
	}
	defer s.stop()
	c := extract.NewClient(extract.ClientConfig{BaseURL: s.base, Token: "sim-token", RPS: w.ClientRate,
		Timeout: 30 * time.Second, MaxRetries: 10, UserAgent: "pachca-bench"})
	runCtx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	q := extract.Query{Start: w.Sim.From, End: w.Sim.To.Add(-time.Millisecond)}
	cursor, pages := "", 0
	for runCtx.Err() == nil {
		p, err := c.Page(runCtx, q, cursor)
		if err != nil {
			if runCtx.Err() != nil {
				break
			}
			return 0, err
		}
		pages++
		if !p.HasNext {
			break
		}
		cursor = p.Next
	}
	return float64(pages) / time.Since(start).Seconds(), nil
}

// PrintWhole writes a whole run's figures as one table row: name, events,
// days, wall (start to first request + first to last request + last request
// to exit), pages/s, % of the limit, requests per page, 429s, blocks, and
// the sequential walk's pages/s.
func PrintWhole(out io.Writer, r WholeResult, walk float64) {
	limit := r.Run.Sim.Rate
	fmt.Fprintf(out, "| %s | %d | %d | %.1f s (%.2f + %.1f + %.2f) | %.1f | %.1f%% | %.3f | %d (%.2f%%%s) | %d | %s |\n",
		r.Run.Name, r.Run.Sim.Events, r.Run.Days, r.Wall.Seconds(), r.Head.Seconds(), (r.Wall - r.Head - r.Tail).Seconds(), r.Tail.Seconds(),
		r.PagesPerSecond(), 100*r.PagesPerSecond()/limit,
		float64(r.Requests)/float64(r.Pages), r.Throttled, r.ThrottledShare(), gapsCell(r), r.Blocked, walkCell(walk, limit))
}

// gapsCell names the server-seen gaps before the first 429s, and the
// median gap of the admitted requests: "; after 19.54, 19.98 ms of a
// median 20.41".
func gapsCell(r WholeResult) string {
	if len(r.GapsBefore429) == 0 {
		return ""
	}
	const most = 5
	var ms []string
	for _, g := range r.GapsBefore429[:min(most, len(r.GapsBefore429))] {
		ms = append(ms, fmt.Sprintf("%.2f", float64(g)/float64(time.Millisecond)))
	}
	if len(r.GapsBefore429) > most {
		ms = append(ms, "...")
	}
	return fmt.Sprintf("; after %s ms of a median %.2f", strings.Join(ms, ", "), float64(r.MedianGap)/float64(time.Millisecond))
}

func walkCell(walk, limit float64) string {
	if walk <= 0 {
		return ""
	}
	return fmt.Sprintf("%.1f (%.0f%%)", walk, 100*walk/limit)
}
