package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/state"
)

const secretToken = "sim-token" // the simulator's accepted token

// startSim starts a simulator of 500 events, changed by mutate, and
// returns its base URL.
func startSim(t *testing.T, mutate ...func(*simulator.Config)) string {
	t.Helper()
	sc := simulator.DefaultConfig()
	sc.Events = 500
	for _, m := range mutate {
		m(&sc)
	}
	sim, err := simulator.New(sc)
	require.NoError(t, err)
	base, err := sim.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { sim.Close() })
	return base
}

// writeConfig writes a pipeline.yaml; %BASE%, %DIR% and %TOKEN% are replaced.
func writeConfig(t *testing.T, base, token, body string) string {
	t.Helper()
	dir := t.TempDir()
	body = strings.NewReplacer("%BASE%", base, "%DIR%", dir, "%TOKEN%", token).Replace(body)
	path := filepath.Join(dir, "pipeline.yaml")
	require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
	return path
}

const goodConfig = `source:
  base_url: %BASE%
  token: %TOKEN%
  workspace: acme
  timeout: 5s
sinks:
  - type: ndjson
    dir: %DIR%/out
state:
  dir: %DIR%/state
`

// TestRangeBefore1970: a --from or --to before 1970 is a usage error in
// every command that takes them, not a bound taken for absent (the zero
// time is year 1).
func TestRangeBefore1970(t *testing.T) {
	path := writeConfig(t, "http://127.0.0.1:1", "x", goodConfig)
	for _, args := range [][]string{
		{"run", "-c", path, "--from", "0001-01-01", "--to", "2026-11-02", "--dry-run"},
		{"run", "-c", path, "--from", "2026-11-01", "--to", "0001-01-01T00:00:00Z", "--dry-run"},
		{"verify", "-c", path, "--from", "0001-01-01", "--to", "2026-11-02"},
		{"report", "-c", path, "--from", "0001-01-01", "--to", "2026-11-02", "-o", filepath.Join(t.TempDir(), "r.html")},
		{"follow", "-c", path, "--from", "1969-12-31"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main(t.Context(), args, &stdout, &stderr)
			require.Equal(t, 2, code, stderr.String())
			require.Regexp(t, `--(from|to): invalid time "[^"]+": before 1970`, stderr.String())
		})
	}
}

// TestOverlappingPartialRangesWarn: a range of part of a day written
// beside the file of another range that overlaps it (a responder's pull
// of 00:00-12:00, then of 06:00-09:00) is delivered with a warning naming
// that file: the events both cover are in the day twice, which verify
// fails (was: success, not a word, until verify failed the day); a range
// containing both replaces them, with no warning, and verify passes.
func TestOverlappingPartialRangesWarn(t *testing.T) {
	day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -3)
	base := startSim(t, func(c *simulator.Config) { c.From, c.To = day, day.AddDate(0, 0, 1) })
	path := writeConfig(t, base, secretToken, goodConfig)
	at := func(h int) string { return day.Add(time.Duration(h) * time.Hour).Format(time.RFC3339) }
	date := day.Format(time.DateOnly)

	code, _, stderr := runMain(t, "run", "-c", path, "--from", at(0), "--to", at(12))
	require.Equal(t, 0, code, stderr)
	require.NotContains(t, stderr, "overlaps it")
	first := "pachca-audit-" + day.Format("20060102") + "T000000.000Z-" + day.Format("20060102") + "T120000.000Z.ndjson"

	code, _, stderr = runMain(t, "run", "-c", path, "--from", at(6), "--to", at(9))
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stderr, ": this part of "+date+" was written beside files of another range of the day that overlaps it")
	require.Contains(t, stderr, first)
	code, stdout, stderr := runMain(t, "verify", "-c", path)
	require.Equal(t, 1, code, stderr)
	require.Contains(t, stdout, "twice in the day")

	code, _, stderr = runMain(t, "run", "-c", path, "--from", at(0), "--to", at(13))
	require.Equal(t, 0, code, stderr)
	require.NotContains(t, stderr, "overlaps it")
	code, _, stderr = runMain(t, "verify", "-c", path)
	require.Equal(t, 0, code, stderr)
}

