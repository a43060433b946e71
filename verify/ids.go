package verify

import (
	"iter"
	"slices"

	"github.com/pachca-export/pachca-export/internal/idkey"
)

// idSet is a set of event ids, UUIDs as their 16 bytes (idkey): some 30
// bytes an id instead of 80, none of which the garbage collector scans,
// which matters once several days are checked at once within the
// command's soft memory limit.
type idSet struct{ m *idkey.Map[struct{}] }

func newIDSet() *idSet { return &idSet{idkey.New[struct{}]()} }

// add adds id and reports whether it was there already.
func (s *idSet) add(id string) (dup bool) { return s.m.Set(id, struct{}{}) }

func (s *idSet) has(id string) bool {
	_, in := s.m.Get(id)
	return in
}

func (s *idSet) len() int {
	if s == nil {
		return 0
	}
	return s.m.Len()
}

// all yields every id, as it was added.
func (s *idSet) all() iter.Seq[string] {
	return func(yield func(string) bool) {
		for id := range s.m.All() {
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
