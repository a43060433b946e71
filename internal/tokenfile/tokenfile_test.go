package tokenfile

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/testkit/logbuf"
)

// replace writes content into path the way an editor or `install` does: a
// new file renamed over the old one.
func replace(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(content), 0o600))
	require.NoError(t, os.Rename(tmp, path))
}

// swapLink writes content the way the kubelet updates a mounted Secret: a
// new directory, the symbolic link ..data swapped to it by a rename, the
// old directory removed; the token file is a link through ..data.
func swapLink(t *testing.T, dir, name, content string) {
	t.Helper()
	gen, err := os.MkdirTemp(dir, "..gen_")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(gen, name), []byte(content), 0o600))
	old, _ := os.Readlink(filepath.Join(dir, "..data"))
	require.NoError(t, os.Symlink(filepath.Base(gen), filepath.Join(dir, "..data_tmp")))
	require.NoError(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	if old != "" {
		require.NoError(t, os.RemoveAll(filepath.Join(dir, old)))
	}
}

// watched starts a File on path, whose content is the token first; seen
// gathers the tokens told, log the warnings.
func watched(t *testing.T, path, first string) (*File, *[]string, *logbuf.Buffer) {
	t.Helper()
	var log logbuf.Buffer
	var seen []string
	f := Watch(path, first, Options{Seen: func(tok string) { seen = append(seen, tok) }, Log: slog.New(slog.NewTextHandler(&log, nil))})
	require.NotNil(t, f)
	return f, &seen, &log
}

// TestFileReadsOnChangeOnly: many goroutines take the token at once (run
// under -race); the file is read once for the first stamp and then only
// when it changes, each change once however many callers see it.
func TestFileReadsOnChangeOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(path, []byte("tok-a\n"), 0o600))
	f, seen, _ := watched(t, path, "tok-a")
	many := func(want string) {
		t.Helper()
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				for range 200 {
					if got := f.Token(); got != want {
						t.Errorf("token %q, want %q", got, want)
						return
					}
					_ = f.Scrubber().String("x")
				}
			})
		}
		wg.Wait()
	}
	many("tok-a")
	require.EqualValues(t, 1, f.reads.Load(), "read once, for the stamp it was not read with")
	require.Zero(t, f.Generation())

	replace(t, path, "tok-b\r\n")
	many("tok-b")
	require.EqualValues(t, 2, f.reads.Load(), "a change is read once")
	require.EqualValues(t, 1, f.Generation())
	require.Equal(t, []string{"tok-a", "tok-b"}, *seen, "told before it is used")
	require.Equal(t, "[REDACTED] [REDACTED]", f.Scrubber().String("tok-a tok-b"), "every token the file held")
}

// TestFileSymlinkSwap: a token file mounted from a Kubernetes Secret (a
// link through ..data, swapped to a new directory) is followed.
func TestFileSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	swapLink(t, dir, "token", "tok-a")
	path := filepath.Join(dir, "token")
	require.NoError(t, os.Symlink(filepath.Join("..data", "token"), path))
	f, _, _ := watched(t, path, "tok-a")
	require.Equal(t, "tok-a", f.Token())
	swapLink(t, dir, "token", "tok-b")
	require.Equal(t, "tok-b", f.Token())
	require.Equal(t, "tok-b", f.Token())
	require.EqualValues(t, 2, f.reads.Load())
}

// TestFileKeepsTheLastGoodToken: a new content that is no token (empty, a
// byte order mark only, a zero-width space, past MaxSize), or a file gone
// for a moment, leaves the last good token in use, with one warning per
// content that never shows the token; the next good content is read.
func TestFileKeepsTheLastGoodToken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(path, []byte("tok-a"), 0o600))
	f, seen, log := watched(t, path, "tok-a")
	for _, tc := range []struct{ name, content, warning string }{
		{"empty", "", "is empty"},
		{"byte order mark only", "\uFEFF\r\n", "is empty"},
		{"zero-width space", "tok-\u200bb", "holds an invisible character"},
		{"line break inside", "tok-b\ntok-c", "holds a control character"},
		{"too large", strings.Repeat("x", MaxSize+1), "larger than 64 KiB"},
		{"a named pipe", "", "is no regular file any more"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := strings.Count(log.String(), "level=WARN")
			if tc.name == "a named pipe" {
				require.NoError(t, os.Remove(path))
				require.NoError(t, syscall.Mkfifo(path, 0o600))
			} else {
				replace(t, path, tc.content)
			}
			for range 5 {
				require.Equal(t, "tok-a", f.Token())
			}
			require.Equal(t, "tok-a", f.Reread(), "read again, still no token")
			require.Equal(t, before+1, strings.Count(log.String(), "level=WARN"), "one warning: %s", log)
			require.Contains(t, log.String(), tc.warning)
		})
	}
	require.NoError(t, os.Remove(path))
	require.Equal(t, "tok-a", f.Token(), "a file gone for a moment")
	require.Equal(t, "tok-a", f.Token())
	replace(t, path, "tok-b")
	require.Equal(t, "tok-b", f.Token())
	require.Equal(t, []string{"tok-a", "tok-b"}, *seen)
	require.NotContains(t, log.String(), "tok-b")
	require.NotContains(t, log.String(), "tok-\u200bb")
	require.Equal(t, 1, strings.Count(log.String(), "no such file"), "said once: %s", log)
}

// TestFileRereadSeesAnUnchangedStamp: Reread reads the file even when its
// stamp did not move (rewritten in place within one tick of the clock of
// the file system), as after the API refused the token.
func TestFileRereadSeesAnUnchangedStamp(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(path, []byte("tok-a"), 0o600))
	f, _, _ := watched(t, path, "tok-a")
	require.Equal(t, "tok-a", f.Token())
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, []byte("tok-b"), 0o600))
	require.NoError(t, os.Chtimes(path, fi.ModTime(), fi.ModTime()))
	require.Equal(t, "tok-a", f.Token(), "the same stamp: not read")
	require.Equal(t, "tok-b", f.Reread())
	require.Equal(t, "tok-b", f.Token())
}

// TestWatchNotARegularFile: a pipe is read once, not watched.
func TestWatchNotARegularFile(t *testing.T) {
	require.Nil(t, Watch(os.DevNull, "tok-a", Options{}))
	require.Nil(t, Watch(filepath.Join(t.TempDir(), "missing"), "tok-a", Options{}))
}
