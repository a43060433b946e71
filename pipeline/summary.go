package pipeline

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/pachca-export/pachca-export/extract"
	"github.com/pachca-export/pachca-export/sinks"
)

// Summary is the account of a run: what was delivered where, and what it cost.
type Summary struct {
	RunID    string
	Started  time.Time
	Duration time.Duration
	From, To time.Time
	// Days delivered to every sink, oldest first.
	Days []string
	// EmptyDays are the days of Days delivered with no event (a partial
	// day's range included): worth a look, since a feed rarely goes quiet.
	EmptyDays   []string
	Events      int64 // records delivered to each sink
	DeadLetters int64 // events that could not be parsed
	Dropped     int64 // events of transform.drop_event_keys
	PerKey      map[string]int64
	PerSink     map[string]*SinkTotals
	SinkOrder   []string
	Requests    int64
	Pages       int64
	Retries     int64
	Throttled   int64
	// AlertFindings and AlertMessages count the alert rules' findings over
	// the delivered days and the messages sent (or printed) for new ones.
	AlertFindings int
	AlertMessages int
	// Plan is set by a dry run.
	Plan *Plan

	mu sync.Mutex
}

// SinkTotals is what one sink committed.
type SinkTotals struct {
	Records int64
	Bytes   int64
	Files   []string
}

func newSummary(runID string, started time.Time) *Summary {
	return &Summary{RunID: runID, Started: started, PerKey: map[string]int64{}, PerSink: map[string]*SinkTotals{}}
}

func (s *Summary) sink(name string) {
	s.PerSink[name] = &SinkTotals{}
	s.SinkOrder = append(s.SinkOrder, name)
}

func (s *Summary) addDay(p sinks.Partition, events, dropped, dead int64, perKey map[string]int64, ss []sinks.Sink, res []sinks.Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Days = append(s.Days, p.Date())
	if events == 0 {
		s.EmptyDays = append(s.EmptyDays, p.Date())
	}
	s.Events += events
	s.Dropped += dropped
	s.DeadLetters += dead
	for k, n := range perKey {
		s.PerKey[k] += n
	}
	for i, r := range res {
		t := s.PerSink[ss[i].Name()]
		t.Records += r.Records
		t.Bytes += r.Bytes
		t.Files = append(t.Files, r.Files...)
	}
}

// Snapshot copies the counters that change during a run.
func (s *Summary) snapshot() (days int, events int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.Days), s.Events
}

func (s *Summary) addClient(c extract.Counts) {
	s.Requests, s.Pages, s.Retries, s.Throttled = c.Requests, c.Pages, c.Retries, c.Throttled
}

func (s *Summary) finish(now time.Time) *Summary {
	s.Duration = now.Sub(s.Started)
	return s
}

// Print writes the human-readable summary.
func (s *Summary) Print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "run\t%s\n", s.RunID)
	if !s.From.IsZero() {
		fmt.Fprintf(tw, "range\t%s .. %s\n", fmtT(s.From), fmtT(s.To))
	}
	fmt.Fprintf(tw, "days delivered\t%d\n", len(s.Days))
	fmt.Fprintf(tw, "events\t%d\n", s.Events)
	if s.Dropped > 0 {
		fmt.Fprintf(tw, "dropped (drop_event_keys)\t%d\n", s.Dropped)
	}
	fmt.Fprintf(tw, "dead letters\t%d\n", s.DeadLetters)
	for _, name := range s.SinkOrder {
		t := s.PerSink[name]
		fmt.Fprintf(tw, "sink %s\t%d events, %d files, %s\n", name, t.Records, len(t.Files), bytesString(t.Bytes))
	}
	for _, k := range slices.Sorted(maps.Keys(s.PerKey)) {
		fmt.Fprintf(tw, "  %s\t%d\n", k, s.PerKey[k])
	}
	if s.AlertFindings > 0 {
		fmt.Fprintf(tw, "alerts\t%d findings, %d new messages\n", s.AlertFindings, s.AlertMessages)
	}
	fmt.Fprintf(tw, "requests\t%d (%d pages, %d retries, %d throttled by 429)\n", s.Requests, s.Pages, s.Retries, s.Throttled)
	fmt.Fprintf(tw, "duration\t%s\n", s.Duration.Round(time.Millisecond))
	tw.Flush()
}

func bytesString(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
