package parquetfmt_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/sinks/parquetfmt"
	"github.com/pachca-export/pachca-export/testkit/ocsfschema"
	"github.com/pachca-export/pachca-export/testkit/ocsftest"
	"github.com/pachca-export/pachca-export/transform"
	"github.com/pachca-export/pachca-export/transform/ocsf"
)

// encodeOCSF writes recs in batches of 500 to a file and returns its path.
func encodeOCSF(t testing.TB, recs []transform.Record, classes []int32, opts ...parquetfmt.Option) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ocsf.parquet")
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	enc, err := parquetfmt.NewOCSFEncoder(f, testPartition(), "", classes, opts...)
	require.NoError(t, err)
	for i := 0; i < len(recs); i += 500 {
		require.NoError(t, enc.Write(recs[i:min(i+500, len(recs))]))
	}
	require.NoError(t, enc.Close())
	require.NoError(t, f.Close())
	return path
}

func openParquetGo(t testing.TB, path string) (*os.File, *parquet.File) {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	require.NoError(t, err)
	pf, err := parquet.OpenFile(f, st.Size())
	require.NoError(t, err)
	return f, pf
}

// TestOCSFInteropParquetGo reads a file holding every class with
// github.com/parquet-go/parquet-go, which shares no code with Arrow Go:
// every row equals the JSON event of its record (JSON texts compared as
// JSON, time_dt as milliseconds), in the order written, with the nested
// types Security Lake expects.
func TestOCSFInteropParquetGo(t *testing.T) {
	recs := append(ocsftest.Records(t), ocsftest.Many(t, 4000)...)
	path := encodeOCSF(t, recs, nil, parquetfmt.WithRowGroupRows(1500))
	f, pf := openParquetGo(t, path)
	require.EqualValues(t, len(recs), pf.NumRows())
	require.Len(t, pf.RowGroups(), 3)
	v, _ := pf.Lookup("schema_version")
	require.Equal(t, ocsf.SchemaVersion, v)
	v, _ = pf.Lookup("run_id")
	require.Equal(t, "run-0001", v)

	requireOCSFTypes(t, pf.Schema())

	r := parquet.NewGenericReader[map[string]any](f, pf.Schema())
	defer r.Close()
	rows := make([]map[string]any, 256)
	n := 0
	for {
		for i := range rows {
			rows[i] = map[string]any{}
		}
		k, err := r.Read(rows)
		for _, row := range rows[:k] {
			require.Less(t, n, len(recs))
			require.Equal(t, expectedRow(t, &recs[n]), comparable(t, "", row), "row %d (%s)", n, recs[n].EventKey)
			n++
		}
		if err != nil {
			break
		}
	}
	require.Equal(t, len(recs), n)
}

// requireOCSFTypes checks the Parquet types of the columns Security Lake
// and the OCSF types care about.
func requireOCSFTypes(t *testing.T, s *parquet.Schema) {
	t.Helper()
	col := func(path ...string) parquet.Field {
		var node parquet.Field
		fields := s.Fields()
		for _, name := range path {
			i := slices.IndexFunc(fields, func(f parquet.Field) bool { return f.Name() == name })
			require.GreaterOrEqual(t, i, 0, "no column %v", path)
			node = fields[i]
			fields = node.Fields()
		}
		return node
	}
	// time is OCSF's timestamp_t, a long: a signed 64-bit integer, no timestamp.
	require.Equal(t, parquet.Int64, col("time").Type().Kind())
	it, ok := col("time").Type().LogicalType().Value.(*format.IntType)
	require.True(t, ok, "time: %v", col("time").Type().LogicalType())
	require.True(t, it.IsSigned)
	require.EqualValues(t, 64, it.BitWidth)
	require.True(t, col("time").Required())
	// time_dt is the datetime profile's timestamp: TIMESTAMP(MILLIS, UTC).
	ts, ok := col("time_dt").Type().LogicalType().Value.(*format.TimestampType)
	require.True(t, ok)
	require.True(t, ts.IsAdjustedToUTC)
	require.IsType(t, &format.MilliSeconds{}, ts.Unit.Value)
	for _, c := range []string{"class_uid", "category_uid", "activity_id", "severity_id", "status_id"} {
		require.Equal(t, parquet.Int32, col(c).Type().Kind(), c)
		require.True(t, col(c).Required(), c)
	}
	require.Equal(t, parquet.Int64, col("type_uid").Type().Kind())
	require.False(t, col("metadata").Leaf())
	require.True(t, col("metadata").Required())
	require.IsType(t, &format.StringType{}, col("metadata", "uid").Type().LogicalType().Value)
	require.IsType(t, &format.StringType{}, col("actor", "user", "uid").Type().LogicalType().Value)
	require.Equal(t, parquet.Boolean, col("is_mfa").Type().Kind())
	require.IsType(t, &format.ListType{}, col("privileges").Type().LogicalType().Value)
	require.IsType(t, &format.ListType{}, col("resources").Type().LogicalType().Value)
	require.IsType(t, &format.ListType{}, col("metadata", "profiles").Type().LogicalType().Value)
	require.IsType(t, &format.MapType{}, col("unmapped").Type().LogicalType().Value)
	require.Equal(t, parquet.Int32, col("finding_info", "analytic", "type_id").Type().Kind())
}

