// Package digest aggregates the rows of a period into what the report shows:
// events per day and category, failed 2FA by hour and actor with the bursts
// the alert rules flag, top actors and IP addresses, the sensitive changes,
// and every event key seen (unknown ones included). It does no I/O; memory
// is bounded by the number of actors, the top-list capacities and the rows
// kept per sensitive group, never by the number of events.
package digest

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pachca-export/pachca-export/alerts"
	"github.com/pachca-export/pachca-export/report/reader"
	"github.com/pachca-export/pachca-export/transform"
)

// Options configure a Builder.
type Options struct {
	// From and To bound the period, [From, To); rows outside are ignored.
	From, To time.Time
	// Location is the zone whose days and hours the digest counts by
	// (nil for UTC): a SOC in Moscow reads a burst at 02:00-05:00 its
	// time as one night, not split over two UTC days.
	Location *time.Location
	// Rules are alert rules: threshold rules find bursts; the event keys of
	// watch rules are listed among the sensitive changes.
	Rules []alerts.Rule
	// TopN is the length of the top lists (default 15).
	TopN int
	// RowsPerGroup is how many of the latest events each sensitive group
	// lists (default 50); the counts cover all of them.
	RowsPerGroup int
	// TopCapacity bounds the counters of the actor top list (default
	// 50,000) and IPCapacity those of the address top list (default
	// 10,000): beyond them, counts may be over by a stated error.
	TopCapacity int
	IPCapacity  int
}

// groupActors bounds the actor counters of each sensitive group, which
// shows its three most active actors.
const groupActors = 1000

// Fail2FAKey is the event key of failed second-factor checks.
const Fail2FAKey = "user_2fa_fail"

// failSeries is how many actors get their own series in the failed-2FA chart.
const failSeries = 8

// Builder accumulates rows. It is not safe for concurrent use.
type Builder struct {
	o          Options
	from, to   int64
	categories map[string]int
	catNames   []string
	days       map[int64][]int64 // day start (ms) -> count per category index
	keys       map[string]*keyInfo
	loc        *time.Location
	lastDay    int64
	lastDayEnd int64   // the start of the day after lastDay, ms
	dayCounts  []int64 // b.days[lastDay]
	actorBuf   []byte
	events     int64
	noIP       int64
	actors     *topK
	ips        *topK
	fails      fails
	bursts     *burstFinder
	groups     []*group
	byKey      map[string][]*group
}

// New returns a Builder for o, with o's defaults applied and its rules
// validated by package alerts.
func New(o Options) (*Builder, error) {
	if o.TopN <= 0 {
		o.TopN = 15
	}
	if o.RowsPerGroup <= 0 {
		o.RowsPerGroup = 50
	}
	if o.TopCapacity <= 0 {
		o.TopCapacity = 50_000
	}
	if o.IPCapacity <= 0 {
		o.IPCapacity = 10_000
	}
	if !o.From.Before(o.To) {
		return nil, fmt.Errorf("digest: empty period %s .. %s", o.From, o.To)
	}
	if o.Location == nil {
		o.Location = time.UTC
	}
	bf, err := newBurstFinder(o.Rules)
	if err != nil {
		return nil, err
	}
	b := &Builder{
		o: o, from: o.From.UnixMilli(), to: o.To.UnixMilli(), loc: o.Location,
		categories: map[string]int{}, days: map[int64][]int64{}, keys: map[string]*keyInfo{},
		actors: newTopK(o.TopCapacity), ips: newTopK(o.IPCapacity),
		fails: newFails(o.From, o.Location), bursts: bf, byKey: map[string][]*group{},
	}
	for _, c := range Categories() {
		b.category(c)
	}
	for _, g := range sensitiveGroups(o.Rules) {
		gr := newGroup(g, o.RowsPerGroup, groupActors)
		b.groups = append(b.groups, gr)
		for _, k := range g.Keys {
			b.byKey[k] = append(b.byKey[k], gr)
		}
	}
	return b, nil
}

