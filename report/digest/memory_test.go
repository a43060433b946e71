package digest

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/alerts"
	"github.com/pachca-export/pachca-export/report/reader"
	"github.com/pachca-export/pachca-export/transform"
)

// TestFailActorMemory: what the failed-2FA counts keep of an actor with
// eight addresses, the most they remember, is some 330 bytes (was: 530,
// a copy of each address's text): 50,000 failing actors, as a workspace
// of tens of thousands of users has in a week, took 27 MB of a report's
// 32 MiB soft limit, and the collector ran without end.
func TestFailActorMemory(t *testing.T) {
	const actors = 20_000
	rows := make([]reader.Row, 0, actors*maxActorIPs)
	for a := range actors {
		for i := range maxActorIPs {
			rows = append(rows, reader.Row{ID: "x", CreatedAt: day0.UnixMilli() + int64(i)*hourMs, EventKey: Fail2FAKey,
				ActorID: fmt.Sprint(100000 + a), ActorType: "User",
				IPAddress: transform.NullString{Valid: true, Str: fmt.Sprintf("203.0.%d.%d", a%250, i)}})
		}
	}
	f := newFails(day0, time.UTC)
	before := heapInUse()
	for i := range rows {
		f.add(&rows[i])
	}
	perActor := float64(heapInUse()-before) / actors
	runtime.KeepAlive(&f)
	runtime.KeepAlive(rows)
	t.Logf("%.0f bytes a failing actor with %d addresses", perActor, maxActorIPs)
	require.Less(t, perActor, 400.0)
}

// TestBurstCandidateAllocations: an event waiting in the burst search
// (a day's worth of a threshold rule's keys do) allocates nothing of its
// own: its id, key and address are not copied as text (was: three
// allocations and some 150 bytes an event, 104 now).
func TestBurstCandidateAllocations(t *testing.T) {
	rule := alerts.Rule{Name: "r", Kind: alerts.KindThreshold, EventKeys: []string{Fail2FAKey},
		Threshold: 5, Window: 10 * time.Minute, Recipients: []string{"1"}}
	b, err := New(Options{From: day0, To: day0.AddDate(0, 0, 1), Rules: []alerts.Rule{rule}})
	require.NoError(t, err)
	ki := b.info(&reader.Row{EventKey: Fail2FAKey})
	require.NotEmpty(t, ki.rules)
	r := reader.Row{ID: "0b7e4f3a-5c1d-4e2f-9a8b-7c6d5e4f3a2b", CreatedAt: day0.UnixMilli(), EventKey: Fail2FAKey,
		ActorID: "10001", ActorType: "User", IPAddress: transform.NullString{Valid: true, Str: "203.0.113.7"}}
	b.bursts.add(&r, ki.key, ki.rules) // the actor's queue
	for _, q := range ki.rules {
		for _, l := range q.pending {
			*l = make([]candidate, 0, 1000)
		}
	}
	allocs := testing.AllocsPerRun(500, func() { b.bursts.add(&r, ki.key, ki.rules) })
	require.Zero(t, allocs)
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
