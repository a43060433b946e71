package idkey

import (
	"crypto/rand"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestMapKeepsEveryID: ids in the canonical UUID form and any other come
// back as they were set, with their values; only the canonical form is
// kept as 16 bytes.
func TestMapKeepsEveryID(t *testing.T) {
	odd := []string{
		"1BA735EB-12D0-48B9-A383-40234542DC5E", // uppercase: kept as it is
		"1ba735eb-12d0-48b9-a383-40234542dc5",  // 35 characters
		"1ba735eb-12d0-48b9-a383-40234542dc5e0",
		"1ba735eb+12d0-48b9-a383-40234542dc5e",
		"1ba735eb-12d0-48b9-a383-40234542dc5g",
		"1ba735eb12d0-48b9-a383-40234542dc5e-",
		"ev/1.ü\x00", strings.Repeat("x", 300), "",
	}
	uuid := "1ba735eb-12d0-48b9-a383-40234542dc5e"
	all := append([]string{uuid}, odd...)
	m := New[int]()
	for i, id := range all {
		require.False(t, m.Set(id, i), "%q", id)
	}
	require.Len(t, m.uuids, 1, "only the canonical form as 16 bytes")
	for i, id := range all {
		v, ok := m.Get(id)
		require.True(t, ok, "%q", id)
		require.Equal(t, i, v, "%q", id)
		require.True(t, m.Set(id, i), "%q set twice", id)
	}
	require.Equal(t, len(all), m.Len())
	got := map[string]int{}
	for id, v := range m.All() {
		got[id] = v
	}
	require.Len(t, got, len(all))
	for i, id := range all {
		require.Equal(t, i, got[id], "%q", id)
	}
	m.DeleteFunc(func(v int) bool { return v%2 == 0 })
	for i, id := range all {
		_, ok := m.Get(id)
		require.Equal(t, i%2 != 0, ok, "%q", id)
	}
	for range 1000 {
		var b [16]byte
		rand.Read(b[:])
		id := fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
		u, ok := Parse(id)
		require.True(t, ok, id)
		require.Equal(t, b, u)
		require.Equal(t, id, Format(u))
		m.SetUUID(u, -1)
		v, ok := m.Get(id)
		require.True(t, ok && v == -1, id)
	}
}
