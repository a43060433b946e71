package reader

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/transform"
)

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
// Whole is false when the period takes only part of the day, as the first
// and last UTC days of a period of Moscow days: what is missing is named
// with its span, not as the whole day.
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
	// Held lists every day the store has a folder for, for messages, but
	// the days of the period whose folder has no manifest (an export that
	// did not finish there).
	Held []string
	// Unsealed lists the days of the period follow is still feeding: their
	// files are its cycle files, which do not reach the day's end yet (a
	// day sealed with follow.keep_cycle_files keeps cycle files that
	// do; one past midnight but not sealed yet, lag + look-back later, is
	// not told from it).
	Unsealed []string
	// Identity is what the store's marker records of the configuration
	// that wrote it; nil without a marker.
	Identity *sinks.Identity
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

// NewPlan reads the manifests of the days of [from, to) in st (in the daily
// layout, the only one of schema v1 output) and chooses, for each day, files
// that together cover its share of the period exactly once (a day may hold
// a whole-day file and partial-range files that overlap it). A store
// without any day directory is an *InputError, a manifest with another
// schema_version too; an unreadable manifest is a *DamagedError.
func NewPlan(ctx context.Context, st sinks.Store, from, to time.Time) (*Plan, error) {
	dirs, err := st.Days(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("list days: %w", err)
	}
	if len(dirs) == 0 {
		if entries, err := st.Entries(ctx, ""); err == nil && slices.ContainsFunc(entries, func(o sinks.Object) bool { return o.Dir && o.Name == "ext" }) {
			return nil, inputErrorf("%s holds the Security Lake layout (ext/): OCSF events, which the report does not read; it reads the %s output of a parquet or ndjson sink", st.Location(""), transform.SchemaVersion)
		}
		return nil, inputErrorf("%s: no exported data (no dt=YYYY-MM-DD folder): is it the dir of a parquet or ndjson sink?", st.Location(""))
	}
	p := &Plan{From: from.UTC(), To: to.UTC()}
	marker, err := readMarker(ctx, st)
	if err != nil {
		return nil, err
	}
	if marker != nil {
		p.Identity = &marker.Identity
	}
	for _, d := range dirs {
		p.Held = append(p.Held, strings.TrimPrefix(d, "dt="))
	}
	for day := p.From.Truncate(24 * time.Hour); day.Before(p.To); day = day.Add(24 * time.Hour) {
		share := sinks.NewPartition(day, p.From, p.To, "")
		date := share.Date()
		whole := wholeDay(share.From, share.To)
		if _, ok := slices.BinarySearch(p.Held, date); !ok {
			p.Missing = append(p.Missing, Gap{Day: date, From: share.From, To: share.To, Whole: whole})
			continue
		}
		m, err := readManifest(ctx, st, share.Dir(), marker)
		if err != nil {
			return nil, err
		}
		if m == nil {
			p.Missing = append(p.Missing, Gap{Day: date, From: share.From, To: share.To, Whole: whole})
			p.Held = slices.DeleteFunc(p.Held, func(d string) bool { return d == date })
			continue
		}
		parts, gaps := cover(date, m.Files, share.From, share.To)
		p.Parts = append(p.Parts, parts...)
		p.Missing = append(p.Missing, gaps...)
		if unsealed(m.Files, day) {
			p.Unsealed = append(p.Unsealed, date)
		}
	}
	return p, nil
}

// unsealed reports whether the files of the day that starts at day are
// follow's cycle files that do not reach its end.
func unsealed(files []sinks.ManifestFile, day time.Time) bool {
	end, cycles := day, false
	for _, f := range files {
		if f.Part {
			cycles = true
			if f.To.After(end) {
				end = f.To
			}
		} else if f.From.Equal(day) && !f.To.Before(day.Add(24*time.Hour)) {
			return false // a whole-day file
		}
	}
	return cycles && end.Before(day.Add(24*time.Hour))
}

