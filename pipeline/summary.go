package pipeline

import (
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/pachca-export/pachca-export/extract"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/transform"
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
	EmptyDays []string
	// Refused are the days not delivered because they would have replaced
	// files holding more events (or another identity's); see RefusedError.
	Refused     []Refusal
	Events      int64 // records delivered to each sink
	DeadLetters int64 // events that could not be parsed, or had the id of another event of their window
	Dropped     int64 // events of transform.drop_event_keys, and own reads (drop_own_reads)
	PerKey      map[string]int64
	PerSink     map[string]*SinkTotals
	SinkOrder   []string
	Requests    int64
	Pages       int64
	Fetched     int64 // events received from the API (a window read again counts again)
	Retries     int64
	Throttled   int64
	// AlertFindings and AlertMessages count the alert rules' findings over
	// the delivered days and the messages sent (or printed) for new ones.
	AlertFindings int
	AlertMessages int
	// AlertRefused counts the messages the API refused for what they
	// hold: recorded, and not sent again (alerts.RefusedError).
	AlertRefused int
	// DeadLetterDir is where the dead letters went (in its dt=YYYY-MM-DD/
	// directories) once a day had any: so that a summary read alone (a
	// cron mail, --log-level error) says where to look.
	DeadLetterDir string
	// Plan is set by a dry run.
	Plan *Plan

	mu sync.Mutex
}

// SinkTotals is what one sink committed.
type SinkTotals struct {
	// Type is the sink's type in the configuration (ndjson, s3, ...); its
	// index in SinkOrder is its index in the configuration's sinks.
	Type    string
	Records int64
	Bytes   int64
	Files   []string
}

func newSummary(runID string, started time.Time) *Summary {
	return &Summary{RunID: runID, Started: started, PerKey: map[string]int64{}, PerSink: map[string]*SinkTotals{}}
}

func (s *Summary) sink(name, typ string) {
	s.PerSink[name] = &SinkTotals{Type: typ}
	s.SinkOrder = append(s.SinkOrder, name)
}

