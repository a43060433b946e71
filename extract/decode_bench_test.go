package extract

import (
	"os"
	"testing"
)

// BenchmarkDecodePage decodes a page of 50 events as the simulator serves
// them (testdata/page50.json): what every answer costs the client.
func BenchmarkDecodePage(b *testing.B) {
	body, err := os.ReadFile("testdata/page50.json")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		p, err := decodePage(body)
		if err != nil || len(p.Events) != 50 {
			b.Fatal(len(p.Events), err)
		}
	}
}
