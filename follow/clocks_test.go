package follow_test

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
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

// TestFollowAPIClockStepsBackOverMidnight: the API's clock steps back 4 s
// a second past a UTC midnight, while events of the day before are
// published late; the watermark, which never passes the API's now less the
// lag, then holds for a few cycles, whose look-back begins before midnight:
// each writes the day before's late events to a file of its own, and every
// event of the day is in the kept cycle files at the seal (was: the cycles
// with a watermark that did not move all began at one instant, so each
// named its file of the day before [from, midnight): the second was
// refused, exit 1 at every restart, or replaced the first, whose events
// were lost from the kept cycle files).
func TestFollowAPIClockStepsBackOverMidnight(t *testing.T) {
	t.Parallel()
	c, sim, base := startLive(t, 2*time.Second, simulator.Live{})
	cfg := testConfig(t, base)
	cfg.Follow.Lookback, cfg.Follow.KeepCycleFiles = 20*time.Second, true
	require.NoError(t, cfg.Validate())
	midnight := c.now().Truncate(24 * time.Hour).Add(24 * time.Hour)
	start := c.now().Add(-500 * time.Millisecond)
	stepped := false
	sealLateEvents(t, c, sim, cfg, start, midnight, 2*patience, func(int) {
		if !stepped && position(t, cfg).Watermark.After(midnight.Add(time.Second)) {
			sim.SetClockOffset(c.offset - 4*time.Second)
			stepped = true
		}
	})
	require.True(t, stepped, "the API's clock stepped back past the midnight")
}

// TestFollowHostClockStepsForward: this host's clock steps an hour forward
// (an NTP correction, a VM resumed) 2 s before a UTC midnight, the API's
// clock staying where it was. The day is sealed only once the API's
// midnight is past lag + look-back, and an event the API creates in its
// last half second is exported (was: the cycle after the step read how far
// behind the API's clock was from answers before the step, sealed the day
// by this host's new clock, before the API's midnight, and moved the
// watermark an hour past the API's now: what the API created after, before
// its midnight, was never exported).
func TestFollowHostClockStepsForward(t *testing.T) {
	t.Parallel()
	c, sim, base := startLive(t, 3*time.Second, simulator.Live{Rate: 20})
	cfg := testConfig(t, base)
	midnight := c.now().Truncate(24 * time.Hour).Add(24 * time.Hour)
	yesterday := midnight.Add(-24 * time.Hour).Format(time.DateOnly)
	var step atomic.Int64
	host := func() time.Time { return c.now().Add(time.Duration(step.Load())) }
	start := c.now().Add(-500 * time.Millisecond)
	f := startFollowAt(t, cfg, host, follow.Options{From: start}, logger(t))
	waitFor(t, "two committed cycles", func() bool { return position(t, cfg).Seq >= 2 })
	step.Store(int64(time.Hour))
	for c.now().Before(midnight.Add(-500 * time.Millisecond)) {
		time.Sleep(10 * time.Millisecond)
	}
	last := sim.WriteEvent("user_login", c.now(), 20001)
	require.Equal(t, yesterday, last.CreatedAt.UTC().Format(time.DateOnly))
	waitSealed(t, cfg, yesterday)
	require.NoError(t, f.stop())
	want := exporttest.Expected(sim, midnight.Add(-24*time.Hour), midnight)
	got := dayLines(t, cfg.Sinks[0].File.Dir, yesterday)
	require.Contains(t, got, last.ID)
	exporttest.Compare(t, want, got, "acme")
}

// TestFollowAPIClockComesBack: the API's clock falls two hours back, long
// enough for the loop to read it (its cycles idle then: the watermark is
// past the API's now), then comes back: the cycles go on at once (was:
// idle cycles asked the API nothing, so the loop never learned that the
// clock came back and stayed idle for the two hours).
func TestFollowAPIClockComesBack(t *testing.T) {
	t.Parallel()
	sim, base := startLiveAt(t, 0, simulator.Live{Rate: 20})
	cfg := testConfig(t, base)
	addr := make(chan string, 1)
	f := startFollow(t, cfg, clock{}, follow.Options{Listen: "127.0.0.1:0", Ready: func(a string) { addr <- a }})
	metrics := "http://" + <-addr + "/metrics"
	waitFor(t, "a committed cycle", func() bool { return position(t, cfg).Seq >= 1 })
	sim.SetClockOffset(-2 * time.Hour)
	waitFor(t, "the loop to read the API's clock behind", func() bool {
		return metricValue(t, metrics, "pachca_export_follow_api_clock_behind_seconds") > 3600
	})
	sim.SetClockOffset(0)
	back := time.Now()
	waitFor(t, "the cycles to go on", func() bool { return position(t, cfg).Watermark.After(back.Add(-cfg.Period.Lag)) })
	require.NoError(t, f.stop())
}

