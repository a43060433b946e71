package follow_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"

	"github.com/pachca-export/pachca-export/alerts"
	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/follow"
	"github.com/pachca-export/pachca-export/internal/failure"
	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/kafkasink"
	"github.com/pachca-export/pachca-export/sinks/shape"
	"github.com/pachca-export/pachca-export/state"
	"github.com/pachca-export/pachca-export/testkit/exporttest"
	"github.com/pachca-export/pachca-export/testkit/kafkatest"
	"github.com/pachca-export/pachca-export/testkit/logbuf"
	"github.com/pachca-export/pachca-export/verify"
)

// Tests that wait for the loop's wall-clock time (a UTC midnight a few
// seconds ahead, intervals, look-backs) call t.Parallel: the package
// waits far more than it computes (`make test` runs them -parallel 8).
// Those that bound how long something took (give_up_after, readiness within
// three intervals, a commit within give_up_after) or look for goroutines
// left behind (goleak.Find) stay sequential: go test runs them alone,
// before the parallel ones start.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"))
}

// clock is the wall clock moved so that a UTC midnight is a few seconds
// ahead: both the simulator and the loop read it.
type clock struct{ offset time.Duration }

func newClock(toMidnight time.Duration) clock {
	now := time.Now().UTC()
	midnight := now.Truncate(24 * time.Hour).Add(24 * time.Hour)
	return clock{offset: midnight.Add(-toMidnight).Sub(now)}
}

func (c clock) now() time.Time { return time.Now().Add(c.offset).UTC() }

func logger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.DiscardHandler)
}

func testConfig(t *testing.T, base string) *config.Config {
	dir := t.TempDir()
	cfg := config.Default()
	cfg.File = "test.yaml"
	cfg.Source.BaseURL, cfg.Source.Token, cfg.Source.Workspace = base, "sim-token", "acme"
	cfg.Source.RequestsPerSecond = 200
	cfg.Source.Timeout = 5 * time.Second
	cfg.State.Dir = filepath.Join(dir, "state")
	cfg.Period.Lag = time.Second
	cfg.Follow.Interval, cfg.Follow.Lookback = 500*time.Millisecond, 3*time.Second
	cfg.Sinks = []config.Sink{
		{Type: "ndjson", File: &config.FileSink{Dir: filepath.Join(dir, "ndjson"), Compression: "none"}},
	}
	require.NoError(t, cfg.Validate())
	return &cfg
}

// follower runs follow.Run in the background until stop is called.
type follower struct {
	stop func() error
}

func startFollow(t *testing.T, cfg *config.Config, c clock, o follow.Options) *follower {
	return startFollowLogging(t, cfg, c, o, logger(t))
}

// startFollowLogging is startFollow with the loop's logger.
func startFollowLogging(t *testing.T, cfg *config.Config, c clock, o follow.Options, log *slog.Logger) *follower {
	return startFollowAt(t, cfg, c.now, o, log)
}

// startFollowAt is startFollowLogging on the host clock now.
func startFollowAt(t *testing.T, cfg *config.Config, now func() time.Time, o follow.Options, log *slog.Logger) *follower {
	ctx, cancel := context.WithCancel(t.Context())
	var err error
	var wg sync.WaitGroup
	wg.Go(func() {
		err = follow.Run(ctx, pipeline.Options{Config: cfg, Logger: log, Now: now}, o)
	})
	return &follower{stop: func() error { cancel(); wg.Wait(); return err }}
}

// startSim starts a simulator on a loopback port; the caller closes it.
func startSim(t *testing.T, sc simulator.Config) (*simulator.Server, string) {
	t.Helper()
	sim, err := simulator.New(sc)
	require.NoError(t, err)
	base, err := sim.Start("127.0.0.1:0")
	require.NoError(t, err)
	return sim, base
}

// startLive starts a simulator of live events (and no others) on a clock
// with a UTC midnight toMidnight ahead; closed with the test.
func startLive(t *testing.T, toMidnight time.Duration, live simulator.Live) (clock, *simulator.Server, string) {
	t.Helper()
	c := newClock(toMidnight)
	sim, base := startLiveAt(t, c.offset, live)
	return c, sim, base
}

// startLiveAt starts a simulator of live events (and no others) whose
// clock is offset from this host's; closed with the test. Its events keep
// microseconds (Config.Micros), as an API over a database may: a cycle's
// end_time falls inside the millisecond of some event.
func startLiveAt(t *testing.T, offset time.Duration, live simulator.Live) (*simulator.Server, string) {
	t.Helper()
	sc := simulator.DefaultConfig()
	sc.Events, sc.ClockOffset, sc.Live, sc.Micros = 0, offset, live, true
	sim, base := startSim(t, sc)
	t.Cleanup(func() { sim.Close() })
	return sim, base
}

// waitSealed waits until the state of cfg records day as exported.
func waitSealed(t *testing.T, cfg *config.Config, day string) {
	t.Helper()
	v, err := state.Peek(cfg.State.Dir, pipeline.Identity(cfg))
	require.NoError(t, err)
	waitFor(t, "the day to be sealed", func() bool {
		ex, err := v.Exported()
		require.NoError(t, err)
		_, ok := ex[day]
		return ok
	})
}

// dayFiles lists the names in the directory of day in the file sink at dir, sorted.
func dayFiles(t *testing.T, dir, day string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "dt="+day))
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// patience bounds the waits for what the loop brings about: its cycles of
// a few events took 5 to 15 s each on a loaded 2-core machine under -race,
// and a wait of 15 s for a day's seal failed 2 runs in 3 there.
const patience = time.Minute

// waitFor polls cond until it holds, for at most patience.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// emptySim starts a simulator with no events, closed with the test.
func emptySim(t *testing.T) (*simulator.Server, string) {
	t.Helper()
	sc := simulator.DefaultConfig()
	sc.Events = 0
	sim, base := startSim(t, sc)
	t.Cleanup(func() { sim.Close() })
	return sim, base
}

// waitPast waits for a cycle to commit a watermark past at.
func waitPast(t *testing.T, cfg *config.Config, at time.Time, what string) {
	t.Helper()
	waitFor(t, what, func() bool { return position(t, cfg).Watermark.After(at) })
}

// withRules gives cfg the alert rules, checked.
func withRules(t *testing.T, cfg *config.Config, rules ...alerts.Rule) {
	t.Helper()
	cfg.Alerts = alerts.Config{Rules: rules}
	require.NoError(t, cfg.Validate())
}

// oneMessage checks that the API received one message, holding want.
func oneMessage(t *testing.T, sim *simulator.Server, want string) {
	t.Helper()
	msgs := sim.Stats().Messages
	require.Len(t, msgs, 1, "one finding, one message")
	require.Contains(t, msgs[0].Content, want)
}

func position(t *testing.T, cfg *config.Config) state.Follow {
	v, err := state.Peek(cfg.State.Dir, pipeline.Identity(cfg))
	require.NoError(t, err)
	f, _, err := v.Follow()
	require.NoError(t, err)
	return f
}

// TestFollowAcrossMidnight: live events, a share published late (within
// the look-back), and a few published after the look-back but before the
// seal, over a UTC midnight: every event lands once in the files, the day
// before midnight is sealed into one file and recorded as exported.
func TestFollowAcrossMidnight(t *testing.T) {
	t.Parallel()
	c, sim, base := startLive(t, 4*time.Second, simulator.Live{Rate: 60, LateShare: 0.3, MaxLate: 3 * time.Second})

	cfg := testConfig(t, base)
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "audit"))
	require.NoError(t, err)
	defer kc.Close()
	kcfg := kafkasink.Config{Brokers: kc.ListenAddrs(), Topic: "audit"}
	cfg.Sinks = append(cfg.Sinks, config.Sink{Type: "kafka", Kafka: &kcfg})
	kcfg.SetDefaults()
	lake := &config.FileSink{Dir: filepath.Join(t.TempDir(), "lake"), Keys: shape.Keys{Schema: shape.SchemaOCSF,
		Layout: shape.LayoutSecurityLake, SecurityLake: &shape.SecurityLake{AccountID: "123456789012", Region: "eu-central-1"}}}
	cfg.Sinks = append(cfg.Sinks, config.Sink{Type: "parquet", File: lake})
	require.NoError(t, cfg.Validate())
	start := c.now().Add(-time.Second)
	f := startFollow(t, cfg, c, follow.Options{From: start})
	midnight := c.now().Truncate(24 * time.Hour).Add(24 * time.Hour)
	yesterday := midnight.Add(-24 * time.Hour).Format(time.DateOnly)

	// After the look-back has passed midnight, an event of the day before
	// is published: only the seal can catch it.
	waitFor(t, "the look-back to pass midnight", func() bool {
		return c.now().After(midnight.Add(cfg.Period.Lag + cfg.Follow.Lookback - 500*time.Millisecond))
	})
	veryLate := sim.WriteEvent("user_login", midnight.Add(-2*time.Second), 0)
	waitSealed(t, cfg, yesterday)
	// Stop writing; let the loop catch up with everything published.
	sim.StopLive()
	stopped := c.now()
	waitFor(t, "the watermark to pass the last event", func() bool {
		return position(t, cfg).Watermark.After(stopped.Add(cfg.Follow.Lookback))
	})
	require.NoError(t, f.stop())

	wm := position(t, cfg).Watermark
	want := exporttest.Expected(sim, start.Truncate(24*time.Hour), wm)
	require.Greater(t, len(want), 300)
	got := exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir)
	exporttest.Compare(t, want, got, "acme")
	require.Contains(t, got, veryLate.ID)

	// Without a crash, Kafka gets every event once: the look-back and the
	// seal never publish an event a cycle published.
	published := map[string]int{}
	for _, r := range kafkatest.Consume(t, kc.ListenAddrs(), "audit") {
		published[string(r.Key)]++
	}
	for _, ev := range want {
		if !ev.CreatedAt.Before(start) {
			require.Equal(t, 1, published[ev.ID], "event %s published %d times", ev.ID, published[ev.ID])
		}
	}
	for id, n := range published {
		require.Equal(t, 1, n, "event %s published %d times", id, n)
	}

	require.Equal(t, []string{"_manifest.json", "pachca-audit-" + yesterday + ".ndjson"}, dayFiles(t, cfg.Sinks[0].File.Dir, yesterday),
		"the sealed day is one file")

	// The Security Lake layout: the sealed day is one file per class, the
	// cycle files gone, every event of the day in them.
	b, err := os.ReadFile(filepath.Join(lake.Dir, "pachca-export", "dt="+yesterday, sinks.ManifestName))
	require.NoError(t, err)
	m, err := sinks.DecodeManifest(b)
	require.NoError(t, err)
	var sealed []string
	for _, e := range m.Files {
		sealed = append(sealed, e.Name)
	}
	var onDisk []string
	rows := int64(0)
	eventDay := "eventDay=" + strings.ReplaceAll(yesterday, "-", "")
	require.NoError(t, filepath.WalkDir(filepath.Join(lake.Dir, "ext"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.Contains(p, eventDay) {
			return err
		}
		rel, _ := filepath.Rel(lake.Dir, p)
		onDisk = append(onDisk, filepath.ToSlash(rel))
		require.True(t, strings.HasSuffix(p, "/pachca-audit-"+yesterday+".parquet"), "only day files: %s", p)
		rdr, err := file.OpenParquetFile(p, false)
		require.NoError(t, err)
		rows += rdr.NumRows()
		return rdr.Close()
	}))
	require.ElementsMatch(t, sealed, onDisk)
	inDay := 0
	for _, l := range got {
		if l.Dir == "dt="+yesterday {
			inDay++
		}
	}
	require.EqualValues(t, inDay, rows)
	require.EqualValues(t, inDay, m.Records)
	// The state records the day with every event its files hold, as a run
	// does: what verify compares the manifests with.
	v, err := state.Peek(cfg.State.Dir, pipeline.Identity(cfg))
	require.NoError(t, err)
	ex, err := v.Exported()
	require.NoError(t, err)
	require.EqualValues(t, inDay, ex[yesterday].Records)
}

// TestFollowBurstAcrossCycles: failed logins split between two cycles are
// one burst, and one message.
func TestFollowBurstAcrossCycles(t *testing.T) {
	t.Parallel()
	c := clock{}
	sim, base := emptySim(t)
	cfg := testConfig(t, base)
	withRules(t, cfg, alerts.Rule{Name: "Suspicious logins", Kind: alerts.KindThreshold,
		EventKeys: []string{"user_2fa_fail"}, Threshold: 5, Window: 10 * time.Minute, Recipients: []string{"10001"}})
	f := startFollow(t, cfg, c, follow.Options{})

	burst := func(n int) {
		for range n {
			sim.WriteEvent("user_2fa_fail", c.now(), 20001)
			time.Sleep(20 * time.Millisecond)
		}
	}
	burst(3)
	first := c.now()
	waitPast(t, cfg, first, "a cycle to deliver the first half")
	require.Empty(t, sim.Stats().Messages, "three failures are no burst yet")
	burst(3)
	second := c.now()
	waitPast(t, cfg, second.Add(cfg.Follow.Interval), "a cycle to deliver the second half")
	require.NoError(t, f.stop())
	oneMessage(t, sim, "6 user_2fa_fail")

	// A restart loads what the rules saw: the burst is not reported again.
	f = startFollow(t, cfg, c, follow.Options{})
	burst(1)
	third := c.now()
	waitPast(t, cfg, third.Add(cfg.Follow.Interval), "a cycle after the restart")
	require.NoError(t, f.stop())
	require.Len(t, sim.Stats().Messages, 1, "the burst grew, but is the same finding")
}

