package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/telemetry/telemetrytest"
	"github.com/pachca-export/pachca-export/testkit/logbuf"
)

// jsonLines parses every line of stderr as one JSON object.
func jsonLines(t *testing.T, stderr string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimRight(stderr, "\n"), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), "not a JSON object: %q\nall of stderr:\n%s", line, stderr)
		require.Contains(t, m, "time")
		require.Contains(t, m, "level")
		require.Contains(t, m, "msg")
		out = append(out, m)
	}
	return out
}

func pastDay(n int) string {
	return time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -n).Format(time.DateOnly)
}

// TestJSONLogs: with --log-format json every line on stderr is one JSON
// object, whatever the outcome; a run that began ends with one summary
// record (result, figures), and errors are records with their exit status;
// every record after the configuration loaded has its workspace.
func TestJSONLogs(t *testing.T) {
	base := startSim(t)
	day := pastDay(3)
	period := []string{"--from", day, "--to", day + "T12:00:00Z"}
	cases := []struct {
		name    string
		token   string
		config  string
		args    []string
		code    int
		result  string // of the summary; "" = no summary (nothing began)
		errText string // in the last record
	}{
		{name: "success", token: secretToken, config: goodConfig, args: period, code: 0, result: "success"},
		{name: "failure", token: "rejected-token-123", config: goodConfig, args: period, code: 2, result: "failure", errText: "the API rejected the token (401"},
		{name: "config error", token: secretToken, config: strings.Replace(goodConfig, "timeout: 5s", "timout: 5s", 1), args: period, code: 2,
			errText: "source.timout: unknown key (did you mean timeout?)"},
		{name: "usage error", token: secretToken, config: goodConfig, args: []string{"--frm", day}, code: 2,
			errText: "run: unknown flag --frm (did you mean --from?)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, base, tc.token, tc.config)
			var stdout, stderr bytes.Buffer
			args := append([]string{"run", "-c", path, "--log-format", "json"}, tc.args...)
			code := Main(t.Context(), args, &stdout, &stderr)
			require.Equal(t, tc.code, code, stderr.String())
			recs := jsonLines(t, stderr.String())
			// Once the configuration loaded, every record names its
			// workspace, errors and the summary too: the runs of several
			// workspaces share a journal (was: none did).
			for _, r := range recs {
				if tc.code == 0 || tc.result != "" {
					require.Equal(t, "acme", r["workspace"], "%v", r)
				} else {
					require.NotContains(t, r, "workspace", "no configuration loaded: %v", r)
				}
			}
			var summaries []map[string]any
			for _, r := range recs {
				if r["msg"] == "summary" {
					summaries = append(summaries, r)
				}
			}
			if tc.result == "" {
				require.Empty(t, summaries)
			} else {
				require.Len(t, summaries, 1, "one summary record")
				s := summaries[0]
				require.Equal(t, tc.result, s["result"])
				for _, k := range []string{"run_id", "days", "events", "dead_letters", "requests", "retries", "throttled", "duration_seconds"} {
					require.Contains(t, s, k)
				}
			}
			last := recs[len(recs)-1]
			if tc.errText == "" {
				require.Equal(t, "summary", last["msg"], "the summary ends the run")
				require.EqualValues(t, 1, summaries[0]["days_delivered"])
				require.NotEmpty(t, summaries[0]["sinks"])
				require.NotEmpty(t, summaries[0]["event_keys"])
				return
			}
			require.Equal(t, "ERROR", last["level"])
			require.Contains(t, last["msg"], tc.errText)
			require.EqualValues(t, tc.code, last["exit_code"])
		})
	}
}

// TestInterrupt: a run cancelled part way (SIGINT, SIGTERM) ends with its
// summary, result interrupted, and the error line, exit status 1.
func TestInterrupt(t *testing.T) {
	sim, base := startSlowSim(t)
	path := writeConfig(t, base, secretToken, goodConfig)
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		for sim.Stats().Requests < 3 && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
	}()
	var stdout, stderr bytes.Buffer
	code := Main(ctx, []string{"run", "-c", path, "--log-format", "json", "--from", pastDay(9), "--to", pastDay(2)}, &stdout, &stderr)
	require.Equal(t, 1, code, stderr.String())
	recs := jsonLines(t, stderr.String())
	require.GreaterOrEqual(t, len(recs), 2)
	sum, last := recs[len(recs)-2], recs[len(recs)-1]
	require.Equal(t, "summary", sum["msg"])
	require.Equal(t, "interrupted", sum["result"])
	require.Equal(t, "ERROR", last["level"])
	require.Contains(t, last["msg"], "interrupted; days not delivered stay unexported")
}

