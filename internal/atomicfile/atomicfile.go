// Package atomicfile writes files so that a crash, a full disk or a kill
// leaves either the old content or the new one under a file's final name,
// never a part: the data goes to a hidden temporary file in the same
// directory, is fsynced, renamed into place, and the directory is fsynced so
// that the rename itself survives a power loss.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// WriteFile writes data to path atomically with mode perm (exactly: the
// umask does not apply).
// After it returns nil, path holds data durably; after an error path holds
// what it held before and no temporary file is left. An error names path,
// not the temporary file.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	f, err := Create(filepath.Dir(path), filepath.Base(path), perm)
	if err != nil {
		return FinalName(err, path)
	}
	if _, err := f.Write(data); err != nil {
		f.Discard()
		return FinalName(err, path)
	}
	return FinalName(f.Commit(path), path)
}

// Replaceable fails when path exists and is not a regular file (a
// directory, a device, a named pipe, a socket, a symbolic link): WriteFile
// and Commit rename a file over whatever is at the final name, so a path
// given by mistake (/dev/null, /dev/stdout) would be replaced, a device
// node of /dev too when running as root. A link is refused whatever it
// names: the rename replaces the link, not its target, so /dev/stdout of a
// process whose stdout is a log file would become the page (was: followed,
// and as root /dev/stdout itself was replaced).
func Replaceable(path string) error {
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode().IsRegular() {
		return nil // absent: written anew; unreadable: the write says why
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		if to, err := os.Readlink(path); err == nil {
			return fmt.Errorf("%s is a symbolic link (to %s), not a file", path, to)
		}
	}
	return fmt.Errorf("%s is %s, not a file", path, Kind(fi.Mode()))
}

// Kind names what a directory entry of mode m is, for a message.
func Kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m.IsRegular():
		return "a file"
	}
	return "not a regular file"
}

// FinalName gives an error about the temporary file of path (its creation,
// a write, the rename) the name path: the one the user knows, and the same
// at each try (a follow loop's retries, a rerun). Other errors are
// returned as they are.
func FinalName(err error, path string) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && IsTemp(filepath.Base(pe.Path)) {
		return &fs.PathError{Op: pe.Op, Path: path, Err: pe.Err}
	}
	var le *os.LinkError
	if errors.As(err, &le) && IsTemp(filepath.Base(le.Old)) {
		return &fs.PathError{Op: le.Op, Path: path, Err: le.Err}
	}
	return err
}

// File is a file being written under a hidden temporary name,
// ".<name>.tmp-<random>", in the directory of its final name. It is used by
// one goroutine. It holds an flock of the file from Create to Rename or
// Discard, so that RemoveStale in another process leaves it alone.
type File struct {
	*os.File
	synced, closed bool
}

// Create opens a new temporary file for name in dir with mode perm. The
// temporary name starts with a dot, so that readers listing the directory
// (and query engines) skip it.
func Create(dir, name string, perm fs.FileMode) (*File, error) {
	for {
		f, err := os.CreateTemp(dir, "."+name+".tmp-*")
		if err != nil {
			return nil, err
		}
		if err := f.Chmod(perm); err != nil {
			f.Close()
			os.Remove(f.Name())
			return nil, err
		}
		// Without the lock (a file system without flock) the file is
		// only unprotected from RemoveStale, as before it had a lock.
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if fi, err := f.Stat(); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink == 0 {
				f.Close() // RemoveStale took it before the lock: another name
				continue
			}
		}
		return &File{File: f}, nil
	}
}

// IsTemp reports whether a directory entry is a temporary file of this
// package (a file being written, or Probe's), which a killed process may
// have left behind.
func IsTemp(name string) bool {
	return strings.HasPrefix(name, ".") && strings.Contains(name, ".tmp-") || strings.HasPrefix(name, ProbePrefix)
}

// ProbePrefix starts the name of the file Probe writes, and of the S3
// sink's probe object: a process killed between writing and removing one
// leaves it behind, a temporary file for IsTemp.
const ProbePrefix = ".pachca-export-check-"

// Probe proves that dir takes a file, as check does before a run would
// find out: it creates one and removes it. When the file cannot be created
// the error is its cause alone (read-only file system, not a directory),
// for the caller to name dir and its role.
func Probe(dir string) error {
	f, err := os.CreateTemp(dir, ProbePrefix+"*")
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return pe.Err
		}
		return err
	}
	f.Close()
	if err := os.Remove(f.Name()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err // gone already: RemoveProbes of a run beside this check
	}
	return nil
}

// RemoveProbes removes the files Probe left in dir when its process was
// killed between creating and removing one. A Probe at work meanwhile does
// not mind losing its file.
func RemoveProbes(dir string) error {
	return removeGlob(filepath.Join(GlobEscape(dir), ProbePrefix+"*"))
}

// RemoveStale removes the temporary files of name in dir that a killed
// process left behind. One a File is writing (a run of another state on the
// same directory) holds its lock and stays.
func RemoveStale(dir, name string) error {
	files, err := filepath.Glob(filepath.Join(GlobEscape(dir), "."+GlobEscape(name)+".tmp-*"))
	if err != nil {
		return err
	}
	for _, p := range files {
		if err := removeUnlocked(p); err != nil {
			return err
		}
	}
	return nil
}

