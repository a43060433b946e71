// Command pachca-bench measures extraction against an in-process simulator
// and the peak memory of a 1,000,000-event export; `make bench` runs it.
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

	"github.com/pachca-export/pachca-export/internal/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c := bench.DefaultConfig()
	rss := bench.RSSConfig{ExportBin: "bin/pachca-export", SimBin: "bin/pachca-sim", Events: 1_000_000}
	fs := flag.NewFlagSet("pachca-bench", flag.ExitOnError)
	fs.DurationVar(&c.Duration, "duration", c.Duration, "length of each parallel extraction run")
	fs.DurationVar(&c.Sequential, "sequential", c.Sequential, "length of the sequential cursor walk")
	fs.DurationVar(&c.Warmup, "warmup", c.Warmup, "start of the parallel run left out of the figures")
	fs.DurationVar(&c.Latency, "latency", c.Latency, "simulator latency per request")
	fs.DurationVar(&c.Jitter, "jitter", c.Jitter, "simulator extra latency, uniform in [0, jitter)")
	fs.Float64Var(&c.ServerLimit, "server-rps", c.ServerLimit, "simulator rate limit, requests per second")
	fs.Float64Var(&c.LowLimit, "low-server-rps", c.LowLimit, "simulator rate limit of the last run (0 skips it)")
	fs.IntVar(&c.Burst, "burst", c.Burst, "simulator rate-limit bucket size")
	fs.IntVar(&c.BlockAfter, "block-after", c.BlockAfter, "simulator: block a token after this many requests that ignore a 429")
	fs.Float64Var(&c.ClientRPS, "client-rps", c.ClientRPS, "client source.requests_per_second")
	fs.IntVar(&c.Workers, "workers", c.Workers, "client source.concurrency")
	fs.StringVar(&rss.ExportBin, "export-bin", rss.ExportBin, "pachca-export binary for the memory run")
	fs.StringVar(&rss.SimBin, "sim-bin", rss.SimBin, "pachca-sim binary for the memory run")
	fs.IntVar(&rss.Events, "rss-events", rss.Events, "events of the memory run (0 skips it)")
	days := fs.String("rss-days", "1,30", "periods of the memory run, in days, comma-separated")
	_ = fs.Parse(os.Args[1:])
	if rss.Events > 0 {
		for s := range strings.SplitSeq(*days, ",") {
			d, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || d < 1 || d > 89 {
				fmt.Fprintf(os.Stderr, "pachca-bench: -rss-days: %q is not a number of days from 1 to 89\n", s)
				os.Exit(2)
			}
			c.RSSDays = append(c.RSSDays, d)
		}
		c.RSS = &rss
	}
	if err := bench.Run(ctx, os.Stdout, c); err != nil {
		fmt.Fprintf(os.Stderr, "pachca-bench: %v\n", err)
		os.Exit(1)
	}
}
