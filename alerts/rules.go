package alerts

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pachca-export/pachca-export/transform"
)

// Rule kinds.
const (
	// KindThreshold fires when one actor has Threshold events of EventKeys
	// within Window.
	KindThreshold = "threshold"
	// KindWatch fires on every event of EventKeys.
	KindWatch = "watch"
)

// Config is the alerts: section of pipeline.yaml. The zero value has no rules
// and sends nothing.
type Config struct {
	Rules []Rule `yaml:"rules"`
	// Workspace is source.workspace, set by the run loop (not a key of
	// alerts:): the default messages name it, since one recipient of
	// several workspaces' alerts cannot tell them apart otherwise.
	Workspace string `yaml:"-"`
}

// Rule is one alert rule.
type Rule struct {
	// Name identifies the rule in messages and in the record of sent alerts;
	// renaming a rule makes its findings new.
	Name string `yaml:"name"`
	// Kind is KindThreshold or KindWatch.
	Kind string `yaml:"kind"`
	// EventKeys are the event_key values the rule looks at.
	EventKeys []string `yaml:"event_keys"`
	// Threshold and Window (threshold rules only): Threshold events of one
	// actor whose first and last are less than Window apart.
	Threshold int           `yaml:"threshold"`
	Window    time.Duration `yaml:"window"`
	// Recipients are Pachca user ids (digits; a YAML integer decodes too).
	Recipients []string `yaml:"recipients"`
	// Template is a text/template over a Finding; empty means the kind's
	// default (DefaultThresholdTemplate, DefaultWatchTemplate).
	Template string `yaml:"template"`
}

// Validate checks the rules without I/O: every problem, joined, each naming
// its key (rules[0].threshold: must be at least 1). Templates are parsed and
// rendered against a sample finding, so an unknown field fails here.
func (c Config) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	}
	names := map[string]int{}
	for i, r := range c.Rules {
		at := func(key string) string { return fmt.Sprintf("rules[%d].%s", i, key) }
		switch j, dup := names[r.Name]; {
		case strings.TrimSpace(r.Name) == "":
			bad(at("name"), "required")
		case dup:
			bad(at("name"), "%q is also the name of rules[%d]", r.Name, j)
		default:
			names[r.Name] = i
		}
		switch r.Kind {
		case KindThreshold:
			if r.Threshold < 1 {
				bad(at("threshold"), "must be at least 1")
			}
			if r.Window <= 0 {
				bad(at("window"), "must be above 0 (e.g. 10m)")
			}
		case KindWatch:
			if r.Threshold != 0 {
				bad(at("threshold"), "only threshold rules take a threshold")
			}
			if r.Window != 0 {
				bad(at("window"), "only threshold rules take a window")
			}
		case "":
			bad(at("kind"), "required (threshold, watch)")
		default:
			bad(at("kind"), "unknown kind %q (threshold, watch)", r.Kind)
		}
		if len(r.EventKeys) == 0 {
			bad(at("event_keys"), "required: at least one event key")
		}
		for k, key := range r.EventKeys {
			switch {
			case key == "":
				bad(at(fmt.Sprintf("event_keys[%d]", k)), "empty event key")
			case slices.Index(r.EventKeys, key) != k:
				bad(at(fmt.Sprintf("event_keys[%d]", k)), "%s is listed twice", key)
			case transform.Category(key) == transform.CategoryOther:
				// A misspelt key would make a rule that never fires.
				bad(at(fmt.Sprintf("event_keys[%d]", k)), "unknown event key %q", key)
			}
		}
		if len(r.Recipients) == 0 {
			bad(at("recipients"), "required: at least one user id")
		}
		for k, id := range r.Recipients {
			switch {
			case !isUserID(id):
				bad(at(fmt.Sprintf("recipients[%d]", k)), "%q is not a user id (a positive integer)", id)
			case slices.Index(r.Recipients, id) != k:
				bad(at(fmt.Sprintf("recipients[%d]", k)), "%s is listed twice", id)
			}
		}
		if r.Kind == KindThreshold || r.Kind == KindWatch {
			if _, err := Render(r, sampleFinding(r)); err != nil {
				bad(at("template"), "%v", err)
			}
		}
	}
	return errors.Join(errs...)
}