// Categories returns the event categories of schema v1 in the order of the
// event keys of the API, then "other".
func Categories() []string {
	var out []string
	for _, k := range transform.EventKeys() {
		if c := transform.Category(k); !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return append(out, transform.CategoryOther)
}

func (b *Builder) category(name string) int {
	if i, ok := b.categories[name]; ok {
		return i
	}
	name = strings.Clone(name)
	b.categories[name] = len(b.catNames)
	b.catNames = append(b.catNames, name)
	return len(b.catNames) - 1
}

// keyInfo is what the builder knows of one event key: its count, and where
// its rows go. One map lookup per row finds it.
type keyInfo struct {
	key    string
	count  int64
	cat    string // the category rows of this key had so far
	catIdx int
	fail   bool
	groups []*group
	rules  []*ruleQueue
}

func (b *Builder) info(r *reader.Row) *keyInfo {
	if ki, ok := b.keys[r.EventKey]; ok {
		return ki
	}
	ki := &keyInfo{key: strings.Clone(r.EventKey), fail: r.EventKey == Fail2FAKey, catIdx: -1}
	ki.groups = b.byKey[ki.key]
	if len(ki.groups) == 0 && (r.EventCategory == transform.CategoryOther ||
		(r.EventCategory == "" && transform.Category(ki.key) == transform.CategoryOther)) {
		ki.groups = []*group{b.groups[len(b.groups)-1]} // the group of unknown keys is last
	}
	ki.rules = b.bursts.rulesFor(ki.key)
	b.keys[ki.key] = ki
	return ki
}

// Add counts rows; rows outside the period are skipped. Rows may come in
// any order within a day, but every row of a day before any of the next
// (see Advance).
func (b *Builder) Add(rows []reader.Row) {
	for i := range rows {
		r := &rows[i]
		if r.CreatedAt < b.from || r.CreatedAt >= b.to {
			continue
		}
		b.events++
		ki := b.info(r)
		ki.count++
		if ki.catIdx < 0 || r.EventCategory != ki.cat {
			cat := r.EventCategory
			if cat == "" {
				cat = transform.Category(r.EventKey)
			}
			ki.catIdx = b.category(cat)
			ki.cat = b.catNames[ki.catIdx]
		}
		if r.CreatedAt < b.lastDay || r.CreatedAt >= b.lastDayEnd || b.dayCounts == nil {
			day, end := dayOf(r.CreatedAt, b.loc)
			b.lastDay, b.lastDayEnd, b.dayCounts = day.UnixMilli(), end.UnixMilli(), b.days[day.UnixMilli()]
		}
		if len(b.dayCounts) <= ki.catIdx {
			b.dayCounts = append(b.dayCounts, make([]int64, len(b.catNames)-len(b.dayCounts))...)
			b.days[b.lastDay] = b.dayCounts
		}
		b.dayCounts[ki.catIdx]++
		b.actorBuf = appendActor(b.actorBuf[:0], r.ActorType, r.ActorID)
		b.actors.addBytes(b.actorBuf)
		if r.IPAddress.Valid {
			b.ips.add(r.IPAddress.Str)
		} else {
			b.noIP++
		}
		if ki.fail {
			b.fails.add(r)
		}
		if len(ki.rules) > 0 {
			b.bursts.add(r, ki.key, ki.rules)
		}
		for _, g := range ki.groups {
			g.add(r, b.actorBuf)
		}
	}
}

// Advance tells the builder that every row older than t has been added, so
// that the burst search can let go of older events. Call it after each day.
func (b *Builder) Advance(t time.Time) { b.bursts.advance(t.UnixMilli()) }

const (
	dayMs  = 24 * 60 * 60 * 1000 // a UTC day
	hourMs = 60 * 60 * 1000
)

// dayOf returns the start of the day of loc that ms lies in, and of the
// next: with daylight saving time a day lasts 23 or 25 hours, so the
// next day starts at its midnight by the calendar, never 24 h later.
func dayOf(ms int64, loc *time.Location) (start, next time.Time) {
	t := time.UnixMilli(ms).In(loc)
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, loc), time.Date(y, m, d+1, 0, 0, 0, 0, loc)
}

// mod is the non-negative remainder, for times before 1970.
func mod(a, m int64) int64 {
	r := a % m
	if r < 0 {
		r += m
	}
	return r
}

// count adds one to m[key], copying key when it is new. The counters are
// pointers because assigning to an existing string key of a map replaces
// the key, and rows' strings are not ours to keep.
func count(m map[string]*int64, key string) {
	if n, ok := m[key]; ok {
		*n++
		return
	}
	n := int64(1)
	m[strings.Clone(key)] = &n
}