// addDay counts a delivered day: events new to the sinks, and empty when
// its files hold none (a sealed day's events are mostly not new).
func (s *Summary) addDay(p sinks.Partition, events int64, empty bool, dropped, dead int64, perKey map[string]int64, ss []sinks.Sink, res []sinks.Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Days = append(s.Days, p.Date())
	if empty {
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

// addCounts counts the dropped events and dead letters of a day that
// delivered nothing new (it wrote no file).
func (s *Summary) addCounts(dropped, dead int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Dropped += dropped
	s.DeadLetters += dead
}

// deadLettersIn records where a day's dead letters went.
func (s *Summary) deadLettersIn(dir string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.DeadLetterDir = dir
}

// Snapshot copies the counters that change during a run.
func (s *Summary) snapshot() (days int, events int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.Days), s.Events
}

func (s *Summary) addClient(c extract.Counts) {
	s.Requests, s.Pages, s.Fetched, s.Retries, s.Throttled = c.Requests, c.Pages, c.Events, c.Retries, c.Throttled
}

func (s *Summary) finish(now time.Time) *Summary {
	s.Duration = now.Sub(s.Started)
	return s
}

// Print writes the human-readable summary; result, when not empty, is how
// the run ended (success, failure, interrupted).
func (s *Summary) Print(w io.Writer, result string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if s.RunID != "" {
		fmt.Fprintf(tw, "run\t%s\n", s.RunID)
	}
	if result != "" {
		fmt.Fprintf(tw, "result\t%s\n", result)
	}
	if !s.From.IsZero() {
		fmt.Fprintf(tw, "range\t%s .. %s\n", fmtT(s.From), fmtT(s.To))
	}
	switch len(s.Days) {
	case 0:
		fmt.Fprintf(tw, "days delivered\t0\n")
	case 1:
		fmt.Fprintf(tw, "days delivered\t1 (%s)\n", s.Days[0])
	default:
		fmt.Fprintf(tw, "days delivered\t%d (%s .. %s)\n", len(s.Days), s.Days[0], s.Days[len(s.Days)-1])
	}
	if len(s.EmptyDays) > 0 {
		fmt.Fprintf(tw, "days without events\t%d (%s)\n", len(s.EmptyDays), strings.Join(s.EmptyDays, ", "))
	}
	fmt.Fprintf(tw, "events\t%d\n", s.Events)
	if s.Dropped > 0 {
		fmt.Fprintf(tw, "dropped (transform)\t%d\n", s.Dropped)
	}
	if s.DeadLetters > 0 && s.DeadLetterDir != "" {
		fmt.Fprintf(tw, "dead letters\t%d (in %s)\n", s.DeadLetters, s.DeadLetterDir)
	} else {
		fmt.Fprintf(tw, "dead letters\t%d\n", s.DeadLetters)
	}
	for i, name := range s.SinkOrder {
		t := s.PerSink[name]
		fmt.Fprintf(tw, "sink %d\t%s: %d events, %d files, %s\n", i, name, t.Records, len(t.Files), bytesString(t.Bytes))
	}
	keys, other := s.shownKeys()
	for _, k := range keys {
		fmt.Fprintf(tw, "  %s\t%d\n", keyString(k), s.PerKey[k])
	}
	if other.keys > 0 {
		fmt.Fprintf(tw, "  (%d other unlisted keys)\t%d\n", other.keys, other.events)
	}
	if s.AlertFindings > 0 {
		refused := ""
		if s.AlertRefused > 0 {
			refused = fmt.Sprintf(", %d refused by the API (not sent again)", s.AlertRefused)
		}
		fmt.Fprintf(tw, "alerts\t%d findings, %d new messages%s\n", s.AlertFindings, s.AlertMessages, refused)
	}
	fmt.Fprintf(tw, "requests\t%d (%d pages, %d retries, %d throttled by 429)\n", s.Requests, s.Pages, s.Retries, s.Throttled)
	fmt.Fprintf(tw, "duration\t%s\n", s.Duration.Round(time.Millisecond))
	tw.Flush()
}

// Attrs returns every figure of the summary as log attributes, for one
// structured record: the sinks (by their index in the configuration) and
// the event keys as groups, the days as lists.
func (s *Summary) Attrs() []slog.Attr {
	attrs := []slog.Attr{slog.String("run_id", s.RunID)}
	if !s.From.IsZero() {
		attrs = append(attrs, slog.String("from", fmtT(s.From)), slog.String("to", fmtT(s.To)))
	}
	days := s.Days
	if days == nil {
		days = []string{} // [] rather than null
	}
	empty := s.EmptyDays
	if empty == nil {
		empty = []string{}
	}
	attrs = append(attrs,
		slog.Int("days_delivered", len(s.Days)), slog.Any("days", days), slog.Any("empty_days", empty),
		slog.Int64("events", s.Events), slog.Int64("dropped", s.Dropped), slog.Int64("dead_letters", s.DeadLetters))
	if s.DeadLetters > 0 && s.DeadLetterDir != "" {
		attrs = append(attrs, slog.String("dead_letter_dir", s.DeadLetterDir))
	}
	var sinkAttrs []any
	for i, name := range s.SinkOrder {
		t := s.PerSink[name]
		sinkAttrs = append(sinkAttrs, slog.Group(strconv.Itoa(i), "name", name, "type", t.Type,
			"records", t.Records, "files", len(t.Files), "bytes", t.Bytes))
	}
	var keyAttrs []any
	keys, other := s.shownKeys()
	for _, k := range keys {
		keyAttrs = append(keyAttrs, slog.Int64(k, s.PerKey[k]))
	}
	attrs = append(attrs, slog.Group("sinks", sinkAttrs...), slog.Group("event_keys", keyAttrs...))
	if other.keys > 0 {
		attrs = append(attrs, slog.Group("other_event_keys", "keys", other.keys, "events", other.events))
	}
	return append(attrs,
		slog.Int("alert_findings", s.AlertFindings), slog.Int("alert_messages", s.AlertMessages), slog.Int("alert_refused", s.AlertRefused),
		slog.Int64("requests", s.Requests), slog.Int64("pages", s.Pages), slog.Int64("retries", s.Retries),
		slog.Int64("throttled", s.Throttled), slog.Float64("duration_seconds", s.Duration.Seconds()))
}

// MaxUnlistedKeys is how many event keys the API reference does not list
// the summary names one by one (the first in order of their names); the
// events of any more are one line, "(N other unlisted keys)" in the table,
// other_event_keys in JSON. The API adds a few keys a year: an API that
// sent a new key with every event must not make a summary of thousands of
// lines, or a JSON line longer than journald keeps whole (48 KiB).
const MaxUnlistedKeys = 50

// otherKeys are the keys past MaxUnlistedKeys and their events.
type otherKeys struct{ keys, events int64 }

// shownKeys are the keys the summary names, in order: every key the API
// reference lists, and the first MaxUnlistedKeys others; other counts the
// rest.
func (s *Summary) shownKeys() (keys []string, other otherKeys) {
	unlisted := 0
	for _, k := range slices.Sorted(maps.Keys(s.PerKey)) {
		if transform.Category(k) == transform.CategoryOther {
			if unlisted++; unlisted > MaxUnlistedKeys {
				other.keys++
				other.events += s.PerKey[k]
				continue
			}
		}
		keys = append(keys, k)
	}
	return keys, other
}

// keyString shows an event key, the API's text, safely on a terminal and
// in a journal: as it is when it is printable, otherwise quoted with Go's
// escapes (a newline would forge a summary line, an escape sequence drive
// the terminal); an empty key shows as "", one over 64 characters cut,
// with its length.
func keyString(k string) string {
	s := k
	if k == "" || k[0] == '"' || !utf8.ValidString(k) || strings.IndexFunc(k, func(r rune) bool { return !strconv.IsPrint(r) || unicode.IsSpace(r) }) >= 0 {
		s = strconv.Quote(k)
	}
	// A key thousands of characters long would pad every line of the
	// table to its width.
	const shown = 64 // runes
	if utf8.RuneCountInString(s) <= shown {
		return s
	}
	i := 0
	for range shown {
		_, n := utf8.DecodeRuneInString(s[i:])
		i += n
	}
	return fmt.Sprintf("%s… (%d bytes)", s[:i], len(k))
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
