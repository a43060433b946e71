// Package filesink writes each partition to a local file in a Hive-style day
// directory, <dir>/dt=YYYY-MM-DD/<name><ext> (or, in a split layout such as
// Security Lake's, to one file per key in each key's directory), through
// temporary names that are renamed into place only once every file is
// complete, and keeps the day's _manifest.json up to date.
package filesink

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pachca-export/pachca-export/internal/atomicfile"
	"github.com/pachca-export/pachca-export/internal/failure"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/split"
	"github.com/pachca-export/pachca-export/transform"
)

// Default modes: the files are evidence, readable by their owner only.
const (
	DefaultFileMode fs.FileMode = 0o600
	DefaultDirMode  fs.FileMode = 0o750
)

// Sink writes files of one format under one directory.
type Sink struct {
	dir      string
	ledger   *sinks.Ledger
	format   sinks.Format
	layout   sinks.Layout
	fileMode fs.FileMode
	dirMode  fs.FileMode
	// noExchange takes the path of file systems that cannot exchange two
	// directories atomically (tests).
	noExchange bool
	// access is faccessat(2) with the effective ids: nil when this process
	// may use path so (unix.R_OK, W_OK, X_OK). Tests, run as root whom no
	// mode stops, deny with their own.
	access func(path string, mode uint32) error
	// refuse, when set (tests), fails a rename onto path (op "rename") or
	// a removal of path ("remove") before it is tried, as a write-once
	// (WORM) file system refuses to replace or remove a file.
	refuse func(op, path string) error
}

// Option adjusts a Sink built by New.
type Option func(*Sink)

// WithModes sets the exact mode (the umask does not apply) of the data
// files and manifests, and of the directories the sink creates; a zero
// mode keeps the default (DefaultFileMode, DefaultDirMode). Directories
// that already exist are left as they are.
func WithModes(file, dir fs.FileMode) Option {
	return func(s *Sink) {
		if file != 0 {
			s.fileMode = file
		}
		if dir != 0 {
			s.dirMode = dir
		}
	}
}

var (
	_ sinks.Claimer = (*Sink)(nil)
	_ sinks.Holder  = (*Sink)(nil)
	_ sinks.Rooted  = (*Sink)(nil)
	_ sinks.Linker  = (*Sink)(nil)
)

// WithLayout places the files by l instead of the daily layout.
func WithLayout(l sinks.Layout) Option {
	return func(s *Sink) { s.layout = l }
}

// New returns a sink writing f files under dir; it does no I/O.
func New(dir string, f sinks.Format, opts ...Option) *Sink {
	s := &Sink{dir: dir, format: f, fileMode: DefaultFileMode, dirMode: DefaultDirMode, access: effectiveAccess}
	for _, o := range opts {
		o(s)
	}
	s.ledger = sinks.NewLedger(s.Root(), f, s.layout)
	return s
}

// Root is the directory, as a sinks.Store.
func (s *Sink) Root() sinks.Store { return s.store() }

func (s *Sink) store() store { return store{dir: s.dir, fileMode: s.fileMode, dirMode: s.dirMode} }

// Layout is where the files go under the directory.
func (s *Sink) Layout() sinks.Layout { return s.layout }

// path is the local path of rel, a path from the root.
func (s *Sink) path(rel string) string { return filepath.Join(s.dir, filepath.FromSlash(rel)) }

// Claim implements sinks.Claimer, under the root's lock when it writes;
// then it also removes what a process killed while compacting a day, or
// while Check's probe was in place, left.
func (s *Sink) Claim(ctx context.Context, c sinks.Claim) (sinks.ClaimResult, error) {
	if err := s.notADir(); err != nil {
		return sinks.ClaimResult{}, err
	}
	if c.Create {
		unlock, err := s.lock(ctx)
		if err != nil {
			return sinks.ClaimResult{}, fmt.Errorf("%s: %w", s.format.Name, err)
		}
		defer unlock()
		if err := s.removeStaleStages(); err != nil {
			return sinks.ClaimResult{}, fmt.Errorf("%s: %w", s.format.Name, err)
		}
		if err := atomicfile.RemoveProbes(s.dir); err != nil {
			return sinks.ClaimResult{}, fmt.Errorf("%s: remove what a check killed at work left: %w", s.format.Name, err)
		}
	}
	return s.ledger.Claim(ctx, c)
}

