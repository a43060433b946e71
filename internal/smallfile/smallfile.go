// Package smallfile reads the files that are small by nature (a
// configuration, a token, a key, a manifest) without trusting that they
// are: whatever a path names, a read takes at most a bounded amount of
// memory and never waits for ever.
package smallfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
	"time"
)

// ErrTooLarge is a file that Read stopped reading at its limit.
var ErrTooLarge = errors.New("too large")

// PipeWait is how long Read waits for a process to write into a named pipe
// that none has opened for writing yet.
const PipeWait = 5 * time.Second

// Read reads the file at path whole, or fails with an error wrapping
// ErrTooLarge once it has read more than limit bytes of it (/dev/zero, a
// huge file). check, if not nil, sees what the opened path is before
// anything is read, and may refuse it.
//
// A pipe is read as it is written, to its end: a shell's <(...), or a
// named pipe whose writer starts beside this process. A named pipe that no
// process writes into within PipeWait is an error, not a wait for ever:
// Read opens without blocking, and a pipe without a writer reads as its
// end, so an empty read is tried again until then.
func Read(path string, limit int, check func(fs.FileInfo) error) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if check != nil {
		if err := check(fi); err != nil {
			return nil, err
		}
	}
	deadline := time.Now().Add(PipeWait)
	for {
		b, err := io.ReadAll(io.LimitReader(f, int64(limit)+1))
		if err != nil {
			return nil, err // a *fs.PathError, naming path
		}
		if len(b) > limit {
			return nil, fmt.Errorf("%s: %w", path, ErrTooLarge)
		}
		if len(b) > 0 || fi.Mode()&fs.ModeNamedPipe == 0 {
			return b, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s is a pipe that no process wrote into within %s", path, PipeWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
