package parquetfmt_test

import (
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/sinks/parquetfmt"
	"github.com/pachca-export/pachca-export/testkit/ocsftest"
	"github.com/pachca-export/pachca-export/transform"
)

// BenchmarkOCSFEncode maps and encodes a zstd file of 100,000 simulated
// events per iteration, in batches of 1,000, and reports records/s, bytes
// per record and the peak of the encoder's Arrow and Parquet buffers.
func BenchmarkOCSFEncode(b *testing.B) {
	const n, batch = 100_000, 1000
	recs := ocsftest.Simulated(b, 20_000, false)
	scratch := make([]transform.Record, batch)
	var out countingWriter
	var peak int64
	cpu0 := cpuTime()
	for b.Loop() {
		out.n = 0
		mem := &peakAllocator{Allocator: memory.NewGoAllocator()}
		enc, err := parquetfmt.NewOCSFEncoder(&out, testPartition(), "zstd", nil, parquetfmt.WithAllocator(mem))
		require.NoError(b, err)
		for i := 0; i < n; i += batch {
			copy(scratch, recs[i%len(recs):])
			require.NoError(b, enc.Write(scratch))
		}
		require.NoError(b, enc.Close())
		peak = max(peak, mem.peak.Load())
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(n*b.N)/(cpuTime()-cpu0).Seconds(), "records/cpu-s")
	b.ReportMetric(float64(out.n)/n, "file-B/record")
	b.ReportMetric(float64(peak)/(1<<20), "peak-arrow-MiB")
	b.ReportMetric(0, "ns/op")
}
