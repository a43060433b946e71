package parquetfmt_test

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/ndjson"
	"github.com/pachca-export/pachca-export/sinks/parquetfmt"
	"github.com/pachca-export/pachca-export/transform"
)

func TestRoundTrip(t *testing.T) {
	many := append(edgeRecords(), genRecords(10_000, 1)...)
	tests := []struct {
		name        string
		recs        []transform.Record
		batch       int // records per Write call
		opts        []parquetfmt.Option
		compression string
		rowGroups   int
	}{
		{name: "zero records", recs: nil, batch: 1, rowGroups: 0},
		{name: "edge cases", recs: edgeRecords(), batch: 1, rowGroups: 1},
		{name: "edge cases in one write", recs: edgeRecords(), batch: 100, rowGroups: 1},
		{
			name: "many batches over several row groups", recs: many, batch: 777,
			opts:      []parquetfmt.Option{parquetfmt.WithRowGroupRows(3000), parquetfmt.WithBatchRows(256)},
			rowGroups: 4,
		},
		{name: "one huge write, default sizes", recs: many, batch: len(many), rowGroups: 1},
		{name: "none", recs: many[:500], batch: 100, compression: "none", rowGroups: 1},
		{name: "snappy", recs: many[:500], batch: 100, compression: "snappy", rowGroups: 1},
		{name: "gzip", recs: many[:500], batch: 100, compression: "gzip", rowGroups: 1},
		{name: "zstd", recs: many[:500], batch: 100, compression: "zstd", rowGroups: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
			opts := append([]parquetfmt.Option{parquetfmt.WithAllocator(mem)}, tt.opts...)
			path := encode(t, tt.recs, tt.batch, tt.compression, opts...)
			mem.AssertSize(t, 0)

			tbl, rdr, sc := readArrow(t, path)
			requireSchema(t, sc)
			require.Equal(t, tt.rowGroups, rdr.NumRowGroups())
			got := recordsOf(t, tbl)
			want := tt.recs
			if want == nil {
				want = []transform.Record{}
			}
			require.Equal(t, want, got)
		})
	}
}

// requireSchema compares a read-back schema with ArrowSchema, ignoring the
// field ids the reader adds as metadata.
func requireSchema(t *testing.T, got *arrow.Schema) {
	t.Helper()
	want := parquetfmt.ArrowSchema()
	require.Equal(t, want.NumFields(), got.NumFields())
	for i, w := range want.Fields() {
		g := got.Field(i)
		require.Equal(t, w.Name, g.Name)
		require.Equal(t, w.Nullable, g.Nullable, w.Name)
		require.True(t, arrow.TypeEqual(w.Type, g.Type), "%s: got %s, want %s", w.Name, g.Type, w.Type)
	}
	v, ok := got.Metadata().GetValue("schema_version")
	require.True(t, ok, "metadata %v", got.Metadata())
	require.Equal(t, transform.SchemaVersion, v)
}

func TestArrowSchema(t *testing.T) {
	s := parquetfmt.ArrowSchema()
	cols := transform.Columns()
	require.Equal(t, len(cols), s.NumFields())
	for i, c := range cols {
		f := s.Field(i)
		require.Equal(t, c.Name, f.Name)
		require.Equal(t, c.Nullable, f.Nullable, c.Name)
		switch c.Kind {
		case transform.KindTimestamp:
			require.Equal(t, &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}, f.Type)
		case transform.KindStringList:
			lt, ok := f.Type.(*arrow.ListType)
			require.True(t, ok, c.Name)
			require.True(t, lt.ElemField().Nullable, "pyarrow expects a nullable element")
			require.Equal(t, arrow.STRING, lt.Elem().ID())
		}
	}
	v, ok := s.Metadata().GetValue("schema_version")
	require.True(t, ok)
	require.Equal(t, transform.SchemaVersion, v)
}

func TestFileMetadata(t *testing.T) {
	path := encode(t, edgeRecords(), 10, "")
	_, rdr, _ := readArrow(t, path)
	kv := rdr.MetaData().KeyValueMetadata()
	want := map[string]string{
		"schema_version": transform.SchemaVersion,
		"run_id":         "run-0001",
		"dt":             "2026-11-01",
		"range_from":     "2026-11-01T00:00:00.000Z",
		"range_to":       "2026-11-02T00:00:00.000Z",
	}
	for k, v := range want {
		got := kv.FindValue(k)
		require.NotNil(t, got, k)
		require.Equal(t, v, *got, k)
	}
	keys := kv.Keys()
	require.Contains(t, keys, "ARROW:schema", "WithStoreSchema")
	slices.Sort(keys)
	require.Equal(t, len(keys), len(slices.Compact(keys)), "duplicate metadata keys: %v", keys)
}

