// Package bench measures the exporter end to end: extraction against an
// in-process simulator (parallel fetcher against a sequential cursor walk,
// and a server limit below the client's), and the peak memory of a real
// export process. cmd/pachca-bench wires it; `make bench` runs it.
package bench

import (
	"context"
	"fmt"
	"io"
	"time"
)

// Config selects what Run measures.
type Config struct {
	Duration    time.Duration // each parallel extraction scenario
	Sequential  time.Duration // the sequential cursor walk
	Warmup      time.Duration // left out of the parallel figures
	Latency     time.Duration
	Jitter      time.Duration
	ServerLimit float64 // the simulator's limit in the first scenario
	LowLimit    float64 // the simulator's limit in the last scenario (0: skip it)
	Burst       int
	BlockAfter  int
	ClientRPS   float64 // the client's configured rate (source.requests_per_second)
	Workers     int     // source.concurrency
	// RSS runs the peak-memory export when set; RSSDays lists the periods.
	RSS     *RSSConfig
	RSSDays []int
}

// DefaultConfig is what `make bench` measures: the figures, about
// two and a half minutes of extraction plus the memory runs.
func DefaultConfig() Config {
	return Config{
		Duration: 60 * time.Second, Sequential: 15 * time.Second, Warmup: 5 * time.Second,
		Latency: 100 * time.Millisecond, Jitter: 20 * time.Millisecond,
		ServerLimit: 50, LowLimit: 25, Burst: 50, BlockAfter: 20,
		ClientRPS: 50, Workers: 8,
	}
}

// Run measures everything c selects and prints the figures to w as they come.
func Run(ctx context.Context, w io.Writer, c Config) error {
	if c.Warmup >= c.Duration || c.Duration < 2*time.Second || c.Sequential <= 0 {
		return fmt.Errorf("duration %s must be at least 2s and longer than the warm-up %s; sequential %s must be positive", c.Duration, c.Warmup, c.Sequential)
	}
	base := Scenario{
		ServerLimit: c.ServerLimit, Burst: c.Burst, BlockAfter: c.BlockAfter, ClientRPS: c.ClientRPS,
		Workers: c.Workers, Latency: c.Latency, Jitter: c.Jitter, Duration: c.Duration, Warmup: c.Warmup,
	}
	par := base
	par.Name = "parallel"
	rp, err := RunScenario(ctx, par)
	if err != nil {
		return err
	}
	PrintExtract(w, rp)

	seq := base
	seq.Name, seq.Sequential, seq.Workers, seq.Duration, seq.Warmup = "sequential", true, 1, c.Sequential, 0
	rs, err := RunScenario(ctx, seq)
	if err != nil {
		return err
	}
	PrintExtract(w, rs)
	fmt.Fprintf(w, "extract summary: parallel %.1f req/s (%.1f%% of %g), sequential cursor walk %.1f req/s; %.1fx\n",
		rp.OKPerSecond(), 100*rp.OKPerSecond()/c.ServerLimit, c.ServerLimit, rs.OKPerSecond(), rp.OKPerSecond()/rs.OKPerSecond())

	if c.LowLimit > 0 {
		low := base
		low.Name, low.ServerLimit = "server-below-client", c.LowLimit
		// The settled rate: the second half of the run.
		low.Warmup = c.Duration / 2
		rl, err := RunScenario(ctx, low)
		if err != nil {
			return err
		}
		PrintExtract(w, rl)
	}

	if c.RSS != nil {
		for _, days := range c.RSSDays {
			rc := *c.RSS
			rc.Days = days
			rr, err := RunRSS(ctx, rc)
			if err != nil {
				return err
			}
			PrintRSS(w, rr)
		}
	}
	return nil
}
