// Package stdoutsink streams records as NDJSON lines to a writer (standard
// output), for piping into a log shipper. It has no partitions to make
// durable: Commit flushes.
package stdoutsink

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/ndjson"
	"github.com/pachca-export/pachca-export/transform"
)

// Sink writes to one writer; partitions are written one after the other.
type Sink struct {
	bw   *bufio.Writer
	line []byte
}

// New returns a sink writing to w.
func New(w io.Writer) *Sink { return &Sink{bw: bufio.NewWriterSize(w, 64<<10)} }

// Streams marks the sink as a stream (sinks.Streamer).
func (s *Sink) Streams() {}

// Name identifies the sink in logs.
func (s *Sink) Name() string { return "stdout" }

// Close flushes; safe twice.
func (s *Sink) Close(context.Context) error {
	if err := s.bw.Flush(); err != nil {
		return fmt.Errorf("stdout: %w", err)
	}
	return nil
}

// Open starts a partition.
func (s *Sink) Open(ctx context.Context, p sinks.Partition) (sinks.Writer, error) {
	return &writer{s: s}, nil
}

type writer struct {
	s    *Sink
	n    int64
	b    int64
	done bool // committed or aborted
}

func (w *writer) Write(ctx context.Context, recs []transform.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for i := range recs {
		w.s.line = append(ndjson.AppendRecord(w.s.line[:0], &recs[i]), '\n')
		if _, err := w.s.bw.Write(w.s.line); err != nil {
			return fmt.Errorf("stdout: %w", err)
		}
		w.b += int64(len(w.s.line))
	}
	w.n += int64(len(recs))
	return nil
}

func (w *writer) Commit(ctx context.Context) (sinks.Result, error) {
	if w.done {
		return sinks.Result{}, errors.New("stdout: commit after commit or abort")
	}
	w.done = true
	if err := ctx.Err(); err != nil {
		return sinks.Result{}, err
	}
	if err := w.s.bw.Flush(); err != nil {
		return sinks.Result{}, fmt.Errorf("stdout: %w", err)
	}
	return sinks.Result{Records: w.n, Bytes: w.b}, nil
}

// Abort cannot take back lines already written; consumers dedupe by id.
func (w *writer) Abort(context.Context) error {
	w.done = true
	return nil
}
