// Package report writes the security digest of a period as one offline
// HTML page, from what the exporter's file or S3 sinks hold: it plans the
// period and the previous one from the day manifests (package reader),
// streams their rows into two digests (package digest) day by day, and
// renders the page (package page).
package report

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/pachca-export/pachca-export/alerts"
	"github.com/pachca-export/pachca-export/report/digest"
	"github.com/pachca-export/pachca-export/report/page"
	"github.com/pachca-export/pachca-export/report/reader"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/transform"
)

// DefaultRule is the burst rule used without a configuration (or with one
// that has no threshold rule): 5 failed 2FA of one actor within 10 minutes,
// the example of the README's alerts section. Its recipient is never
// messaged: the report only shows what the rule would flag.
func DefaultRule() alerts.Rule {
	return alerts.Rule{Name: "default: 5 user_2fa_fail in 10m", Kind: alerts.KindThreshold,
		EventKeys: []string{digest.Fail2FAKey}, Threshold: 5, Window: 10 * time.Minute, Recipients: []string{"1"}}
}

// Options describe one report.
type Options struct {
	// Store is the root of a file or S3 sink (its Root, or
	// filesink.ReadOnly of a directory). The report only reads it.
	Store sinks.Store
	// TempDir is where Parquet objects of a remote store are copied to be
	// read ("" for the system's); each copy is removed once read.
	TempDir  string
	From, To time.Time
	// Location is the zone of the page's days, hours and times (nil for
	// UTC). The output's files stay UTC days: the period's first and last
	// zone days are read from the parts of the UTC days they overlap.
	Location *time.Location
	// Rules are the alert rules of the configuration; without a threshold
	// rule among them, DefaultRule finds the bursts.
	Rules []alerts.Rule
	// RulesFrom names where Rules come from, for the page ("pipeline.yaml").
	RulesFrom string
	Version   string
	Now       func() time.Time // default time.Now
	// Digest overrides the digest's limits (top lists, rows per group);
	// From, To and Rules are set by Write.
	Digest digest.Options
}

// Stats says what a report read.
type Stats struct {
	Files         int
	Events        int64 // events of the period
	PreviousFiles int   // 0 when the previous period is not in the output
	Previous      bool
}

