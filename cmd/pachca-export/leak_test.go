package main

import (
	"bytes"
	"encoding/base64"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

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
