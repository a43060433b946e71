package ndjson_test

import (
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/sinks/ndjson"
	"github.com/pachca-export/pachca-export/testkit/ocsftest"
)

// BenchmarkOCSFEncode maps and encodes simulated events as zstd NDJSON, in
// batches of 1,000.
func BenchmarkOCSFEncode(b *testing.B) {
	recs := ocsftest.Simulated(b, 10_000, false)
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
