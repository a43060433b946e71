// Package athena writes the CREATE EXTERNAL TABLE statement (Hive DDL, as
// Amazon Athena takes it) over what the file and S3 sinks write in the
// daily layout: schema v1 as Parquet files or as NDJSON lines read with the
// Hive JSON SerDe, and OCSF events as Parquet files. The dt=YYYY-MM-DD
// directories become a projected date partition, so no MSCK REPAIR or
// ALTER TABLE ADD PARTITION is ever needed.
package athena

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/pachca-export/pachca-export/sinks/parquetfmt"
	"github.com/pachca-export/pachca-export/sinks/shape"
	"github.com/pachca-export/pachca-export/transform"
	"github.com/pachca-export/pachca-export/transform/ocsf"
)

// Layout is the format of the files a table reads.
type Layout string

// The layouts a sink writes.
const (
	Parquet Layout = "parquet"
	NDJSON  Layout = "ndjson"
)

// TimestampFormat is the Joda pattern of created_at in NDJSON
// (2025-05-15T14:30:00.000Z), for the JSON SerDe's timestamp.formats.
const TimestampFormat = "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'"

// Table is what a statement describes.
type Table struct {
	// Name is "table" or "database.table"; see ValidName.
	Name string
	// Location is the directory of the dt= partitions, e.g.
	// "s3://bucket/audit/"; a missing final slash is added.
	Location string
	Layout   Layout
	// OCSF makes it a table of OCSF 1.3 events (a sink's schema: ocsf),
	// Parquet only; else of schema v1.
	OCSF bool
}

// ErrOCSFLines is the error of a table over OCSF NDJSON lines: their
// unmapped.details is a JSON object where the Parquet files have its text,
// and the JSON SerDe reads no object into a string.
var ErrOCSFLines = errors.New("no table over OCSF NDJSON lines (Athena's JSON SerDe cannot read their unmapped.details, a JSON object, as the string the Parquet files hold): point the table at an OCSF Parquet sink")

var (
	namePart     = regexp.MustCompile(`^[a-z0-9_]{1,255}$`)
	partitionDir = regexp.MustCompile(`^dt=[0-9]{4}-[0-9]{2}-[0-9]{2}$`)
)

// ValidName reports whether name is a table name Athena accepts as is:
// lower-case letters, digits and underscores, at most 255 of them,
// optionally after a database name of the same kind and a dot. The error
// says what is wrong.
func ValidName(name string) error {
	parts := strings.Split(name, ".")
	if len(parts) > 2 {
		return fmt.Errorf("%q has more than one dot: write table or database.table", name)
	}
	for _, p := range parts {
		if !namePart.MatchString(p) {
			return fmt.Errorf("%q: Athena names take only lower-case letters, digits and _ (e.g. pachca_audit or security.pachca_audit)", name)
		}
	}
	return nil
}

// ValidLocation reports whether loc is a table location Athena reads: an
// s3:// URL of the directory that holds the dt= partitions. The error says
// what is wrong: not a URL, another scheme (an https:// object URL copied
// from the S3 console, say), or one dt=YYYY-MM-DD partition, over which
// the projected partitions would find nothing.
func ValidLocation(loc string) error {
	u, err := url.Parse(loc)
	if err != nil || u.Scheme == "" || u.Host == "" && u.Path == "" {
		return fmt.Errorf("%q: want the URL of a directory, such as s3://bucket/prefix/", loc)
	}
	if u.Scheme != "s3" || u.Host == "" {
		return fmt.Errorf("%q: Athena reads only s3:// locations, such as s3://bucket/prefix/", loc)
	}
	if partitionDir.MatchString(path.Base(u.Path)) {
		parent := strings.TrimSuffix(loc, "/")
		parent = parent[:strings.LastIndex(parent, "/")+1]
		return fmt.Errorf("%q is one dt= partition: give the directory that holds them, %s", loc, parent)
	}
	// The key prefix as written, the way an S3 sink's prefix is: one that
	// sink refuses holds no partition, and the table would be empty.
	_, prefix, _ := strings.Cut(strings.TrimPrefix(loc, "s3://"), "/")
	if err := shape.CheckPrefix(prefix); err != nil {
		return fmt.Errorf("%q: no sink writes there, its prefix %w", loc, err)
	}
	return nil
}

