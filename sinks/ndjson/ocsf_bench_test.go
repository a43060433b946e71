package ndjson_test

import (
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/sinks/ndjson"
	"github.com/pachca-export/pachca-export/transform"
)

// BenchmarkOCSFEncode maps and encodes simulated events as zstd NDJSON, in
// batches of 1,000.
func BenchmarkOCSFEncode(b *testing.B) {
	cfg := simulator.DefaultConfig()
	cfg.Events = 10_000
	srv, err := simulator.New(cfg)
	require.NoError(b, err)
	var recs []transform.Record
	for _, e := range srv.Events() {
		r, err := transform.Normalize(e.Raw, "acme")
		require.NoError(b, err)
		recs = append(recs, r)
	}
	enc, err := ndjson.NewOCSFEncoder(io.Discard, "zstd")
	require.NoError(b, err)
	i := 0
	for b.Loop() {
		require.NoError(b, enc.Write(recs[i:i+1000]))
		i = (i + 1000) % len(recs)
	}
	require.NoError(b, enc.Close())
	b.ReportMetric(float64(1000*b.N)/b.Elapsed().Seconds(), "records/s")
}
