package simulator

import (
	"math"
	"slices"
	"sort"
	"strconv"
)

// row is one stored event: its rendered JSON and the fields requests filter on.
type row struct {
	us                    int64 // created_at in Unix microseconds (whole milliseconds unless Config.Micros)
	ord                   int64 // its place in the log, in Unix microseconds: us, or up to store.skew after it
	raw                   []byte
	actorID, entityID     uint64
	key                   uint16 // index into store.keys
	actorType, entityType uint16 // indexes into store.types
}

// store holds the events in memory. Row i has the cursor id i+1; id 0 is a
// sentinel below every event. Views list row indexes sorted by (ord, id),
// the order of the log, so "newest first" is a view read backwards. Not
// safe for concurrent use: Server guards it.
type store struct {
	skew    int64 // the most an event's ord lies after its us (Config.Disorder), microseconds
	rows    []row
	order   []int32   // every row
	byKey   [][]int32 // the rows of one key, indexed like keys
	keys    []string
	keyIdx  map[string]uint16
	types   []string
	typeIdx map[string]uint16
}

func newStore(capacity int, skew int64) *store {
	return &store{
		skew:    skew,
		rows:    make([]row, 0, capacity),
		order:   make([]int32, 0, capacity),
		keyIdx:  map[string]uint16{},
		typeIdx: map[string]uint16{},
	}
}

func (s *store) internKey(k string) uint16 {
	i, ok := s.keyIdx[k]
	if !ok {
		i = uint16(len(s.keys))
		s.keys = append(s.keys, k)
		s.keyIdx[k] = i
		s.byKey = append(s.byKey, nil)
	}
	return i
}

func (s *store) internType(t string) uint16 {
	i, ok := s.typeIdx[t]
	if !ok {
		i = uint16(len(s.types))
		s.types = append(s.types, t)
		s.typeIdx[t] = i
	}
	return i
}

// add stores an event created at us and placed in the log at ord (Unix
// microseconds, ord >= us). It gets the largest id, so it goes after every
// event of the same ord: an append, unless ord lies before the newest event.
func (s *store) add(ord, us int64, raw []byte, d draft) {
	s.skew = max(s.skew, ord-us) // a late event written at the top of the log
	r := row{us: us, ord: ord, raw: raw, actorID: d.actorID, entityID: d.entityID,
		key: s.internKey(d.key), actorType: s.internType(d.actorType), entityType: s.internType(d.entityType)}
	s.rows = append(s.rows, r)
	idx := int32(len(s.rows) - 1)
	s.order = s.insert(s.order, idx)
	s.byKey[r.key] = s.insert(s.byKey[r.key], idx)
}

func (s *store) insert(v []int32, idx int32) []int32 {
	ord := s.rows[idx].ord
	if len(v) == 0 || s.rows[v[len(v)-1]].ord <= ord {
		return append(v, idx)
	}
	pos := sort.Search(len(v), func(i int) bool { return s.rows[v[i]].ord > ord })
	return slices.Insert(v, pos, idx)
}

// id returns the cursor id of row index r.
func id(r int32) uint64 { return uint64(r) + 1 }

// filter selects events; the zero value of an optional field means "any".
type filter struct {
	startUs, endUs        int64 // inclusive, Unix microseconds
	key                   string
	actorID, entityID     string
	actorType, entityType string
}

// matcher is a filter resolved against the store's interned values.
type matcher struct {
	s                     *store
	startUs, endUs        int64 // created_at, inclusive
	actorID, entityID     uint64
	hasActor, hasEntity   bool
	actorType, entityType int // -1 = any
}

func (m *matcher) match(r int32) bool {
	row := &m.s.rows[r]
	return row.us >= m.startUs && row.us <= m.endUs &&
		(!m.hasActor || row.actorID == m.actorID) &&
		(!m.hasEntity || row.entityID == m.entityID) &&
		(m.actorType < 0 || int(row.actorType) == m.actorType) &&
		(m.entityType < 0 || int(row.entityType) == m.entityType)
}

