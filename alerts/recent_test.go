package alerts

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestBurstAcrossSavedEngines: a burst observed half by one engine, saved,
// and half by a new engine that loaded it, is one finding with the same key
// as if one engine had seen it all; pruning drops only old events.
func TestBurstAcrossSavedEngines(t *testing.T) {
	cfg := Config{Rules: []Rule{thresholdRule(5, 10*time.Minute)}}
	path := filepath.Join(t.TempDir(), "recent.json")
	burst := []int{0, 1, 2, 3, 4, 5}

	whole, err := New(cfg)
	require.NoError(t, err)
	for _, m := range burst {
		whole.Observe(rec("e"+string(rune('a'+m)), "user_2fa_fail", "7", time.Duration(m)*time.Minute))
	}
	want := whole.Findings()
	require.Len(t, want, 1)

	first, err := New(cfg)
	require.NoError(t, err)
	for _, m := range burst[:3] {
		first.Observe(rec("e"+string(rune('a'+m)), "user_2fa_fail", "7", time.Duration(m)*time.Minute))
	}
	require.Empty(t, first.Findings(), "below the threshold so far")
	require.NoError(t, first.Save(path))

	second, err := New(cfg)
	require.NoError(t, err)
	require.NoError(t, second.Load(path))
	for _, m := range burst[2:] { // the third again: observed once
		second.Observe(rec("e"+string(rune('a'+m)), "user_2fa_fail", "7", time.Duration(m)*time.Minute))
	}
	got := second.Findings()
	require.Equal(t, want, got)
	require.Equal(t, want[0].Key(), got[0].Key())

	second.Prune(t0.Add(2 * time.Minute))
	require.Len(t, second.rules[0].events, 4, "events before the cut go")
	require.False(t, second.rules[0].seen["ea"])
}
