package smallfile_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/internal/smallfile"
)

// read is smallfile.Read bounded in time: a read that waits for ever (was:
// a named pipe without a writer) fails the test instead of hanging it.
func read(t *testing.T, path string, limit int, check func(fs.FileInfo) error) ([]byte, error) {
	t.Helper()
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := smallfile.Read(path, limit, check)
		done <- result{b, err}
	}()
	select {
	case r := <-done:
		return r.b, r.err
	case <-time.After(smallfile.PipeWait + 30*time.Second):
		t.Fatalf("reading %s waits for ever", path)
		return nil, nil
	}
}

func TestRead(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(file, []byte("secret\n"), 0o600))
	b, err := read(t, file, 7, nil)
	require.NoError(t, err)
	require.Equal(t, "secret\n", string(b), "a file of exactly the limit is read")

	_, err = read(t, file, 6, nil)
	require.ErrorIs(t, err, smallfile.ErrTooLarge)
	_, err = read(t, "/dev/zero", 1<<10, nil)
	require.ErrorIs(t, err, smallfile.ErrTooLarge, "an endless device stops at the limit")

	_, err = read(t, filepath.Join(dir, "missing"), 10, nil)
	require.ErrorIs(t, err, fs.ErrNotExist)
	_, err = read(t, dir, 10, nil)
	require.ErrorContains(t, err, "is a directory")

	// A named pipe nobody writes into is an error once PipeWait is over,
	// not a wait for ever; one whose writer comes later is read whole.
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	_, err = read(t, fifo, 10, nil)
	require.EqualError(t, err, fifo+" is a pipe that no process wrote into within 5s")
	go func() {
		time.Sleep(smallfile.PipeWait / 5)
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err == nil {
			f.WriteString("late")
			f.Close()
		}
	}()
	b, err = read(t, fifo, 10, nil)
	require.NoError(t, err)
	require.Equal(t, "late", string(b))

	// A pipe being written, as a shell's <(...) gives, is read to its end.
	r, w, err := os.Pipe()
	require.NoError(t, err)
	go func() {
		for range 3 {
			w.WriteString("line\n")
			time.Sleep(20 * time.Millisecond)
		}
		w.Close()
	}()
	b, err = read(t, "/dev/fd/"+strconv.Itoa(int(r.Fd())), 1<<10, nil)
	r.Close()
	require.NoError(t, err)
	require.Equal(t, "line\nline\nline\n", string(b))

	// check sees the opened path first and may refuse it, before a read.
	refused := errors.New("not a regular file")
	_, err = read(t, fifo, 10, func(fi fs.FileInfo) error {
		if !fi.Mode().IsRegular() {
			return refused
		}
		return nil
	})
	require.ErrorIs(t, err, refused)
}
