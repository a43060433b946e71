package s3sink_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/internal/miniotest"
	"github.com/pachca-export/pachca-export/sinks"
)

// TestCompact: a Compact partition replaces the objects a follow loop wrote
// for the day: the manifest lists the day object alone and the others are
// deleted.
func TestCompact(t *testing.T) {
	srv := miniotest.Start(t)
	srv.CreateBucket("compact")
	s := newSink(t, config(t, srv, "compact", "ndjson", "gzip"))
	for i := range 3 {
		p := sinks.NewPartition(day, day.Add(time.Duration(i)*time.Hour), day.Add(time.Duration(i+1)*time.Hour), "run-c")
		p.Part = true
		commit(t, s, p, records(t, p, 20, "c"))
	}
	require.Len(t, keys(t, srv, "compact"), 4)

	p := sinks.NewPartition(day, day, day.Add(24*time.Hour), "run-seal")
	p.Compact = true
	recs := records(t, p, 60, "s")
	res := commit(t, s, p, recs)
	require.Equal(t, []string{"audit/dt=2026-11-01/_manifest.json", "audit/dt=2026-11-01/pachca-audit-2026-11-01.ndjson.gz"}, keys(t, srv, "compact"))
	m := manifest(t, srv, "compact", "audit/dt=2026-11-01/_manifest.json")
	require.Len(t, m.Files, 1)
	require.EqualValues(t, 60, m.Records)
	body, _ := get(t, srv, "compact", res.Files[0])
	requireNDJSON(t, res.Files[0], body, recs)
}
