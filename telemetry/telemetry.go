// Package telemetry owns the exporter's Prometheus metrics: one registry,
// the metric definitions (named per the Prometheus conventions: base units,
// _total for counters, label values without paths), and the two ways out:
// a textfile for node_exporter's textfile collector after a one-shot run,
// and an HTTP handler for a long-running process.
//
// Counters are cumulative. A long-running process keeps them in memory; a
// one-shot run carries them over from the previous textfile (LoadTextfile),
// so that they only ever grow across runs and rate() and increase() work.
// A long-running mode registers its own metrics (freshness, cycle duration)
// on Registry next to these.
package telemetry

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/pachca-export/pachca-export/internal/atomicfile"
	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/transform"
)

// Namespace prefixes every metric name.
const Namespace = "pachca_export"

// Result is how a run ended: the result label of pachca_export_runs_total.
type Result string

// The results of a run.
const (
	Success     Result = "success"
	Failure     Result = "failure"
	Interrupted Result = "interrupted"
)

// Metrics is the registry and the metrics defined on it. Its methods are
// safe for concurrent use.
type Metrics struct {
	reg       *prometheus.Registry
	workspace string // New's label value: LoadTextfile carries over only its series
	// on registers on reg, with the workspace label when there is one.
	on prometheus.Registerer

	// What plans delivered and cost (ObservePlan).
	events          *prometheus.CounterVec // event_key (keyLabel)
	keysMu          sync.Mutex
	newKeys         map[string]bool // event_key labels of keys the API reference does not list
	dropped         prometheus.Counter
	deadLetters     prometheus.Counter
	partitions      prometheus.Counter
	emptyPartitions prometheus.Counter
	refused         prometheus.Counter
	sinkRecords     *prometheus.CounterVec // sink, type
	sinkBytes       *prometheus.CounterVec
	sinkFiles       *prometheus.CounterVec
	requests        prometheus.Counter
	pages           prometheus.Counter
	fetched         prometheus.Counter
	retries         prometheus.Counter
	throttled       prometheus.Counter
	alertMessages   prometheus.Counter

	// What the plan under way cost so far, as ObserveProgress added it:
	// ObservePlan adds only the rest.
	liveMu sync.Mutex
	live   planCost

	// How one-shot runs ended (ObserveRun).
	runs            *prometheus.CounterVec // result
	lastSuccess     prometheus.Gauge
	lastRun         prometheus.Gauge
	lastRunSuccess  prometheus.Gauge
	lastRunDuration prometheus.Gauge
}

// sinkLabels: sink is the index in the configuration's sinks (sinks[0] is
// sink="0"), type its type; a path or topic would be a poor label value.
var sinkLabels = []string{"sink", "type"}

// WorkspaceLabel is the label every metric carries when source.workspace is
// set: node_exporter's textfile collector refuses a series that two files
// hold (two nightly jobs, one per workspace, writing into one directory).
const WorkspaceLabel = "workspace"

// New returns the metrics on a new registry that holds nothing else (no Go
// runtime metrics: a textfile beside node_exporter's own must not repeat
// them), each labelled workspace (source.workspace) unless it is "".
func New(workspace string) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), workspace: workspace}
	m.on = m.reg
	if workspace != "" {
		m.on = prometheus.WrapRegistererWith(prometheus.Labels{WorkspaceLabel: workspace}, m.reg)
	}
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help})
		m.on.MustRegister(c)
		return c
	}
	counterVec := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, labels)
		m.on.MustRegister(c)
		return c
	}
	gauge := func(name, help string) prometheus.Gauge {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help})
		m.on.MustRegister(g)
		return g
	}
	m.events = counterVec("events_total", "Events delivered to every sink, by event_key.", "event_key")
	m.dropped = counter("dropped_events_total", "Events not exported because transform.drop_event_keys names their key, or transform.drop_own_reads finds them the exporter's own reads of the log.")
	m.deadLetters = counter("dead_letters_total", "Events written to the dead-letter files: unparseable, or another event with the id of one delivered from its window.")
	m.partitions = counter("partitions_delivered_total", "Partitions (a UTC day, or the part of one a range covers) delivered to every sink.")
	m.refused = counter("refused_partitions_total", "Partitions not delivered because they would have replaced files holding more events, or another identity's (run --replace allows the former).")
	m.emptyPartitions = counter("empty_partitions_total", "Partitions delivered with no event: a feed that goes quiet usually means something broke.")
	m.sinkRecords = counterVec("sink_records_total", "Records committed by a sink (sink is its index in the configuration).", sinkLabels...)
	m.sinkBytes = counterVec("sink_bytes_total", "Bytes committed by a sink: file and object sizes, or Kafka message values.", sinkLabels...)
	m.sinkFiles = counterVec("sink_files_total", "Files or objects committed by a sink.", sinkLabels...)
	m.requests = counter("api_requests_total", "Requests sent to the Pachca API.")
	m.pages = counter("api_pages_total", "Pages of events received from the API.")
	m.fetched = counter("api_events_total", "Events received from the API, before any is skipped as delivered: what the look-back, a seal or a plan done again reads again counts again (events_total counts the events delivered).")
	m.retries = counter("api_retries_total", "API requests repeated after a transient failure or a 429.")
	m.throttled = counter("api_throttled_total", "429 Too Many Requests answers of the API.")
	m.alertMessages = counter("alert_messages_total", "Alert messages sent (or printed by --alerts-dry-run) for new findings.")
	m.runs = counterVec("runs_total", "Runs ended, by result: success, failure or interrupted.", "result")
	for _, r := range []Result{Success, Failure, Interrupted} {
		m.runs.WithLabelValues(string(r)) // at 0 until a run ends so: a follow process counts none
	}
	m.lastSuccess = gauge("last_success_timestamp_seconds", "Unix time the last successful run ended (kept across failed runs: alert on its age).")
	m.lastRun = gauge("last_run_timestamp_seconds", "Unix time the last run ended.")
	m.lastRunSuccess = gauge("last_run_success", "1 if the last run succeeded, else 0.")
	m.lastRunDuration = gauge("last_run_duration_seconds", "Duration of the last run.")
	return m
}

