package telemetry_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/telemetry"
	"github.com/pachca-export/pachca-export/telemetry/telemetrytest"
)

// weirdKey is an event key the API might send one day: the text format must
// escape it, not Go's %q.
const weirdKey = "new\"key\\with\nnewline and ünïcode"

func summary() *pipeline.Summary {
	return &pipeline.Summary{
		Days:        []string{"2026-11-01", "2026-11-02"},
		EmptyDays:   []string{"2026-11-02"},
		Refused:     []pipeline.Refusal{{Day: "2026-11-03", Reason: "fewer events", Replaceable: true}},
		Events:      5,
		DeadLetters: 1,
		Dropped:     2,
		PerKey:      map[string]int64{"user_login": 3, weirdKey: 2},
		PerSink: map[string]*pipeline.SinkTotals{
			"ndjson /var/lib/pachca export/ndjson": {Type: "ndjson", Records: 5, Bytes: 1000, Files: []string{"a", "b"}},
			"kafka pachca.audit":                   {Type: "kafka", Records: 5, Bytes: 900},
		},
		SinkOrder: []string{"ndjson /var/lib/pachca export/ndjson", "kafka pachca.audit"},
		Requests:  12, Pages: 9, Fetched: 420, Retries: 3, Throttled: 1, AlertMessages: 1,
	}
}

func parse(t *testing.T, b []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(b))
	require.NoError(t, err, "%s", b)
	return mfs
}

// value finds the sample of family name whose labels include labels.
func value(t *testing.T, mfs map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	mf := mfs[name]
	require.NotNil(t, mf, "no %s", name)
next:
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue next
			}
		}
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue()
		case dto.MetricType_GAUGE:
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no %s%v", name, labels)
	return 0
}

// TestTextfileAcrossRuns: a successful run, then a failed one. The file
// parses with the Prometheus text parser and passes promtool; counters add
// up across the two runs; the last success time survives the failure.
func TestTextfileAcrossRuns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pachca_export.prom")
	end := time.Date(2026, 11, 3, 0, 5, 0, 0, time.UTC)

	m := telemetry.New("")
	require.NoError(t, m.LoadTextfile(path), "no file yet: nothing to carry")
	m.ObservePlan(summary())
	m.ObserveRun(telemetry.Success, end, 90*time.Second)
	require.NoError(t, m.WriteTextfile(path))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	telemetrytest.Lint(t, b)
	mfs := parse(t, b)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o644), fi.Mode().Perm(), "the textfile collector runs as another user")

	require.Equal(t, 3.0, value(t, mfs, "pachca_export_events_total", "event_key", "user_login"))
	require.Equal(t, 2.0, value(t, mfs, "pachca_export_events_total", "event_key", weirdKey), "label escaping round-trips")
	require.Equal(t, 1000.0, value(t, mfs, "pachca_export_sink_bytes_total", "sink", "0", "type", "ndjson"))
	require.Equal(t, 2.0, value(t, mfs, "pachca_export_sink_files_total", "sink", "0", "type", "ndjson"))
	require.Equal(t, 900.0, value(t, mfs, "pachca_export_sink_bytes_total", "sink", "1", "type", "kafka"))
	require.Equal(t, 2.0, value(t, mfs, "pachca_export_partitions_delivered_total"))
	require.Equal(t, 1.0, value(t, mfs, "pachca_export_empty_partitions_total"))
	require.Equal(t, 1.0, value(t, mfs, "pachca_export_refused_partitions_total"))
	require.Equal(t, 1.0, value(t, mfs, "pachca_export_dead_letters_total"))
	require.Equal(t, 12.0, value(t, mfs, "pachca_export_api_requests_total"))
	require.Equal(t, 9.0, value(t, mfs, "pachca_export_api_pages_total"))
	require.Equal(t, 420.0, value(t, mfs, "pachca_export_api_events_total"))
	require.Equal(t, 1.0, value(t, mfs, "pachca_export_runs_total", "result", "success"))
	require.Equal(t, 1.0, value(t, mfs, "pachca_export_last_run_success"))
	require.Equal(t, 90.0, value(t, mfs, "pachca_export_last_run_duration_seconds"))
	require.Equal(t, float64(end.Unix()), value(t, mfs, "pachca_export_last_success_timestamp_seconds"))
	require.NotContains(t, string(b), "/var/lib", "no path in a label value")
	require.NotContains(t, string(b), "go_goroutines", "no runtime metrics beside node_exporter's own")

	// The next run fails after delivering one more day.
	m = telemetry.New("")
	require.NoError(t, m.LoadTextfile(path))
	m.ObservePlan(&pipeline.Summary{Days: []string{"2026-11-03"}, PerKey: map[string]int64{"user_login": 4}, Requests: 7, Pages: 5, Fetched: 200})
	m.ObserveRun(telemetry.Failure, end.Add(24*time.Hour), time.Minute)
	require.NoError(t, m.WriteTextfile(path))
	b, err = os.ReadFile(path)
	require.NoError(t, err)
	telemetrytest.Lint(t, b)
	mfs = parse(t, b)
	require.Equal(t, 7.0, value(t, mfs, "pachca_export_events_total", "event_key", "user_login"), "counters carry over")
	require.Equal(t, 2.0, value(t, mfs, "pachca_export_events_total", "event_key", weirdKey))
	require.Equal(t, 3.0, value(t, mfs, "pachca_export_partitions_delivered_total"))
	require.Equal(t, 1.0, value(t, mfs, "pachca_export_refused_partitions_total"), "carried over like the others (was: back to 0)")
	require.Equal(t, 19.0, value(t, mfs, "pachca_export_api_requests_total"))
	require.Equal(t, 14.0, value(t, mfs, "pachca_export_api_pages_total"))
	require.Equal(t, 620.0, value(t, mfs, "pachca_export_api_events_total"))
	require.Equal(t, 1000.0, value(t, mfs, "pachca_export_sink_bytes_total", "sink", "0", "type", "ndjson"))
	require.Equal(t, 1.0, value(t, mfs, "pachca_export_runs_total", "result", "success"))
	require.Equal(t, 1.0, value(t, mfs, "pachca_export_runs_total", "result", "failure"))
	require.Equal(t, 0.0, value(t, mfs, "pachca_export_last_run_success"))
	require.Equal(t, float64(end.Unix()), value(t, mfs, "pachca_export_last_success_timestamp_seconds"), "kept across the failure")
	require.Equal(t, float64(end.Add(24*time.Hour).Unix()), value(t, mfs, "pachca_export_last_run_timestamp_seconds"))
}

