package filesink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/pachca-export/pachca-export/internal/atomicfile"
	"github.com/pachca-export/pachca-export/internal/smallfile"
	"github.com/pachca-export/pachca-export/sinks"
)

// store is the sinks.Store of a directory. Versions are the sha256 of a
// file's content; Put checks it and writes atomically, and is safe against
// other processes only under the root lock (Sink.lock), which every writer
// of this package holds.
type store struct {
	dir               string
	fileMode, dirMode fs.FileMode
}

var _ sinks.Store = store{}

// ReadOnly returns the store of dir, the directory of a file sink, for
// reading what it holds without a sink or a format (the report over a
// directory). Its Put fails and writes nothing; Open gives the files
// themselves (*os.File).
func ReadOnly(dir string) sinks.Store { return readOnly{store{dir: dir}} }

type readOnly struct{ store }

func (r readOnly) Put(_ context.Context, name string, _ []byte, _ string) error {
	return fmt.Errorf("%s: read-only", r.Location(name))
}

func (s store) path(name string) string { return filepath.Join(s.dir, filepath.FromSlash(name)) }

// realDir fails when dir (a directory from the root, "/"-separated) leaves
// the root or is reached through a symbolic link below it. The sink writes,
// lists and removes only in the directories it creates: a link planted as
// a day directory would take the day's files somewhere else, and one
// inside it would let a forged manifest entry have a run remove a file
// anywhere. The root itself may be a link (dir on another disk); a
// directory not there yet is fine: the sink creates it.
func (s store) realDir(dir string) error { return atomicfile.RealDir(s.dir, dir) }

func (s store) Location(name string) string {
	if name == "" {
		return s.dir
	}
	return s.path(name)
}

// Enclosing implements sinks.Enclosed: the marker's name in each directory
// above the root, nearest first.
func (s store) Enclosing(context.Context) string {
	for d := filepath.Dir(s.dir); ; d = filepath.Dir(d) {
		marker := filepath.Join(d, sinks.MarkerName)
		if fi, err := os.Lstat(marker); err == nil && fi.Mode().IsRegular() {
			return marker
		}
		if d == filepath.Dir(d) {
			return ""
		}
	}
}

func (s store) Get(_ context.Context, name string) ([]byte, string, error) {
	b, err := readSmall(s.path(name))
	if err != nil {
		return nil, "", err
	}
	return b, sinks.Sum(b), nil
}

// readSmall reads the manifest or marker at path whole: a regular file of
// at most sinks.MaxSmallObject bytes. Whatever else someone put under the
// name (a link to /dev/zero, a FIFO, a huge file) is refused, not read
// until memory runs out or waited on for ever.
func readSmall(path string) ([]byte, error) {
	b, err := smallfile.Read(path, sinks.MaxSmallObject, func(fi fs.FileInfo) error {
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s is %s, not a file pachca-export wrote: move it away", path, atomicfile.Kind(fi.Mode()))
		}
		return nil
	})
	if errors.Is(err, smallfile.ErrTooLarge) {
		return nil, fmt.Errorf("%s is larger than %d MiB, not a file pachca-export wrote: move it away", path, sinks.MaxSmallObject>>20)
	}
	return b, err
}

func (s store) Put(_ context.Context, name string, body []byte, version string) error {
	if err := s.realDir(path.Dir(name)); err != nil {
		return err
	}
	path := s.path(name)
	cur, err := readSmall(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if version != sinks.NoVersion {
			return fmt.Errorf("%s: %w", path, sinks.ErrChanged)
		}
	case err != nil:
		return err
	case version == sinks.NoVersion || sinks.Sum(cur) != version:
		return fmt.Errorf("%s: %w", path, sinks.ErrChanged)
	}
	if err := atomicfile.MkdirAll(filepath.Dir(path), s.dirMode); err != nil {
		return err
	}
	// A killed write of name left its temporary file: under the root lock
	// no other write of it is at work.
	if err := atomicfile.RemoveStale(filepath.Dir(path), filepath.Base(path)); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(path, body, s.fileMode); err != nil {
		return fmt.Errorf("write %s: %w", path, cause(err))
	}
	return nil
}

func (s store) Days(_ context.Context, dir string) ([]string, error) {
	entries, err := os.ReadDir(s.path(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var days []string
	for _, e := range entries {
		if e.IsDir() && sinks.IsDayDir(e.Name()) {
			days = append(days, e.Name())
		}
	}
	slices.Sort(days)
	return days, nil
}

func (s store) List(_ context.Context, dir string) ([]sinks.Object, error) {
	if err := s.realDir(dir); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(s.path(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []sinks.Object
	for _, e := range entries {
		if !e.Type().IsRegular() || atomicfile.IsTemp(e.Name()) {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // renamed or removed since the directory was read: a writer at work
		}
		if err != nil {
			return nil, err
		}
		out = append(out, sinks.Object{Name: dir + "/" + e.Name(), Size: fi.Size()})
	}
	return out, nil
}

func (s store) Entries(_ context.Context, dir string) ([]sinks.Object, error) {
	entries, err := os.ReadDir(s.path(dir))
	if err != nil {
		return nil, err // *fs.PathError: names the directory, wraps fs.ErrNotExist
	}
	var out []sinks.Object
	for _, e := range entries {
		o := sinks.Object{Name: path.Join(dir, e.Name()), Dir: e.IsDir()}
		if !o.Dir {
			fi, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue // renamed or removed since the directory was read: a writer at work
			}
			if err != nil {
				return nil, err
			}
			o.Size = fi.Size()
		}
		out = append(out, o)
	}
	return out, nil
}

func (s store) Open(_ context.Context, name string) (io.ReadCloser, error) {
	return os.Open(s.path(name))
}

// lock takes the root's lock (an flock of the directory itself: no lock
// file among the data), waiting for another process's commit to finish; the
// returned function releases it.
func (s *Sink) lock(ctx context.Context) (func(), error) {
	if err := atomicfile.MkdirAll(s.dir, s.dirMode); err != nil {
		return nil, err
	}
	f, err := os.Open(s.dir)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", f.Name(), err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