func TestExitStatus(t *testing.T) {
	base := startSim(t)
	day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -3).Format(time.DateOnly)
	next := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -2).Format(time.DateOnly)
	cases := []struct {
		name   string
		config string
		token  string
		args   []string
		code   int
		want   []string // substrings of stderr
	}{
		{name: "ok", config: goodConfig, token: secretToken, args: []string{"--from", day, "--to", next}, code: 0, want: []string{"days delivered"}},
		{name: "unknown key", token: secretToken, config: strings.Replace(goodConfig, "  timeout: 5s", "  timout: 5s", 1),
			code: 2, want: []string{"pipeline.yaml:5: source.timout: unknown key (did you mean timeout?)"}},
		{name: "bad duration", token: secretToken, config: strings.Replace(goodConfig, "timeout: 5s", "timeout: 5 seconds", 1),
			code: 2, want: []string{"pipeline.yaml:5: source.timeout: invalid duration \"5 seconds\""}},
		{name: "no sinks", token: secretToken, config: "source:\n  base_url: %BASE%\n  token: x\nsinks: []\n",
			code: 2, want: []string{"sinks: at least one sink is required"}},
		{name: "sink without dir", token: secretToken, config: strings.Replace(goodConfig, "    dir: %DIR%/out\n", "", 1),
			code: 2, want: []string{"sinks[0].dir: required"}},
		{name: "unknown sink key", token: secretToken, config: strings.Replace(goodConfig, "    dir: %DIR%/out", "    dir: %DIR%/out\n    bucket: x", 1),
			code: 2, want: []string{"pipeline.yaml:9: sinks[0].bucket: unknown key"}},
		{name: "from after to", config: goodConfig, token: secretToken, args: []string{"--from", next, "--to", day},
			code: 2, want: []string{"--from (" + next + "T00:00:00Z) must be before --to"}},
		{name: "bad from", config: goodConfig, token: secretToken, args: []string{"--from", "yesterday", "--to", day},
			code: 2, want: []string{"--from: invalid time \"yesterday\""}},
		{name: "missing env var", config: strings.Replace(goodConfig, "%TOKEN%", "${PACHCA_TEST_UNSET_VAR}", 1),
			code: 2, want: []string{"source.token: environment variable PACHCA_TEST_UNSET_VAR is not set"}},
		// A token the API refuses is a configuration error: a Job or unit
		// that retries exit 1 would send it again (was: exit 1).
		{name: "401", config: goodConfig, token: "wrong-token-123456", args: []string{"--from", day, "--to", next},
			code: 2, want: []string{"the API rejected the token (401", "audit_events:read"}},
		{name: "402", config: goodConfig, token: simulator.TokenNoPlan, args: []string{"--from", day, "--to", next},
			code: 2, want: []string{"Corporation plan"}},
		{name: "403", config: goodConfig, token: simulator.TokenNoScope, args: []string{"--from", day, "--to", next},
			code: 2, want: []string{"scope audit_events:read"}},
		{name: "metrics file a directory", config: goodConfig, token: secretToken, args: []string{"--from", day, "--to", next, "--metrics-file", os.TempDir()},
			code: 2, want: []string{"--metrics-file: metrics file " + os.TempDir() + " is a directory"}},
		{name: "unknown command", config: goodConfig, token: secretToken, code: 2, want: []string{"unknown command \"frobnicate\""}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, base, tc.token, tc.config)
			args := append([]string{"run", "-c", path}, tc.args...)
			if tc.name == "unknown command" {
				args = []string{"frobnicate"}
			}
			var stdout, stderr bytes.Buffer
			code := Main(t.Context(), args, &stdout, &stderr)
			out := stdout.String() + stderr.String()
			require.Equal(t, tc.code, code, out)
			for _, w := range tc.want {
				require.Contains(t, out, w)
			}
			require.NotContains(t, out, "goroutine ", "no stack trace")
			if tc.token != "" && len(tc.token) > 8 {
				require.NotContains(t, out, tc.token, "the token leaked")
			}
			if code != 0 {
				lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
				last := lines[len(lines)-1]
				require.True(t, strings.HasPrefix(last, "pachca-export: "), "one clear line: %q", last)
			}
		})
	}
}

// TestTokenNeverPrinted runs the failing paths with a distinctive token and
// searches every byte written.
func TestTokenNeverPrinted(t *testing.T) {
	base := startSim(t)
	token := "tok-SECRET-4f9a2c7e-never-print"
	day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -3).Format(time.DateOnly)
	for _, args := range [][]string{
		{"run", "--log-level", "debug", "--from", day, "--to", day + "T06:00:00Z"},
		{"run", "--dry-run", "--from", day, "--to", day + "T06:00:00Z"},
		{"run", "--log-format", "json", "--token", token, "--from", day, "--to", day + "T06:00:00Z"},
		{"check"},
	} {
		t.Run(strings.ReplaceAll(strings.Join(args, " "), token, "TOKEN"), func(t *testing.T) {
			path := writeConfig(t, base, token, goodConfig)
			var stdout, stderr bytes.Buffer
			code := Main(t.Context(), append(args[:1:1], append([]string{"-c", path}, args[1:]...)...), &stdout, &stderr)
			out := stdout.String() + stderr.String()
			if !strings.Contains(strings.Join(args, " "), "--dry-run") {
				require.NotEqual(t, 0, code, out)
			}
			require.NotContains(t, out, token)
			require.NotContains(t, out, "SECRET")
		})
	}
}

func TestSchemaAndVersion(t *testing.T) {
	for _, f := range []string{"json", "arrow", "sql"} {
		var stdout, stderr bytes.Buffer
		require.Equal(t, 0, Main(t.Context(), []string{"schema", "--format", f}, &stdout, &stderr), stderr.String())
		require.Contains(t, stdout.String(), "details_json", f)
		require.Contains(t, stdout.String(), "created_at", f)
		if f == "json" { // types read as written, not HTML-escaped (list\u003cstring\u003e)
			require.Contains(t, stdout.String(), `"type": "list<string>"`)
		}
	}
	// OCSF Parquet files: their Arrow schema and an Athena table over them.
	for _, f := range []string{"arrow", "sql"} {
		var stdout, stderr bytes.Buffer
		require.Equal(t, 0, Main(t.Context(), []string{"schema", "--format", f, "--schema", "ocsf"}, &stdout, &stderr), stderr.String())
		require.Contains(t, stdout.String(), "time_dt", f)
		require.NotContains(t, stdout.String(), "details_json", f)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--format", "xml"}, `unknown --format "xml"`},
		{[]string{"--schema", "v2"}, `unknown --schema "v2" (pachca.audit.v1, ocsf)`},
		{[]string{"--schema", "ocsf"}, "--schema ocsf: for --format arrow or sql"},
		{[]string{"--format", "sql", "--schema", "ocsf", "--layout", "ndjson"}, "no table over OCSF NDJSON lines"},
	} {
		var stdout, stderr bytes.Buffer
		require.Equal(t, 2, Main(t.Context(), append([]string{"schema"}, tc.args...), &stdout, &stderr), tc.args)
		require.Contains(t, stderr.String(), tc.want)
		require.Empty(t, stdout.String())
	}
	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, Main(t.Context(), []string{"version"}, &stdout, &stderr))
	require.True(t, strings.HasPrefix(stdout.String(), "pachca-export "), stdout.String())
}