// TestLoadTextfileRefusesGarbage: a file that does not parse is an error,
// and nothing of it is carried over.
func TestLoadTextfileRefusesGarbage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.prom")
	require.NoError(t, os.WriteFile(path, []byte("pachca_export_api_requests_total 5\nthis is not a metric {\n"), 0o644))
	m := telemetry.New("")
	require.ErrorContains(t, m.LoadTextfile(path), "x.prom")
	m.ObserveRun(telemetry.Failure, time.Unix(100, 0), time.Second)
	require.NoError(t, m.WriteTextfile(path))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, 0.0, value(t, parse(t, b), "pachca_export_api_requests_total"))
}

// TestHandler: the registry served over HTTP, as a long-running mode does,
// with the Go runtime metrics and a metric of the caller's own.
func TestHandler(t *testing.T) {
	m := telemetry.New("")
	m.ObservePlan(summary())
	freshness := telemetryGauge(m)
	freshness.Set(42)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	mfs := parse(t, b)
	require.Equal(t, 3.0, value(t, mfs, "pachca_export_events_total", "event_key", "user_login"))
	require.Equal(t, 42.0, value(t, mfs, "pachca_export_freshness_seconds"))
	// A long-running mode counts no one-shot run: runs_total is there, at 0
	// for every result, as the README says (was: absent).
	for _, r := range []telemetry.Result{telemetry.Success, telemetry.Failure, telemetry.Interrupted} {
		require.Equal(t, 0.0, value(t, mfs, "pachca_export_runs_total", "result", string(r)))
	}
	require.Contains(t, mfs, "go_goroutines")
	require.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain"), resp.Header.Get("Content-Type"))
	telemetrytest.Lint(t, b)
}

// telemetryGauge registers a metric of a long-running mode's own.
func telemetryGauge(m *telemetry.Metrics) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: telemetry.Namespace, Name: "freshness_seconds",
		Help: "Seconds between now and the newest event time exported (follow mode).",
	})
	m.Registry().MustRegister(g)
	return g
}

