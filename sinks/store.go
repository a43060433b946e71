package sinks

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"
)

// MaxSmallObject bounds what a Store's Get reads: a manifest lists the files
// of a day, a marker is smaller still; anything larger under their names
// is not pachca-export's (a file planted in the location, a device), and
// reading it whole could take every byte of memory.
const MaxSmallObject = 8 << 20

// Store is the storage under the root of a file-like sink: a directory, or
// a bucket and prefix. Names are relative to the root and use "/":
// "dt=2026-11-01/_manifest.json". The file and S3 sinks implement it; the
// ledger (marker, manifests, chain), `verify` and `report` work through it
// only.
type Store interface {
	// Location names an object for messages: a path or an s3:// URL.
	Location(name string) string
	// Get reads a small object (a manifest, the marker) whole, with its
	// version for Put; an error wrapping fs.ErrNotExist when it is absent,
	// and another when it is larger than MaxSmallObject.
	Get(ctx context.Context, name string) (body []byte, version string, err error)
	// Put replaces name with body atomically, provided it is still at
	// version: what Get returned, or NoVersion for an object that must not
	// exist yet. Otherwise it fails with ErrChanged and writes nothing.
	Put(ctx context.Context, name string, body []byte, version string) error
	// Days lists the day directories ("dt=YYYY-MM-DD") in dir ("" for the
	// root, else a directory ending in "/"), sorted, by their names
	// without dir.
	Days(ctx context.Context, dir string) ([]string, error)
	// List lists the objects of one directory (a day directory, or a
	// directory of the day's data in another layout), sorted by name,
	// without temporary files and subdirectories; none for a directory
	// that does not exist.
	List(ctx context.Context, dir string) ([]Object, error)
	// Entries lists everything in dir ("" for the root, else a directory
	// without a trailing "/"), sorted by name: its objects, temporary files
	// included, and its subdirectories (Dir set), for `verify` to find what
	// does not belong. An error wrapping fs.ErrNotExist when dir is a
	// directory that does not exist; a prefix of S3 with nothing under it
	// lists nothing.
	Entries(ctx context.Context, dir string) ([]Object, error)
	// Open opens an object for reading; an error wrapping fs.ErrNotExist
	// when it is absent. A store of local files returns the *os.File, which
	// LocalFile then reads in place.
	Open(ctx context.Context, name string) (io.ReadCloser, error)
}

// Enclosed is implemented by the stores whose root may lie inside another
// file-like sink's (a directory in a directory, a prefix in a prefix).
type Enclosed interface {
	// Enclosing names the marker of the nearest location around the root
	// that another sink marked as its own, whose readers and verify read
	// everything below it; "" when there is none, or none could be read
	// (a policy that grants the root only).
	Enclosing(ctx context.Context) string
}

// IsDayDir reports whether name is that of a day directory, "dt=YYYY-MM-DD"
// with a valid date: what Store.Days lists.
func IsDayDir(name string) bool {
	date, ok := strings.CutPrefix(name, "dt=")
	if !ok || len(date) != len(time.DateOnly) {
		return false
	}
	_, err := time.Parse(time.DateOnly, date)
	return err == nil
}

// LocalFile gives random access to r, an object opened by Store.Open, for
// readers that need it (Parquet's footer comes first): r itself when it is
// a local file (the file sink's objects), else a copy of it in a temporary
// file in tmpDir ("" for the system's), positioned at its start. seen (a
// hash) is given every byte of the object once, as it is read or copied.
// done closes and removes the copy; r stays the caller's to close.
func LocalFile(r io.Reader, tmpDir string, seen io.Writer) (f *os.File, done func(), err error) {
	if f, ok := r.(*os.File); ok {
		if _, err := io.Copy(seen, f); err != nil {
			return nil, nil, err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, nil, err
		}
		return f, func() {}, nil
	}
	tmp, err := os.CreateTemp(tmpDir, ".pachca-read-*")
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is a random name, never there
		}
		return nil, nil, fmt.Errorf("temporary directory %s takes no copy to read: %w (set the S3 sink's temp_dir, or TMPDIR, to a writable directory)", cmp.Or(tmpDir, os.TempDir()), err)
	}
	done = func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}
	if _, err := io.Copy(io.MultiWriter(tmp, seen), r); err != nil {
		done()
		return nil, nil, err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		done()
		return nil, nil, err
	}
	return tmp, done, nil
}

// Object is one entry of Store.List.
type Object struct {
	Name string // relative to the root: "dt=2026-11-01/pachca-audit-2026-11-01.parquet"
	Size int64
	Dir  bool // a subdirectory (Entries only); Size is then 0
}

// NoVersion is the version of an object that does not exist.
const NoVersion = ""

// ErrChanged means a conditional Put found the object changed since it
// was read: another writer got in between. Read it again and retry.
var ErrChanged = errors.New("changed by another writer")

// Rooted is implemented by file-like sinks: Root is the store their
// partitions are committed to and Layout where in it, for `verify`.
type Rooted interface {
	Root() Store
	Layout() Layout
}
