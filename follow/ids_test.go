package follow

import (
	"crypto/rand"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/state"
)

// TestDeliveredIDsMemory: what a cycle keeps of each event it delivers,
// until its commit (freshIDs) and then for the look-back (recentIDs),
// takes under 120 bytes an event on the heap for the API's UUIDs (was:
// about 220, a string of its own in both, so that a cycle of 2 million
// events, a flood the rate took 13 minutes to read, passed the deployed
// 512Mi limit).
func TestDeliveredIDsMemory(t *testing.T) {
	const n = 200_000
	ids := make([]string, n)
	for i := range ids {
		var b [16]byte
		rand.Read(b[:])
		ids[i] = fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
	}
	before := liveHeap()
	var fresh freshIDs
	for i, id := range ids {
		fresh.add(strings.Clone(id), int64(i), uint64(i)+1) // a string of its own, as each record read is
	}
	recent := newRecentIDs()
	recent.addFresh(&fresh)
	after := liveHeap()
	perID := float64(after-before) / n
	t.Logf("%.1f bytes an event", perID)
	require.Less(t, perID, 120.0)

	require.Equal(t, n, fresh.len())
	for i, id := range ids {
		seen, same := recent.Seen(id, uint64(i)+1)
		require.True(t, seen && same, id)
	}
	runtime.KeepAlive(ids)
	runtime.KeepAlive(&fresh)
	runtime.KeepAlive(recent)
}

// TestDayIDsSums: an id delivered with two contents (cycles too far apart
// for the look-back) counts twice and is seen with either; a sum of 0 (an
// id logged before sums were) matches any content.
func TestDayIDsSums(t *testing.T) {
	d := newDayIDs()
	id := "1ba735eb-12d0-48b9-a383-40234542dc5e"
	d.add(state.DeliveredID{ID: id, Sum: 7})
	d.add(state.DeliveredID{ID: id, Sum: 7})
	require.Equal(t, 1, d.Count(""))
	d.add(state.DeliveredID{ID: id, Sum: 9})
	require.Equal(t, 2, d.Count(""))
	for _, sum := range []uint64{7, 9} {
		seen, same := d.Seen(id, sum)
		require.True(t, seen && same, sum)
	}
	seen, same := d.Seen(id, 8)
	require.True(t, seen)
	require.False(t, same)
	d.add(state.DeliveredID{ID: "ev-1", Sum: 0})
	seen, same = d.Seen("ev-1", 8)
	require.True(t, seen && same)
	seen, _ = d.Seen("ev-2", 8)
	require.False(t, seen)
}

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
