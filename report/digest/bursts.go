package digest

import (
	"cmp"
	"math"
	"slices"
	"strings"

	"github.com/pachca-export/pachca-export/alerts"
	"github.com/pachca-export/pachca-export/report/reader"
	"github.com/pachca-export/pachca-export/transform"
)

// burstFinder finds what the threshold rules of package alerts would flag
// over a period, in memory bounded by the rules' windows rather than by the
// period. The alerts engine keeps every event of a rule's keys; here, events
// wait in a per-actor queue only until the rows read cover their window,
// and only those that belong to a full run (threshold events of one actor
// less than window apart) are passed on to the engine. A burst is a chain of
// full runs, so the engine finds the same bursts from those events as from
// all of them (see TestBurstsMatchTheEngine).
type burstFinder struct {
	engine *alerts.Engine
	rules  []*ruleQueue
	rec    transform.Record // reused for Observe
}

type ruleQueue struct {
	keys   map[string]bool
	n      int
	window int64 // ms
	// pending holds the queue of each actor. Values are pointers so that
	// a row's strings (not copies) never become map keys: assigning to an
	// existing string key replaces the key.
	pending map[actor]*[]candidate
}

type actor struct{ typ, id string }

// candidate is an event of a rule's keys, waiting to be decided.
type candidate struct {
	at      int64
	id, key string
	ip      transform.NullString
	marked  bool // part of a full run
}

// newBurstFinder takes the threshold rules of rules; others are ignored.
func newBurstFinder(rules []alerts.Rule) (*burstFinder, error) {
	var th []alerts.Rule
	for _, r := range rules {
		if r.Kind == alerts.KindThreshold {
			th = append(th, r)
		}
	}
	engine, err := alerts.New(alerts.Config{Rules: th})
	if err != nil {
		return nil, err
	}
	b := &burstFinder{engine: engine}
	for _, r := range th {
		q := &ruleQueue{keys: map[string]bool{}, n: r.Threshold, window: r.Window.Milliseconds(), pending: map[actor]*[]candidate{}}
		for _, k := range r.EventKeys {
			q.keys[k] = true
		}
		b.rules = append(b.rules, q)
	}
	return b, nil
}

// rulesFor returns the rules that look at key.
func (b *burstFinder) rulesFor(key string) []*ruleQueue {
	var out []*ruleQueue
	for _, q := range b.rules {
		if q.keys[key] {
			out = append(out, q)
		}
	}
	return out
}

// add queues r for rules, those of rulesFor(r.EventKey). As in the engine,
// events without an actor_id never count.
func (b *burstFinder) add(r *reader.Row, rules []*ruleQueue) {
	if r.ActorID == "" {
		return
	}
	for _, q := range rules {
		list, ok := q.pending[actor{r.ActorType, r.ActorID}]
		if !ok {
			list = new([]candidate)
			q.pending[actor{strings.Clone(r.ActorType), strings.Clone(r.ActorID)}] = list
		}
		ip := r.IPAddress
		ip.Str = strings.Clone(ip.Str)
		*list = append(*list, candidate{at: r.CreatedAt, id: strings.Clone(r.ID), key: strings.Clone(r.EventKey), ip: ip})
	}
}

// advance is called once every row older than t has been added. An event
// at or before t-window is decided: every run it can belong to lies before
// t, so it was marked now if ever. Decided events are passed on if marked,
// and dropped either way: a run shared with an undecided event would also
// lie before t and has been marked now.
func (b *burstFinder) advance(t int64) {
	for _, q := range b.rules {
		for a, lp := range q.pending {
			list := *lp
			slices.SortFunc(list, func(x, y candidate) int {
				if c := cmp.Compare(x.at, y.at); c != 0 {
					return c
				}
				return strings.Compare(x.id, y.id)
			})
			for i := 0; i+q.n <= len(list); i++ {
				if list[i+q.n-1].at-list[i].at < q.window {
					for j := i; j < i+q.n; j++ {
						list[j].marked = true
					}
				}
			}
			keep := list[:0]
			for _, c := range list {
				switch {
				case c.at > sub(t, q.window):
					keep = append(keep, c)
				case c.marked:
					b.observe(a, &c)
				}
			}
			clear(list[len(keep):])
			if len(keep) == 0 {
				delete(q.pending, a)
			} else {
				*lp = keep
			}
		}
	}
}

// sub is t-d without overflow below math.MinInt64.
func sub(t, d int64) int64 {
	if t < math.MinInt64+d {
		return math.MinInt64
	}
	return t - d
}

func (b *burstFinder) observe(a actor, c *candidate) {
	b.rec.ID, b.rec.CreatedAt, b.rec.EventKey = c.id, c.at, c.key
	b.rec.ActorID, b.rec.ActorType, b.rec.IPAddress = a.id, a.typ, c.ip
	b.engine.Observe(&b.rec)
}

// findings decides every queued event and returns the engine's findings.
func (b *burstFinder) findings() []alerts.Finding {
	b.advance(math.MaxInt64)
	return b.engine.Findings()
}
