package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/sinks"
)

func demoCommand() *command {
	return &command{
		name:     "demo",
		synopsis: "[--out DIR] [--events N]",
		summary:  "export a week of simulated events to NDJSON and Parquet files (no token needed)",
		about: `Starts the embedded API simulator on 127.0.0.1 with a week of events and
exports them to DIR/ndjson and DIR/parquet, as run does, then prints commands
to look at the files. What an earlier demo wrote under DIR is replaced.`,
		setup: func(fs *flags, e *env) func(context.Context, []string) error {
			out := fs.String("out", "out/demo", "the output `DIR`")
			events := fs.Int("events", 20000, "`N` simulated events over the week")
			var lf logFlags
			lf.register(fs)
			return func(ctx context.Context, _ []string) error {
				log, err := lf.logger(e)
				if err != nil {
					return err
				}
				return e.demo(ctx, log, *out, *events)
			}
		},
	}
}

// demo exports a week of simulated events with the default file sinks.
func (e *env) demo(ctx context.Context, log *slog.Logger, out string, events int) error {
	end := time.Now().UTC().Truncate(24 * time.Hour)
	start := end.Add(-7 * 24 * time.Hour)
	lock, err := lockDemo(out)
	if err != nil {
		return flagPathHint(err, "--out", "")
	}
	defer lock.Close()
	sc := simulator.DefaultConfig()
	sc.Events, sc.From, sc.To, sc.Seed = events, start, end, 1
	sc.RateLimit, sc.Burst = 50, 10
	sim, err := simulator.New(sc)
	if err != nil {
		return err
	}
	base, err := sim.Start("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer sim.Close()
	if err := clearDemo(out); err != nil {
		return err
	}
	log.Info("demo: simulated Pachca API started", "url", base, "events", sc.Events,
		"from", start.Format(time.DateOnly), "to", end.Add(-time.Second).Format(time.DateOnly))
	cfg := config.Default()
	cfg.File = "demo"
	cfg.Source.BaseURL, cfg.Source.Token, cfg.Source.Workspace = base, sc.Token, "demo"
	cfg.State.Dir = filepath.Join(out, ".state")
	cfg.Sinks = []config.Sink{
		{Type: "ndjson", File: &config.FileSink{Dir: filepath.Join(out, "ndjson"), Compression: "gzip"}},
		{Type: "parquet", File: &config.FileSink{Dir: filepath.Join(out, "parquet"), Compression: "zstd"}},
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := e.export(ctx, pipeline.Options{Config: &cfg, Logger: log}, pipeline.Range{From: start, To: end}, false, ""); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "demo: files under %s\n", out)
	fmt.Fprintf(e.stdout, "  zcat %s | head -1\n", shellWord(filepath.Join(out, "ndjson", "dt="+start.Format(time.DateOnly), "pachca-audit-"+start.Format(time.DateOnly)+".ndjson.gz")))
	fmt.Fprintf(e.stdout, "  duckdb -c %s\n", shellDoubleQuoted("SELECT event_category, count(*) FROM read_parquet("+sqlString(out+"/parquet/dt=*/*.parquet")+", hive_partitioning=true) GROUP BY 1"))
	return e.demoReport(ctx, log, out, start, end)
}

// lockDemo holds an flock on out/.demo.lock while the demo runs: a second
// demo into the same directory (make demo in two terminals) would remove
// the first one's files under it (clearDemo), or be refused at its first
// day with "this location holds the events of another configuration", the
// two simulators listening on different ports.
func lockDemo(out string) (*os.File, error) {
	if err := os.MkdirAll(out, 0o750); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(out, ".demo.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("demo: another demo is writing to %s: wait for it to end, or give --out another directory", out)
		}
		return nil, fmt.Errorf("demo: lock %s: %w", f.Name(), err)
	}
	return f, nil
}

// clearDemo removes what an earlier demo wrote under out, so that the demo
// runs again: its simulator listens on another port each time and its week
// moves with the date, so the files would otherwise be another
// configuration's (refused) or days that shrink (refused). Only a demo's
// sinks are removed, known by their markers; anything else is left as it
// is, and the export refuses it as usual.
func clearDemo(out string) error {
	found := false
	for _, sink := range []string{"ndjson", "parquet"} {
		b, err := os.ReadFile(filepath.Join(out, sink, sinks.MarkerName))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		var m sinks.Marker
		if json.Unmarshal(b, &m) != nil || m.Identity.Workspace != "demo" || !strings.HasPrefix(m.Identity.BaseURL, "http://127.0.0.1:") {
			return nil
		}
		found = true
	}
	if !found {
		return nil
	}
	for _, name := range []string{"ndjson", "parquet", ".state", "report.html"} {
		if err := os.RemoveAll(filepath.Join(out, name)); err != nil {
			return fmt.Errorf("demo: remove the earlier demo: %w", err)
		}
	}
	return nil
}

// shellWord is s as one word of a POSIX shell command line, so that the
// commands demo prints run as printed for an --out with spaces, quotes or
// $ in it (was: `zcat my demo/ndjson/...`, three words); s as it is when it
// needs no quoting.
func shellWord(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./=:@%+,-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// shellDoubleQuoted is s in a shell's double quotes, its \, ", $ and `
// escaped.
func shellDoubleQuoted(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", `\$`, "`", "\\`").Replace(s) + `"`
}

// sqlString is s as an SQL string literal, its single quotes doubled.
func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
