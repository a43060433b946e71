package verify

import (
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLongNDJSONLine: a line longer than 64 MiB, which the exporter writes
// for an event of 32 MiB of details made of quotes (details_json escapes
// each once more), is read, not reported as unreadable.
func TestLongNDJSONLine(t *testing.T) {
	line := io.MultiReader(strings.NewReader(`{"id":"a","schema_version":"pachca.audit.v1","details_json":"`),
		io.LimitReader(repeat('x'), 65<<20), strings.NewReader("\"}\n"+`{"id":"b","schema_version":"pachca.audit.v1"}`+"\n"))
	var ids []string
	n, err := ndjsonRecords("x.ndjson", line, func(id, _ string) { ids = append(ids, id) })
	require.NoError(t, err)
	require.EqualValues(t, 2, n)
	require.Equal(t, []string{"a", "b"}, ids)
}

// repeat is an endless stream of b.
type repeat byte

func (r repeat) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}
