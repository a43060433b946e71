// Command pachca-export exports the audit-event log of a Pachca workspace to
// NDJSON and Parquet files, S3 and Kafka. main parses flags and wires the
// packages; the run loop is package pipeline.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/sinks/parquetfmt"
)

// Exit statuses (SPEC §2).
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

const usage = `pachca-export: export the Pachca audit-event log

usage:
  pachca-export run    -c pipeline.yaml [--from T] [--to T] [--dry-run] [--token TOKEN]
  pachca-export check  -c pipeline.yaml
  pachca-export schema [--format json|arrow|sql]
  pachca-export demo   [--out DIR]
  pachca-export version

T is RFC 3339 (2026-11-01T00:00:00Z) or a date (2026-11-01 = 00:00 UTC).
--from is inclusive, --to exclusive. Exit status: 0 ok, 1 run failed, 2 usage or configuration error.
`

// memoryLimit is the default soft limit of the Go heap. The export's live
// heap is some 20 MB whatever the period (window files of 1,000 events,
// Parquet batches of 2,048 rows in row groups of 32Ki rows, pages of 256 KiB)
// and the binary's own pages another 30-35 MB of RSS: 30 MiB keeps a
// 1,000,000-event export under 64 MiB of peak RSS, for some 15% more CPU in
// the garbage collector than 40 MiB (which peaks at 65). See BENCHMARKS.md.
// GOMEMLIMIT overrides it.
const memoryLimit = 30 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	// 7 MiB less per zstd encoder; without it the defaults still work.
	_ = parquetfmt.UseSmallZstdWindow()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// env is what a command reads and writes; tests pass their own.
type env struct {
	stdout, stderr io.Writer
	lookup         func(string) (string, bool)
	progress       *terminalProgress // set when stderr is a terminal
	secrets        []string          // never printed
}

// Main runs the command line args and returns the exit status.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	e := &env{stdout: stdout, stderr: stderr, lookup: os.LookupEnv}
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		e.progress = &terminalProgress{w: stderr}
		e.stderr = e.progress // log lines go above the status line
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	var err error
	switch args[0] {
	case "run":
		err = e.run(ctx, args[1:])
	case "check":
		err = e.check(ctx, args[1:])
	case "schema":
		err = e.schema(args[1:])
	case "demo":
		err = e.demo(ctx, args[1:])
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "pachca-export", version())
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
	default:
		err = usageErr("unknown command %q (run, check, schema, demo, version)", args[0])
	}
	return e.report(err)
}

// usageError is a mistake in the command line or configuration.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErr(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// report prints err as one line per problem and maps it to an exit status.
func (e *env) report(err error) int {
	if err == nil {
		return exitOK
	}
	code := exitFailed
	var ue *usageError
	var pe *pipeline.UsageError
	var ce *configError
	if errors.As(err, &ue) || errors.As(err, &pe) || errors.As(err, &ce) || errors.Is(err, flag.ErrHelp) {
		code = exitUsage
	}
	if errors.Is(err, flag.ErrHelp) {
		return code
	}
	if errors.Is(err, context.Canceled) {
		err = errors.New("interrupted; days not delivered stay unexported and the next run resumes them")
	}
	for _, line := range strings.Split(e.redact(err.Error()), "\n") {
		fmt.Fprintln(e.stderr, "pachca-export: "+line)
	}
	return code
}

// redact replaces every secret in s.
func (e *env) redact(s string) string {
	for _, sec := range e.secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "[REDACTED]")
		}
	}
	return s
}

// configError is a configuration that does not load (exit 2).
type configError struct{ err error }

func (e *configError) Error() string { return e.err.Error() }
func (e *configError) Unwrap() error { return e.err }

// loadConfig reads the configuration file and remembers its secrets.
func (e *env) loadConfig(path, token string) (*config.Config, error) {
	if path == "" {
		return nil, usageErr("-c pipeline.yaml is required")
	}
	cfg, err := config.Load(path, e.lookup)
	if err != nil {
		return nil, &configError{err}
	}
	if token != "" {
		cfg.Source.Token = token
	}
	e.secrets = append(e.secrets, cfg.Source.Token)
	for _, s := range cfg.Sinks {
		if s.S3 != nil {
			e.secrets = append(e.secrets, s.S3.SecretAccessKey)
		}
		if s.Kafka != nil {
			e.secrets = append(e.secrets, s.Kafka.SASL.Password)
		}
	}
	return cfg, nil
}

// logFlags are the logging flags every command that runs takes.
type logFlags struct {
	format, level string
}

func (l *logFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&l.format, "log-format", "text", "log format: text or json")
	fs.StringVar(&l.level, "log-level", "info", "log level: debug, info, warn or error")
}

// parse parses the command's flags and returns the logger they ask for.
func (l *logFlags) parse(fs *flag.FlagSet, args []string, e *env) (*slog.Logger, error) {
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	return l.logger(e)
}

func (l *logFlags) logger(e *env) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(l.level)); err != nil {
		return nil, usageErr("--log-level: unknown %q (debug, info, warn, error)", l.level)
	}
	opts := &slog.HandlerOptions{Level: lvl, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Value.Kind() == slog.KindString {
			a.Value = slog.StringValue(e.redact(a.Value.String()))
		} else if a.Value.Kind() == slog.KindAny {
			if err, ok := a.Value.Any().(error); ok {
				a.Value = slog.StringValue(e.redact(err.Error()))
			}
		}
		return a
	}}
	w := &redactingWriter{e: e}
	switch l.format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usageErr("--log-format: unknown %q (text, json)", l.format)
}

// redactingWriter scrubs secrets from log messages too, not only attributes.
type redactingWriter struct{ e *env }

func (w *redactingWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(w.e.stderr, w.e.redact(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}

func newFlagSet(name string, e *env) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	return fs
}

// parseFlags parses args and refuses stray positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageErr("%s: %v", fs.Name(), err)
	}
	if fs.NArg() > 0 {
		return usageErr("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		v := bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " (" + s.Value[:12] + ")"
			}
		}
		return v
	}
	return "(devel)"
}

// parseTimeFlag reads --from/--to.
func parseTimeFlag(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := config.ParseTime(v)
	if err != nil {
		return time.Time{}, usageErr("--%s: %v", name, err)
	}
	return t, nil
}
