package digest

import (
	"cmp"
	"container/heap"
	"slices"
	"strings"
	"time"

	"github.com/valyala/fastjson"

	"github.com/pachca-export/pachca-export/alerts"
	"github.com/pachca-export/pachca-export/report/reader"
	"github.com/pachca-export/pachca-export/transform"
)

// groupDef is a kind of rare or sensitive change the report lists.
type groupDef struct {
	Title string
	Keys  []string // nil for the group of unknown keys
}

// UnknownGroup is the title of the group of event keys schema v1 does not know.
const UnknownGroup = "Event keys schema v1 does not know (category other)"

// sensitiveGroups returns the fixed groups, one group per watch rule for the
// keys no fixed group has, then the group of unknown keys (always last).
func sensitiveGroups(rules []alerts.Rule) []groupDef {
	defs := []groupDef{
		{"Role changes", []string{"user_role_changed"}},
		{"API tokens created, changed or destroyed", []string{"access_token_created", "access_token_updated", "access_token_destroy"}},
		{"Bot changes", []string{"bot_scopes_updated", "bot_webhook_settings_updated", "bot_token_recreated", "bot_deleted", "bot_oauth_client_updated"}},
		{"DLP violations", []string{"dlp_violation_detected"}},
		{"KMS use", []string{"kms_encrypt", "kms_decrypt"}},
		{"Audit log reads", []string{"audit_events_accessed"}},
	}
	listed := map[string]bool{}
	for _, d := range defs {
		for _, k := range d.Keys {
			listed[k] = true
		}
	}
	for _, r := range rules {
		if r.Kind != alerts.KindWatch {
			continue
		}
		var keys []string
		for _, k := range r.EventKeys {
			if !listed[k] {
				keys = append(keys, k)
				listed[k] = true
			}
		}
		if len(keys) > 0 {
			defs = append(defs, groupDef{"Watched by alert rule " + r.Name, keys})
		}
	}
	return append(defs, groupDef{Title: UnknownGroup})
}

// group counts one kind of change and keeps its latest rows.
type group struct {
	def    groupDef
	count  int64
	keys   map[string]*int64 // pointers: see count
	actors *topK
	latest changeHeap
	rows   int
}

func newGroup(d groupDef, rows, capacity int) *group {
	return &group{def: d, keys: map[string]*int64{}, actors: newTopK(capacity), rows: rows}
}

// add counts r; actor is its appendActor key.
func (g *group) add(r *reader.Row, actor []byte) {
	g.count++
	count(g.keys, r.EventKey)
	g.actors.addBytes(actor)
	if len(g.latest) == g.rows && !newer(r.CreatedAt, r.ID, g.latest[0]) {
		return
	}
	c := Change{At: time.UnixMilli(r.CreatedAt).UTC(), ms: r.CreatedAt, ID: strings.Clone(r.ID),
		Key: strings.Clone(r.EventKey), ActorType: strings.Clone(r.ActorType), ActorID: strings.Clone(r.ActorID),
		EntityType: strings.Clone(r.EntityType), EntityID: strings.Clone(r.EntityID),
		Details: strings.Clone(r.DetailsJSON)}
	if r.IPAddress.Valid {
		c.IP = strings.Clone(r.IPAddress.Str)
	}
	if len(g.latest) < g.rows {
		heap.Push(&g.latest, c)
		return
	}
	g.latest[0] = c
	heap.Fix(&g.latest, 0)
}

// newer orders changes by time, then id.
func newer(ms int64, id string, than Change) bool {
	if ms != than.ms {
		return ms > than.ms
	}
	return id > than.ID
}

// Group is one kind of sensitive change over the period.
type Group struct {
	Title string
	Keys  []string // the event keys of the group; for UnknownGroup, those seen
	Count int64
	// KeyCounts are per event key, most frequent first.
	KeyCounts []KeyCount
	// TopActors are the actors with most changes of the group.
	TopActors []Actor
	// Latest are the most recent changes, newest first (at most
	// Options.RowsPerGroup).
	Latest []Change
}