// TestDemo: the demo writes a week of files, and runs again in the same
// directory (make demo twice), replacing its earlier output; a directory
// another configuration wrote is left alone.
func TestDemo(t *testing.T) {
	out := t.TempDir()
	for range 2 {
		var stdout, stderr bytes.Buffer
		code := Main(t.Context(), []string{"demo", "--out", out, "--events", "3000"}, &stdout, &stderr)
		require.Equal(t, 0, code, stderr.String())
	}
	require.Equal(t, "3,000", eventsOnPage(t, filepath.Join(out, "report.html")))
	for d := 1; d <= 7; d++ {
		day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -d).Format(time.DateOnly)
		for _, f := range []string{
			fmt.Sprintf("ndjson/dt=%s/pachca-audit-%s.ndjson.gz", day, day),
			fmt.Sprintf("parquet/dt=%s/pachca-audit-%s.parquet", day, day),
			fmt.Sprintf("parquet/dt=%s/_manifest.json", day),
		} {
			require.FileExists(t, filepath.Join(out, f))
		}
	}

	other := t.TempDir()
	marker := filepath.Join(other, "ndjson", sinks.MarkerName)
	require.NoError(t, os.MkdirAll(filepath.Dir(marker), 0o700))
	b, err := os.ReadFile(filepath.Join(out, "ndjson", sinks.MarkerName))
	require.NoError(t, err)
	b = bytes.Replace(b, []byte(`"source.workspace": "demo"`), []byte(`"source.workspace": "acme"`), 1)
	require.NoError(t, os.WriteFile(marker, b, 0o600))
	var stdout, stderr bytes.Buffer
	require.Equal(t, 2, Main(t.Context(), []string{"demo", "--out", other, "--events", "3000"}, &stdout, &stderr))
	require.Contains(t, stderr.String(), "this location holds no events yet, but is marked as another configuration's")
	kept, err := os.ReadFile(marker)
	require.NoError(t, err)
	require.Equal(t, b, kept)
}