// Relink implements sinks.Linker, under the root's lock.
func (s *Sink) Relink(ctx context.Context, p sinks.Partition) error {
	unlock, err := s.lock(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", s.format.Name, err)
	}
	defer unlock()
	if err := s.ledger.Relink(ctx, p); err != nil {
		return fmt.Errorf("%s: relink the manifests after %s: %w", s.format.Name, p.Dir(), err)
	}
	return nil
}

// Existing implements sinks.Holder.
func (s *Sink) Existing(ctx context.Context, p sinks.Partition) (int64, bool, error) {
	return s.ledger.Existing(ctx, p)
}

// Name identifies the sink in logs.
func (s *Sink) Name() string { return s.format.Name + " " + s.dir }

// Close has nothing to release.
func (s *Sink) Close(context.Context) error { return nil }

// Check creates the directory if needed and proves it writable.
func (s *Sink) Check(ctx context.Context) error {
	if err := s.notADir(); err != nil {
		return err
	}
	if err := atomicfile.MkdirAll(s.dir, s.dirMode); err != nil {
		return fmt.Errorf("%s: %w", s.format.Name, err)
	}
	if err := atomicfile.Probe(s.dir); err != nil {
		return fmt.Errorf("%s: directory %s is not writable: %w", s.format.Name, s.dir, err)
	}
	if err := s.closedDays(ctx); err != nil {
		return fmt.Errorf("%s: %w", s.format.Name, err)
	}
	return nil
}

// closedDays fails when a day directory, or its manifest, is closed to
// this process: written by a run as another user (root, by hand), it
// would fail a delivery once the whole period was fetched, since a day's
// delivery reads the manifest of the day before, and replaces or relinks
// the files of its own and later days. Two calls a day directory.
func (s *Sink) closedDays(ctx context.Context) error {
	days, err := s.store().Days(ctx, s.layout.Meta)
	if err != nil {
		return err
	}
	var closed []string
	var first error
	for _, d := range days {
		dir := s.path(s.layout.Meta + d)
		err := s.access(dir, unix.W_OK|unix.X_OK)
		if err == nil {
			err = s.access(s.path(s.layout.ManifestName(d)), unix.R_OK)
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) { // none yet, or removed meanwhile
			closed = append(closed, d)
			first = cmp.Or(first, err)
		}
	}
	switch len(closed) {
	case 0:
		return nil
	case 1:
		return fmt.Errorf("the day directory %s is closed to this process (written by another user?): %w", closed[0], first)
	default:
		return fmt.Errorf("%d day directories, %s .. %s, are closed to this process (written by another user?): %w", len(closed), closed[0], closed[len(closed)-1], first)
	}
}

// effectiveAccess is faccessat(2) of path with the effective user and
// group ids, as an error naming path.
func effectiveAccess(path string, mode uint32) error {
	if err := unix.Faccessat(unix.AT_FDCWD, path, mode, unix.AT_EACCESS); err != nil {
		return &fs.PathError{Op: "access", Path: path, Err: err}
	}
	return nil
}

// notADir fails when dir is there but no directory (a file, a device), a
// mistake in the configuration (a usage error: exit 2, and a dry run's
// refused line): its errors would otherwise name a path below it ("open
// DIR/_pachca-export.json: not a directory").
func (s *Sink) notADir() error {
	if fi, err := os.Stat(s.dir); err == nil && !fi.IsDir() {
		return failure.Usagef("%s: %s is %s, not a directory: give the sink a directory (dir), or move the file away", s.format.Name, s.dir, atomicfile.Kind(fi.Mode()))
	}
	return nil
}

// Open starts the partition's files under hidden temporary names: the day
// file in its day directory, or in a split layout one file per key, each
// created with its key's first record.
func (s *Sink) Open(ctx context.Context, p sinks.Partition) (sinks.Writer, error) {
	w := &writer{s: s, p: p}
	enc, err := split.NewFiles(s.layout, s.format, p, w.create)
	w.enc = enc
	if err != nil {
		w.discard()
		if len(w.files) > 0 {
			// The file was created and its encoder failed to start it (a
			// Parquet file's magic bytes on a full disk): name it as a
			// failed write does. A create error names it already.
			err = w.fileErr(err)
		}
		return nil, err
	}
	return w, nil
}