// TestFollowAlertEventsSavedBeforeCommit: a cycle whose rules' events
// cannot be saved (alerts-recent.json a directory, as a process killed
// between the two writes leaves them unsaved) does not commit: after a
// restart its events still count for the burst they start (was: the
// watermark moved first, and the restarted loop never saw them again, so
// the burst they began went unreported).
func TestFollowAlertEventsSavedBeforeCommit(t *testing.T) {
	t.Parallel()
	c := clock{}
	sim, base := emptySim(t)
	cfg := testConfig(t, base)
	withRules(t, cfg, alerts.Rule{Name: "Suspicious logins", Kind: alerts.KindThreshold,
		EventKeys: []string{"user_2fa_fail"}, Threshold: 5, Window: 10 * time.Minute, Recipients: []string{"10001"}})
	v, err := state.Peek(cfg.State.Dir, pipeline.Identity(cfg))
	require.NoError(t, err)
	recent := filepath.Join(v.Dir(), "alerts-recent.json")

	// n events created a millisecond apart, written at once: a cycle
	// almost always reads all or none of them (written 20 ms apart, a
	// cycle between two sent the message of 5 in a run on a loaded
	// machine, and the burst grown to 6 is not sent again).
	burst := func(n int, ago time.Duration) {
		at := c.now().Add(-ago)
		for i := range n {
			sim.WriteEvent("user_2fa_fail", at.Add(time.Duration(i)*time.Millisecond), 20001)
		}
	}
	burst(3, 2*cfg.Period.Lag) // read by the first cycle
	// From a minute back: the first cycle, which fails, reads it all.
	f := startFollow(t, cfg, c, follow.Options{From: c.now().Add(-time.Minute), Ready: func(string) {
		// Loaded, no cycle yet: saving will fail.
		require.NoError(t, os.MkdirAll(filepath.Join(recent, "x"), 0o700))
	}})
	waitFor(t, "a cycle to deliver the first half", func() bool {
		return len(exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir)) == 3
	})
	_ = f.stop() // its cycles fail: the rules' events cannot be saved
	require.NoError(t, os.RemoveAll(recent))

	// Written before the loop starts: a cycle between two writes read two
	// of them in a run under load, and the message of 5 went out before
	// the sixth.
	burst(3, 0)
	second := c.now()
	f = startFollow(t, cfg, c, follow.Options{})
	waitPast(t, cfg, second.Add(cfg.Follow.Interval), "a cycle to deliver the second half")
	require.NoError(t, f.stop())
	oneMessage(t, sim, "6 user_2fa_fail")
}

// TestFollowRuleWindowOverADay: a threshold rule whose window is longer
// than a day sees the events of its whole window, across the days the loop
// follows and a restart (was: events more than a day behind the watermark
// were forgotten, so a burst spread over more than a day never fired).
func TestFollowRuleWindowOverADay(t *testing.T) {
	t.Parallel()
	sim, base := emptySim(t)
	cfg := testConfig(t, base)
	withRules(t, cfg, alerts.Rule{Name: "Slow guessing", Kind: alerts.KindThreshold,
		EventKeys: []string{"user_2fa_fail"}, Threshold: 3, Window: 48 * time.Hour, Recipients: []string{"10001"}})

	before := clock{offset: -30 * time.Hour}
	f := startFollow(t, cfg, before, follow.Options{})
	sim.WriteEvent("user_2fa_fail", before.now(), 20001)
	sim.WriteEvent("user_2fa_fail", before.now().Add(time.Millisecond), 20001)
	first := before.now()
	waitPast(t, cfg, first, "a cycle to deliver the first two")
	require.NoError(t, f.stop())

	now := clock{}
	f = startFollow(t, cfg, now, follow.Options{})
	sim.WriteEvent("user_2fa_fail", now.now(), 20001)
	third := now.now()
	waitPast(t, cfg, third.Add(cfg.Follow.Interval), "a cycle to deliver the third, 30 hours later")
	require.NoError(t, f.stop())
	oneMessage(t, sim, "3 user_2fa_fail")
}

// TestFollowStopsOnPermanentFailure: a token the API rejects ends the loop
// at once with the API's message (the supervisor restarts it and someone is
// told), instead of retrying for ever.
func TestFollowStopsOnPermanentFailure(t *testing.T) {
	_, base := emptySim(t)
	cfg := testConfig(t, base)
	cfg.Source.Token = simulator.TokenNoScope
	start := time.Now()
	err := follow.Run(t.Context(), pipeline.Options{Config: cfg, Logger: logger(t)}, follow.Options{})
	require.ErrorContains(t, err, "audit_events:read")
	require.True(t, failure.IsUsage(err), "a configuration error, exit 2, which a supervisor does not restart (was: exit 1): %v", err)
	require.Less(t, time.Since(start), 5*time.Second, "at once, not after give_up_after")
}

// TestFollowStopsWhenTheTokenIsRevoked: a token revoked while the loop
// runs (a later cycle's requests answered 401) ends the loop at once as a
// configuration error, exit 2, which the systemd unit and the Deployment
// do not restart: restarted after exit 1 (was), it sent the rejected token
// again every 30 s, and the API may restrict a token that keeps sending.
// The watermark stays where the last committed cycle left it; started
// again with a token the API accepts, the loop goes on from there and
// delivers every event once.
func TestFollowStopsWhenTheTokenIsRevoked(t *testing.T) {
	t.Parallel()
	c, sim, _ := startLive(t, time.Hour, simulator.Live{Rate: 20})
	var revoked atomic.Bool
	var refused atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if revoked.Load() {
			refused.Add(1)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":"invalid_token","error_description":"The access token is invalid"}`))
			return
		}
		sim.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)
	cfg := testConfig(t, proxy.URL+"/api/shared/v1")
	cfg.Follow.GiveUpAfter = time.Hour // a transient failure would not end the loop within the test
	require.NoError(t, cfg.Validate())
	from := c.now().Add(-2 * time.Second)
	done := make(chan error, 1)
	go func() {
		done <- follow.Run(t.Context(), pipeline.Options{Config: cfg, Logger: logger(t), Now: c.now}, follow.Options{From: from})
	}()
	waitFor(t, "two committed cycles", func() bool { return position(t, cfg).Seq >= 2 })
	revoked.Store(true)
	var err error
	select {
	case err = <-done:
	case <-time.After(patience):
		t.Fatal("the loop went on with a revoked token")
	}
	require.ErrorContains(t, err, "the API rejected the token (401 invalid_token: The access token is invalid): check the token (source.token, source.token_file or --token)")
	require.True(t, failure.IsUsage(err), "exit 2: %v", err)
	require.NotContains(t, err.Error(), cfg.Source.Token)
	require.LessOrEqual(t, refused.Load(), int64(2), "no retry of a rejected token (one request; the token's owner asked once)")
	wm := position(t, cfg).Watermark

	revoked.Store(false) // a new token
	f := startFollow(t, cfg, c, follow.Options{})
	waitPast(t, cfg, wm.Add(2*time.Second), "the loop to go on past the revoked cycle")
	require.NoError(t, f.stop())
	got := exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir) // fails on an event twice
	end := position(t, cfg).Watermark
	want := 0
	for _, e := range sim.Events() {
		if !e.CreatedAt.Before(from) && e.CreatedAt.Before(end) && !slices.Contains(cfg.Transform.DropEventKeys, e.Key) {
			want++
			require.Contains(t, got, e.ID)
		}
	}
	require.Positive(t, want)
}

// TestFollowStopsWhenTheStateIsRemoved: a state directory removed under a
// running loop (by hand, by a cleaner of temporary files) ends it at once,
// exit 1, with nothing written into the directory again (was: the loop
// recreated a state without its lock, which a second loop then took while
// the first ran on, and without the record of the exported days: each
// day since its start was sealed again, read from the API and sent to the
// streams once more).
func TestFollowStopsWhenTheStateIsRemoved(t *testing.T) {
	sim, base := startSim(t, simulator.DefaultConfig())
	t.Cleanup(func() { sim.Close() })
	cfg := testConfig(t, base)
	today := time.Now().UTC().Truncate(24 * time.Hour)
	done := make(chan error, 1)
	go func() {
		done <- follow.Run(t.Context(), pipeline.Options{Config: cfg, Logger: logger(t)},
			follow.Options{From: today.AddDate(0, 0, -2)})
	}()
	waitSealed(t, cfg, today.AddDate(0, 0, -1).Format(time.DateOnly))
	// The loop may be writing its position meanwhile (the seal's last
	// writes): as with rm -rf, a file made during the removal is removed
	// by the next try (was: "directory not empty", 4 runs in 15).
	waitFor(t, "the state removed", func() bool { return os.RemoveAll(cfg.State.Dir) == nil })
	var err error
	select {
	case err = <-done:
	case <-time.After(patience):
		t.Fatal("the loop went on in a removed state")
	}
	require.ErrorContains(t, err, "was removed or replaced while this process used it")
	require.True(t, failure.IsPermanent(err), "%v", err)
	for _, name := range []string{"follow.json", "exported.json", "lock"} {
		found, err := filepath.Glob(filepath.Join(cfg.State.Dir, "*", name))
		require.NoError(t, err)
		require.Empty(t, found, "written again after the removal")
	}
}

// TestFollowGivesUp: an API that stays unreachable is retried while the
// watermark holds, then, past follow.give_up_after, the loop ends with the
// cause.
func TestFollowGivesUp(t *testing.T) {
	t.Parallel()
	sc := simulator.DefaultConfig()
	sc.Events = 0
	sim, base := startSim(t, sc)
	cfg := testConfig(t, base)
	cfg.Source.MaxRetries = 0
	cfg.Follow.Interval, cfg.Follow.GiveUpAfter = 200*time.Millisecond, 2*time.Second
	var logs logbuf.Buffer
	done := make(chan error, 1)
	go func() {
		done <- follow.Run(t.Context(), pipeline.Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(&logs, nil))}, follow.Options{})
	}()
	waitFor(t, "a committed cycle", func() bool { return position(t, cfg).Seq >= 1 })
	require.NoError(t, sim.Close()) // the API goes away
	// A cycle in flight may still commit; once one has failed (or the loop
	// has given up), none does: cycles run one after another (was: a fixed
	// 500 ms, after which a loaded machine's cycle in flight still moved
	// the watermark).
	waitFor(t, "a failed cycle", func() bool {
		return strings.Contains(logs.String(), "follow: cycle failed") || len(done) > 0
	})
	wm := position(t, cfg).Watermark
	var err error
	select {
	case err = <-done:
	case <-time.After(patience):
		t.Fatal("the loop did not give up")
	}
	require.ErrorContains(t, err, "cycles have failed for")
	require.ErrorContains(t, err, "connection refused")
	require.False(t, failure.IsUsage(err))
	require.Equal(t, wm, position(t, cfg).Watermark, "the watermark held while cycles failed")
}

// TestFollowTriesAMissingHostAgain: a host name that does not exist
// (NXDOMAIN) fails a cycle at its first request, as a TLS failure does,
// and the loop tries again each cycle until give_up_after, not stopping at
// once: a name can be missing for a while (a VPN or split DNS not up yet).
func TestFollowTriesAMissingHostAgain(t *testing.T) {
	cfg := testConfig(t, "https://api.pachca-typo.invalid/api/shared/v1")
	cfg.Follow.Interval, cfg.Follow.GiveUpAfter = 200*time.Millisecond, 2*time.Second
	var dials atomic.Int64
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		host, _, _ := net.SplitHostPort(addr)
		return nil, &net.OpError{Op: "dial", Net: network, Err: &net.DNSError{Err: "no such host", Name: host, Server: "127.0.0.53:53", IsNotFound: true}}
	}}
	var logs logbuf.Buffer
	start := time.Now()
	err := follow.Run(t.Context(), pipeline.Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(&logs, nil)), HTTPClient: &http.Client{Transport: tr}}, follow.Options{})
	require.ErrorContains(t, err, "cycles have failed for")
	require.ErrorContains(t, err, "DNS: the host name api.pachca-typo.invalid of source.base_url does not exist (no such host, answered 127.0.0.53:53): check the host name in source.base_url")
	require.False(t, failure.IsPermanent(err), "exit 1, as for TLS: %v", err)
	require.GreaterOrEqual(t, time.Since(start), cfg.Follow.GiveUpAfter, "tried until give_up_after")
	cycles := strings.Count(logs.String(), "follow: cycle failed") + 1 // and the last, which gave up
	require.GreaterOrEqual(t, cycles, 3, "each cycle tried again")
	require.LessOrEqual(t, dials.Load(), int64(2*cycles), "one request a cycle, and the token owner's: none retried within a cycle")
}

