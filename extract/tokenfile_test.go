package extract_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/extract"
	"github.com/pachca-export/pachca-export/internal/failure"
	"github.com/pachca-export/pachca-export/internal/tokenfile"
	"github.com/pachca-export/pachca-export/simulator"
)

// rewriteKeepingStamp writes tok into path in place and gives the file its
// modification time back: the same inode, size and time, as a rewrite
// within one tick of the file system's clock leaves it.
func rewriteKeepingStamp(t *testing.T, path, tok string) {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, []byte(tok), 0o600))
	require.NoError(t, os.Chtimes(path, fi.ModTime(), fi.ModTime()))
}

// TestTokenFileReadAgainAfter401: a client whose token comes from
// source.token_file reads the file again when the API refuses the token
// (401): a new token there is sent, the request succeeds (GET
// /audit_events, GET /oauth/token/info, POST /messages); with no new token
// the 401 ends the request as before, a usage error that says the file was
// read again (was: the request failed with the token the process started
// with, whatever the file held).
func TestTokenFileReadAgainAfter401(t *testing.T) {
	s, base := sim(t, func(c *simulator.Config) { c.Token = "tok-a-1111" })
	path := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(path, []byte("tok-a-1111\n"), 0o600))
	tf := tokenfile.Watch(path, "tok-a-1111", tokenfile.Options{})
	c := extract.NewClient(extract.ClientConfig{BaseURL: base, Token: "tok-a-1111", TokenFile: tf, MaxRetries: 2, Timeout: 5 * time.Second})
	q := extract.Query{Start: s.Events()[0].CreatedAt, End: s.Events()[0].CreatedAt.Add(time.Hour)}
	_, err := c.Page(t.Context(), q, "")
	require.NoError(t, err)

	for _, step := range []struct {
		old, next string
		call      func() error
	}{
		{"tok-a-1111", "tok-b-2222\n", func() error { _, err := c.Page(t.Context(), q, ""); return err }},
		{"tok-b-2222", "tok-c-3333", func() error { _, err := c.TokenInfo(t.Context()); return err }},
		{"tok-c-3333", "tok-d-4444", func() error {
			return c.Post(t.Context(), "/messages", []byte(`{"message":{"entity_id":1,"content":"hi"}}`))
		}},
	} {
		s.AddToken(step.next[:10], 0)
		rewriteKeepingStamp(t, path, step.next)
		s.RevokeToken(step.old)
		require.NoError(t, step.call(), "after %s was revoked", step.old)
	}
	require.EqualValues(t, 3, tf.Generation())

	s.RevokeToken("tok-d-4444")
	_, err = c.Page(t.Context(), q, "")
	require.ErrorContains(t, err, "the API rejected the token (401")
	require.ErrorContains(t, err, "source.token_file "+path+" was read again after this answer and holds no other token")
	require.True(t, failure.IsUsage(err), "exit 2: %v", err)
}
