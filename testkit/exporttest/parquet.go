package exporttest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/stretchr/testify/require"
)

// ReadParquet reads every dt=*/*.parquet file under dir into the same shape
// ReadNDJSON returns (null details_* columns left out, as in NDJSON), so that
// Compare checks Parquet output against the source too. It fails on a
// duplicate id and on a created_at column that is not TIMESTAMP(ms, UTC).
func ReadParquet(t testing.TB, dir string) map[string]Line {
	t.Helper()
	out := map[string]Line{}
	files, err := filepath.Glob(filepath.Join(dir, "dt=*", "*.parquet"))
	require.NoError(t, err)
	for _, path := range files {
		f, err := os.Open(path)
		require.NoError(t, err)
		rdr, err := file.NewParquetReader(f)
		require.NoError(t, err, path)
		fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{BatchSize: 4096}, memory.DefaultAllocator)
		require.NoError(t, err)
		tbl, err := fr.ReadTable(t.Context())
		require.NoError(t, err, path)
		ts, ok := tbl.Schema().Field(1).Type.(*arrow.TimestampType)
		require.True(t, ok, "created_at is a timestamp")
		require.Equal(t, arrow.Millisecond, ts.Unit)
		require.Equal(t, "UTC", ts.TimeZone)
		rows := make([]map[string]any, tbl.NumRows())
		for i := range rows {
			rows[i] = map[string]any{}
		}
		for c := 0; c < int(tbl.NumCols()); c++ {
			name := tbl.Schema().Field(c).Name
			row := 0
			for _, chunk := range tbl.Column(c).Data().Chunks() {
				for i := 0; i < chunk.Len(); i, row = i+1, row+1 {
					if chunk.IsNull(i) {
						if !strings.HasPrefix(name, "details_") || name == "details_json" {
							rows[row][name] = nil
						}
						continue
					}
					rows[row][name] = value(chunk, i)
				}
			}
		}
		tbl.Release()
		rdr.Close()
		for _, m := range rows {
			id := m["id"].(string)
			_, dup := out[id]
			require.False(t, dup, "event %s appears twice (second time in %s)", id, path)
			out[id] = Line{Dir: filepath.Base(filepath.Dir(path)), File: path, Fields: m}
		}
	}
	return out
}

// value converts one Arrow value to what encoding/json with UseNumber gives
// for the same NDJSON field.
func value(a arrow.Array, i int) any {
	switch a := a.(type) {
	case *array.String:
		return a.Value(i)
	case *array.Int64:
		return json.Number(strconv.FormatInt(a.Value(i), 10))
	case *array.Boolean:
		return a.Value(i)
	case *array.Timestamp:
		return time.UnixMilli(int64(a.Value(i))).UTC().Format("2006-01-02T15:04:05.000Z")
	case *array.Dictionary:
		return value(a.Dictionary(), a.GetValueIndex(i))
	case *array.List:
		start, end := a.ValueOffsets(i)
		list := []any{}
		for j := start; j < end; j++ {
			list = append(list, value(a.ListValues(), int(j)))
		}
		return list
	}
	panic("exporttest: unexpected Arrow type " + a.DataType().String())
}
