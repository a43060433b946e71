package verify

import (
	"crypto/rand"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestIDSetKeepsEveryID: ids in the canonical UUID form and any other come
// back as they were added (internal/idkey keeps the first as 16 bytes), a
// repeat is one, and missing compares across both kinds.
func TestIDSetKeepsEveryID(t *testing.T) {
	uuid := "1ba735eb-12d0-48b9-a383-40234542dc5e"
	ids := []string{uuid, strings.ToUpper(uuid), "ev/1.ü\x00", ""}
	s := newIDSet()
	for _, id := range ids {
		require.False(t, s.add(id), "%q", id)
	}
	for _, id := range ids {
		require.True(t, s.has(id), "%q", id)
		require.True(t, s.add(id), "%q added twice", id)
	}
	require.Equal(t, len(ids), s.len())
	require.ElementsMatch(t, ids, collect(s))

	other := newIDSet()
	other.add(uuid)
	other.add(ids[1])
	other.add("00000000-0000-4000-8000-000000000000")
	require.Equal(t, []string{"00000000-0000-4000-8000-000000000000"}, missing(other, s))
	require.Equal(t, []string{"", "ev/1.ü\x00"}, missing(s, other))
}

func collect(s *idSet) []string {
	var out []string
	for id := range s.all() {
		out = append(out, id)
	}
	return out
}

func randomUUID() string {
	var b [16]byte
	rand.Read(b[:])
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// TestIDSetMemory: a day's ids, the API's UUIDs, take under 48 bytes each
// on the heap (was: a map of strings, 80 and more, which at 600,000 events
// a day and three sinks took verify to 105 MB RSS and a collector running
// most of the time under the command's 26 MiB soft limit).
func TestIDSetMemory(t *testing.T) {
	const n = 200_000
	ids := make([]string, n)
	for i := range ids {
		ids[i] = randomUUID()
	}
	before := liveHeap()
	s := newIDSet()
	for _, id := range ids {
		s.add(strings.Clone(id)) // a string of its own, as each record read is
	}
	after := liveHeap()
	runtime.KeepAlive(ids)
	require.Equal(t, n, s.len())
	perID := float64(after-before) / n
	t.Logf("%.1f bytes an id", perID)
	require.Less(t, perID, 48.0)
	runtime.KeepAlive(s)
}

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
