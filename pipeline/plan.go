package pipeline

import (
	"fmt"
	"time"

	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/state"
)

const day = 24 * time.Hour

// DataStart is the first day the API has audit events for.
var DataStart = time.Date(2025, 5, 12, 0, 0, 0, 0, time.UTC)

// Plan is what a run will export.
type Plan struct {
	From, To time.Time // the whole range, half open
	Days     []sinks.Partition
	// Explicit is true for --from/--to or period.from/to, false for catch-up.
	Explicit bool
	Notes    []string // warnings for the log: clipped ranges, days lost to retention
	Streams  []string // "" for every event key, else one stream per key
}

// UsageError is a problem with what the user asked for (exit status 2).
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

func usagef(format string, args ...any) error { return &UsageError{Msg: fmt.Sprintf(format, args...)} }

func floorDay(t time.Time) time.Time { return t.UTC().Truncate(day) }

// planRange plans an explicit range [from, to), clipped to now-lag.
func planRange(from, to, now time.Time, lag, retention time.Duration) (Plan, error) {
	p := Plan{Explicit: true}
	if !from.Before(to) {
		return p, usagef("--from (%s) must be before --to (%s)", fmtT(from), fmtT(to))
	}
	limit := now.Add(-lag).Truncate(time.Millisecond)
	if to.After(limit) {
		p.Notes = append(p.Notes, fmt.Sprintf("--to %s is later than now minus period.lag; exporting up to %s", fmtT(to), fmtT(limit)))
		to = limit
	}
	if !from.Before(to) {
		return p, usagef("nothing to export: --from %s is not before now minus period.lag (%s)", fmtT(from), fmtT(limit))
	}
	if oldest := now.Add(-retention); from.Before(oldest) {
		p.Notes = append(p.Notes, fmt.Sprintf("events before %s are past the API's %d-day retention: they can no longer be exported", fmtT(oldest), int(retention/day)))
	}
	p.From, p.To = from, to
	for d := floorDay(from); d.Before(to); d = d.Add(day) {
		p.Days = append(p.Days, sinks.NewPartition(d, from, to, ""))
	}
	return p, nil
}

// planCatchUp plans every complete UTC day not yet exported: from the
// earliest exported day (or yesterday, on the first run) up to yesterday,
// oldest first, skipping days past the retention.
func planCatchUp(exported map[string]state.Day, now time.Time, lag, retention time.Duration) Plan {
	p := Plan{}
	end := floorDay(now.Add(-lag)) // days before end are complete
	first := end.Add(-day)
	for d := range exported {
		if t, err := time.Parse(time.DateOnly, d); err == nil && t.Before(first) {
			first = t
		}
	}
	oldest := now.Add(-retention)
	var lost []string
	for d := first; d.Before(end); d = d.Add(day) {
		if _, ok := exported[d.Format(time.DateOnly)]; ok {
			continue
		}
		if d.Before(oldest) {
			lost = append(lost, d.Format(time.DateOnly))
			continue
		}
		p.Days = append(p.Days, sinks.NewPartition(d, d, d.Add(day), ""))
	}
	if len(lost) > 0 {
		p.Notes = append(p.Notes, fmt.Sprintf("%d day(s) not exported are past the API's retention and lost: %s..%s", len(lost), lost[0], lost[len(lost)-1]))
	}
	if len(p.Days) > 0 {
		p.From, p.To = p.Days[0].From, p.Days[len(p.Days)-1].To
		if left := p.From.Add(retention).Sub(now); left < 7*day {
			p.Notes = append(p.Notes, fmt.Sprintf("the oldest day not yet exported, %s, leaves the API's retention in %s: export it soon", p.Days[0].Date(), left.Round(time.Hour)))
		}
	}
	return p
}

func fmtT(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