// TestDemoTwiceAtOnce: a demo into a directory another demo is writing to
// stops at once, naming it, and leaves the other's files (was: it removed
// them, as an earlier demo's, or was refused at its first day with "this
// location holds the events of another configuration", the base_url of
// the other demo's simulator).
func TestDemoTwiceAtOnce(t *testing.T) {
	out := t.TempDir()
	code, _, stderr := runMain(t, "demo", "--out", out, "--events", "500")
	require.Equal(t, 0, code, stderr)
	marker := filepath.Join(out, "ndjson", sinks.MarkerName)
	before, err := os.ReadFile(marker)
	require.NoError(t, err)

	// The other demo, at work: it holds the lock a demo takes.
	held, err := os.OpenFile(filepath.Join(out, ".demo.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	require.NoError(t, err)
	require.NoError(t, syscall.Flock(int(held.Fd()), syscall.LOCK_EX|syscall.LOCK_NB))
	code, stdout, stderr := runMain(t, "demo", "--out", out, "--events", "500")
	require.Equal(t, 1, code, stdout+stderr)
	require.Equal(t, "pachca-export: demo: another demo is writing to "+out+": wait for it to end, or give --out another directory\n", stderr)
	after, err := os.ReadFile(marker)
	require.NoError(t, err, "the other demo's files are left")
	require.Equal(t, before, after)

	require.NoError(t, held.Close())
	code, _, stderr = runMain(t, "demo", "--out", out, "--events", "500")
	require.Equal(t, 0, code, "once the other has ended: "+stderr)
}

func TestCheck(t *testing.T) {
	base := startSim(t)
	var stdout, stderr bytes.Buffer
	path := writeConfig(t, base, secretToken, goodConfig)
	code := Main(t.Context(), []string{"check", "-c", path}, &stdout, &stderr)
	require.Equal(t, 0, code, stdout.String()+stderr.String())
	for _, want := range []string{`OK\s+config`, `OK\s+token`, `OK\s+sinks\[0\]\s+ndjson .* reachable and writable`} {
		require.Regexp(t, want, stdout.String())
	}
	require.NotContains(t, stdout.String(), "alerts")
	require.NotContains(t, stdout.String(), "in use")

	// A state held by a running process is named, and still OK (was:
	// "writable" only, and the run that followed was refused).
	loaded, err := config.Load(path, os.LookupEnv)
	require.NoError(t, err)
	held, err := state.Open(loaded.State.Dir, pipeline.Identity(loaded))
	require.NoError(t, err)
	held.Hold(state.ModeFollow, path)
	stdout.Reset()
	code = Main(t.Context(), []string{"check", "-c", path}, &stdout, &stderr)
	require.Equal(t, 0, code, stdout.String()+stderr.String())
	require.Regexp(t, `OK\s+state\s+\S+ writable; in use, held by pid \d+ .*\(follow\): a run on this state is refused until the follow loop is stopped`, stdout.String())
	require.Regexp(t, `OK\s+token\s+accepted by .* with scope audit_events:read, owner user 10001`, stdout.String())

	// A state whose days another owner's token exported: another
	// workspace's, which a run refuses (pipeline's TestAnotherWorkspacesToken).
	require.NoError(t, held.SetOwner(state.Owner{UserID: 20002, Since: time.Now()}))
	require.NoError(t, held.Close())
	stdout.Reset()
	code = Main(t.Context(), []string{"check", "-c", path}, &stdout, &stderr)
	require.Equal(t, 2, code, "a configuration error, as run: exit 2 (was: 1)\n"+stdout.String()+stderr.String())
	require.Regexp(t, `FAIL\s+state\s+source: the token is user 10001's \(GET /oauth/token/info\), but this state's days were exported with user 20002's token`, stdout.String())
	require.Contains(t, stderr.String(), "check: 1 problem(s), of the configuration: state")

	// Alert rules need the scope messages:create: check reads the token's
	// scopes (GET /oauth/token/info) and fails a token without it (was:
	// "not checked", and the first finding failed the run with a 403).
	alerts := goodConfig + "alerts:\n  rules:\n    - {name: DLP, kind: watch, event_keys: [dlp_violation_detected], recipients: [\"10001\"]}\n"
	stdout.Reset()
	stderr.Reset()
	path = writeConfig(t, base, secretToken, alerts)
	code = Main(t.Context(), []string{"check", "-c", path}, &stdout, &stderr)
	require.Equal(t, 0, code, stdout.String()+stderr.String())
	require.Regexp(t, `OK\s+alerts\s+1 rule\(s\); the token has scope messages:create`, stdout.String())
	noSendBase := startSim(t, func(c *simulator.Config) { c.NoMessagesScope = true })
	stdout.Reset()
	stderr.Reset()
	path = writeConfig(t, noSendBase, secretToken, alerts)
	code = Main(t.Context(), []string{"check", "-c", path}, &stdout, &stderr)
	require.Equal(t, 1, code, stdout.String()+stderr.String())
	require.Regexp(t, `FAIL\s+alerts\s+1 rule\(s\), but the token lacks scope messages:create \(it has audit_events:read\)`, stdout.String())
	// An API that does not tell (an older one: 404): not checked, said so.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/oauth/token/info") {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(`{"data":[],"meta":{"paginate":{"next_page":"","has_next":false}}}`))
	}))
	t.Cleanup(srv.Close)
	stdout.Reset()
	stderr.Reset()
	path = writeConfig(t, srv.URL, secretToken, alerts)
	code = Main(t.Context(), []string{"check", "-c", path}, &stdout, &stderr)
	require.Equal(t, 0, code, stdout.String()+stderr.String())
	require.Regexp(t, `OK\s+alerts\s+1 rule\(s\); not checked: sending needs the token's scope messages:create, which the API did not tell: .*404`, stdout.String())

	stdout.Reset()
	stderr.Reset()
	path = writeConfig(t, base, simulator.TokenNoScope, strings.Replace(goodConfig, "dir: %DIR%/out", "dir: /proc/not-writable", 1))
	code = Main(t.Context(), []string{"check", "-c", path}, &stdout, &stderr)
	require.Equal(t, 2, code, "a token the API refuses: exit 2, as run (was: 1)")
	require.Regexp(t, `FAIL\s+token\s+the token lacks access`, stdout.String())
	require.Contains(t, stdout.String(), "audit_events:read")
	require.Regexp(t, `FAIL\s+sinks\[0\]`, stdout.String())
	require.Contains(t, stderr.String(), "check: 2 problem(s), the token's among them")

	// What a run would stop on: a state directory that is a file, event
	// keys the API does not know: each is named (was: the first only).
	stdout.Reset()
	stderr.Reset()
	cfg := strings.Replace(goodConfig, "  timeout: 5s", "  timeout: 5s\n  filters:\n    event_keys: [user_login, no_such_key, nor_this_one]", 1)
	path = writeConfig(t, base, secretToken, strings.Replace(cfg, "dir: %DIR%/state", "dir: %DIR%/state-file", 1))
	require.NoError(t, os.WriteFile(filepath.Join(filepath.Dir(path), "state-file"), []byte("not a directory"), 0o600))
	code = Main(t.Context(), []string{"check", "-c", path}, &stdout, &stderr)
	require.Equal(t, 2, code, "event keys the API refuses: exit 2, as run (was: 1)\n"+stdout.String()+stderr.String())
	require.Contains(t, stderr.String(), "check: 3 problem(s), of the configuration: filters\n", "named once")
	require.Regexp(t, `FAIL\s+state\s+state: .*state-file`, stdout.String())
	require.Regexp(t, `FAIL\s+filters\s+event key "no_such_key"`, stdout.String())
	require.Regexp(t, `FAIL\s+filters\s+event key "nor_this_one"`, stdout.String())
	require.NotRegexp(t, `OK\s+filters`, stdout.String())
	require.Regexp(t, `OK\s+sinks\[0\]`, stdout.String())
}

