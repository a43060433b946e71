package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/pachca-export/pachca-export/simulator"
)

// TestVerifyCommand: verify prints one line per day and sink and exits 0 on
// a clean export, 1 with the FAIL line on the damaged day and sink; the
// public key of the configured signing key prints as PEM.
func TestVerifyCommand(t *testing.T) {
	base := startSim(t)
	key := filepath.Join(t.TempDir(), "signing.pem")
	require.NoError(t, os.WriteFile(key, []byte("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIBObxfyXbWoNP4qpxmqs0H2+5QLZ8tPoftJ6OaSCyLUK\n-----END PRIVATE KEY-----\n"), 0o600))
	path := writeConfig(t, base, secretToken, goodConfig+"signing:\n  private_key_file: "+key+"\n")
	dir := filepath.Dir(path)
	from := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -4)
	day := func(n int) string { return from.AddDate(0, 0, n).Format(time.DateOnly) }
	main := func(args ...string) (int, string, string) { return runMain(t, args...) }
	code, _, stderr := main("run", "-c", path, "--from", day(0), "--to", day(2))
	require.Equal(t, 0, code, stderr)

	pubFile := filepath.Join(t.TempDir(), "pub.pem")
	code, stdout, stderr := main("verify", "-c", path, "--print-public-key")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAyzeTssI/7L6Ex0Bg4Fb5fCYBTpRND8VuEJBYg1Sb/DQ=\n-----END PUBLIC KEY-----\n", stdout)
	require.NoError(t, os.WriteFile(pubFile, []byte(stdout), 0o600))

	code, stdout, stderr = main("verify", "-c", path, "--public-key", pubFile)
	require.Equal(t, 0, code, stdout+stderr)
	require.Regexp(t, `OK\s+dt=`+day(0)+`\s+sinks\[0\] ndjson \S+\s+1 file\(s\), \d+ events, signature good`, stdout)
	require.Regexp(t, `OK\s+dt=`+day(1), stdout)

	require.NoError(t, os.Remove(filepath.Join(dir, "out", "dt="+day(1), "pachca-audit-"+day(1)+".ndjson")))
	code, stdout, stderr = main("verify", "-c", path, "--public-key", pubFile)
	t.Log(stdout + stderr)
	require.Equal(t, 1, code)
	require.Regexp(t, `OK\s+dt=`+day(0), stdout)
	require.Regexp(t, `FAIL\s+dt=`+day(1)+`\s+sinks\[0\] ndjson \S+\s+pachca-audit-`+day(1)+`.ndjson is missing`, stdout)
	require.Contains(t, stderr, "pachca-export: verify: ")

	// The same verdicts for a script: one JSON object a line.
	code, stdout, _ = main("verify", "-c", path, "--public-key", pubFile, "--format", "json")
	require.Equal(t, 1, code)
	type verdict struct{ Status, Day, Sink, Detail, Pass string }
	var got []verdict
	for line := range strings.Lines(stdout) {
		var v verdict
		require.NoError(t, json.Unmarshal([]byte(line), &v), line)
		got = append(got, v)
	}
	require.Len(t, got, 2, stdout)
	require.Equal(t, verdict{"OK", day(0), got[0].Sink, got[0].Detail, "check"}, got[0])
	require.Equal(t, "FAIL", got[1].Status)
	require.Equal(t, day(1), got[1].Day)
	require.Regexp(t, `^sinks\[0\] ndjson `, got[1].Sink)
	require.Equal(t, "pachca-audit-"+day(1)+".ndjson is missing", got[1].Detail)
	code, _, stderr = main("verify", "-c", path, "--format", "yaml")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, `--format "yaml": want text or json`)

	code, _, stderr = main("verify", "-c", writeConfig(t, base, secretToken, goodConfig), "--print-public-key")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "sets no signing.private_key_file")

	// One bound alone checks the days on its side of it, as the README's
	// "give verify a --from after them" needs (was: a usage error, exit 2).
	code, stdout, stderr = main("verify", "-c", path, "--public-key", pubFile, "--to", day(1))
	require.Equal(t, 0, code, stdout+stderr)
	require.Regexp(t, `OK\s+dt=`+day(0), stdout)
	require.NotContains(t, stdout, "dt="+day(1))
	code, stdout, stderr = main("verify", "-c", path, "--public-key", pubFile, "--from", day(1))
	require.Equal(t, 1, code, stdout+stderr)
	require.NotContains(t, stdout, "dt="+day(0))
	require.Regexp(t, `FAIL\s+dt=`+day(1), stdout)
}

