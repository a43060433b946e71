package reader

import (
	"fmt"
	"strings"
	"time"

	"github.com/pachca-export/pachca-export/sinks"
)

// InputError means the output cannot answer what was asked: no exported
// data, a period it does not cover, a record shape the report does not read.
// The command exits 2 on it: another directory or period is needed.
type InputError struct{ msg string }

func (e *InputError) Error() string { return e.msg }

func inputErrorf(format string, args ...any) error {
	return &InputError{msg: fmt.Sprintf(format, args...)}
}

// NotCovered returns the *InputError for a period whose gaps are missing,
// naming the days (runs of whole days collapsed, partial days with the
// uncovered span) and what the store holds.
// When the only gap is the period's end (the part of today a follow loop
// has not delivered yet), it names the --to that the output covers.
func NotCovered(st sinks.Store, p *Plan) error {
	hint := ""
	if len(p.Missing) == 1 && p.Missing[0].To.Equal(p.To) && p.Missing[0].From.After(p.From) {
		reach := p.Missing[0].From.UTC().Format("2006-01-02T15:04:05.000Z07:00")
		hint = fmt.Sprintf("; it reaches %s: --to %s reports up to there", reach, reach)
	}
	return inputErrorf("%s does not cover %s: missing %s (it holds %s)%s; export those days first or choose another period",
		st.Location(""), period(p.From, p.To), DescribeGaps(p.Missing), DescribeDays(p.Held), hint)
}

// DescribeGaps names gaps for a person: "2026-11-03..2026-11-05,
// 2026-11-09 (12:00:00Z-24:00)".
func DescribeGaps(gaps []Gap) string {
	var parts []string
	for i := 0; i < len(gaps); i++ {
		g := gaps[i]
		if !g.Whole {
			parts = append(parts, fmt.Sprintf("%s (%s-%s)", g.Day, g.From.Format("15:04:05Z"), clock(g.To)))
			continue
		}
		j := i
		for j+1 < len(gaps) && gaps[j+1].Whole && nextDay(gaps[j].Day) == gaps[j+1].Day {
			j++
		}
		parts = append(parts, span(g.Day, gaps[j].Day))
		i = j
	}
	return strings.Join(parts, ", ")
}

// DescribeDays collapses sorted dates into runs: "2026-10-01..2026-10-31, 2026-11-05".
func DescribeDays(days []string) string {
	if len(days) == 0 {
		return "no day"
	}
	var parts []string
	for i := 0; i < len(days); i++ {
		j := i
		for j+1 < len(days) && nextDay(days[j]) == days[j+1] {
			j++
		}
		parts = append(parts, span(days[i], days[j]))
		i = j
	}
	return strings.Join(parts, ", ")
}

func span(first, last string) string {
	if first == last {
		return first
	}
	return first + ".." + last
}

func nextDay(d string) string {
	t, err := time.Parse(time.DateOnly, d)
	if err != nil {
		return ""
	}
	return t.AddDate(0, 0, 1).Format(time.DateOnly)
}

// clock is the time of day of t, "24:00" for the next midnight.
func clock(t time.Time) string {
	if t.Hour() == 0 && t.Minute() == 0 && t.Second() == 0 && t.Nanosecond() == 0 {
		return "24:00"
	}
	return t.Format("15:04:05Z")
}

// period formats [from, to) for messages.
func period(from, to time.Time) string {
	return from.Format(time.RFC3339) + " .. " + to.Format(time.RFC3339)
}

// DamagedError is a file or manifest that cannot be read as what its
// manifest says it is. The command exits 1 on it, naming File.
type DamagedError struct {
	File string // where it is: sinks.Store.Location, a path or an s3:// URL
	Err  error
}

func (e *DamagedError) Error() string { return e.File + ": damaged: " + e.Err.Error() }
func (e *DamagedError) Unwrap() error { return e.Err }
