package pipeline

import (
	"bufio"
	"bytes"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/pachca-export/pachca-export/internal/atomicfile"
)

const lastSuccessMetric = "pachca_export_last_success_timestamp_seconds"

// WriteMetrics writes the run's figures in the Prometheus text format to
// path, atomically, for node_exporter's textfile collector. The time of the
// last successful run is carried over from the previous file when this run
// failed.
func (s *Summary) WriteMetrics(path string, ok bool) error {
	last := previousLastSuccess(path)
	if ok {
		last = float64(s.Started.Add(s.Duration).UnixMilli()) / 1000
	}
	var b bytes.Buffer
	metric := func(name, help, typ string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	success := 0
	if ok {
		success = 1
	}
	metric("pachca_export_success", "1 if the last run succeeded, else 0.", "gauge")
	fmt.Fprintf(&b, "pachca_export_success %d\n", success)
	metric(lastSuccessMetric, "Unix time of the end of the last successful run.", "gauge")
	fmt.Fprintf(&b, "%s %s\n", lastSuccessMetric, strconv.FormatFloat(last, 'f', 3, 64))
	metric("pachca_export_duration_seconds", "Duration of the last run.", "gauge")
	fmt.Fprintf(&b, "pachca_export_duration_seconds %.3f\n", s.Duration.Seconds())
	metric("pachca_export_days_delivered", "Days delivered to every sink by the last run.", "gauge")
	fmt.Fprintf(&b, "pachca_export_days_delivered %d\n", len(s.Days))
	metric("pachca_export_events", "Events delivered by the last run, per event_key.", "gauge")
	for _, k := range slices.Sorted(maps.Keys(s.PerKey)) {
		fmt.Fprintf(&b, "pachca_export_events{event_key=%q} %d\n", k, s.PerKey[k])
	}
	metric("pachca_export_dead_letters", "Events of the last run that could not be parsed.", "gauge")
	fmt.Fprintf(&b, "pachca_export_dead_letters %d\n", s.DeadLetters)
	metric("pachca_export_requests", "API requests of the last run.", "gauge")
	fmt.Fprintf(&b, "pachca_export_requests %d\n", s.Requests)
	metric("pachca_export_retries", "API requests repeated by the last run.", "gauge")
	fmt.Fprintf(&b, "pachca_export_retries %d\n", s.Retries)
	metric("pachca_export_throttled", "429 answers in the last run.", "gauge")
	fmt.Fprintf(&b, "pachca_export_throttled %d\n", s.Throttled)
	metric("pachca_export_sink_records", "Records committed per sink by the last run.", "gauge")
	for _, name := range s.SinkOrder {
		fmt.Fprintf(&b, "pachca_export_sink_records{sink=%q} %d\n", name, s.PerSink[name].Records)
	}
	metric("pachca_export_sink_bytes", "Bytes committed per sink by the last run.", "gauge")
	for _, name := range s.SinkOrder {
		fmt.Fprintf(&b, "pachca_export_sink_bytes{sink=%q} %d\n", name, s.PerSink[name].Bytes)
	}
	// The textfile collector runs as another user: the figures are not secret.
	if err := atomicfile.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("metrics file: %w", err)
	}
	return nil
}

func previousLastSuccess(path string) float64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), lastSuccessMetric+" "); ok {
			x, _ := strconv.ParseFloat(v, 64)
			return x
		}
	}
	return 0
}
