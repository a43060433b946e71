package s3sink

import (
	"context"
	"fmt"
	"os"
	"path"
	"time"

	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/transform"
)

// cleanupTimeout bounds the requests that undo a failed Commit (aborting a
// multipart upload, deleting an object) once the caller's context is over.
const cleanupTimeout = 30 * time.Second

// writer encodes one partition into a temporary file; Commit uploads it. It is
// used by one goroutine.
type writer struct {
	s       *Sink
	p       sinks.Partition
	key     string
	file    *os.File
	hw      *sinks.HashWriter
	enc     sinks.Encoder
	records int64
	done    bool   // committed, failed or aborted: the temporary file is gone
	upload  string // id of a multipart upload a failed Commit could not abort
}

func (s *Sink) open(ctx context.Context, p sinks.Partition) (*writer, error) {
	key := s.prefix + p.Dir() + "/" + p.BaseName() + s.format.Ext
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("s3: open %s: %w", s.url(key), err)
	}
	f, err := os.CreateTemp(s.cfg.TempDir, ".pachca-s3-*"+s.format.Ext)
	if err != nil {
		return nil, fmt.Errorf("s3: open %s: temporary file: %w", s.url(key), err)
	}
	w := &writer{s: s, p: p, key: key, file: f, hw: sinks.NewHashWriter(f)}
	if w.enc, err = s.format.New(w.hw, p); err != nil {
		w.removeTemp()
		return nil, fmt.Errorf("s3: open %s: %w", s.url(key), err)
	}
	return w, nil
}

// Write encodes recs into the temporary file.
func (w *writer) Write(ctx context.Context, recs []transform.Record) error {
	if w.done {
		return fmt.Errorf("s3: write %s: writer already committed or aborted", w.s.url(w.key))
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("s3: write %s: %w", w.s.url(w.key), err)
	}
	if err := w.enc.Write(recs); err != nil {
		return fmt.Errorf("s3: write %s: %w", w.s.url(w.key), err)
	}
	w.records += int64(len(recs))
	return nil
}

// Commit finishes the encoding, uploads the object, then records it in the
// day's manifest. On error the temporary file is gone, no multipart upload is
// left behind, and a failed or cancelled upload leaves no object under the
// key (an earlier run's object there stays as it was).
func (w *writer) Commit(ctx context.Context) (sinks.Result, error) {
	if w.done {
		return sinks.Result{}, fmt.Errorf("s3: commit %s: writer already committed or aborted", w.s.url(w.key))
	}
	defer w.removeTemp()
	if err := w.enc.Close(); err != nil {
		return sinks.Result{}, fmt.Errorf("s3: encode %s: %w", w.s.url(w.key), err)
	}
	if err := ctx.Err(); err != nil {
		return sinks.Result{}, fmt.Errorf("s3: upload %s: %w", w.s.url(w.key), err)
	}
	size, sha := w.hw.N, w.hw.Sum()
	checksum, err := w.put(ctx, size, sha)
	if err != nil {
		return sinks.Result{}, fmt.Errorf("s3: upload %s: %w", w.s.url(w.key), err)
	}
	entry := sinks.ManifestFile{
		Name:       path.Base(w.key),
		From:       w.p.From,
		To:         w.p.To,
		Records:    w.records,
		Bytes:      size,
		SHA256:     sha,
		RunID:      w.p.RunID,
		WrittenAt:  time.Now().UTC(),
		S3Checksum: checksum,
	}
	// Conditional writes keep concurrent writers of the same day from
	// losing each other's entries.
	dropped, err := w.s.ledger.Record(ctx, w.p, entry)
	if err != nil {
		// The object is complete but undescribed; it stays (deleting it could
		// remove the only copy of a day exported before), and the partition
		// counts as failed: a rerun rewrites both.
		return sinks.Result{}, fmt.Errorf("s3: manifest of %s: %w", w.s.url(w.key), err)
	}
	// A Compact partition replaced the day's other objects: the manifest no
	// longer lists them, and they go now. Until the delete completes a
	// reader listing the prefix sees them beside the day's object.
	if err := w.s.deleteObjects(ctx, w.p, dropped); err != nil {
		return sinks.Result{}, err
	}
	return sinks.Result{Records: w.records, Bytes: size, Files: []string{w.key}}, nil
}

// Abort discards the partition: the temporary file, and a multipart upload a
// failed Commit could not abort, within ctx and at most cleanupTimeout. It
// is a no-op after Commit and safe twice.
func (w *writer) Abort(ctx context.Context) error {
	if !w.done {
		_ = w.enc.Close() // releases the encoder's buffers; its output is discarded
		w.removeTemp()
	}
	if w.upload == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, cleanupTimeout)
	defer cancel()
	return w.abortUpload(ctx)
}

func (w *writer) removeTemp() {
	if w.done {
		return
	}
	w.done = true
	_ = w.file.Close()
	_ = os.Remove(w.file.Name())
}