// DDL returns the statement for t; t.Name must be valid (ValidName).
func DDL(t Table) (string, error) {
	if err := ValidName(t.Name); err != nil {
		return "", err
	}
	if t.Layout != Parquet && t.Layout != NDJSON {
		return "", fmt.Errorf("unknown layout %q (parquet, ndjson)", t.Layout)
	}
	if t.OCSF && t.Layout != Parquet {
		return "", ErrOCSFLines
	}
	cols, version, err := columns(t.OCSF)
	if err != nil {
		return "", err
	}
	location := t.Location
	if !strings.HasSuffix(location, "/") {
		location += "/"
	}
	var b strings.Builder
	b.WriteString("CREATE EXTERNAL TABLE IF NOT EXISTS ")
	for i, part := range strings.Split(t.Name, ".") {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(quoteIdent(part))
	}
	b.WriteString(" (\n")
	for i, c := range cols {
		fmt.Fprintf(&b, "  %s %s", quoteIdent(c.name), c.typ)
		if c.doc != "" {
			fmt.Fprintf(&b, " COMMENT %s", quoteString(c.doc))
		}
		if i < len(cols)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString(")\n")
	fmt.Fprintf(&b, "COMMENT %s\n", quoteString("Pachca audit events, "+version+", "+string(t.Layout)))
	b.WriteString("PARTITIONED BY (`dt` string)\n")
	switch t.Layout {
	case Parquet:
		b.WriteString("STORED AS PARQUET\n")
	case NDJSON:
		// One object per line; a missing details_* key reads as null; .gz
		// files are decompressed by their extension.
		b.WriteString("ROW FORMAT SERDE 'org.apache.hive.hcatalog.data.JsonSerDe'\n")
		// Double quotes, as Athena's documentation writes it: the pattern
		// holds single quotes.
		fmt.Fprintf(&b, "WITH SERDEPROPERTIES (\"timestamp.formats\"=\"%s\")\n", TimestampFormat)
	}
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
		{"pachca.schema_version", version},
	}
	for i, p := range props {
		fmt.Fprintf(&b, "  %s=%s", quoteString(p[0]), quoteString(p[1]))
		if i < len(props)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString(");\n")
	return b.String(), nil
}

type column struct{ name, typ, doc string }

// columns are the table's columns and the schema version they are: schema
// v1's, or those of an OCSF Parquet file holding any class.
func columns(ocsfEvents bool) ([]column, string, error) {
	var cols []column
	if !ocsfEvents {
		for _, c := range transform.Columns() {
			cols = append(cols, column{c.Name, hiveType(c.Kind), c.Doc})
		}
		return cols, transform.SchemaVersion, nil
	}
	schema, err := parquetfmt.OCSFArrowSchema()
	if err != nil {
		return nil, "", err
	}
	for _, f := range schema.Fields() {
		typ, err := hiveArrowType(f.Type)
		if err != nil {
			return nil, "", fmt.Errorf("athena: OCSF column %s: %w", f.Name, err)
		}
		cols = append(cols, column{name: f.Name, typ: typ})
	}
	return cols, ocsf.SchemaVersion, nil
}

// hiveArrowType is the Athena/Hive type of an Arrow type of the OCSF
// Parquet files, nested as Athena's own CloudTrail table writes them
// (struct<type:string,...>), a name Athena reserves in DDL quoted.
func hiveArrowType(dt arrow.DataType) (string, error) {
	switch t := dt.(type) {
	case *arrow.StringType:
		return "string", nil
	case *arrow.Int32Type:
		return "int", nil
	case *arrow.Int64Type:
		return "bigint", nil
	case *arrow.BooleanType:
		return "boolean", nil
	case *arrow.TimestampType:
		return "timestamp", nil
	case *arrow.MapType:
		k, err := hiveArrowType(t.KeyType())
		if err != nil {
			return "", err
		}
		v, err := hiveArrowType(t.ItemType())
		if err != nil {
			return "", err
		}
		return "map<" + k + "," + v + ">", nil
	case *arrow.ListType:
		e, err := hiveArrowType(t.Elem())
		if err != nil {
			return "", err
		}
		return "array<" + e + ">", nil
	case *arrow.StructType:
		fields := make([]string, 0, t.NumFields())
		for _, f := range t.Fields() {
			ft, err := hiveArrowType(f.Type)
			if err != nil {
				return "", fmt.Errorf("%s: %w", f.Name, err)
			}
			fields = append(fields, fieldName(f.Name)+":"+ft)
		}
		return "struct<" + strings.Join(fields, ",") + ">", nil
	}
	return "", fmt.Errorf("no Hive type for %s", dt)
}

// fieldName is the name of a struct's field as the DDL writes it: in
// backticks if Athena reserves it in DDL (user, time, group, ...), else as
// it is.
func fieldName(name string) string {
	if reserved[strings.ToUpper(name)] {
		return quoteIdent(name)
	}
	return name
}

// reserved are Athena's reserved keywords in DDL statements, as its
// documentation lists them (Reserved keywords).
var reserved = func() map[string]bool {
	m := map[string]bool{}
	for _, k := range strings.Fields(`ALL ALTER AND ARRAY AS AUTHORIZATION BETWEEN BIGINT BINARY BOOLEAN BOTH BY
		CASE CASHE CAST CHAR COLUMN CONF CONSTRAINT COMMIT CREATE CROSS CUBE CURRENT CURRENT_DATE
		CURRENT_TIMESTAMP CURSOR DATABASE DATE DAYOFWEEK DECIMAL DELETE DESCRIBE DISTINCT DIV DOUBLE DROP
		ELSE END EXCHANGE EXISTS EXTENDED EXTERNAL EXTRACT FALSE FETCH FLOAT FLOOR FOLLOWING FOR FOREIGN
		FROM FULL FUNCTION GRANT GROUP GROUPING HAVING IF IMPORT IN INNER INSERT INT INTEGER INTERSECT
		INTERVAL INTO IS JOIN LATERAL LEFT LESS LIKE LOCAL MACRO MAP MORE NONE NOT NULL NUMERIC OF ON
		ONLY OR ORDER OUT OUTER OVER PARTIALSCAN PARTITION PERCENT PRECEDING PRECISION PRESERVE PRIMARY
		PROCEDURE RANGE READS REDUCE REGEXP REFERENCES REVOKE RIGHT RLIKE ROLLBACK ROLLUP ROW ROWS
		SELECT SET SMALLINT START TABLE TABLESAMPLE THEN TIME TIMESTAMP TO TRANSFORM TRIGGER TRUE
		TRUNCATE UNBOUNDED UNION UNIQUEJOIN UPDATE USER USING UTC_TIMESTAMP VALUES VARCHAR VIEWS WHEN
		WHERE WINDOW WITH`) {
		m[k] = true
	}
	return m
}()

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
	panic(fmt.Sprintf("athena: kind %v has no Hive type", k))
}

func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// quoteString quotes a Hive string literal, which escapes with backslashes.
func quoteString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, "'", `\'`).Replace(s) + "'"
}
