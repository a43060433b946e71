package sinks_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/sinks"
)

func TestIsDayDir(t *testing.T) {
	for name, want := range map[string]bool{
		"dt=2026-11-01": true, "dt=2028-02-29": true,
		"dt=2026-13-01": false, "dt=2026-11-1": false, "dt=2026-11-01x": false, "dt=garbage": false,
		"2026-11-01": false, "DT=2026-11-01": false, "": false,
	} {
		require.Equal(t, want, sinks.IsDayDir(name), name)
	}
}

// TestLocalFile: a local file is read in place, anything else is copied to
// a temporary file that done removes; either way every byte is seen once.
func TestLocalFile(t *testing.T) {
	body := bytes.Repeat([]byte("parquet footer last\n"), 5000)
	sum := sha256.Sum256(body)
	path := filepath.Join(t.TempDir(), "x.parquet")
	require.NoError(t, os.WriteFile(path, body, 0o600))

	t.Run("local file", func(t *testing.T) {
		in, err := os.Open(path)
		require.NoError(t, err)
		defer in.Close()
		seen := sinks.NewHashWriter(io.Discard)
		f, done, err := sinks.LocalFile(in, t.TempDir(), seen)
		require.NoError(t, err)
		require.Same(t, in, f, "read in place")
		require.Equal(t, hex.EncodeToString(sum[:]), seen.Sum())
		got, err := io.ReadAll(f)
		require.NoError(t, err)
		require.Equal(t, body, got, "positioned at the start")
		done()
	})
	t.Run("stream", func(t *testing.T) {
		tmp := t.TempDir()
		seen := sinks.NewHashWriter(io.Discard)
		f, done, err := sinks.LocalFile(bytes.NewReader(body), tmp, seen)
		require.NoError(t, err)
		require.Equal(t, tmp, filepath.Dir(f.Name()))
		require.Equal(t, hex.EncodeToString(sum[:]), seen.Sum())
		require.Equal(t, int64(len(body)), seen.N)
		got, err := io.ReadAll(f)
		require.NoError(t, err)
		require.Equal(t, body, got, "positioned at the start")
		done()
		entries, err := os.ReadDir(tmp)
		require.NoError(t, err)
		require.Empty(t, entries, "the copy is removed")
	})
	t.Run("broken stream", func(t *testing.T) {
		tmp := t.TempDir()
		broken := io.MultiReader(bytes.NewReader(body[:100]), iotest.ErrReader(errBroken))
		_, _, err := sinks.LocalFile(broken, tmp, io.Discard)
		require.ErrorIs(t, err, errBroken)
		entries, err := os.ReadDir(tmp)
		require.NoError(t, err)
		require.Empty(t, entries, "no partial copy left")
	})
	t.Run("no temporary directory", func(t *testing.T) {
		nope := filepath.Join(t.TempDir(), "nope")
		_, _, err := sinks.LocalFile(bytes.NewReader(body), nope, io.Discard)
		require.ErrorIs(t, err, os.ErrNotExist)
		// What to set, as the S3 sink's check says (was: "open
		// /tmp/.pachca-read-3171895182: read-only file system" of a
		// verify or report under a read-only root).
		require.EqualError(t, err, "temporary directory "+nope+" takes no copy to read: no such file or directory (set the S3 sink's temp_dir, or TMPDIR, to a writable directory)")
		t.Setenv("TMPDIR", nope)
		_, _, err = sinks.LocalFile(bytes.NewReader(body), "", io.Discard)
		require.ErrorContains(t, err, "temporary directory "+nope+" takes no copy")
	})
}

var errBroken = errors.New("connection reset")
