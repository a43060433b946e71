package ndjson

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/transform"
)

// MaxLine bounds one line of the NDJSON files the exporter writes, for
// the readers of its output (verify, report): an API page, and so an
// event, is at most 64 MiB (extract); a record holds a string of the
// details twice (details_json and its details_* column; OCSF's
// unmapped.details and entity_result.data), and each byte of it that is
// not UTF-8 becomes U+FFFD, three bytes: up to six times the event, 384
// MiB (TestMaxLineHoldsTheLargestRecord).
const MaxLine = 512 << 20

// Compressions lists the accepted values of a sink's compression key.
var Compressions = []string{"none", "gzip", "zstd"}

// Format returns the NDJSON format with the given compression (none, gzip,
// zstd; empty means none).
func Format(compression string) (sinks.Format, error) {
	f := sinks.Format{Name: "ndjson", Schema: transform.SchemaVersion}
	switch compression {
	case "", "none":
		f.Ext = ".ndjson"
	case "gzip":
		f.Ext = ".ndjson.gz"
	case "zstd":
		f.Ext = ".ndjson.zst"
	default:
		return f, fmt.Errorf("ndjson: unknown compression %q (none, gzip, zstd)", compression)
	}
	f.New = func(w io.Writer, _ sinks.Partition) (sinks.Encoder, error) {
		return NewEncoder(w, compression)
	}
	return f, nil
}

// Encoder writes NDJSON lines to a writer, through a compressor if configured.
type Encoder struct {
	comp io.WriteCloser // nil without compression
	bw   *bufio.Writer
	line []byte
}

// NewEncoder returns an encoder writing to w.
func NewEncoder(w io.Writer, compression string) (*Encoder, error) {
	e := &Encoder{}
	switch compression {
	case "", "none":
	case "gzip":
		e.comp = gzip.NewWriter(w)
	case "zstd":
		zw, err := zstd.NewWriter(w, zstd.WithEncoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("ndjson: zstd: %w", err)
		}
		e.comp = zw
	default:
		return nil, fmt.Errorf("ndjson: unknown compression %q (none, gzip, zstd)", compression)
	}
	if e.comp != nil {
		w = e.comp
	}
	e.bw = bufio.NewWriterSize(w, 64<<10)
	return e, nil
}

// Write appends one line per record.
func (e *Encoder) Write(recs []transform.Record) error {
	for i := range recs {
		e.line = AppendRecord(e.line[:0], &recs[i])
		e.line = append(e.line, '\n')
		if _, err := e.bw.Write(e.line); err != nil {
			return fmt.Errorf("ndjson: write: %w", err)
		}
	}
	return nil
}

// Close flushes buffered lines and the compressor's trailer.
func (e *Encoder) Close() error {
	if err := e.bw.Flush(); err != nil {
		return fmt.Errorf("ndjson: flush: %w", err)
	}
	if e.comp != nil {
		if err := e.comp.Close(); err != nil {
			return fmt.Errorf("ndjson: close compressor: %w", err)
		}
	}
	return nil
}

// MaxZstdWindow is the largest zstd window Decompress accepts: what the
// encoder writes (klauspost/compress's 8 MiB at every level), what the
// zstd command writes up to level 19, and what RFC 8878 asks every
// decoder to support.
const MaxZstdWindow = 8 << 20

// Decompress returns the lines of the NDJSON file name read from r, through
// the decompressor its extension names (.ndjson.gz, .ndjson.zst; any other
// is read as it is): the inverse of the encoders' compression, for readers
// of the files (report, verify). Close releases the decompressor, not r.
func Decompress(name string, r io.Reader) (io.ReadCloser, error) {
	switch {
	case strings.HasSuffix(name, ".gz"):
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, err // "gzip: invalid header"
		}
		return zr, nil
	case strings.HasSuffix(name, ".zst"):
		// One goroutine and low memory: the report's peak RSS is
		// budgeted (BENCHMARKS.md, Report). A window of at most
		// MaxZstdWindow: a damaged or hostile frame header asked for up
		// to 512 MiB, allocated for a file of a few bytes.
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(MaxZstdWindow))
		if err != nil {
			return nil, fmt.Errorf("ndjson: zstd: %w", err)
		}
		return zr.IOReadCloser(), nil
	}
	return io.NopCloser(r), nil
}