// TestRefusalExitStatus: a configuration with other filters on the same
// output is refused with exit status 2 before anything is written.
func TestRefusalExitStatus(t *testing.T) {
	base := startSim(t)
	path := writeConfig(t, base, secretToken, goodConfig)
	from := pastDay(4)
	to := pastDay(3)
	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, Main(t.Context(), []string{"run", "-c", path, "--from", from, "--to", to}, &stdout, &stderr), stderr.String())
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	filtered := strings.Replace(string(b), "  workspace: acme\n", "  workspace: acme\n  filters:\n    event_keys: [user_2fa_fail]\n", 1)
	filtered = strings.Replace(filtered, filepath.Dir(path)+"/state", filepath.Dir(path)+"/state-2fa", 1)
	require.NoError(t, os.WriteFile(path, []byte(filtered), 0o600))
	stderr.Reset()
	code := Main(t.Context(), []string{"run", "-c", path, "--from", from, "--to", to}, &stdout, &stderr)
	require.Equal(t, 2, code, stderr.String())
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	require.Contains(t, lines[len(lines)-1], `source.filters.event_keys: ["user_2fa_fail"] here, [] there`)
	require.Contains(t, lines[len(lines)-1], "pachca-export: sinks[0] ndjson ")
}

// TestVerifyChecksSomething: verify never succeeds having checked nothing.
// A reversed range and --against-api without a token are usage errors, as
// for run, with run's message; a sink directory that does not exist, or a
// range with no exported day, fails.
func TestVerifyChecksSomething(t *testing.T) {
	base := startSim(t)
	path := writeConfig(t, base, secretToken, goodConfig)
	from := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -4)
	day := func(n int) string { return from.AddDate(0, 0, n).Format(time.DateOnly) }
	main := func(args ...string) (int, string, string) { return runMain(t, args...) }
	lastLine := func(s string) string {
		lines := strings.Split(strings.TrimSpace(s), "\n")
		return lines[len(lines)-1]
	}

	// Nothing exported yet: the directory is not there.
	code, stdout, stderr := main("verify", "-c", path)
	require.Equal(t, 1, code, stdout+stderr)
	require.Regexp(t, `FAIL\s+-\s+sinks\[0\] ndjson \S+\s+\S+/out does not exist`, stdout)

	code, _, stderr = main("run", "-c", path, "--from", day(0), "--to", day(1))
	require.Equal(t, 0, code, stderr)

	code, _, runErr := main("run", "-c", path, "--from", day(1), "--to", day(0))
	require.Equal(t, 2, code)
	code, stdout, stderr = main("verify", "-c", path, "--from", day(1), "--to", day(0))
	require.Equal(t, 2, code, stdout+stderr)
	require.Equal(t, lastLine(runErr), lastLine(stderr))
	require.Contains(t, stderr, "must be before --to")

	code, stdout, stderr = main("verify", "-c", path, "--from", day(2), "--to", day(3))
	require.Equal(t, 1, code, stdout+stderr)
	require.Empty(t, stdout)
	require.Equal(t, "pachca-export: verify: nothing to verify from "+day(2)+"T00:00:00Z to "+day(3)+"T00:00:00Z: no sink holds a day of it"+
		" and the state records none as exported (another configuration, or state.dir?)", lastLine(stderr))

	code, stdout, stderr = main("verify", "-c", path, "--from", day(0), "--to", day(1))
	require.Equal(t, 0, code, stdout+stderr)

	noToken := writeConfig(t, base, "", goodConfig)
	code, _, runErr = main("run", "-c", noToken, "--from", day(0), "--to", day(1))
	require.Equal(t, 2, code)
	code, stdout, stderr = main("verify", "-c", noToken, "--against-api")
	require.Equal(t, 2, code, stdout+stderr)
	require.Equal(t, lastLine(runErr), lastLine(stderr))
	require.Contains(t, stderr, "source.token: required")
}

// TestVerifyStreamsOnly: verify of a configuration whose only sink is Kafka
// says that a stream cannot be read back (was: "no sink holds a day and the
// state records none as exported", while the state recorded the day a run
// had just delivered to the topic).
func TestVerifyStreamsOnly(t *testing.T) {
	base := startSim(t)
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "audit"))
	require.NoError(t, err)
	defer kc.Close()
	path := writeConfig(t, base, secretToken, strings.Replace(goodConfig, "  - type: ndjson\n    dir: %DIR%/out\n",
		"  - type: kafka\n    brokers: ["+kc.ListenAddrs()[0]+"]\n    topic: audit\n", 1))
	from := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -4)
	day := func(n int) string { return from.AddDate(0, 0, n).Format(time.DateOnly) }
	code, _, stderr := runMain(t, "run", "-c", path, "--from", day(0), "--to", day(1))
	require.Equal(t, 0, code, stderr)

	for _, args := range [][]string{{}, {"--from", day(0), "--to", day(1)}} {
		code, stdout, stderr := runMain(t, append([]string{"verify", "-c", path}, args...)...)
		require.Equal(t, 1, code, stdout+stderr)
		require.Regexp(t, `SKIP\s+-\s+sinks\[0\] kafka audit\s+a stream: what it received cannot be read back`, stdout)
		require.Equal(t, "pachca-export: verify: nothing to verify: every sink of "+path+" is a stream (kafka, stdout), whose messages cannot be read back; verify checks file and S3 sinks\n", stderr)
	}
}

