// Command pachca-export exports the audit-event log of a Pachca workspace to
// NDJSON and Parquet files, S3 and Kafka. main parses flags and wires the
// packages; the run loop is package pipeline.
package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/internal/failure"
	_ "github.com/pachca-export/pachca-export/internal/fdfloor" // first: a limit of open files too low for the runtime
	"github.com/pachca-export/pachca-export/internal/printable"
	"github.com/pachca-export/pachca-export/internal/secret"
	"github.com/pachca-export/pachca-export/internal/tokenfile"
	"github.com/pachca-export/pachca-export/sinks/parquetfmt"
)

// Exit statuses (SPEC §2).
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

// memoryLimit is the default soft limit of the Go heap. The export's live
// heap is some 15-20 MB whatever the period (window files of 1,000 events,
// Parquet batches of 1,024 rows in row groups of 32Ki rows, pages of 64 KiB)
// and the binary's own pages another 32-35 MB of RSS: 26 MiB keeps a
// 1,000,000-event export near 56 MiB of peak RSS, for no more CPU than 30
// MiB took before the zstd encoders stopped being rebuilt (with the larger
// batches and pages of before, 24 and 20 MiB took 50-80% more CPU for 1-2
// MiB less). See BENCHMARKS.md. GOMEMLIMIT overrides it.
const memoryLimit = 26 << 20

func main() { os.Exit(process()) }

// process is the command as a process: memory limit, signals, arguments,
// standard streams; it returns the exit status.
func process() int {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	// 7 MiB less per zstd encoder; without it the defaults still work.
	_ = parquetfmt.UseSmallZstdWindow()
	// A hangup (the terminal or ssh session closed) stops it as cleanly.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, stopSignals...)
	defer signal.Stop(sigs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	args := os.Args[1:]
	e := newEnv(args, os.Stdout, os.Stderr)
	go e.watchSignals(sigs, cancel, dieOfInterrupt)
	return e.main(ctx, args)
}

// env is what a command reads and writes; tests pass their own.
type env struct {
	stdout, stderr io.Writer
	lookup         func(string) (string, bool)
	progress       *terminalProgress // set when stderr is a terminal and logs are text
	// secrets are never printed, in any form: see addSecrets. A token
	// file's new token is added while the loggers of other goroutines
	// redact: secretsMu guards secrets, and scrub is swapped whole.
	secretsMu sync.Mutex
	secrets   []string
	scrub     atomic.Pointer[secret.Scrubber] // of secrets; nil for none
	// jsonLog is --log-format json, seen before the flags are parsed so that
	// even a usage error is a JSON object on stderr.
	jsonLog bool
	// workspace is source.workspace once the configuration loaded: every
	// log line, error and summary after that carries it (see labelled).
	// Guarded: the lines of a signal (watchSignals) carry it too.
	workspaceMu sync.Mutex
	workspace   string
	out         *outputWriter // stdout
}

// Main runs the command line args and returns the exit status.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return newEnv(args, stdout, stderr).main(ctx, args)
}

// newEnv is the env of the command line args: its secrets known, and the
// status line set up when stderr is a terminal.
func newEnv(args []string, stdout, stderr io.Writer) *env {
	out := &outputWriter{w: stdout}
	e := &env{stdout: out, out: out, stderr: stderr, lookup: os.LookupEnv, jsonLog: strings.EqualFold(logFormatArg(args), "json")}
	// Before the arguments are parsed: a token put where another argument
	// goes ("run -c p.yaml $PACHCA_TOKEN") is shown by the usage error.
	if v, ok := e.lookup("PACHCA_TOKEN"); ok {
		e.addSecrets(v)
	}
	// The proxies' passwords, which net/http sends in Proxy-Authorization:
	// a proxy's error page may echo the header.
	for _, name := range []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"} {
		if v, ok := e.lookup(name); ok {
			e.addSecrets(secret.Credentials(v)...)
		}
	}
	e.addSecrets(tokenArgs(args)...)
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) && !e.jsonLog && !dumbTerminal(e.lookup) {
		e.progress = &terminalProgress{w: stderr, width: func() int {
			w, _, err := term.GetSize(int(f.Fd()))
			if err != nil {
				return 0
			}
			return w
		}}
		e.stderr = e.progress // log lines go above the status line
	}
	return e
}

