package ocsf_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/transform"
	"github.com/pachca-export/pachca-export/transform/ocsf"
)

// BenchmarkMap maps the simulator's realistic mix of records.
func BenchmarkMap(b *testing.B) {
	cfg := simulator.DefaultConfig()
	cfg.Events = 10_000
	srv, err := simulator.New(cfg)
	require.NoError(b, err)
	var recs []transform.Record
	for _, e := range srv.Events() {
		recs = append(recs, normalize(b, e.Raw))
	}
	i := 0
	for b.Loop() {
		ev := ocsf.Map(&recs[i%len(recs)])
		if ev.ClassUID < 0 {
			b.Fatal("impossible")
		}
		i++
	}
}
