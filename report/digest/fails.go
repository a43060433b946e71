package digest

import (
	"cmp"
	"hash/maphash"
	"slices"
	"strings"
	"time"

	"github.com/pachca-export/pachca-export/alerts"
	"github.com/pachca-export/pachca-export/report/reader"
)

// maxActorIPs bounds the distinct addresses remembered per failing actor.
const maxActorIPs = 8

// fails counts user_2fa_fail by hour and actor.
type fails struct {
	start  int64 // the hour the period starts in, ms
	loc    *time.Location
	seed   maphash.Seed
	total  int64
	index  map[string]int32
	actors []*failActor
	buf    []byte
}

type failActor struct {
	typ, id     string
	count       int64
	first, last int64
	lastIP      string
	// ips are the distinct addresses' hashes (fails.seed), the first nIPs:
	// 8 bytes each, not a copy of each address's text (some 32 bytes, and
	// an allocation; an actor of 8 addresses took 530 bytes, now 330:
	// TestFailActorMemory).
	ips     [maxActorIPs]uint64
	nIPs    uint8
	moreIPs bool // an address not in ips was seen once ips was full
	// hours holds the hour index of each failure: 4 bytes a failure,
	// where a map of (hour, actor) counts took about 30.
	hours []uint32
}

// newFails counts by the hours of loc: they start where its clock shows
// a whole hour, 30 minutes past a UTC hour in Asia/Kolkata (+05:30). A
// change of daylight saving time moves the clock by whole hours in every
// zone but Australia/Lord_Howe, so the hours stay aligned across it.
func newFails(from time.Time, loc *time.Location) fails {
	ms := from.UnixMilli()
	_, off := from.In(loc).Zone()
	return fails{start: ms - mod(ms+int64(off)*1000, hourMs), loc: loc, seed: maphash.MakeSeed(), index: map[string]int32{}}
}

func (f *fails) add(r *reader.Row) {
	f.total++
	h := (r.CreatedAt - f.start) / hourMs
	f.buf = appendActor(f.buf[:0], r.ActorType, r.ActorID)
	i, ok := f.index[string(f.buf)]
	if !ok {
		i = int32(len(f.actors))
		f.index[string(f.buf)] = i
		f.actors = append(f.actors, &failActor{typ: strings.Clone(r.ActorType), id: strings.Clone(r.ActorID),
			first: r.CreatedAt, last: r.CreatedAt})
	}
	a := f.actors[i]
	a.count++
	a.first, a.last = min(a.first, r.CreatedAt), max(a.last, r.CreatedAt)
	if r.IPAddress.Valid {
		if r.CreatedAt >= a.last && r.IPAddress.Str != a.lastIP {
			a.lastIP = strings.Clone(r.IPAddress.Str)
		}
		// Two of an actor's addresses share a 64-bit hash once in 2^61
		// actors or so: counted as one.
		if h := maphash.String(f.seed, r.IPAddress.Str); !a.moreIPs && !slices.Contains(a.ips[:a.nIPs], h) {
			if a.nIPs < maxActorIPs {
				a.ips[a.nIPs] = h
				a.nIPs++
			} else {
				a.moreIPs = true
			}
		}
	}
	a.hours = append(a.hours, uint32(h))
}

// Fail2FA is failed second-factor checks: per hour of the period, split
// into the actors with most failures and the rest, and per actor.
type Fail2FA struct {
	Total int64
	// Hours are the start of each hour of the period, in the digest's
	// Location.
	Hours []time.Time
	// Series are per-hour counts: one per top actor, then "other actors"
	// when there are more; each has len(Hours) counts.
	Series []FailSeries
	// Actors are the actors with most failures, most first.
	Actors []FailActor
	// ActorsTied is how many actors not listed have as many failures as
	// the last listed.
	ActorsTied int
	// ActorCount is the number of distinct actors with a failure.
	ActorCount int
}

// FailSeries is one stack of the failed-2FA chart.
type FailSeries struct {
	Name   string // "type id", or "other actors"
	Counts []int64
}

// FailActor is one actor's failures.
type FailActor struct {
	Type, ID    string
	Count       int64
	First, Last time.Time
	// IPs is the number of distinct addresses, at most maxActorIPs;
	// IPsAtLeast means there were more.
	IPs        int
	IPsAtLeast bool
	LastIP     string
	// Bursts counts the findings of threshold rules on user_2fa_fail for
	// this actor.
	Bursts int
}

func (f *fails) finish(to time.Time, findings []alerts.Finding, topN int) Fail2FA {
	out := Fail2FA{Total: f.total, ActorCount: len(f.actors)}
	end := to.UnixMilli()
	for h := f.start; h < end; h += hourMs {
		out.Hours = append(out.Hours, time.UnixMilli(h).In(f.loc))
	}
	order := make([]int, len(f.actors))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(x, y int) int {
		a, b := f.actors[x], f.actors[y]
		if c := cmp.Compare(b.count, a.count); c != 0 {
			return c
		}
		if c := strings.Compare(a.typ, b.typ); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	bursts := map[[2]string]int{}
	for _, fd := range findings {
		if slices.Contains(strings.Split(fd.EventKey, ", "), Fail2FAKey) {
			bursts[[2]string{fd.ActorType, fd.ActorID}]++
		}
	}
	for _, i := range order[:min(topN, len(order))] {
		a := f.actors[i]
		out.Actors = append(out.Actors, FailActor{Type: a.typ, ID: a.id, Count: a.count,
			First: time.UnixMilli(a.first).UTC(), Last: time.UnixMilli(a.last).UTC(),
			IPs: int(a.nIPs), IPsAtLeast: a.moreIPs, LastIP: a.lastIP,
			Bursts: bursts[[2]string{a.typ, a.id}]})
	}
	if k := len(out.Actors); k > 0 {
		for _, i := range order[k:] {
			if f.actors[i].count != out.Actors[k-1].Count {
				break // sorted: no more of that count
			}
			out.ActorsTied++
		}
	}
	n := len(out.Hours)
	top := order[:min(failSeries, len(order))]
	series := map[int32]int{}
	for j, i := range top {
		a := f.actors[i]
		series[int32(i)] = j
		out.Series = append(out.Series, FailSeries{Name: a.typ + " " + a.id, Counts: make([]int64, n)})
	}
	if len(order) > len(top) {
		out.Series = append(out.Series, FailSeries{Name: "other actors", Counts: make([]int64, n)})
	}
	for i, a := range f.actors {
		j, ok := series[int32(i)]
		if !ok {
			j = len(out.Series) - 1
		}
		for _, h := range a.hours {
			if int(h) < n {
				out.Series[j].Counts[h]++
			}
		}
	}
	return out
}