// TestFollowOutageSaysOnce: a loop started while the API is away says so
// through its failing cycles, not once more per cycle with a warning that
// the API "did not tell" the token's owner (was: one such warning per
// cycle, 18 in a 30-minute run of restarts).
func TestFollowOutageSaysOnce(t *testing.T) {
	sim, base := startSim(t, simulator.DefaultConfig())
	require.NoError(t, sim.Close()) // the API is away from the start
	cfg := testConfig(t, base)
	cfg.Source.MaxRetries = 0
	cfg.Follow.Interval, cfg.Follow.GiveUpAfter = 200*time.Millisecond, 2*time.Second
	var logs logbuf.Buffer
	err := follow.Run(t.Context(), pipeline.Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(&logs, nil))}, follow.Options{})
	require.ErrorContains(t, err, "connection refused")
	require.GreaterOrEqual(t, strings.Count(logs.String(), "follow: cycle failed"), 2, "the outage is in the log")
	require.NotContains(t, logs.String(), "token's owner")
}

// TestFollowLookbackRaisedAfterSeal: a day sealed under a short look-back
// is not read again when a restart raises follow.lookback past midnight:
// the sealed day keeps its one file, and no request covers it.
func TestFollowLookbackRaisedAfterSeal(t *testing.T) {
	t.Parallel()
	c, sim, base := startLive(t, 3*time.Second, simulator.Live{Rate: 60})
	cfg := testConfig(t, base)
	cfg.Follow.Lookback = 500 * time.Millisecond
	midnight := c.now().Truncate(24 * time.Hour).Add(24 * time.Hour)
	yesterday := midnight.Add(-24 * time.Hour).Format(time.DateOnly)
	f := startFollow(t, cfg, c, follow.Options{From: c.now().Add(-time.Second)})
	waitSealed(t, cfg, yesterday)
	require.NoError(t, f.stop())

	// Restarted with a look-back that reaches back over midnight.
	cfg.Follow.Lookback = time.Hour
	seq := position(t, cfg).Seq
	before := len(sim.Stats().Log)
	f = startFollow(t, cfg, c, follow.Options{})
	waitFor(t, "two cycles after the restart", func() bool { return position(t, cfg).Seq >= seq+2 })
	require.NoError(t, f.stop())
	for _, r := range sim.Stats().Log[before:] {
		require.False(t, r.Start.Before(midnight), "a request for the sealed day: %+v", r)
	}
	require.Equal(t, []string{"_manifest.json", "pachca-audit-" + yesterday + ".ndjson"}, dayFiles(t, cfg.Sinks[0].File.Dir, yesterday),
		"the sealed day is one file")
}

// TestFollowSkipsExportedDayInLookback: a look-back longer than a day
// spans a day a run exported whole: the cycles read the days around it,
// never it (no request, no cycle file beside its day file).
func TestFollowSkipsExportedDayInLookback(t *testing.T) {
	t.Parallel()
	sc := simulator.DefaultConfig()
	sim, base := startSim(t, sc)
	defer sim.Close()
	cfg := testConfig(t, base)
	cfg.Follow.Lookback = 49 * time.Hour
	today := time.Now().UTC().Truncate(24 * time.Hour)
	yesterday := today.Add(-24 * time.Hour)
	_, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: logger(t)},
		pipeline.Range{From: yesterday, To: today}, false)
	require.NoError(t, err)
	files := func() []string { return dayFiles(t, cfg.Sinks[0].File.Dir, yesterday.Format(time.DateOnly)) }
	had := files()

	before := len(sim.Stats().Log)
	f := startFollow(t, cfg, clock{}, follow.Options{From: yesterday.Add(-12 * time.Hour)})
	waitFor(t, "two cycles", func() bool { return position(t, cfg).Seq >= 2 })
	require.NoError(t, f.stop())
	asked := false
	for _, r := range sim.Stats().Log[before:] {
		require.False(t, !r.Start.Before(yesterday) && r.Start.Before(today), "a request for the exported day: %+v", r)
		asked = asked || r.Start.Before(yesterday)
	}
	require.True(t, asked, "the day before it is read")
	require.Equal(t, had, files())
}

// TestFollowFromPastRetention: a --from earlier than the API's retention
// starts at the retention's edge, with a warning, as run does: no day the
// API no longer holds is fetched, written or sealed as exported.
func TestFollowFromPastRetention(t *testing.T) {
	t.Parallel()
	sim, base := emptySim(t)
	cfg := testConfig(t, base)
	var logs logbuf.Buffer
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	now := time.Now().UTC()
	go func() {
		done <- follow.Run(ctx, pipeline.Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(&logs, nil))},
			follow.Options{From: now.Add(-100 * 24 * time.Hour)})
	}()
	// The second: the first of a process seals nothing.
	waitFor(t, "a second committed cycle", func() bool { return position(t, cfg).Seq >= 2 })
	cancel()
	require.NoError(t, <-done)

	oldest := now.Add(-cfg.Period.Retention)
	require.True(t, strings.Contains(logs.String(), "retention"), "a warning names the retention")
	require.False(t, position(t, cfg).Start.Before(oldest.Add(-time.Minute)), "the start is clipped to the retention")
	v, err := state.Peek(cfg.State.Dir, pipeline.Identity(cfg))
	require.NoError(t, err)
	ex, err := v.Exported()
	require.NoError(t, err)
	require.NotEmpty(t, ex, "the days within the retention are sealed")
	for d := range ex {
		day, err := time.Parse(time.DateOnly, d)
		require.NoError(t, err)
		require.True(t, day.Add(24*time.Hour).After(oldest), "%s, past the retention, recorded as exported", d)
	}
	entries, err := os.ReadDir(cfg.Sinks[0].File.Dir)
	require.NoError(t, err)
	for _, e := range entries {
		if day, err := time.Parse(time.DateOnly, strings.TrimPrefix(e.Name(), "dt=")); err == nil {
			require.True(t, day.Add(24*time.Hour).After(oldest), "%s, past the retention, written", e.Name())
		}
	}
	for _, r := range sim.Stats().Log {
		require.True(t, r.End.After(oldest), "a request past the retention: %+v", r)
	}
}

// TestFollowGivesUpInTime: with the API refusing connections and retries
// that would take minutes per request (source.max_retries), the loop ends
// about give_up_after after the first failing cycle began, not after
// several cycles of retries.
func TestFollowGivesUpInTime(t *testing.T) {
	sc := simulator.DefaultConfig()
	sc.Events = 0
	sim, base := startSim(t, sc)
	cfg := testConfig(t, base)
	cfg.Source.MaxRetries = 10 // about 85 s of backing off per request
	cfg.Follow.Interval, cfg.Follow.GiveUpAfter = 200*time.Millisecond, 2*time.Second
	done := make(chan error, 1)
	go func() {
		done <- follow.Run(t.Context(), pipeline.Options{Config: cfg, Logger: logger(t)}, follow.Options{})
	}()
	waitFor(t, "a committed cycle", func() bool { return position(t, cfg).Seq >= 1 })
	require.NoError(t, sim.Close())
	closed := time.Now()
	var err error
	select {
	case err = <-done:
	case <-time.After(cfg.Follow.GiveUpAfter + 4*time.Second):
		t.Fatal("the loop did not give up within give_up_after")
	}
	require.ErrorContains(t, err, "cycles have failed for")
	require.ErrorContains(t, err, "connection refused")
	require.Less(t, time.Since(closed), cfg.Follow.GiveUpAfter+2*time.Second)
	require.GreaterOrEqual(t, time.Since(closed), cfg.Follow.GiveUpAfter-cfg.Follow.Interval, "not before give_up_after")
}

// TestFollowReadinessDropsWhileRetrying: /readyz is 200 after a commit and
// 503 once no cycle has committed for three intervals, even while the
// current cycle is still retrying an API that went away.
func TestFollowReadinessDropsWhileRetrying(t *testing.T) {
	sc := simulator.DefaultConfig()
	sc.Events = 0
	sim, base := startSim(t, sc)
	cfg := testConfig(t, base)
	cfg.Source.MaxRetries = 10 // a cycle retries for a minute or more
	cfg.Follow.Interval, cfg.Follow.GiveUpAfter = 200*time.Millisecond, time.Hour
	addr := make(chan string, 1)
	f := startFollow(t, cfg, clock{}, follow.Options{Listen: "127.0.0.1:0", Ready: func(a string) { addr <- a }})
	readyz := "http://" + <-addr + "/readyz"
	status := func() int {
		resp, err := http.Get(readyz)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	waitFor(t, "readiness", func() bool { return status() == http.StatusOK })
	require.NoError(t, sim.Close())
	// A cycle in flight may still commit after the close: the three
	// intervals run from the last commit seen (was: from the close, which
	// a loaded machine's late commit made look slow).
	seq, committed := position(t, cfg).Seq, time.Now()
	waitFor(t, "readiness to drop", func() bool {
		down := status() == http.StatusServiceUnavailable
		if s := position(t, cfg).Seq; s != seq {
			seq, committed = s, time.Now()
		}
		return down
	})
	require.Less(t, time.Since(committed), 3*cfg.Follow.Interval+2*time.Second, "within three intervals of the last commit")
	require.Equal(t, http.StatusServiceUnavailable, status(), "and it stays down")
	require.NoError(t, f.stop())
}

// TestFollowCountsARedoneCycleOnce: a cycle over midnight whose new day
// fails after the day before's file was written is redone whole, that file
// written again with the same bytes and kept (was: renamed over by its
// equal at each try, a new inode); events_total counts its events once, as
// the files hold them (was: once more at each failed try).
func TestFollowCountsARedoneCycleOnce(t *testing.T) {
	t.Parallel()
	c, sim, base := startLive(t, 2*time.Second, simulator.Live{Rate: 60})
	cfg := testConfig(t, base)
	dir := cfg.Sinks[0].File.Dir
	midnight := c.now().Truncate(24 * time.Hour).Add(24 * time.Hour)
	// The new day's directory cannot be made: its partition fails, after
	// the day before's committed.
	block := filepath.Join(dir, "dt="+midnight.Format(time.DateOnly))
	require.NoError(t, os.MkdirAll(dir, 0o750))
	require.NoError(t, os.WriteFile(block, nil, 0o600))
	addr := make(chan string, 1)
	f := startFollow(t, cfg, c, follow.Options{From: c.now().Add(-time.Second), Listen: "127.0.0.1:0",
		Ready: func(a string) { addr <- a }})
	metrics := "http://" + <-addr + "/metrics"
	waitFor(t, "a cycle over midnight failing", func() bool {
		return metricValue(t, metrics, "pachca_export_follow_cycles_total", "result", "failure") >= 1
	})
	// The day before's file of the cycle, written at each try with the
	// same bytes, stays the file it was: a log forwarder that tracks files
	// by inode (Filebeat, Fluent Bit) reads it once.
	pending, err := filepath.Glob(filepath.Join(dir, "dt="+midnight.Add(-24*time.Hour).Format(time.DateOnly),
		"pachca-audit-*-"+midnight.Format("20060102T150405.000Z")+".ndjson"))
	require.NoError(t, err)
	require.Len(t, pending, 1, "the cycle's file of the day before")
	first, err := os.Stat(pending[0])
	require.NoError(t, err)
	waitFor(t, "cycles over midnight failing", func() bool {
		return metricValue(t, metrics, "pachca_export_follow_cycles_total", "result", "failure") >= 3
	})
	again, err := os.Stat(pending[0])
	require.NoError(t, err)
	require.True(t, os.SameFile(first, again), "the redone cycle's file kept, not replaced by its equal")
	require.NoError(t, os.Remove(block))
	sim.StopLive()
	stopped := c.now()
	waitFor(t, "the watermark to pass the last event", func() bool {
		return position(t, cfg).Watermark.After(stopped.Add(cfg.Follow.Lookback))
	})
	resp, err := http.Get(metrics)
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.NoError(t, f.stop())

	files := len(exporttest.ReadNDJSON(t, dir))
	require.Positive(t, files)
	events := 0.0
	for _, m := range regexp.MustCompile(`(?m)^pachca_export_events_total\{[^}]*\} (\S+)$`).FindAllSubmatch(b, -1) {
		n, err := strconv.ParseFloat(string(m[1]), 64)
		require.NoError(t, err)
		events += n
	}
	require.Equal(t, float64(files), events, "events_total")
}

// TestFollowRunGauges: the gauges of the run alerts follow the cycles: the
// last success is when the last cycle committed, last_run_success is 1
// after a committed cycle and 0 after a failed one.
func TestFollowRunGauges(t *testing.T) {
	sc := simulator.DefaultConfig()
	sc.Events = 0
	sim, base := startSim(t, sc)
	cfg := testConfig(t, base)
	cfg.Source.MaxRetries = 0
	cfg.Follow.Interval, cfg.Follow.GiveUpAfter = 200*time.Millisecond, time.Hour
	addr := make(chan string, 1)
	f := startFollow(t, cfg, clock{}, follow.Options{Listen: "127.0.0.1:0", Ready: func(a string) { addr <- a }})
	metrics := "http://" + <-addr + "/metrics"
	gauge := func(name string) float64 { return metricValue(t, metrics, name) }
	waitFor(t, "a committed cycle", func() bool { return position(t, cfg).Seq >= 1 })
	waitFor(t, "the gauges of a success", func() bool {
		return gauge("pachca_export_last_run_success") == 1
	})
	success := gauge("pachca_export_last_success_timestamp_seconds")
	require.InDelta(t, float64(time.Now().UnixMilli())/1000, success, 5, "the time the last cycle committed")

	require.NoError(t, sim.Close())
	waitFor(t, "the gauges of a failure", func() bool {
		return gauge("pachca_export_last_run_success") == 0
	})
	require.InDelta(t, success, gauge("pachca_export_last_success_timestamp_seconds"), 1, "a failure keeps the last success")
	require.NoError(t, f.stop())
}

// TestFollowSealOfAShrunkDay: the API stops returning some events of a day
// the cycles delivered, before the day is sealed. The seal does not replace
// the cycle files with fewer events, nor stop the loop: it keeps them as
// they are, warns, records the day and goes on.
func TestFollowSealOfAShrunkDay(t *testing.T) {
	t.Parallel()
	c, sim, _ := startLive(t, 3*time.Second, simulator.Live{Rate: 60})
	midnight := c.now().Truncate(24 * time.Hour).Add(24 * time.Hour)
	yesterday := midnight.Add(-24 * time.Hour).Format(time.DateOnly)
	var lose atomic.Bool // then the API returns nothing of the day's first half second
	proxy := rewritingProxy(t, sim.Handler(), func(r *http.Request, code int, body []byte) []byte {
		if lose.Load() && code == 200 {
			var page map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(body, &page))
			var evs []map[string]any
			require.NoError(t, json.Unmarshal(page["data"], &evs))
			evs = slices.DeleteFunc(evs, func(ev map[string]any) bool {
				at, _ := time.Parse(time.RFC3339Nano, ev["created_at"].(string))
				return at.Before(midnight) && !at.Before(midnight.Add(-3*time.Second+500*time.Millisecond))
			})
			page["data"], _ = json.Marshal(evs)
			body, _ = json.Marshal(page)
		}
		return body
	})
	cfg := testConfig(t, proxy.URL+"/api/shared/v1")
	f := startFollow(t, cfg, c, follow.Options{From: c.now().Add(-time.Second)})
	waitFor(t, "the cycles to pass midnight", func() bool { return position(t, cfg).Watermark.After(midnight) })
	lose.Store(true)
	waitSealed(t, cfg, yesterday)
	seq := position(t, cfg).Seq
	waitFor(t, "a cycle after the seal", func() bool { return position(t, cfg).Seq > seq })
	require.NoError(t, f.stop(), "the loop went on")

	require.Greater(t, len(dayFiles(t, cfg.Sinks[0].File.Dir, yesterday)), 2, "the cycle files are kept, not compacted into one file with fewer events")
	got := exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir) // fails on an event twice
	want := exporttest.Expected(sim, midnight.Add(-3*time.Second), midnight)
	inDay := 0
	for _, l := range got {
		if l.Dir == "dt="+yesterday {
			inDay++
		}
	}
	require.Equal(t, len(want), inDay, "every event the cycles delivered is still there")
}

