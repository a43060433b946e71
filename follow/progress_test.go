package follow_test

import (
	"bytes"
	"io"
	"maps"
	"net/http"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/follow"
	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/telemetry/telemetrytest"
	"github.com/pachca-export/pachca-export/testkit/exporttest"
)

// TestFollowMetricsDuringACycle: a first cycle that reads the day so far
// for seconds (3,000 events at 10 requests a second, the API allowing 8)
// moves /metrics while it runs: requests, pages, events received and 429s
// rise a second apart (was: all 0 until the cycle ended, minutes for a
// real day, which a dashboard reads as a dead feed). Once it committed,
// each counter is what the API answered and the files hold, counted once.
func TestFollowMetricsDuringACycle(t *testing.T) {
	t.Parallel()
	c := newClock(2 * time.Hour) // the hour read lies within one UTC day
	start := c.now().Add(-time.Hour).Truncate(time.Second)
	sc := simulator.DefaultConfig()
	sc.Events, sc.From, sc.To, sc.ClockOffset = 3000, start, c.now().Add(-10*time.Second), c.offset
	sc.Faults, sc.Midnight = nil, false
	sc.RateLimit, sc.Burst = 8, 1
	sim, base := startSim(t, sc)
	t.Cleanup(func() { sim.Close() })
	cfg := testConfig(t, base)
	cfg.Source.RequestsPerSecond = 10
	cfg.Follow.Interval = time.Hour // one cycle: the counters hold still after it
	addr := make(chan string, 1)
	f := startFollow(t, cfg, c, follow.Options{From: start, Listen: "127.0.0.1:0", Ready: func(a string) { addr <- a }})
	metrics := "http://" + <-addr + "/metrics"

	var first float64
	waitFor(t, "/metrics to move during the first cycle", func() bool {
		b, mfs := scrape(t, metrics)
		require.Zero(t, counter(t, mfs, "pachca_export_follow_cycles_total", "result", "success")+
			counter(t, mfs, "pachca_export_follow_cycles_total", "result", "failure"),
			"the first cycle ended before /metrics moved")
		requests := counter(t, mfs, "pachca_export_api_requests_total")
		switch {
		case requests == 0:
			return false
		case first == 0:
			first = requests
			telemetrytest.Lint(t, b)
			return false
		}
		return requests > first && counter(t, mfs, "pachca_export_api_pages_total") > 0 &&
			counter(t, mfs, "pachca_export_api_events_total") > 0
	})

	waitFor(t, "the first cycle to commit", func() bool {
		_, mfs := scrape(t, metrics)
		return counter(t, mfs, "pachca_export_follow_cycles_total", "result", "success") == 1
	})
	b, mfs := scrape(t, metrics)
	telemetrytest.Lint(t, b)
	st := sim.Stats()
	require.NoError(t, f.stop())

	pages, received, retried := 0, 0, 0
	for _, r := range st.Log { // GET /audit_events
		switch r.Status {
		case http.StatusOK:
			pages++
			received += r.Events
		case http.StatusTooManyRequests:
			retried++
		}
	}
	require.Positive(t, st.Status429, "the API's limit was met")
	require.EqualValues(t, st.Requests, counter(t, mfs, "pachca_export_api_requests_total"), "requests, as the API counted them")
	require.EqualValues(t, st.Status429, counter(t, mfs, "pachca_export_api_throttled_total"))
	// The token's check (GET /oauth/token/info, once a session) can go
	// without its answer: a 429 to it is not retried.
	require.EqualValues(t, retried, counter(t, mfs, "pachca_export_api_retries_total"), "each 429 to a read of the log retried, nothing else")
	require.EqualValues(t, pages, counter(t, mfs, "pachca_export_api_pages_total"))
	require.EqualValues(t, received, counter(t, mfs, "pachca_export_api_events_total"))
	require.Less(t, first, counter(t, mfs, "pachca_export_api_requests_total"), "the first figure seen was the cycle's under way")
	lines := len(exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir))
	require.Equal(t, 3000, lines)
	events := 0.0
	for _, m := range mfs["pachca_export_events_total"].GetMetric() {
		events += m.GetCounter().GetValue()
	}
	require.EqualValues(t, lines, events, "events_total: what the files hold")
}

// scrape reads /metrics at url, parsed.
func scrape(t *testing.T, url string) ([]byte, map[string]*dto.MetricFamily) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(b))
	require.NoError(t, err)
	return b, mfs
}

// counter is the value of the counter (or gauge) name of mfs whose labels
// are the workspace label of testConfig and labels (name, value pairs).
func counter(t *testing.T, mfs map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	want := map[string]string{"workspace": "acme"}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	require.Contains(t, mfs, name, "in /metrics")
	for _, m := range mfs[name].GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		if maps.Equal(got, want) {
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	require.Failf(t, "no such series", "%s%v in /metrics", name, want)
	return 0
}
