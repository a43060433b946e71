package simulator_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/simulator"
)

// TestEdgeShapes: the options for the exporter's edge cases make the
// workspace they describe, and a walk of the API returns every event.
func TestEdgeShapes(t *testing.T) {
	cfg := testConfig()
	cfg.TieGroup, cfg.BigDetails, cfg.BigEvents, cfg.ExtraKeys, cfg.OddKeys = 1000, 100_000, 3, 200, true
	s, base := start(t, cfg)
	events := s.Events()
	require.Len(t, events, cfg.Events)

	perMs, keys, ids := map[int64]int{}, map[string]bool{}, map[string]bool{}
	big := 0
	for _, e := range events {
		perMs[e.CreatedAt.UnixMilli()]++
		keys[e.Key] = true
		ids[e.ID] = true
		if len(e.Raw) >= 100_000 {
			big++
			var ev struct{ Details map[string]any }
			require.NoError(t, json.Unmarshal(e.Raw, &ev))
			require.Contains(t, ev.Details, "attachment_preview")
		}
	}
	largest := 0
	for _, n := range perMs {
		largest = max(largest, n)
	}
	require.GreaterOrEqual(t, largest, 1000)
	require.Equal(t, 3, big)
	for _, k := range append(simulator.ExtraEventKeys(200), simulator.OddEventKeys()...) {
		require.True(t, keys[k], k)
	}
	for _, id := range simulator.OddIDs() {
		require.True(t, ids[id], id)
	}
	require.Len(t, walk(t, base, query(cfg.From, cfg.To)), cfg.Events)
	// The filter accepts the odd keys.
	require.NotEmpty(t, walk(t, base, query(cfg.From, cfg.To, "event_key", "a/b")))
}

// TestHostileText: with HostileText, each of HostileTexts comes as a user
// agent and in the details of some events, byte for byte.
func TestHostileText(t *testing.T) {
	cfg := testConfig()
	cfg.Events, cfg.HostileText = 20000, true // names are rarer than agents
	s, _ := start(t, cfg)
	agents, names := map[string]bool{}, map[string]bool{}
	for _, e := range s.Events() {
		var ev struct {
			UserAgent *string `json:"user_agent"`
			Details   map[string]any
		}
		require.NoError(t, json.Unmarshal(e.Raw, &ev))
		if ev.UserAgent != nil {
			agents[*ev.UserAgent] = true
		}
		for _, k := range []string{"name", "tag_name", "old_name", "new_name"} {
			if v, ok := ev.Details[k].(string); ok {
				names[v] = true
			}
		}
	}
	for _, h := range simulator.HostileTexts() {
		require.True(t, agents[h], "user agent %q", h)
		require.True(t, names[h], "name %q", h)
	}
}