// isUserID accepts what POST /messages takes as a user's entity_id.
func isUserID(s string) bool {
	if s == "" || len(s) > 10 || strings.Trim(s, "0123456789") != "" {
		return false
	}
	n, err := strconv.ParseInt(s, 10, 32)
	return err == nil && n > 0
}

// sampleFinding is what Validate renders a template with.
func sampleFinding(r Rule) Finding {
	t := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	f := Finding{Rule: r.Name, Kind: r.Kind, ActorID: "12345", ActorType: "User", Count: 1,
		First: t, Last: t, EventIDs: []string{"00000000-0000-0000-0000-000000000000"}, IP: "203.0.113.54",
		EntityID: "12345", EntityType: "User", Details: "{}", Workspace: "acme"}
	if len(r.EventKeys) > 0 {
		f.EventKey = r.EventKeys[0]
	}
	if r.Kind == KindThreshold {
		f.Count = max(r.Threshold, 1)
		f.Last = t.Add(r.Window / 2)
		f.EntityID, f.EntityType, f.Details = "", "", ""
	}
	return f
}

// Finding is one thing a rule found: a burst (threshold) or one event (watch).
type Finding struct {
	Rule      string // the rule's name
	Kind      string // the rule's kind
	ActorID   string
	ActorType string
	// EventKey is the event's key (watch), or the burst's distinct keys,
	// sorted and joined with ", " (threshold).
	EventKey string
	Count    int       // events in the burst; 1 for watch
	First    time.Time // the first event's created_at, UTC
	Last     time.Time // the last event's created_at, UTC
	EventIDs []string  // the events, oldest first
	IP       string    // the last non-null ip_address, "" if none
	// EntityID, EntityType and Details (details_json) are the event's, for
	// watch findings only.
	EntityID   string
	EntityType string
	Details    string
	// Before is, in the message of a burst said again because it grew, the
	// count of its last message; 0 otherwise.
	Before int
	// Workspace is source.workspace (Config.Workspace), "" when unset.
	Workspace string
}

// Key identifies the finding in the record of sent alerts: rule, actor and
// first event for a burst, rule and event for a watch. It is the same on
// every run over the same events.
func (f Finding) Key() string {
	first := ""
	if len(f.EventIDs) > 0 {
		first = f.EventIDs[0]
	}
	if f.Kind == KindWatch {
		return f.Kind + "/" + f.Rule + "/" + first
	}
	return f.Kind + "/" + f.Rule + "/" + f.ActorType + ":" + f.ActorID + "/" + first
}

// Span is First..Last for a message: "between 2026-11-01T10:00:00Z and
// 10:04:12Z" (the date is repeated only when it changes), or "at ..." for one instant.
func (f Finding) Span() string {
	first, last := f.First.UTC(), f.Last.UTC()
	if first.Equal(last) {
		return "at " + utc(first)
	}
	end := utc(last)
	if first.Format(time.DateOnly) == last.Format(time.DateOnly) {
		end = last.Format("15:04:05Z")
	}
	return "between " + utc(first) + " and " + end
}

// utc formats t as RFC 3339 in UTC to the second.
func utc(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// event is what a rule keeps of a record.
type event struct {
	id, key              string
	at                   int64 // ms
	actorID, actorType   string
	ip                   string
	entityID, entityType string // watch rules only
	details              string // watch rules only
}

// ruleState is what one rule has observed.
type ruleState struct {
	rule   Rule
	seen   map[string]bool // event ids, so a record observed twice counts once
	events []event
}

// Engine collects the records the rules look at and evaluates the rules.
// It is not safe for concurrent use.
type Engine struct {
	rules []*ruleState
	byKey map[string][]*ruleState
}

// New returns an engine for a configuration, which it validates.
func New(cfg Config) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Engine{byKey: map[string][]*ruleState{}}
	for _, r := range cfg.Rules {
		rs := &ruleState{rule: r, seen: map[string]bool{}}
		e.rules = append(e.rules, rs)
		for _, k := range r.EventKeys {
			e.byKey[k] = append(e.byKey[k], rs)
		}
	}
	return e, nil
}

