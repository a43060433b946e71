package digest

import (
	"cmp"
	"container/heap"
	"slices"
	"strings"
)

// topK counts occurrences of strings in bounded memory with the
// Space-Saving algorithm (Metwally, Agrawal, El Abbadi, 2005): at most cap
// counters; when a new string arrives and all are taken, it replaces the
// smallest counter and inherits its count as its possible error. Every
// string seen more than total/cap times is kept, and a counter's true count
// lies in [count-err, count]. With no more than cap distinct strings,
// counts are exact.
type topK struct {
	cap   int
	index map[string]*counter
	h     counterHeap
	total int64
	// evicted is true once a counter was replaced: counts may be over.
	evicted bool
}

type counter struct {
	key   string
	count int64
	err   int64
	pos   int
}

func newTopK(capacity int) *topK {
	return &topK{cap: capacity, index: make(map[string]*counter)}
}

// add counts one occurrence of key (copied when kept).
func (t *topK) add(key string) {
	if c, ok := t.index[key]; ok {
		t.total++
		c.count++
		heap.Fix(&t.h, c.pos)
		return
	}
	t.insert(key)
}

// addBytes is add without a string for keys already counted.
func (t *topK) addBytes(key []byte) {
	if c, ok := t.index[string(key)]; ok {
		t.total++
		c.count++
		heap.Fix(&t.h, c.pos)
		return
	}
	t.insert(string(key))
}

// insert starts a counter for key, replacing the smallest when full.
func (t *topK) insert(key string) {
	t.total++
	if len(t.h) < t.cap {
		c := &counter{key: strings.Clone(key), count: 1}
		t.index[c.key] = c
		heap.Push(&t.h, c)
		return
	}
	t.evicted = true
	c := t.h[0] // the smallest
	delete(t.index, c.key)
	c.key, c.err = strings.Clone(key), c.count
	c.count++
	t.index[c.key] = c
	heap.Fix(&t.h, 0)
}

// Top is one counted value of a top list.
type Top struct {
	Key   string
	Count int64
	// Err bounds the overcount: the true count is in [Count-Err, Count].
	// Zero when the count is exact.
	Err int64
}

// top returns the n largest counters, by count then key.
func (t *topK) top(n int) []Top {
	out := make([]Top, 0, len(t.h))
	for _, c := range t.h {
		out = append(out, Top{Key: c.key, Count: c.count, Err: c.err})
	}
	slices.SortFunc(out, func(a, b Top) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	return out[:min(n, len(out))]
}

// tied is how many counters listed does not show whose count equals the
// last listed one's: a top list cut in the middle of a tie (15 addresses of
// one event each, of 6,000 such) must say so, or its order, by key, reads
// as a ranking. 0 once a counter was replaced: counts are then bounds, and
// equal bounds are no tie.
func (t *topK) tied(listed []Top) int {
	if len(listed) == 0 || t.evicted {
		return 0
	}
	last, n := listed[len(listed)-1].Count, 0
	for _, c := range t.h {
		if c.count == last {
			n++
		}
	}
	for _, l := range listed {
		if l.Count == last {
			n--
		}
	}
	return n
}

// distinct is the number of distinct keys seen, exact unless evicted (then
// a lower bound).
func (t *topK) distinct() Distinct { return Distinct{N: len(t.h), AtLeast: t.evicted} }

// Distinct is a count of distinct values; AtLeast means it is a lower bound.
type Distinct struct {
	N       int
	AtLeast bool
}

// counterHeap is a min-heap of counters by count.
type counterHeap []*counter

func (h counterHeap) Len() int           { return len(h) }
func (h counterHeap) Less(i, j int) bool { return h[i].count < h[j].count }
func (h counterHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].pos, h[j].pos = i, j
}
func (h *counterHeap) Push(x any) {
	c := x.(*counter)
	c.pos = len(*h)
	*h = append(*h, c)
}
func (h *counterHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	*h = old[:len(old)-1]
	return c
}
