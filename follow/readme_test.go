package follow

import (
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/telemetry"
)

// readmeMetric is a metric name the README gives, in full or as
// "..._sink_bytes_total" after a full one, with its labels when it lists
// them ("pachca_export_runs_total{result}").
var readmeMetric = regexp.MustCompile(`(pachca_export|\.\.\.)(_[a-z0-9_]*[a-z0-9])(\{([a-z_]+(?:,[a-z_]+)*)\})?`)

// TestREADMEMetrics: every metric the README names is one the exporter
// serves (the follow mode's /metrics holds them all: a run's textfile and
// the follow mode's own), with the labels the README lists; and every one
// it serves is named in the README.
func TestREADMEMetrics(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	m := newMetrics(func() float64 { return 0 }, "")
	// A summary of one event, so that every labelled metric has a series.
	m.ObservePlan(&pipeline.Summary{PerKey: map[string]int64{"user_login": 1}, SinkOrder: []string{"s"},
		PerSink: map[string]*pipeline.SinkTotals{"s": {Type: "ndjson", Records: 1}}})
	m.duration.Observe(1)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(rec.Body.String()))
	require.NoError(t, err)
	served := map[string][]string{} // name -> labels
	types := map[string]string{}    // name -> counter, gauge, histogram
	for name, f := range fams {
		types[name] = strings.ToLower(f.GetType().String())
		if !strings.HasPrefix(name, telemetry.Namespace+"_") {
			continue // the Go and process collectors
		}
		var labels []string
		for _, l := range f.GetMetric()[0].GetLabel() {
			labels = append(labels, l.GetName())
		}
		served[name] = labels
	}
	require.NotEmpty(t, served)

	named := map[string]bool{}
	var wrong []string
	for _, mm := range readmeMetric.FindAllStringSubmatch(string(b), -1) {
		name := telemetry.Namespace + mm[2]
		named[name] = true
		labels, ok := served[name]
		if !ok {
			wrong = append(wrong, mm[0]+": not a metric of pachca-export")
			continue
		}
		if mm[4] != "" && !slices.Equal(strings.Split(mm[4], ","), labels) {
			wrong = append(wrong, mm[0]+": its labels are "+strings.Join(labels, ","))
		}
	}
	// The table of the metrics file: | names | type | meaning |.
	table := regexp.MustCompile("(?m)^\\| (`pachca_export_.*?) \\| ([a-z]+) \\|")
	rows := table.FindAllStringSubmatch(string(b), -1)
	require.NotEmpty(t, rows, "README: the table of metrics")
	for _, row := range rows {
		for _, mm := range readmeMetric.FindAllStringSubmatch(row[1], -1) {
			if name := telemetry.Namespace + mm[2]; types[name] != "" && types[name] != row[2] {
				wrong = append(wrong, mm[0]+": a "+types[name]+", not a "+row[2])
			}
		}
	}
	for name := range served {
		if !named[name] {
			wrong = append(wrong, name+": served, but the README does not name it")
		}
	}
	slices.Sort(wrong)
	require.Empty(t, wrong, "the README's metrics against those served")
}