// writer delivers one partition; used by one goroutine.
type writer struct {
	s     *Sink
	p     sinks.Partition
	enc   *split.Files
	files []*atomicfile.File // in the order of enc.Outputs()
	un    sinks.Unexported
	done  bool
}

// SetUnexported implements sinks.UnexportedRecorder.
func (w *writer) SetUnexported(u sinks.Unexported) { w.un = u }

// create is the split.Create of the writer: a temporary file in the
// directory of rel (a path from the root), created as needed.
func (w *writer) create(rel string) (io.Writer, error) {
	if err := w.s.store().realDir(path.Dir(rel)); err != nil {
		return nil, fmt.Errorf("%s: %w", w.s.format.Name, err)
	}
	final := w.s.path(rel)
	if err := atomicfile.MkdirAll(filepath.Dir(final), w.s.dirMode); err != nil {
		return nil, fmt.Errorf("%s: %w", w.s.format.Name, err)
	}
	// A killed run may have left a temporary file of this name: readers
	// globbing *.ndjson* would see it. The root is not locked while data
	// is written: one that a run of another state on this directory is
	// writing holds its lock and stays.
	if err := atomicfile.RemoveStale(filepath.Dir(final), filepath.Base(final)); err != nil {
		return nil, fmt.Errorf("%s: %w", w.s.format.Name, err)
	}
	f, err := atomicfile.Create(filepath.Dir(final), filepath.Base(final), w.s.fileMode)
	if err != nil {
		return nil, fmt.Errorf("%s: create %s: %w", w.s.format.Name, final, cause(err))
	}
	w.files = append(w.files, f)
	return f, nil
}

// discard removes every temporary file.
func (w *writer) discard() {
	for _, f := range w.files {
		f.Discard()
	}
}

// fileErr names the file being written by its final name: the user never
// sees the hidden temporary one, so an error about it reads as its cause
// ("no space left on device").
func (w *writer) fileErr(err error) error {
	outs := w.enc.Outputs()
	var pe *fs.PathError
	var le *os.LinkError // its rename into place
	for i, f := range w.files {
		var cause error
		switch {
		case errors.As(err, &pe) && pe.Path == f.Name():
			cause = pe.Err
		case errors.As(err, &le) && le.Old == f.Name():
			cause = le.Err
		default:
			continue
		}
		return fmt.Errorf("%s: write %s: %w", w.s.format.Name, w.s.path(outs[i].Path), cause)
	}
	if w.s.layout.Split == nil && len(outs) == 1 {
		return fmt.Errorf("%s: write %s: %w", w.s.format.Name, w.s.path(outs[0].Path), err)
	}
	return fmt.Errorf("%s: %s: %w", w.s.format.Name, w.p.Dir(), err)
}

// cause drops the path of an error about a temporary file, for a message
// that names the final one.
func cause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func (w *writer) Write(ctx context.Context, recs []transform.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := w.enc.Write(recs); err != nil {
		return w.fileErr(err)
	}
	return nil
}

