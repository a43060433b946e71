package follow

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/pipeline"
)

// TestObserveCountsAPlanOnce: a cycle's plan moved the API's counters
// while it ran (its samples), then failed or was stopped; its summary adds
// the rest of what it cost, and none of what it delivered, which the redo
// delivers again. The redo, a plan of its own, adds its cost and its
// events. Nothing is counted twice.
func TestObserveCountsAPlanOnce(t *testing.T) {
	l := &Loop{m: newMetrics(func() float64 { return 0 }, "acme")}
	read := func() (requests, pages, received, events float64) {
		rec := httptest.NewRecorder()
		l.m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		p := expfmt.NewTextParser(model.LegacyValidation)
		mfs, err := p.TextToMetricFamilies(rec.Body)
		require.NoError(t, err)
		v := func(name string) float64 {
			s := 0.0
			for _, m := range mfs["pachca_export_"+name].GetMetric() {
				s += m.GetCounter().GetValue()
			}
			return s
		}
		return v("api_requests_total"), v("api_pages_total"), v("api_events_total"), v("events_total")
	}
	delivered := func(runID string, requests, pages, received int64) *pipeline.Summary {
		return &pipeline.Summary{RunID: runID, Requests: requests, Pages: pages, Fetched: received,
			Days: []string{"2026-12-01"}, Events: 120, PerKey: map[string]int64{"user_login": 120}}
	}
	for _, cut := range []error{errors.New("sink: disk full"), context.Canceled} {
		t.Run(cut.Error(), func(t *testing.T) {
			l.m = newMetrics(func() float64 { return 0 }, "acme")
			l.m.ObserveProgress(pipeline.Snapshot{RunID: "first", Requests: 4, Pages: 3, Events: 100})
			l.observe(delivered("first", 5, 4, 130), cut)
			requests, pages, received, events := read()
			require.Equal(t, []float64{5, 4, 130, 0}, []float64{requests, pages, received, events})

			l.m.ObserveProgress(pipeline.Snapshot{RunID: "redo", Requests: 1, Pages: 1, Events: 10})
			l.observe(delivered("redo", 2, 2, 20), nil)
			requests, pages, received, events = read()
			require.Equal(t, []float64{7, 6, 150, 120}, []float64{requests, pages, received, events})
		})
	}
}