// Registry is where a long-running mode registers its own metrics, named
// under Namespace (with the workspace label of the others).
func (m *Metrics) Registry() prometheus.Registerer { return m.on }

// ObserveRefused counts a partition left as its sinks hold it outside a
// plan's summary (a followed day that is not compacted).
func (m *Metrics) ObserveRefused() { m.refused.Inc() }

// MaxNewKeys is how many event keys the API reference does not list get
// their own event_key label; the events of any more (and of keys longer
// than 64 bytes, or not UTF-8) count under OtherKey. The API adds a few
// keys a year, and each label is a series Prometheus keeps: an API that
// sent a new key with every event must not make a series of each.
const MaxNewKeys = 50

// OtherKey is the event_key label of the keys past MaxNewKeys.
const OtherKey = "other"

// keyLabel is the event_key label of key k.
func (m *Metrics) keyLabel(k string) string {
	if transform.Category(k) != transform.CategoryOther {
		return k
	}
	m.keysMu.Lock()
	defer m.keysMu.Unlock()
	if m.newKeys[k] {
		return k
	}
	if len(m.newKeys) >= MaxNewKeys || !keySpelling(k) {
		return OtherKey
	}
	if m.newKeys == nil {
		m.newKeys = map[string]bool{}
	}
	m.newKeys[k] = true
	return k
}

// keySpelling reports whether k may be a label: valid UTF-8 of at most 64
// bytes (the API's keys are a few words of snake case), and not OtherKey.
func keySpelling(k string) bool {
	return k != "" && len(k) <= 64 && utf8.ValidString(k) && k != OtherKey
}

// ObservePlan adds what one executed plan delivered and cost, from its
// summary (complete or, after a failure, what was done before it). A dry
// run's summary adds nothing.
func (m *Metrics) ObservePlan(s *pipeline.Summary) {
	if s == nil || s.Plan != nil {
		return
	}
	for k, n := range s.PerKey {
		m.events.WithLabelValues(m.keyLabel(k)).Add(float64(n))
	}
	m.dropped.Add(float64(s.Dropped))
	m.deadLetters.Add(float64(s.DeadLetters))
	m.partitions.Add(float64(len(s.Days)))
	m.emptyPartitions.Add(float64(len(s.EmptyDays)))
	m.refused.Add(float64(len(s.Refused)))
	for i, name := range s.SinkOrder {
		t := s.PerSink[name]
		labels := []string{strconv.Itoa(i), t.Type}
		m.sinkRecords.WithLabelValues(labels...).Add(float64(t.Records))
		m.sinkBytes.WithLabelValues(labels...).Add(float64(t.Bytes))
		m.sinkFiles.WithLabelValues(labels...).Add(float64(len(t.Files)))
	}
	m.observeCost(planCost{runID: s.RunID, requests: s.Requests, pages: s.Pages, fetched: s.Fetched,
		retries: s.Retries, throttled: s.Throttled})
	m.alertMessages.Add(float64(s.AlertMessages))
}

// planCost is what a plan cost the API so far, counted from its start.
type planCost struct {
	runID                                        string
	requests, pages, fetched, retries, throttled int64
}

