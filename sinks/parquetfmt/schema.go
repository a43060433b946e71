// Package parquetfmt encodes schema v1 records as Parquet files with Apache
// Arrow Go: a declared schema (never inferred from data), zstd by default,
// bounded memory (one row group), and per-file metadata naming the run and
// the partition. It is a sinks.Format; the file and S3 sinks put its output
// somewhere.
package parquetfmt

import (
	"fmt"
	"strings"

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

// hiveType is the Athena/Hive type of a kind.
func hiveType(k transform.Kind) string {
	switch k {
	case transform.KindString:
		return "string"
	case transform.KindTimestamp:
		return "timestamp"
	case transform.KindInt64:
		return "bigint"
	case transform.KindBool:
		return "boolean"
	case transform.KindStringList:
		return "array<string>"
	}
	panic(fmt.Sprintf("parquetfmt: kind %v has no Hive type", k))
}

// SchemaSQL returns a CREATE EXTERNAL TABLE statement for Athena (or Hive)
// over the Parquet files under location (e.g. "s3://bucket/audit/"), with the
// dt=YYYY-MM-DD directories as a projected date partition. table may be
// "db.table".
func SchemaSQL(table, location string) string {
	if !strings.HasSuffix(location, "/") {
		location += "/"
	}
	var b strings.Builder
	b.WriteString("CREATE EXTERNAL TABLE IF NOT EXISTS ")
	for i, part := range strings.Split(table, ".") {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(quoteIdent(part))
	}
	b.WriteString(" (\n")
	cols := transform.Columns()
	for i, c := range cols {
		fmt.Fprintf(&b, "  %s %s COMMENT %s", quoteIdent(c.Name), hiveType(c.Kind), quoteString(c.Doc))
		if i < len(cols)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString(")\n")
	fmt.Fprintf(&b, "COMMENT %s\n", quoteString("Pachca audit events, "+transform.SchemaVersion))
	b.WriteString("PARTITIONED BY (`dt` string)\n")
	b.WriteString("STORED AS PARQUET\n")
	fmt.Fprintf(&b, "LOCATION %s\n", quoteString(location))
	b.WriteString("TBLPROPERTIES (\n")
	props := [][2]string{
		{"projection.enabled", "true"},
		{"projection.dt.type", "date"},
		{"projection.dt.format", "yyyy-MM-dd"},
		{"projection.dt.range", "2020-01-01,NOW"},
		{"projection.dt.interval", "1"},
		{"projection.dt.interval.unit", "DAYS"},
		{"storage.location.template", location + "dt=${dt}/"},
		{"pachca.schema_version", transform.SchemaVersion},
	}
	for i, p := range props {
		fmt.Fprintf(&b, "  %s=%s", quoteString(p[0]), quoteString(p[1]))
		if i < len(props)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString(");\n")
	return b.String()
}

func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// quoteString quotes a Hive string literal, which escapes with backslashes.
func quoteString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, "'", `\'`).Replace(s) + "'"
}
