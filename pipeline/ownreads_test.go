package pipeline_test

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/extract"
	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/state"
	"github.com/pachca-export/pachca-export/testkit/exporttest"
	"github.com/pachca-export/pachca-export/transform"
	"github.com/pachca-export/pachca-export/verify"
)

// TestDropOwnReads: with transform.drop_own_reads, the audit_events_accessed
// events of the exporter's own requests (their user agent names the
// state's reader id) are dropped and counted, and every other read of the
// log is exported: a script's, and one under another reader id (another
// exporter's, or a copy of the token that guessed the tool but not the id).
// drop_event_keys: [audit_events_accessed], the only way before, drops
// them all.
func TestDropOwnReads(t *testing.T) {
	day := day0().AddDate(0, 0, 1)
	sim, base := startSim(t, func(c *simulator.Config) {
		c.Events, c.AccessedEvents = 2000, true
		c.ClockOffset = time.Until(day.Add(12 * time.Hour)) // the API's now is in day, where its reads are logged
	})
	cfg := testConfig(t, base)
	cfg.Transform.DropOwnReads = true
	require.NoError(t, cfg.Validate())
	// A run of another day first: its reads of the log, logged in day, are
	// the exporter's own.
	_, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: day.AddDate(0, 0, 1), To: day.AddDate(0, 0, 2)}, false)
	require.NoError(t, err)
	v, err := state.Peek(cfg.State.Dir, pipeline.Identity(cfg), pipeline.FormerIdentities(cfg)...)
	require.NoError(t, err)
	reader, err := v.ReaderID()
	require.NoError(t, err)
	require.Regexp(t, `^[0-9a-f]{16}$`, reader)
	own := extract.Agent(reader)
	for _, agent := range []string{"curl/8.5.0", extract.Agent("ffffffffffffffff")} {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/audit_events?start_time="+day.Format(time.RFC3339)+"&end_time="+day.Add(time.Hour).Format(time.RFC3339), nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer sim-token")
		req.Header.Set("User-Agent", agent)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	reads := map[string]int{} // the API's reads of the log in day, by user agent
	for _, ev := range exporttest.Expected(sim, day, day.AddDate(0, 0, 1)) {
		if ev.Key == transform.AccessedKey {
			var e struct {
				UserAgent string `json:"user_agent"`
			}
			require.NoError(t, json.Unmarshal(ev.Raw, &e))
			reads[e.UserAgent]++
		}
	}
	require.Positive(t, reads[own], "the first run's reads are logged in day")

	sum, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: day, To: day.AddDate(0, 0, 1)}, false)
	require.NoError(t, err)
	exported := map[string]int{}
	for _, l := range exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir) {
		if l.Dir == "dt="+day.Format(time.DateOnly) && l.Fields["event_key"] == transform.AccessedKey {
			agent, _ := l.Fields["user_agent"].(string)
			exported[agent]++
		}
	}
	require.Zero(t, exported[own], "the exporter's own reads are dropped")
	require.Equal(t, 1, exported["curl/8.5.0"], "a script's read is exported")
	require.Equal(t, 1, exported[extract.Agent("ffffffffffffffff")], "a read under another reader id is exported")
	require.GreaterOrEqual(t, sum.Dropped, int64(reads[own]), "each own read dropped is counted")
	// verify --against-api leaves them out too, and its own reads.
	rep, err := verify.Run(t.Context(), verify.Options{Config: cfg, From: day, To: day.AddDate(0, 0, 1), AgainstAPI: true})
	require.NoError(t, err)
	require.False(t, rep.Failed(), "%+v", rep.Lines)

	// drop_event_keys drops them all.
	all := testConfig(t, base)
	all.Transform.DropEventKeys = []string{transform.AccessedKey}
	require.NoError(t, all.Validate())
	_, err = pipeline.Run(t.Context(), pipeline.Options{Config: all, Logger: testLogger(t)}, pipeline.Range{From: day, To: day.AddDate(0, 0, 1)}, false)
	require.NoError(t, err)
	for _, l := range exporttest.ReadNDJSON(t, filepath.Join(all.Sinks[0].File.Dir)) {
		require.NotEqual(t, transform.AccessedKey, l.Fields["event_key"])
	}
}