// main runs the command of args and returns the exit status.
func (e *env) main(ctx context.Context, args []string) int {
	if len(args) == 0 {
		usage(e.stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "--help", "-help":
		name = "help"
	case "--version", "-version":
		name = "version"
	}
	c := lookupCommand(name)
	if c == nil {
		return e.report(unknownCommand(name, args[1:]))
	}
	return e.report(e.out.lost(name, c.execute(ctx, e, args[1:])))
}

// outputWriter is standard output, remembering its first write error:
// output a command lost (stdout a full disk, /dev/full) fails it, exit
// status 1, where the command does not fail already (was: version, help,
// schema --format sql, check, verify and the dry run's plan exited 0 with
// their output gone). A pipe closed by its reader (| head -1) is not such
// an error: the write raises SIGPIPE, which ends the process silently, as
// it ends cat.
type outputWriter struct {
	w   io.Writer
	mu  sync.Mutex // a stdout sink and alert messages may write at once
	err error
}

func (o *outputWriter) Write(p []byte) (int, error) {
	n, err := o.w.Write(p)
	if err != nil {
		o.mu.Lock()
		if o.err == nil {
			o.err = err
		}
		o.mu.Unlock()
	}
	return n, err
}

// lost is err, the command's, or when nil the error of output it lost.
func (o *outputWriter) lost(command string, err error) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err != nil || o.err == nil {
		return err
	}
	return fmt.Errorf("%s: standard output: %w (the output is incomplete)", command, o.err)
}

// dumbTerminal says the terminal takes no escape sequences: TERM=dumb (an
// Emacs shell buffer, a CI runner's pseudo-terminal). The status line,
// redrawn with "\r\033[K", would show as ^[[K between its copies there;
// the progress goes to the log instead, every 30 s, as off a terminal. No
// TERM at all is not taken for one: kubectl exec -t sets none, on the
// user's own terminal.
func dumbTerminal(lookup func(string) (string, bool)) bool {
	t, _ := lookup("TERM")
	return t == "dumb"
}

// usageErr is a mistake in the command line (exit status 2).
func usageErr(format string, args ...any) error { return failure.Usagef(format, args...) }

// report prints err, one line (or, with --log-format json, one JSON object)
// per problem, and maps it to an exit status.
func (e *env) report(err error) int {
	if err == nil {
		return exitOK
	}
	code := exitFailed
	if failure.IsUsage(err) {
		code = exitUsage
	}
	if errors.Is(err, context.Canceled) { // but in a command (command.execute)
		err = errors.New("interrupted")
	}
	err = openFilesHint(err)
	err = permissionHint(err, osOwners())
	err = readOnlyHint(err)
	log := e.errorLogger()
	for _, line := range strings.Split(e.redact(err.Error()), "\n") {
		if log != nil {
			log.Error(line, "exit_code", code)
		} else {
			fmt.Fprintln(e.stderr, "pachca-export: "+e.shown(line))
		}
	}
	return code
}

// openFilesHint adds to an error of too many open files (EMFILE) the
// process's limit and how to raise it: a shell's `ulimit -n 16` or a
// unit's LimitNOFILE= below what the workers, the sinks and the
// connections hold at once (some 40 with concurrency 8 and three sinks).
func openFilesHint(err error) error {
	var lim syscall.Rlimit
	if !errors.Is(err, syscall.EMFILE) || syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) != nil {
		return err
	}
	return fmt.Errorf("%w (this process may open %d files at once: raise the limit to 1024 or more, with ulimit -n or the unit's LimitNOFILE=, or lower source.concurrency)", err, lim.Cur)
}

// errorLogger is the JSON logger of errors with --log-format json, else nil.
func (e *env) errorLogger() *slog.Logger {
	if !e.jsonLog {
		return nil
	}
	return e.labelled(slog.New(slog.NewJSONHandler(&redactingWriter{e: e}, nil)))
}