// Write reads the period [o.From, o.To) and, when the output holds all of
// it, the previous period of the same length, and writes the page to w.
// A period the output does not cover, or no output at all, is a
// *reader.InputError naming what is missing; a damaged file is a
// *reader.DamagedError naming it. Nothing is written to w before the data
// has been read.
func Write(ctx context.Context, o Options, w io.Writer) (Stats, error) {
	var st Stats
	if !o.From.Before(o.To) {
		return st, fmt.Errorf("report: empty period %s .. %s", o.From.Format(time.RFC3339), o.To.Format(time.RFC3339))
	}
	cur, err := reader.NewPlan(ctx, o.Store, o.From, o.To)
	if err != nil {
		return st, err
	}
	if !cur.Complete() {
		return st, reader.NotCovered(o.Store, cur)
	}
	prevFrom := previousFrom(o.From, o.To, o.Location)
	prev, err := reader.NewPlan(ctx, o.Store, prevFrom, o.From)
	if err != nil {
		return st, err
	}
	rules, rulesNote, watchNote := chooseRules(o)
	d := &page.Data{Title: "Pachca security digest", Source: o.Store.Location(""), Version: o.Version,
		RulesNote: rulesNote, WatchNote: watchNote, PreviousFrom: prevFrom.UTC(), PreviousTo: o.From.UTC(),
		LeftOut: leftOut(cur.Identity)}
	if cur.Identity != nil {
		d.Workspace = cur.Identity.Workspace
	}
	if prev.Complete() {
		s, err := digestPlan(ctx, o, prev, rules)
		if err != nil {
			return st, err
		}
		d.Previous = s
		st.Previous, st.PreviousFiles = true, len(prev.Parts)
	} else {
		d.PreviousMissing = reader.DescribeGaps(prev.Missing)
	}
	s, err := digestPlan(ctx, o, cur, rules)
	if err != nil {
		return st, err
	}
	d.Current, d.Files = s, len(cur.Parts)
	d.Unsealed = cur.Unsealed
	d.NotExported = notExported(cur.Identity, s.Sensitive)
	if d.Previous != nil {
		d.Deltas = digest.Compare(d.Current, d.Previous)
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	d.Generated = now().UTC()
	st.Files, st.Events = len(cur.Parts), s.Events
	return st, page.Render(w, d)
}

// leftOut describes what the output's configuration keeps out of it, one
// line each, so that the page does not pass a count of 0 for a fact.
func leftOut(id *sinks.Identity) []string {
	if id == nil {
		return nil
	}
	var out []string
	if len(id.EventKeys) > 0 {
		out = append(out, "every event key but "+strings.Join(id.EventKeys, ", ")+" (source.filters.event_keys)")
	}
	for _, f := range []struct{ name, value string }{
		{"actor_id", id.ActorID}, {"actor_type", id.ActorType}, {"entity_id", id.EntityID}, {"entity_type", id.EntityType},
	} {
		if f.value != "" {
			out = append(out, fmt.Sprintf("every event whose %s is not %s (source.filters.%s)", f.name, f.value, f.name))
		}
	}
	if len(id.DropEventKeys) > 0 {
		out = append(out, strings.Join(id.DropEventKeys, ", ")+" (transform.drop_event_keys)")
	}
	if id.DropOwnReads {
		out = append(out, "the exporter's own reads of the log, audit_events_accessed under its reader id; everyone else's are in (transform.drop_own_reads)")
	}
	return out
}

// notExported names the measures of the page (the failed 2FA ones, the
// sensitive groups by title) none of whose keys the output holds: their
// count is not 0 but unknown.
func notExported(id *sinks.Identity, groups []digest.Group) map[string]bool {
	if id == nil {
		return nil
	}
	kept := func(key string) bool {
		return !slices.Contains(id.DropEventKeys, key) && (len(id.EventKeys) == 0 || slices.Contains(id.EventKeys, key))
	}
	unknownKept := len(id.EventKeys) == 0 || slices.ContainsFunc(id.EventKeys, func(k string) bool {
		return transform.Category(k) == transform.CategoryOther && kept(k)
	})
	out := map[string]bool{}
	if !kept(digest.Fail2FAKey) {
		out[digest.MetricFail2FA], out[digest.MetricFail2FAActors] = true, true
	}
	for _, g := range groups {
		if g.Title == digest.UnknownGroup && !unknownKept || g.Title != digest.UnknownGroup && !slices.ContainsFunc(g.Keys, kept) {
			out[g.Title] = true
		}
	}
	return out
}

// chooseRules returns the threshold and watch rules the digest uses and
// the notes that describe them on the page.
func chooseRules(o Options) (rules []alerts.Rule, rulesNote, watchNote string) {
	var th, watch []string
	for _, r := range o.Rules {
		switch r.Kind {
		case alerts.KindThreshold:
			th = append(th, fmt.Sprintf("%s (%d of %s per actor within %s)", r.Name, r.Threshold, strings.Join(r.EventKeys, ", "), r.Window))
		case alerts.KindWatch:
			watch = append(watch, fmt.Sprintf("the keys of watch rule %s", r.Name))
		}
		rules = append(rules, r)
	}
	if len(th) == 0 {
		def := DefaultRule()
		rules = append(rules, def)
		rulesNote = fmt.Sprintf("%d %s per actor within %s (the default rule", def.Threshold, def.EventKeys[0], def.Window)
		if o.RulesFrom != "" {
			rulesNote += "; " + o.RulesFrom + " has no threshold rule"
		}
		rulesNote += ")."
	} else {
		rulesNote = "from " + o.RulesFrom + ": " + strings.Join(th, "; ") + "."
	}
	return rules, rulesNote, strings.Join(watch, ", ")
}

// digestPlan reads the parts of p, day by day, into a digest of p's period.
func digestPlan(ctx context.Context, o Options, p *reader.Plan, rules []alerts.Rule) (*digest.Summary, error) {
	do := o.Digest
	do.From, do.To, do.Rules, do.Location = p.From, p.To, rules, o.Location
	b, err := digest.New(do)
	if err != nil {
		return nil, err
	}
	rd := reader.NewReader(o.TempDir)
	for i := 0; i < len(p.Parts); {
		// A stop (SIGINT, SIGTERM) reads no day after it: the NDJSON
		// reader looks at the context every 4,096 lines, never in a day of
		// fewer (was: 88 such days read to the end after a SIGTERM, and
		// the page written, exit status 0).
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		j := i + 1
		for j < len(p.Parts) && p.Parts[j].Day == p.Parts[i].Day {
			j++
		}
		if i > 0 {
			b.Advance(dayEnd(p.Parts[i-1].Day))
		}
		if err := digestDay(ctx, o, rd, b, p.Parts[i:j]); err != nil {
			return nil, err
		}
		i = j
	}
	return b.Finish(), nil
}

// digestDay reads the parts of one day into b. Where a follow cycle file
// overlaps a run's file of the day, it holds the events of the overlap
// again, beside late ones only it has: an id read there from the run's
// file, which comes first, counts once.
func digestDay(ctx context.Context, o Options, rd *reader.Reader, b *digest.Builder, parts []reader.Part) error {
	overlaps := reader.Overlaps(parts)
	in := func(ms int64) bool {
		return slices.ContainsFunc(overlaps, func(s [2]int64) bool { return s[0] <= ms && ms < s[1] })
	}
	seen := map[string]bool{}
	var kept []reader.Row
	for _, part := range parts {
		if err := rd.Read(ctx, o.Store, part, func(rows []reader.Row) error {
			if len(overlaps) == 0 {
				b.Add(rows)
				return nil
			}
			kept = kept[:0]
			for _, r := range rows {
				switch {
				case !in(r.CreatedAt):
				case !part.File.Part:
					seen[strings.Clone(r.ID)] = true
				case seen[r.ID]:
					continue
				}
				kept = append(kept, r)
			}
			b.Add(kept)
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

// previousFrom is the start of the period before [from, to): as many days
// before from when both are midnights of loc (7 days of a week that held
// the 23-hour day of a change to summer time are 7 days, not 167 hours),
// else as long.
func previousFrom(from, to time.Time, loc *time.Location) time.Time {
	if loc == nil {
		loc = time.UTC
	}
	f, t := from.In(loc), to.In(loc)
	if midnight(f) && midnight(t) {
		days := 0
		for d := f; d.Before(t); d = d.AddDate(0, 0, 1) {
			days++
		}
		return f.AddDate(0, 0, -days)
	}
	return from.Add(-to.Sub(from))
}

// midnight reports whether t is 00:00 of its day on its zone's clock.
func midnight(t time.Time) bool {
	return t.Hour() == 0 && t.Minute() == 0 && t.Second() == 0 && t.Nanosecond() == 0
}

// dayEnd is the start of the day after date (YYYY-MM-DD).
func dayEnd(date string) time.Time {
	t, _ := time.Parse(time.DateOnly, date)
	return t.Add(24 * time.Hour)
}
