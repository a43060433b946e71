package reader

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/parquetfmt"
)

// columns are the schema v1 columns the report reads, in Row order.
var columns = [...]string{"id", "created_at", "event_key", "event_category", "actor_id", "actor_type",
	"entity_id", "entity_type", "ip_address", "details_json"}

// batchRows is the rows per Arrow batch: memory holds one batch of the
// columns read, not a row group.
const batchRows = 8192

// readParquet streams the rows of part p from obj, the Parquet file: in
// place when it is a local file, else from a temporary copy (random access),
// every byte of which passes through v. A panic of arrow-go on a damaged
// file is the file's *DamagedError (was: the report's panic); one of fn
// goes on.
func (rd *Reader) readParquet(ctx context.Context, obj io.Reader, p Part, v *verifier, fn func([]Row) error) (err error) {
	f, done, err := sinks.LocalFile(obj, rd.tmpDir, v)
	if err != nil {
		return fmt.Errorf("%s: read: %w", v.file, err)
	}
	defer done()
	if err := v.checkBytes(); err != nil {
		return err
	}
	inFn := false
	defer parquetfmt.RecoverRead(&err, &inFn, v.damaged)
	// Every batch allocates the same buffers: rd.mem reuses them rather
	// than leave them to the garbage collector.
	props := parquet.NewReaderProperties(rd.mem)
	props.BufferedStreamEnabled = true
	props.BufferSize = 128 << 10
	pr, err := file.NewParquetReader(f, file.WithReadProps(props))
	if err != nil {
		return v.damaged(err)
	}
	defer pr.Close()
	if err := v.checkRecords(pr.NumRows()); err != nil {
		return err
	}
	cols, err := leafColumns(pr)
	if err != nil {
		return v.damaged(err)
	}
	parquetfmt.IgnoreStoredSchema(pr)
	fr, err := pqarrow.NewFileReader(pr, pqarrow.ArrowReadProperties{BatchSize: batchRows}, rd.mem)
	if err != nil {
		return v.damaged(err)
	}
	rr, err := fr.GetRecordReader(ctx, cols, nil)
	if err != nil {
		return v.damaged(err)
	}
	defer rr.Release()
	rows := make([]Row, 0, batchRows)
	var read int64
	for rr.Next() {
		read += rr.RecordBatch().NumRows()
		rows, err = batchToRows(rr.RecordBatch(), p, rows[:0])
		if err != nil {
			return v.damaged(err)
		}
		if len(rows) > 0 {
			inFn = true
			err := fn(rows)
			inFn = false
			if err != nil {
				return err
			}
		}
	}
	if err := rr.Err(); err != nil && !errors.Is(err, context.Canceled) {
		return v.damaged(err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// arrow-go ends some damaged column chunks early without an error:
	// the rows read are the footer's, or the file is damaged (was: the
	// rows that did read, as if the file held no more).
	if read != pr.NumRows() {
		return v.damaged(fmt.Errorf("%d rows read of the %d its footer lists", read, pr.NumRows()))
	}
	return nil
}

// leafColumns finds the leaf index of each of Columns and checks its type.
func leafColumns(pr *file.Reader) ([]int, error) {
	schema := pr.MetaData().Schema
	out := make([]int, len(columns))
	for i, name := range columns {
		idx := schema.ColumnIndexByName(name)
		if idx < 0 {
			return nil, fmt.Errorf("no column %s: not a %s file", name, "pachca.audit.v1")
		}
		want := parquet.Types.ByteArray
		if name == "created_at" {
			want = parquet.Types.Int64
		}
		if got := schema.Column(idx).PhysicalType(); got != want {
			return nil, fmt.Errorf("column %s is %s, not %s", name, got, want)
		}
		out[i] = idx
	}
	return out, nil
}

// batchToRows appends the rows of rec in the part's span to rows. Strings
// point into rec's buffers.
func batchToRows(rec arrow.RecordBatch, p Part, rows []Row) ([]Row, error) {
	if int(rec.NumCols()) != len(columns) {
		return rows, fmt.Errorf("read %d columns, want %d", rec.NumCols(), len(columns))
	}
	var strs [len(columns)]*array.String
	for i := range columns {
		if i == 1 {
			continue
		}
		s, ok := rec.Column(i).(*array.String)
		if !ok {
			return rows, fmt.Errorf("column %s is %s, not a string", columns[i], rec.Column(i).DataType())
		}
		strs[i] = s
	}
	ts, ok := rec.Column(1).(*array.Timestamp)
	if !ok {
		return rows, fmt.Errorf("column created_at is %s, not a timestamp", rec.Column(1).DataType())
	}
	unit := ts.DataType().(*arrow.TimestampType).Unit
	for i := 0; i < int(rec.NumRows()); i++ {
		ms := toMillis(int64(ts.Value(i)), unit)
		if ts.IsNull(i) || !p.in(ms) {
			continue
		}
		r := Row{
			ID: strs[0].Value(i), CreatedAt: ms, EventKey: strs[2].Value(i), EventCategory: strs[3].Value(i),
			ActorID: strs[4].Value(i), ActorType: strs[5].Value(i), EntityID: strs[6].Value(i),
			EntityType: strs[7].Value(i), DetailsJSON: strs[9].Value(i),
		}
		if strs[8].IsValid(i) {
			r.IPAddress.Valid, r.IPAddress.Str = true, strs[8].Value(i)
		}
		rows = append(rows, r)
	}
	return rows, nil
}

func toMillis(v int64, u arrow.TimeUnit) int64 {
	switch u {
	case arrow.Second:
		return v * 1000
	case arrow.Microsecond:
		return v / 1000
	case arrow.Nanosecond:
		return v / 1_000_000
	}
	return v
}
