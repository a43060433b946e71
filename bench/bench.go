// Package bench measures the exporter end to end, as whole runs: a real
// pachca-export process from start to exit against a pachca-sim process, for
// each of the simulator's rate-limit models, beside a sequential cursor walk;
// a tight limit; servers below the configured limit; a run killed with
// SIGKILL and run again; the peak memory of a 1,000,000-event export; and the
// follow mode's delay, its late events and its idle cost.
// cmd/pachca-bench wires it; `make bench` runs it.
package bench

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pachca-export/pachca-export/simulator"
)

// Bins are the binaries a benchmark runs, and its scratch directory.
type Bins struct {
	Export, Sim string
	Dir         string // "" for the system's temporary directory
}

// Config selects what Run measures.
type Config struct {
	Bins Bins
	// Models, Sizes and Days: a whole run of every size over Days days
	// against every model, the server at Rate with a token bucket of Rate
	// tokens, the client configured at Rate with Workers.
	Models  []string
	Sizes   []int
	Days    int
	Large   int // one more run of this many events against the token bucket; 0 skips it
	Rate    float64
	Workers int
	Latency time.Duration
	Jitter  time.Duration
	// BlockAfter: the server blocks a token that sends this many requests
	// while it should wait out a 429.
	BlockAfter int
	// Walk is how long the sequential cursor walk runs against each model.
	Walk time.Duration
	// Tight is a server limit the client is configured at too, for a run of
	// TightEvents over TightDays (0 skips it).
	Tight       float64
	TightEvents int
	TightDays   int
	// Slow are servers below Rate, the client still configured at Rate,
	// each for a run of SlowEvents over Days.
	Slow       []SlowServer
	SlowEvents int
	// KillEvents over KillDays are exported, then exported again and killed
	// at KillAt of the pages, and run again (0 skips it).
	KillEvents int
	KillDays   int
	KillAt     float64
	// RSSEvents are exported over each of RSSDays without a limit, for the
	// peak memory (0 skips it).
	RSSEvents int
	RSSDays   []int
	// RSSTie events in one millisecond are exported over one day, for the
	// peak memory of a window no checkpoint cuts (0 skips it).
	RSSTie int
	// Follow is the follow mode's benchmark (Follow.OnTime 0 skips it).
	Follow FollowConfig
}

// SlowServer is a server limit below the client's configured rate: its
// model (a token bucket's burst is a second of its rate) and rate.
type SlowServer struct {
	Model string
	Rate  float64
}

// ParseSlowServers reads "model:rate,..." (a bare rate is a token bucket;
// "" and "0" are none).
func ParseSlowServers(s string) ([]SlowServer, error) {
	var out []SlowServer
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f == "" || f == "0" {
			continue
		}
		model, rate, ok := strings.Cut(f, ":")
		if !ok {
			model, rate = simulator.LimitTokenBucket, f
		}
		r, err := strconv.ParseFloat(rate, 64)
		if err != nil || r <= 0 || !slices.Contains(simulator.LimitModels(), model) {
			return nil, fmt.Errorf("%q is not a rate-limit model and a rate, as in pacing:40 (models: %s)", f, strings.Join(simulator.LimitModels(), ", "))
		}
		out = append(out, SlowServer{Model: model, Rate: r})
	}
	return out, nil
}

// DefaultConfig is what `make bench` measures: the figures, about a
// quarter of an hour.
func DefaultConfig() Config {
	return Config{
		Bins:   Bins{Export: "bin/pachca-export", Sim: "bin/pachca-sim"},
		Models: simulator.LimitModels(), Sizes: []int{20_000, 100_000}, Days: 7, Large: 1_000_000,
		Rate: 50, Workers: 8, Latency: 100 * time.Millisecond, Jitter: 20 * time.Millisecond, BlockAfter: 20,
		Walk:  10 * time.Second,
		Tight: 5, TightEvents: 15_000, TightDays: 2,
		Slow:       []SlowServer{{simulator.LimitTokenBucket, 25}, {simulator.LimitPacing, 40}, {simulator.LimitFixedWindow, 35}},
		SlowEvents: 75_000,
		KillEvents: 60_000, KillDays: 6, KillAt: 0.4,
		RSSEvents: 1_000_000, RSSDays: []int{1, 30}, RSSTie: 100_000,
		Follow: DefaultFollowConfig(),
	}
}

// run returns a whole run of events against model at the server limit rate.
func (c Config) run(name, model string, rate float64, events, days int) WholeRun {
	return WholeRun{
		Name: name,
		Sim: SimConfig{Events: events, Rate: rate, Model: model, Burst: int(rate), BlockAfter: c.BlockAfter,
			Latency: c.Latency, Jitter: c.Jitter, Seed: 1},
		Days: days, ClientRate: c.Rate, Workers: c.Workers,
	}
}