// TestCheckJSON: check --format json prints one JSON object a line, as
// verify's, with the statuses of the text lines and the same exit status:
// 0 with every item OK; 2 with a token the API refuses and an unwritable
// sink, each a FAIL object; --format of another value is a usage error
// (was: no --format, text only, for a script to parse columns).
func TestCheckJSON(t *testing.T) {
	base := startSim(t)
	type item struct{ Status, Item, Detail string }
	objects := func(stdout string) []item {
		var out []item
		for _, l := range strings.Split(strings.TrimRight(stdout, "\n"), "\n") {
			var m map[string]any
			require.NoError(t, json.Unmarshal([]byte(l), &m), "not a JSON object: %q", l)
			require.Len(t, m, 3, "status, item, detail: %q", l)
			var it item
			require.NoError(t, json.Unmarshal([]byte(l), &it))
			out = append(out, it)
		}
		return out
	}
	path := writeConfig(t, base, secretToken, goodConfig)
	code, stdout, stderr := runMain(t, "check", "-c", path, "--format", "json")
	require.Equal(t, 0, code, stdout+stderr)
	got := objects(stdout)
	require.Equal(t, []string{"config", "token", "state", "sinks[0]"}, func() (names []string) {
		for _, it := range got {
			require.Equal(t, "OK", it.Status, it)
			names = append(names, it.Item)
		}
		return
	}())
	require.Contains(t, got[1].Detail, "accepted by ")
	require.Regexp(t, `^ndjson .* reachable and writable`, got[3].Detail)
	require.NotContains(t, stdout, secretToken)

	path = writeConfig(t, base, simulator.TokenNoScope, strings.Replace(goodConfig, "dir: %DIR%/out", "dir: /proc/not-writable", 1))
	code, stdout, stderr = runMain(t, "check", "-c", path, "--format", "json")
	require.Equal(t, 2, code, "as the text lines: a token the API refuses is exit 2\n"+stdout+stderr)
	statuses := map[string]string{}
	for _, it := range objects(stdout) {
		statuses[it.Item] = it.Status
		if it.Item == "token" {
			require.Contains(t, it.Detail, "audit_events:read")
		}
	}
	require.Equal(t, map[string]string{"config": "OK", "token": "FAIL", "state": "OK", "sinks[0]": "FAIL"}, statuses)
	require.Equal(t, "pachca-export: check: 2 problem(s), the token's among them\n", stderr, "stderr as with text lines")

	code, stdout, stderr = runMain(t, "check", "-c", path, "--format", "yaml")
	require.Equal(t, 2, code)
	require.Empty(t, stdout)
	require.Equal(t, "pachca-export: check: --format \"yaml\": want text or json\n", stderr)
}

// TestCheckTellsADistantAPI: an API 100 ms away with one worker cannot
// keep 50 requests a second (5 must be under way at once): the token's
// line, still OK, says so and which concurrency would (was: nothing, and
// the run sent a fifth of its rate without a word). Nearby, no warning.
func TestCheckTellsADistantAPI(t *testing.T) {
	far := startSim(t, func(c *simulator.Config) { c.Latency = 100 * time.Millisecond })
	path := writeConfig(t, far, secretToken, strings.Replace(goodConfig, "  timeout: 5s\n", "  timeout: 5s\n  concurrency: 1\n", 1))
	code, stdout, stderr := runMain(t, "check", "-c", path)
	require.Equal(t, 0, code, stdout+stderr)
	m := regexp.MustCompile(`OK\s+token\s+accepted by .*, owner user 10001; warning: the API answered in \d+ms: 50 requests per second need [\d.]+ under way at once, and source.concurrency 1 reaches about \d+ per second; set source.concurrency to (\d+)\n`).FindStringSubmatch(stdout)
	require.NotNil(t, m, stdout)
	n, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	require.GreaterOrEqual(t, n, 6) // 5 under way, and the fetcher's margin
	require.LessOrEqual(t, n, 10)

	near := startSim(t)
	path = writeConfig(t, near, secretToken, goodConfig)
	code, stdout, stderr = runMain(t, "check", "-c", path)
	require.Equal(t, 0, code, stdout+stderr)
	require.Regexp(t, `OK\s+token\s+accepted by .*, owner user 10001\n`, stdout)
	require.NotContains(t, stdout, "source.concurrency")
}

// TestCheckKafkaClaimsNoWrite: check of a Kafka sink says what it tested,
// the brokers' metadata (was: "reachable and writable" for a client the
// brokers' ACLs let describe the topic but not write to it, whose run then
// failed on "Topic Authorization Failed" once the period was fetched).
func TestCheckKafkaClaimsNoWrite(t *testing.T) {
	base := startSim(t)
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "audit"), kfake.EnableSASL(), kfake.EnableACLs(),
		kfake.User("SCRAM-SHA-256", "reader", "reader-pass", kfake.ACL{Resource: kmsg.ACLResourceTypeTopic, Name: "audit",
			Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: kmsg.ACLOperationDescribe, Allow: true}))
	require.NoError(t, err)
	defer kc.Close()
	path := writeConfig(t, base, secretToken, strings.Replace(goodConfig, "    dir: %DIR%/out\n",
		"    dir: %DIR%/out\n  - type: kafka\n    brokers: ["+kc.ListenAddrs()[0]+"]\n    topic: audit\n"+
			"    sasl: {mechanism: scram-sha-256, username: reader, password: reader-pass}\n", 1))
	code, stdout, stderr := runMain(t, "check", "-c", path)
	require.Equal(t, 0, code, stdout+stderr)
	require.Regexp(t, `OK\s+sinks\[0\]\s+ndjson .* reachable and writable`, stdout)
	require.Regexp(t, `OK\s+sinks\[1\]\s+kafka audit reachable; writing to the topic not tested: the brokers' ACLs are tried by the first delivery\n`, stdout)
}