// labelled is log with the attribute workspace (source.workspace), when
// the configuration loaded and sets it: the processes of several
// workspaces share one journal or log pipeline, where a line that does not
// name its workspace cannot be told from another's.
func (e *env) labelled(log *slog.Logger) *slog.Logger {
	ws := e.workspaceName()
	if ws == "" || log == nil {
		return log
	}
	return log.With("workspace", ws)
}

// workspaceName is source.workspace once the configuration loaded, else "".
func (e *env) workspaceName() string {
	e.workspaceMu.Lock()
	defer e.workspaceMu.Unlock()
	return e.workspace
}

// logFormatArg finds the value of --log-format among args, before they are
// parsed; "" when absent.
func logFormatArg(args []string) string {
	for i, a := range args {
		if a == "--" {
			break
		}
		for _, name := range []string{"--log-format", "-log-format"} {
			if a == name && i+1 < len(args) {
				return args[i+1]
			}
			if v, ok := strings.CutPrefix(a, name+"="); ok {
				return v
			}
		}
	}
	return ""
}

// tokenArgs finds the values of --token among args, before they are parsed.
func tokenArgs(args []string) []string {
	var out []string
	for i, a := range args {
		if a == "--" {
			break
		}
		for _, name := range []string{"--token", "-token"} {
			if a == name && i+1 < len(args) {
				out = append(out, args[i+1])
			}
			if v, ok := strings.CutPrefix(a, name+"="); ok {
				out = append(out, v)
			}
		}
	}
	return out
}

// redact replaces every secret in s, raw or in any of the encodings
// secret.Forms lists. It is the last line of defence: the API client removes
// the token from responses before they reach an error.
func (e *env) redact(s string) string {
	if sc := e.scrub.Load(); sc != nil {
		return sc.String(s)
	}
	return s
}

// shown is s redacted, with every character a terminal acts on escaped
// (\x1b, \r, \u202e): for a line printed as text, which may name what
// the output holds (a file name, an event id), written by whoever could
// write there; such a name could otherwise erase or rewrite the line
// that reports it (was: a FAIL line that "\x1b[2K\rOK ..." turned into
// an OK one on the terminal).
func (e *env) shown(s string) string { return printable.Escaped(e.redact(s)) }

// addSecrets remembers secrets (empty ones are ignored) for redact.
// Safe for concurrent use with redact.
func (e *env) addSecrets(secrets ...string) {
	e.secretsMu.Lock()
	defer e.secretsMu.Unlock()
	e.secrets = append(e.secrets, secrets...)
	sc := secret.NewScrubber(e.secrets...)
	e.scrub.Store(&sc)
}

// loadConfig reads the configuration file and remembers its secrets. With
// log (run, follow, verify: the commands that connect), it warns of a
// token_file every user may read, and refuses a proxy variable net/http
// would misread (was: a password's unencoded / made a piece of it the
// proxy's port, sent toward a host named by the user, and quoted in the
// errors of the way it failed; only check said so).
func (e *env) loadConfig(path, token string, log *slog.Logger) (*config.Config, error) {
	e.addSecrets(token) // before anything can print it
	if path == "" {
		return nil, usageErr("-c pipeline.yaml is required")
	}
	if log != nil {
		for _, p := range e.proxies() {
			if p.err != nil {
				return nil, usageErr("%s: %v", p.name, p.err)
			}
		}
	}
	if err := config.CheckToken(token); err != nil {
		return nil, usageErr("--token: %v", err)
	}
	cfg, err := config.Load(path, e.lookup)
	if err != nil {
		return nil, failure.AsUsage(err) // a configuration that does not load
	}
	if token != "" { // the flag's token, not token_file's
		cfg.Source.Token, cfg.Source.TokenError, cfg.Source.TokenFileExposed = token, nil, ""
	}
	secrets := []string{cfg.Source.Token, secret.Password(cfg.Source.BaseURL)}
	for _, s := range cfg.Sinks {
		if s.S3 != nil {
			secrets = append(secrets, s.S3.SecretAccessKey, secret.Password(s.S3.Endpoint))
		}
		if s.Kafka != nil {
			secrets = append(secrets, s.Kafka.SASL.Password)
		}
	}
	e.addSecrets(secrets...)
	e.workspaceMu.Lock()
	e.workspace = cfg.Source.Workspace
	e.workspaceMu.Unlock()
	log = e.labelled(log)
	if token == "" && log != nil {
		// A token written into token_file later is used without a restart,
		// and is never printed either.
		cfg.Source.WatchTokenFile(tokenfile.Options{Seen: func(tok string) { e.addSecrets(tok) }, Log: log})
	}
	for _, w := range []string{cfg.Source.TokenFileExposed, cfg.SecretsExposed} {
		if w != "" && log != nil {
			log.Warn(w)
		}
	}
	return cfg, nil
}

