// Command pachca-sim serves a simulated Pachca API (GET /audit_events, POST
// /messages) on a local address, for demos, tests and benchmarks.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/pachca-export/pachca-export/simulator"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run parses args, serves until ctx ends and returns the exit status:
// 0 after a clean stop, 1 when the server cannot start, 2 for bad flags.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, addr, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "pachca-sim: %v (see pachca-sim -h)\n", err)
		return 2
	}
	srv, err := simulator.New(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "pachca-sim: %v\n", strings.ReplaceAll(err.Error(), "\n", "; "))
		return 2
	}
	base, err := srv.Start(addr)
	if err != nil {
		fmt.Fprintf(stderr, "pachca-sim: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s\n", base)
	fmt.Fprintf(stderr, "pachca-sim: %d events from %s to %s, token %q; Ctrl-C stops\n",
		cfg.Events, cfg.From.Format(time.RFC3339), cfg.To.Format(time.RFC3339), cfg.Token)
	<-ctx.Done()
	if err := srv.Close(); err != nil {
		fmt.Fprintf(stderr, "pachca-sim: close: %v\n", err)
		return 1
	}
	return 0
}

// parseFlags maps the command line onto simulator.DefaultConfig.
func parseFlags(args []string, stderr io.Writer) (simulator.Config, string, error) {
	cfg := simulator.DefaultConfig()
	fs := flag.NewFlagSet("pachca-sim", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addr := fs.String("addr", "127.0.0.1:8089", "listen address (port 0 picks a free one)")
	fs.IntVar(&cfg.Events, "events", cfg.Events, "number of generated events")
	from := timeFlag{&cfg.From}
	to := timeFlag{&cfg.To}
	fs.Var(from, "from", "first instant of the generated events, RFC 3339 or YYYY-MM-DD")
	fs.Var(to, "to", "end of the generated events, exclusive, RFC 3339 or YYYY-MM-DD")
	fs.Int64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the generated events and of the fault draws")
	fs.StringVar(&cfg.Token, "token", cfg.Token, "accepted bearer token (sim-no-scope and sim-no-plan are always known)")
	tokens := fs.String("tokens", "", "further accepted bearer tokens of the owner, comma-separated; while serving, POST /_sim/tokens {\"token\":...,\"owner\":...} adds one and POST /_sim/tokens/revoke {\"token\":...} revokes one (401 after)")
	fs.Uint64Var(&cfg.OwnerID, "owner-id", cfg.OwnerID, "user id of the token's owner, which GET /oauth/token/info names: another workspace has another owner, 0 = 10001")
	fs.IntVar(&cfg.MessageMaxBytes, "message-max-bytes", cfg.MessageMaxBytes, fmt.Sprintf("longest message content POST /messages takes, in bytes, 0 = %d", simulator.DefaultMessageMaxBytes))
	fs.DurationVar(&cfg.MaxRange, "max-range", cfg.MaxRange, "largest end_time-start_time accepted, 0 = unlimited")
	fs.Float64Var(&cfg.RateLimit, "rate", cfg.RateLimit, "requests per second per token, 0 = unlimited")
	fs.StringVar(&cfg.LimitModel, "limit-model", cfg.LimitModel, "how the rate limit is enforced: "+strings.Join(simulator.LimitModels(), ", "))
	fs.IntVar(&cfg.Burst, "burst", cfg.Burst, "bucket size of the token-bucket model")
	fs.BoolVar(&cfg.RetryAfterHTTPDate, "retry-after-date", cfg.RetryAfterHTTPDate, "send Retry-After as an HTTP date")
	fs.IntVar(&cfg.BlockAfter, "block-after", cfg.BlockAfter, "block a token after this many requests that ignore a 429, 0 = never")
	fs.DurationVar(&cfg.BlockFor, "block-for", cfg.BlockFor, "how long a blocked token gets 429")
	fs.DurationVar(&cfg.Latency, "latency", cfg.Latency, "latency added to every request")
	fs.DurationVar(&cfg.Jitter, "jitter", cfg.Jitter, "uniform extra latency in [0, jitter)")
	fs.Float64Var(&cfg.FaultRate, "fault-rate", cfg.FaultRate, "probability of an injected fault per GET /audit_events")
	faults := fs.String("faults", strings.Join(cfg.Faults, ","), "fault kinds: "+strings.Join(simulator.AllFaults(), ","))
	fs.DurationVar(&cfg.SlowDelay, "slow-delay", cfg.SlowDelay, "delay of a slow fault")
	fs.BoolVar(&cfg.AccessedEvents, "accessed-events", cfg.AccessedEvents, "write an audit_events_accessed event per call")
	fs.BoolVar(&cfg.TieGroups, "ties", cfg.TieGroups, "many events in one millisecond")
	fs.BoolVar(&cfg.Midnight, "midnight", cfg.Midnight, "events exactly at midnight UTC")
	fs.DurationVar(&cfg.Disorder, "disorder", cfg.Disorder, "order pages by the log, in which a generated event's created_at lies up to this much before its place, 0 = created_at order")
	fs.BoolVar(&cfg.Micros, "micros", cfg.Micros, "keep created_at in microseconds and compare start_time/end_time with them (events still show milliseconds)")
	fs.IntVar(&cfg.TieGroup, "tie-group", cfg.TieGroup, "put this many of the events into one millisecond, 0 = none")
	fs.IntVar(&cfg.BigDetails, "big-details", cfg.BigDetails, "pad the details of big-events events to about this many bytes, 0 = none")
	fs.IntVar(&cfg.BigEvents, "big-events", cfg.BigEvents, "how many events get big-details")
	fs.IntVar(&cfg.ExtraKeys, "extra-keys", cfg.ExtraKeys, "about half the events get one of this many event keys no list has, 0 = none")
	fs.BoolVar(&cfg.OddKeys, "odd-keys", cfg.OddKeys, "a few events whose event_key or id holds slashes, dots, unicode, a NUL or 300 characters")
	fs.BoolVar(&cfg.HostileText, "hostile-text", cfg.HostileText, "some tag and chat names and user agents hold markup, script, terminal escapes, a bidi override, line breaks")
	fs.BoolVar(&cfg.UnknownKeys, "unknown-keys", cfg.UnknownKeys, "events with keys and details fields no spec lists")
	fs.Float64Var(&cfg.Live.Rate, "live-rate", cfg.Live.Rate, "new events per second at the wall clock while serving, 0 = none")
	fs.Float64Var(&cfg.Live.LateShare, "late-share", cfg.Live.LateShare, "share of live events published late")
	fs.DurationVar(&cfg.Live.MinLate, "min-late", cfg.Live.MinLate, "a late event's created_at is at least this far back")
	fs.DurationVar(&cfg.Live.MaxLate, "max-late", cfg.Live.MaxLate, "a late event's created_at is at most this far back")
	fs.DurationVar(&cfg.ClockOffset, "clock-offset", cfg.ClockOffset, "move the server's clock (live and accessed events, the Date header) from the wall clock")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "usage: pachca-sim [flags]")
			fs.SetOutput(stderr)
			fs.PrintDefaults()
		}
		return cfg, "", err
	}
	if fs.NArg() > 0 {
		return cfg, "", fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg.Faults = nil
	for k := range strings.SplitSeq(*faults, ",") {
		if k = strings.TrimSpace(k); k != "" {
			cfg.Faults = append(cfg.Faults, k)
		}
	}
	for tok := range strings.SplitSeq(*tokens, ",") {
		if tok = strings.TrimSpace(tok); tok != "" {
			cfg.Tokens = append(cfg.Tokens, tok)
		}
	}
	return cfg, *addr, nil
}

// timeFlag reads RFC 3339 or a date (that day 00:00 UTC).
type timeFlag struct{ t *time.Time }

func (f timeFlag) String() string {
	if f.t == nil || f.t.IsZero() {
		return ""
	}
	return f.t.Format(time.RFC3339)
}

func (f timeFlag) Set(v string) error {
	for _, layout := range []string{time.RFC3339Nano, time.DateOnly} {
		if t, err := time.Parse(layout, v); err == nil {
			*f.t = t.UTC()
			return nil
		}
	}
	return fmt.Errorf("%q is neither RFC 3339 (2026-11-01T00:00:00Z) nor a date (2026-11-01)", v)
}