// resolve returns the view and matcher for f; ok is false when no event can
// match (a value the store has never seen).
func (s *store) resolve(f filter) (view []int32, m matcher, ok bool) {
	m = matcher{s: s, startUs: f.startUs, endUs: f.endUs, actorType: -1, entityType: -1}
	view = s.order
	if f.key != "" {
		k, found := s.keyIdx[f.key]
		if !found {
			return nil, m, false
		}
		view = s.byKey[k]
	}
	for _, c := range []struct {
		in  string
		out *uint64
		has *bool
	}{{f.actorID, &m.actorID, &m.hasActor}, {f.entityID, &m.entityID, &m.hasEntity}} {
		if c.in == "" {
			continue
		}
		n, err := strconv.ParseUint(c.in, 10, 64)
		if err != nil || strconv.FormatUint(n, 10) != c.in {
			return nil, m, false
		}
		*c.out, *c.has = n, true
	}
	for _, c := range []struct {
		in  string
		out *int
	}{{f.actorType, &m.actorType}, {f.entityType, &m.entityType}} {
		if c.in == "" {
			continue
		}
		t, found := s.typeIdx[c.in]
		if !found {
			return nil, m, false
		}
		*c.out = int(t)
	}
	return view, m, true
}

// matches reports whether row r is one that f selects.
func (s *store) matches(f filter, r int32) bool {
	if r < 0 || int(r) >= len(s.rows) {
		return false
	}
	_, m, ok := s.resolve(f)
	row := &s.rows[r]
	return ok && row.us >= f.startUs && row.us <= f.endUs &&
		(f.key == "" || s.keys[row.key] == f.key) && m.match(r)
}

// cursor is a decoded pagination cursor: the id of an event and a direction.
type cursor struct {
	id  uint64
	asc bool // asc: the events after id (newer); desc: the events before it
}

// page is one answer: rows newest first, the ids its cursors point at, and
// whether matching events lie beyond either edge.
type page struct {
	rows             []int32
	top, bottom      uint64
	hasNext, hasPrev bool
}

// query returns up to limit events matching f next to c. Without a cursor
// it starts at the newest event of the range; has_prev is then false.
func (s *store) query(f filter, c *cursor, limit int) page {
	view, m, ok := s.resolve(f)
	if !ok {
		var p page
		if c != nil {
			p.top, p.bottom = c.id, c.id
		}
		return p
	}
	// view[lo:hi] holds every event created in [start, end] (ord >= us >=
	// ord-skew), and with skew some created outside it, which m skips.
	lo := sort.Search(len(view), func(i int) bool { return s.rows[view[i]].ord >= f.startUs })
	hi := sort.Search(len(view), func(i int) bool { return s.rows[view[i]].ord > f.endUs+s.skew })
	// exists reports a match in view[from:to].
	exists := func(from, to int) bool {
		for i := from; i < to; i++ {
			if m.match(view[i]) {
				return true
			}
		}
		return false
	}
	var p page
	if c == nil || !c.asc {
		upper := hi // scan view[lo:upper] downwards
		if c != nil {
			upper = min(hi, max(lo, s.firstAtOrAbove(view, c.id)))
			p.top, p.bottom = c.id, c.id
			p.hasPrev = exists(upper, hi)
		}
		i := upper - 1
		for ; i >= lo && len(p.rows) < limit; i-- {
			if m.match(view[i]) {
				p.rows = append(p.rows, view[i])
			}
		}
		for ; i >= lo && !p.hasNext; i-- {
			p.hasNext = m.match(view[i])
		}
	} else {
		lower := max(lo, min(hi, s.firstAbove(view, c.id))) // scan view[lower:hi] upwards
		p.top, p.bottom = c.id, c.id
		p.hasNext = exists(lo, lower)
		i := lower
		for ; i < hi && len(p.rows) < limit; i++ {
			if m.match(view[i]) {
				p.rows = append(p.rows, view[i])
			}
		}
		p.hasPrev = exists(i, hi)
		slices.Reverse(p.rows)
	}
	if len(p.rows) > 0 {
		p.top, p.bottom = id(p.rows[0]), id(p.rows[len(p.rows)-1])
	}
	return p
}

// anchor returns the sort key of cursor id: (ord, id), the sentinel 0 below all.
func (s *store) anchor(cid uint64) (int64, uint64) {
	if cid == 0 {
		return math.MinInt64, 0
	}
	return s.rows[cid-1].ord, cid
}

// firstAtOrAbove returns the first position in view whose key is >= the key of cid.
func (s *store) firstAtOrAbove(view []int32, cid uint64) int {
	aord, aid := s.anchor(cid)
	return sort.Search(len(view), func(i int) bool {
		r := view[i]
		return s.rows[r].ord > aord || s.rows[r].ord == aord && id(r) >= aid
	})
}

// firstAbove returns the first position in view whose key is > the key of cid.
func (s *store) firstAbove(view []int32, cid uint64) int {
	aord, aid := s.anchor(cid)
	return sort.Search(len(view), func(i int) bool {
		r := view[i]
		return s.rows[r].ord > aord || s.rows[r].ord == aord && id(r) > aid
	})
}