// TestCheckUnansweringAPI: check's token line says what the API did when
// it did not answer in time: a 429 asking for more time than check waits,
// or no answer within source.timeout (was: "context deadline exceeded" after
// twice source.timeout, for both).
func TestCheckUnansweringAPI(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		handler    http.HandlerFunc
	}{
		{"429", `FAIL\s+token\s+out of time to wait for the Retry-After of 10m0s: 429 Too Many Requests`, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "600")
			w.WriteHeader(http.StatusTooManyRequests)
		}},
		{"no answer", `FAIL\s+token\s+.*request failed: no answer within 1s \(source.timeout\)`, func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			t.Cleanup(srv.Close)
			path := writeConfig(t, srv.URL, secretToken, strings.Replace(goodConfig, "timeout: 5s", "timeout: 1s", 1))
			var stdout, stderr bytes.Buffer
			code := Main(t.Context(), []string{"check", "-c", path}, &stdout, &stderr)
			require.Equal(t, 1, code, stdout.String()+stderr.String())
			require.Regexp(t, tc.want, stdout.String())
		})
	}
}

// TestCheckOtherData: a sink directory that holds files of someone else's
// (and no marker) is named in check's line: readers of the location read
// them too; an exporter's own probe files are not.
func TestCheckOtherData(t *testing.T) {
	base := startSim(t)
	path := writeConfig(t, base, secretToken, goodConfig)
	out := filepath.Join(filepath.Dir(path), "out")
	require.NoError(t, os.MkdirAll(filepath.Join(out, "dt=2026-11-01"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(out, "notes.txt"), []byte("mine"), 0o600))
	code, stdout, stderr := runMain(t, "check", "-c", path)
	require.Equal(t, 0, code, stdout+stderr)
	require.Regexp(t, `OK\s+sinks\[0\]\s+ndjson .* holds other data \(notes.txt\) and no marker`, stdout)
}

func TestDryRunFetchesNothing(t *testing.T) {
	sc := simulator.DefaultConfig()
	sim, err := simulator.New(sc)
	require.NoError(t, err)
	base, err := sim.Start("127.0.0.1:0")
	require.NoError(t, err)
	defer sim.Close()
	path := writeConfig(t, base, secretToken, goodConfig)
	var stdout, stderr bytes.Buffer
	from := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -5)
	code := Main(t.Context(), []string{"run", "-c", path, "--dry-run", "--from", from.Format(time.DateOnly), "--to", from.AddDate(0, 0, 3).Format(time.DateOnly)}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	out := stdout.String()
	require.Contains(t, out, "dry run: nothing fetched")
	require.Regexp(t, `days\s+3 `, out)
	require.Contains(t, out, "dt="+from.Format(time.DateOnly))
	require.Regexp(t, `requests\s+at least 3,`, out)
	require.Zero(t, sim.Stats().Requests, "a dry run sends no request")
	for _, dir := range []string{"out", "state"} {
		_, err = os.Stat(filepath.Join(filepath.Dir(path), dir))
		require.True(t, os.IsNotExist(err), "and writes nothing: %s exists", dir)
	}
}

// TestDryRunShowsTheBoundsExactly: a bound within a second shows as given,
// as in the run's summary (was: cut to the second, a part of a day read as
// the whole day, an instant as an empty range).
func TestDryRunShowsTheBoundsExactly(t *testing.T) {
	path := writeConfig(t, "http://127.0.0.1:1/api/shared/v1", secretToken, goodConfig)
	day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -5).Format(time.DateOnly)
	next := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -4).Format(time.DateOnly)
	code, stdout, stderr := runMain(t, "run", "-c", path, "--dry-run", "--from", day+"T00:00:00.5Z", "--to", day+"T10:00:00.25Z")
	require.Equal(t, 0, code, stderr)
	require.Regexp(t, `(?m)^range\s+`+day+`T00:00:00.5Z \.\. `+day+`T10:00:00.25Z$`, stdout)
	require.Regexp(t, `(?m)^  dt=`+day+`\s+`+day+`T00:00:00.5Z \.\. `+day+`T10:00:00.25Z$`, stdout)
	code, stdout, stderr = runMain(t, "run", "-c", path, "--dry-run", "--from", day, "--to", next)
	require.Equal(t, 0, code, stderr)
	require.Regexp(t, `(?m)^  dt=`+day+`\s+`+day+`T00:00:00Z \.\. `+next+`T00:00:00Z$`, stdout)
}

// TestDryRunSaysHowFarTheRateHolds: the plan's time holds while the API
// answers within concurrency / rate (8 workers at 50 req/s: 160ms), and
// the plan says so and what to raise beyond (was: the time promised
// whatever the distance; 275 ms away, the run took 1.7 times as long).
func TestDryRunSaysHowFarTheRateHolds(t *testing.T) {
	path := writeConfig(t, "http://127.0.0.1:1/api/shared/v1", secretToken, goodConfig)
	day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -5).Format(time.DateOnly)
	next := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -4).Format(time.DateOnly)
	code, stdout, stderr := runMain(t, "run", "-c", path, "--dry-run", "--from", day, "--to", next)
	require.Equal(t, 0, code, stderr)
	require.Regexp(t, `(?m)^time\s+at 50 req/s: 40s per 100,000 events, if the API answers within 160ms \(8 workers; farther away: raise source.concurrency\)$`, stdout)
	require.Equal(t, 250*time.Microsecond, roundAnswer(250*time.Microsecond+400))
}