// ObserveProgress adds to the API's counters (requests, pages, events
// received, retries, 429s) what the plan s samples cost since its last
// sample: /metrics of a long-running process moves while a plan runs (a
// first cycle reads the day so far for minutes), and the plan's summary
// (ObservePlan) then adds only the rest, whether the plan committed,
// failed or was stopped.
func (m *Metrics) ObserveProgress(s pipeline.Snapshot) {
	m.observeCost(planCost{runID: s.RunID, requests: s.Requests, pages: s.Pages, fetched: s.Events,
		retries: s.Retries, throttled: s.Throttled})
}

// observeCost adds to the counters what c, a plan's cost since its start,
// counts past what was added of that plan before. The client's counters
// only grow, but a sample reads each on its own: a figure behind the one
// added adds nothing, rather than take a counter back.
func (m *Metrics) observeCost(c planCost) {
	m.liveMu.Lock()
	defer m.liveMu.Unlock()
	if c.runID == "" || m.live.runID != c.runID { // "": a summary made by hand, of no plan
		m.live = planCost{runID: c.runID}
	}
	add := func(ctr prometheus.Counter, seen *int64, now int64) {
		if now > *seen {
			ctr.Add(float64(now - *seen))
			*seen = now
		}
	}
	add(m.requests, &m.live.requests, c.requests)
	add(m.pages, &m.live.pages, c.pages)
	add(m.fetched, &m.live.fetched, c.fetched)
	add(m.retries, &m.live.retries, c.retries)
	add(m.throttled, &m.live.throttled, c.throttled)
}

// ObserveRun records how a one-shot run ended, at end after d.
func (m *Metrics) ObserveRun(r Result, end time.Time, d time.Duration) {
	m.runs.WithLabelValues(string(r)).Inc()
	ts := float64(end.UnixMilli()) / 1000
	m.lastRun.Set(ts)
	m.lastRunDuration.Set(d.Seconds())
	if r == Success {
		m.lastSuccess.Set(ts)
		m.lastRunSuccess.Set(1)
	} else {
		m.lastRunSuccess.Set(0)
	}
}

// ObserveCycle records how a follow cycle ended, at end after d, on the
// gauges of a run (runs_total counts one-shot runs only): the alerts on the
// age of the last success and on the last run's result apply to a follow
// process as they do to a nightly job.
func (m *Metrics) ObserveCycle(ok bool, end time.Time, d time.Duration) {
	ts := float64(end.UnixMilli()) / 1000
	m.lastRun.Set(ts)
	m.lastRunDuration.Set(d.Seconds())
	if ok {
		m.lastSuccess.Set(ts)
		m.lastRunSuccess.Set(1)
	} else {
		m.lastRunSuccess.Set(0)
	}
}

// Handler serves the registry, with the Go runtime and process metrics, in
// the Prometheus exposition formats (/metrics of a long-running process).
func (m *Metrics) Handler() http.Handler {
	runtime := prometheus.NewRegistry()
	runtime.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(prometheus.Gatherers{m.reg, runtime}, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// WriteTextfile writes every metric in the text format to path, atomically
// (a temporary file renamed into place, fsynced) and readable by everyone:
// node_exporter's textfile collector runs as another user, and the figures
// are not secret.
func (m *Metrics) WriteTextfile(path string) error {
	mfs, err := m.reg.Gather()
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	var b bytes.Buffer
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
	}
	if err := atomicfile.Replaceable(path); err != nil {
		return fmt.Errorf("metrics file %w: give the path of a file (in node_exporter's textfile directory)", err)
	}
	if err := atomicfile.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("metrics file: %w", err)
	}
	return nil
}

// CheckTextfile proves, before a run, that WriteTextfile can write path
// after it: path is a file or nothing yet (not a directory or a device),
// and its directory takes a file.
func CheckTextfile(path string) error {
	if err := atomicfile.Replaceable(path); err != nil {
		return fmt.Errorf("metrics file %w: give the path of a file (in node_exporter's textfile directory)", err)
	}
	if err := atomicfile.Probe(filepath.Dir(path)); err != nil {
		return fmt.Errorf("metrics file %s: its directory does not take a file: %w", path, err)
	}
	return replaceableBy(path, os.Geteuid(), os.Stat)
}

// replaceableBy fails when the directory of path has the sticky bit (a
// textfile directory shared as /tmp is, 1777) and path is there and
// another user's (a run by hand as root wrote it): rename(2) over it is
// refused there to any but its owner, the directory's and root, and would
// fail only after the run did its work.
func replaceableBy(path string, euid int, stat func(string) (fs.FileInfo, error)) error {
	if euid == 0 {
		return nil
	}
	dir := filepath.Dir(path)
	fi, err := stat(path)
	if err != nil {
		return nil // absent: written anew
	}
	di, err := stat(dir)
	if err != nil || di.Mode()&fs.ModeSticky == 0 {
		return nil
	}
	owner, ok := fi.Sys().(*syscall.Stat_t)
	dirOwner, dok := di.Sys().(*syscall.Stat_t)
	if !ok || !dok || int(owner.Uid) == euid || int(dirOwner.Uid) == euid {
		return nil
	}
	return fmt.Errorf("metrics file %s belongs to uid %d, in a directory with the sticky bit (%s), where this process (uid %d) may not replace it: remove it, or chown it to this process's user", path, owner.Uid, dir, euid)
}