// expectedRow is the JSON event of r in the form parquet-go reads it.
func expectedRow(t *testing.T, r *transform.Record) map[string]any {
	t.Helper()
	want := ocsftest.Event(t, r)
	want["time_dt"] = json.Number(strconv.FormatInt(r.CreatedAt, 10))
	ev := ocsf.Map(r)
	u := map[string]any{}
	for _, f := range ev.Unmapped {
		u[f.Name] = f.Value // a map<string, string>: details as JSON text
	}
	want["unmapped"] = u
	return want
}

// comparable turns a parquet-go row into JSON's form: nulls dropped,
// integers as json.Number, JSON texts (data) decoded.
func comparable(t *testing.T, name string, v any) any {
	t.Helper()
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			if e == nil {
				continue
			}
			if b, ok := e.(*[]byte); ok { // parquet-go's reading of a map's values
				e = string(*b)
			}
			out[k] = comparable(t, k, e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = comparable(t, "", e)
		}
		return out
	case int32:
		return json.Number(strconv.FormatInt(int64(x), 10))
	case int64:
		return json.Number(strconv.FormatInt(x, 10))
	case string:
		if name == "data" {
			doc, err := ocsfschema.Decode([]byte(`{"v":` + x + `}`))
			require.NoError(t, err)
			return doc["v"]
		}
	}
	return v
}

// TestOCSFClassFile: a one-class file declares exactly the class's
// attributes as columns and refuses an event of another class.
func TestOCSFClassFile(t *testing.T) {
	var auth, other []transform.Record
	for _, r := range ocsftest.Records(t) {
		if ocsf.Map(&r).ClassUID == ocsf.ClassAuthentication {
			auth = append(auth, r)
		} else if other == nil {
			other = []transform.Record{r}
		}
	}
	require.NotEmpty(t, auth)
	f, err := parquetfmt.OCSFClassFormat("zstd", []int32{ocsf.ClassAuthentication})
	require.NoError(t, err)
	require.Equal(t, "parquet", f.Name)
	var buf bytes.Buffer
	enc, err := f.New(&buf, testPartition())
	require.NoError(t, err)
	require.NoError(t, enc.Write(auth))
	err = enc.Write(other)
	require.ErrorContains(t, err, "not a column of this file")
	require.Error(t, enc.Close(), "the file failed")

	path := encodeOCSF(t, auth, []int32{ocsf.ClassAuthentication})
	_, pf := openParquetGo(t, path)
	require.EqualValues(t, len(auth), pf.NumRows())
	var names []string
	for _, fl := range pf.Schema().Fields() {
		names = append(names, fl.Name())
	}
	cls, _ := ocsf.ClassByUID(ocsf.ClassAuthentication)
	require.Equal(t, cls.Attributes, names)
	v, _ := pf.Lookup(parquetfmt.MetaOCSFClasses)
	require.Equal(t, "3002", v)

	_, err = parquetfmt.OCSFClassFormat("", []int32{4001})
	require.ErrorContains(t, err, "no OCSF class 4001")
	_, err = parquetfmt.OCSFFormat("lz4")
	require.ErrorContains(t, err, "unknown compression")
}