// Change is one event of a sensitive group.
type Change struct {
	At                   time.Time
	ms                   int64
	ID                   string
	Key                  string
	ActorType, ActorID   string
	EntityType, EntityID string
	IP                   string // "" when null
	// What is a short reading of the details (roles, scopes, rule, reason);
	// Details is details_json as exported.
	What    string
	Details string
}

func (g *group) finish(topN int) Group {
	out := Group{Title: g.def.Title, Keys: g.def.Keys, Count: g.count}
	for k, n := range g.keys {
		out.KeyCounts = append(out.KeyCounts, KeyCount{Key: k, Category: transform.Category(k), Count: *n,
			Known: transform.Category(k) != transform.CategoryOther})
		if g.def.Keys == nil {
			out.Keys = append(out.Keys, k)
		}
	}
	slices.Sort(out.Keys)
	slices.SortFunc(out.KeyCounts, func(a, b KeyCount) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	for _, t := range g.actors.top(topN) {
		typ, id := splitActor(t.Key)
		out.TopActors = append(out.TopActors, Actor{Type: typ, ID: id, Count: t.Count, Err: t.Err})
	}
	out.Latest = slices.Clone(g.latest)
	slices.SortFunc(out.Latest, func(a, b Change) int {
		if a.ms != b.ms {
			return cmp.Compare(b.ms, a.ms)
		}
		return strings.Compare(b.ID, a.ID)
	})
	var p fastjson.Parser
	for i := range out.Latest {
		out.Latest[i].What = what(&p, out.Latest[i].Key, out.Latest[i].Details)
	}
	return out
}

// what reads the details fields that say what changed.
func what(p *fastjson.Parser, key, details string) string {
	v, err := p.Parse(details)
	if err != nil {
		return ""
	}
	str := func(name string) string {
		f := v.Get(name)
		if f == nil || f.Type() == fastjson.TypeNull {
			return "" // absent, or null: nothing to show, not the word null
		}
		if b, err := f.StringBytes(); err == nil {
			return string(b)
		}
		return string(f.MarshalTo(nil))
	}
	list := func(name string) string {
		var out []string
		for _, e := range v.GetArray(name) {
			if b, err := e.StringBytes(); err == nil {
				out = append(out, string(b))
			}
		}
		return strings.Join(out, ", ")
	}
	// labelled is "" for an absent value: no label of nothing.
	labelled := func(label, value string) string {
		if value == "" {
			return ""
		}
		return label + value
	}
	join := func(parts ...string) string {
		return strings.Join(slices.DeleteFunc(parts, func(s string) bool { return s == "" }), "; ")
	}
	switch key {
	case "user_role_changed":
		if prev, next := str("previous_company_role"), str("new_company_role"); prev != "" || next != "" {
			return prev + " → " + next
		}
	case "access_token_created", "access_token_updated", "access_token_destroy":
		return labelled("scopes: ", list("scopes"))
	case "bot_scopes_updated":
		return join(labelled("bot ", str("bot_id")), labelled("added: ", list("added_scopes")), labelled("removed: ", list("removed_scopes")))
	case "bot_token_recreated", "bot_deleted":
		return labelled("bot ", str("bot_id"))
	case "bot_webhook_settings_updated", "bot_oauth_client_updated":
		return join(labelled("bot ", str("bot_id")), labelled("changes: ", str("changes")))
	case "dlp_violation_detected":
		return join(str("dlp_rule_name"), str("action_message"))
	case "kms_encrypt", "kms_decrypt":
		return labelled("reason: ", str("reason"))
	}
	return ""
}

// changeHeap is a min-heap of changes by time, then id: the oldest of the
// kept ones is at the top, to be replaced by a newer one.
type changeHeap []Change

func (h changeHeap) Len() int { return len(h) }
func (h changeHeap) Less(i, j int) bool {
	return newer(h[j].ms, h[j].ID, h[i])
}
func (h changeHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *changeHeap) Push(x any)   { *h = append(*h, x.(Change)) }
func (h *changeHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	*h = old[:len(old)-1]
	return c
}