// startSlowSim starts a simulator of 2,000 events answering in 200 ms, for
// a run to be stopped while it fetches; closed with the test.
func startSlowSim(t *testing.T) (*simulator.Server, string) {
	t.Helper()
	sc := simulator.DefaultConfig()
	sc.Events, sc.Latency = 2000, 200*time.Millisecond
	sim, err := simulator.New(sc)
	require.NoError(t, err)
	base, err := sim.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { sim.Close() })
	return sim, base
}

// TestHangup: a real process whose terminal goes away (SIGHUP) stops as on
// SIGINT: the summary says interrupted, exit 1, no signal death.
func TestHangup(t *testing.T) {
	sim, base := startSlowSim(t)
	path := writeConfig(t, base, secretToken, goodConfig)
	cmd := child(t, "run", "-c", path, "--log-format", "json", "--from", pastDay(9), "--to", pastDay(2))
	var stderr logbuf.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	deadline := time.Now().Add(10 * time.Second)
	for sim.Stats().Requests < 3 {
		require.True(t, time.Now().Before(deadline), "no request: %s", stderr.String())
		time.Sleep(10 * time.Millisecond)
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	err := cmd.Wait()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	require.Equal(t, 1, exit.ExitCode(), "an exit status, not death by the signal: %s", stderr.String())
	require.Contains(t, stderr.String(), `"result":"interrupted"`)
}

// TestRetriesLoggedAtOnce: with the API unreachable, the first log line
// after the start says why, at warn, long before any progress line.
func TestRetriesLoggedAtOnce(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close()) // nothing listens there now
	path := writeConfig(t, "http://"+addr+"/api/shared/v1", secretToken,
		strings.Replace(goodConfig, "  timeout: 5s\n", "  timeout: 5s\n  max_retries: 2\n", 1))
	var stdout, stderr bytes.Buffer
	day := pastDay(3)
	code := Main(t.Context(), []string{"run", "-c", path, "--log-format", "json", "--from", day, "--to", day + "T01:00:00Z"}, &stdout, &stderr)
	require.Equal(t, 1, code)
	recs := jsonLines(t, stderr.String())
	var warns []map[string]any
	for _, r := range recs {
		if r["level"] == "WARN" && r["msg"] == "API request failed, retrying" {
			warns = append(warns, r)
		}
	}
	require.Len(t, warns, 2, "each retry, with its cause")
	require.Contains(t, warns[0]["cause"], "connection refused")
	require.EqualValues(t, 1, warns[0]["attempt"])
	require.Equal(t, "summary", recs[len(recs)-2]["msg"])
	require.Contains(t, recs[len(recs)-1]["msg"], "giving up after 2 retries")
}

// TestMetricsFile: the metrics file after a success, a failure and a broken
// configuration parses with the Prometheus text parser and passes promtool;
// the last success time survives the failures, counters only grow.
func TestMetricsFile(t *testing.T) {
	base := startSim(t)
	path := writeConfig(t, base, secretToken, goodConfig)
	metrics := filepath.Join(t.TempDir(), "pachca_export.prom")
	day := pastDay(3)
	period := []string{"--from", day, "--to", day + "T12:00:00Z", "--metrics-file", metrics}
	read := func() (map[string]*dto.MetricFamily, []byte) {
		b, err := os.ReadFile(metrics)
		require.NoError(t, err)
		p := expfmt.NewTextParser(model.LegacyValidation)
		mfs, err := p.TextToMetricFamilies(bytes.NewReader(b))
		require.NoError(t, err, "%s", b)
		return mfs, b
	}
	gauge := func(mfs map[string]*dto.MetricFamily, name string) float64 {
		require.Contains(t, mfs, name)
		return mfs[name].GetMetric()[0].GetGauge().GetValue()
	}
	counter := func(mfs map[string]*dto.MetricFamily, name, label, value string) float64 {
		require.Contains(t, mfs, name)
		for _, m := range mfs[name].GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
			if label == "" {
				return m.GetCounter().GetValue()
			}
		}
		t.Fatalf("no %s{%s=%q}", name, label, value)
		return 0
	}
	var files [][]byte

	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, Main(t.Context(), append([]string{"run", "-c", path}, period...), &stdout, &stderr), stderr.String())
	mfs, b := read()
	files = append(files, b)
	require.Equal(t, 1.0, gauge(mfs, "pachca_export_last_run_success"))
	last := gauge(mfs, "pachca_export_last_success_timestamp_seconds")
	require.InDelta(t, float64(time.Now().Unix()), last, 60)
	events := counter(mfs, "pachca_export_sink_records_total", "sink", "0")
	require.Positive(t, events)
	require.NotContains(t, string(b), filepath.Dir(path), "no path in a label")

	// A failed run (a rejected token: exit 2): the last success is kept,
	// counters carry over.
	bad := writeConfig(t, base, "rejected-token", goodConfig)
	require.Equal(t, 2, Main(t.Context(), append([]string{"run", "-c", bad}, period...), &stdout, &stderr))
	mfs, b = read()
	files = append(files, b)
	require.Equal(t, 0.0, gauge(mfs, "pachca_export_last_run_success"))
	require.Equal(t, last, gauge(mfs, "pachca_export_last_success_timestamp_seconds"))
	require.Equal(t, events, counter(mfs, "pachca_export_sink_records_total", "sink", "0"))
	require.Equal(t, 1.0, counter(mfs, "pachca_export_runs_total", "result", "failure"))

	// A configuration that does not load fails the job too.
	broken := writeConfig(t, base, secretToken, strings.Replace(goodConfig, "timeout: 5s", "timout: 5s", 1))
	require.Equal(t, 2, Main(t.Context(), append([]string{"run", "-c", broken}, period...), &stdout, &stderr))
	mfs, b = read()
	files = append(files, b)
	require.Equal(t, 2.0, counter(mfs, "pachca_export_runs_total", "result", "failure"))
	require.Equal(t, 1.0, counter(mfs, "pachca_export_runs_total", "result", "success"))
	require.Equal(t, last, gauge(mfs, "pachca_export_last_success_timestamp_seconds"))
	for name, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			require.Equal(t, "acme", labels["workspace"], "%s: the label of the runs before, on the series they wrote", name)
		}
	}

	for _, b := range files {
		telemetrytest.Lint(t, b)
	}
}

