package main

import (
	"context"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/pachca-export/pachca-export/follow"
	"github.com/pachca-export/pachca-export/pipeline"
)

// clockOffsetEnv moves the clock of follow and run, for tests that need a
// UTC midnight a few seconds away or a catch-up up to a fixed day (the
// simulator has the same offset: TestUpgradeFromC3145b5). A value
// @FILE reads the offset from FILE at each reading of the clock, so that a
// test moves a running process's clock days ahead (TestFollowLong); a FILE
// that cannot be read or parsed leaves the offset as it was.
const clockOffsetEnv = "PACHCA_EXPORT_CLOCK_OFFSET"

// now is the command's clock: the wall clock, moved by clockOffsetEnv.
func (e *env) now() (func() time.Time, error) {
	v, ok := e.lookup(clockOffsetEnv)
	if !ok || v == "" {
		return time.Now, nil
	}
	if path, ok := strings.CutPrefix(v, "@"); ok {
		return offsetFile(path)
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return nil, usageErr("%s: %v", clockOffsetEnv, err)
	}
	return func() time.Time { return time.Now().Add(d) }, nil
}

// offsetFile is a clock moved by the duration FILE holds, read anew at
// each reading.
func offsetFile(path string) (func() time.Time, error) {
	read := func() (time.Duration, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return 0, err
		}
		return time.ParseDuration(strings.TrimSpace(string(b)))
	}
	d, err := read()
	if err != nil {
		return nil, usageErr("%s: %v", clockOffsetEnv, err)
	}
	var mu sync.Mutex
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		if n, err := read(); err == nil {
			d = n
		}
		return time.Now().Add(d)
	}, nil
}

func followCommand() *command {
	return &command{
		name:     "follow",
		synopsis: "-c FILE [--from T] [--listen ADDR] [--token TOKEN] [--log-format text|json] [--log-level LEVEL]",
		summary:  "feed the sinks continuously: export every interval, catch late events",
		about: `Runs until SIGTERM, SIGINT or SIGHUP (exit 0): every follow.interval it exports what the
API published since the last cycle, re-reading follow.lookback behind its
watermark for events published late and delivering each event once; a UTC day
past lag + lookback is sealed into the usual one file per day and recorded as
exported. --from sets where a state that was never followed starts (default:
after the last exported day, or today). Exits 1 on a permanent failure or when
cycles fail for longer than follow.give_up_after.`,
		setup: func(fs *flags, e *env) func(context.Context, []string) error {
			cfgPath := fs.String("c", "", "the pipeline configuration `FILE` (pipeline.yaml)")
			from := fs.String("from", "", "where a state that was never followed starts (`T`)")
			listen := fs.String("listen", "", "`ADDR` of /metrics, /healthz and /readyz (overrides follow.listen)")
			token := fs.String("token", "", "the API `TOKEN` (prefer PACHCA_TOKEN or token_file: flags show in ps)")
			var lf logFlags
			lf.register(fs)
			return func(ctx context.Context, _ []string) error {
				log, err := lf.logger(e)
				if err != nil {
					return err
				}
				f, err := parseTimeFlag("from", *from, false)
				if err != nil {
					return err
				}
				cfg, err := e.loadConfig(*cfgPath, *token, log)
				if err != nil {
					return err
				}
				log = e.labelled(log)
				now, err := e.now()
				if err != nil {
					return err
				}
				if os.Getenv("GOMEMLIMIT") == "" {
					defer debug.SetMemoryLimit(debug.SetMemoryLimit(followMemoryLimit))
				}
				return follow.Run(ctx, pipeline.Options{Config: cfg, Logger: log, Now: now, Stdout: e.stdout, AlertsOut: e.stdout},
					follow.Options{From: f, Listen: *listen, Redact: e.redact, Listening: func(addr string) {
						log.Info("follow: serving /metrics, /healthz, /readyz", "addr", addr)
					}})
			}
		},
	}
}

// followMemoryLimit is the soft limit of the Go runtime's memory in
// follow: its live heap holds, beside what a run holds, the ids of the
// cycle under way until its commit (up to some 200,000 events reading a
// backlog, about 17 MB) and of the look-back. Under the export's 26 MiB
// the collector ran back to back through such a cycle: 4,982 collections
// and 41 s of CPU for a backlog of 1,500,000 events, against 481 and 28 s
// at 48 MiB, for 77 MiB of peak RSS instead of 75 (BENCHMARKS.md, A flood
// of events). GOMEMLIMIT overrides it.
const followMemoryLimit = 48 << 20
