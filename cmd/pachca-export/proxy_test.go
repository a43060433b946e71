package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
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

// TestProxyPasswordNotOnReadyz: the error of a failing follow cycle that
// /readyz shows is redacted as the log is: the page of a proxy that
// echoes Proxy-Authorization, answering 502 (a failure the loop retries),
// shows neither the password nor the header's base64 of it (was: the log
// said "Basic [REDACTED]" while /readyz served the header whole to
// whoever could reach follow.listen).
func TestProxyPasswordNotOnReadyz(t *testing.T) {
	const password = "Pr0xy-S3cret"
	bin := buildtest.StaticBinary(t)
	proxy := proxytest.EchoingStatus(t, http.StatusBadGateway)
	dir := t.TempDir()
	path := filepath.Join(dir, "pipeline.yaml")
	require.NoError(t, os.WriteFile(path, []byte("source:\n  base_url: http://api.example.com/api/shared/v1\n  allow_insecure: true\n"+
		"  token: tok-7d3e91b2\n  max_retries: 0\n  filters:\n    event_keys: [user_login]\nsinks:\n  - type: ndjson\n    dir: out\nstate:\n  dir: state\n"), 0o600))
	cmd := exec.CommandContext(t.Context(), bin, "follow", "-c", path, "--listen", "127.0.0.1:0", "--log-format", "json")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HTTP_PROXY=http://corpuser:"+password+"@"+proxy, "http_proxy=", "NO_PROXY=", "no_proxy=")
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// The log, read to its end: the endpoints' address, then the first
	// failed cycle, after which /readyz says why.
	addr, failed, logged := make(chan string, 1), make(chan struct{}), make(chan struct{})
	var log strings.Builder
	go func() {
		defer close(logged)
		sc := bufio.NewScanner(stderr)
		for once := false; sc.Scan(); {
			log.WriteString(sc.Text() + "\n")
			if m := regexp.MustCompile(`"addr":"(127\.0\.0\.1:\d+)"`).FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
			if strings.Contains(sc.Text(), "cycle failed") && !once {
				once = true
				close(failed)
			}
		}
	}()
	var a string
	select {
	case a = <-addr:
	case <-logged:
		t.Fatalf("follow ended before serving:\n%s", log.String())
	}
	select {
	case <-failed:
	case <-logged:
		t.Fatalf("follow ended before a cycle failed:\n%s", log.String())
	}
	resp, err := http.Get("http://" + a + "/readyz")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "%s", body)
	require.Contains(t, string(body), "Proxy-Authorization: Basic [REDACTED]", "the page was echoed")
	require.NotContains(t, string(body), password)
	require.NotContains(t, string(body), base64.StdEncoding.EncodeToString([]byte("corpuser:"+password)))
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	<-logged
	require.NotContains(t, log.String(), base64.StdEncoding.EncodeToString([]byte("corpuser:"+password)))
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