// TestRelativePathsFromAnotherDirectory: a job started elsewhere writes next
// to its configuration and finds its state there, so the next run exports
// nothing twice.
func TestRelativePathsFromAnotherDirectory(t *testing.T) {
	base := startSim(t)
	confDir := t.TempDir()
	body := strings.NewReplacer("%BASE%", base, "%TOKEN%", secretToken).Replace(`source:
  base_url: %BASE%
  token_file: token
  timeout: 5s
sinks:
  - type: ndjson
    dir: out/ndjson
state:
  dir: state
`)
	require.NoError(t, os.WriteFile(filepath.Join(confDir, "pipeline.yaml"), []byte(body), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(confDir, "token"), []byte(secretToken+"\n"), 0o600))
	elsewhere := t.TempDir()
	t.Chdir(elsewhere)
	rel, err := filepath.Rel(elsewhere, filepath.Join(confDir, "pipeline.yaml"))
	require.NoError(t, err)

	day := pastDay(1) // the catch-up: yesterday, then nothing
	for i, want := range []string{`days delivered\s+1 \(` + day + `\)`, `nothing to export(.|\n)*days delivered\s+0`} {
		var stdout, stderr bytes.Buffer
		require.Equal(t, 0, Main(t.Context(), []string{"run", "-c", rel}, &stdout, &stderr), stderr.String())
		require.Regexp(t, want, stderr.String(), "run %d", i+1)
	}
	files, err := filepath.Glob(filepath.Join(confDir, "out", "ndjson", "dt="+day, "*.ndjson"))
	require.NoError(t, err)
	require.Len(t, files, 1)
	entries, err := os.ReadDir(elsewhere)
	require.NoError(t, err)
	require.Empty(t, entries, "nothing written in the working directory")
}

// TestHelp: help on stdout with exit 0, in the two shapes people know; it
// says what the command does and writes flags as the README does.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help", "run"}, {"run", "--help"}, {"run", "-h"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			require.Equal(t, 0, Main(t.Context(), args, &stdout, &stderr))
			require.Empty(t, stderr.String())
			out := stdout.String()
			require.True(t, strings.HasPrefix(out, "pachca-export run: export every complete UTC day not yet exported, or a range\n"), out)
			require.Contains(t, out, "usage: pachca-export run -c FILE [--from T] [--to T] [--dry-run]")
			require.Regexp(t, `(?m)^  --from T\s+start of the range, inclusive`, out)
			// A date is a UTC day, whatever the host's zone (was: "a date
			// (2026-11-01)", which an operator in Moscow reads as local midnight).
			require.Contains(t, out, "a date (2026-11-01 = that day 00:00 UTC)")
			require.Regexp(t, `(?m)^  -c FILE\s+the pipeline configuration`, out)
			require.Regexp(t, `(?m)^  --log-format FORMAT\s+.*\(default text\)$`, out)
			require.NotRegexp(t, `(?m)^  -[a-z]{2,}`, out, "long flags with two dashes")
		})
	}
	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, Main(t.Context(), []string{"help"}, &stdout, &stderr))
	for _, c := range commands() {
		require.Regexp(t, `(?m)^  `+c.name+`\s+`+regexp.QuoteMeta(c.summary)+`$`, stdout.String())
	}
	stdout.Reset()
	require.Equal(t, 0, Main(t.Context(), []string{"--help"}, &stdout, &stderr))
	require.Contains(t, stdout.String(), "commands:")
	// The signals that stop follow cleanly, as the README lists them (was:
	// SIGHUP, which stops it as SIGTERM does, was missing).
	stdout.Reset()
	require.Equal(t, 0, Main(t.Context(), []string{"follow", "--help"}, &stdout, &stderr))
	require.Contains(t, strings.Join(strings.Fields(stdout.String()), " "), "Runs until SIGTERM, SIGINT or SIGHUP (exit 0)")
}

