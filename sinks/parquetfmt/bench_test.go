package parquetfmt_test

import (
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/sinks/parquetfmt"
	"github.com/pachca-export/pachca-export/transform"
)

// countingWriter counts the bytes of the file.
type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// BenchmarkEncode encodes a file of 200,000 realistic records (about 30%
// with details) per iteration, handed over in batches of 1,000 as the run
// loop does, and reports records/s, output bytes per record and the peak of
// the encoder's Arrow and Parquet buffers (the buffered row group). The
// batches cycle through 20,000 generated records with fresh ids and times:
// a run holds one batch at a time, and 200,000 live Records (2 KB each)
// would mostly measure the GC scanning them.
func BenchmarkEncode(b *testing.B) {
	const n, distinct, batch = 200_000, 20_000, 1000
	recs := genRecords(distinct, 42)
	ids := make([]string, n)
	for i, r := range genRecords(n, 43) {
		ids[i] = r.ID
	}
	scratch := make([]transform.Record, batch)
	t0 := recs[0].CreatedAt
	for _, c := range []string{"zstd", "snappy", "none"} {
		b.Run(c, func(b *testing.B) {
			var out countingWriter
			var peak int64
			cpu0 := cpuTime()
			for b.Loop() {
				out.n = 0
				mem := &peakAllocator{Allocator: memory.NewGoAllocator()}
				enc, err := parquetfmt.NewEncoder(&out, testPartition(), c, parquetfmt.WithAllocator(mem))
				require.NoError(b, err)
				for i := 0; i < n; i += batch {
					copy(scratch, recs[i%distinct:])
					for k := range scratch {
						scratch[k].ID = ids[i+k]
						scratch[k].CreatedAt = t0 + int64(i+k)*250
					}
					require.NoError(b, enc.Write(scratch))
				}
				require.NoError(b, enc.Close())
				peak = max(peak, mem.peak.Load())
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(n*b.N)/(cpuTime()-cpu0).Seconds(), "records/cpu-s")
			b.ReportMetric(float64(out.n)/n, "file-B/record")
			b.ReportMetric(float64(peak)/(1<<20), "peak-arrow-MiB")
			b.ReportMetric(0, "ns/op") // a whole file per op: records/s is the figure
		})
	}
}

var _ io.Writer = (*countingWriter)(nil)

// cpuTime is the CPU time of the process (all threads, GC included): on a
// shared machine records per CPU second is steadier than per wall second.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// simEvents returns n raw events as the simulator serves them: the realistic
// mix of event keys, details and ties the exporter meets.
func simEvents(b *testing.B, n int) [][]byte {
	cfg := simulator.DefaultConfig()
	cfg.Events = n
	srv, err := simulator.New(cfg)
	require.NoError(b, err)
	var out [][]byte
	for _, ev := range srv.Events() {
		out = append(out, ev.Raw)
	}
	return out
}

// BenchmarkNormalizeEncode is the whole CPU path of a Parquet export: raw API
// events normalized into a reused batch of 1,000 Records and encoded, a file
// of 200,000 events per iteration with zstd. Run it with -cpu 1 for the
// one-core rate (events/cpu-s counts GC too).
func BenchmarkNormalizeEncode(b *testing.B) {
	const n, batch = 200_000, 1000
	raws := simEvents(b, 20_000)
	scratch := make([]transform.Record, batch)
	var norm transform.Normalizer
	var out countingWriter
	cpu0 := cpuTime()
	for b.Loop() {
		out.n = 0
		enc, err := parquetfmt.NewEncoder(&out, testPartition(), "zstd")
		require.NoError(b, err)
		for i := 0; i < n; i += batch {
			for k := range scratch {
				if err := norm.NormalizeInto(raws[(i+k)%len(raws)], "acme", &scratch[k]); err != nil {
					b.Fatal(err)
				}
			}
			require.NoError(b, enc.Write(scratch))
		}
		require.NoError(b, enc.Close())
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(n*b.N)/(cpuTime()-cpu0).Seconds(), "events/cpu-s")
	b.ReportMetric(float64(out.n)/n, "file-B/record")
	b.ReportMetric(0, "ns/op")
}