// LoadTextfile carries over the counters and the last success time of a
// file WriteTextfile wrote before; call it on new Metrics. A missing file
// is no error. A file that does not parse is an error, and nothing of it
// is carried over: the counters then restart from zero, which Prometheus
// reads as a reset. The series of another workspace label (a job of
// another workspace wrote the file) are not carried over either, since
// they counted another workspace's events: an error names the label, after
// this workspace's series (and unlabelled ones, of versions before the
// label) are carried over.
func (m *Metrics) LoadTextfile(path string) error {
	if err := atomicfile.Replaceable(path); err != nil {
		return fmt.Errorf("metrics file %w", err) // not read: a FIFO would hold the open up for ever
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("metrics file: %w", err)
	}
	defer f.Close()
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(f)
	if err != nil {
		return fmt.Errorf("metrics file %s: %w", path, err)
	}
	vecs := map[string]*prometheus.CounterVec{}
	plain := map[string]prometheus.Counter{}
	for _, c := range []struct {
		name string
		vec  *prometheus.CounterVec
	}{{"events_total", m.events}, {"sink_records_total", m.sinkRecords}, {"sink_bytes_total", m.sinkBytes},
		{"sink_files_total", m.sinkFiles}, {"runs_total", m.runs}} {
		vecs[Namespace+"_"+c.name] = c.vec
	}
	for _, c := range []struct {
		name string
		c    prometheus.Counter
	}{{"dropped_events_total", m.dropped}, {"dead_letters_total", m.deadLetters},
		{"partitions_delivered_total", m.partitions}, {"empty_partitions_total", m.emptyPartitions},
		{"refused_partitions_total", m.refused}, {"api_requests_total", m.requests}, {"api_pages_total", m.pages},
		{"api_events_total", m.fetched}, {"api_retries_total", m.retries},
		{"api_throttled_total", m.throttled}, {"alert_messages_total", m.alertMessages}} {
		plain[Namespace+"_"+c.name] = c.c
	}
	other := ""
	for name, mf := range mfs {
		for _, metric := range mf.GetMetric() {
			if w := workspaceOf(metric); w != "" && w != m.workspace {
				other = w
				continue
			}
			switch {
			case vecs[name] != nil && mf.GetType() == dto.MetricType_COUNTER:
				labels := prometheus.Labels{}
				for _, l := range metric.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				delete(labels, WorkspaceLabel) // New's, not the vector's
				if k, ok := labels["event_key"]; ok && vecs[name] == m.events {
					labels["event_key"] = m.keyLabel(k)
				}

				c, err := vecs[name].GetMetricWith(labels)
				if err != nil {
					continue // labels of another version: not carried over
				}
				carry(c, metric.GetCounter().GetValue())
			case plain[name] != nil && mf.GetType() == dto.MetricType_COUNTER:
				carry(plain[name], metric.GetCounter().GetValue())
			case name == Namespace+"_last_success_timestamp_seconds" && mf.GetType() == dto.MetricType_GAUGE:
				m.lastSuccess.Set(metric.GetGauge().GetValue())
			}
		}
	}
	if other != "" {
		return fmt.Errorf("metrics file %s holds the metrics of workspace %q, not of %q: not carried over, "+
			"so they do not count as this workspace's; give each workspace's job a file of its own", path, other, m.workspace)
	}
	return nil
}

// workspaceOf is the value of a series' workspace label, "" without one.
func workspaceOf(metric *dto.Metric) string {
	for _, l := range metric.GetLabel() {
		if l.GetName() == WorkspaceLabel {
			return l.GetValue()
		}
	}
	return ""
}

// TextfileWorkspace is the workspace label of the file WriteTextfile wrote
// at path before, "" if none: what a run whose configuration does not load
// keeps, so that its failure lands on the series of the runs before.
func TextfileWorkspace(path string) string {
	if atomicfile.Replaceable(path) != nil {
		return "" // a FIFO would hold the open up for ever
	}
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(f)
	if err != nil {
		return ""
	}
	for _, metric := range mfs[Namespace+"_last_run_timestamp_seconds"].GetMetric() {
		if w := workspaceOf(metric); w != "" {
			return w
		}
	}
	return ""
}

// carry adds a counter's previous value; a value no counter can have (a
// file edited by hand) is dropped rather than panicking.
func carry(c prometheus.Counter, v float64) {
	if v >= 0 && !math.IsInf(v, 1) {
		c.Add(v)
	}
}
