// Package filesink writes each partition to a local file in a Hive-style day
// directory, <dir>/dt=YYYY-MM-DD/<name><ext>, through a temporary name that is
// renamed into place only once the file is complete, and keeps the day's
// _manifest.json up to date.
package filesink

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/pachca-export/pachca-export/internal/atomicfile"
	"github.com/pachca-export/pachca-export/sinks"
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
	fileMode fs.FileMode
	dirMode  fs.FileMode
	// noExchange takes the path of file systems that cannot exchange two
	// directories atomically (tests).
	noExchange bool
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

// New returns a sink writing f files under dir; it does no I/O.
func New(dir string, f sinks.Format, opts ...Option) *Sink {
	s := &Sink{dir: dir, format: f, fileMode: DefaultFileMode, dirMode: DefaultDirMode}
	for _, o := range opts {
		o(s)
	}
	s.ledger = sinks.NewLedger(s.Root(), f)
	return s
}

// Root is the directory, as a sinks.Store.
func (s *Sink) Root() sinks.Store { return store{dir: s.dir, fileMode: s.fileMode, dirMode: s.dirMode} }

// Claim implements sinks.Claimer, under the root's lock when it writes.
func (s *Sink) Claim(ctx context.Context, c sinks.Claim) (sinks.ClaimResult, error) {
	if c.Create {
		unlock, err := s.lock(ctx)
		if err != nil {
			return sinks.ClaimResult{}, fmt.Errorf("%s: %w", s.format.Name, err)
		}
		defer unlock()
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
	if err := atomicfile.MkdirAll(s.dir, s.dirMode); err != nil {
		return fmt.Errorf("%s: %w", s.format.Name, err)
	}
	f, err := os.CreateTemp(s.dir, ".pachca-export-check-*")
	if err != nil {
		return fmt.Errorf("%s: directory %s is not writable: %w", s.format.Name, s.dir, errors.Unwrap(err))
	}
	f.Close()
	return os.Remove(f.Name())
}

// Open creates the day directory and a hidden temporary file in it.
func (s *Sink) Open(ctx context.Context, p sinks.Partition) (sinks.Writer, error) {
	dayDir := filepath.Join(s.dir, p.Dir())
	if err := atomicfile.MkdirAll(dayDir, s.dirMode); err != nil {
		return nil, fmt.Errorf("%s: %w", s.format.Name, err)
	}
	final := p.BaseName() + s.format.Ext
	f, err := atomicfile.Create(dayDir, final, s.fileMode)
	if err != nil {
		return nil, fmt.Errorf("%s: create %s: %w", s.format.Name, filepath.Join(dayDir, final), cause(err))
	}
	hw := sinks.NewHashWriter(f)
	enc, err := s.format.New(hw, p)
	if err != nil {
		f.Discard()
		return nil, err
	}
	return &writer{s: s, p: p, dayDir: dayDir, final: final, f: f, hw: hw, enc: enc}, nil
}

type writer struct {
	s      *Sink
	p      sinks.Partition
	dayDir string
	final  string
	f      *atomicfile.File
	hw     *sinks.HashWriter
	enc    sinks.Encoder
	n      int64
	done   bool
}

func (w *writer) path() string { return filepath.Join(w.s.dir, w.p.Dir(), w.final) }

// fileErr names the file being written by its final name: the user never
// sees the hidden temporary one, so an error about it reads as its cause
// ("no space left on device").
func (w *writer) fileErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Path == w.f.Name() {
		err = pe.Err
	}
	return fmt.Errorf("%s: write %s: %w", w.s.format.Name, w.path(), err)
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
	w.n += int64(len(recs))
	return nil
}

// Commit finishes the file, fsyncs it, renames it into place and updates the
// day's manifest. Everything that needs room (the data and the new manifest)
// is written to temporary files first, so that a full disk fails the commit
// before anything takes a final name; a failed commit leaves no file under
// its final name.
func (w *writer) Commit(ctx context.Context) (sinks.Result, error) {
	if w.done {
		return sinks.Result{}, errors.New("filesink: commit after commit or abort")
	}
	w.done = true
	fail := func(err error) (sinks.Result, error) {
		w.f.Discard()
		return sinks.Result{}, w.fileErr(err)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	if err := w.enc.Close(); err != nil {
		return fail(err)
	}
	if err := w.f.Finish(); err != nil {
		return fail(err)
	}
	manifest := filepath.Join(w.dayDir, sinks.ManifestName)
	failManifest := func(err error) (sinks.Result, error) {
		w.f.Discard()
		return sinks.Result{}, fmt.Errorf("%s: manifest %s: %w", w.s.format.Name, manifest, err)
	}
	unlock, err := w.s.lock(ctx)
	if err != nil {
		return failManifest(err)
	}
	defer unlock()
	// The lock keeps other writers out: the version is not needed.
	next, err := w.s.ledger.Prepare(ctx, w.p, sinks.ManifestFile{
		Name: w.final, From: w.p.From, To: w.p.To, Records: w.n, Bytes: w.hw.N,
		SHA256: w.hw.Sum(), RunID: w.p.RunID, WrittenAt: time.Now().UTC(),
	})
	if err != nil {
		w.f.Discard()
		return sinks.Result{}, fmt.Errorf("%s: %w", w.s.format.Name, err)
	}
	mf, err := atomicfile.Create(w.dayDir, sinks.ManifestName, w.s.fileMode)
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
	if w.p.Compact {
		if err := w.swapDay(mf); err != nil {
			mf.Discard()
			return fail(err)
		}
		return sinks.Result{Records: w.n, Bytes: w.hw.N, Files: []string{w.path()}}, nil
	}
	if err := w.f.Rename(w.path()); err != nil {
		mf.Discard()
		return fail(err)
	}
	if err := mf.Rename(manifest); err != nil {
		// A data file no manifest lists is not delivered: take it back out.
		mf.Discard()
		os.Remove(w.path())
		return failManifest(err)
	}
	if err := atomicfile.SyncDir(w.dayDir); err != nil {
		return sinks.Result{}, fmt.Errorf("%s: sync %s: %w", w.s.format.Name, w.dayDir, err)
	}
	return sinks.Result{Records: w.n, Bytes: w.hw.N, Files: []string{w.path()}}, nil
}

// Abort removes the temporary file; the final name is never touched.
func (w *writer) Abort(context.Context) error {
	if w.done {
		return nil
	}
	w.done = true
	_ = w.enc.Close() // releases the encoder's buffers; the output is discarded
	w.f.Discard()
	return nil
}