// TestHelpListsEveryFlag: each command's help lists every flag it takes
// (was: --public-key, declared with Var, was missing from verify --help
// and from the "did you mean" of a misspelling).
func TestHelpListsEveryFlag(t *testing.T) {
	for _, c := range commands() {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			require.Equal(t, 0, Main(t.Context(), []string{c.name, "--help"}, &stdout, &stderr), stderr.String())
			fs := newFlags(c.name)
			c.setup(fs, &env{stdout: io.Discard, stderr: io.Discard})
			fs.VisitAll(func(f *flag.Flag) {
				require.Regexp(t, `(?m)^  `+regexp.QuoteMeta(flagName(f.Name))+`\s`, stdout.String(), "pachca-export %s --help lacks it", c.name)
			})
			require.NotContains(t, stdout.String(), "(default -", "an inside value for a flag not given (report --sink showed -1)")
		})
	}
	var stdout, stderr bytes.Buffer
	require.Equal(t, 2, Main(t.Context(), []string{"verify", "--public-kye", "k.pem"}, &stdout, &stderr))
	require.Equal(t, "pachca-export: verify: unknown flag --public-kye (did you mean --public-key?); see pachca-export verify --help\n", stderr.String())
}

// TestMistakes: a misspelt flag or command is one line with the closest
// name, exit status 2, and no usage dump. A command called by its task
// gets the command that does it (was: export, "did you mean report?"),
// and a flag of other commands names them (was: follow --to, "did you
// mean --token?"); --config gets -c (was: no hint). A flag before the
// command says the order, naming the flag without its value (was: unknown
// command "-c" and the list of commands), and a command in capitals gets
// its name (was: no hint).
func TestMistakes(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"run", "--frm", "2026-11-01"}, "pachca-export: run: unknown flag --frm (did you mean --from?); see pachca-export run --help"},
		{[]string{"run", "-dry-rn"}, "pachca-export: run: unknown flag --dry-rn (did you mean --dry-run?); see pachca-export run --help"},
		{[]string{"run", "--metrics"}, "pachca-export: run: unknown flag --metrics (did you mean --metrics-file?); see pachca-export run --help"},
		{[]string{"run", "-c", "a.yaml", "--from", "2026-11-01", "-c", "b.yaml"}, `pachca-export: run: invalid value "b.yaml" for flag -c: given twice ("a.yaml" before); see pachca-export run --help`},
		{[]string{"run", "-c"}, "pachca-export: run: flag -c needs a value; see pachca-export run --help"},
		{[]string{"run", "-c", "a.yaml", "--token="}, `pachca-export: run: invalid value "" for flag --token: empty (an unset shell variable?): give a value, or leave the flag out; see pachca-export run --help`},
		{[]string{"check", "-c", "a.yaml", "--token", ""}, `pachca-export: check: invalid value "" for flag --token: empty (an unset shell variable?): give a value, or leave the flag out; see pachca-export check --help`},
		{[]string{"demo", "--events", "many"}, `pachca-export: demo: invalid value "many" for flag --events: parse error; see pachca-export demo --help`},
		{[]string{"rnu"}, `pachca-export: unknown command "rnu" (did you mean run?); see pachca-export help`},
		{[]string{"run", "--config", "pipeline.yaml"}, "pachca-export: run: unknown flag --config (did you mean -c?); see pachca-export run --help"},
		{[]string{"check", "--conf=pipeline.yaml"}, "pachca-export: check: unknown flag --conf (did you mean -c?); see pachca-export check --help"},
		{[]string{"follow", "-c", "a.yaml", "--to", "2026-12-01"}, "pachca-export: follow: unknown flag --to (--to is a flag of run, verify, report, not of follow); see pachca-export follow --help"},
		{[]string{"check", "-c", "a.yaml", "--dry-run"}, "pachca-export: check: unknown flag --dry-run (--dry-run is a flag of run, not of check); see pachca-export check --help"},
		{[]string{"export", "-c", "pipeline.yaml"}, `pachca-export: unknown command "export" (did you mean run?); see pachca-export help`},
		{[]string{"tail"}, `pachca-export: unknown command "tail" (did you mean follow?); see pachca-export help`},
		{[]string{"RUN", "-c", "pipeline.yaml"}, `pachca-export: unknown command "RUN" (did you mean run?); see pachca-export help`},
		{[]string{"-c", "pipeline.yaml", "run"}, "pachca-export: -c before the command: the command comes first, then its flags (pachca-export run -c ...); see pachca-export help"},
		{[]string{"--token=" + secretToken, "check", "-c", "pipeline.yaml"}, "pachca-export: --token before the command: the command comes first, then its flags (pachca-export check --token ...); see pachca-export help"},
		{[]string{"-v"}, "pachca-export: unknown command \"-v\" (commands: run, follow, check, verify, schema, report, demo, version, help); see pachca-export help"},
		{[]string{"frobnicate"}, `pachca-export: unknown command "frobnicate" (commands: run, follow, check, verify, schema, report, demo, version, help); see pachca-export help`},
		{[]string{"help", "chek"}, `pachca-export: unknown command "chek" (did you mean check?); see pachca-export help`},
		{[]string{"schema", "extra"}, `pachca-export: schema: unexpected argument "extra"; see pachca-export schema --help`},
		{[]string{"run", "pipeline.yaml"}, `pachca-export: run: unexpected argument "pipeline.yaml" (did you mean -c pipeline.yaml?); see pachca-export run --help`},
		{[]string{"run", "-c", "a.yaml", "b.yaml"}, `pachca-export: run: unexpected argument "b.yaml"; see pachca-export run --help`},
		{[]string{"check", "--token", "t", "conf/p.yml"}, `pachca-export: check: unexpected argument "conf/p.yml" (did you mean -c conf/p.yml?); see pachca-export check --help`},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			require.Equal(t, 2, Main(t.Context(), tc.args, &stdout, &stderr))
			require.Empty(t, stdout.String())
			require.Equal(t, tc.want+"\n", stderr.String())
		})
	}
}

