package parquetfmt

import (
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"

	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/transform"
	"github.com/pachca-export/pachca-export/transform/ocsf"
)

// MetaOCSFClasses is the key-value metadata key listing the class_uids a
// file's columns were declared for, comma-separated.
const MetaOCSFClasses = "ocsf_class_uids"

// Defaults of the OCSF encoder, within Amazon Security Lake's requirements
// for custom sources (zstd, data pages up to 1 MB uncompressed, row groups
// well under 256 MB).
const (
	// DefaultOCSFBatchRows is v1's DefaultBatchRows: with 4,096 rows the
	// batch's builders and the column writers' pages (OCSFDataPageSize)
	// held some 23 MiB of live heap, 14 MiB with these two settings, in
	// 200,000 simulated events (the encoder alone); over the 26 MiB heap
	// limit of the process, the collector ran without end.
	DefaultOCSFBatchRows = DefaultBatchRows
	// OCSFDataPageSize is the target size of a data page before encoding,
	// v1's DefaultPageBytes (it was 512 KiB: the file 2.6% smaller). The
	// writer closes a page after the write batch (OCSFWriteBatch values of
	// one column) that crosses the target, well under Security Lake's 1 MB.
	OCSFDataPageSize = DefaultPageBytes
	// OCSFDictionaryPageSize is the size a column's dictionary may reach
	// before the writer falls back to plain encoding for the rest of the
	// row group: 64 KiB made the file 7% larger.
	OCSFDictionaryPageSize = 512 << 10
	// OCSFWriteBatch is the number of values the writer adds to a page
	// between two checks of its size (arrow-go's default is 1024).
	OCSFWriteBatch = 128
)

// ocsfPlainColumns are unique per event: a dictionary would not pay.
var ocsfPlainColumns = []string{"time", "time_dt", "metadata.uid", "metadata.original_time", "finding_info.uid"}

// OCSFFormat returns the Parquet format of OCSF 1.3 events, one file
// holding any class (the columns of every class Map produces), with the
// compression of Format (empty means zstd).
func OCSFFormat(compression string) (sinks.Format, error) {
	return OCSFClassFormat(compression, nil)
}

// Row groups and batches of one-class files written side by side (the
// Security Lake layout opens up to one per class at once): smaller than a
// single file's, so that their buffers together stay near one file's.
// Measured with `run` of 300,000 simulated events of one day to a file
// sink in that layout: a peak RSS of 176 MiB with the defaults, 140 MiB
// with 16Ki-row groups, 131 MiB with these (files 1.7% larger than with
// 16Ki), against 108 MiB for one OCSF Parquet file of the day.
const (
	ClassFileRowGroupRows = 8192
	ClassFileBatchRows    = 512
)

// OCSFClassFormat is OCSFFormat for files that hold only the given classes
// (by class_uid; every class when none is given): their columns and no
// others, as Security Lake wants one class per object. Writing an event of
// another class fails. opts are NewOCSFEncoder's.
func OCSFClassFormat(compression string, classes []int32, opts ...Option) (sinks.Format, error) {
	if _, err := codec(compression); err != nil {
		return sinks.Format{}, err
	}
	if _, err := newOCSFPlan(classes, arrow.Metadata{}); err != nil {
		return sinks.Format{}, err
	}
	return sinks.Format{
		Name:   "parquet",
		Ext:    ".parquet",
		Schema: ocsf.SchemaVersion,
		New: func(w io.Writer, p sinks.Partition) (sinks.Encoder, error) {
			return NewOCSFEncoder(w, p, compression, classes, opts...)
		},
	}, nil
}

// OCSFArrowSchema returns the Arrow schema of files of the given classes
// (every class when none is given).
func OCSFArrowSchema(classes ...int32) (*arrow.Schema, error) {
	p, err := newOCSFPlan(classes, ocsfSchemaMetadata())
	if err != nil {
		return nil, err
	}
	return p.schema, nil
}

