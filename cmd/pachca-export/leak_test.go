package main

import (
	"bytes"
	"encoding/base64"
	"html"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRedactCatchesEncodedForms: the last line of defence, the redactor of
// everything printed, removes a secret however it was encoded on its way.
func TestRedactCatchesEncodedForms(t *testing.T) {
	tok := `S3CR3T"a\b<c&d>/e+f g?`
	e := &env{}
	e.addSecrets(tok, "")
	for name, form := range map[string]string{
		"raw": tok, "%q": strconv.Quote(tok), "query": url.QueryEscape(tok), "path": url.PathEscape(tok),
		"html": html.EscapeString(tok), "base64": base64.StdEncoding.EncodeToString([]byte(tok)),
	} {
		out := e.redact("error: " + form + ".")
		require.NotContains(t, out, "S3C", name)
		require.Contains(t, out, "[REDACTED]", name)
	}
}

// TestCheckAgainstAnEchoingServer: a server that answers 500 with its
// request's Authorization header after 100 bytes (cut at 120 in the error)
// shows nothing of the token, even one that needs quoting.
func TestCheckAgainstAnEchoingServer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte(strings.Repeat("x", 100) + r.Header.Get("Authorization")))
	}))
	t.Cleanup(srv.Close)
	for _, tok := range []string{"S3CR3TabcdefGHIJKLMNOPQRSTUVWXYZ", `S3CR3T"abc\defGHIJKLMNOP`} {
		path := writeConfig(t, srv.URL, "", strings.Replace(goodConfig, "  token: %TOKEN%\n", "  max_retries: 0\n", 1))
		var stdout, stderr bytes.Buffer
		code := Main(t.Context(), []string{"check", "-c", path, "--token", tok}, &stdout, &stderr)
		out := stdout.String() + stderr.String()
		require.Equal(t, 1, code, out)
		require.Regexp(t, `FAIL\s+token\s+.*server error 500 x+`, out)
		require.NotContains(t, out, "S3C", "a part of the token was printed")
	}
}

// TestBaseURLCredentialsNotPrinted: a password in base_url is shown as
// xxxxx by check, the dry run and the run's logs and errors.
func TestBaseURLCredentialsNotPrinted(t *testing.T) {
	base := startSim(t)
	withUser := strings.Replace(base, "http://", "http://user:pw-SECRET-31@", 1)
	day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -3).Format(time.DateOnly)
	for _, tc := range []struct {
		token string
		args  []string
		code  int
		want  string
	}{
		{secretToken, []string{"check"}, 0, "accepted by http://user:xxxxx@127.0.0.1"},
		{"wrong-token-123456", []string{"check"}, 2, "the API rejected the token"},
		{secretToken, []string{"run", "--dry-run", "--from", day, "--to", day + "T06:00:00Z"}, 0, "dry run"},
		{secretToken, []string{"run", "--log-level", "debug", "--from", day, "--to", day + "T06:00:00Z"}, 0, "delivered"},
		{"wrong-token-123456", []string{"run", "--log-level", "debug", "--log-format", "json", "--from", day, "--to", day + "T06:00:00Z"}, 2, "the API rejected the token"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			path := writeConfig(t, withUser, tc.token, goodConfig)
			var stdout, stderr bytes.Buffer
			code := Main(t.Context(), append(tc.args[:1:1], append([]string{"-c", path}, tc.args[1:]...)...), &stdout, &stderr)
			out := stdout.String() + stderr.String()
			require.Equal(t, tc.code, code, out)
			require.Contains(t, out, tc.want)
			require.NotContains(t, out, "SECRET", "the password of base_url was printed")
		})
	}
}