// noTokenConfig names a token variable that is not set (on line 3).
var noTokenConfig = strings.Replace(goodConfig, "token: %TOKEN%", "token: ${PACHCA_TEST_NO_SUCH_TOKEN}", 1)

// TestWithoutToken: a dry run needs no token; check reports it as FAIL,
// checks the rest, and exits 2, as run does; run refuses, naming the
// variable.
func TestWithoutToken(t *testing.T) {
	base := startSim(t)
	path := writeConfig(t, base, "", noTokenConfig)
	day := pastDay(3)

	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, Main(t.Context(), []string{"run", "-c", path, "--dry-run", "--from", day, "--to", pastDay(2)}, &stdout, &stderr), stderr.String())
	require.Contains(t, stdout.String(), "dry run: nothing fetched")
	require.Regexp(t, `token\s+not set \(a dry run needs none; run does\): .*PACHCA_TEST_NO_SUCH_TOKEN is not set`, stdout.String())

	stdout.Reset()
	stderr.Reset()
	require.Equal(t, 2, Main(t.Context(), []string{"check", "-c", path}, &stdout, &stderr))
	require.Regexp(t, `OK\s+config`, stdout.String())
	require.Regexp(t, `FAIL\s+token\s+.*pipeline.yaml:3: source.token: environment variable PACHCA_TEST_NO_SUCH_TOKEN is not set`, stdout.String())
	require.Regexp(t, `OK\s+sinks\[0\]\s+ndjson .* reachable and writable`, stdout.String())
	require.Equal(t, "pachca-export: check: 1 problem(s), the token's among them\n", stderr.String())

	stdout.Reset()
	stderr.Reset()
	require.Equal(t, 2, Main(t.Context(), []string{"run", "-c", path, "--from", day, "--to", pastDay(2)}, &stdout, &stderr))
	require.Equal(t, "pachca-export: "+path+":3: source.token: environment variable PACHCA_TEST_NO_SUCH_TOKEN is not set\n", stderr.String(),
		"a configuration error: one line, no summary of a run that never began")
}