func ocsfSchemaMetadata() arrow.Metadata {
	return arrow.NewMetadata([]string{MetaSchemaVersion}, []string{ocsf.SchemaVersion})
}

// OCSFEncoder writes records as OCSF events (ocsf.Map) into one Parquet
// file, in the order given. It is not safe for concurrent use. After any
// error the file is unusable: every later call returns that error, and
// Close only releases memory.
type OCSFEncoder struct {
	file
	plan *ocsfPlan
	m    ocsf.Mapper // the event of the record being appended
}

// NewOCSFEncoder starts a Parquet file of OCSF events on w with the
// columns of classes (every class when empty) and the compression (none,
// snappy, gzip, zstd; empty means zstd). p's run id, day and range go into
// the key-value metadata, as for schema v1. The options are the v1
// encoder's; the batch defaults to DefaultOCSFBatchRows. It never closes w.
func NewOCSFEncoder(w io.Writer, p sinks.Partition, compression string, classes []int32, opts ...Option) (*OCSFEncoder, error) {
	cfg, err := newConfig(DefaultOCSFBatchRows, opts)
	if err != nil {
		return nil, err
	}
	comp, err := codec(compression)
	if err != nil {
		return nil, err
	}
	plan, err := newOCSFPlan(classes, ocsfSchemaMetadata())
	if err != nil {
		return nil, err
	}
	pool := newPoolAllocator(cfg.mem)
	props := []parquet.WriterProperty{
		parquet.WithAllocator(pool),
		parquet.WithCompression(comp),
		parquet.WithStats(true),
		parquet.WithDictionaryDefault(true),
		parquet.WithDataPageSize(OCSFDataPageSize),
		parquet.WithDictionaryPageSizeLimit(OCSFDictionaryPageSize),
		parquet.WithBatchSize(OCSFWriteBatch),
		parquet.WithMaxRowGroupLength(int64(cfg.rowGroupRows)),
	}
	if comp == compress.Codecs.Zstd {
		props = append(props, parquet.WithCompressionLevel(1)) // as for v1
	}
	for _, name := range ocsfPlainColumns {
		props = append(props, parquet.WithDictionaryFor(name, false))
	}
	f, err := openFile(w, plan.schema, pool, cfg, props, ocsfMetadata(p, classes))
	if err != nil {
		return nil, err
	}
	return &OCSFEncoder{file: *f, plan: plan}, nil
}

// ocsfMetadata is the key-value metadata of an OCSF file: p's, and the
// classes whose columns it has.
func ocsfMetadata(p sinks.Partition, classes []int32) [][2]string {
	kv := partitionMetadata(p)
	if len(classes) > 0 {
		ids := make([]string, len(classes))
		for i, c := range slices.Sorted(slices.Values(classes)) {
			ids[i] = strconv.Itoa(int(c))
		}
		kv = append(kv, [2]string{MetaOCSFClasses, strings.Join(ids, ",")})
	}
	return kv
}

// Write maps each record and appends it. An event of a class outside the
// file's columns fails the file. recs may be reused after return.
func (e *OCSFEncoder) Write(recs []transform.Record) error {
	if err := e.writable(); err != nil {
		return err
	}
	if e.pending == 0 && len(recs) > 0 {
		e.rb.Reserve(e.batch)
	}
	for i := range recs {
		ev := e.m.Map(&recs[i])
		if err := e.plan.check(ev); err != nil {
			e.err = err
			return err
		}
		e.plan.appendEvent(e.rb, ev)
		e.pending++
		e.pendingBytes += recordBytes(&recs[i])
		if e.pending == e.batch || e.pendingBytes >= e.batchBytes {
			if err := e.flush(); err != nil {
				return err
			}
			e.rb.Reserve(e.batch)
		}
	}
	return nil
}

var _ sinks.Encoder = (*OCSFEncoder)(nil)
