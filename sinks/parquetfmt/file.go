package parquetfmt

import (
	"errors"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/pachca-export/pachca-export/sinks"
)

// file is the life of one Parquet file, the same for both record shapes:
// the Arrow writer on a latch, the record builder its rows collect in, the
// pooled allocator, and the first failure, which sticks.
type file struct {
	fw      *pqarrow.FileWriter
	out     *latch
	rb      *array.RecordBuilder
	batch   int // rows per record batch
	pending int // rows in rb not yet handed to fw
	// batchBytes and rowGroupBytes bound a record batch (pendingBytes, as
	// the encoder estimates its rows) and a row group's encoded bytes.
	batchBytes, rowGroupBytes int64
	pendingBytes              int64 // of the rows in rb
	pool                      *poolAllocator
	err                       error // sticky: the first failure
	closed                    bool
}

// newConfig applies opts over the defaults of an encoder whose record
// batches hold batchRows rows.
func newConfig(batchRows int, opts []Option) (config, error) {
	cfg := config{mem: memory.DefaultAllocator, rowGroupRows: DefaultRowGroupRows, batchRows: batchRows,
		rowGroupBytes: DefaultRowGroupBytes, batchBytes: DefaultBatchBytes}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.rowGroupRows <= 0 || cfg.batchRows <= 0 {
		return cfg, fmt.Errorf("parquet: row group rows (%d) and batch rows (%d) must be positive", cfg.rowGroupRows, cfg.batchRows)
	}
	if cfg.rowGroupBytes <= 0 || cfg.batchBytes <= 0 {
		return cfg, fmt.Errorf("parquet: row group bytes (%d) and batch bytes (%d) must be positive", cfg.rowGroupBytes, cfg.batchBytes)
	}
	if cfg.mem == nil {
		return cfg, errors.New("parquet: nil allocator")
	}
	return cfg, nil
}

// openFile starts a Parquet file of schema on w (it writes the magic bytes,
// so a failing w errors here) with props and the key-value metadata kv, on
// the pool, which it releases when it fails.
func openFile(w io.Writer, schema *arrow.Schema, pool *poolAllocator, cfg config, props []parquet.WriterProperty, kv [][2]string) (*file, error) {
	out := &latch{w: w}
	fw, err := pqarrow.NewFileWriter(schema, out, parquet.NewWriterProperties(props...),
		pqarrow.NewArrowWriterProperties(pqarrow.WithAllocator(pool), pqarrow.WithStoreSchema()))
	if err != nil {
		pool.release()
		return nil, fmt.Errorf("parquet: start file: %w", err)
	}
	for _, m := range kv {
		if err = fw.AppendKeyValueMetadata(m[0], m[1]); err != nil {
			err = fmt.Errorf("parquet: metadata %s: %w", m[0], err)
			break
		}
	}
	if err == nil && out.err != nil {
		err = fmt.Errorf("parquet: start file: %w", out.err)
	}
	if err != nil {
		_ = fw.Close()
		pool.release()
		return nil, err
	}
	return &file{fw: fw, out: out, rb: array.NewRecordBuilder(pool, schema), batch: cfg.batchRows,
		batchBytes: cfg.batchBytes, rowGroupBytes: cfg.rowGroupBytes, pool: pool}, nil
}

// partitionMetadata is the key-value metadata of p: its run id, day and range.
func partitionMetadata(p sinks.Partition) [][2]string {
	const ts = "2006-01-02T15:04:05.000Z07:00"
	var kv [][2]string
	if p.RunID != "" {
		kv = append(kv, [2]string{MetaRunID, p.RunID})
	}
	if !p.Day.IsZero() {
		kv = append(kv,
			[2]string{MetaDay, p.Date()},
			[2]string{MetaRangeFrom, p.From.UTC().Format(ts)},
			[2]string{MetaRangeTo, p.To.UTC().Format(ts)})
	}
	return kv
}

// writable reports why no row may be written, if so.
func (f *file) writable() error {
	if f.err != nil {
		return f.err
	}
	if f.closed {
		return errors.New("parquet: write after close")
	}
	return nil
}

// flush hands the pending rows to the Parquet writer as one record batch,
// and closes the row group once it holds rowGroupBytes.
func (f *file) flush() error {
	if f.pending == 0 {
		return nil
	}
	f.pending, f.pendingBytes = 0, 0
	rec := f.rb.NewRecordBatch()
	var err error
	if f.fw.RowGroupTotalCompressedBytes() >= f.rowGroupBytes {
		// Writes the full one out; started here rather than when it
		// filled, so that the file never ends with an empty row group.
		err = f.fw.NewBufferedRowGroupChecked()
	}
	if err == nil {
		err = f.fw.WriteBuffered(rec)
	}
	rec.Release()
	if err == nil {
		err = f.out.err
	}
	if err != nil {
		f.err = fmt.Errorf("parquet: write: %w", err)
	}
	return f.err
}

// Close writes the pending rows, the last row group and the footer; the file
// is valid only if Close returns nil. It releases all memory, does not close
// w, and is safe to call twice (the second call returns the first's result).
func (f *file) Close() error {
	if f.closed {
		return f.err
	}
	f.closed = true
	if f.err == nil {
		_ = f.flush() // sets f.err
	}
	f.rb.Release()
	// The Arrow writer closes itself after a failed write and then returns
	// nil from Close: keep the first error so a failure never reads as success.
	err := f.fw.Close()
	f.pool.release()
	if err == nil {
		err = f.out.err
	}
	if err != nil && f.err == nil {
		f.err = fmt.Errorf("parquet: close: %w", err)
	}
	return f.err
}

// NumRows is the number of rows written so far (including the buffered row group).
func (f *file) NumRows() int { return f.fw.NumRows() }