// TestFollowCountsOnce: the API returns, among live events, an event that
// cannot be parsed, two different events with one id, and an event of a
// key drop_event_keys names. Every cycle whose look-back covers them, and
// the seal of their day, read them again: each dead letter goes to the
// dead-letter files once, and each is counted once.
func TestFollowCountsOnce(t *testing.T) {
	t.Parallel()
	c, sim, _ := startLive(t, 3*time.Second, simulator.Live{Rate: 5})
	midnight := c.now().Truncate(24 * time.Hour).Add(24 * time.Hour)
	yesterday := midnight.Add(-24 * time.Hour).Format(time.DateOnly)
	at := midnight.Add(-1500 * time.Millisecond)
	stamp := func(d time.Duration) string { return at.Add(d).Format("2006-01-02T15:04:05.000Z") }
	extra := []string{
		`{"id":"twin","created_at":"` + stamp(0) + `","event_key":"user_login","actor_id":"1","actor_type":"user","entity_id":"1","entity_type":"user","details":{}}`,
		`{"id":"twin","created_at":"` + stamp(time.Millisecond) + `","event_key":"user_role_changed","actor_id":"666","actor_type":"user","entity_id":"1","entity_type":"user","details":{}}`,
		`{"id":"unreadable","created_at":"` + stamp(2*time.Millisecond) + `x","event_key":"user_login"}`,
		`{"id":"dropped","created_at":"` + stamp(3*time.Millisecond) + `","event_key":"test_noise","actor_id":"1","actor_type":"user","entity_id":"1","entity_type":"user","details":{}}`,
	}
	proxy := rewritingProxy(t, sim.Handler(), func(r *http.Request, code int, body []byte) []byte {
		q := r.URL.Query()
		from, _ := time.Parse(time.RFC3339Nano, q.Get("start_time"))
		to, _ := time.Parse(time.RFC3339Nano, q.Get("end_time"))
		if code == 200 && q.Get("cursor") == "" && !at.Before(from) && at.Before(to) {
			// One page: at 5 events a second, a look-back holds fewer than a page.
			var page map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(body, &page))
			var evs []json.RawMessage
			require.NoError(t, json.Unmarshal(page["data"], &evs))
			for _, e := range extra {
				evs = append(evs, json.RawMessage(e))
			}
			createdAt := func(e json.RawMessage) string {
				var v struct {
					CreatedAt string `json:"created_at"`
				}
				json.Unmarshal(e, &v)
				return v.CreatedAt
			}
			slices.SortStableFunc(evs, func(a, b json.RawMessage) int { return strings.Compare(createdAt(b), createdAt(a)) })
			page["data"], _ = json.Marshal(evs)
			body, _ = json.Marshal(page)
		}
		return body
	})
	cfg := testConfig(t, proxy.URL+"/api/shared/v1")
	cfg.Output.DeadLetterDir = filepath.Join(t.TempDir(), "dead")
	cfg.Transform.DropEventKeys = []string{"test_noise"}
	addr := make(chan string, 1)
	f := startFollow(t, cfg, c, follow.Options{From: c.now().Add(-time.Second), Listen: "127.0.0.1:0", Ready: func(a string) { addr <- a }})
	metrics := "http://" + <-addr + "/metrics"
	waitSealed(t, cfg, yesterday)
	seq := position(t, cfg).Seq
	waitFor(t, "a cycle after the seal", func() bool { return position(t, cfg).Seq > seq })
	resp, err := http.Get(metrics)
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.NoError(t, f.stop())

	dead := deadLetters(t, cfg.Output.DeadLetterDir)
	require.Len(t, dead, 2, "each dead letter once, however often the look-back and the seal read it: %q", dead)
	require.Regexp(t, `(?m)^pachca_export_dead_letters_total\{workspace="acme"\} 2$`, string(b), "counted once each")
	require.Regexp(t, `(?m)^pachca_export_dropped_events_total\{workspace="acme"\} 1$`, string(b), "a dropped event counted once, however often it is read")
	got := exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir) // fails on an event twice
	require.Contains(t, got, "twin", "one of the two events with the id is delivered")
	mb, err := os.ReadFile(filepath.Join(cfg.Sinks[0].File.Dir, "dt="+yesterday, sinks.ManifestName))
	require.NoError(t, err)
	m, err := sinks.DecodeManifest(mb)
	require.NoError(t, err)
	require.Len(t, m.Files, 1, "sealed")
	require.EqualValues(t, 2, m.DeadLetters, "the sealed day's manifest counts the day's dead letters, found by cycles before the seal")
	require.EqualValues(t, 1, m.Dropped)
}

// TestFollowDeliveredIDTwin: a cycle delivered an event; later answers
// hold, besides it, another event with its id and other content (created
// later the same day). The other event goes to the dead letters once, and
// the seal's day file holds the delivered one. Was: the cycles skipped it
// as delivered, and the seal, reading both in one window, kept the newer
// in the day file (the one no cycle delivered) and buried the delivered one.
func TestFollowDeliveredIDTwin(t *testing.T) {
	t.Parallel()
	c, sim, _ := startLive(t, 3*time.Second, simulator.Live{Rate: 5})
	midnight := c.now().Truncate(24 * time.Hour).Add(24 * time.Hour)
	at := midnight.Add(-1500 * time.Millisecond)
	var armed atomic.Bool // the other event is in the answers from then on
	proxy := addEvents(t, sim.Handler(), func() []json.RawMessage {
		evs := []json.RawMessage{twinEvent(at, "1")}
		if armed.Load() {
			evs = append(evs, twinEvent(at.Add(300*time.Millisecond), "666"))
		}
		return evs
	})
	cfg := testConfig(t, proxy.URL+"/api/shared/v1")
	cfg.Output.DeadLetterDir = filepath.Join(t.TempDir(), "dead")
	f := startFollow(t, cfg, c, follow.Options{From: c.now().Add(-time.Second)})
	waitFor(t, "a cycle to deliver the event", func() bool {
		_, ok := exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir)["twin"]
		return ok
	})
	armed.Store(true)
	waitSealed(t, cfg, midnight.Add(-time.Hour).Format(time.DateOnly))
	require.NoError(t, f.stop())

	dead := deadLetters(t, cfg.Output.DeadLetterDir)
	require.Len(t, dead, 1, "the other event, once: %q", dead)
	require.Contains(t, dead[0], `"actor_id":"666"`)
	got := exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir) // fails on an event twice
	require.Equal(t, "1", got["twin"].Fields["actor_id"], "the day file holds the event the cycle delivered")
}

// TestFollowSealOfTwoDeliveredTwins: two events with one id, created 2 s
// apart, the second published only once the first has left the look-back:
// cycles deliver both, as a run delivers events of two windows. The seal
// cannot put both in one day file: it keeps the cycle files, as for a day
// the API returns fewer events for, and the loop goes on. Neither is a
// dead letter.
func TestFollowSealOfTwoDeliveredTwins(t *testing.T) {
	t.Parallel()
	c, sim, _ := startLive(t, 4*time.Second, simulator.Live{Rate: 5})
	midnight := c.now().Truncate(24 * time.Hour).Add(24 * time.Hour)
	at := midnight.Add(-2500 * time.Millisecond)
	second := at.Add(2 * time.Second)
	var armed atomic.Bool
	proxy := addEvents(t, sim.Handler(), func() []json.RawMessage {
		evs := []json.RawMessage{twinEvent(at, "1")}
		if armed.Load() {
			evs = append(evs, twinEvent(second, "666"))
		}
		return evs
	})
	cfg := testConfig(t, proxy.URL+"/api/shared/v1")
	cfg.Output.DeadLetterDir = filepath.Join(t.TempDir(), "dead")
	f := startFollow(t, cfg, c, follow.Options{From: c.now().Add(-time.Second)})
	waitFor(t, "the first event to leave the look-back", func() bool {
		return position(t, cfg).Watermark.Add(-cfg.Follow.Lookback).After(at)
	})
	require.True(t, position(t, cfg).Watermark.Add(-cfg.Follow.Lookback).Before(second), "the second is still in the look-back")
	armed.Store(true)
	yesterday := midnight.Add(-time.Hour).Format(time.DateOnly)
	waitSealed(t, cfg, yesterday)
	require.NoError(t, f.stop(), "the loop went on after the seal")

	require.Empty(t, deadLetters(t, cfg.Output.DeadLetterDir))
	var actors []string
	files, err := filepath.Glob(filepath.Join(cfg.Sinks[0].File.Dir, "dt="+yesterday, "*.ndjson"))
	require.NoError(t, err)
	require.Greater(t, len(files), 1, "the cycle files are kept")
	for _, name := range files {
		data, err := os.ReadFile(name)
		require.NoError(t, err)
		for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			var e struct {
				ID      string `json:"id"`
				ActorID string `json:"actor_id"`
			}
			require.NoError(t, json.Unmarshal([]byte(l), &e))
			if e.ID == "twin" {
				actors = append(actors, e.ActorID)
			}
		}
	}
	slices.Sort(actors)
	require.Equal(t, []string{"1", "666"}, actors, "both delivered events are kept")
}

