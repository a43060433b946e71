package parquetfmt

import (
	"fmt"
	"io"
	"strings"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"

	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/transform"
)

// Compressions lists the accepted values of a sink's compression key.
var Compressions = []string{"none", "snappy", "gzip", "zstd"}

// Defaults of the options. With window files of at most 1,000 events and a
// 26 MiB heap limit they keep a 1,000,000-event export to NDJSON and Parquet
// under 64 MiB of peak RSS (BENCHMARKS.md).
const (
	// DefaultRowGroupRows caps a row group: some 1.3 MB of compressed
	// columns, 31 row groups per 1,000,000 events, still large for scans of
	// an audit log; the writer holds one row group's compressed pages.
	DefaultRowGroupRows = 32 * 1024
	// DefaultBatchRows is the size of the Arrow record batch that collects
	// rows across Write calls, its builders 1-2 MB. With -cpu 1, 2k, 4k
	// and 16k rows encode at the same rate within the machine's noise; 1k
	// rows halve the builders, which lets the heap limit come down.
	DefaultBatchRows = 1024
	// DefaultRowGroupBytes and DefaultBatchBytes bound the same two buffers
	// in bytes, for events whose details are large (100 KB, 1 MB): by rows
	// alone a row group of 32Ki such events would hold gigabytes in memory
	// until it is written, and readers need as much to read it. Audit
	// records of the usual size reach the row limits long before these.
	DefaultRowGroupBytes = 64 << 20
	DefaultBatchBytes    = 16 << 20
	// DefaultPageBytes is the size of a data page before compression. Each
	// column writer holds its current page until it fills, twice over while
	// it compresses it: the library's 1 MiB was some 11 MiB of a
	// 1,000,000-event export. 256 KiB pages made that file 1% larger, and
	// 128 KiB pages 2%; they took the peak RSS of a 1,000,000-event export
	// over 30 days from 64.3-66.1 MiB to 61.6-62.8 (BENCHMARKS.md). 64 KiB
	// pages add another 1.8% (44.0 against 43.3 MB for 1,000,000 events)
	// and, with batches of 1,024 rows, let the heap limit go from 30 to 26
	// MiB for no more CPU in the collector.
	DefaultPageBytes = 64 << 10
)

// uniqueColumns are (nearly) unique per event: a dictionary would only grow
// until the writer falls back to plain encoding, so they go plain at once.
// entity_id and ip_address vary enough that, measured on simulated events,
// plain + zstd was both smaller (28.9 against 30.2 bytes a record) and
// faster than a dictionary, whose hashing allocates per value.
// Every other column keeps the default dictionary encoding, with the
// writer's automatic fallback for columns that turn out to vary a lot.
var uniqueColumns = []string{"id", "created_at", "details_json", "entity_id", "ip_address"}

// Format returns the Parquet format with the given compression (none,
// snappy, gzip, zstd; empty means zstd).
func Format(compression string) (sinks.Format, error) {
	if _, err := codec(compression); err != nil {
		return sinks.Format{}, err
	}
	return sinks.Format{
		Name:   "parquet",
		Ext:    ".parquet",
		Schema: transform.SchemaVersion,
		New: func(w io.Writer, p sinks.Partition) (sinks.Encoder, error) {
			return NewEncoder(w, p, compression)
		},
	}, nil
}

func codec(compression string) (compress.Compression, error) {
	switch compression {
	case "", "zstd":
		return compress.Codecs.Zstd, nil
	case "none":
		return compress.Codecs.Uncompressed, nil
	case "snappy":
		return compress.Codecs.Snappy, nil
	case "gzip":
		return compress.Codecs.Gzip, nil
	}
	return 0, fmt.Errorf("parquet: unknown compression %q (%s)", compression, strings.Join(Compressions, ", "))
}

// Option tunes an Encoder.
type Option func(*config)

type config struct {
	mem           memory.Allocator
	rowGroupRows  int
	batchRows     int
	rowGroupBytes int64
	batchBytes    int64
}

// WithAllocator makes the encoder take its Arrow and Parquet buffers from mem
// (tests pass a memory.CheckedAllocator); the default is the Go allocator.
func WithAllocator(mem memory.Allocator) Option { return func(c *config) { c.mem = mem } }

// WithRowGroupRows caps the rows of a row group (default DefaultRowGroupRows).
// The encoder holds one row group's encoded pages in memory.
func WithRowGroupRows(n int) Option { return func(c *config) { c.rowGroupRows = n } }

// WithBatchRows sets the rows of each Arrow record batch (default
// DefaultBatchRows).
func WithBatchRows(n int) Option { return func(c *config) { c.batchRows = n } }

// WithRowGroupBytes caps the encoded bytes of a row group (default
// DefaultRowGroupBytes): a row group is closed once it holds this many,
// whatever its rows.
func WithRowGroupBytes(n int64) Option { return func(c *config) { c.rowGroupBytes = n } }

