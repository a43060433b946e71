// Package parquetfmt encodes schema v1 records as Parquet files with Apache
// Arrow Go: a declared schema (never inferred from data), zstd by default,
// bounded memory (one row group), and per-file metadata naming the run and
// the partition. It is a sinks.Format; the file and S3 sinks put its output
// somewhere.
package parquetfmt

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/pachca-export/pachca-export/transform"
)

// Keys of the file's key-value metadata. MetaSchemaVersion also sits in the
// Arrow schema's metadata, from which every file copies it.
const (
	MetaSchemaVersion = "schema_version"
	MetaRunID         = "run_id"
	MetaDay           = "dt"
	MetaRangeFrom     = "range_from"
	MetaRangeTo       = "range_to"
)

// timestampType is TIMESTAMP(MILLIS, isAdjustedToUTC=true) in Parquet: an
// empty time zone would mean local time to Spark and DuckDB.
var timestampType = &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}

// ArrowSchema returns schema v1 as an Arrow schema, derived from
// transform.Columns(); every file has exactly this schema, whatever the data.
// Safe for concurrent use; each call returns a new schema.
func ArrowSchema() *arrow.Schema {
	cols := transform.Columns()
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		fields[i] = arrow.Field{Name: c.Name, Type: arrowType(c.Kind), Nullable: c.Nullable}
	}
	md := arrow.NewMetadata([]string{MetaSchemaVersion}, []string{transform.SchemaVersion})
	return arrow.NewSchema(fields, &md)
}

func arrowType(k transform.Kind) arrow.DataType {
	switch k {
	case transform.KindString:
		return arrow.BinaryTypes.String
	case transform.KindTimestamp:
		return timestampType
	case transform.KindInt64:
		return arrow.PrimitiveTypes.Int64
	case transform.KindBool:
		return arrow.FixedWidthTypes.Boolean
	case transform.KindStringList:
		// A nullable element, as pyarrow writes and expects: the three-level
		// LIST with an optional element is what every reader accepts
		// (arrow-go #311, #325).
		return arrow.ListOfField(arrow.Field{Name: "element", Type: arrow.BinaryTypes.String, Nullable: true})
	}
	panic(fmt.Sprintf("parquetfmt: kind %v has no Arrow type", k))
}