// metricValue is the value of the one series of name at url whose labels
// are the workspace label of testConfig and labels (name, value pairs).
func metricValue(t *testing.T, url, name string, labels ...string) float64 {
	t.Helper()
	_, mfs := scrape(t, url)
	return counter(t, mfs, name, labels...)
}

// twinEvent is an event with the id "twin", created at at by actor.
func twinEvent(at time.Time, actor string) json.RawMessage {
	return json.RawMessage(`{"id":"twin","created_at":"` + at.Format("2006-01-02T15:04:05.000Z") + `","event_key":"user_login","actor_id":"` + actor + `","actor_type":"user","entity_id":"1","entity_type":"user","details":{}}`)
}

// addEvents serves h, with the events extra returns added to each first
// page whose range holds their created_at (newest first, as the API
// sorts).
func addEvents(t *testing.T, h http.Handler, extra func() []json.RawMessage) *httptest.Server {
	createdAt := func(e json.RawMessage) string {
		var v struct {
			CreatedAt string `json:"created_at"`
		}
		json.Unmarshal(e, &v)
		return v.CreatedAt
	}
	return rewritingProxy(t, h, func(r *http.Request, code int, body []byte) []byte {
		q := r.URL.Query()
		if code != 200 || q.Get("cursor") != "" {
			return body
		}
		var add []json.RawMessage
		for _, e := range extra() {
			if c := createdAt(e); c >= q.Get("start_time") && c <= q.Get("end_time") {
				add = append(add, e)
			}
		}
		if len(add) == 0 {
			return body
		}
		var page map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(body, &page))
		var evs []json.RawMessage
		require.NoError(t, json.Unmarshal(page["data"], &evs))
		evs = append(evs, add...)
		slices.SortStableFunc(evs, func(a, b json.RawMessage) int { return strings.Compare(createdAt(b), createdAt(a)) })
		page["data"], _ = json.Marshal(evs)
		body, _ = json.Marshal(page)
		return body
	})
}

// deadLetters reads the raw events of every dead-letter file under dir.
func deadLetters(t *testing.T, dir string) []string {
	t.Helper()
	var dead []string
	files, err := filepath.Glob(filepath.Join(dir, "dt=*", "*.ndjson"))
	require.NoError(t, err)
	for _, name := range files {
		data, err := os.ReadFile(name)
		require.NoError(t, err)
		for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			var d struct{ Raw string }
			require.NoError(t, json.Unmarshal([]byte(l), &d))
			dead = append(dead, d.Raw)
		}
	}
	return dead
}

// rewritingProxy serves h, each answer's body passed through rewrite (r the
// request, code its status) first.
func rewritingProxy(t *testing.T, h http.Handler, rewrite func(r *http.Request, code int, body []byte) []byte) *httptest.Server {
	t.Helper()
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		body := rewrite(r, rec.Code, rec.Body.Bytes())
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Date", rec.Header().Get("Date")) // the simulator's clock
		w.WriteHeader(rec.Code)
		w.Write(body)
	}))
	t.Cleanup(proxy.Close)
	return proxy
}

// TestFollowStopWhileKafkaHangs: a stop asked for while the broker leaves a
// cycle's produce request unanswered. The cycle is abandoned after the
// grace, and the producer's in-flight messages with it: that is still a
// clean stop (nil, exit 0), the cycle pending for the next start.
func TestFollowStopWhileKafkaHangs(t *testing.T) {
	t.Parallel()
	c, _, base := startLive(t, time.Hour, simulator.Live{Rate: 20})
	cfg := testConfig(t, base)
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "audit"))
	require.NoError(t, err)
	defer kc.Close()
	hung := make(chan struct{})
	var once sync.Once
	var released atomic.Bool
	kc.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		if released.Load() {
			return nil, nil, false
		}
		kc.KeepControl()
		once.Do(func() { close(hung) })
		return nil, nil, true // never answered
	})
	kcfg := kafkasink.Config{Brokers: kc.ListenAddrs(), Topic: "audit", WriteTimeout: time.Second}
	cfg.Sinks = append(cfg.Sinks, config.Sink{Type: "kafka", Kafka: &kcfg})
	require.NoError(t, cfg.Validate())
	var logs logbuf.Buffer
	f := startFollowLogging(t, cfg, c, follow.Options{From: c.now().Add(-time.Minute)}, slog.New(slog.NewTextHandler(&logs, nil)))
	select {
	case <-hung:
	case <-time.After(patience):
		t.Fatal("timed out waiting for a produce request")
	}
	require.NoError(t, f.stop(), "a stop during a hung cycle is clean")
	require.NotNil(t, position(t, cfg).Pending, "the abandoned cycle is redone at the next start")
	// The log says at once that the stop waits for the cycle, and at the
	// end that the cycle was not finished (was: one line, "follow:
	// stopped", five seconds after the signal, the same as after a
	// finished cycle).
	require.Regexp(t, `(?s)msg="follow: stop asked; the cycle under way may finish within the grace" grace=5s.*`+
		`msg="follow: stopped; the cycle under way did not finish and is redone at the next start"`, logs.String())
	// The producer retries in the background until its attempts run out:
	// let it through, so that it ends before the test does.
	released.Store(true)
	waitFor(t, "the producer's retry", func() bool {
		return len(kafkatest.Consume(t, kc.ListenAddrs(), "audit")) > 0
	})
}

// TestFollowLateEventsOfTheSeal: an event published after the look-back
// passed its day, caught by the seal, counts in late_events_total as the
// look-back's catches do; the day's events before --from, which the seal
// gives the file sinks only, do not.
func TestFollowLateEventsOfTheSeal(t *testing.T) {
	t.Parallel()
	c, sim, base := startLive(t, 3*time.Second, simulator.Live{})
	midnight := c.now().Truncate(24 * time.Hour).Add(24 * time.Hour)
	yesterday := midnight.Add(-24 * time.Hour).Format(time.DateOnly)
	from := c.now().Add(-time.Second)
	sim.WriteEvent("user_login", from.Add(-time.Second), 0) // before --from
	cfg := testConfig(t, base)
	addr := make(chan string, 1)
	var logs logbuf.Buffer
	f := startFollowLogging(t, cfg, c, follow.Options{From: from, Listen: "127.0.0.1:0", Ready: func(a string) { addr <- a }},
		slog.New(slog.NewTextHandler(&logs, nil)))
	metrics := "http://" + <-addr + "/metrics"
	counter := func(name string) float64 { return metricValue(t, metrics, name) }
	// Published once the look-back passed it, before the seal (when the
	// look-back passes midnight).
	at := midnight.Add(-2500 * time.Millisecond)
	waitFor(t, "the look-back to pass the event", func() bool {
		return position(t, cfg).Watermark.Add(-cfg.Follow.Lookback).After(at)
	})
	veryLate := sim.WriteEvent("user_login", at, 0)
	waitSealed(t, cfg, yesterday)
	waitFor(t, "the seal counted", func() bool { return counter("pachca_export_follow_seals_total") == 1 })
	require.Equal(t, 1.0, counter("pachca_export_follow_late_events_total"), "the event the seal caught")
	require.NoError(t, f.stop())
	require.Contains(t, exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir), veryLate.ID)
	// A warning says the cycles missed it, the event before --from not
	// counted: the cycles never read that part of the day.
	require.Regexp(t, `level=WARN msg="follow: the seal delivered events the cycles missed[^\n]*day=`+yesterday+` events=1 lookback=3s`, logs.String())
}

// TestFollowSealOfADayNoCycleRead: a first start from a day already due
// for the seal (--from yesterday, started after lag + look-back past
// midnight) leaves that day to the seal: its events were never in a
// cycle's range, so they are neither late nor missed by the cycles.
func TestFollowSealOfADayNoCycleRead(t *testing.T) {
	c, sim, base := startLive(t, 24*time.Hour-10*time.Second, simulator.Live{}) // 00:00:10
	today := c.now().Truncate(24 * time.Hour)
	yesterday := today.Add(-24 * time.Hour).Format(time.DateOnly)
	ev := sim.WriteEvent("user_login", today.Add(-10*time.Second), 0)
	cfg := testConfig(t, base)
	addr := make(chan string, 1)
	var logs logbuf.Buffer
	f := startFollowLogging(t, cfg, c, follow.Options{From: today.Add(-20 * time.Second), Listen: "127.0.0.1:0",
		Ready: func(a string) { addr <- a }}, slog.New(slog.NewTextHandler(&logs, nil)))
	metrics := "http://" + <-addr + "/metrics"
	waitSealed(t, cfg, yesterday)
	waitFor(t, "the seal counted", func() bool {
		return metricValue(t, metrics, "pachca_export_follow_seals_total") == 1
	})
	require.Zero(t, metricValue(t, metrics, "pachca_export_follow_late_events_total"), "no cycle read the day")
	require.NoError(t, f.stop())
	require.Contains(t, exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir), ev.ID)
	require.NotContains(t, logs.String(), "the seal delivered events the cycles missed")
}

// TestFollowSealAfterCyclesFellBehind: cycles held up by a failing API
// until their day's seal is due leave the end of the day to the seal. Its
// events were never behind the watermark: the seal delivers them, but
// neither counts them late nor says the cycles missed them.
func TestFollowSealAfterCyclesFellBehind(t *testing.T) {
	t.Parallel()
	c, sim, _ := startLive(t, 4*time.Second, simulator.Live{})
	midnight := c.now().Truncate(24 * time.Hour).Add(24 * time.Hour)
	yesterday := midnight.Add(-24 * time.Hour).Format(time.DateOnly)
	var held atomic.Bool
	var refused atomic.Int64
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if held.Load() {
			refused.Add(1)
			http.Error(w, "upstream unavailable", http.StatusServiceUnavailable)
			return
		}
		sim.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(api.Close)
	cfg := testConfig(t, api.URL+simulator.BasePath)
	from := c.now().Add(-time.Second)
	addr := make(chan string, 1)
	var logs logbuf.Buffer
	f := startFollowLogging(t, cfg, c, follow.Options{From: from, Listen: "127.0.0.1:0", Ready: func(a string) { addr <- a }},
		slog.New(slog.NewTextHandler(&logs, nil)))
	metrics := "http://" + <-addr + "/metrics"
	waitFor(t, "a cycle", func() bool { return position(t, cfg).Watermark.After(from) })
	held.Store(true)
	waitFor(t, "a request refused", func() bool { return refused.Load() > 0 })
	// Cycles run one at a time: the one refused holds the watermark.
	wm := position(t, cfg).Watermark
	ev := sim.WriteEvent("user_login", midnight.Add(-500*time.Millisecond), 0)
	require.True(t, ev.CreatedAt.After(wm), "the event is past the watermark")
	due := midnight.Add(cfg.Period.Lag + cfg.Follow.Lookback + 500*time.Millisecond)
	waitFor(t, "the seal to be due", func() bool { return c.now().After(due) })
	held.Store(false)
	waitSealed(t, cfg, yesterday)
	waitFor(t, "the seal counted", func() bool {
		return metricValue(t, metrics, "pachca_export_follow_seals_total") == 1
	})
	require.Zero(t, metricValue(t, metrics, "pachca_export_follow_late_events_total"), "no event was behind the watermark")
	require.NoError(t, f.stop())
	require.Contains(t, exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir), ev.ID) // once: it fails on an id twice
	require.NotContains(t, logs.String(), "the seal delivered events the cycles missed")
}