// Commit finishes the files, fsyncs them, renames them into place and
// updates the day's manifest. Everything that needs room (the data and the
// new manifest) is written to temporary files first, so that a full disk
// fails the commit before anything takes a final name; a failed commit
// leaves no file of the partition under its final name.
func (w *writer) Commit(ctx context.Context) (sinks.Result, error) {
	if w.done {
		return sinks.Result{}, errors.New("filesink: commit after commit or abort")
	}
	w.done = true
	fail := func(err error) (sinks.Result, error) {
		w.discard()
		return sinks.Result{}, w.fileErr(err)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	if err := w.enc.Close(); err != nil {
		return fail(err)
	}
	outs := w.enc.Outputs()
	res := sinks.Result{}
	entries := make([]sinks.ManifestFile, len(outs))
	now := time.Now().UTC()
	for i, o := range outs {
		if err := w.files[i].Finish(); err != nil {
			return fail(err)
		}
		entries[i] = sinks.ManifestFile{
			Name: sinks.EntryName(w.p.Dir(), o.Path), From: w.p.From, To: w.p.To, Records: o.Records,
			Bytes: o.Hash.N, SHA256: o.Hash.Sum(), RunID: w.p.RunID, WrittenAt: now, Part: w.p.Part,
		}
		res.Records += o.Records
		res.Bytes += o.Hash.N
		res.Files = append(res.Files, w.s.path(o.Path))
	}
	sinks.SetUnexported(entries, w.un)
	manifestDir := w.s.path(w.s.layout.Meta + w.p.Dir())
	manifest := filepath.Join(manifestDir, sinks.ManifestName)
	failManifest := func(err error) (sinks.Result, error) {
		w.discard()
		return sinks.Result{}, fmt.Errorf("%s: manifest %s: %w", w.s.format.Name, manifest, err)
	}
	if err := w.s.store().realDir(w.s.layout.Meta + w.p.Dir()); err != nil {
		return failManifest(err)
	}
	unlock, err := w.s.lock(ctx)
	if err != nil {
		return failManifest(err)
	}
	defer unlock()
	// The lock keeps other writers out: the version is not needed.
	next, err := w.s.ledger.Prepare(ctx, w.p, entries...)
	if err != nil {
		w.discard()
		return sinks.Result{}, fmt.Errorf("%s: %w", w.s.format.Name, err)
	}
	if err := atomicfile.MkdirAll(manifestDir, w.s.dirMode); err != nil {
		return failManifest(err)
	}
	// As for data files: a killed run may have left temporary manifests.
	if err := atomicfile.RemoveStale(manifestDir, sinks.ManifestName); err != nil {
		return failManifest(err)
	}
	mf, err := atomicfile.Create(manifestDir, sinks.ManifestName, w.s.fileMode)
	if err != nil {
		return failManifest(cause(err))
	}
	if _, err := mf.Write(next.Body); err != nil {
		mf.Discard()
		return failManifest(cause(err))
	}
	if err := mf.Finish(); err != nil {
		mf.Discard()
		return failManifest(cause(err))
	}
	if w.p.Compact && w.s.layout.Split == nil {
		if err := w.swapDay(mf, path.Base(outs[0].Path)); err != nil {
			mf.Discard()
			if failure.IsPermanent(err) { // the day is in place: no write failed
				w.discard()
				return sinks.Result{}, fmt.Errorf("%s: %w", w.s.format.Name, err)
			}
			return fail(err)
		}
		return res, nil
	}
	if err := w.publish(mf, manifest, next.Replaced); err != nil {
		return sinks.Result{}, err
	}
	res.Overlaps = next.Overlaps
	return res, nil
}

// publish renames the finished files and then the manifest mf into place,
// removes the files the manifest no longer lists (replaced) and syncs the
// directories it changed.
func (w *writer) publish(mf *atomicfile.File, manifest string, replaced []string) error {
	outs := w.enc.Outputs()
	dirs := []string{filepath.Dir(manifest)}
	// The files renamed in under names that were free: only those are
	// taken back out on failure. A name that held a file before holds
	// one the old manifest lists (or one a killed run left): removing it
	// would lose a day the state records as exported.
	var added []string
	for i, o := range outs {
		final := w.s.path(o.Path)
		_, err := os.Lstat(final)
		free := errors.Is(err, fs.ErrNotExist)
		if holdsSame(final, w.files[i], o.Hash) {
			// Kept as it is: a new inode under a name a log forwarder
			// has read would be read again from its start.
			w.files[i].Discard()
		} else if err := w.s.rename(w.files[i], final); err != nil {
			mf.Discard()
			return w.unpublish(w.fileErr(err), added)
		} else if free {
			added = append(added, final)
		}
		dirs = append(dirs, filepath.Dir(final))
	}
	if err := w.s.rename(mf, manifest); err != nil {
		// Data files no manifest lists are not delivered: take them back out.
		mf.Discard()
		return w.unpublish(fmt.Errorf("%s: manifest %s: %w", w.s.format.Name, manifest, cause(atomicfile.FinalName(err, manifest))), added)
	}
	for _, name := range replaced {
		rel := sinks.EntryPath(w.p.Dir(), name)
		if err := w.s.store().realDir(path.Dir(rel)); err != nil {
			return fmt.Errorf("%s: remove %s, which %s no longer lists: %w", w.s.format.Name, name, manifest, err)
		}
		p := w.s.path(rel)
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s: remove %s, which %s no longer lists: %w", w.s.format.Name, p, manifest, err)
		}
		dirs = append(dirs, filepath.Dir(p))
	}
	slices.Sort(dirs)
	for _, d := range slices.Compact(dirs) {
		if err := atomicfile.SyncDir(d); err != nil {
			return fmt.Errorf("%s: sync %s: %w", w.s.format.Name, d, err)
		}
	}
	return nil
}

