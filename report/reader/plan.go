package reader

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/transform"
)

// maxManifestSize bounds what is read as a manifest: one lists a few files.
const maxManifestSize = 8 << 20

// Part is one file to read and the span of its rows to take, [From, To) in
// Unix milliseconds: another file of the day, or no file, covers the rest.
type Part struct {
	Day  string
	File sinks.ManifestFile
	From int64
	To   int64
}

// Name is the file's name under the store's root.
func (p Part) Name() string { return "dt=" + p.Day + "/" + p.File.Name }

// Gap is a part of a period that no file covers: a whole day (no manifest,
// or none of its files overlap the period) or the span [From, To) of a day.
type Gap struct {
	Day      string
	From, To time.Time
	Whole    bool
}

// Plan is what a store holds of [From, To): the parts to read, oldest day
// first, and the gaps.
type Plan struct {
	From, To time.Time
	Parts    []Part
	Missing  []Gap
	// Held lists every day the store has a folder for, for messages.
	Held []string
}

// Complete reports whether every millisecond of the period is covered.
func (p *Plan) Complete() bool { return len(p.Missing) == 0 }

// Records is the number of rows the parts' files hold (rows outside a
// part's span included).
func (p *Plan) Records() int64 {
	var n int64
	for _, pt := range p.Parts {
		n += pt.File.Records
	}
	return n
}

// NewPlan reads the manifests of the days of [from, to) in st and chooses,
// for each day, files that together cover its share of the period exactly
// once (a day may hold a whole-day file and partial-range files that overlap
// it). A store without any day folder is an *InputError, a manifest with
// another schema_version too; an unreadable manifest is a *DamagedError.
func NewPlan(ctx context.Context, st Store, from, to time.Time) (*Plan, error) {
	held, err := st.Days(ctx)
	if err != nil {
		if isNotExist(err) {
			return nil, inputErrorf("%s: no such directory", st)
		}
		return nil, fmt.Errorf("%s: list days: %w", st, err)
	}
	if len(held) == 0 {
		return nil, inputErrorf("%s: no exported data (no dt=YYYY-MM-DD folder): is it the dir of a parquet or ndjson sink?", st)
	}
	p := &Plan{From: from.UTC(), To: to.UTC(), Held: held}
	for day := p.From.Truncate(24 * time.Hour); day.Before(p.To); day = day.Add(24 * time.Hour) {
		lo, hi := maxTime(day, p.From), minTime(day.Add(24*time.Hour), p.To)
		date := day.Format(time.DateOnly)
		if _, ok := slices.BinarySearch(held, date); !ok {
			p.Missing = append(p.Missing, Gap{Day: date, From: lo, To: hi, Whole: true})
			continue
		}
		m, err := readManifest(ctx, st, date)
		if err != nil {
			return nil, err
		}
		if m == nil {
			p.Missing = append(p.Missing, Gap{Day: date, From: lo, To: hi, Whole: true})
			continue
		}
		parts, gap := cover(date, m.Files, lo, hi)
		p.Parts = append(p.Parts, parts...)
		if gap != nil {
			p.Missing = append(p.Missing, *gap)
		}
	}
	return p, nil
}

// readManifest returns the day's manifest, nil if there is none. Unknown
// fields are ignored, so manifests that grow keep working.
func readManifest(ctx context.Context, st Store, day string) (*sinks.Manifest, error) {
	name := "dt=" + day + "/" + sinks.ManifestName
	rc, err := st.Open(ctx, name)
	if err != nil {
		if isNotExist(err) {
			return nil, nil
		}
		return nil, &DamagedError{File: where(st, name), Err: err}
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxManifestSize+1))
	if err != nil {
		return nil, &DamagedError{File: where(st, name), Err: err}
	}
	if len(b) > maxManifestSize {
		return nil, &DamagedError{File: where(st, name), Err: fmt.Errorf("larger than %d bytes: not a manifest", maxManifestSize)}
	}
	var m sinks.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, &DamagedError{File: where(st, name), Err: fmt.Errorf("not a manifest: %w", err)}
	}
	if m.SchemaVersion != transform.SchemaVersion {
		return nil, inputErrorf("%s/%s: schema_version %q: the report reads only %s output (a sink with another record shape cannot be reported on)",
			st, name, m.SchemaVersion, transform.SchemaVersion)
	}
	for _, f := range m.Files {
		if err := checkName(f.Name); err != nil {
			return nil, &DamagedError{File: where(st, name), Err: err}
		}
		if !f.From.Before(f.To) {
			return nil, &DamagedError{File: where(st, name), Err: fmt.Errorf("%s: empty range %s..%s", f.Name, f.From.Format(time.RFC3339), f.To.Format(time.RFC3339))}
		}
	}
	return &m, nil
}

// cover picks files that cover [lo, hi) of one day, each for the span not
// covered by the ones before it, and returns the first uncovered span.
func cover(day string, files []sinks.ManifestFile, lo, hi time.Time) ([]Part, *Gap) {
	files = slices.Clone(files)
	slices.SortFunc(files, func(a, b sinks.ManifestFile) int {
		if c := a.From.Compare(b.From); c != 0 {
			return c
		}
		if c := b.To.Compare(a.To); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	var parts []Part
	covered := lo
	for _, f := range files {
		if !covered.Before(hi) {
			break
		}
		if !f.To.After(covered) {
			continue // nothing new
		}
		if f.From.After(covered) {
			break // a hole before this file
		}
		end := minTime(f.To, hi)
		parts = append(parts, Part{Day: day, File: f, From: covered.UnixMilli(), To: end.UnixMilli()})
		covered = end
	}
	if covered.Before(hi) {
		return parts, &Gap{Day: day, From: covered, To: hi, Whole: covered.Equal(lo)}
	}
	return parts, nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