// appendActor joins type and id into dst; splitActor undoes it.
func appendActor(dst []byte, typ, id string) []byte {
	dst = append(dst, typ...)
	dst = append(dst, 0)
	return append(dst, id...)
}

func splitActor(k string) (typ, id string) {
	typ, id, _ = strings.Cut(k, "\x00")
	return typ, id
}

// Summary is the digest of one period.
type Summary struct {
	From, To time.Time
	// Location is the zone of Days, of Fail2FA.Hours and of every time
	// the page prints.
	Location *time.Location
	Events   int64
	// Categories name the columns of DayCount.Counts: schema v1's in order,
	// then any other category found in the data.
	Categories []string
	// Days has one entry per day of the period in Location, days without
	// events too.
	Days []DayCount
	// Keys counts every event key seen, most frequent first.
	Keys []KeyCount
	// CategoryTotals are per Categories.
	CategoryTotals []int64
	// TopActors and TopIPs are the most frequent actors ("type\x00id"
	// split into Actor) and IP addresses.
	TopActors      []Actor
	TopIPs         []Top
	TopActorsTied  int // actors not listed with as many events as the last listed
	TopIPsTied     int // addresses not listed with as many events as the last listed
	Actors, IPs    Distinct
	NoIP           int64 // events without an IP address (server-side)
	Fail2FA        Fail2FA
	Bursts         []alerts.Finding
	BurstRules     []alerts.Rule
	Sensitive      []Group
	SensitiveTotal int64
}

// DayCount is the events of one day by category.
type DayCount struct {
	Day    time.Time
	Counts []int64
	Total  int64
}

// KeyCount is one event key's count; Known is false for keys schema v1
// does not know (category other).
type KeyCount struct {
	Key      string
	Category string
	Count    int64
	Known    bool
}

// Actor is a counted actor.
type Actor struct {
	Type, ID string
	Count    int64
	Err      int64
}

// Finish returns the summary. The builder must not be used afterwards.
func (b *Builder) Finish() *Summary {
	s := &Summary{From: b.o.From.UTC(), To: b.o.To.UTC(), Location: b.loc, Events: b.events, Categories: b.catNames,
		Actors: b.actors.distinct(), IPs: b.ips.distinct(), NoIP: b.noIP}
	s.CategoryTotals = make([]int64, len(b.catNames))
	for day, next := dayOf(b.from, b.loc); day.UnixMilli() < b.to; day, next = dayOf(next.UnixMilli(), b.loc) {
		dc := DayCount{Day: day, Counts: make([]int64, len(b.catNames))}
		copy(dc.Counts, b.days[day.UnixMilli()])
		for i, n := range dc.Counts {
			dc.Total += n
			s.CategoryTotals[i] += n
		}
		s.Days = append(s.Days, dc)
	}
	for k, ki := range b.keys {
		if ki.count == 0 {
			continue
		}
		c := transform.Category(k)
		if ki.cat != "" {
			c = ki.cat
		}
		s.Keys = append(s.Keys, KeyCount{Key: k, Category: c, Count: ki.count, Known: transform.Category(k) != transform.CategoryOther})
	}
	slices.SortFunc(s.Keys, func(a, b KeyCount) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	actors := b.actors.top(b.o.TopN)
	for _, t := range actors {
		typ, id := splitActor(t.Key)
		s.TopActors = append(s.TopActors, Actor{Type: typ, ID: id, Count: t.Count, Err: t.Err})
	}
	s.TopActorsTied = b.actors.tied(actors)
	s.TopIPs = b.ips.top(b.o.TopN)
	s.TopIPsTied = b.ips.tied(s.TopIPs)
	s.Bursts = b.bursts.findings()
	for _, r := range b.o.Rules {
		if r.Kind == alerts.KindThreshold {
			s.BurstRules = append(s.BurstRules, r)
		}
	}
	s.Fail2FA = b.fails.finish(b.o.To, s.Bursts, b.o.TopN)
	for _, g := range b.groups {
		gs := g.finish(b.o.TopN)
		s.Sensitive = append(s.Sensitive, gs)
		s.SensitiveTotal += gs.Count
	}
	return s
}