func TestWriterProperties(t *testing.T) {
	path := encode(t, genRecords(2000, 2), 500, "")
	_, rdr, _ := readArrow(t, path)
	rg := rdr.MetaData().RowGroup(0)
	dict := func(name string) bool {
		i := rdr.MetaData().Schema.ColumnIndexByName(name)
		require.GreaterOrEqual(t, i, 0, name)
		cc, err := rg.ColumnChunk(i)
		require.NoError(t, err)
		require.Equal(t, compress.Codecs.Zstd, cc.Compression(), name)
		ok, err := cc.StatsSet()
		require.NoError(t, err)
		require.True(t, ok, "statistics for %s", name)
		return slices.Contains(cc.Encodings(), parquet.Encodings.RLEDict) ||
			slices.Contains(cc.Encodings(), parquet.Encodings.PlainDict)
	}
	for _, name := range []string{"id", "created_at", "details_json"} {
		require.False(t, dict(name), "dictionary for unique column %s", name)
	}
	for _, name := range []string{"event_key", "event_category", "workspace", "schema_version", "actor_id"} {
		require.True(t, dict(name), "no dictionary for %s", name)
	}
}

func TestCompression(t *testing.T) {
	for _, c := range append(slices.Clone(parquetfmt.Compressions), "") {
		f, err := parquetfmt.Format(c)
		require.NoError(t, err, c)
		require.Equal(t, ".parquet", f.Ext)
		require.Equal(t, "parquet", f.Name)
		var buf bytes.Buffer
		enc, err := f.New(&buf, testPartition())
		require.NoError(t, err)
		require.NoError(t, enc.Write(edgeRecords()))
		require.NoError(t, enc.Close())
		rdr, err := file.NewParquetReader(bytes.NewReader(buf.Bytes()))
		require.NoError(t, err)
		require.EqualValues(t, len(edgeRecords()), rdr.NumRows())
		require.NoError(t, rdr.Close())
	}
	for _, c := range []string{"lz4", "ZSTD", "brotli", " "} {
		_, err := parquetfmt.Format(c)
		require.ErrorContains(t, err, "unknown compression", c)
		_, err = parquetfmt.NewEncoder(&bytes.Buffer{}, sinks.Partition{}, c)
		require.ErrorContains(t, err, "unknown compression", c)
	}
}

func TestBadOptions(t *testing.T) {
	for _, o := range []parquetfmt.Option{
		parquetfmt.WithRowGroupRows(0), parquetfmt.WithBatchRows(-1), parquetfmt.WithAllocator(nil),
	} {
		_, err := parquetfmt.NewEncoder(&bytes.Buffer{}, sinks.Partition{}, "", o)
		require.Error(t, err)
	}
}

// TestFailingWriter: whatever byte the writer fails at, Write or Close
// reports an error, Close stays failed, and no memory leaks.
func TestFailingWriter(t *testing.T) {
	recs := genRecords(5000, 3)
	opts := []parquetfmt.Option{parquetfmt.WithRowGroupRows(1000), parquetfmt.WithBatchRows(300)}
	var full bytes.Buffer
	enc, err := parquetfmt.NewEncoder(&full, testPartition(), "", opts...)
	require.NoError(t, err)
	require.NoError(t, enc.Write(recs))
	require.NoError(t, enc.Close())
	size := full.Len()

	for _, limit := range []int{0, 3, 4, 100, size / 3, size / 2, size - 1000, size - 9, size - 1} {
		mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
		w := &failAfter{limit: limit}
		enc, err := parquetfmt.NewEncoder(w, testPartition(), "", append(opts, parquetfmt.WithAllocator(mem))...)
		if err != nil {
			require.Less(t, limit, 4, "only the magic bytes are written up front")
			require.ErrorContains(t, err, "disk full")
			mem.AssertSize(t, 0)
			continue
		}
		var werr error
		for i := 0; i < len(recs) && werr == nil; i += 700 {
			werr = enc.Write(recs[i:min(i+700, len(recs))])
		}
		cerr := enc.Close()
		require.True(t, werr != nil || cerr != nil, "limit %d of %d: silent success", limit, size)
		require.Error(t, cerr, "limit %d: Close after a failure must fail", limit)
		require.ErrorContains(t, cerr, "disk full")
		require.Error(t, enc.Close(), "second Close")
		require.Error(t, enc.Write(recs[:1]), "Write after failure")
		mem.AssertSize(t, 0)
	}

	w := &failAfter{limit: size}
	enc, err = parquetfmt.NewEncoder(w, testPartition(), "", opts...)
	require.NoError(t, err)
	require.NoError(t, enc.Write(recs))
	require.NoError(t, enc.Close(), "exactly enough room")
}

