package transform_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/sinks/ndjson"
	"github.com/pachca-export/pachca-export/transform"
)

// benchEvents is a mix of realistic events: every golden input of an event
// key of the enum, compacted as the API sends them.
func benchEvents(b *testing.B) [][]byte {
	var events [][]byte
	for _, key := range transform.EventKeys() {
		raw, err := os.ReadFile(filepath.Join("testdata", "golden", key+".input.json"))
		require.NoError(b, err)
		events = append(events, compact(b, raw))
	}
	return events
}

func compact(b *testing.B, raw []byte) []byte {
	var out []byte
	inString, escaped := false, false
	for _, c := range raw {
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case !inString && (c == ' ' || c == '\n' || c == '\t' || c == '\r'):
			continue
		}
		out = append(out, c)
	}
	require.False(b, inString)
	return out
}

// reportRate reports events per wall second and per CPU second of the
// process (GC included). On a shared machine the CPU figure is the steadier;
// with -cpu 1 it is the one-core rate.
func reportRate(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	if cpu := cpuTime() - cpu0; cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "events/cpu-s")
	}
}

// cpuTime is the CPU time of the process, all threads.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkNormalize(b *testing.B) {
	events := benchEvents(b)
	var n transform.Normalizer
	var size int64
	for _, e := range events {
		size += int64(len(e))
	}
	b.SetBytes(size / int64(len(events)))
	b.ReportAllocs()
	cpu0 := cpuTime()
	for i := 0; b.Loop(); i++ {
		if _, err := n.Normalize(events[i%len(events)], workspace); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, cpu0)
}

func BenchmarkNormalizeNDJSON(b *testing.B) {
	events := benchEvents(b)
	var n transform.Normalizer
	var size int64
	for _, e := range events {
		size += int64(len(e))
	}
	b.SetBytes(size / int64(len(events)))
	b.ReportAllocs()
	cpu0 := cpuTime()
	buf := make([]byte, 0, 4096)
	for i := 0; b.Loop(); i++ {
		rec, err := n.Normalize(events[i%len(events)], workspace)
		if err != nil {
			b.Fatal(err)
		}
		buf = ndjson.AppendRecord(buf[:0], &rec)
		buf = append(buf, '\n')
	}
	reportRate(b, cpu0)
}

// BenchmarkNormalizeIntoNDJSON is BenchmarkNormalizeNDJSON filling one
// reused Record in place, as a streaming caller does.
func BenchmarkNormalizeIntoNDJSON(b *testing.B) {
	events := benchEvents(b)
	var n transform.Normalizer
	var size int64
	for _, e := range events {
		size += int64(len(e))
	}
	b.SetBytes(size / int64(len(events)))
	b.ReportAllocs()
	cpu0 := cpuTime()
	buf := make([]byte, 0, 4096)
	var rec transform.Record
	for i := 0; b.Loop(); i++ {
		if err := n.NormalizeInto(events[i%len(events)], workspace, &rec); err != nil {
			b.Fatal(err)
		}
		buf = ndjson.AppendRecord(buf[:0], &rec)
		buf = append(buf, '\n')
	}
	reportRate(b, cpu0)
}
