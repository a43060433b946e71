package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/pachca-export/pachca-export/extract"
	"github.com/pachca-export/pachca-export/simulator"
)

// Scenario is one extraction run against an in-process simulator.
type Scenario struct {
	Name        string
	ServerLimit float64       // the simulator's requests per second per token
	Burst       int           // the simulator's bucket size
	BlockAfter  int           // requests ignoring a 429 before the token is blocked
	ClientRPS   float64       // source.requests_per_second of the client
	Workers     int           // source.concurrency
	Latency     time.Duration // added to every request by the simulator
	Jitter      time.Duration // uniform extra latency in [0, Jitter)
	Duration    time.Duration // the run is stopped after this long
	Warmup      time.Duration // left out of the steady-state figures
	// Sequential walks one window with one worker, following next_page, as the
	// official CLI and SDK do, instead of running the parallel fetcher.
	Sequential bool
}

// ExtractResult is what one scenario measured, from the simulator's request
// log (so it counts what the server saw, 429s included).
type ExtractResult struct {
	Scenario Scenario
	Span     time.Duration // the steady-state span the rates are over
	OK       int           // 200 answers in the span
	// Throttled is the number of 429 answers in the span.
	Throttled int
	// TotalRequests and Total429 cover the whole run, warm-up included.
	TotalRequests, Total429 int
	Blocked                 int       // times the server blocked the token
	Buckets                 []float64 // 200 answers per second, per BucketWidth of the run
	BucketWidth             time.Duration
	FinalRate               float64 // the client limiter's rate at the end
}

// OKPerSecond is the rate of answered pages over the steady-state span.
func (r ExtractResult) OKPerSecond() float64 { return float64(r.OK) / r.Span.Seconds() }

// PerSecond is the rate of every request (200 and 429) over the span.
func (r ExtractResult) PerSecond() float64 {
	return float64(r.OK+r.Throttled) / r.Span.Seconds()
}

// ThrottledShare is the 429s of the span as a share of its requests, in percent.
func (r ExtractResult) ThrottledShare() float64 {
	if n := r.OK + r.Throttled; n > 0 {
		return 100 * float64(r.Throttled) / float64(n)
	}
	return 0
}

// TotalThrottledShare is the 429s of the whole run, in percent.
func (r ExtractResult) TotalThrottledShare() float64 {
	if r.TotalRequests > 0 {
		return 100 * float64(r.Total429) / float64(r.TotalRequests)
	}
	return 0
}

// RunScenario starts a simulator on 127.0.0.1 with enough events to keep the
// client busy for sc.Duration, runs the extraction until then and measures
// it. The events are discarded: this measures the client, not the disk.
func RunScenario(ctx context.Context, sc Scenario) (ExtractResult, error) {
	cfg := simulator.DefaultConfig()
	// Enough events that the run never runs out: every request a full page
	// at the client's rate, plus a margin.
	cfg.Events = int(sc.ClientRPS*sc.Duration.Seconds()*extract.PageSize*1.3) + 10*extract.PageSize
	cfg.To = time.Now().UTC().Truncate(24 * time.Hour)
	cfg.From = cfg.To.AddDate(0, 0, -7)
	cfg.Latency, cfg.Jitter = sc.Latency, sc.Jitter
	cfg.RateLimit, cfg.Burst = sc.ServerLimit, sc.Burst
	cfg.BlockAfter, cfg.BlockFor = sc.BlockAfter, time.Minute
	cfg.Faults = nil
	srv, err := simulator.New(cfg)
	if err != nil {
		return ExtractResult{}, err
	}
	base, err := srv.Start("127.0.0.1:0")
	if err != nil {
		return ExtractResult{}, err
	}
	defer srv.Close()
	client := extract.NewClient(extract.ClientConfig{
		BaseURL: base, Token: cfg.Token, RPS: sc.ClientRPS, Timeout: 30 * time.Second, MaxRetries: 10,
		UserAgent: "pachca-bench",
	})

	// A timer, not a deadline: rate.Limiter fails early, with its own error,
	// a wait that would pass a deadline.
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := time.AfterFunc(sc.Duration, cancel)
	defer stop.Stop()
	start := time.Now()
	if sc.Sequential {
		err = walk(runCtx, client, cfg.From, cfg.To)
	} else {
		err = fetchAll(runCtx, client, sc.Workers, cfg.From, cfg.To)
	}
	// The run ends at the stop, or earlier if the fetcher failed.
	end := time.Now()
	if stopAt := start.Add(sc.Duration); end.After(stopAt) {
		end = stopAt
	}
	if ctx.Err() != nil {
		return ExtractResult{}, ctx.Err()
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return ExtractResult{}, fmt.Errorf("%s: %w", sc.Name, err)
	}
	if err == nil {
		return ExtractResult{}, fmt.Errorf("%s: the simulator ran out of events after %s; the rates would include the tail", sc.Name, end.Sub(start).Round(time.Millisecond))
	}
	st := srv.Stats()
	res := measure(st.Log, start, end, sc.Warmup, 5*time.Second)
	res.Scenario = sc
	res.Blocked = st.Blocked
	res.FinalRate = client.Limiter().Rate()
	return res, nil
}