// TestSchemaSQL: both layouts, and a table name or location Athena would
// reject (or read as an empty table: a location inside a dt= partition).
func TestSchemaSQL(t *testing.T) {
	for layout, want := range map[string]string{
		"parquet": "STORED AS PARQUET",
		"ndjson":  "ROW FORMAT SERDE 'org.apache.hive.hcatalog.data.JsonSerDe'",
	} {
		var stdout, stderr bytes.Buffer
		require.Equal(t, 0, Main(t.Context(), []string{"schema", "--format", "sql", "--layout", layout, "--table", "security.pachca_audit", "--location", "s3://b/audit"}, &stdout, &stderr), stderr.String())
		require.True(t, strings.HasPrefix(stdout.String(), "CREATE EXTERNAL TABLE IF NOT EXISTS `security`.`pachca_audit` ("), stdout.String())
		require.Contains(t, stdout.String(), want)
		require.Contains(t, stdout.String(), "LOCATION 's3://b/audit/'")
	}
	for _, tc := range []struct{ args, want string }{
		{"--table Pachca-Audit", `pachca-export: schema: --table "Pachca-Audit": Athena names take only lower-case letters, digits and _ (e.g. pachca_audit or security.pachca_audit)`},
		{"--layout csv", `pachca-export: schema: unknown --layout "csv" (parquet, ndjson)`},
		{"--location notaurl", `pachca-export: schema: --location "notaurl": want the URL of a directory, such as s3://bucket/prefix/`},
		{"--location https://b.s3.eu-central-1.amazonaws.com/audit/", `pachca-export: schema: --location "https://b.s3.eu-central-1.amazonaws.com/audit/": Athena reads only s3:// locations, such as s3://bucket/prefix/`},
		{"--location s3:///audit/", `pachca-export: schema: --location "s3:///audit/": Athena reads only s3:// locations, such as s3://bucket/prefix/`},
		{"--location s3://b/audit/dt=2026-11-01/", `pachca-export: schema: --location "s3://b/audit/dt=2026-11-01/" is one dt= partition: give the directory that holds them, s3://b/audit/`},
		{"--location s3://b/dt=2026-11-01", `pachca-export: schema: --location "s3://b/dt=2026-11-01" is one dt= partition: give the directory that holds them, s3://b/`},
		{"--format json --table t --location s3://b/", `pachca-export: schema: --location, --table: for --format sql only`},
	} {
		var stdout, stderr bytes.Buffer
		args := []string{"schema", "--format", "sql"}
		if strings.HasPrefix(tc.args, "--format") {
			args = args[:1]
		}
		args = append(args, strings.Fields(tc.args)...)
		require.Equal(t, 2, Main(t.Context(), args, &stdout, &stderr))
		require.Empty(t, stdout.String())
		require.Equal(t, tc.want+"\n", stderr.String())
	}
}

// TestLockedStateEndsWithSummary: a run that stops at its start because
// another holds the state still ends with its summary (nothing done).
func TestLockedStateEndsWithSummary(t *testing.T) {
	base := startSim(t)
	path := writeConfig(t, base, secretToken, goodConfig)
	cfg, err := config.Load(path, os.LookupEnv)
	require.NoError(t, err)
	other, err := pipeline.Open(t.Context(), pipeline.Options{Config: cfg})
	require.NoError(t, err)
	defer other.Close(context.Background())

	var stdout, stderr bytes.Buffer
	day := pastDay(3)
	require.Equal(t, 1, Main(t.Context(), []string{"run", "-c", path, "--log-format", "json", "--from", day, "--to", pastDay(2)}, &stdout, &stderr))
	recs := jsonLines(t, stderr.String())
	require.Len(t, recs, 2, stderr.String())
	require.Equal(t, "summary", recs[0]["msg"])
	require.Equal(t, "failure", recs[0]["result"])
	require.EqualValues(t, 0, recs[0]["days_delivered"])
	require.Contains(t, recs[1]["msg"], "another pachca-export process is using this state")
}

