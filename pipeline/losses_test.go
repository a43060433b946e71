package pipeline_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/internal/exporttest"
	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/simulator"
)

// The tests of this file are the four ways issue 12 found to lose events
// while the exporter exited 0.

// TestEventsWithoutIDAreDeadLettered (loss 3): an event whose id is the
// empty string and another without an id are both dead-lettered and
// counted; the per-window de-duplication by id no longer merges them.
func TestEventsWithoutIDAreDeadLettered(t *testing.T) {
	sim, _ := startSim(t, func(c *simulator.Config) { c.Events = 1000 })
	at := day0().Add(6 * time.Hour).Format("2006-01-02T15:04:05.000Z")
	noIDs := []string{
		`{"id":"","created_at":"` + at + `","event_key":"user_login","entity_id":"1","entity_type":"user","actor_id":"1","actor_type":"user","details":{}}`,
		`{"created_at":"` + at + `","event_key":"user_logout","entity_id":"1","entity_type":"user","actor_id":"1","actor_type":"user","details":{}}`,
		`{"id":null,"created_at":"` + at + `","event_key":"user_login","entity_id":"2","entity_type":"user","actor_id":"2","actor_type":"user","details":{}}`,
	}
	var injected atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		sim.Handler().ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		// The first page of the day's one window: concurrency 1 never splits it.
		if rec.Code == 200 && r.URL.Query().Get("cursor") == "" && bytes.HasPrefix(body, []byte(`{"data":[{`)) && injected.CompareAndSwap(false, true) {
			extra := ""
			for _, ev := range noIDs {
				extra += ev + ","
			}
			body = append([]byte(`{"data":[`+extra), body[len(`{"data":[`):]...)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(rec.Code)
		w.Write(body)
	}))
	defer srv.Close()
	cfg := testConfig(t, srv.URL+simulator.BasePath)
	cfg.Source.Concurrency = 1
	from, to := day0(), day0().AddDate(0, 0, 1)
	sum, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: testLogger(t)}, pipeline.Range{From: from, To: to}, false)
	require.NoError(t, err)
	require.True(t, injected.Load())
	require.EqualValues(t, len(noIDs), sum.DeadLetters, "every event without a usable id is counted")
	exporttest.Compare(t, exporttest.Expected(sim, from, to), exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir), "acme")

	files, err := filepath.Glob(filepath.Join(cfg.State.Dir, "*", "dead_letter", "dt="+from.Format(time.DateOnly), "*.ndjson"))
	require.NoError(t, err)
	require.Len(t, files, 1)
	f, err := os.Open(files[0])
	require.NoError(t, err)
	defer f.Close()
	var raws []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var dl struct{ Error, Raw string }
		require.NoError(t, json.Unmarshal(sc.Bytes(), &dl))
		require.Contains(t, dl.Error, "id")
		raws = append(raws, dl.Raw)
	}
	require.ElementsMatch(t, noIDs, raws, "each one is in the dead-letter file, as the API sent it")
}