// TestOCSFSecurityLakeLimits: zstd everywhere, no data page of 1 MB or
// more before compression, row groups far under 256 MB; pages do fill up
// to the target, so the limit is what keeps them under 1 MB. And no page
// over 128 KiB, the window of the process's zstd encoders (zstdWindow), as
// for schema v1: the column writers hold their pages twice over while
// they compress them, and 512 KiB OCSF pages kept a 1,000,000-event export
// over its heap limit.
func TestOCSFSecurityLakeLimits(t *testing.T) {
	recs := ocsftest.Many(t, 30000)
	for i := range recs { // long user agents make the column several MB
		recs[i].UserAgent = null(strconv.Itoa(i) + " " + recs[i].UserAgent.Str + string(bytes.Repeat([]byte{'a' + byte(i%26)}, 300)))
	}
	path := encodeOCSF(t, recs, nil)
	rdr, err := file.OpenParquetFile(path, false)
	require.NoError(t, err)
	defer rdr.Close()
	largest := 0
	for g := range rdr.NumRowGroups() {
		rg := rdr.RowGroup(g)
		require.Less(t, rg.MetaData().TotalCompressedSize(), int64(256<<20))
		for c := range rg.NumColumns() {
			chunk, err := rg.MetaData().ColumnChunk(c)
			require.NoError(t, err)
			require.Equal(t, compress.Codecs.Zstd, chunk.Compression(), chunk.PathInSchema().String())
			pages, err := rg.GetColumnPageReader(c)
			require.NoError(t, err)
			for pages.Next() {
				if dp, ok := pages.Page().(file.DataPage); ok {
					size := int(dp.UncompressedSize())
					require.Less(t, size, 1<<20, "page of %s", chunk.PathInSchema().String())
					require.LessOrEqual(t, size, 128<<10, "page of %s", chunk.PathInSchema().String())
					largest = max(largest, size)
				}
			}
			require.NoError(t, pages.Err())
		}
	}
	require.Greater(t, largest, parquetfmt.OCSFDataPageSize/2, "no column filled a page: the test proves nothing")
}

// TestOCSFMemory: every buffer goes back to the allocator, after success
// and after a failing writer.
func TestOCSFMemory(t *testing.T) {
	recs := ocsftest.Many(t, 3000)
	for _, limit := range []int{1 << 30, 5000} {
		mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
		enc, err := parquetfmt.NewOCSFEncoder(&failAfter{limit: limit}, testPartition(), "", nil,
			parquetfmt.WithAllocator(mem), parquetfmt.WithRowGroupRows(1000), parquetfmt.WithBatchRows(300))
		require.NoError(t, err)
		werr := enc.Write(recs)
		cerr := enc.Close()
		if limit == 5000 {
			require.True(t, werr != nil || cerr != nil)
			require.ErrorContains(t, cerr, "disk full")
		} else {
			require.NoError(t, werr)
			require.NoError(t, cerr)
		}
		mem.AssertSize(t, 0)
	}
}

// TestOCSFSchemaIsDeclared: the columns do not depend on the data.
func TestOCSFSchemaIsDeclared(t *testing.T) {
	a, err := parquetfmt.OCSFArrowSchema()
	require.NoError(t, err)
	b, err := parquetfmt.OCSFArrowSchema(ocsf.ClassBaseEvent, ocsf.ClassDataSecurityFinding, ocsf.ClassAccountChange,
		ocsf.ClassAuthentication, ocsf.ClassEntityManagement, ocsf.ClassUserAccess, ocsf.ClassGroupManagement,
		ocsf.ClassWebResources, ocsf.ClassAPIActivity)
	require.NoError(t, err)
	require.True(t, a.Equal(b))
	path := encodeOCSF(t, ocsftest.Records(t)[:1], nil)
	_, pf := openParquetGo(t, path)
	require.Len(t, pf.Schema().Fields(), a.NumFields())
}
