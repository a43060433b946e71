package follow

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pachca-export/pachca-export/telemetry"
)

// metrics are the follow mode's own metrics, next to the exporter's on one
// registry: what every plan delivered and cost goes to telemetry.Metrics.
type metrics struct {
	*telemetry.Metrics
	cycles    *prometheus.CounterVec // result
	duration  prometheus.Histogram
	late      prometheus.Counter
	sealed    prometheus.Counter
	watermark prometheus.Gauge
	alerts    prometheus.Counter
	behind    prometheus.Gauge
}

// newMetrics defines the metrics on a new registry; freshness reads the
// loop's now minus its watermark, at each scrape.
func newMetrics(freshness func() float64, workspace string) *metrics {
	m := &metrics{Metrics: telemetry.New(workspace)}
	reg := m.Registry()
	m.cycles = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: telemetry.Namespace, Subsystem: "follow",
		Name: "cycles_total", Help: "Follow cycles ended, by result: success or failure."}, []string{"result"})
	m.duration = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: telemetry.Namespace, Subsystem: "follow",
		Name: "cycle_duration_seconds", Help: "Duration of a follow cycle, sealing included.",
		Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}})
	m.late = prometheus.NewCounter(prometheus.CounterOpts{Namespace: telemetry.Namespace, Subsystem: "follow",
		Name: "late_events_total", Help: "Events delivered by a cycle although created before the watermark: published late, caught by the look-back or the seal."})
	m.sealed = prometheus.NewCounter(prometheus.CounterOpts{Namespace: telemetry.Namespace, Subsystem: "follow",
		Name: "seals_total", Help: "UTC days sealed: read once more whole, compacted and recorded as exported."})
	m.watermark = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: telemetry.Namespace, Subsystem: "follow",
		Name: "watermark_timestamp_seconds", Help: "Unix time of the watermark: every event created before it was delivered."})
	m.alerts = prometheus.NewCounter(prometheus.CounterOpts{Namespace: telemetry.Namespace, Subsystem: "follow",
		Name: "alert_failures_total", Help: "Cycles whose alert messages could not all be sent: the feed went on, and the next cycles send what is missing."})
	m.behind = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: telemetry.Namespace, Subsystem: "follow",
		Name: "api_clock_behind_seconds", Help: "How far the API's clock is behind this host's, from its Date headers (to within a second): the cycles read up to the API's now less the lag."})
	fresh := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: telemetry.Namespace, Subsystem: "follow",
		Name: "freshness_seconds", Help: "The API's now minus the watermark: how old the newest exported instant is (alert when it exceeds interval + lag by far)."},
		freshness)
	reg.MustRegister(m.cycles, m.duration, m.late, m.sealed, m.watermark, m.alerts, m.behind, fresh)
	m.cycles.WithLabelValues("success")
	m.cycles.WithLabelValues("failure")
	return m
}

// cycleEnded records one cycle's outcome, at end (a committed cycle's
// commit) after d.
func (m *metrics) cycleEnded(ok bool, end time.Time, d time.Duration) {
	result := "success"
	if !ok {
		result = "failure"
	}
	m.cycles.WithLabelValues(result).Inc()
	m.duration.Observe(d.Seconds())
	m.ObserveCycle(ok, end, d)
}