// TestFollowIdleCycles: a --from within lag of now leaves the cycles
// nothing to read: they commit nothing, so neither the metrics nor the
// readiness report a committed cycle.
func TestFollowIdleCycles(t *testing.T) {
	t.Parallel()
	_, base := emptySim(t)
	cfg := testConfig(t, base)
	cfg.Period.Lag = time.Hour
	var logs logbuf.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	addr := make(chan string, 1)
	go func() {
		done <- follow.Run(ctx, pipeline.Options{Config: cfg, Logger: log},
			follow.Options{From: time.Now(), Listen: "127.0.0.1:0", Ready: func(a string) { addr <- a }})
	}()
	url := "http://" + <-addr
	get := func(path string) (int, string) {
		resp, err := http.Get(url + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	waitFor(t, "two idle cycles", func() bool { return strings.Count(logs.String(), "nothing to read yet") >= 2 })
	_, metrics := get("/metrics")
	require.Contains(t, metrics, "\npachca_export_follow_cycles_total{result=\"success\",workspace=\"acme\"} 0\n")
	require.Contains(t, metrics, "\npachca_export_last_run_success{workspace=\"acme\"} 0\n")
	require.Contains(t, metrics, "\npachca_export_follow_cycle_duration_seconds_count{workspace=\"acme\"} 0\n")
	code, body := get("/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "no cycle committed yet")
	cancel()
	require.NoError(t, <-done)
	require.Zero(t, position(t, cfg).Seq)
}

// TestFollowSealTriedAgainReadsTheDayAgain: a seal that failed (a sink
// out of reach) reads its day anew when it is tried again, so an event the
// API published for the day in between is sealed with it (was: the try
// again delivered the first try's read, kept in the spool, and the event
// was never exported although published before the seal).
func TestFollowSealTriedAgainReadsTheDayAgain(t *testing.T) {
	t.Parallel()
	c, sim, base := startLive(t, 3*time.Second, simulator.Live{})
	midnight := c.now().Truncate(24 * time.Hour).Add(24 * time.Hour)
	yesterday := midnight.Add(-24 * time.Hour).Format(time.DateOnly)
	cfg := testConfig(t, base)
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "audit"))
	require.NoError(t, err)
	defer kc.Close()
	var down atomic.Bool
	var produced atomic.Int32
	kc.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		kc.KeepControl()
		if !down.Load() {
			return nil, nil, false
		}
		produced.Add(1)
		return nil, errors.New("broker down"), true // the connection is closed
	})
	kcfg := kafkasink.Config{Brokers: kc.ListenAddrs(), Topic: "audit", WriteTimeout: time.Second, MaxAttempts: 1, DeliveryTimeout: time.Second}
	cfg.Sinks = append(cfg.Sinks, config.Sink{Type: "kafka", Kafka: &kcfg})
	require.NoError(t, cfg.Validate())
	addr := make(chan string, 1)
	f := startFollow(t, cfg, c, follow.Options{From: c.now().Add(-time.Second), Listen: "127.0.0.1:0", Ready: func(a string) { addr <- a }})
	metrics := "http://" + <-addr + "/metrics"
	// Published once the look-back passed it: only the seal delivers it,
	// to Kafka too, which fails the seal's first try.
	at := midnight.Add(-2500 * time.Millisecond)
	waitFor(t, "the look-back to pass the event", func() bool {
		return position(t, cfg).Watermark.Add(-cfg.Follow.Lookback).After(at)
	})
	down.Store(true)
	first := sim.WriteEvent("user_login", at, 0)
	failures := func() float64 {
		return metricValue(t, metrics, "pachca_export_follow_cycles_total", "result", "failure")
	}
	waitFor(t, "the seal's first try to fail", func() bool { return failures() > 0 })
	require.Positive(t, produced.Load(), "the seal failed on Kafka")
	second := sim.WriteEvent("user_login", at.Add(time.Millisecond), 0) // after the first try's read
	// The broker stays down until a try that may have read the day before
	// the event has failed: the try that succeeds began after it (was: the
	// broker back at once, and a try begun before the event was written
	// sealed the day without it on a loaded machine, 1 run in 7).
	n := failures()
	waitFor(t, "a try begun before the event to fail", func() bool { return failures() > n })
	down.Store(false)
	waitSealed(t, cfg, yesterday)
	require.NoError(t, f.stop())
	got := exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir)
	require.Contains(t, got, first.ID)
	require.Contains(t, got, second.ID, "published before the seal, after its first try")
	require.Equal(t, []string{"_manifest.json", "pachca-audit-" + yesterday + ".ndjson"}, dayFiles(t, cfg.Sinks[0].File.Dir, yesterday))
}

// TestFollowSendsWhatARunLeftPending: a run that delivered a day but could
// not send its message (POST /messages answered 503) keeps the finding in
// alerts-pending.json; a follow loop started on the same state sends it
// with its first cycle, once, removes the file, and a restart sends
// nothing more (was: only runs read the file, so whoever moved from
// nightly runs to follow never got the message: the day was exported, and
// the loop starts after it).
func TestFollowSendsWhatARunLeftPending(t *testing.T) {
	t.Parallel()
	c := clock{}
	sim, _ := emptySim(t)
	gate := exporttest.GatePosts(t, sim, http.StatusServiceUnavailable, "upstream unavailable")
	cfg := testConfig(t, gate.URL)
	cfg.Source.MaxRetries = 1
	withRules(t, cfg, alerts.Rule{Name: "DLP", Kind: alerts.KindWatch,
		EventKeys: []string{"dlp_violation_detected"}, Recipients: []string{"10001"}})
	yesterday := c.now().Truncate(24*time.Hour).AddDate(0, 0, -1)
	sim.WriteEvent("dlp_violation_detected", yesterday.Add(time.Hour), 20001)

	_, err := pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Logger: logger(t), Now: c.now},
		pipeline.Range{From: yesterday, To: yesterday.AddDate(0, 0, 1)}, false)
	require.ErrorContains(t, err, "server error 503")
	v, err := state.Peek(cfg.State.Dir, pipeline.Identity(cfg))
	require.NoError(t, err)
	pending := filepath.Join(v.Dir(), "alerts-pending.json")
	require.FileExists(t, pending)
	gate.Closed.Store(false)

	f := startFollow(t, cfg, c, follow.Options{})
	waitFor(t, "the first cycle to send the run's finding", func() bool {
		_, err := os.Stat(pending)
		return len(sim.Stats().Messages) > 0 && errors.Is(err, fs.ErrNotExist)
	})
	require.NoError(t, f.stop())
	require.Equal(t, yesterday.AddDate(0, 0, 1), position(t, cfg).Start.UTC(), "the loop starts after the exported day")

	f = startFollow(t, cfg, c, follow.Options{})
	restarted := c.now()
	waitPast(t, cfg, restarted, "a cycle after the restart")
	require.NoError(t, f.stop())
	oneMessage(t, sim, "dlp_violation_detected")
}

// TestFollowGoesOnWhenAlertsFail: POST /messages refused (403: a token
// without messages:create) or failing (503) does not stop or hold up the
// feed: the cycles deliver and commit, follow_alert_failures_total counts
// them, a 503 is retried within a cycle's interval only, and once the API
// takes the message a later cycle sends it, once (was: the cycle failed; a
// 403 ended the loop with exit 1 at once, and a supervisor restarted it
// into the same failure; a 503 held each cycle for its retries, a minute
// or more).
func TestFollowGoesOnWhenAlertsFail(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		status int
		body   string
	}{
		{"refused", http.StatusForbidden, `{"error":"insufficient_scope","error_description":"messages:create"}`},
		{"failing", http.StatusServiceUnavailable, "upstream unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := clock{}
			sim, _ := emptySim(t)
			gate := exporttest.GatePosts(t, sim, tc.status, tc.body)
			cfg := testConfig(t, gate.URL)
			withRules(t, cfg, alerts.Rule{Name: "DLP", Kind: alerts.KindWatch,
				EventKeys: []string{"dlp_violation_detected"}, Recipients: []string{"10001"}})

			addr := make(chan string, 1)
			f := startFollow(t, cfg, c, follow.Options{Listen: "127.0.0.1:0", Ready: func(a string) { addr <- a }})
			metrics := "http://" + <-addr + "/metrics"
			sim.WriteEvent("dlp_violation_detected", c.now(), 20001)
			waitFor(t, "a counted failure", func() bool {
				return metricValue(t, metrics, "pachca_export_follow_alert_failures_total") >= 1
			})
			sim.WriteEvent("user_login", c.now(), 20001)
			waitFor(t, "the next cycles to deliver the next event although the message is not sent", func() bool {
				return len(exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir)) == 2
			})
			require.Empty(t, sim.Stats().Messages)

			gate.Closed.Store(false)
			waitFor(t, "a later cycle to send the message", func() bool {
				return len(sim.Stats().Messages) == 1
			})
			settled := c.now()
			waitPast(t, cfg, settled.Add(cfg.Follow.Interval), "a cycle after the message")
			require.NoError(t, f.stop(), "a clean stop: the loop never failed")
			oneMessage(t, sim, "dlp_violation_detected")
			require.Len(t, exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir), 2, "nothing delivered twice")
		})
	}
}

// TestFollowReadsUpToTheAPIsNow: the API's clock 40 s behind this host's
// (its Date headers say so). The cycles read up to the API's now less the
// lag, so an event it creates at its now is delivered by the next cycles,
// and the gauge shows how far behind it is, freshness not (was: the watermark ran 40 s
// ahead of the API, each new event landed behind it, beyond the look-back,
// and only the day's seal delivered it, while freshness and readiness
// looked fine).
func TestFollowReadsUpToTheAPIsNow(t *testing.T) {
	t.Parallel()
	const behind = 40 * time.Second
	sim, base := startLiveAt(t, -behind, simulator.Live{})
	cfg := testConfig(t, base)
	addr := make(chan string, 1)
	f := startFollow(t, cfg, clock{}, follow.Options{Listen: "127.0.0.1:0", Ready: func(a string) { addr <- a }})
	metrics := "http://" + <-addr + "/metrics"
	waitFor(t, "a committed cycle", func() bool { return position(t, cfg).Seq >= 1 })
	require.False(t, position(t, cfg).Watermark.After(time.Now().Add(-behind)), "not past the API's now, even for the first cycle")

	for i := range 3 {
		sim.WriteEvent("user_login", time.Now().Add(-behind), uint64(20001+i))
		time.Sleep(300 * time.Millisecond)
	}
	waitFor(t, "the cycles to deliver the events the API created at its now", func() bool {
		return len(exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir)) == 3
	})
	require.InDelta(t, behind.Seconds(), metricValue(t, metrics, "pachca_export_follow_api_clock_behind_seconds"), 1.5)
	// Freshness by the API's clock: the feed is current (was: now minus
	// the watermark by this host's clock, 40 s more, an alert for skew).
	require.Less(t, metricValue(t, metrics, "pachca_export_follow_freshness_seconds"), behind.Seconds()/2)
	require.NoError(t, f.stop())
}

// TestFollowFirstCycleSealsNothing: a process started 6 s after a UTC
// midnight by its own clock, the API's clock 10 s behind (4 s before that
// midnight), with lag and look-back of 4 s together. Its first cycle seals
// nothing: before the API's first answer its clock is unknown. The day is
// sealed once the API's clock is past it, so an event the API creates in
// its last seconds, after the first cycle, is exported (was: the first
// cycle sealed the day by this host's clock, and the event, created after
// the seal, was never exported).
func TestFollowFirstCycleSealsNothing(t *testing.T) {
	t.Parallel()
	const behind = 10 * time.Second
	c := newClock(-6 * time.Second)
	midnight := c.now().Truncate(24 * time.Hour)
	yesterday := midnight.Add(-24 * time.Hour).Format(time.DateOnly)
	sim, base := startLiveAt(t, c.offset-behind, simulator.Live{})
	cfg := testConfig(t, base)
	f := startFollow(t, cfg, c, follow.Options{From: midnight.Add(-time.Minute)})
	waitFor(t, "a committed cycle", func() bool { return position(t, cfg).Seq >= 1 })
	last := sim.WriteEvent("user_login", c.now().Add(-behind), 20001)
	require.Equal(t, yesterday, last.CreatedAt.UTC().Format(time.DateOnly), "created in the API's last seconds of the day")
	waitSealed(t, cfg, yesterday)
	require.NoError(t, f.stop())
	require.Contains(t, exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir), last.ID)
}

// TestFollowRedoSealsNothing: as TestFollowFirstCycleSealsNothing, for a
// process started while the API is away (a deploy) whose first cycle
// redoes one a stopped process left pending: the redo delivers from the
// spool without an answer from the API, so its clock is still unknown,
// and the next cycle seals no day either. The API's clock is 30 s behind,
// this host's 20 s past midnight: the day is sealed once the API's
// midnight is past (was: the cycle after the redo sealed the day by this
// host's clock, 10 s before the API's midnight, and what the API created
// in them was never exported).
func TestFollowRedoSealsNothing(t *testing.T) {
	t.Parallel()
	const behind = 30 * time.Second
	c := newClock(-20 * time.Second)
	midnight := c.now().Truncate(24 * time.Hour)
	yesterday := midnight.Add(-24 * time.Hour).Format(time.DateOnly)
	_, base := startLiveAt(t, c.offset-behind, simulator.Live{Rate: 20})
	// The API's front: while down, every connection is closed unanswered.
	var down atomic.Bool
	target, err := url.Parse(base)
	require.NoError(t, err)
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host})
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	cfg := testConfig(t, front.URL+target.Path)
	cfg.Source.MaxRetries = 1
	// yesterday's directory cannot be made: the cycle that reads its
	// events fails and stays pending.
	dir := cfg.Sinks[0].File.Dir
	block := filepath.Join(dir, "dt="+yesterday)
	require.NoError(t, os.MkdirAll(dir, 0o750))
	require.NoError(t, os.WriteFile(block, nil, 0o600))
	addr := make(chan string, 1)
	f := startFollow(t, cfg, c, follow.Options{From: midnight.Add(-time.Minute), Listen: "127.0.0.1:0",
		Ready: func(a string) { addr <- a }})
	metrics := "http://" + <-addr + "/metrics"
	waitFor(t, "a cycle failing", func() bool {
		return metricValue(t, metrics, "pachca_export_follow_cycles_total", "result", "failure") >= 1
	})
	require.NoError(t, f.stop())
	pending := position(t, cfg).Pending
	require.NotNil(t, pending, "the failed cycle is redone at the next start")
	require.NoError(t, os.Remove(block))

	down.Store(true)
	f = startFollow(t, cfg, c, follow.Options{})
	waitFor(t, "the redo to commit", func() bool { return position(t, cfg).Seq >= pending.Seq })
	down.Store(false)
	waitSealed(t, cfg, yesterday)
	apiNow := c.now().Add(-behind)
	require.NoError(t, f.stop())
	require.False(t, apiNow.Before(midnight), "sealed at the API's %s, before its midnight", apiNow.Format(time.TimeOnly))
}

