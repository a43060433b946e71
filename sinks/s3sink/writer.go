package s3sink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"time"

	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/split"
	"github.com/pachca-export/pachca-export/transform"
)

// cleanupTimeout bounds the requests that undo a failed Commit (aborting a
// multipart upload, deleting an object) once the caller's context is over.
const cleanupTimeout = 30 * time.Second

// writer encodes one partition into temporary files, one per object (the
// day's object, or one per key of a split layout); Commit uploads them. It
// is used by one goroutine.
type writer struct {
	s    *Sink
	p    sinks.Partition
	enc  *split.Files
	objs []*object // in the order of enc.Outputs()
	un   sinks.Unexported
	done bool // committed, failed or aborted: the temporary files are gone
}

// SetUnexported implements sinks.UnexportedRecorder.
func (w *writer) SetUnexported(u sinks.Unexported) { w.un = u }

// object is one object of a partition, encoded into a temporary file until
// Commit uploads it to key.
type object struct {
	s      *Sink
	p      sinks.Partition
	key    string
	file   *os.File
	named  bool   // the file still has its name: unlinking it after creation failed
	upload string // id of a multipart upload a failed Commit could not abort
}

func (s *Sink) open(ctx context.Context, p sinks.Partition) (*writer, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("s3: open %s: %w", s.url(s.prefix+p.Dir()), err)
	}
	w := &writer{s: s, p: p}
	enc, err := split.NewFiles(s.layout, s.format, p, w.create)
	w.enc = enc
	if err != nil {
		w.removeTemp()
		return nil, w.err("open", err)
	}
	return w, nil
}

// create is the split.Create of the writer: a temporary file for the
// object at rel (from the prefix). The file is unlinked at once: the
// encoder writes and the upload reads it only through the open *os.File, so
// its space is freed when it is closed, and a process killed before that
// (SIGKILL, the OOM killer) leaves no up-to-a-day's-worth file behind that
// nothing would ever remove.
func (w *writer) create(rel string) (io.Writer, error) {
	key := w.s.prefix + rel
	f, err := os.CreateTemp(w.s.cfg.TempDir, ".pachca-s3-*"+path.Ext(rel))
	if err != nil {
		return nil, fmt.Errorf("temporary file for %s: %w", w.s.url(key), err)
	}
	// Should unlinking fail, the file keeps its name until removeTemp.
	named := os.Remove(f.Name()) != nil
	w.objs = append(w.objs, &object{s: w.s, p: w.p, key: key, file: f, named: named})
	return f, nil
}

// err names the partition's object (or, split, its day) in an error.
func (w *writer) err(op string, err error) error {
	where := w.s.prefix + w.p.Dir()
	if w.s.layout.Split == nil && len(w.objs) == 1 {
		where = w.objs[0].key
	}
	return fmt.Errorf("s3: %s %s: %w", op, w.s.url(where), err)
}

// Write encodes recs into the temporary files.
func (w *writer) Write(ctx context.Context, recs []transform.Record) error {
	if w.done {
		return w.err("write", errors.New("writer already committed or aborted"))
	}
	if err := ctx.Err(); err != nil {
		return w.err("write", err)
	}
	if err := w.enc.Write(recs); err != nil {
		return w.err("write", err)
	}
	return nil
}

// Commit finishes the encoding, uploads every object, then records them
// all in the day's manifest in one write: the partition is delivered only
// once every object is. On error the temporary files are gone, no multipart
// upload is left behind, and a failed or cancelled upload leaves no object
// under its key (an earlier run's object there stays as it was).
func (w *writer) Commit(ctx context.Context) (sinks.Result, error) {
	if w.done {
		return sinks.Result{}, w.err("commit", errors.New("writer already committed or aborted"))
	}
	defer w.removeTemp()
	if err := w.enc.Close(); err != nil {
		return sinks.Result{}, w.err("encode", err)
	}
	if w.p.Compact && len(w.objs) > 0 {
		if err := w.s.canDelete(ctx, path.Dir(w.objs[0].key)); err != nil {
			return sinks.Result{}, err
		}
	}
	var res sinks.Result
	var entries []sinks.ManifestFile
	for i, out := range w.enc.Outputs() {
		o := w.objs[i]
		if err := ctx.Err(); err != nil {
			return sinks.Result{}, fmt.Errorf("s3: upload %s: %w", w.s.url(o.key), err)
		}
		size, sha := out.Hash.N, out.Hash.Sum()
		checksum, err := o.put(ctx, size, sha, out.Records)
		if err != nil {
			return sinks.Result{}, fmt.Errorf("s3: upload %s: %w", w.s.url(o.key), err)
		}
		entries = append(entries, sinks.ManifestFile{
			Name:       sinks.EntryName(w.p.Dir(), out.Path),
			From:       w.p.From,
			To:         w.p.To,
			Records:    out.Records,
			Bytes:      size,
			SHA256:     sha,
			RunID:      w.p.RunID,
			WrittenAt:  time.Now().UTC(),
			S3Checksum: checksum,
			Part:       w.p.Part,
		})
		res.Records += out.Records
		res.Bytes += size
		res.Files = append(res.Files, o.key)
	}
	sinks.SetUnexported(entries, w.un)
	// Conditional writes keep concurrent writers of the same day from
	// losing each other's entries.
	next, err := w.s.ledger.Record(ctx, w.p, entries...)
	if err != nil {
		// The objects are complete but undescribed; they stay (deleting
		// them could remove the only copy of a day exported before), and
		// the partition counts as failed: a rerun rewrites them all.
		return sinks.Result{}, w.err("manifest of", err)
	}
	// The manifest no longer lists the objects the partition replaced (a
	// Compact partition: the day's other objects), and they go now. Until
	// the delete completes a reader listing the prefix sees them beside
	// the partition's.
	if err := w.s.deleteObjects(ctx, w.p, next.Replaced); err != nil {
		return sinks.Result{}, err
	}
	res.Overlaps = next.Overlaps
	return res, nil
}

// Abort discards the partition: the temporary files, and a multipart
// upload a failed Commit could not abort, within ctx and at most
// cleanupTimeout. It is a no-op after Commit and safe twice.
func (w *writer) Abort(ctx context.Context) error {
	if !w.done {
		_ = w.enc.Close() // releases the encoders' buffers; their output is discarded
		w.removeTemp()
	}
	ctx, cancel := context.WithTimeout(ctx, cleanupTimeout)
	defer cancel()
	var errs []error
	for _, o := range w.objs {
		if o.upload != "" {
			errs = append(errs, o.abortUpload(ctx))
		}
	}
	return errors.Join(errs...)
}

func (w *writer) removeTemp() {
	if w.done {
		return
	}
	w.done = true
	for _, o := range w.objs {
		_ = o.file.Close()
		if o.named {
			// Only then: the name of an unlinked file may be another's by now.
			_ = os.Remove(o.file.Name())
		}
	}
}