// measure computes the figures from the server's request log. Requests are
// placed by arrival; the last 500 ms are left out, since requests that
// arrived then were still in flight when the run was stopped.
func measure(log []simulator.Request, start, end time.Time, warmup, width time.Duration) ExtractResult {
	from, to := start.Add(warmup), end.Add(-500*time.Millisecond)
	res := ExtractResult{Span: to.Sub(from), BucketWidth: width}
	nb := int(end.Sub(start) / width)
	counts := make([]int, nb)
	for _, r := range log {
		if r.Status != http.StatusOK && r.Status != http.StatusTooManyRequests {
			continue // aborted at the stop
		}
		res.TotalRequests++
		if r.Status == http.StatusTooManyRequests {
			res.Total429++
		}
		if b := int(r.At.Sub(start) / width); r.Status == http.StatusOK && b >= 0 && b < nb {
			counts[b]++
		}
		if r.At.Before(from) || !r.At.Before(to) {
			continue
		}
		if r.Status == http.StatusOK {
			res.OK++
		} else {
			res.Throttled++
		}
	}
	for _, c := range counts {
		res.Buckets = append(res.Buckets, float64(c)/width.Seconds())
	}
	return res
}

// discard is a WindowWriter that keeps nothing.
type discard struct{}

func (discard) Add(extract.Event) error     { return nil }
func (discard) Commit(extract.Window) error { return nil }
func (discard) Abort()                      {}

// fetchAll runs the real fetcher as the pipeline does: one window per UTC
// day, split while workers are idle.
func fetchAll(ctx context.Context, c *extract.Client, workers int, from, to time.Time) error {
	f := extract.NewFetcher(extract.FetcherConfig{
		Client:  c,
		Workers: workers,
		Open:    func(extract.Window) (extract.WindowWriter, error) { return discard{}, nil },
	})
	for d := from; d.Before(to); d = d.AddDate(0, 0, 1) {
		f.Add(extract.Window{Start: d.UnixMilli(), End: min(d.AddDate(0, 0, 1).UnixMilli(), to.UnixMilli())})
	}
	f.CloseInput()
	return f.Run(ctx)
}

// walk follows next_page from the newest event of [from, to) to the oldest,
// one request at a time.
func walk(ctx context.Context, c *extract.Client, from, to time.Time) error {
	q := extract.Query{Start: from, End: to.Add(-time.Millisecond)}
	cursor := ""
	for {
		p, err := c.Page(ctx, q, cursor)
		if err != nil {
			return err
		}
		if !p.HasNext {
			return nil
		}
		cursor = p.Next
	}
}

// PrintExtract writes one scenario's figures as labelled lines.
func PrintExtract(w io.Writer, r ExtractResult) {
	sc := r.Scenario
	fmt.Fprintf(w, "extract %s: server limit %g req/s (burst %d, block after %d), client %g req/s, ", sc.Name, sc.ServerLimit, sc.Burst, sc.BlockAfter, sc.ClientRPS)
	if sc.Sequential {
		fmt.Fprintf(w, "1 worker following next_page, ")
	} else {
		fmt.Fprintf(w, "%d workers, ", sc.Workers)
	}
	fmt.Fprintf(w, "latency %s + [0, %s), %s (first %s left out)\n", sc.Latency, sc.Jitter, sc.Duration, sc.Warmup)
	fmt.Fprintf(w, "  pages/s (200)       %.1f = %.1f%% of the server limit\n", r.OKPerSecond(), 100*r.OKPerSecond()/sc.ServerLimit)
	fmt.Fprintf(w, "  requests/s (+429)   %.1f\n", r.PerSecond())
	fmt.Fprintf(w, "  429s                %d of %d = %.2f%% (whole run: %d of %d = %.2f%%)\n",
		r.Throttled, r.OK+r.Throttled, r.ThrottledShare(), r.Total429, r.TotalRequests, r.TotalThrottledShare())
	fmt.Fprintf(w, "  token blocks        %d\n", r.Blocked)
	if !sc.Sequential {
		fmt.Fprintf(w, "  client rate at end  %.1f req/s\n", r.FinalRate)
	}
	fmt.Fprintf(w, "  pages/s per %s     %s\n", r.BucketWidth, formatSeries(r.Buckets))
}

func formatSeries(v []float64) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprintf("%.1f", x)
	}
	return strings.Join(parts, " ")
}