func TestDoesNotCloseWriter(t *testing.T) {
	var w closeTracker
	enc, err := parquetfmt.NewEncoder(&w, testPartition(), "")
	require.NoError(t, err)
	require.NoError(t, enc.Write(edgeRecords()))
	require.NoError(t, enc.Close())
	require.NoError(t, enc.Close(), "second Close")
	require.False(t, w.closed)
	require.Error(t, enc.Write(edgeRecords()), "Write after Close")
	require.Equal(t, "PAR1", string(w.Bytes()[w.Len()-4:]))
}

// TestInvalidUTF8 checks strings are written as valid UTF-8, like NDJSON:
// one U+FFFD per invalid byte.
func TestInvalidUTF8(t *testing.T) {
	r := edgeRecords()[0]
	r.UserAgent = null("bad \xff\xfe end")
	r.Details[transform.DChangedAttrs] = list("ok", "\xc3")
	tbl, _, _ := readArrow(t, encode(t, []transform.Record{r}, 1, ""))
	got := recordsOf(t, tbl)
	require.Equal(t, "bad \uFFFD\uFFFD end", got[0].UserAgent.Str)
	require.Equal(t, []string{"ok", "\uFFFD"}, got[0].Details[transform.DChangedAttrs].List)
}

// TestInvalidUTF8LikeNDJSON: the same hostile bytes from the API give the
// same strings in Parquet as in NDJSON, one U+FFFD per invalid byte
// (encoding/json's rule), in the typed columns and in details_json alike.
func TestInvalidUTF8LikeNDJSON(t *testing.T) {
	raw := []byte("{\"id\":\"e\xff1\",\"created_at\":\"2026-11-23T01:00:00.000Z\",\"event_key\":\"user_login\"," +
		"\"user_agent\":\"bad \xff\xc3 bytes\",\"details\":{\"reason\":\"x\xff\xc3y\",\"changed_attrs\":[\"\xed\xa0\x80\"]}}")
	rec, err := transform.Normalize(raw, "ws")
	require.NoError(t, err)

	var line map[string]any
	require.NoError(t, json.Unmarshal(ndjson.AppendRecord(nil, &rec), &line))
	tbl, _, _ := readArrow(t, encode(t, []transform.Record{rec}, 1, ""))
	got := recordsOf(t, tbl)[0]

	require.Equal(t, "bad \uFFFD\uFFFD bytes", line["user_agent"])
	require.Equal(t, line["id"], got.ID)
	require.Equal(t, line["user_agent"], got.UserAgent.Str)
	require.Equal(t, line["details_reason"], got.Details[transform.DReason].Str)
	require.Equal(t, line["details_changed_attrs"], []any{got.Details[transform.DChangedAttrs].List[0]})
	require.Equal(t, line["details_json"], got.DetailsJSON)
}

// TestLargeRecordsBoundedByBytes: records of large details (100 KB to 1 MB
// events) close batches and row groups by their bytes, not only by their
// rows, so the encoder holds a few of them, not a row group of 32Ki (was:
// every record of the file in one batch and one row group, gigabytes for a
// day of such events, in memory and in each reader's).
func TestLargeRecordsBoundedByBytes(t *testing.T) {
	recs := genRecords(40, 7)
	rng := rand.New(rand.NewPCG(7, 7))
	for i := range recs {
		pad := make([]byte, 256<<10)
		for j := range pad {
			pad[j] = "abcdefghijklmnopqrstuvwxyz0123456789 "[rng.IntN(37)]
		}
		recs[i].DetailsJSON = `{"attachment_preview":"` + string(pad) + `"}`
	}
	const batchBytes, groupBytes = 1 << 20, 2 << 20
	mem := &peakAllocator{Allocator: memory.NewGoAllocator()}
	path := encode(t, recs, len(recs), "zstd", parquetfmt.WithAllocator(mem),
		parquetfmt.WithBatchBytes(batchBytes), parquetfmt.WithRowGroupBytes(groupBytes))

	tbl, rdr, _ := readArrow(t, path)
	require.Equal(t, recs, recordsOf(t, tbl))
	require.GreaterOrEqual(t, rdr.NumRowGroups(), 3, "10 MiB of details in row groups of 2 MiB")
	for g := range rdr.NumRowGroups() {
		size := rdr.MetaData().RowGroup(g).TotalCompressedSize()
		require.LessOrEqual(t, size, int64(groupBytes+2*batchBytes), "row group %d", g)
	}
	require.Less(t, mem.peak.Load(), int64(12<<20), "peak of the Arrow and Parquet buffers")
	t.Logf("row groups %d, peak %d MiB", rdr.NumRowGroups(), mem.peak.Load()>>20)
}
