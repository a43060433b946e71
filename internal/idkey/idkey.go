// Package idkey keeps event ids compactly. An id in the canonical form of a
// UUID, as the API's are (lowercase, 8-4-4-4-12), is kept as its 16 bytes
// in a map without pointers: no string of 48 bytes beside each key, and
// nothing for the garbage collector to scan. Any other id is kept as it
// is. verify's id sets and the follow loop's delivered ids (hundreds of
// thousands after a flood of events) use it.
package idkey

import (
	"encoding/hex"
	"iter"
)

// Map maps event ids to values of V.
type Map[V any] struct {
	uuids map[[16]byte]V
	other map[string]V
}

// New returns an empty map.
func New[V any]() *Map[V] {
	return &Map[V]{uuids: map[[16]byte]V{}, other: map[string]V{}}
}

// Get returns the value of id.
func (m *Map[V]) Get(id string) (V, bool) {
	if u, ok := Parse(id); ok {
		v, in := m.uuids[u]
		return v, in
	}
	v, in := m.other[id]
	return v, in
}

// Set sets the value of id and reports whether id was there already.
func (m *Map[V]) Set(id string, v V) (had bool) {
	if u, ok := Parse(id); ok {
		_, had = m.uuids[u]
		m.uuids[u] = v
		return had
	}
	_, had = m.other[id]
	m.other[id] = v
	return had
}

// SetUUID sets the value of the id whose UUID is u (Parse's bytes),
// without the round trip through its text.
func (m *Map[V]) SetUUID(u [16]byte, v V) { m.uuids[u] = v }

// Len is the number of ids.
func (m *Map[V]) Len() int {
	if m == nil {
		return 0
	}
	return len(m.uuids) + len(m.other)
}

// DeleteFunc removes the ids whose value del reports true of.
func (m *Map[V]) DeleteFunc(del func(V) bool) {
	for u, v := range m.uuids {
		if del(v) {
			delete(m.uuids, u)
		}
	}
	for id, v := range m.other {
		if del(v) {
			delete(m.other, id)
		}
	}
}

// All yields every id, as it was set, with its value.
func (m *Map[V]) All() iter.Seq2[string, V] {
	return func(yield func(string, V) bool) {
		for u, v := range m.uuids {
			if !yield(Format(u), v) {
				return
			}
		}
		for id, v := range m.other {
			if !yield(id, v) {
				return
			}
		}
	}
}

// Parse returns the 16 bytes of id if it is a UUID in the canonical form
// Format gives back unchanged: 36 characters, lowercase hex digits, dashes
// after the 8th, 12th, 16th and 20th.
func Parse(id string) (u [16]byte, ok bool) {
	if len(id) != 36 || id[8] != '-' || id[13] != '-' || id[18] != '-' || id[23] != '-' {
		return u, false
	}
	j := 0
	for i := 0; i < 36; i += 2 {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i++
		}
		hi, ok1 := lowerHex(id[i])
		lo, ok2 := lowerHex(id[i+1])
		if !ok1 || !ok2 {
			return u, false
		}
		u[j] = hi<<4 | lo
		j++
	}
	return u, true
}

func lowerHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// Format is the canonical form of the UUID u.
func Format(u [16]byte) string {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}
