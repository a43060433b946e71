package pipeline_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/simulator"
)

// TestProgressLogETAUnknown: the progress log of a run that has fetched
// nothing (an API that does not answer) says the ETA is unknown, as the
// terminal's status line does with "ETA -", not "0s".
func TestProgressLogETAUnknown(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/oauth/token/info" {
			http.NotFound(w, r) // not told: the run goes on
			return
		}
		<-r.Context().Done()
	}))
	defer api.Close()
	cfg := testConfig(t, api.URL)
	log, logs := logBuffer()
	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	from := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -2)
	_, err := pipeline.Run(ctx, pipeline.Options{Config: cfg, Logger: log, ProgressEvery: 200 * time.Millisecond},
		pipeline.Range{From: from, To: from.AddDate(0, 0, 1)}, false)
	require.Error(t, err)
	require.Contains(t, logs.String(), "msg=progress")
	require.Contains(t, logs.String(), "covered_pct=0")
	require.Contains(t, logs.String(), "eta=unknown")
	require.NotContains(t, logs.String(), "eta=0s")
}

// TestProgressWhileDaysArePlanned: progress sampled every millisecond while
// the days of a long range are planned one after another: under -race, no
// read of a day's total outside the lock its planning writes it under
// (was: the count of planned days read them unlocked).
func TestProgressWhileDaysArePlanned(t *testing.T) {
	_, base := startSim(t, func(c *simulator.Config) { c.Events = 2000 })
	cfg := testConfig(t, base)
	log, logs := logBuffer()
	rng := pipeline.Range{From: day0().AddDate(0, 0, -60), To: day0().AddDate(0, 0, 3)}
	_, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: log, ProgressEvery: time.Millisecond}, rng, false)
	require.NoError(t, err)
	require.Contains(t, logs.String(), "msg=progress")
}
