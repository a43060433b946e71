// Command pachca-bench measures whole pachca-export runs against pachca-sim
// processes (every rate-limit model, a tight limit, servers slower than the
// client, a SIGKILL and rerun) and the peak memory of a 1,000,000-event
// export; `make bench` runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/pachca-export/pachca-export/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c := bench.DefaultConfig()
	fs := flag.NewFlagSet("pachca-bench", flag.ExitOnError)
	fs.StringVar(&c.Bins.Export, "export-bin", c.Bins.Export, "pachca-export binary")
	fs.StringVar(&c.Bins.Sim, "sim-bin", c.Bins.Sim, "pachca-sim binary")
	models := fs.String("models", strings.Join(c.Models, ","), "rate-limit models of the whole runs (empty: none)")
	sizes := fs.String("sizes", joinInts(c.Sizes), "events of the whole runs against every model")
	fs.IntVar(&c.Days, "days", c.Days, "period of the whole runs, in days")
	fs.IntVar(&c.Large, "large", c.Large, "events of one more run against the token bucket (0 skips it)")
	fs.Float64Var(&c.Rate, "rate", c.Rate, "server limit and client source.requests_per_second")
	fs.IntVar(&c.Workers, "workers", c.Workers, "client source.concurrency")
	fs.DurationVar(&c.Latency, "latency", c.Latency, "simulator latency per admitted request")
	fs.DurationVar(&c.Jitter, "jitter", c.Jitter, "simulator extra latency, uniform in [0, jitter)")
	fs.IntVar(&c.BlockAfter, "block-after", c.BlockAfter, "simulator: block a token after this many requests that ignore a 429")
	fs.DurationVar(&c.Walk, "walk", c.Walk, "length of the sequential cursor walk against each model (0 skips it)")
	fs.Float64Var(&c.Tight, "tight", c.Tight, "a tight limit, server and client (0 skips the run)")
	fs.IntVar(&c.TightEvents, "tight-events", c.TightEvents, "events of the tight-limit run")
	fs.IntVar(&c.TightDays, "tight-days", c.TightDays, "days of the tight-limit run")
	slow := fs.String("slow", slowString(c.Slow), "servers below -rate, as model:rate (a bare rate: a token bucket), the client at -rate (0 skips them)")
	fs.IntVar(&c.SlowEvents, "slow-events", c.SlowEvents, "events of the slow-server run")
	fs.IntVar(&c.KillEvents, "kill-events", c.KillEvents, "events of the SIGKILL run (0 skips it)")
	fs.IntVar(&c.KillDays, "kill-days", c.KillDays, "days of the SIGKILL run")
	fs.Float64Var(&c.KillAt, "kill-at", c.KillAt, "share of the pages after which the run is killed")
	fs.IntVar(&c.RSSEvents, "rss-events", c.RSSEvents, "events of the memory run (0 skips it)")
	days := fs.String("rss-days", joinInts(c.RSSDays), "periods of the memory run, in days")
	fs.IntVar(&c.RSSTie, "rss-tie", c.RSSTie, "events of a memory run of one day, all in one millisecond (0 skips it)")
	fs.DurationVar(&c.Follow.OnTime, "follow", c.Follow.OnTime, "each phase of the follow benchmark (on time, then late events; 0 skips it)")
	fs.DurationVar(&c.Follow.Idle, "follow-idle", c.Follow.Idle, "the idle follow process's run")
	_ = fs.Parse(os.Args[1:])
	var err error
	c.Models = nil
	for m := range strings.SplitSeq(*models, ",") {
		if m = strings.TrimSpace(m); m != "" {
			c.Models = append(c.Models, m)
		}
	}
	c.Follow.Late = c.Follow.OnTime
	if c.Sizes, err = parseInts(*sizes, 1, 1<<31); err == nil {
		if c.RSSDays, err = parseInts(*days, 1, 89); err == nil {
			c.Slow, err = bench.ParseSlowServers(*slow)
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "pachca-bench: %v\n", err)
		os.Exit(2)
	}
	if err := bench.Run(ctx, os.Stdout, c); err != nil {
		fmt.Fprintf(os.Stderr, "pachca-bench: %v\n", err)
		os.Exit(1)
	}
}

// parseInts reads a comma-separated list of numbers in [lo, hi].
func parseInts(s string, lo, hi int) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < lo || n > hi {
			return nil, fmt.Errorf("%q is not a number from %d to %d", f, lo, hi)
		}
		out = append(out, n)
	}
	return out, nil
}

func slowString(v []bench.SlowServer) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf("%s:%g", x.Model, x.Rate)
	}
	return strings.Join(s, ",")
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}