// TestFollowAnswersHealthWhileSinksOpen: /healthz answers from the moment the
// address is bound, while the sinks are still being opened behind a broker
// that accepts connections and never answers; /readyz and /metrics say it
// is starting. Was: nothing answered until the sinks were open, and a
// liveness probe restarted the process into the same wait.
func TestFollowAnswersHealthWhileSinksOpen(t *testing.T) {
	_, base := emptySim(t)
	cfg := testConfig(t, base)
	broker, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer broker.Close()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := broker.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never answered
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}()
	kcfg := kafkasink.Config{Brokers: []string{broker.Addr().String()}, Topic: "audit"}
	cfg.Sinks = append(cfg.Sinks, config.Sink{Type: "kafka", Kafka: &kcfg})
	require.NoError(t, cfg.Validate())
	addr := make(chan string, 1)
	ready := make(chan struct{})
	f := startFollow(t, cfg, clock{}, follow.Options{Listen: "127.0.0.1:0",
		Listening: func(a string) { addr <- a },
		Ready:     func(string) { close(ready) }})
	base = "http://" + <-addr
	client := &http.Client{Timeout: 5 * time.Second}
	get := func(path string) (int, string) {
		resp, err := client.Get(base + path)
		require.NoError(t, err, "GET %s while the sinks open", path)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	code, _ := get("/healthz")
	require.Equal(t, http.StatusOK, code)
	code, body := get("/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Contains(t, body, "starting")
	code, _ = get("/metrics")
	require.Equal(t, http.StatusServiceUnavailable, code)
	select {
	case <-ready:
		t.Fatal("the loop started with a broker that never answers")
	default:
	}
	f.stop() // ctx ends the opening: whatever it returns, the process stops
}

// TestRunRefusedWhileFollowing: a run on the state of a follow loop is
// refused at once, saying the holder is a follow loop, which never
// finishes (was: "wait for it to finish"), and with which configuration
// file (was: not said: a second workspace's configuration copied from the
// first with only its token changed keys the first one's state, and
// stopping the first one's loop, as advised, would mix the two
// workspaces' events in one output).
func TestRunRefusedWhileFollowing(t *testing.T) {
	_, base := emptySim(t)
	cfg := testConfig(t, base)
	cfg.File = filepath.Join(t.TempDir(), "acme.yaml")
	ready := make(chan struct{})
	f := startFollow(t, cfg, clock{}, follow.Options{Ready: func(string) { close(ready) }})
	<-ready
	_, err := pipeline.Open(t.Context(), pipeline.Options{Config: cfg, Mode: "run"})
	require.ErrorIs(t, err, state.ErrLocked)
	require.ErrorContains(t, err, " (follow) with "+cfg.File+"): a follow loop runs until it is stopped")
	require.ErrorContains(t, err, "if that is another workspace's configuration, give this one a source.workspace of its own")

	// A run says what to do instead of stopping the feed (was: stop it
	// first, only): a catch-up has nothing to do; the day so far is in the
	// loop's files already, and a range of one's own goes elsewhere.
	_, err = pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Mode: "run"}, pipeline.Range{}, false)
	require.ErrorIs(t, err, state.ErrLocked)
	require.ErrorContains(t, err, "; the loop records each day it seals as exported, so a nightly catch-up beside it has nothing to do: disable the nightly timer or CronJob")
	now := time.Now().UTC()
	_, err = pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Mode: "run"}, pipeline.Range{From: now.Truncate(24 * time.Hour), To: now}, false)
	require.ErrorIs(t, err, state.ErrLocked)
	require.ErrorContains(t, err, "; the loop exports today as it goes, up to follow.interval + period.lag ago, into "+
		filepath.Join(cfg.Sinks[0].File.Dir, "dt="+now.Format(time.DateOnly))+"/ (its cycle files: report and verify read them); "+
		"for a range of your own, run a copy of this configuration whose sinks write elsewhere (another state)")
	_, err = pipeline.Run(t.Context(), pipeline.Options{Config: cfg, Mode: "run"}, pipeline.Range{From: now.AddDate(0, 0, -3)}, false)
	require.ErrorContains(t, err, "(the token is no part of the state's key); for a range of your own, run a copy")
	require.NoError(t, f.stop())
}

// TestFollowBurstGoesOn: an attack that goes on across cycles is one
// burst; its message is sent when it reaches the threshold, and again, with
// the count of the first, once a later cycle finds it doubled (was: the
// first cycle's count only, however long the attack went on).
func TestFollowBurstGoesOn(t *testing.T) {
	t.Parallel()
	c := clock{}
	sim, base := emptySim(t)
	cfg := testConfig(t, base)
	withRules(t, cfg, alerts.Rule{Name: "2FA", Kind: alerts.KindThreshold, Threshold: 3, Window: 10 * time.Minute,
		EventKeys: []string{"user_2fa_fail"}, Recipients: []string{"10001"}})
	f := startFollow(t, cfg, c, follow.Options{})
	fail := func(n int) {
		for range n {
			sim.WriteEvent("user_2fa_fail", c.now(), 20001)
			time.Sleep(10 * time.Millisecond)
		}
	}
	messages := func(n int) func() bool {
		return func() bool { return len(sim.Stats().Messages) == n }
	}
	fail(3)
	waitFor(t, "the burst's message", messages(1))
	fail(2)
	waitPast(t, cfg, c.now().Add(cfg.Follow.Interval), "the cycles to read 5 events")
	require.Len(t, sim.Stats().Messages, 1, "not doubled yet")
	fail(1)
	waitFor(t, "the message of the burst doubled", messages(2))
	require.NoError(t, f.stop())
	msgs := sim.Stats().Messages
	require.Contains(t, msgs[0].Content, "2FA: 3 user_2fa_fail events for actor 20001")
	require.Contains(t, msgs[1].Content, "2FA: 6 user_2fa_fail events for actor 20001")
	require.Contains(t, msgs[1].Content, "still going (3 in the last message)")
}

// TestFollowFirstStartAfterSinkRemoved: a follow loop started on the state
// of a configuration used before (NDJSON alone), after nightly runs with a
// Parquet sink beside it exported every day since, starts today, as the
// two-sink state would (was: the day after its own last day, a week back:
// those days were read again and written again at their seals, and Kafka
// was sent them again).
func TestFollowFirstStartAfterSinkRemoved(t *testing.T) {
	_, base := emptySim(t)
	cfg := testConfig(t, base)
	today := time.Now().UTC().Truncate(24 * time.Hour)
	both := *cfg
	both.Sinks = append(cfg.Sinks[:len(cfg.Sinks):len(cfg.Sinks)], config.Sink{Type: "parquet", File: &config.FileSink{Dir: filepath.Join(t.TempDir(), "parquet")}})
	for cfg, days := range map[*config.Config][]int{cfg: {-8}, &both: {-7, -6, -5, -4, -3, -2, -1}} {
		st, err := state.Open(cfg.State.Dir, pipeline.Identity(cfg))
		require.NoError(t, err)
		for _, n := range days {
			require.NoError(t, st.MarkExported(state.Day{Day: today.AddDate(0, 0, n).Format(time.DateOnly), RunID: "nightly"}))
		}
		require.NoError(t, st.Close())
	}

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- follow.Run(ctx, pipeline.Options{Config: cfg, Logger: logger(t)}, follow.Options{}) }()
	waitFor(t, "a committed cycle", func() bool { return position(t, cfg).Seq >= 1 })
	cancel()
	require.NoError(t, <-done)
	require.Equal(t, today, position(t, cfg).Start.UTC())
}

// TestFollowNewStateAfterSinkMoved: the first start of a follow loop on a
// new state, its sinks not those of the state beside it that sealed days
// before yesterday (a sink moved), warns naming that state and the days
// between to export with run (was: it began today without a word, and the
// days the old state had not sealed were exported by nothing).
func TestFollowNewStateAfterSinkMoved(t *testing.T) {
	_, base := emptySim(t)
	before := testConfig(t, base)
	today := time.Now().UTC().Truncate(24 * time.Hour)
	st, err := state.Open(before.State.Dir, pipeline.Identity(before))
	require.NoError(t, err)
	require.NoError(t, st.MarkExported(state.Day{Day: today.AddDate(0, 0, -4).Format(time.DateOnly), RunID: "sealed"}))
	require.NoError(t, st.Close())

	moved := *before
	moved.Sinks = []config.Sink{{Type: "ndjson", File: &config.FileSink{Dir: filepath.Join(t.TempDir(), "moved"), Compression: "none"}}}
	var logs logbuf.Buffer
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- follow.Run(ctx, pipeline.Options{Config: &moved, Logger: slog.New(slog.NewTextHandler(&logs, nil))}, follow.Options{})
	}()
	waitFor(t, "a committed cycle", func() bool { return position(t, &moved).Seq >= 1 })
	cancel()
	require.NoError(t, <-done)
	require.Contains(t, logs.String(), "level=WARN msg=\"follow: a new state: ")
	require.Contains(t, logs.String(), "exported up to "+today.AddDate(0, 0, -4).Format(time.DateOnly)+", and this new state starts at "+today.Format(time.DateOnly)+
		"; if a sink only moved (a Kafka broker's address changed), export the days between with run --from "+today.AddDate(0, 0, -3).Format(time.DateOnly)+" --to "+today.Format(time.DateOnly))
}

// TestFollowNewStateBesideALoop: a follow loop restarted with a sink added
// (a new state, which begins today again) warns that the sinks the earlier
// loop delivered to get today's events up to its watermark again, twice
// in their files until the seal (for good with keep_cycle_files) (was:
// without a word, when the earlier loop had sealed no day yet).
func TestFollowNewStateBesideALoop(t *testing.T) {
	_, base := emptySim(t)
	before := testConfig(t, base)
	before.Follow.KeepCycleFiles = true
	now := time.Now().UTC()
	today := now.Truncate(24 * time.Hour)
	wm := today.Add(now.Sub(today) / 2).Truncate(time.Millisecond)
	st, err := state.Open(before.State.Dir, pipeline.Identity(before))
	require.NoError(t, err)
	require.NoError(t, st.SetFollow(state.Follow{Start: today, Watermark: wm, Seq: 3}))
	require.NoError(t, st.Close())

	added := *before
	added.Sinks = append(before.Sinks[:1:1], config.Sink{Type: "parquet", File: &config.FileSink{Dir: filepath.Join(t.TempDir(), "parquet")}})
	var logs logbuf.Buffer
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- follow.Run(ctx, pipeline.Options{Config: &added, Logger: slog.New(slog.NewTextHandler(&logs, nil))}, follow.Options{})
	}()
	waitFor(t, "a committed cycle", func() bool { return position(t, &added).Seq >= 1 })
	cancel()
	require.NoError(t, <-done)
	require.Equal(t, today, position(t, &added).Start.UTC())
	require.Contains(t, logs.String(), "level=WARN msg=\"follow: a new state: the follow loop of ")
	require.Contains(t, logs.String(), "delivered up to "+wm.Format(time.RFC3339Nano)+", and this one starts at "+today.Format(time.RFC3339Nano)+
		": sinks[0] ndjson gets the events between again, in cycle files beside that loop's: twice in the day until its seal compacts it "+
		"(with follow.keep_cycle_files, for good: a repair of the day compacts it)")
}

// TestFollowStateRestoredWarns: a follow loop started again on a state
// restored from a backup older than its output, or lost, warns that the
// sinks hold events past its watermark, which its cycles deliver again
// beside them (was: without a word, and verify then reported the day's ids
// twice); a plain restart does not.
func TestFollowStateRestoredWarns(t *testing.T) {
	t.Parallel()
	sim, base := emptySim(t)
	cfg := testConfig(t, base)
	loop := func() string {
		t.Helper()
		var logs logbuf.Buffer
		seq := position(t, cfg).Seq
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			done <- follow.Run(ctx, pipeline.Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(&logs, nil))}, follow.Options{})
		}()
		at := sim.WriteEvent("user_login", time.Now().Add(-10*time.Millisecond), 0).CreatedAt
		waitFor(t, "a cycle past the event", func() bool { p := position(t, cfg); return p.Seq > seq && !p.Watermark.Before(at) })
		cancel()
		require.NoError(t, <-done)
		return logs.String()
	}
	const ahead = "holds events up to "
	require.NotContains(t, loop(), ahead)
	backup := filepath.Join(t.TempDir(), "state")
	copyTree(t, cfg.State.Dir, backup)
	require.NotContains(t, loop(), ahead, "a restart")

	require.NoError(t, os.RemoveAll(cfg.State.Dir))
	copyTree(t, backup, cfg.State.Dir)
	require.Contains(t, loop(), "level=WARN msg=\"follow: sinks[0] ndjson "+cfg.Sinks[0].File.Dir+" "+ahead)

	// The state lost: the first start begins today again, beside the
	// cycle files of the earlier one.
	require.NoError(t, os.RemoveAll(cfg.State.Dir))
	require.Contains(t, loop(), "level=WARN msg=\"follow: sinks[0] ndjson "+cfg.Sinks[0].File.Dir+" "+ahead)
}