// WithBatchBytes caps the text of an Arrow record batch (default
// DefaultBatchBytes): a batch goes to the row group once its records
// carry this many bytes, whatever its rows.
func WithBatchBytes(n int64) Option { return func(c *config) { c.batchBytes = n } }

// Encoder writes schema v1 records as one Parquet file to an io.Writer. It is
// not safe for concurrent use. After any error the file is unusable: every
// later call returns that error, and Close only releases memory.
type Encoder struct {
	file
	cols []columnWriter
	rows rows // reused between appends
}

// NewEncoder starts a Parquet file on w (it writes the magic bytes, so a
// failing w errors here) with the compression (none, snappy, gzip, zstd;
// empty means zstd). p's run id, day and range go into the file's key-value
// metadata. The Encoder never closes w.
func NewEncoder(w io.Writer, p sinks.Partition, compression string, opts ...Option) (*Encoder, error) {
	cfg, err := newConfig(DefaultBatchRows, opts)
	if err != nil {
		return nil, err
	}
	comp, err := codec(compression)
	if err != nil {
		return nil, err
	}
	schema := ArrowSchema()
	cols, err := columnWriters(schema)
	if err != nil {
		return nil, err
	}
	pool := newPoolAllocator(cfg.mem)

	props := []parquet.WriterProperty{
		parquet.WithAllocator(pool),
		parquet.WithCompression(comp),
		parquet.WithStats(true),
		parquet.WithDictionaryDefault(true),
		parquet.WithMaxRowGroupLength(int64(cfg.rowGroupRows)),
		parquet.WithDataPageSize(DefaultPageBytes),
	}
	if comp == compress.Codecs.Zstd {
		// zstd level 1 (klauspost's SpeedFastest): measured on audit
		// records, the same file size as the default level, ~15% faster.
		props = append(props, parquet.WithCompressionLevel(1))
	}
	for _, c := range transform.Columns() {
		if c.LowCardinality {
			props = append(props, parquet.WithDictionaryFor(c.Name, true))
		}
	}
	for _, name := range uniqueColumns {
		props = append(props, parquet.WithDictionaryFor(name, false))
	}
	// details_* columns are null in most rows and their values mostly
	// unique (ids, names): hashing them for a dictionary costs more CPU than
	// it saves bytes after zstd.
	for _, f := range transform.DetailFields() {
		props = append(props, parquet.WithDictionaryFor(f.Column().Name, false))
	}
	f, err := openFile(w, schema, pool, cfg, props, partitionMetadata(p))
	if err != nil {
		return nil, err
	}
	return &Encoder{file: *f, cols: cols}, nil
}

// latch passes bytes to w until w fails; then it keeps the first error and
// discards the rest while reporting success. The Encoder checks err after
// every call into the Parquet writer, so a failure is never lost, and the
// writer never takes its error paths, which leak buffers (arrow-go v18.8.0's
// rowGroupWriter.Close returns before closing the remaining column writers).
// latch also hides an io.Closer: the Parquet writer would close it, and the
// caller owns w.
type latch struct {
	w   io.Writer
	err error
}

func (l *latch) Write(p []byte) (int, error) {
	if l.err == nil {
		n, err := l.w.Write(p)
		if err == nil && n < len(p) {
			err = io.ErrShortWrite
		}
		l.err = err
	}
	return len(p), nil
}

// Write appends recs to the file. Rows collect in an Arrow record batch of
// the configured size, which goes to the buffered row group when full; row
// groups reach w as they fill up. recs may be reused after return.
func (e *Encoder) Write(recs []transform.Record) error {
	if err := e.writable(); err != nil {
		return err
	}
	for len(recs) > 0 {
		n := min(len(recs), e.batch-e.pending)
		for i := range n {
			if e.pendingBytes += recordBytes(&recs[i]); e.pendingBytes >= e.batchBytes {
				n = i + 1
				break
			}
		}
		e.appendRows(recs[:n])
		recs = recs[n:]
		if e.pending == e.batch || e.pendingBytes >= e.batchBytes {
			if err := e.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

// recordBytes is about what r takes in an Arrow batch: its details twice
// (the JSON and the columns drawn from it), its user agent and the rest.
func recordBytes(r *transform.Record) int64 {
	return int64(2*len(r.DetailsJSON)+len(r.UserAgent.Str)) + 256
}

// appendRows appends every column for every row, so the columns always have
// equal lengths: the records are already typed, nothing can fail midway.
func (e *Encoder) appendRows(recs []transform.Record) {
	// The first rows of a batch reserve the whole batch: growing by appends
	// would copy every column's buffers a few times over.
	e.rb.Reserve(max(len(recs), e.batch-e.pending))
	e.rows.set(recs)
	for i, w := range e.cols {
		w(e.rb.Field(i), &e.rows)
	}
	e.rows.clear() // the caller may reuse recs
	e.pending += len(recs)
}

var _ sinks.Encoder = (*Encoder)(nil)
