package follow_test

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/follow"
	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/state"
	"github.com/pachca-export/pachca-export/testkit/exporttest"
)

// TestFollowFromThePastSealsAtOnce: a loop started with --from two days
// back, its interval 10 minutes: the first cycle seals nothing (the API's
// clock is unknown before its answers), and the next one, which seals the
// days due, follows it at once (was: an interval later, 10 minutes here,
// the default's minute for a --from weeks back).
func TestFollowFromThePastSealsAtOnce(t *testing.T) {
	t.Parallel()
	sim, base := startSim(t, simulator.DefaultConfig())
	defer sim.Close()
	cfg := testConfig(t, base)
	cfg.Follow.Interval = 10 * time.Minute
	require.NoError(t, cfg.Validate())
	today := time.Now().UTC().Truncate(24 * time.Hour)
	f := startFollow(t, cfg, clock{}, follow.Options{From: today.AddDate(0, 0, -2)})
	waitSealed(t, cfg, today.AddDate(0, 0, -1).Format(time.DateOnly))
	require.NoError(t, f.stop())
	// Sealed by the second cycle, whatever came after it: the first
	// cycles read today's backlog an hour, then two, four ... at a time,
	// one right after the other.
	require.GreaterOrEqual(t, position(t, cfg).Seq, int64(2), "the first cycle, and the one that sealed")
}

// TestFollowSealGoesOnAcrossStarts: a day of 5,000 events (100 pages) to
// seal, and processes that each end after 40 requests (the token refused,
// a permanent error: as a crash loop, or a liveness probe too tight, ends
// each start a few seconds in). Each start's seal goes on from the windows
// the starts before spooled, and the day is sealed whole within 12 starts
// (was: each seal began the day anew and none ended).
func TestFollowSealGoesOnAcrossStarts(t *testing.T) {
	t.Parallel()
	today := time.Now().UTC().Truncate(24 * time.Hour)
	yesterday := today.AddDate(0, 0, -1)
	sc := simulator.DefaultConfig()
	sc.Events, sc.From, sc.To = 5000, yesterday, today
	sim, base := startSim(t, sc)
	defer sim.Close()
	var budget atomic.Int64
	target, err := url.Parse(base)
	require.NoError(t, err)
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host})
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/audit_events") && budget.Add(-1) < 0 {
			r.Header.Set("Authorization", "Bearer refused") // the process ends here
		}
		rp.ServeHTTP(w, r)
	}))
	defer proxy.Close()
	cfg := testConfig(t, proxy.URL+target.Path)
	day := yesterday.Format(time.DateOnly)
	v, err := state.Peek(cfg.State.Dir, pipeline.Identity(cfg))
	require.NoError(t, err)
	sealed := func() bool {
		ex, err := v.Exported()
		require.NoError(t, err)
		_, ok := ex[day]
		return ok
	}
	starts := 0
	for ; starts < 12 && !sealed(); starts++ {
		budget.Store(40)
		err := follow.Run(t.Context(), pipeline.Options{Config: cfg, Logger: logger(t)}, follow.Options{From: yesterday})
		require.Error(t, err, "the token refused ends the process")
	}
	require.True(t, sealed(), "sealed within %d starts of 40 requests", starts)
	exporttest.Compare(t, exporttest.Expected(sim, yesterday, today), exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir), "acme")
}