// TestTextfilesOfTwoWorkspaces: two nightly jobs, one per workspace, write
// their files into one textfile directory. The collector (node_exporter's
// textfile collector gives every sample of every file to one registry)
// takes both: every series carries the workspace label (was: the same
// series in both files, which the collector refuses). The counters carry
// over across runs under the label.
func TestTextfilesOfTwoWorkspaces(t *testing.T) {
	dir := t.TempDir()
	write := func(name, workspace string, runs int) string {
		path := filepath.Join(dir, name+".prom")
		for i := range runs {
			m := telemetry.New(workspace)
			require.NoError(t, m.LoadTextfile(path))
			m.ObservePlan(summary())
			m.ObserveRun(telemetry.Success, time.Unix(int64(1000+i), 0), time.Second)
			require.NoError(t, m.WriteTextfile(path))
		}
		return path
	}
	collect := func(paths ...string) error {
		var files [][]byte
		for _, p := range paths {
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			telemetrytest.Lint(t, b)
			files = append(files, b)
		}
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(textfiles{t, files})
		_, err := reg.Gather()
		return err
	}
	acme, beta := write("acme", "acme", 2), write("beta", "beta", 1)
	require.NoError(t, collect(acme, beta))
	b, err := os.ReadFile(acme)
	require.NoError(t, err)
	require.Equal(t, 6.0, value(t, parse(t, b), "pachca_export_events_total", "event_key", "user_login", "workspace", "acme"), "carried over under the label")
	require.Equal(t, 2.0, value(t, parse(t, b), "pachca_export_runs_total", "result", "success", "workspace", "acme"))

	require.ErrorContains(t, collect(write("first", "", 1), write("second", "", 1)),
		"was collected before with the same name and label values", "what the label prevents")
}

// TestTextfileOfAnotherWorkspace: a job given the metrics file of another
// workspace's job (a configuration copied with its --metrics-file, or a
// label renamed) does not count the other workspace's events as its own
// (was: every counter of the file carried over under the new label: a
// run of globex reported acme's events, requests and runs plus its own),
// and says why its counters restart. A file of a version before the label
// carries over as before.
func TestTextfileOfAnotherWorkspace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pachca_export.prom")
	run := func(workspace string) error {
		m := telemetry.New(workspace)
		err := m.LoadTextfile(path)
		m.ObservePlan(summary())
		m.ObserveRun(telemetry.Success, time.Unix(1000, 0), time.Second)
		require.NoError(t, m.WriteTextfile(path))
		return err
	}
	require.NoError(t, run(""))
	require.NoError(t, run("acme"), "unlabelled: an earlier version's file of this job")
	require.NoError(t, run("acme"))
	err := run("globex")
	require.ErrorContains(t, err, `holds the metrics of workspace "acme", not of "globex"`)
	require.ErrorContains(t, err, path)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	telemetrytest.Lint(t, b)
	mfs := parse(t, b)
	require.Equal(t, 3.0, value(t, mfs, "pachca_export_events_total", "event_key", "user_login", "workspace", "globex"), "globex's events only")
	require.Equal(t, 12.0, value(t, mfs, "pachca_export_api_requests_total", "workspace", "globex"))
	require.Equal(t, 1.0, value(t, mfs, "pachca_export_runs_total", "result", "success", "workspace", "globex"))
	require.NotContains(t, string(b), `workspace="acme"`)

	require.NoError(t, run("globex"), "its own file now")
	b, err = os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, 2.0, value(t, parse(t, b), "pachca_export_runs_total", "result", "success", "workspace", "globex"))
}

// textfiles collects the samples of text-format files as node_exporter's
// textfile collector does: each as a constant metric of one registry.
type textfiles struct {
	t     *testing.T
	files [][]byte
}

func (textfiles) Describe(chan<- *prometheus.Desc) {} // unchecked, as node_exporter's

func (c textfiles) Collect(ch chan<- prometheus.Metric) {
	for _, b := range c.files {
		for name, mf := range parse(c.t, b) {
			for _, m := range mf.GetMetric() {
				var names, values []string
				for _, l := range m.GetLabel() {
					names, values = append(names, l.GetName()), append(values, l.GetValue())
				}
				typ, v := prometheus.GaugeValue, m.GetGauge().GetValue()
				if mf.GetType() == dto.MetricType_COUNTER {
					typ, v = prometheus.CounterValue, m.GetCounter().GetValue()
				}
				ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(name, mf.GetHelp(), names, nil), typ, v, values...)
			}
		}
	}
}