// TestTerminalProgress: log lines written while a status line is shown clear
// it first and redraw it after.
func TestTerminalProgress(t *testing.T) {
	var b bytes.Buffer
	p := &terminalProgress{w: &b}
	p.Update(pipeline.Snapshot{Covered: 0.5, Days: 4, DaysDone: 1, Events: 100, Pages: 2, RPS: 49.5, ETA: 90 * time.Second})
	fmt.Fprintln(p, "log line")
	p.Done()
	out := b.String()
	status := " 50.0%  ETA 1m30s  days 1/4  events 100  pages 2  49.5 req/s  retries 0  429s 0"
	require.Equal(t, "\r\033[K"+status+"\r\033[Klog line\n"+status+"\r\033[K", out)

	// On a terminal narrower than the line (80 columns, and a long run's
	// figures), the line is cut short of the last column, the share and
	// the ETA kept (was: it wrapped, and every redraw left its first row
	// behind).
	b.Reset()
	p = &terminalProgress{w: &b, width: func() int { return 40 }}
	p.Update(pipeline.Snapshot{Covered: 0.5, Days: 61, DaysDone: 12, Events: 1234567, Pages: 24691, RPS: 49.5, ETA: 90 * time.Minute})
	require.Equal(t, "\r\033[K 50.0%  ETA 1h30m0s  days 12/61  events", b.String())

	// Everything fetched, a day still being written: not "ETA -".
	b.Reset()
	p = &terminalProgress{w: &b}
	p.Update(pipeline.Snapshot{Covered: 1, Days: 2, DaysDone: 1, Events: 100, Pages: 2})
	require.Contains(t, b.String(), "100.0%  ETA delivering  days 1/2")
}

// TestFailedFirstRunLeavesNoMarker: a first run that fails before it
// delivers anything (here an event key the API refuses, 422) writes no
// marker, so that the corrected configuration runs in the same directory
// (was: the marker was written before the first request, and the corrected
// run was refused, exit 2, "this location holds no events yet, but is
// marked as another configuration's"). A configuration that did deliver
// still keeps another one out.
func TestFailedFirstRunLeavesNoMarker(t *testing.T) {
	base := startSim(t)
	to := time.Now().UTC().Truncate(24 * time.Hour)
	from := to.AddDate(0, 0, -2)
	period := []string{"--from", from.Format(time.DateOnly), "--to", to.Format(time.DateOnly)}
	typo := strings.Replace(goodConfig, "  timeout: 5s", "  timeout: 5s\n  filters:\n    event_keys: [user_loginn]", 1)
	path := writeConfig(t, base, secretToken, typo)
	out := filepath.Join(filepath.Dir(path), "out")
	code, stdout, stderr := runMain(t, append([]string{"run", "-c", path}, period...)...)
	require.Equal(t, 2, code, "a configuration error (was: 1, retried by the Job and restarted by the follow unit)\n"+stdout+stderr)
	require.Contains(t, stderr, "user_loginn")
	require.NoFileExists(t, filepath.Join(out, sinks.MarkerName))
	code, stdout, stderr = runMain(t, "check", "-c", path)
	require.Equal(t, 2, code, stdout+stderr)
	require.Regexp(t, `FAIL\s+filters\s+event key "user_loginn": the API refused the request \(422 inclusion`, stdout)
	require.Contains(t, stderr, "of the configuration: filters")

	fixed := strings.Replace(typo, "user_loginn", "user_login", 1)
	require.NoError(t, os.WriteFile(path, []byte(strings.NewReplacer("%BASE%", base, "%DIR%", filepath.Dir(path), "%TOKEN%", secretToken).Replace(fixed)), 0o600))
	code, stdout, stderr = runMain(t, append([]string{"run", "-c", path}, period...)...)
	require.Equal(t, 0, code, stdout+stderr)
	require.FileExists(t, filepath.Join(out, sinks.MarkerName))

	// The marker is there now: the filter's removal is another configuration.
	require.NoError(t, os.WriteFile(path, []byte(strings.NewReplacer("%BASE%", base, "%DIR%", filepath.Dir(path), "%TOKEN%", secretToken).Replace(goodConfig)), 0o600))
	code, stdout, stderr = runMain(t, append([]string{"run", "-c", path}, period...)...)
	require.Equal(t, 2, code, stdout+stderr)
	require.Contains(t, stderr, "this location holds the events of another configuration")
	// check ends as the run: exit 2, a configuration error (was: 1).
	code, stdout, stderr = runMain(t, "check", "-c", path)
	require.Equal(t, 2, code, stdout+stderr)
	require.Regexp(t, `FAIL\s+sinks\[0\]\s+.*this location holds the events of another configuration`, stdout)
	require.Contains(t, stderr, "check: 1 problem(s), of the configuration: sinks[0]")
}

