package simulator_test

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/simulator"
)

// firstTwo returns the query of one day, its first page (no faults) and the
// query of the second page.
func firstTwo(t *testing.T, s *simulator.Server, base string) (apiPage, url.Values) {
	t.Helper()
	s.SetFaults(0)
	q := query(day(1), day(2))
	p1 := decodePage(t, get(t, base, "sim-token", q))
	require.Len(t, p1.Data, simulator.MaxLimit)
	require.True(t, p1.Meta.Paginate.HasNext)
	return p1, cloneWith(q, "cursor", p1.Meta.Paginate.NextPage)
}

func TestPaginationFaultsNeedACursor(t *testing.T) {
	s, base := start(t, testConfig())
	q := query(day(1), day(2))
	want := decodePage(t, get(t, base, "sim-token", q))
	for _, kind := range []string{simulator.FaultCursorLoop, simulator.FaultEmptyPage, simulator.FaultDupPage} {
		t.Run(kind, func(t *testing.T) {
			s.SetFaults(1, kind)
			require.Equal(t, want, decodePage(t, get(t, base, "sim-token", q)), "a first page is answered normally")
		})
	}
	st := s.Stats()
	require.Zero(t, st.Faults)
	require.Equal(t, 4, st.OK)
}

func TestFaultCursorLoop(t *testing.T) {
	s, base := start(t, testConfig())
	_, q2 := firstTwo(t, s, base)
	normal := decodePage(t, get(t, base, "sim-token", q2))

	s.SetFaults(1, simulator.FaultCursorLoop)
	looped := decodePage(t, get(t, base, "sim-token", q2))
	require.Equal(t, normal.Data, looped.Data, "the events of the page")
	require.True(t, looped.Meta.Paginate.HasNext)
	require.Equal(t, q2.Get("cursor"), looped.Meta.Paginate.NextPage, "next_page is the request's own cursor")
	again := decodePage(t, get(t, base, "sim-token", cloneWith(q2, "cursor", looped.Meta.Paginate.NextPage)))
	require.Equal(t, looped, again, "following it gives the same page again")
	require.Equal(t, 2, s.Stats().Faults)
}

func TestFaultEmptyPage(t *testing.T) {
	s, base := start(t, testConfig())
	_, q2 := firstTwo(t, s, base)
	normal := decodePage(t, get(t, base, "sim-token", q2))

	s.SetFaults(1, simulator.FaultEmptyPage)
	empty := decodePage(t, get(t, base, "sim-token", q2))
	require.Empty(t, empty.Data)
	require.True(t, empty.Meta.Paginate.HasNext)
	next := empty.Meta.Paginate.NextPage
	require.NotEqual(t, q2.Get("cursor"), next, "a cursor spelt anew")
	empty2 := decodePage(t, get(t, base, "sim-token", cloneWith(q2, "cursor", next)))
	require.NotEqual(t, next, empty2.Meta.Paginate.NextPage, "every empty page mints another spelling")

	s.SetFaults(0)
	require.Equal(t, normal, decodePage(t, get(t, base, "sim-token", cloneWith(q2, "cursor", next))),
		"its next_page leads to the page it should have been")
	require.Equal(t, 2, s.Stats().Faults)

	// A walk through empty pages loses nothing.
	s.SetFaults(0.5, simulator.FaultEmptyPage)
	require.Equal(t, inRange(s.Events(), day(1), day(2), nil), walk(t, base, query(day(1), day(2))))
	require.Greater(t, s.Stats().Faults, 2)
}

func TestFaultDupPage(t *testing.T) {
	s, base := start(t, testConfig())
	p1, q2 := firstTwo(t, s, base)
	normal := decodePage(t, get(t, base, "sim-token", q2))

	s.SetFaults(1, simulator.FaultDupPage)
	dup := decodePage(t, get(t, base, "sim-token", q2))
	require.Len(t, dup.Data, simulator.MaxLimit, "the page keeps its size")
	require.JSONEq(t, string(p1.Data[len(p1.Data)-1]), string(dup.Data[0]), "the last event of the previous page comes first")
	require.Equal(t, normal.Data[:simulator.MaxLimit-1], dup.Data[1:])
	require.True(t, dup.Meta.Paginate.HasNext)
	require.Equal(t, 1, s.Stats().Faults)

	// A walk through duplicated events loses nothing; each repeat is the
	// event just before it.
	s.SetFaults(0.5, simulator.FaultDupPage)
	var got [][]byte
	repeats := 0
	for _, e := range walk(t, base, query(day(1), day(2))) {
		if len(got) > 0 && head(t, got[len(got)-1]).ID == head(t, e).ID {
			repeats++
			continue
		}
		got = append(got, e)
	}
	require.Equal(t, inRange(s.Events(), day(1), day(2), nil), got)
	require.Positive(t, repeats)
	require.Equal(t, repeats+1, s.Stats().Faults)
}

func TestPaginationFaultsAreKnownKinds(t *testing.T) {
	for _, kind := range []string{simulator.FaultCursorLoop, simulator.FaultEmptyPage, simulator.FaultDupPage} {
		require.Contains(t, simulator.AllFaults(), kind)
		cfg := testConfig()
		cfg.FaultRate, cfg.Faults = 0.1, []string{kind}
		require.NoError(t, cfg.Validate())
	}
	require.NotContains(t, simulator.RecoverableFaults(), simulator.FaultCursorLoop)
	require.Equal(t, simulator.RecoverableFaults(), simulator.DefaultConfig().Faults)
}