// TestEventKeyLabelsBounded: the keys the API reference lists keep their
// labels; of the others, MaxNewKeys get their own and any more count under
// "other", as does a key too long to be one, in memory and across runs
// (was: a label for every key the API sent: an API sending a new key with
// each event made a series of each, and one 40,000 bytes long).
func TestEventKeyLabelsBounded(t *testing.T) {
	perKey := map[string]int64{"user_login": 1, strings.Repeat("k", 65): 1}
	for i := range telemetry.MaxNewKeys + 10 {
		perKey[fmt.Sprintf("new_key_%03d", i)] = 1
	}
	path := filepath.Join(t.TempDir(), "pachca_export.prom")
	for run := 1; run <= 2; run++ {
		m := telemetry.New("")
		require.NoError(t, m.LoadTextfile(path))
		m.ObservePlan(&pipeline.Summary{PerKey: perKey})
		require.NoError(t, m.WriteTextfile(path))
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		mfs := parse(t, b)
		series := mfs["pachca_export_events_total"].GetMetric()
		require.Len(t, series, 1+telemetry.MaxNewKeys+1, "user_login, the new keys admitted, other")
		require.Equal(t, float64(run), value(t, mfs, "pachca_export_events_total", "event_key", "user_login"))
		require.Equal(t, float64(run*11), value(t, mfs, "pachca_export_events_total", "event_key", telemetry.OtherKey),
			"10 new keys past the cap and the long one")
	}
}

// TestProgressThenPlan: the samples of a plan under way move the API's
// counters; its summary then adds only the rest, whether the plan
// committed or failed, and the next plan's samples count from its own
// start. A sample behind the one before (the client's counters are read
// one at a time) takes no counter back, and a summary of no plan (no run
// id) counts whole.
func TestProgressThenPlan(t *testing.T) {
	m := telemetry.New("")
	read := func() [5]float64 {
		path := filepath.Join(t.TempDir(), "m.prom")
		require.NoError(t, m.WriteTextfile(path))
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		mfs := parse(t, b)
		var v [5]float64
		for i, name := range []string{"api_requests_total", "api_pages_total", "api_events_total", "api_retries_total", "api_throttled_total"} {
			v[i] = value(t, mfs, "pachca_export_"+name)
		}
		return v
	}
	m.ObserveProgress(pipeline.Snapshot{RunID: "a", Requests: 3, Pages: 2, Events: 100, Retries: 1, Throttled: 1})
	require.Equal(t, [5]float64{3, 2, 100, 1, 1}, read())
	m.ObserveProgress(pipeline.Snapshot{RunID: "a", Requests: 5, Pages: 4, Events: 200, Retries: 1, Throttled: 1})
	require.Equal(t, [5]float64{5, 4, 200, 1, 1}, read())
	m.ObserveProgress(pipeline.Snapshot{RunID: "a", Requests: 4, Pages: 4, Events: 200, Retries: 1, Throttled: 1})
	require.Equal(t, [5]float64{5, 4, 200, 1, 1}, read(), "a sample behind takes nothing back")
	m.ObservePlan(&pipeline.Summary{RunID: "a", Requests: 6, Pages: 5, Fetched: 250, Retries: 1, Throttled: 1})
	require.Equal(t, [5]float64{6, 5, 250, 1, 1}, read(), "the summary adds the rest")
	m.ObservePlan(&pipeline.Summary{RunID: "a", Requests: 6, Pages: 5, Fetched: 250, Retries: 1, Throttled: 1})
	require.Equal(t, [5]float64{6, 5, 250, 1, 1}, read(), "a plan counted once")

	m.ObserveProgress(pipeline.Snapshot{RunID: "b", Requests: 2, Pages: 1, Events: 50})
	require.Equal(t, [5]float64{8, 6, 300, 1, 1}, read(), "the next plan from its start")
	m.ObservePlan(&pipeline.Summary{RunID: "b", Requests: 4, Pages: 2, Fetched: 60, Retries: 2, Throttled: 2})
	require.Equal(t, [5]float64{10, 7, 310, 3, 3}, read())

	m.ObservePlan(&pipeline.Summary{Requests: 1, Pages: 1, Fetched: 1})
	m.ObservePlan(&pipeline.Summary{Requests: 1, Pages: 1, Fetched: 1})
	require.Equal(t, [5]float64{12, 9, 312, 3, 3}, read(), "summaries of no plan, each whole")
}
