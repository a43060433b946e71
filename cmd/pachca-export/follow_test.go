package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/state"
	"github.com/pachca-export/pachca-export/telemetry/telemetrytest"
	"github.com/pachca-export/pachca-export/testkit/exporttest"
	"github.com/pachca-export/pachca-export/testkit/kafkatest"
	"github.com/pachca-export/pachca-export/testkit/logbuf"
)

// TestFollowProcess: a follow process against the live simulator, across a
// UTC midnight that a moved clock puts a few seconds ahead, with live and
// late events, SIGKILLed twice at unlucky moments (mid-cycle, and about
// when the day before midnight is sealed) and restarted, then stopped with
// SIGTERM: it exits 0 at once; NDJSON and Parquet hold exactly the
// simulator's events; Kafka holds every id; the sealed day is one file
// per sink; a catch-up run afterwards sends no request for it.
func TestFollowProcess(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	midnightReal := now.Truncate(24 * time.Hour).Add(24 * time.Hour)
	offset := midnightReal.Add(-6 * time.Second).Sub(now)
	fakeNow := func() time.Time { return time.Now().Add(offset).UTC() }
	midnight := fakeNow().Truncate(24 * time.Hour).Add(24 * time.Hour)
	yesterday := midnight.Add(-24 * time.Hour).Format(time.DateOnly)

	sc := simulator.DefaultConfig()
	sc.Events, sc.ClockOffset = 0, offset
	sc.Live = simulator.Live{Rate: 80, LateShare: 0.3, MaxLate: 3 * time.Second}
	sim, err := simulator.New(sc)
	require.NoError(t, err)
	base, err := sim.Start("127.0.0.1:0")
	require.NoError(t, err)
	defer sim.Close()

	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "audit"))
	require.NoError(t, err)
	defer kc.Close()

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "pipeline.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(fmt.Sprintf(`
source:
  base_url: %s
  token: sim-token
  workspace: acme
  requests_per_second: 200
  timeout: 5s
period:
  lag: 1s
follow:
  interval: 500ms
  lookback: 3s
sinks:
  - type: ndjson
    dir: %s
    compression: gzip
  - type: parquet
    dir: %s
  - type: kafka
    brokers: [%s]
    topic: audit
state:
  dir: %s