// TestSigningKeyChecked: check reads the signing key as run does (was: it
// said OK to a key file that was missing, not a key, or readable by every
// user of the host, and the run then stopped on it); a key other users may
// read is refused, since whoever reads it can sign manifests, while one the
// group reads (a Secret mounted for an fsGroup) is accepted. The dry run
// reads it as the run does; check ends on exit status 2 for any of them,
// as the run (was: 1).
func TestSigningKeyChecked(t *testing.T) {
	base := startSim(t)
	key := filepath.Join(t.TempDir(), "signing.pem")
	require.NoError(t, os.WriteFile(key, []byte("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIBObxfyXbWoNP4qpxmqs0H2+5QLZ8tPoftJ6OaSCyLUK\n-----END PRIVATE KEY-----\n"), 0o600))
	path := writeConfig(t, base, secretToken, goodConfig+"signing:\n  private_key_file: "+key+"\n")
	day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -4).Format(time.DateOnly)

	require.NoError(t, os.Chmod(key, 0o644))
	open := "signing.private_key_file: " + key + " is open to other users (mode 0644): whoever reads it can sign manifests as this exporter"
	code, stdout, stderr := runMain(t, "check", "-c", path)
	require.Equal(t, 2, code, "exit 2, as run (was: 1)\n"+stdout+stderr)
	require.Regexp(t, `FAIL\s+signing\s+`+regexp.QuoteMeta(open), stdout)
	code, _, stderr = runMain(t, "run", "-c", path, "--from", day)
	require.Equal(t, 2, code, stderr)
	require.Contains(t, stderr, open)
	// The dry run reads it too, and ends as the run would (was: exit 0, the
	// plan without a word of the key).
	code, stdout, stderr = runMain(t, "run", "-c", path, "--dry-run")
	require.Equal(t, 2, code, stdout+stderr)
	require.Regexp(t, `(?m)^refused +`+regexp.QuoteMeta(open), stdout)
	require.Contains(t, stderr, open)

	require.NoError(t, os.Chmod(key, 0o640))
	code, stdout, stderr = runMain(t, "check", "-c", path)
	require.Equal(t, 0, code, stdout+stderr)
	require.Regexp(t, `OK\s+signing\s+`+regexp.QuoteMeta(key)+`: key [0-9a-f]{16} \(Ed25519\), 0 previous public key\(s\)`, stdout)

	require.NoError(t, os.WriteFile(key, []byte("not a key\n"), 0o600))
	code, stdout, stderr = runMain(t, "check", "-c", path)
	require.Equal(t, 2, code, stdout+stderr)
	require.Regexp(t, `FAIL\s+signing\s+signing.private_key_file: `+regexp.QuoteMeta(key)+`: `, stdout)
	require.NoError(t, os.Remove(key))
	code, stdout, stderr = runMain(t, "check", "-c", path)
	require.Equal(t, 2, code, stdout+stderr)
	require.Regexp(t, `FAIL\s+signing\s+signing.private_key_file: open `+regexp.QuoteMeta(key)+`: no such file`, stdout)

	// A key file that never ends is refused at 64 KiB (was: read until
	// the memory was gone).
	path = writeConfig(t, base, secretToken, goodConfig+"signing:\n  previous_public_key_files: [/dev/zero]\n")
	code, stdout, stderr = runMain(t, "check", "-c", path)
	require.Equal(t, 2, code, stdout+stderr)
	require.Regexp(t, `FAIL\s+signing\s+signing.previous_public_key_files\[0\]: /dev/zero is larger than 64 KiB: not a PEM key`, stdout)
}