// Run measures everything c selects and prints the figures to w as they come.
func Run(ctx context.Context, w io.Writer, c Config) error {
	if len(c.Models) > 0 && len(c.Sizes) > 0 {
		fmt.Fprintf(w, "whole runs: server limit %g req/s, client %g req/s x %d workers, latency %s + [0, %s), %d days, NDJSON + Parquet; sequential walk for %s\n\n",
			c.Rate, c.Rate, c.Workers, c.Latency, c.Jitter, c.Days, c.Walk)
		fmt.Fprintln(w, "| model | events | days | wall (head + requests + tail) | pages/s | of limit | requests/page | 429s | blocks | sequential walk pages/s |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
	}
	for _, m := range c.Models {
		var walk float64
		for i, n := range c.Sizes {
			r := c.run(m, m, c.Rate, n, c.Days)
			if i == 0 && c.Walk > 0 {
				var err error
				if walk, err = Walk(ctx, c.Bins, r, c.Walk); err != nil {
					return err
				}
			}
			res, err := RunWhole(ctx, c.Bins, r)
			if err != nil {
				return err
			}
			PrintWhole(w, res, walk)
			walk = 0
		}
	}
	if c.Large > 0 {
		res, err := RunWhole(ctx, c.Bins, c.run(simulator.LimitTokenBucket, simulator.LimitTokenBucket, c.Rate, c.Large, c.Days))
		if err != nil {
			return err
		}
		PrintWhole(w, res, 0)
	}
	if c.Tight > 0 {
		r := c.run("tight", simulator.LimitTokenBucket, c.Tight, c.TightEvents, c.TightDays)
		r.ClientRate = c.Tight
		res, err := RunWhole(ctx, c.Bins, r)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "\ntight limit: server and client at %g req/s (token bucket of %d), %d events over %d days, %d workers\n",
			c.Tight, int(c.Tight), c.TightEvents, c.TightDays, c.Workers)
		fmt.Fprintf(w, "  pages               %d\n", res.Pages)
		fmt.Fprintf(w, "  requests            %d = %.3f x pages (429s %d)\n", res.Requests, float64(res.Requests)/float64(res.Pages), res.Throttled)
		ideal := float64(res.Pages) / c.Tight
		fmt.Fprintf(w, "  wall time           %.1f s = %.3f x pages / %g (%.1f s)\n", res.Wall.Seconds(), res.Wall.Seconds()/ideal, c.Tight, ideal)
	}
	for _, slow := range c.Slow {
		r := c.run("slow", slow.Model, slow.Rate, c.SlowEvents, c.Days)
		res, err := RunWhole(ctx, c.Bins, r)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "\nserver below the client: server %g req/s (%s), client %g req/s, %d events over %d days\n",
			slow.Rate, slow.Model, c.Rate, c.SlowEvents, c.Days)
		if res.SettledSet {
			fmt.Fprintf(w, "  settled pages/s     %.1f = %.1f%% of %g (200 answers from %s after the start to the last)\n",
				res.SettledOK, 100*res.SettledOK/slow.Rate, slow.Rate, settleAfter)
		}
		fmt.Fprintf(w, "  whole run           %.1f s, %.1f pages/s = %.1f%% of %g; 429s %d of %d (%.2f%%), blocks %d\n",
			res.Wall.Seconds(), res.PagesPerSecond(), 100*res.PagesPerSecond()/slow.Rate, slow.Rate, res.Throttled, res.Requests, res.ThrottledShare(), res.Blocked)
		fmt.Fprintf(w, "  pages/s per 5 s     %s\n", formatSeries(res.Series))
	}
	if c.KillEvents > 0 {
		fmt.Fprintln(w)
		res, err := RunKill(ctx, c.Bins, c.run("kill", simulator.LimitTokenBucket, c.Rate, c.KillEvents, c.KillDays), c.KillAt)
		if err != nil {
			return err
		}
		PrintKill(w, res)
	}
	for _, days := range c.RSSDays {
		if c.RSSEvents <= 0 {
			break
		}
		fmt.Fprintln(w)
		rr, err := RunRSS(ctx, RSSConfig{ExportBin: c.Bins.Export, SimBin: c.Bins.Sim, Events: c.RSSEvents, Days: days, Dir: c.Bins.Dir})
		if err != nil {
			return err
		}
		PrintRSS(w, rr)
	}
	if c.RSSTie > 0 {
		fmt.Fprintln(w)
		rr, err := RunRSS(ctx, RSSConfig{ExportBin: c.Bins.Export, SimBin: c.Bins.Sim, Events: c.RSSTie, Days: 1, TieGroup: c.RSSTie, Dir: c.Bins.Dir})
		if err != nil {
			return err
		}
		PrintRSS(w, rr)
	}
	if c.Follow.OnTime > 0 {
		fmt.Fprintln(w)
		res, err := RunFollow(ctx, c.Bins.Export, c.Bins.Dir, c.Follow)
		if err != nil {
			return err
		}
		PrintFollow(w, res)
	}
	return nil
}

func formatSeries(v []float64) string {
	s := ""
	for i, x := range v {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%.1f", x)
	}
	return s
}