// logFlags are the logging flags every command that runs takes.
type logFlags struct {
	format, level string
}

func (l *logFlags) register(fs *flags) {
	fs.StringVar(&l.format, "log-format", "text", "the `FORMAT` of stderr: text, or json (every line one JSON object: logs, errors, the summary)")
	fs.StringVar(&l.level, "log-level", "info", "the least `LEVEL` logged: debug, info, warn or error")
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
	switch strings.ToLower(l.format) { // as --log-level: JSON, Text
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

// Build identity, set at link time by `make release` and the image build:
//
//	-ldflags "-X main.buildVersion=v1.2.0 -X main.buildCommit=<sha> -X main.buildDate=<RFC 3339>"
//
// Empty when not set; version then falls back to the build information Go
// embeds. Written only by the linker.
var buildVersion, buildCommit, buildDate string

// version is the line `pachca-export version` prints after the program name:
// "VERSION (commit SHA, built DATE, GOVERSION OS/ARCH)". Without ldflags the
// version and commit come from the module and VCS information Go records
// (go install, go build in a checkout) and the date is the commit's time;
// what is unknown reads "unknown".
func version() string {
	v, commit, date := buildVersion, buildCommit, buildDate
	if bi, ok := debug.ReadBuildInfo(); ok {
		modified := false
		var vcsCommit, vcsTime string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				vcsCommit = s.Value
			case "vcs.time":
				vcsTime = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if v == "" && bi.Main.Version != "" {
			v = bi.Main.Version
		}
		if commit == "" && vcsCommit != "" {
			commit = vcsCommit
			if modified {
				commit += "-dirty"
			}
		}
		if date == "" {
			date = vcsTime
		}
	}
	v, commit, date = cmp.Or(v, "(devel)"), cmp.Or(commit, "unknown"), cmp.Or(date, "unknown")
	return fmt.Sprintf("%s (commit %s, built %s, %s %s/%s)", v, commit, date, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// parseRange reads --from and --to (either may be empty: zero time). With
// a clock (run, verify), --to now is its reading to the millisecond, and
// toNow says so: run keys the progress of the range on "now", so that the
// same command started again resumes it. Without one, now is refused.
func parseRange(from, to string, clock func() time.Time) (f, t time.Time, toNow bool, err error) {
	if f, err = parseTimeFlag("from", from, false); err != nil {
		return f, t, false, err
	}
	if to == "now" && clock != nil {
		return f, clock().UTC().Truncate(time.Millisecond), true, nil
	}
	t, err = parseTimeFlag("to", to, clock != nil)
	return f, t, false, err
}

// parseTimeFlag reads --from/--to; its error names the flag and the forms
// it takes, now among them where the command takes it (nowOK).
func parseTimeFlag(name, v string, nowOK bool) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := config.ParseTime(v)
	if err != nil && nowOK && errors.Is(err, config.ErrTimeForm) {
		return time.Time{}, usageErr("--%s: %v, or now", name, err)
	}
	if err != nil {
		return time.Time{}, usageErr("--%s: %v", name, err)
	}
	return t, nil
}
