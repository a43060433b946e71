package pipeline_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/pipeline"
)

// TestProgressLogETAUnknown: the progress log of a run that has fetched
// nothing (an API that does not answer) says the ETA is unknown, as the
// terminal's status line does with "ETA -", not "0s".
func TestProgressLogETAUnknown(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
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