// removeUnlocked removes the file at p unless a File holds its lock; one
// gone meanwhile is not an error.
func removeUnlocked(p string) error {
	if f, err := os.Open(p); err == nil {
		defer f.Close()
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); errors.Is(err, syscall.EWOULDBLOCK) {
			return nil
		}
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// removeGlob removes the files that match pattern; one gone meanwhile is
// not an error.
func removeGlob(pattern string) error {
	files, err := filepath.Glob(pattern)
	if err != nil {
		return err
	}
	for _, p := range files {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// GlobEscape quotes the characters filepath.Match treats specially, for a
// directory or a name that must match as it is in a filepath.Glob pattern:
// a state.dir or sink dir such as "/srv/logs [prod]" (was, unquoted: no
// match, and what a killed process left there never removed).
func GlobEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Finish fsyncs the temporary file; it keeps its temporary name, and stays
// open and locked, until Rename or Discard. Calling it twice is safe.
func (f *File) Finish() error {
	if f.synced || f.closed {
		return nil
	}
	f.synced = true
	return f.Sync()
}

// Rename finishes the file, renames it to path, which must be in the same
// directory, and closes it. The rename is durable only after SyncDir of
// that directory: a caller that renames several files syncs once.
func (f *File) Rename(path string) error {
	if err := f.Finish(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	f.closed = true
	f.Close() // synced: its writes are on disk, and the lock goes with it
	return nil
}

// Commit finishes the file, renames it to path and fsyncs the directory. On
// error the temporary file is removed.
func (f *File) Commit(path string) error {
	if err := f.Rename(path); err != nil {
		f.Discard()
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// Discard closes and removes the temporary file; safe after Commit (it then
// removes nothing) and twice.
func (f *File) Discard() {
	if !f.closed {
		f.closed = true
		f.Close()
	}
	os.Remove(f.Name()) // after a rename this fails harmlessly
}

// SyncDir fsyncs a directory, making the renames and removals in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}

// RealDir fails when dir (a "/"-separated path below root) leaves root or
// is reached through a symbolic link, or anything but a directory, below
// it. A writer that writes, lists and removes only in the directories it
// creates calls it first: a link planted as one of them would take its
// files somewhere else. root itself may be a link (a directory on another
// disk); a directory not there yet is fine: the writer creates it.
func RealDir(root, dir string) error {
	at := root
	for _, seg := range strings.Split(path.Clean(dir), "/") {
		switch seg {
		case ".":
			continue
		case "..":
			return fmt.Errorf("%s lies outside %s", filepath.Join(root, filepath.FromSlash(dir)), root)
		}
		at = filepath.Join(at, seg)
		fi, err := os.Lstat(at)
		if err != nil {
			return nil // not there yet, or not reachable: creating or reading it says why
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s is %s, not a directory the export made: move it away", at, Kind(fi.Mode()))
		}
	}
	return nil
}

// MkdirAll creates dir and any missing parents, each with exactly mode perm
// (the umask does not apply, so that a group granted read access by the
// configuration gets it under a restrictive umask too). A created directory
// keeps the set-group-ID bit it inherits from its parent, so that files
// under a group-owned tree stay in that group, except where the umask took
// bits of perm away and the process is not in that group (see mkdir).
// Existing directories are left as they are.
func MkdirAll(dir string, perm fs.FileMode) error {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return &fs.PathError{Op: "mkdir", Path: dir, Err: syscall.ENOTDIR}
		}
		return nil
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := MkdirAll(parent, perm); err != nil {
			return err
		}
	}
	if err := mkdir(dir, perm); err != nil && !errors.Is(err, fs.ErrExist) {
		return err // fs.ErrExist: made meanwhile by another writer
	}
	return nil
}

// MkdirTemp is os.MkdirTemp(parent, prefix+"*") with the modes of
// MkdirAll: it creates a new directory, prefix followed by random digits,
// with exactly mode perm and the set-group-ID bit of parent.
func MkdirTemp(parent, prefix string, perm fs.FileMode) (string, error) {
	for try := 0; ; try++ {
		dir := filepath.Join(parent, prefix+strconv.FormatUint(uint64(rand.Uint32()), 10))
		err := mkdir(dir, perm)
		if err == nil {
			return dir, nil
		}
		if !errors.Is(err, fs.ErrExist) || try == 100 {
			return "", err
		}
	}
}

// mkdir creates dir with exactly mode perm, keeping the set-group-ID bit it
// inherits from its parent. chmod(2) clears that bit when the process is
// not in the directory's group (a tree group-owned by a log forwarder's
// group, which the exporter's user need not be in; README, "Letting a log
// forwarder read the files"), and the files made below would then be in
// the process's group, unreadable to the forwarder: so the mode is set
// only where the umask took bits of perm away. An error wrapping
// fs.ErrExist means dir was there already.
func mkdir(dir string, perm fs.FileMode) error {
	if err := os.Mkdir(dir, perm); err != nil {
		return err
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if fi.Mode().Perm() == perm.Perm() {
		return nil
	}
	return os.Chmod(dir, perm|fi.Mode()&fs.ModeSetgid)
}
