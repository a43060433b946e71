package transform_test

import (
	"os"
	"path/filepath"
	"testing"

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

func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
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
	for i := 0; b.Loop(); i++ {
		if _, err := n.Normalize(events[i%len(events)], workspace); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
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
	buf := make([]byte, 0, 4096)
	for i := 0; b.Loop(); i++ {
		rec, err := n.Normalize(events[i%len(events)], workspace)
		if err != nil {
			b.Fatal(err)
		}
		buf = ndjson.AppendRecord(buf[:0], &rec)
		buf = append(buf, '\n')
	}
	reportRate(b)
}
