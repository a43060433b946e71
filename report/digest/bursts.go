package digest

import (
	"bytes"
	"cmp"
	"math"
	"net/netip"
	"slices"
	"strings"

	"github.com/pachca-export/pachca-export/alerts"
	"github.com/pachca-export/pachca-export/internal/idkey"
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

// candidate is an event of a rule's keys, waiting to be decided: a day's
// worth of them wait (Advance is called once a day), so it holds no copy
// of the row's text: a UUID as its 16 bytes, the key as the builder's own
// copy, an address as a netip.Addr when it reads back the same (was: three
// strings copied per event, some 150 bytes and three allocations where
// now 104 and none; 72,000 of them in a day of 4,000,000 events).
type candidate struct {
	at     int64
	uuid   [16]byte
	id     string // when the id is not a UUID
	key    string // keyInfo.key
	ip     netip.Addr
	ipText string // when the address does not read back as netip.Addr
	isUUID bool
	ipOK   bool // the row has an address
	marked bool // part of a full run
}

// newCandidate is r as a candidate of key (the builder's copy of r.EventKey).
func newCandidate(r *reader.Row, key string) candidate {
	c := candidate{at: r.CreatedAt, key: key, ipOK: r.IPAddress.Valid}
	if c.uuid, c.isUUID = idkey.Parse(r.ID); !c.isUUID {
		c.id = strings.Clone(r.ID)
	}
	if c.ipOK {
		var buf [64]byte
		if a, err := netip.ParseAddr(r.IPAddress.Str); err == nil && string(a.AppendTo(buf[:0])) == r.IPAddress.Str {
			c.ip = a
		} else {
			c.ipText = strings.Clone(r.IPAddress.Str)
		}
	}
	return c
}

// idText is the event's id as the row had it.
func (c *candidate) idText() string {
	if c.isUUID {
		return idkey.Format(c.uuid)
	}
	return c.id
}

// ipAddress is the event's address as the row had it.
func (c *candidate) ipAddress() transform.NullString {
	switch {
	case !c.ipOK:
		return transform.NullString{}
	case c.ip.IsValid():
		return transform.NullString{Valid: true, Str: c.ip.String()}
	}
	return transform.NullString{Valid: true, Str: c.ipText}
}

// compareIDs orders candidates by id text without formatting two UUIDs:
// lower-case hex keeps the order of the bytes.
func compareIDs(x, y *candidate) int {
	if x.isUUID && y.isUUID {
		return bytes.Compare(x.uuid[:], y.uuid[:])
	}
	return strings.Compare(x.idText(), y.idText())
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

// add queues r for rules, those of rulesFor(key), key the builder's copy of
// r.EventKey. As in the engine, events without an actor_id never count.
func (b *burstFinder) add(r *reader.Row, key string, rules []*ruleQueue) {
	if r.ActorID == "" {
		return
	}
	for _, q := range rules {
		list, ok := q.pending[actor{r.ActorType, r.ActorID}]
		if !ok {
			list = new([]candidate)
			q.pending[actor{strings.Clone(r.ActorType), strings.Clone(r.ActorID)}] = list
		}
		*list = append(*list, newCandidate(r, key))
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
				return compareIDs(&x, &y)
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
	b.rec.ID, b.rec.CreatedAt, b.rec.EventKey = c.idText(), c.at, c.key
	b.rec.ActorID, b.rec.ActorType, b.rec.IPAddress = a.id, a.typ, c.ipAddress()
	b.engine.Observe(&b.rec)
}

// findings decides every queued event and returns the engine's findings.
func (b *burstFinder) findings() []alerts.Finding {
	b.advance(math.MaxInt64)
	return b.engine.Findings()
}