// TestVerifyEscapesWhatTheOutputHolds: a name or an event id that whoever
// can write the output put there, with characters a terminal acts on,
// shows escaped in verify's lines and in report's error, never raw (was:
// a file named "x\x1b[2K\rOK ..." erased its own FAIL line on a terminal
// and printed an OK in its place, and an id did the same from inside a
// file).
func TestVerifyEscapesWhatTheOutputHolds(t *testing.T) {
	base := startSim(t)
	path := writeConfig(t, base, secretToken, goodConfig)
	out := filepath.Join(filepath.Dir(path), "out")
	from := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -4)
	day := func(n int) string { return from.AddDate(0, 0, n).Format(time.DateOnly) }
	code, _, stderr := runMain(t, "run", "-c", path, "--from", day(0), "--to", day(2))
	require.Equal(t, 0, code, stderr)
	// What a terminal acts on: C0 controls but the line break, DEL, C1
	// controls, a bidirectional override.
	raw := regexp.MustCompile("[\x00-\x09\x0b-\x1f\x7f\u0080-\u009f\u202e]")

	forged := "x\x1b[2K\r\x1b]0;owned\x07OK \u202eevil.ndjson"
	require.NoError(t, os.WriteFile(filepath.Join(out, "dt="+day(0), forged), []byte("{}\n"), 0o600))
	file := filepath.Join(out, "dt="+day(1), "pachca-audit-"+day(1)+".ndjson")
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	var event map[string]any
	require.NoError(t, json.Unmarshal(bytes.SplitN(b, []byte("\n"), 2)[0], &event))
	event["id"] = "\x1b[1A\x1b[2K\rid"
	line, err := json.Marshal(event)
	require.NoError(t, err)
	b = append(b, append(append(line, '\n'), append(line, '\n')...)...)
	require.NoError(t, os.WriteFile(file, b, 0o600))

	code, stdout, stderr := runMain(t, "verify", "-c", path)
	require.Equal(t, 1, code, stdout+stderr)
	require.NotRegexp(t, raw, stdout+stderr)
	require.Contains(t, stdout, `x\x1b[2K\r\x1b]0;owned\aOK \u202eevil.ndjson is not in the manifest`)
	require.Contains(t, stdout, `event id \x1b[1A\x1b[2K\rid twice in the day`)
	// The same verdicts as JSON keep the name as it is, JSON-escaped.
	code, stdout, _ = runMain(t, "verify", "-c", path, "--format", "json")
	require.Equal(t, 1, code)
	require.Contains(t, stdout, `"x\u001b[2K\r\u001b]0;owned\u0007OK `+"\u202e"+`evil.ndjson is not in the manifest`)

	// An error naming a file the manifest lists, as report's.
	manifest := filepath.Join(out, "dt="+day(1), "_manifest.json")
	m, err := os.ReadFile(manifest)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(manifest, bytes.ReplaceAll(m, []byte(`"pachca-audit-`+day(1)+`.ndjson"`), []byte(`"\u001b[2K\rgone.ndjson"`)), 0o600))
	code, stdout, stderr = runMain(t, "report", "-c", path, "--from", day(0), "--to", day(2), "-o", filepath.Join(t.TempDir(), "r.html"))
	require.Equal(t, 1, code, stdout+stderr)
	require.NotRegexp(t, raw, stdout+stderr)
	require.Contains(t, stderr, `\x1b[2K\rgone.ndjson: damaged: listed in _manifest.json but missing`)
}

// TestHostileTextReachesNoTerminal: events whose names and user agents
// carry markup, terminal escapes, a bidirectional override and line breaks
// (the simulator's HostileText) go through run (the alerts' dry run
// printing them), verify, check and report: nothing a terminal acts on
// reaches stdout or stderr raw, and the report holds the markup as text.
func TestHostileTextReachesNoTerminal(t *testing.T) {
	base := startSim(t, func(c *simulator.Config) { c.Events, c.HostileText = 3000, true })
	path := writeConfig(t, base, secretToken, goodConfig+`alerts:
  rules:
    - name: Watched
      kind: watch
      event_keys: [tag_created, tag_deleted, chat_renamed]
      recipients: ["10001"]
      template: "{{.Rule}} {{.IP}} {{.Details}}"
`)
	from := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -7)
	raw := regexp.MustCompile("[\x00-\x09\x0b-\x1f\x7f\u0080-\u009f\u202e]")
	for _, args := range [][]string{
		{"run", "-c", path, "--from", from.Format(time.DateOnly), "--alerts-dry-run"},
		{"verify", "-c", path},
		{"check", "-c", path},
		{"report", "-c", path, "--from", from.Format(time.DateOnly), "-o", filepath.Join(t.TempDir(), "r.html")},
	} {
		code, stdout, stderr := runMain(t, args...)
		require.Equal(t, 0, code, "%s: %s", args[0], stdout+stderr)
		require.NotRegexp(t, raw, stdout+stderr, args[0])
		if args[0] == "run" {
			require.Contains(t, stdout, `OK forged line"`, "the dry run printed a hostile name")
		}
	}
}