// TestAlertsDryRunBesideStdoutSink: with a stdout sink, stdout carries the
// records only: --alerts-dry-run's messages go to the log on stderr, one
// record each (JSON with --log-format json). Without one they are printed
// on stdout.
func TestAlertsDryRunBesideStdoutSink(t *testing.T) {
	base := startSim(t)
	from := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -3)
	const rules = "alerts:\n  rules:\n    - {name: Watched, kind: watch, event_keys: [user_login, message_created, user_2fa_fail], recipients: [\"10001\"]}\n"
	stdoutSink := "source:\n  base_url: %BASE%\n  token: %TOKEN%\nsinks:\n  - type: stdout\nstate:\n  dir: %DIR%/state\n" + rules
	args := func(path string) []string {
		return []string{"run", "-c", path, "--from", from.Format(time.DateOnly), "--to", from.AddDate(0, 0, 1).Format(time.DateOnly), "--alerts-dry-run", "--log-format", "json"}
	}

	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, Main(t.Context(), args(writeConfig(t, base, secretToken, stdoutSink)), &stdout, &stderr), stderr.String())
	require.NotEmpty(t, stdout.String())
	for _, line := range strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n") {
		require.True(t, json.Valid([]byte(line)), "not a record on stdout: %q", line)
	}
	alerts := 0
	for _, line := range strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n") {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec), "stderr: %q", line)
		if rec["msg"] == "alert (dry run)" {
			require.Contains(t, rec["message"], "alert Watched -> 10001: ")
			alerts++
		}
	}
	require.Positive(t, alerts, stderr.String())

	stdout.Reset()
	stderr.Reset()
	require.Equal(t, 0, Main(t.Context(), args(writeConfig(t, base, secretToken, goodConfig+rules)), &stdout, &stderr), stderr.String())
	require.Contains(t, stdout.String(), "alert Watched -> 10001: ")
	require.NotContains(t, stderr.String(), "alert (dry run)")
}

// TestDryRunNamesCompression: the dry run names the codec each sink will
// use, its default included (parquet zstd, ndjson none), not "default".
func TestDryRunNamesCompression(t *testing.T) {
	path := writeConfig(t, "http://127.0.0.1:1", "x", `source:
  base_url: %BASE%
  token: x
sinks:
  - type: ndjson
    dir: %DIR%/nd
  - type: parquet
    dir: %DIR%/pq
  - type: ndjson
    dir: %DIR%/gz
    compression: gzip
  - type: s3
    bucket: b-1
    region: us-east-1
state:
  dir: %DIR%/state
`)
	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, Main(t.Context(), []string{"run", "-c", path, "--dry-run"}, &stdout, &stderr), stderr.String())
	out := stdout.String()
	require.NotContains(t, out, "default")
	require.Regexp(t, `sink 0 +ndjson \S+/nd \(compression none\)`, out)
	require.Regexp(t, `sink 1 +parquet \S+/pq \(compression zstd\)`, out)
	require.Regexp(t, `sink 2 +ndjson \S+/gz \(compression gzip\)`, out)
	require.Regexp(t, `sink 3 +s3 s3://b-1/ \(parquet, zstd\)`, out)
}

// TestDryRunRefusedLocation: the dry run of a configuration whose sink
// directory holds another configuration's events says the run would be
// refused there, and ends as the run would (exit 2), having written
// nothing: no marker, no lock in that directory.
func TestDryRunRefusedLocation(t *testing.T) {
	base := startSim(t)
	day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -3).Format(time.DateOnly)
	next := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -2).Format(time.DateOnly)
	path := writeConfig(t, base, secretToken, strings.Replace(goodConfig, "  timeout: 5s\n", "  timeout: 5s\n  filters:\n    event_keys: [user_login]\n", 1))
	dir := filepath.Dir(path)
	other := writeConfig(t, base, secretToken, strings.ReplaceAll(goodConfig, "%DIR%/out", dir+"/out"))
	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, Main(t.Context(), []string{"run", "-c", other, "--from", day, "--to", next}, &stdout, &stderr), stderr.String())
	before, err := os.ReadDir(filepath.Join(dir, "out"))
	require.NoError(t, err)

	stdout.Reset()
	stderr.Reset()
	require.Equal(t, 2, Main(t.Context(), []string{"run", "-c", path, "--from", day, "--to", next, "--dry-run"}, &stdout, &stderr))
	require.Regexp(t, `(?m)^refused +sink 0: .*another configuration`, stdout.String())
	require.Contains(t, stderr.String(), "another configuration")
	after, err := os.ReadDir(filepath.Join(dir, "out"))
	require.NoError(t, err)
	require.Equal(t, before, after, "the dry run wrote nothing there")

	// Its own location, new: no line, exit 0, and still nothing written.
	stdout.Reset()
	stderr.Reset()
	require.Equal(t, 0, Main(t.Context(), []string{"run", "-c", other, "--from", day, "--to", next, "--dry-run"}, &stdout, &stderr), stderr.String())
	require.NotContains(t, stdout.String(), "refused")
	fresh := writeConfig(t, base, secretToken, goodConfig)
	require.Equal(t, 0, Main(t.Context(), []string{"run", "-c", fresh, "--dry-run"}, &stdout, &stderr), stderr.String())
	_, err = os.Stat(filepath.Join(filepath.Dir(fresh), "out"))
	require.ErrorIs(t, err, os.ErrNotExist, "no directory created")

	// A sink directory that is a file: refused as the run refuses it, exit
	// 2 (was: exit 0 and no word, while the run failed on it).
	require.NoError(t, os.WriteFile(filepath.Join(filepath.Dir(fresh), "out"), []byte("x"), 0o600))
	stdout.Reset()
	stderr.Reset()
	require.Equal(t, 2, Main(t.Context(), []string{"run", "-c", fresh, "--dry-run"}, &stdout, &stderr), stderr.String())
	require.Regexp(t, `(?m)^refused +sink 0: ndjson: \S+/out is a file, not a directory`, stdout.String())
}