// TestLocationMarkedWhileFetching: two configurations started on one new
// location both find it unmarked; the one that delivers first marks it,
// and the other is refused at its first delivery, exit 2, having written
// nothing there.
func TestLocationMarkedWhileFetching(t *testing.T) {
	// The filtered run's pages wait at a gate until the other run is done.
	sim, err := simulator.New(simulator.DefaultConfig())
	require.NoError(t, err)
	fetching, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	gate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/audit_events") {
			once.Do(func() { close(fetching) })
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		sim.Handler().ServeHTTP(w, r)
	}))
	defer gate.Close()
	slowBase := gate.URL + simulator.BasePath
	fastBase := startSim(t)
	dir := t.TempDir()
	config := func(name, base, filters string) string {
		body := strings.NewReplacer("%BASE%", base, "%TOKEN%", secretToken, "%DIR%/out", filepath.Join(dir, "out"),
			"%DIR%/state", filepath.Join(dir, "state-"+name)).Replace(goodConfig)
		body = strings.Replace(body, "  timeout: 5s\n", "  timeout: 5s\n"+filters, 1)
		path := filepath.Join(dir, name+".yaml")
		require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
		return path
	}
	filtered := config("filtered", slowBase, "  filters:\n    event_keys: [user_login]\n")
	whole := config("whole", fastBase, "")
	period := []string{"--from", pastDay(7), "--to", pastDay(0)}

	type result struct {
		code   int
		stderr string
	}
	done := make(chan result, 1)
	go func() {
		code, _, stderr := runMain(t, append([]string{"run", "-c", filtered}, period...)...)
		done <- result{code, stderr}
	}()
	select {
	case <-fetching:
	case <-time.After(30 * time.Second):
		t.Fatal("the filtered run never fetched")
	}
	code, stdout, stderr := runMain(t, append([]string{"run", "-c", whole}, period...)...)
	require.Equal(t, 0, code, stdout+stderr)
	before := tree(t, filepath.Join(dir, "out"))
	close(release)

	var r result
	select {
	case r = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the filtered run did not end")
	}
	require.Equal(t, 2, r.code, r.stderr)
	require.Contains(t, r.stderr, "this location holds the events of another configuration")
	require.Equal(t, before, tree(t, filepath.Join(dir, "out")))
}

// TestAlertsRefusedTokenExit2: a run whose alert messages the API refuses
// for the token (403: no scope messages:create) has delivered its days,
// and fails with exit status 2, as a token refused for the audit log does:
// retrying it sends the same token and gets the same answer. The rules'
// events stay pending, so that a run with a token that has the scope
// sends the messages.
func TestAlertsRefusedTokenExit2(t *testing.T) {
	var refuse atomic.Bool
	refuse.Store(true)
	sc := simulator.DefaultConfig()
	sc.Events = 500
	sim, err := simulator.New(sc)
	require.NoError(t, err)
	t.Cleanup(func() { sim.Close() })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refuse.Load() && r.Method == http.MethodPost {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte(`{"error":"insufficient_scope","error_description":"The access token lacks the scope messages:create"}`))
			return
		}
		sim.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -3).Format(time.DateOnly)
	next := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -2).Format(time.DateOnly)
	cfg := goodConfig + "alerts:\n  rules:\n    - {name: Logins, kind: watch, event_keys: [user_login], recipients: [\"10001\"]}\n"
	path := writeConfig(t, srv.URL+"/api/shared/v1", secretToken, cfg)
	code, stdout, stderr := runMain(t, "run", "-c", path, "--from", day, "--to", next)
	require.Equal(t, 2, code, stdout+stderr)
	require.Regexp(t, `(?m)^days delivered\s+1 \(`+day+`\)$`, stderr)
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	require.Contains(t, lines[len(lines)-1], "alerts need a token with scope messages:create")
	require.Empty(t, sim.Stats().Messages)

	refuse.Store(false) // the scope granted
	code, stdout, stderr = runMain(t, "run", "-c", path, "--from", day, "--to", next)
	require.Equal(t, 0, code, stdout+stderr)
	require.NotEmpty(t, sim.Stats().Messages, "the pending findings sent")
}

// TestRestrictedTokenEndsTheRun: an API that answers 429 with a
// Retry-After of a day (a token restricted) ends the run at once, exit 1,
// with one line naming until when, and no request is sent after the
// answer (was: silent for ten minutes, the workers held in the pause the
// token-owner request's 429 began, then a request every ten minutes,
// each before the time the API named, for some five hours). The day
// stays unexported, for the next run.
func TestRestrictedTokenEndsTheRun(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Retry-After", "86400")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	t.Cleanup(srv.Close)
	day := pastDay(3)
	path := writeConfig(t, srv.URL+"/api/shared/v1", secretToken, goodConfig)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute) // the test's bound: the run used to wait ten minutes
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := Main(ctx, []string{"run", "-c", path, "--from", day, "--to", pastDay(2)}, &stdout, &stderr)
	require.NoError(t, ctx.Err(), "the run ended by itself")
	require.Equal(t, 1, code, stderr.String())
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	require.Regexp(t, `^pachca-export: fetch .*: the API answered 429 Too Many Requests asking that no request be sent until \S+Z \(2[34]h\d+m\d+s from now\), longer than the 10m0s a request waits: the token may be restricted until then; run again after it$`, lines[len(lines)-1])
	require.Regexp(t, `(?m)^days delivered\s+0$`, stderr.String())
	require.LessOrEqual(t, requests.Load(), int64(1+8), "the requests already under way at the first answer, at most (token owner, 8 workers)")
}