// readManifest returns the manifest of a day directory, nil if there is
// none. Unknown fields are ignored, so manifests that grow keep working.
// A manifest that records another identity than the marker is a
// *DamagedError: the day holds another configuration's events (copied
// in), which would pass for this one's.
func readManifest(ctx context.Context, st sinks.Store, dayDir string, marker *sinks.Marker) (*sinks.Manifest, error) {
	name := dayDir + "/" + sinks.ManifestName
	b, _, err := st.Get(ctx, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, &DamagedError{File: st.Location(name), Err: err}
	}
	m, err := sinks.DecodeManifest(b)
	if err != nil {
		return nil, &DamagedError{File: st.Location(name), Err: fmt.Errorf("not a manifest: %w", err)}
	}
	if m.SchemaVersion != transform.SchemaVersion {
		return nil, inputErrorf("%s: schema_version %q: the report reads only %s output (a sink with another record shape cannot be reported on)",
			st.Location(name), m.SchemaVersion, transform.SchemaVersion)
	}
	if marker != nil && m.Identity != "" && marker.IdentityHash != "" && m.Identity != marker.IdentityHash {
		return nil, &DamagedError{File: st.Location(name), Err: fmt.Errorf("written for another identity (%.12s…) than %s records (%.12s…): the day holds another configuration's events; export it again with this one",
			m.Identity, sinks.MarkerName, marker.IdentityHash)}
	}
	for _, f := range m.Files {
		if err := checkName(f.Name); err != nil {
			return nil, &DamagedError{File: st.Location(name), Err: err}
		}
		if !f.From.Before(f.To) {
			return nil, &DamagedError{File: st.Location(name), Err: fmt.Errorf("%s: empty range %s..%s", f.Name, f.From.Format(time.RFC3339), f.To.Format(time.RFC3339))}
		}
	}
	return &m, nil
}

// readMarker returns the marker at the root of st: the identity of the
// configuration that wrote it (filters, dropped keys). nil when there is
// none (output of a version before markers); an unreadable marker is a
// *DamagedError.
func readMarker(ctx context.Context, st sinks.Store) (*sinks.Marker, error) {
	b, _, err := st.Get(ctx, sinks.MarkerName)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, &DamagedError{File: st.Location(sinks.MarkerName), Err: err}
	}
	var m sinks.Marker
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, &DamagedError{File: st.Location(sinks.MarkerName), Err: fmt.Errorf("not a marker: %w", err)}
	}
	return &m, nil
}

// checkName refuses a manifest entry that would leave its day folder.
func checkName(name string) error {
	if name == "" || name != path.Base(name) || name == "." || name == ".." {
		return fmt.Errorf("file name %q is not a plain name", name)
	}
	return nil
}

// cover picks files that cover [lo, hi) of one day, each for the span not
// covered by the ones before it, and returns the uncovered spans. A
// follow cycle's file (ManifestFile.Part) holds only the events of its span
// no cycle before it delivered, late ones among them: each is read for the
// whole of its span within [lo, hi), and none stands for another. The parts
// of files that hold every event of their span come first.
func cover(day string, files []sinks.ManifestFile, lo, hi time.Time) ([]Part, []Gap) {
	parts, gaps := spans(day, files, lo, hi)
	parts = slices.DeleteFunc(parts, func(p Part) bool { return p.File.Part })
	for _, f := range files {
		if f.Part && f.To.After(lo) && f.From.Before(hi) {
			parts = append(parts, Part{Day: day, File: f, From: max(lo.UnixMilli(), f.From.UnixMilli()), To: min(hi.UnixMilli(), f.To.UnixMilli())})
		}
	}
	return parts, gaps
}

// Overlaps returns the spans, [from, to) in Unix milliseconds, where a
// follow cycle file among parts (those of one day) overlaps a file that
// holds every event of its span (a run's, of part of the day): the cycle
// file may hold the events of the span again, beside late ones only it
// has, so an id read there from both counts once.
func Overlaps(parts []Part) [][2]int64 {
	var out [][2]int64
	for _, c := range parts {
		if !c.File.Part {
			continue
		}
		for _, w := range parts {
			if lo, hi := max(c.From, w.From), min(c.To, w.To); !w.File.Part && lo < hi {
				out = append(out, [2]int64{lo, hi})
			}
		}
	}
	return out
}

// spans is cover for files that each hold every event of their span.
func spans(day string, files []sinks.ManifestFile, lo, hi time.Time) ([]Part, []Gap) {
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
	var gaps []Gap
	covered := lo
	for _, f := range files {
		if !covered.Before(hi) {
			break
		}
		if !f.To.After(covered) {
			continue // nothing new
		}
		if f.From.After(covered) { // a hole before this file
			if !f.From.Before(hi) {
				break
			}
			gaps = append(gaps, Gap{Day: day, From: covered, To: f.From})
			covered = f.From
		}
		end := f.To
		if hi.Before(end) {
			end = hi
		}
		parts = append(parts, Part{Day: day, File: f, From: covered.UnixMilli(), To: end.UnixMilli()})
		covered = end
	}
	if covered.Before(hi) {
		gaps = append(gaps, Gap{Day: day, From: covered, To: hi, Whole: covered.Equal(lo) && wholeDay(lo, hi)})
	}
	return parts, gaps
}

// wholeDay reports whether [from, to) is a whole UTC day.
func wholeDay(from, to time.Time) bool {
	return from.Equal(from.Truncate(24*time.Hour)) && to.Sub(from) == 24*time.Hour
}
