package verify

import (
	"context"
	"errors"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/pachca-export/pachca-export/sinks"
)

// span is a range [from, to) of a day that files cover.
type span struct{ from, to time.Time }

// coverage is the union of the ranges of a day's manifest entries, in
// order, touching ranges merged; ok is false for a manifest that lists a
// follow cycle's file, whose late events make its span no bound of what
// it holds until the day is sealed.
func coverage(m sinks.Manifest) (spans []span, ok bool) {
	files := slices.Clone(m.Files)
	slices.SortFunc(files, func(a, b sinks.ManifestFile) int { return a.From.Compare(b.From) })
	for _, f := range files {
		if f.Part {
			return nil, false
		}
		if n := len(spans); n > 0 && !f.From.After(spans[n-1].to) {
			if f.To.After(spans[n-1].to) {
				spans[n-1].to = f.To
			}
			continue
		}
		spans = append(spans, span{f.From, f.To})
	}
	return spans, len(spans) > 0
}

// partCoverage is what the sinks hold of day, a day not over (a run of
// its first hours, of the hours of an incident): the ranges their files
// cover, which the API is asked for instead of the whole day, so that a
// part of today is compared as a day over is, and the events the API
// publishes after those ranges are not called missing. ok is false, and
// the day is not compared, when the sinks cover different ranges, a
// manifest cannot be read, or one lists a follow cycle's file.
func (v *verifier) partCoverage(ctx context.Context, day string) (spans []span, ok bool) {
	for _, r := range v.roots {
		b, _, err := r.store.Get(ctx, r.layout.ManifestName("dt="+day))
		if errors.Is(err, fs.ErrNotExist) {
			continue // this sink holds nothing of the day: the others are compared
		}
		if err != nil {
			return nil, false
		}
		s, ok := manifestCoverage(b)
		if !ok || spans != nil && !slices.Equal(s, spans) {
			return nil, false
		}
		spans = s
	}
	return spans, spans != nil
}

// manifestCoverage is coverage of the manifest encoded in b.
func manifestCoverage(b []byte) ([]span, bool) {
	m, err := sinks.DecodeManifest(b)
	if err != nil {
		return nil, false
	}
	return coverage(m)
}

// spansText names spans as a note does: 00:00:00Z-13:44:12.864Z, ...
func spansText(spans []span) string {
	var parts []string
	for _, s := range spans {
		to := s.to.UTC().Format("15:04:05.999Z")
		if s.to.Equal(s.from.UTC().Truncate(24*time.Hour).AddDate(0, 0, 1)) {
			to = "24:00"
		}
		parts = append(parts, s.from.UTC().Format("15:04:05.999Z")+"-"+to)
	}
	return strings.Join(parts, ", ")
}
