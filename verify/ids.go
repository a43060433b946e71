package verify

import (
	"encoding/hex"
	"iter"
	"slices"
)

// idSet is a set of event ids. An id in the canonical form of a UUID, as the
// API's are (lowercase, 8-4-4-4-12), is kept as its 16 bytes in a map
// without pointers: some 30 bytes an id instead of 80, none of which the
// garbage collector scans, which matters once several days are checked at
// once within the command's soft memory limit. Any other id is kept as
// it is.
type idSet struct {
	uuids map[[16]byte]struct{}
	other map[string]struct{}
}

func newIDSet() *idSet {
	return &idSet{uuids: map[[16]byte]struct{}{}, other: map[string]struct{}{}}
}

// add adds id and reports whether it was there already.
func (s *idSet) add(id string) (dup bool) {
	if u, ok := parseUUID(id); ok {
		_, dup = s.uuids[u]
		s.uuids[u] = struct{}{}
		return dup
	}
	_, dup = s.other[id]
	s.other[id] = struct{}{}
	return dup
}

func (s *idSet) has(id string) bool {
	if u, ok := parseUUID(id); ok {
		_, in := s.uuids[u]
		return in
	}
	_, in := s.other[id]
	return in
}

func (s *idSet) len() int {
	if s == nil {
		return 0
	}
	return len(s.uuids) + len(s.other)
}

// all yields every id, as it was added.
func (s *idSet) all() iter.Seq[string] {
	return func(yield func(string) bool) {
		for u := range s.uuids {
			if !yield(formatUUID(u)) {
				return
			}
		}
		for id := range s.other {
			if !yield(id) {
				return
			}
		}
	}
}

// missing returns the ids of want that got lacks, sorted.
func missing(want, got *idSet) []string {
	var out []string
	for id := range want.all() {
		if !got.has(id) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// parseUUID returns the 16 bytes of id if it is a UUID in the canonical
// form formatUUID gives back unchanged: 36 characters, lowercase hex
// digits, dashes after the 8th, 12th, 16th and 20th.
func parseUUID(id string) (u [16]byte, ok bool) {
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

func formatUUID(u [16]byte) string {
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
