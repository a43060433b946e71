package ocsf_test

import (
	"testing"

	"github.com/pachca-export/pachca-export/testkit/ocsftest"
	"github.com/pachca-export/pachca-export/transform/ocsf"
)

// BenchmarkMap maps the simulator's realistic mix of records.
func BenchmarkMap(b *testing.B) {
	recs := ocsftest.Simulated(b, 10_000, false)
	i := 0
	for b.Loop() {
		ev := ocsf.Map(&recs[i%len(recs)])
		if ev.ClassUID < 0 {
			b.Fatal("impossible")
		}
		i++
	}
}