// Observe offers one delivered record to the rules, in any order. Only the
// records of a key some rule names are kept (a copy of a few fields), and
// each event id once; threshold rules skip records without an actor_id.
func (e *Engine) Observe(rec *transform.Record) {
	for _, rs := range e.byKey[rec.EventKey] {
		watch := rs.rule.Kind == KindWatch
		if rs.seen[rec.ID] || (!watch && rec.ActorID == "") {
			continue
		}
		ev := event{
			id: strings.Clone(rec.ID), key: rs.rule.EventKeys[slices.Index(rs.rule.EventKeys, rec.EventKey)],
			at: rec.CreatedAt, actorID: strings.Clone(rec.ActorID), actorType: strings.Clone(rec.ActorType),
		}
		if rec.IPAddress.Valid {
			ev.ip = strings.Clone(rec.IPAddress.Str)
		}
		if watch {
			ev.entityID, ev.entityType = strings.Clone(rec.EntityID), strings.Clone(rec.EntityType)
			ev.details = strings.Clone(rec.DetailsJSON)
		}
		rs.seen[ev.id] = true
		rs.events = append(rs.events, ev)
	}
}

// Findings evaluates every rule over everything observed so far, ordered by
// First, then rule, then Key. Records observed later, all newer than those
// before, never change the Key of a finding already returned.
func (e *Engine) Findings() []Finding {
	var out []Finding
	for _, rs := range e.rules {
		evs := slices.Clone(rs.events)
		slices.SortFunc(evs, func(a, b event) int {
			if a.at != b.at {
				return cmpInt(a.at, b.at)
			}
			return strings.Compare(a.id, b.id)
		})
		if rs.rule.Kind == KindWatch {
			for _, ev := range evs {
				out = append(out, watchFinding(rs.rule, ev))
			}
			continue
		}
		byActor := map[[2]string][]event{}
		var actors [][2]string
		for _, ev := range evs {
			a := [2]string{ev.actorType, ev.actorID}
			if _, ok := byActor[a]; !ok {
				actors = append(actors, a)
			}
			byActor[a] = append(byActor[a], ev)
		}
		for _, a := range actors {
			for _, b := range bursts(byActor[a], rs.rule.Threshold, rs.rule.Window) {
				out = append(out, burstFinding(rs.rule, b))
			}
		}
	}
	slices.SortStableFunc(out, func(a, b Finding) int {
		if c := a.First.Compare(b.First); c != 0 {
			return c
		}
		if c := strings.Compare(a.Rule, b.Rule); c != 0 {
			return c
		}
		return strings.Compare(a.Key(), b.Key())
	})
	return out
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// bursts finds the bursts in one actor's events, sorted by time. A run of n
// consecutive events is full when its last event is less than window after
// its first. A burst is a maximal chain of full runs, each sharing at least
// one event with the one before; it covers the events of all its runs. So
// n events exactly window apart are not a burst, and two full runs with no
// event in common are two bursts.
func bursts(evs []event, n int, window time.Duration) [][]event {
	w := window.Milliseconds()
	var out [][]event
	start, end := -1, -1 // the current burst: evs[start:end]
	for i := 0; i+n <= len(evs); i++ {
		if evs[i+n-1].at-evs[i].at >= w {
			continue
		}
		if start >= 0 && i < end {
			end = i + n // overlaps the current burst: extend it
			continue
		}
		if start >= 0 {
			out = append(out, evs[start:end])
		}
		start, end = i, i+n
	}
	if start >= 0 {
		out = append(out, evs[start:end])
	}
	return out
}

func burstFinding(r Rule, evs []event) Finding {
	f := Finding{
		Rule: r.Name, Kind: r.Kind, ActorID: evs[0].actorID, ActorType: evs[0].actorType, Count: len(evs),
		First: time.UnixMilli(evs[0].at).UTC(), Last: time.UnixMilli(evs[len(evs)-1].at).UTC(),
	}
	var keys []string
	for _, ev := range evs {
		f.EventIDs = append(f.EventIDs, ev.id)
		if !slices.Contains(keys, ev.key) {
			keys = append(keys, ev.key)
		}
		if ev.ip != "" {
			f.IP = ev.ip
		}
	}
	slices.Sort(keys)
	f.EventKey = strings.Join(keys, ", ")
	return f
}

func watchFinding(r Rule, ev event) Finding {
	t := time.UnixMilli(ev.at).UTC()
	return Finding{
		Rule: r.Name, Kind: r.Kind, ActorID: ev.actorID, ActorType: ev.actorType, EventKey: ev.key, Count: 1,
		First: t, Last: t, EventIDs: []string{ev.id}, IP: ev.ip,
		EntityID: ev.entityID, EntityType: ev.entityType, Details: ev.details,
	}
}