// TestFollowOutageOverMidnightAndSeal: the API, its clock 5 s behind this
// host's, closes every connection from 2 s before its midnight until its
// day would have been sealed and 3 s more, while events, a share
// published late, go on being created: once it answers again, the day
// before is sealed with every event once, and the cycles catch up.
func TestFollowOutageOverMidnightAndSeal(t *testing.T) {
	t.Parallel()
	const behind = 5 * time.Second
	c := newClock(4*time.Second + behind)
	sim, base := startLiveAt(t, c.offset-behind, simulator.Live{Rate: 30, LateShare: 0.3, MaxLate: 2 * time.Second})
	apiNow := func() time.Time { return c.now().Add(-behind) }
	midnight := apiNow().Truncate(24 * time.Hour).Add(24 * time.Hour)
	yesterday := midnight.Add(-24 * time.Hour).Format(time.DateOnly)
	var down atomic.Bool
	target, err := url.Parse(base)
	require.NoError(t, err)
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host})
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
			}
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	cfg := testConfig(t, front.URL+target.Path)
	start := apiNow().Add(-time.Second)
	f := startFollow(t, cfg, c, follow.Options{From: start})
	waitFor(t, "a committed cycle", func() bool { return position(t, cfg).Seq >= 1 })
	waitFor(t, "the API's last 2 s of the day", func() bool { return !apiNow().Before(midnight.Add(-2 * time.Second)) })
	down.Store(true)
	waitFor(t, "the seal to be due by the API's clock, and 3 s more", func() bool {
		return apiNow().After(midnight.Add(cfg.Period.Lag + cfg.Follow.Lookback + 3*time.Second))
	})
	v, err := state.Peek(cfg.State.Dir, pipeline.Identity(cfg))
	require.NoError(t, err)
	ex, err := v.Exported()
	require.NoError(t, err)
	_, done := ex[yesterday]
	require.False(t, done, "not sealed while the API was away")
	down.Store(false)
	waitSealed(t, cfg, yesterday)
	sim.StopLive()
	stopped := apiNow()
	waitFor(t, "the watermark to pass the last event", func() bool {
		return position(t, cfg).Watermark.After(stopped.Add(cfg.Follow.Lookback))
	})
	require.NoError(t, f.stop())
	want := exporttest.Expected(sim, start.Truncate(24*time.Hour), position(t, cfg).Watermark)
	exporttest.Compare(t, want, exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir), "acme") // once each: it fails on an id twice
	require.Equal(t, []string{"_manifest.json", "pachca-audit-" + yesterday + ".ndjson"}, dayFiles(t, cfg.Sinks[0].File.Dir, yesterday))
}

// TestFollowHostClockStepsBack: this host's clock steps an hour back 3 s
// before a UTC midnight (a wrong step, as a VM resumed from an old
// snapshot), and 3 s later forward again. The cycles idle in between,
// asking the API nothing (no spin); the day is sealed once the API's
// midnight is past lag + look-back, and every event of it is exported once.
func TestFollowHostClockStepsBack(t *testing.T) {
	t.Parallel()
	c, sim, base := startLive(t, 5*time.Second, simulator.Live{Rate: 30, LateShare: 0.3, MaxLate: 2 * time.Second})
	cfg := testConfig(t, base)
	midnight := c.now().Truncate(24 * time.Hour).Add(24 * time.Hour)
	yesterday := midnight.Add(-24 * time.Hour).Format(time.DateOnly)
	var step atomic.Int64
	host := func() time.Time { return c.now().Add(time.Duration(step.Load())) }
	start := c.now().Add(-500 * time.Millisecond)
	f := startFollowAt(t, cfg, host, follow.Options{From: start}, logger(t))
	waitFor(t, "two committed cycles", func() bool { return position(t, cfg).Seq >= 2 })
	waitFor(t, "3 s before midnight", func() bool { return !c.now().Before(midnight.Add(-3 * time.Second)) })
	step.Store(int64(-time.Hour))
	seq, requests := position(t, cfg).Seq, sim.Stats().Requests
	time.Sleep(3 * time.Second)
	// At most the cycle under way at the step commits, and it reads no
	// more than its own pages.
	require.LessOrEqual(t, position(t, cfg).Seq, seq+1, "cycles idle while this host's clock is behind the watermark")
	require.Less(t, sim.Stats().Requests-requests, 10, "idle cycles ask the API nothing")
	step.Store(0)
	waitSealed(t, cfg, yesterday)
	require.False(t, c.now().Before(midnight.Add(cfg.Period.Lag+cfg.Follow.Lookback)), "sealed at %s, before midnight + lag + look-back", c.now().Format(time.TimeOnly))
	sim.StopLive()
	stopped := c.now()
	waitFor(t, "the watermark to pass the last event", func() bool {
		return position(t, cfg).Watermark.After(stopped.Add(cfg.Follow.Lookback))
	})
	require.NoError(t, f.stop())
	want := exporttest.Expected(sim, start.Truncate(24*time.Hour), position(t, cfg).Watermark)
	exporttest.Compare(t, want, exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir), "acme") // once each: it fails on an id twice
}