// TestTokenFileReadableByEveryone: a token_file every user of the machine
// may read gets a warning naming the fix, from run and from check's token
// line; one the owner or the group reads does not (was: silent, while a
// signing key open to others is refused).
func TestTokenFileReadableByEveryone(t *testing.T) {
	base := startSim(t)
	dir := t.TempDir()
	body := "source:\n  base_url: " + base + "\n  token_file: token\n  timeout: 5s\nsinks:\n  - type: ndjson\n    dir: out\nstate:\n  dir: state\n"
	cfgPath := filepath.Join(dir, "pipeline.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(body), 0o600))
	tokenPath := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(tokenPath, []byte(secretToken+"\n"), 0o600))
	warning := "source.token_file: " + tokenPath + " is readable by every user of this machine (mode 0644)"
	for _, mode := range []os.FileMode{0o644, 0o640} {
		require.NoError(t, os.Chmod(tokenPath, mode))
		code, stdout, stderr := runMain(t, "run", "-c", cfgPath, "--dry-run")
		require.Equal(t, 0, code, stderr)
		code, checkOut, checkErr := runMain(t, "check", "-c", cfgPath)
		require.Equal(t, 0, code, checkOut+checkErr)
		if mode == 0o644 {
			require.Contains(t, stderr, warning)
			require.Contains(t, stderr, "chmod o-r "+tokenPath)
			require.Regexp(t, `OK\s+token\s+accepted .*; warning: `+regexp.QuoteMeta(warning), checkOut)
		} else {
			require.NotContains(t, stdout+stderr+checkOut, "readable by every user")
		}
		require.NotContains(t, stdout+stderr+checkOut+checkErr, secretToken)
	}
}

// TestConfigWithSecretsReadableByEveryone: a configuration every user may
// read that holds the token itself is used with a warning naming the key,
// never the token, from run and on check's config line (was: nothing said).
func TestConfigWithSecretsReadableByEveryone(t *testing.T) {
	path := writeConfig(t, startSim(t), secretToken, goodConfig)
	require.NoError(t, os.Chmod(path, 0o644))
	warning := path + ": source.token written in the file, which every user of this machine may read (mode 0644)"
	code, stdout, stderr := runMain(t, "run", "-c", path, "--dry-run")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stderr, warning)
	code, checkOut, checkErr := runMain(t, "check", "-c", path)
	require.Equal(t, 0, code, checkOut+checkErr)
	require.Regexp(t, `OK\s+config\s+.*; warning: `+regexp.QuoteMeta(warning), checkOut)
	require.NotContains(t, stdout+stderr+checkOut+checkErr, secretToken)
}

// TestStateDirWritableByEveryone: a state.dir every user may write into is
// warned of by run and on check's state line (was: used without a word).
func TestStateDirWritableByEveryone(t *testing.T) {
	path := writeConfig(t, startSim(t), secretToken, goodConfig)
	root := filepath.Join(filepath.Dir(path), "state")
	require.NoError(t, os.Mkdir(root, 0o700))
	require.NoError(t, os.Chmod(root, 0o777))
	warning := "state.dir: " + root + " is writable by every user of this machine (mode 0777)"
	day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -2)
	code, _, stderr := runMain(t, "run", "-c", path, "--from", day.Format(time.DateOnly), "--to", day.AddDate(0, 0, 1).Format(time.DateOnly))
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stderr, warning)
	code, checkOut, checkErr := runMain(t, "check", "-c", path)
	require.Equal(t, 0, code, checkOut+checkErr)
	require.Regexp(t, `OK\s+state\s+.* writable; warning: `+regexp.QuoteMeta(warning), checkOut)
}

// TestLogFormatAnyCase: --log-format takes JSON and Text as --log-level
// takes DEBUG (was: "--log-format: unknown \"JSON\"", printed as text).
func TestLogFormatAnyCase(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	var stdout, stderr bytes.Buffer
	require.Equal(t, 2, Main(t.Context(), []string{"check", "-c", missing, "--log-format", "JSON"}, &stdout, &stderr))
	recs := jsonLines(t, stderr.String())
	require.Len(t, recs, 1, stderr.String())
	require.Contains(t, stderr.String(), "missing.yaml")
}