// copyTree copies the directory src to dst, modes kept.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	require.NoError(t, filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), fi.Mode().Perm())
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, fi.Mode().Perm())
	}))
}

// TestFollowKeepCycleFilesFromMidDay: a loop started with a --from in the
// middle of a day that is due for its seal, with follow.keep_cycle_files:
// the seal adds a file with the day's events, those before --from too, so
// that the day recorded as exported holds every event of it; streams get
// only those from --from on (was: the file, named as the whole day's, held
// only the events after --from, and the nightly catch-up, which sees the
// day exported, never fetched the rest).
func TestFollowKeepCycleFilesFromMidDay(t *testing.T) {
	sc := simulator.DefaultConfig()
	sim, base := startSim(t, sc)
	defer sim.Close()
	cfg := testConfig(t, base)
	cfg.Follow.KeepCycleFiles = true
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "audit"))
	require.NoError(t, err)
	defer kc.Close()
	kcfg := kafkasink.Config{Brokers: kc.ListenAddrs(), Topic: "audit"}
	kcfg.SetDefaults()
	cfg.Sinks = append(cfg.Sinks, config.Sink{Type: "kafka", Kafka: &kcfg})
	require.NoError(t, cfg.Validate())
	today := time.Now().UTC().Truncate(24 * time.Hour)
	yesterday := today.Add(-24 * time.Hour)
	from := yesterday.Add(12 * time.Hour)

	f := startFollow(t, cfg, clock{}, follow.Options{From: from})
	waitSealed(t, cfg, yesterday.Format(time.DateOnly))
	require.NoError(t, f.stop())

	want := exporttest.Expected(sim, yesterday, today)
	require.Greater(t, len(want), 300)
	exporttest.Compare(t, want, exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir), "acme")
	v, err := state.Peek(cfg.State.Dir, pipeline.Identity(cfg))
	require.NoError(t, err)
	ex, err := v.Exported()
	require.NoError(t, err)
	require.EqualValues(t, len(want), ex[yesterday.Format(time.DateOnly)].Records)

	published := map[string]bool{}
	for _, r := range kafkatest.Consume(t, kc.ListenAddrs(), "audit") {
		published[string(r.Key)] = true
	}
	streamed := 0
	for _, ev := range want {
		require.Equal(t, !ev.CreatedAt.Before(from), published[ev.ID], "event %s at %s", ev.ID, ev.CreatedAt)
		if published[ev.ID] {
			streamed++
		}
	}
	require.Positive(t, streamed)
	require.Less(t, streamed, len(want))
}

// TestFollowStopBetweenSeals: a stop asked for while the loop seals the
// days of a catch-up lets the seal in progress finish and begins no other
// (was: seals went on until the grace ended, cutting the last one).
func TestFollowStopBetweenSeals(t *testing.T) {
	sc := simulator.DefaultConfig()
	today := time.Now().UTC().Truncate(24 * time.Hour)
	sc.Events, sc.From, sc.To = 6000, today.AddDate(0, 0, -30), today
	sc.Latency = 40 * time.Millisecond
	sim, base := startSim(t, sc)
	defer sim.Close()
	cfg := testConfig(t, base)
	v, err := state.Peek(cfg.State.Dir, pipeline.Identity(cfg))
	require.NoError(t, err)
	exported := func() int {
		ex, err := v.Exported()
		require.NoError(t, err)
		return len(ex)
	}
	f := startFollow(t, cfg, clock{}, follow.Options{From: sc.From})
	waitFor(t, "two days sealed", func() bool { return exported() >= 2 })
	atStop := exported()
	require.NoError(t, f.stop())
	require.LessOrEqual(t, exported(), atStop+1, "only the seal in progress at the stop ends")
	require.Less(t, exported(), 30)
}

// TestFollowSealOfADayWithARunsPart: while a follow loop feeds today, an
// operator runs the day so far with a copy of its configuration that keeps
// only one of its sinks (another state, so the loop's lock does not stop
// it) into that sink's directory. The seal replaces the run's file with
// the cycle files (was: it counted the run's events besides the cycles'
// as if none were the same, refused the day as one that would shrink, and
// the loop exited 1, at every restart again: the feed stopped at midnight).
func TestFollowSealOfADayWithARunsPart(t *testing.T) {
	t.Parallel()
	c, sim, base := startLive(t, 8*time.Second, simulator.Live{Rate: 60})
	cfg := testConfig(t, base)
	cfg.Sinks = append(cfg.Sinks, config.Sink{Type: "ndjson", File: &config.FileSink{Dir: filepath.Join(t.TempDir(), "b"), Compression: "none"}})
	require.NoError(t, cfg.Validate())
	midnight := c.now().Truncate(24 * time.Hour).Add(24 * time.Hour)
	day := midnight.Add(-24 * time.Hour)
	start := c.now().Add(-time.Second)
	f := startFollow(t, cfg, c, follow.Options{From: start})
	waitPast(t, cfg, start.Add(2*time.Second), "cycles of events")

	one := *cfg
	one.Sinks = cfg.Sinks[:1]
	require.NoError(t, one.Validate())
	sum, err := pipeline.Run(t.Context(), pipeline.Options{Config: &one, Logger: logger(t), Now: c.now},
		pipeline.Range{From: day, To: c.now()}, false)
	require.NoError(t, err)
	require.Positive(t, sum.Events, "the run's file holds events the cycles delivered")

	waitSealed(t, cfg, day.Format(time.DateOnly))
	require.NoError(t, f.stop(), "the loop went on")
	for _, s := range cfg.Sinks {
		require.Equal(t, []string{"_manifest.json", "pachca-audit-" + day.Format(time.DateOnly) + ".ndjson"},
			dayFiles(t, s.File.Dir, day.Format(time.DateOnly)), "the sealed day is one file")
	}
	got := exporttest.ReadNDJSON(t, cfg.Sinks[0].File.Dir) // fails on an event twice
	want := exporttest.Expected(sim, day, midnight)
	inDay := 0
	for _, l := range got {
		if l.Dir == "dt="+day.Format(time.DateOnly) {
			inDay++
		}
	}
	require.Equal(t, len(want), inDay)
}

// TestVerifyWhileACycleCommits: verify reads the sinks' manifests of the
// day a loop is feeding one after the other, while a cycle commits to one
// sink and not yet to the next (its last cycle file taken off the second
// sink's manifest here): the day is OK, compared up to the last cycle both
// list (was: FAIL, `N events here, but sinks[1] ... holds N-k for the day`,
// exit 1, for a verify run at that moment).
func TestVerifyWhileACycleCommits(t *testing.T) {
	t.Parallel()
	c, sim, base := startLive(t, time.Hour, simulator.Live{Rate: 60})
	cfg := testConfig(t, base)
	cfg.Sinks = append(cfg.Sinks, config.Sink{Type: "ndjson", File: &config.FileSink{Dir: filepath.Join(t.TempDir(), "b"), Compression: "none"}})
	require.NoError(t, cfg.Validate())
	start := c.now().Add(-time.Second)
	f := startFollow(t, cfg, c, follow.Options{From: start})
	waitPast(t, cfg, start.Add(3*time.Second), "cycles of events")
	sim.StopLive()
	require.NoError(t, f.stop())
	today := start.Format(time.DateOnly)

	ok := func() {
		t.Helper()
		rep, err := verify.Run(t.Context(), verify.Options{Config: cfg, From: start.Truncate(24 * time.Hour)})
		require.NoError(t, err)
		require.False(t, rep.Failed(), "%v", rep.Lines)
	}
	ok()
	path := filepath.Join(cfg.Sinks[1].File.Dir, "dt="+today, sinks.ManifestName)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	m, err := sinks.DecodeManifest(b)
	require.NoError(t, err)
	last := slices.MaxFunc(m.Files, func(a, b sinks.ManifestFile) int { return a.To.Compare(b.To) })
	require.True(t, last.Part)
	require.Positive(t, last.Records)
	m.Files = slices.DeleteFunc(m.Files, func(e sinks.ManifestFile) bool { return e.Name == last.Name })
	m.Records -= last.Records
	require.NoError(t, os.WriteFile(path, m.Encode(), 0o600))
	require.NoError(t, os.Remove(filepath.Join(filepath.Dir(path), last.Name)))
	ok()

	// A cycle missing before the last one both list still fails.
	i := slices.IndexFunc(m.Files, func(e sinks.ManifestFile) bool { return e.Part && e.Records > 0 })
	gone := m.Files[i]
	m.Files = slices.Delete(m.Files, i, i+1)
	m.Records -= gone.Records
	require.NoError(t, os.WriteFile(path, m.Encode(), 0o600))
	require.NoError(t, os.Remove(filepath.Join(filepath.Dir(path), gone.Name)))
	rep, err := verify.Run(t.Context(), verify.Options{Config: cfg, From: start.Truncate(24 * time.Hour)})
	require.NoError(t, err)
	require.True(t, rep.Failed(), "%v", rep.Lines)
}

// TestFollowFromJustBeforeMidnight: a loop started with --from less than
// the look-back before a UTC midnight, with events of the day before
// published late after it: the cycles past midnight that re-read the day
// before from --from each write its late events to a file of their own
// (was: each one's file of that day was named [--from, midnight), the
// same name, so a cycle with fewer late events was refused, for good:
// exit 1 at every restart, its redo refused alike, and one with more
// replaced the file, the events of the cycle before gone from the files
// of a day kept as cycle files).
func TestFollowFromJustBeforeMidnight(t *testing.T) {
	t.Parallel()
	c, sim, base := startLive(t, time.Second, simulator.Live{})
	cfg := testConfig(t, base)
	cfg.Follow.Lookback, cfg.Follow.KeepCycleFiles = 8*time.Second, true
	require.NoError(t, cfg.Validate())
	midnight := c.now().Truncate(24 * time.Hour).Add(24 * time.Hour)
	start := c.now().Add(-500 * time.Millisecond)
	sealLateEvents(t, c, sim, cfg, start, midnight, patience, nil)
}

// dayLines are the NDJSON lines of day (YYYY-MM-DD) under dir, by id.
func dayLines(t *testing.T, dir, day string) map[string]exporttest.Line {
	t.Helper()
	got := map[string]exporttest.Line{}
	for id, l := range exporttest.ReadNDJSON(t, dir) {
		if l.Dir == "dt="+day {
			got[id] = l
		}
	}
	return got
}

// sealLateEvents runs a loop from start until the day before midnight is
// sealed, writing an event of that day every 100 ms, published late, until
// a second before the seal (one published after the seal's read is not
// exported), each after calling step (nil: none) with its index; then
// checks every event of the day is in the NDJSON sink once.
func sealLateEvents(t *testing.T, c clock, sim *simulator.Server, cfg *config.Config, start, midnight time.Time, wait time.Duration, step func(i int)) {
	t.Helper()
	yesterday := midnight.Add(-24 * time.Hour).Format(time.DateOnly)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ended := make(chan error, 1)
	go func() {
		ended <- follow.Run(ctx, pipeline.Options{Config: cfg, Logger: logger(t), Now: c.now}, follow.Options{From: start})
	}()
	v, err := state.Peek(cfg.State.Dir, pipeline.Identity(cfg))
	require.NoError(t, err)
	deadline := time.Now().Add(wait)
	for i := 0; ; i++ {
		if step != nil {
			step(i)
		}
		if c.now().Before(midnight.Add(cfg.Period.Lag + cfg.Follow.Lookback - time.Second)) {
			sim.WriteEvent("user_login", midnight.Add(-time.Duration(1+i%300)*time.Millisecond), uint64(1000+i))
		}
		ex, err := v.Exported()
		require.NoError(t, err)
		if _, ok := ex[yesterday]; ok {
			break
		}
		select {
		case err := <-ended:
			require.Failf(t, "the loop ended before the seal", "%v", err)
		case <-time.After(100 * time.Millisecond):
		}
		require.False(t, time.Now().After(deadline), "timed out waiting for the seal")
	}
	cancel()
	require.NoError(t, <-ended)
	want := exporttest.Expected(sim, midnight.Add(-24*time.Hour), midnight)
	got := dayLines(t, cfg.Sinks[0].File.Dir, yesterday)
	exporttest.Compare(t, want, got, "acme")
}
