package main

import (
	"bytes"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/testkit/buildtest"
	"github.com/pachca-export/pachca-export/testkit/proxytest"
)

// TestProxyPasswordNeverWritten: a proxy whose error page quotes the
// request's headers echoes Proxy-Authorization, the base64 of HTTP_PROXY's
// user:password; nothing printed holds it, nor the password (was: check and
// run printed "answered 403: Access denied. ... Proxy-Authorization: Basic
// Y29ycHVzZXI6..."). The real binary, as net/http reads the proxy
// variables once per process.
func TestProxyPasswordNeverWritten(t *testing.T) {
	const password = "Pr0xy-S3cret"
	bin := buildtest.StaticBinary(t)
	proxy := proxytest.Echoing(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "pipeline.yaml")
	require.NoError(t, os.WriteFile(path, []byte("source:\n  base_url: http://api.example.com/api/shared/v1\n  allow_insecure: true\n"+
		"  token: tok-7d3e91b2\n  max_retries: 1\nsinks:\n  - type: ndjson\n    dir: out\nstate:\n  dir: state\n"), 0o600))
	for _, args := range [][]string{
		{"check", "-c", path},
		{"run", "-c", path, "--from", "2026-11-01", "--to", "2026-11-02", "--log-level", "debug"},
		{"run", "-c", path, "--from", "2026-11-01", "--to", "2026-11-02", "--log-format", "json"},
	} {
		cmd := exec.CommandContext(t.Context(), bin, args...)
		cmd.Env = append(os.Environ(), "HTTP_PROXY=http://corpuser:"+password+"@"+proxy, "http_proxy=", "NO_PROXY=", "no_proxy=")
		out, err := cmd.CombinedOutput()
		require.Error(t, err, "%s", out)
		require.Contains(t, string(out), "Proxy-Authorization: Basic [REDACTED]", "the page was echoed")
		require.NotContains(t, string(out), password)
		require.NotContains(t, string(out), base64.StdEncoding.EncodeToString([]byte("corpuser:"+password)))
	}
}

// TestCheckProxies: check shows the proxy each variable names, as net/http
// reads it, and fails one that net/http would ignore or misread (was: not
// shown; a password's unencoded % sent every request directly, and its
// error was the direct way's "lookup ...: no such host").
func TestCheckProxies(t *testing.T) {
	for _, tc := range []struct {
		name string
		vars map[string]string
		want []string
	}{
		{"none", map[string]string{}, nil},
		{"https", map[string]string{"HTTPS_PROXY": "http://corpuser:Pr0xy%25S3cret@proxy.corp.example:3128", "no_proxy": "minio.corp.example"},
			[]string{`OK proxy HTTPS_PROXY http://proxy.corp.example:3128, except for loopback and NO_PROXY "minio.corp.example"`}},
		{"upper case first", map[string]string{"HTTPS_PROXY": "http://a:3128", "https_proxy": "http://b:3128", "http_proxy": "http://c:3128"},
			[]string{`OK proxy HTTPS_PROXY http://a:3128, except for loopback and NO_PROXY ""`, `OK proxy http_proxy http://c:3128, except for loopback and NO_PROXY ""`}},
		{"unencoded %", map[string]string{"https_proxy": "http://corpuser:Pr0xy%S3cret@proxy.corp.example:3128"},
			[]string{"FAIL proxy https_proxy: not a proxy URL as Go reads it, http://[USER:PASSWORD@]HOST:PORT: percent-encode the user's and password's special characters (% as %25, # as %23, / as %2F, ? as %3F, @ as %40, a space as %20)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &env{lookup: func(k string) (string, bool) { v, ok := tc.vars[k]; return v, ok }}
			var got []string
			e.checkProxies(func(ok bool, what, detail string) {
				status := "OK"
				if !ok {
					status = "FAIL"
				}
				got = append(got, status+" "+what+" "+detail)
			})
			require.Equal(t, tc.want, got)
		})
	}
}

// TestMisreadProxyRefused: run, follow and verify refuse a proxy variable
// net/http would misread, in one line that names the variable and quotes
// nothing of its value (was: a password's unencoded / made "1234" of
// "1234/x" the proxy's port; the run went toward a host named by the user
// and failed with both in its error). check and report read it as before.
func TestMisreadProxyRefused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pipeline.yaml")
	require.NoError(t, os.WriteFile(path, []byte("source:\n  base_url: https://api.example.com/api/shared/v1\n"+
		"  token: tok-7d3e91b2\nsinks:\n  - type: ndjson\n    dir: "+filepath.Join(dir, "out")+"\nstate:\n  dir: "+filepath.Join(dir, "state")+"\n"), 0o600))
	t.Setenv("HTTPS_PROXY", "http://corpuser:1234/x@proxy.corp.example:3128")
	t.Setenv("https_proxy", "")
	for _, args := range [][]string{
		{"run", "-c", path, "--from", "2026-11-01", "--to", "2026-11-02"},
		{"follow", "-c", path},
		{"verify", "-c", path, "--against-api"},
	} {
		var stdout, stderr bytes.Buffer
		code := Main(t.Context(), args, &stdout, &stderr)
		require.Equal(t, exitUsage, code, "%v: %s", args, stderr.String())
		out := stdout.String() + stderr.String()
		require.Contains(t, out, "HTTPS_PROXY: not a proxy URL as Go reads it")
		require.Equal(t, 1, strings.Count(strings.TrimSpace(stderr.String()), "\n")+1, "one line: %s", out)
		require.NotContains(t, out, "1234")
		require.NotContains(t, out, "corpuser")
		require.NoDirExists(t, filepath.Join(dir, "state"), "refused before anything was opened")
	}
}