// TestS3EndpointCredentialsNotPrinted: a user and password in an S3
// sink's endpoint are a configuration error (exit 2) that does not print
// them, in check's and run's lines, and nothing is written with them.
func TestS3EndpointCredentialsNotPrinted(t *testing.T) {
	base := startSim(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: refused
	cfg := strings.Replace(goodConfig, "  - type: ndjson\n    dir: %DIR%/out\n",
		"  - type: s3\n    bucket: audit\n    region: us-east-1\n    endpoint: http://minioadmin:pw-SECRET-42@"+addr+"\n    access_key_id: k\n    secret_access_key: sk-SECRET-43\n    max_attempts: 1\n    timeout: 2s\n", 1)
	day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -3).Format(time.DateOnly)
	for _, args := range [][]string{{"check"}, {"run", "--from", day, "--to", day + "T06:00:00Z"}, {"run", "--log-format", "json", "--from", day, "--to", day + "T06:00:00Z"}} {
		path := writeConfig(t, base, secretToken, cfg)
		code, stdout, stderr := runMain(t, append(args[:1:1], append([]string{"-c", path}, args[1:]...)...)...)
		out := stdout + stderr
		require.Equal(t, 2, code, out)
		require.Contains(t, out, "no user or password in the endpoint")
		require.NotContains(t, out, "SECRET", "a secret of the S3 sink was printed")
		require.NoError(t, filepath.WalkDir(filepath.Dir(path), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || filepath.Base(p) == "pipeline.yaml" {
				return err
			}
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			require.NotContains(t, string(b), "SECRET", p)
			return nil
		}))
	}
}

// TestTokenWithLineBreak: a token with a line break is a configuration
// error at once (exit 2), not minutes of retries of a request that cannot
// be sent.
func TestTokenWithLineBreak(t *testing.T) {
	base := startSim(t)
	day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -3).Format(time.DateOnly)
	t.Setenv("PACHCA_TEST_TOKEN", "tok-SECRET-env\r\n")
	for _, tc := range []struct {
		name, config string
		args         []string
		want         string
	}{
		{"flag", strings.Replace(goodConfig, "  token: %TOKEN%\n", "", 1), []string{"--token", "tok-SECRET-flag\r\nx"}, "--token: holds a control character"},
		{"env", strings.Replace(goodConfig, "%TOKEN%", "${PACHCA_TEST_TOKEN}", 1), nil, "source.token: the value of ${PACHCA_TEST_TOKEN} holds a control character"},
	} {
		for _, cmd := range []string{"run", "check"} {
			t.Run(tc.name+"/"+cmd, func(t *testing.T) {
				path := writeConfig(t, base, "", tc.config)
				args := append([]string{cmd, "-c", path}, tc.args...)
				if cmd == "run" {
					args = append(args, "--from", day, "--to", day+"T06:00:00Z")
				}
				var stdout, stderr bytes.Buffer
				start := time.Now()
				code := Main(t.Context(), args, &stdout, &stderr)
				out := stdout.String() + stderr.String()
				require.Equal(t, 2, code, out)
				require.Less(t, time.Since(start), 5*time.Second, "no retries")
				require.Contains(t, stderr.String(), tc.want)
				require.Len(t, strings.Split(strings.TrimSpace(stderr.String()), "\n"), 1, "one line: %s", out)
				require.NotContains(t, out, "SECRET")
			})
		}
	}
}

// TestTokenInTheWrongArgument: a token given where another argument goes
// (after -c, as an argument of its own, as a --from) is not shown by the
// usage error that names the argument, whether it came from PACHCA_TOKEN or
// from --token (was: `run -c p.yaml $PACHCA_TOKEN` printed it whole).
func TestTokenInTheWrongArgument(t *testing.T) {
	const tok = "S3CR3TabcdefGHIJKLMNOP"
	t.Setenv("PACHCA_TOKEN", tok)
	for _, args := range [][]string{
		{"run", "-c", "p.yaml", tok},
		{"run", "-c", tok},
		{"check", "-c", "p.yaml", "--token", "x", tok},
		{"run", "-c", "p.yaml", "--from", tok, "--to", "2026-11-02"},
	} {
		var stdout, stderr bytes.Buffer
		code := Main(t.Context(), args, &stdout, &stderr)
		require.Equal(t, 2, code, stderr.String())
		require.NotContains(t, stdout.String()+stderr.String(), "S3CR3T", "args %q", args)
		require.Contains(t, stderr.String(), "[REDACTED]", "args %q", args)
	}
	t.Setenv("PACHCA_TOKEN", "")
	var stdout, stderr bytes.Buffer
	require.Equal(t, 2, Main(t.Context(), []string{"run", "--token=" + tok, "-c", "p.yaml", "--from", tok, "--to", "2026-11-02"}, &stdout, &stderr))
	require.NotContains(t, stderr.String(), "S3CR3T")
}