`, base, filepath.Join(dir, "ndjson"), filepath.Join(dir, "parquet"), kc.ListenAddrs()[0], filepath.Join(dir, "state"))), 0o600))
	cfg, err := config.Load(cfgPath, os.LookupEnv)
	require.NoError(t, err)
	view, err := state.Peek(cfg.State.Dir, pipeline.Identity(cfg))
	require.NoError(t, err)
	pos := func() state.Follow {
		f, _, err := view.Follow()
		require.NoError(t, err)
		return f
	}
	// What the loop brings about is waited for up to a minute: its cycles
	// took 5 to 15 s each on a loaded 2-core machine under -race.
	const patience = time.Minute
	waitFor := func(what string, d time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(d)
		for !cond() {
			require.False(t, time.Now().After(deadline), "timed out waiting for %s", what)
			time.Sleep(20 * time.Millisecond)
		}
	}
	env := clockOffsetEnv + "=" + offset.String()
	from := fakeNow().Add(-time.Second).Format(time.RFC3339Nano)
	start := func() (*exec.Cmd, *logbuf.Buffer) {
		cmd := child(t, "follow", "-c", cfgPath, "--from", from, "--listen", "127.0.0.1:0", "--log-format", "json")
		cmd.Env = append(cmd.Env, env)
		var stderr logbuf.Buffer
		cmd.Stderr = &stderr
		require.NoError(t, cmd.Start())
		return cmd, &stderr
	}
	kill := func(cmd *exec.Cmd) {
		time.Sleep(time.Duration(rand.Int64N(int64(300 * time.Millisecond))))
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		require.Error(t, cmd.Wait())
	}

	// Killed mid-run, before midnight.
	cmd, _ := start()
	waitFor("a few cycles", patience, func() bool { return pos().Seq >= 3 })
	kill(cmd)

	// Killed about when the day is sealed: midnight + lag + look-back.
	cmd, _ = start()
	waitFor("the seal's moment", 20*time.Second, func() bool { return fakeNow().After(midnight.Add(4*time.Second + 100*time.Millisecond)) })
	kill(cmd)

	// Restarted: it seals the day, catches what is late, is ready, and
	// stops cleanly on SIGTERM.
	cmd, out := start()
	waitFor("the day to be sealed", patience, func() bool {
		ex, err := view.Exported()
		require.NoError(t, err)
		_, ok := ex[yesterday]
		return ok
	})
	var addr []string
	waitFor("the endpoints' address in the log", patience, func() bool {
		addr = regexp.MustCompile(`"addr":"(127\.0\.0\.1:\d+)"`).FindStringSubmatch(out.String())
		return addr != nil
	})
	waitFor("readiness", patience, func() bool {
		resp, err := http.Get("http://" + addr[1] + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	resp, err := http.Get("http://" + addr[1] + "/metrics")
	require.NoError(t, err)
	metrics, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	telemetrytest.Lint(t, metrics)
	p := expfmt.NewTextParser(model.LegacyValidation)
	fam, err := p.TextToMetricFamilies(bytes.NewReader(metrics))
	require.NoError(t, err)
	fresh := fam["pachca_export_follow_freshness_seconds"].GetMetric()[0].GetGauge().GetValue()
	require.True(t, fresh > 0 && fresh < 60, "freshness is now minus the watermark on the command's clock, not a raw timestamp: %v", fresh)
	require.Positive(t, fam["pachca_export_events_total"].GetMetric()[0].GetCounter().GetValue())
	if m := fam["pachca_export_empty_partitions_total"]; m != nil {
		require.Zero(t, m.GetMetric()[0].GetCounter().GetValue(), "a sealed day holds its events, even with none new")
	}
	require.NotContains(t, out.String(), "a delivered day has no events")
	sim.StopLive()
	stopped := fakeNow()
	waitFor("the watermark to pass every event", patience, func() bool {
		return pos().Watermark.After(stopped.Add(4 * time.Second))
	})
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	term := time.Now()
	require.NoError(t, cmd.Wait(), "SIGTERM is a clean stop: exit 0\n%s", out.String())
	require.Less(t, time.Since(term), 10*time.Second)

	wm := pos().Watermark
	fromT, err := time.Parse(time.RFC3339Nano, from)
	require.NoError(t, err)
	want := exporttest.Expected(sim, fromT.Truncate(24*time.Hour), wm)
	require.Greater(t, len(want), 500)
	exporttest.Compare(t, want, exporttest.ReadNDJSON(t, filepath.Join(dir, "ndjson")), "acme")
	exporttest.Compare(t, want, exporttest.ReadParquet(t, filepath.Join(dir, "parquet")), "acme")
	for _, sink := range []string{"ndjson", "parquet"} {
		entries, err := os.ReadDir(filepath.Join(dir, sink, "dt="+yesterday))
		require.NoError(t, err)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		sort.Strings(names)
		require.Len(t, names, 2, "the sealed day is one file and its manifest: %v", names)
		require.Equal(t, "_manifest.json", names[0])
	}
	ids := map[string]bool{}
	for _, r := range kafkatest.Consume(t, kc.ListenAddrs(), "audit") {
		ids[string(r.Key)] = true
	}
	for _, ev := range want {
		if !ev.CreatedAt.Before(fromT) {
			require.True(t, ids[ev.ID], "kafka lacks %s", ev.ID)
		}
	}

	// The nightly catch-up sees the sealed day done: no request for it.
	before := len(sim.Stats().Log)
	run := child(t, "run", "-c", cfgPath)
	run.Env = append(run.Env, env)
	b, err := run.CombinedOutput()
	require.NoError(t, err, string(b))
	for _, r := range sim.Stats().Log[before:] {
		require.False(t, r.Start.Format(time.DateOnly) == yesterday, "a request for the sealed day: %+v", r)
	}
}

// TestFollowUsageErrors: a bad --listen or follow.listen, a --from later
// than now and a sink holding another configuration's data are usage
// errors (exit 2, one line naming the culprit), found before the state
// records a follow position: a corrected command then starts afresh.
func TestFollowUsageErrors(t *testing.T) {
	base := startSim(t)
	future := time.Now().UTC().AddDate(0, 1, 0).Format(time.DateOnly)
	day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -3).Format(time.DateOnly)
	next := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -2).Format(time.DateOnly)
	for _, tc := range []struct {
		name, config string
		args         []string
		before       []string // a command run first on the same configuration
		want         string
	}{
		{name: "listen without a port", config: goodConfig, args: []string{"--listen", "nonsense"}, want: "--listen"},
		{name: "listen port out of range", config: goodConfig, args: []string{"--listen", "127.0.0.1:99999"}, want: "--listen"},
		{name: "follow.listen port out of range", config: goodConfig + "follow:\n  listen: 127.0.0.1:99999\n", want: "follow.listen"},
		{name: "from in the future", config: goodConfig, args: []string{"--from", future}, want: "--from"},
		{name: "a sink of another configuration", before: []string{"run", "--from", day, "--to", next},
			config: strings.Replace(goodConfig, "  timeout: 5s\n", "  timeout: 5s\n  filters:\n    event_keys: [user_login]\n", 1), want: "another"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, base, secretToken, tc.config)
			dir := filepath.Dir(path)
			if tc.before != nil {
				other := writeConfig(t, base, secretToken, strings.ReplaceAll(goodConfig, "%DIR%/out", dir+"/out"))
				var stdout, stderr bytes.Buffer
				require.Equal(t, 0, Main(t.Context(), append(tc.before, "-c", other), &stdout, &stderr), stderr.String())
			}
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			var stdout, stderr bytes.Buffer
			code := Main(ctx, append([]string{"follow", "-c", path}, tc.args...), &stdout, &stderr)
			require.Equal(t, 2, code, stderr.String())
			require.Contains(t, stderr.String(), tc.want)
			require.Len(t, strings.Split(strings.TrimSpace(stderr.String()), "\n"), 1, "one line: %s", stderr.String())
			require.NotContains(t, stderr.String(), "first start")
			found, _ := filepath.Glob(filepath.Join(dir, "state", "*", "follow.json"))
			require.Empty(t, found, "no follow position recorded")
		})
	}
}

// TestFollowRejectedTokenExit2: a token the API rejects or that lacks the
// scope ends follow at its first cycle with one line and exit status 2,
// which the systemd unit and a Job's podFailurePolicy do not retry (was:
// exit 1, and Restart=always sent the token again every 30 s).
func TestFollowRejectedTokenExit2(t *testing.T) {
	base := startSim(t)
	for _, tc := range []struct{ token, want string }{
		{"wrong-token-123456", "the API rejected the token (401"},
		{simulator.TokenNoScope, "it needs scope audit_events:read"},
	} {
		t.Run(tc.token, func(t *testing.T) {
			path := writeConfig(t, base, tc.token, goodConfig)
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			var stdout, stderr bytes.Buffer
			code := Main(ctx, []string{"follow", "-c", path, "--log-format", "json"}, &stdout, &stderr)
			require.Equal(t, 2, code, stderr.String())
			recs := jsonLines(t, stderr.String())
			for _, r := range recs {
				require.Equal(t, "acme", r["workspace"], "every line names its workspace: %v", r)
			}
			last := recs[len(recs)-1]
			require.Equal(t, "ERROR", last["level"])
			require.Contains(t, last["msg"], tc.want)
			require.EqualValues(t, 2, last["exit_code"])
			require.NotContains(t, stderr.String(), "wrong-token-123456")
		})
	}
}