// holdsSame reports whether the file at final holds already what f, written
// through h, holds: the same bytes, mode and owner. So it does when a follow
// cycle is redone (a kill, another sink failing) or a range is exported
// again unchanged. Filebeat and Fluent Bit track a file by its inode and read
// a new inode at a known name from its start, every event again: such a file
// is kept rather than replaced by its equal. Anything else, or a file that
// cannot be read, is replaced as before.
func holdsSame(final string, f *atomicfile.File, h *sinks.HashWriter) bool {
	old, err := os.Lstat(final)
	if err != nil || !old.Mode().IsRegular() || old.Size() != h.N {
		return false
	}
	tmp, err := f.Stat()
	if err != nil || tmp.Mode() != old.Mode() || !sameOwner(old, tmp) {
		return false
	}
	r, err := os.Open(final)
	if err != nil {
		return false
	}
	defer r.Close()
	sum := sinks.NewHashWriter(io.Discard)
	if _, err := io.Copy(sum, r); err != nil {
		return false
	}
	return sum.Sum() == h.Sum()
}

// sameOwner reports whether a and b have the same owner and group (true
// where the system does not tell).
func sameOwner(a, b fs.FileInfo) bool {
	sa, ok := a.Sys().(*syscall.Stat_t)
	sb, ok2 := b.Sys().(*syscall.Stat_t)
	return !ok || !ok2 || sa.Uid == sb.Uid && sa.Gid == sb.Gid
}

// unpublish fails the commit with err: it removes the files publish
// renamed in under free names (added) and discards the temporary ones. A
// file it cannot remove (a write-once directory) is named in the error:
// it stays, listed by no manifest, where readers find it.
func (w *writer) unpublish(err error, added []string) error {
	w.discard()
	var left []string
	for _, p := range added {
		if err := w.s.remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			left = append(left, p)
		}
	}
	if len(left) == 0 {
		return err
	}
	return fmt.Errorf("%w; %s stays, listed by no manifest: it could not be removed (a write-once directory? "+
		"the file sink needs one where it may replace and remove its files)", err, strings.Join(left, ", "))
}

// rename renames f to path (atomicfile.File.Rename), unless refuse does.
func (s *Sink) rename(f *atomicfile.File, path string) error {
	if s.refuse != nil {
		if err := s.refuse("rename", path); err != nil {
			return &os.LinkError{Op: "rename", Old: f.Name(), New: path, Err: err}
		}
	}
	return f.Rename(path)
}

// removeAll removes path and what it holds (os.RemoveAll), unless refuse
// does for path or an entry in it.
func (s *Sink) removeAll(path string) error {
	if s.refuse != nil {
		err := filepath.WalkDir(path, func(p string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if err := s.refuse("remove", p); err != nil {
				return &fs.PathError{Op: "unlinkat", Path: p, Err: err}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return os.RemoveAll(path)
}

// remove removes path, unless refuse does.
func (s *Sink) remove(path string) error {
	if s.refuse != nil {
		if err := s.refuse("remove", path); err != nil {
			return &fs.PathError{Op: "remove", Path: path, Err: err}
		}
	}
	return os.Remove(path)
}

// Abort removes the temporary files; no final name is ever touched.
func (w *writer) Abort(context.Context) error {
	if w.done {
		return nil
	}
	w.done = true
	_ = w.enc.Close() // releases the encoders' buffers; the output is discarded
	w.discard()
	return nil
}
