package s3sink_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/parquetfmt"
	"github.com/pachca-export/pachca-export/sinks/s3sink"
	"github.com/pachca-export/pachca-export/testkit/miniotest"
)

// TestParquet uploads Parquet partitions: each object is byte for byte what
// the encoder produces locally, and reads back with its rows in order.
func TestParquet(t *testing.T) {
	srv := miniotest.Start(t)
	srv.CreateBucket("parquet")
	c := config(t, srv, "parquet", "parquet", "zstd")
	f, err := parquetfmt.Format(c.Compression)
	require.NoError(t, err)
	s, err := s3sink.New(t.Context(), c, f)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close(context.Background())) })

	p := sinks.NewPartition(day, day, day.Add(24*time.Hour), "run-pq")
	recs := records(t, p, 2000, "pq")
	res := commit(t, s, p, recs)
	require.Equal(t, []string{"audit/dt=2026-11-01/pachca-audit-2026-11-01.parquet"}, res.Files)
	body, meta := get(t, srv, "parquet", res.Files[0])

	var local bytes.Buffer
	enc, err := f.New(&local, p)
	require.NoError(t, err)
	for i := 0; i < len(recs); i += 100 { // the batches commit writes
		require.NoError(t, enc.Write(recs[i:min(i+100, len(recs))]))
	}
	require.NoError(t, enc.Close())
	require.Equal(t, local.Len(), len(body))
	require.True(t, bytes.Equal(local.Bytes(), body), "the object differs from the local encoding")

	tbl, err := pqarrow.ReadTable(context.Background(), bytes.NewReader(body), parquet.NewReaderProperties(nil),
		pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	require.NoError(t, err)
	defer tbl.Release()
	require.Equal(t, int64(len(recs)), tbl.NumRows())
	idx := tbl.Schema().FieldIndices("id")
	require.Len(t, idx, 1)
	var ids []string
	for _, chunk := range tbl.Column(idx[0]).Data().Chunks() {
		col := chunk.(*array.String)
		for i := range col.Len() {
			ids = append(ids, col.Value(i))
		}
	}
	for i := range recs {
		require.Equal(t, recs[i].ID, ids[i])
	}

	m := manifest(t, srv, "parquet", "audit/dt=2026-11-01/_manifest.json")
	require.Len(t, m.Files, 1)
	require.Equal(t, meta["sha256"], m.Files[0].SHA256)
	require.Equal(t, int64(2000), m.Files[0].Records)
}
