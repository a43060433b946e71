package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/config"
)

// TestExpandedValuesNotEchoed: a key that takes ${PACHCA_TOKEN} by mistake
// is named in the error with the text written in the file, never with the
// value of the variable.
func TestExpandedValuesNotEchoed(t *testing.T) {
	const tok = `tok-SECRET-"quoted"-9f2c`
	const tail = "sinks:\n  - type: ndjson\n    dir: out\n"
	for _, tc := range []struct{ name, body, want string }{
		{"concurrency", "source:\n  concurrency: ${PACHCA_TOKEN}\n" + tail, `p.yaml:2: source.concurrency: want an integer, got "${PACHCA_TOKEN}"`},
		{"requests_per_second", "source:\n  requests_per_second: ${PACHCA_TOKEN}\n" + tail, `source.requests_per_second: want a number, got "${PACHCA_TOKEN}"`},
		{"allow_insecure", "source:\n  allow_insecure: ${PACHCA_TOKEN}\n" + tail, `source.allow_insecure: want true or false, got "${PACHCA_TOKEN}"`},
		{"timeout", "source:\n  timeout: ${PACHCA_TOKEN}\n" + tail, `source.timeout: invalid duration "${PACHCA_TOKEN}"`},
		{"period.lag", "period:\n  lag: ${PACHCA_TOKEN}\n" + tail, `period.lag: invalid duration "${PACHCA_TOKEN}"`},
		{"period.default", "period:\n  default: ${PACHCA_TOKEN}\n" + tail, `period.default: unknown value "${PACHCA_TOKEN}"`},
		{"period.from", "period:\n  from: x-${PACHCA_TOKEN}\n  to: 2026-11-02\n" + tail, `period.from: invalid time "x-${PACHCA_TOKEN}"`},
		{"compression", tail + "    compression: ${PACHCA_TOKEN}\n", `sinks[0].compression: unknown "${PACHCA_TOKEN}"`},
		{"file_mode", "output:\n  file_mode: ${PACHCA_TOKEN}\n" + tail, `output.file_mode: want an octal mode such as "0640", got "${PACHCA_TOKEN}"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tc.body), "p.yaml", env(map[string]string{"PACHCA_TOKEN": tok}))
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			require.NotContains(t, err.Error(), "SECRET", "the variable's value is in the error")
			require.Len(t, strings.Split(err.Error(), "\n"), 1, "one line: %s", err)
		})
	}
}

// TestTokenWithControlCharacters: a token that cannot be an HTTP header (a
// line break from a copy, a tab) is a configuration error naming where the
// token came from, without the token.
func TestTokenWithControlCharacters(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.yaml")
	const tail = "sinks:\n  - type: stdout\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "token"), []byte("tok-SECRET-1\r\ntok-SECRET-2\n"), 0o600))
	for _, tc := range []struct{ name, source, want string }{
		{"in the file", "  token: \"tok-SECRET\\r\\n\"\n", "p.yaml:2: source.token: holds a control character"},
		{"env", "  token: ${PACHCA_TOKEN}\n", "p.yaml:2: source.token: the value of ${PACHCA_TOKEN} holds a control character"},
		{"tab", "  token: \"tok-SECRET\\tx\"\n", "source.token: holds a control character"},
		{"token_file", "  token_file: token\n", "p.yaml:2: source.token_file: the token in " + filepath.Join(dir, "token") + " holds a control character"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, os.WriteFile(path, []byte("source:\n"+tc.source+tail), 0o600))
			_, err := config.Load(path, env(map[string]string{"PACHCA_TOKEN": "tok-SECRET-3\n"}))
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			require.NotContains(t, err.Error(), "SECRET")
			require.Len(t, strings.Split(err.Error(), "\n"), 1, "one line: %s", err)
		})
	}
	require.NoError(t, config.CheckToken("tok-ÿ-0123"))
	require.Error(t, config.CheckToken("tok\x7f"))
}

// TestTokenByteOrderMark: a token_file saved by a Windows editor (a UTF-8
// byte order mark, CRLF) gives the token without them (was: the mark sent
// as part of the token, and the API's 401 "check the token"); a mark or a
// zero-width space in the token itself (`PACHCA_TOKEN=$(cat file)`, a
// copy from a web page) is a configuration error naming where it came
// from, without the token (was: the same 401).
func TestTokenByteOrderMark(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.yaml")
	const tail = "sinks:\n  - type: stdout\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "token"), []byte("\uFEFFtok-SECRET-1\r\n"), 0o600))
	require.NoError(t, os.WriteFile(path, []byte("source:\n  token_file: token\n"+tail), 0o600))
	cfg, err := config.Load(path, env(nil))
	require.NoError(t, err)
	require.Equal(t, "tok-SECRET-1", cfg.Source.Token)

	for _, v := range []string{"\uFEFFtok-SECRET-2", "tok-\u200bSECRET-3"} {
		require.NoError(t, os.WriteFile(path, []byte("source:\n  token: ${PACHCA_TOKEN}\n"+tail), 0o600))
		_, err = config.Load(path, env(map[string]string{"PACHCA_TOKEN": v}))
		require.ErrorContains(t, err, "p.yaml:2: source.token: the value of ${PACHCA_TOKEN} holds an invisible character")
		require.NotContains(t, err.Error(), "SECRET")
	}
}
