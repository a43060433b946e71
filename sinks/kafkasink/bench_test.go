package kafkasink_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/pachca-export/pachca-export/sinks/ndjson"
)

// BenchmarkProduce measures acknowledged messages per second into kfake: one
// op is one Write of 1000 records of about 1 KB, default settings (zstd,
// acks=all, murmur2 over 3 partitions).
func BenchmarkProduce(b *testing.B) {
	const topic, perBatch = "bench", 1000
	c := newCluster(b, kfake.SeedTopics(3, topic))
	cfg := testConfig(c.ListenAddrs(), topic)
	s := newSink(b, cfg)
	w, err := s.Open(b.Context(), partition())
	require.NoError(b, err)
	recs := makeRecords(0, perBatch)
	var size int64
	for i := range recs {
		size += int64(len(ndjson.AppendRecord(nil, &recs[i])))
	}
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := w.Write(b.Context(), recs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*perBatch)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(size)/perBatch, "B/msg")
}
