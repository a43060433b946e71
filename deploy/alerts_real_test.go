package deploy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/testkit/buildtest"
	"github.com/pachca-export/pachca-export/testkit/logbuf"
	"github.com/pachca-export/pachca-export/testkit/testbin"
)

// The tests below drive the real binary into the failures the alerts of
// pachca-export.rules.yml name, scrape what it serves (follow's /metrics)
// or writes (run's --metrics-file) at several moments, and hand the
// scrapes to promtool as the input series of a unit test: the alerts that
// fire must be exactly those of the failure. The hand-written series of
// pachca-export.rules.test.yml show what the rules do with the series
// their author had in mind; these show what they do with the series the
// exporter really has. Seconds of the real process stand for the minutes
// of the model: each scrape is held for the minutes it stands for, and the
// times the exporter writes (*_timestamp_seconds) are moved to the model's
// clock, to the start of the first scrape that read them.

// scrape is one reading of the exporter's pachca_export_ series (promtool's
// spelling, name{labels}) and how long the model holds it.
type scrape struct {
	real   time.Time // when it was read
	hold   int       // model steps it stands for
	series map[string]float64
}

// timeline is the scrapes of one scenario, in order, and what the rules
// must make of them.
type timeline struct {
	step    time.Duration // model time of one hold step: promtool's interval
	scrapes []scrape
	expect  []expectation
}

// expectation: at model time at, exactly these alerts fire.
type expectation struct {
	at     time.Duration
	firing []string
	why    string
}

// read parses an exposition (text format) into a scrape held for hold steps.
func read(t *testing.T, exposition string, hold int) scrape {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(exposition))
	require.NoError(t, err, "exposition:\n%s", exposition)
	s := scrape{real: time.Now(), hold: hold, series: map[string]float64{}}
	for name, mf := range mfs {
		if !strings.HasPrefix(name, "pachca_export_") {
			continue // go_ and process_: no rule reads them
		}
		for _, m := range mf.GetMetric() {
			var v float64
			switch {
			case m.Counter != nil:
				v = m.GetCounter().GetValue()
			case m.Gauge != nil:
				v = m.GetGauge().GetValue()
			case m.Untyped != nil:
				v = m.GetUntyped().GetValue()
			default:
				continue // histograms: no rule reads them
			}
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			slices.Sort(labels)
			s.series[name+"{"+strings.Join(labels, ",")+"}"] = v
		}
	}
	require.NotEmpty(t, s.series, "no pachca_export_ series in:\n%s", exposition)
	return s
}

// modelTime maps a Unix time the exporter wrote (an end of run or cycle)
// to the model's clock: the start of the first scrape read at or after it.
func (tl *timeline) modelTime(ts float64) float64 {
	if ts == 0 {
		return 0 // none yet: the rules look for 0
	}
	at := time.Duration(0)
	for _, s := range tl.scrapes {
		if !s.real.Before(time.UnixMilli(int64(ts * 1000))) {
			break
		}
		at += time.Duration(s.hold) * tl.step
	}
	return (at + time.Second).Seconds() // after the step's start: > 0
}

// promtoolTest is the unit test file of the timeline: each series' values
// step by step (_ before it appears), and for each expectation the set of
// firing alerts.
func (tl *timeline) promtoolTest(rules string) string {
	var names []string
	for _, s := range tl.scrapes {
		for n := range s.series {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	slices.Sort(names)
	var b strings.Builder
	fmt.Fprintf(&b, "rule_files: [%q]\nevaluation_interval: %s\ntests:\n  - interval: %s\n    input_series:\n",
		rules, model.Duration(tl.step), model.Duration(tl.step))
	for _, n := range names {
		var vals []string
		for _, s := range tl.scrapes {
			v, ok := s.series[n]
			val := "_"
			if ok {
				if strings.HasSuffix(strings.SplitN(n, "{", 2)[0], "_timestamp_seconds") {
					v = tl.modelTime(v)
				}
				val = strconv.FormatFloat(v, 'f', -1, 64)
			}
			for range s.hold {
				vals = append(vals, val)
			}
		}
		fmt.Fprintf(&b, "      - series: '%s'\n        values: '%s'\n", n, strings.Join(vals, " "))
	}
	b.WriteString("    promql_expr_test:\n")
	for _, e := range tl.expect {
		fmt.Fprintf(&b, "      - expr: count by (alertname) (ALERTS{alertstate=\"firing\"})\n        eval_time: %s\n        exp_samples:", model.Duration(e.at))
		if len(e.firing) == 0 {
			b.WriteString(" []\n")
			continue
		}
		b.WriteString("\n")
		for _, a := range e.firing {
			fmt.Fprintf(&b, "          - labels: '{alertname=%q}'\n            value: 1\n", a)
		}
	}
	return b.String()
}

// check runs promtool on the timeline, after checking that each
// expectation lies within it.
func (tl *timeline) check(t *testing.T) {
	t.Helper()
	promtool := testbin.Require(t, "PACHCA_PROMTOOL", "promtool", "promtool")
	total := time.Duration(0)
	for _, s := range tl.scrapes {
		total += time.Duration(s.hold) * tl.step
	}
	for _, e := range tl.expect {
		require.Less(t, e.at, total, "expectation %q past the scrapes", e.why)
	}
	rules, err := filepath.Abs(rulesFile)
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "real.test.yml")
	require.NoError(t, os.WriteFile(file, []byte(tl.promtoolTest(rules)), 0o600))
	out, err := exec.CommandContext(t.Context(), promtool, "test", "rules", file).CombinedOutput()
	if err != nil {
		var whys []string
		for _, e := range tl.expect {
			whys = append(whys, fmt.Sprintf("  at %s: %v (%s)", model.Duration(e.at), e.firing, e.why))
		}
		b, _ := os.ReadFile(file)
		t.Fatalf("promtool test rules on the real scrapes:\n%s\nexpected:\n%s\n(the test file: %s)\n%s", out, strings.Join(whys, "\n"), file, firstLines(string(b), 60))
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

// realSim is a simulator behind a handler that can refuse POST /messages
// (refuse set: 404, a recipient gone), refuse the token (revoke set: 401),
// add an unparseable event to the
// first page of GET /audit_events answers (garble set) or drop one of
// each page (shrink set), and answer the
// next GET /audit_events 429 (throttle of them); base is the URL the
// exporter is to use.
type realSim struct {
	*simulator.Server
	base           string
	refuse, garble atomic.Bool
	revoke         atomic.Bool  // answer GET /audit_events 401, a token revoked
	shrink         atomic.Bool  // drop the newest event of each page
	throttle       atomic.Int32 // answer so many GET /audit_events 429
}

func startRealSim(t *testing.T, sc simulator.Config) *realSim {
	t.Helper()
	sim, err := simulator.New(sc)
	require.NoError(t, err)
	t.Cleanup(func() { sim.Close() })
	_, err = sim.Start("127.0.0.1:0") // runs its live events; the exporter uses the handler below
	require.NoError(t, err)
	rs := &realSim{Server: sim}
	h := sim.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/audit_events") && rs.revoke.Load() {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"errors":[{"key":"token","value":"invalid_token","message":"token revoked","code":"invalid_token"}]}`)
			return
		}
		if strings.HasSuffix(r.URL.Path, "/audit_events") && rs.throttled() {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		if rs.refuse.Load() && strings.HasSuffix(r.URL.Path, "/messages") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"errors":[{"key":"user_id","value":"not_found","message":"not found","code":"not_found"}]}`)
			return
		}
		first := r.URL.Query().Get("cursor") == ""
		if !(rs.garble.Load() && first) && !rs.shrink.Load() || !strings.HasSuffix(r.URL.Path, "/audit_events") {
			h.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		var page map[string]json.RawMessage
		var evs []json.RawMessage
		if rec.Code == http.StatusOK && json.Unmarshal(body, &page) == nil && json.Unmarshal(page["data"], &evs) == nil {
			if rs.shrink.Load() && len(evs) > 0 {
				evs = evs[1:]
			}
			if rs.garble.Load() && first {
				// An event whose created_at does not parse: the API sent
				// what the exporter cannot read.
				evs = append([]json.RawMessage{json.RawMessage(`{"id":"unreadable","created_at":"yesterday","event_key":"user_login"}`)}, evs...)
			}
			page["data"], _ = json.Marshal(evs)
			body, _ = json.Marshal(page)
		}
		for k, v := range rec.Header() {
			if k != "Content-Length" {
				w.Header()[k] = v
			}
		}
		w.WriteHeader(rec.Code)
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	rs.base = srv.URL + simulator.BasePath
	return rs
}

// throttled takes one of the 429 answers to give, if any is left.
func (rs *realSim) throttled() bool {
	for {
		n := rs.throttle.Load()
		if n <= 0 {
			return false
		}
		if rs.throttle.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

// realConfig writes a pipeline.yaml for the simulator: the workspace acme,
// one NDJSON sink, dead letters and the state beside it, follow's endpoints
// on a free loopback port (addr), and more (indented YAML lines) under
// source:, and at the top level.
func realConfig(t *testing.T, rs *realSim, source, top string) (cfg, addr string) {
	t.Helper()
	addr = freeAddr(t)
	dir := t.TempDir()
	cfg = filepath.Join(dir, "pipeline.yaml")
	require.NoError(t, os.WriteFile(cfg, fmt.Appendf(nil, `source:
  base_url: %s
  token: sim-token
  workspace: acme
%s%s
output:
  dead_letter_dir: %s
sinks:
  - type: ndjson
    dir: %s
state:
  dir: %s
`, rs.base, source, strings.ReplaceAll(top, "LISTEN", strconv.Quote(addr)), filepath.Join(dir, "dead"), filepath.Join(dir, "out"), filepath.Join(dir, "state")), 0o600))
	return cfg, addr
}

// followProc is one `follow` process of a scenario.
type followProc struct {
	t      *testing.T
	addr   string
	done   chan struct{} // closed when the process has ended, with err
	err    error
	stderr logbuf.Buffer // written by exec's copier, read by a failing test while the process may still write
}

func startFollowProc(t *testing.T, ctx context.Context, bin, cfg, addr string, args ...string) *followProc {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, append([]string{"follow", "-c", cfg}, args...)...)
	f := &followProc{t: t, addr: addr, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = io.Discard, &f.stderr
	require.NoError(t, cmd.Start())
	go func() { f.err = cmd.Wait(); close(f.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-f.done
	})
	return f
}

// until scrapes /metrics until series holds at least least, and returns
// that scrape, held for hold steps.
func (f *followProc) until(ctx context.Context, series string, least float64, hold int) scrape {
	f.t.Helper()
	for {
		if ctx.Err() != nil {
			log := f.stderr.String()
			f.t.Fatalf("%s never reached %g; the log ends:\n%s", series, least, log[max(0, len(log)-3000):])
		}
		if resp, err := http.Get("http://" + f.addr + "/metrics"); err == nil {
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode == http.StatusOK {
				if s := read(f.t, string(b), hold); s.series[series] >= least {
					return s
				}
			}
		}
		select {
		case <-f.done:
			f.t.Fatalf("follow ended (%v) before %s reached %g:\n%s", f.err, series, least, f.stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

const (
	successes = `pachca_export_follow_cycles_total{result="success",workspace="acme"}`
	failures  = `pachca_export_follow_cycles_total{result="failure",workspace="acme"}`
)

// TestRealAlertsFollowDown: the API answers every request 500 (down),
// and the feed's state starts 20 minutes back (the process was stopped
// that long): every cycle fails, the feed is stale, the process gives up
// after follow.give_up_after (exit 1) and its supervisor starts it again,
// four times. The cycles failing, the last run failed, the stale feed and
// the restarts are what fire; nothing else.
func TestRealAlertsFollowDown(t *testing.T) {
	t.Parallel()
	bin := buildtest.StaticBinary(t)
	sc := simulator.DefaultConfig()
	sc.FaultRate, sc.Faults = 1, []string{simulator.Fault500}
	rs := startRealSim(t, sc)
	cfg, addr := realConfig(t, rs, "  max_retries: 0\n",
		"follow:\n  listen: LISTEN\n  interval: 300ms\n  lookback: 5s\n  give_up_after: 2500ms")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	from := time.Now().UTC().Add(-20 * time.Minute).Format(time.RFC3339)

	tl := timeline{step: time.Minute}
	for range 4 {
		f := startFollowProc(t, ctx, bin, cfg, addr, "--from", from)
		tl.scrapes = append(tl.scrapes, f.until(ctx, failures, 1, 3), f.until(ctx, failures, 2, 3))
		select {
		case <-f.done:
			var exit *exec.ExitError
			require.ErrorAs(t, f.err, &exit, "follow gives up")
			require.Equal(t, 1, exit.ExitCode())
		case <-ctx.Done():
			t.Fatal("follow did not give up")
		}
	}
	tl.expect = []expectation{
		{4 * time.Minute, []string{"PachcaExportFollowCyclesFailing"}, "every cycle fails; not yet for the for: of the others"},
		{23 * time.Minute, []string{"PachcaExportFollowCyclesFailing", "PachcaExportFollowRestarting",
			"PachcaExportFollowStale", "PachcaExportLastRunFailed"}, "still failing, 3 restarts, 20 minutes stale"},
	}
	tl.check(t)
}

// TestRealAlertsFollowHealthyThenFaults: a feed in good health raises
// nothing; then the API's clock goes 10 minutes behind this host's, which
// raises APIClockBehind alone (not a stale feed: freshness reads the API's
// clock); then, the clocks agreed again, POST /messages refuses an alert
// message (a recipient gone), which raises AlertsNotSent alone.
func TestRealAlertsFollowHealthyThenFaults(t *testing.T) {
	t.Parallel()
	bin := buildtest.StaticBinary(t)
	sc := simulator.DefaultConfig()
	sc.Faults = nil
	sc.Live = simulator.Live{Rate: 5}
	rs := startRealSim(t, sc)
	cfg, addr := realConfig(t, rs, "", `period:
  lag: 1s
follow:
  listen: LISTEN
  interval: 300ms
  lookback: 5s
alerts:
  rules:
    - name: Watched
      kind: watch
      event_keys: [user_role_changed]
      recipients: ["10001"]`)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	f := startFollowProc(t, ctx, bin, cfg, addr, "--from", time.Now().UTC().Add(-2*time.Minute).Format(time.RFC3339))

	tl := timeline{step: time.Minute}
	for n := 1; n <= 3; n++ {
		tl.scrapes = append(tl.scrapes, f.until(ctx, successes, float64(2*n), 10))
	}
	tl.expect = append(tl.expect, expectation{29 * time.Minute, nil, "a healthy feed"})

	// The API's clock steps back: no cycle ends until it is past the
	// watermark again, 10 minutes on.
	rs.SetClockOffset(-10 * time.Minute)
	const behind = `pachca_export_follow_api_clock_behind_seconds{workspace="acme"}`
	tl.scrapes = append(tl.scrapes, f.until(ctx, behind, 590, 10), f.until(ctx, behind, 590, 10))
	tl.expect = append(tl.expect, expectation{49 * time.Minute, []string{"PachcaExportFollowAPIClockBehind"}, "the API's clock 10 minutes behind for 15 minutes"})

	rs.SetClockOffset(0)
	rs.refuse.Store(true)
	rs.WriteEventSpec(simulator.EventSpec{Key: "user_role_changed", At: time.Now()})
	refused := f.until(ctx, `pachca_export_follow_alert_failures_total{workspace="acme"}`, 1, 5)
	tl.scrapes = append(tl.scrapes, refused, f.until(ctx, successes, refused.series[successes]+2, 10))
	for _, s := range tl.scrapes[len(tl.scrapes)-2:] {
		require.Zero(t, s.series[behind], "the clocks agree again")
	}
	tl.expect = append(tl.expect, expectation{60 * time.Minute, []string{"PachcaExportFollowAlertsNotSent"}, "an alert message refused"})
	tl.check(t)
}

// TestRealAlertsNightlyRuns: a nightly `run --metrics-file` (one textfile,
// its counters carried over from night to night), each night a day ago:
// a healthy night raises nothing; a day with no event raises EmptyDay; an
// event the exporter cannot parse, DeadLetters; 429 answers, Throttled; a
// day that would shrink, run from another state onto the same sink,
// RefusedDay and LastRunFailed (the run fails), and NoRecentSuccess 26
// hours after the last success; a token the API refuses, LastRunFailed
// again. Each with nothing else.
func TestRealAlertsNightlyRuns(t *testing.T) {
	t.Parallel()
	bin := buildtest.StaticBinary(t)
	sc := simulator.DefaultConfig()
	sc.Faults = nil
	rs := startRealSim(t, sc)
	cfg, _ := realConfig(t, rs, "", "")
	textfile := filepath.Join(filepath.Dir(cfg), "pachca-export.prom")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	day := func(ago int) string { return time.Now().UTC().AddDate(0, 0, -ago).Format(time.DateOnly) }
	tl := timeline{step: 10 * time.Minute}
	night := func(cfg string, ago int, ok bool, hold int, args ...string) {
		t.Helper()
		out, err := exec.CommandContext(ctx, bin, append([]string{"run", "-c", cfg, "--from", day(ago), "--to", day(ago - 1),
			"--metrics-file", textfile}, args...)...).CombinedOutput()
		if ok {
			require.NoError(t, err, "run:\n%s", out)
		} else {
			require.Error(t, err, "run:\n%s", out)
		}
		b, err := os.ReadFile(textfile)
		require.NoError(t, err)
		tl.scrapes = append(tl.scrapes, read(t, string(b), hold))
	}
	const nightSteps = 24 * 6
	night(cfg, 4, true, nightSteps)
	tl.expect = append(tl.expect, expectation{23 * time.Hour, nil, "a healthy night"})
	night(cfg, 20, true, nightSteps) // before the simulator's events
	tl.expect = append(tl.expect, expectation{25 * time.Hour, []string{"PachcaExportEmptyDay"}, "an empty day"})
	rs.garble.Store(true)
	night(cfg, 3, true, nightSteps)
	rs.garble.Store(false)
	tl.expect = append(tl.expect, expectation{49 * time.Hour, []string{"PachcaExportDeadLetters"}, "a dead letter"})
	rs.throttle.Store(2)
	night(cfg, 2, true, nightSteps)
	require.Zero(t, rs.throttle.Load())
	tl.expect = append(tl.expect, expectation{73 * time.Hour, []string{"PachcaExportThrottled"}, "two 429 answers"})
	// Another state (a configuration copied, its state.dir changed) on
	// the same sink, and an API that returns fewer events of a day than
	// the sink holds: the day is not replaced.
	b, err := os.ReadFile(cfg)
	require.NoError(t, err)
	other := filepath.Join(filepath.Dir(cfg), "other.yaml")
	require.NoError(t, os.WriteFile(other, []byte(strings.Replace(string(b), "/state\n", "/state-other\n", 1)), 0o600))
	rs.shrink.Store(true)
	night(other, 4, false, nightSteps) // refused: the run fails
	rs.shrink.Store(false)
	tl.expect = append(tl.expect,
		expectation{96*time.Hour + 20*time.Minute, []string{"PachcaExportLastRunFailed", "PachcaExportRefusedDay"}, "a day refused, the run failed 20 minutes ago"},
		expectation{98*time.Hour + 30*time.Minute, []string{"PachcaExportLastRunFailed", "PachcaExportNoRecentSuccess", "PachcaExportRefusedDay"}, "no success for 26.5 hours"})
	night(cfg, 1, false, 3*6, "--token", simulator.TokenNoScope)
	tl.expect = append(tl.expect, expectation{120*time.Hour + 20*time.Minute,
		[]string{"PachcaExportLastRunFailed", "PachcaExportNoRecentSuccess"}, "the token refused: failed again, no success for 2 days"})
	tl.check(t)
}

// TestRealAlertsFollowTokenRevoked: the token of a healthy feed is
// revoked. follow ends at once with exit 2, which its unit does not
// restart: no series is left to raise the feed's alerts (FollowStale,
// CyclesFailing), and what fires, an hour later, is that its metrics are
// gone. The README's entry for those says so.
func TestRealAlertsFollowTokenRevoked(t *testing.T) {
	t.Parallel()
	bin := buildtest.StaticBinary(t)
	sc := simulator.DefaultConfig()
	sc.Faults = nil
	rs := startRealSim(t, sc)
	cfg, addr := realConfig(t, rs, "", "follow:\n  listen: LISTEN\n  interval: 300ms\n  lookback: 5s")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	f := startFollowProc(t, ctx, bin, cfg, addr, "--from", time.Now().UTC().Add(-5*time.Minute).Format(time.RFC3339))
	tl := timeline{step: time.Minute}
	for n := 1; n <= 3; n++ {
		tl.scrapes = append(tl.scrapes, f.until(ctx, successes, float64(n), 10))
	}
	rs.revoke.Store(true)
	select {
	case <-f.done:
		var exit *exec.ExitError
		require.ErrorAs(t, f.err, &exit)
		require.Equal(t, 2, exit.ExitCode(), "a token refused: %s", f.stderr.String())
	case <-ctx.Done():
		t.Fatal("follow went on with its token refused")
	}
	tl.scrapes = append(tl.scrapes, scrape{real: time.Now(), hold: 80, series: map[string]float64{}})
	tl.expect = []expectation{
		{29 * time.Minute, nil, "a healthy feed"},
		{80 * time.Minute, nil, "stopped 50 minutes ago: no series, nothing fires within the hour"},
		{100 * time.Minute, []string{"PachcaExportMetricsAbsent", "PachcaExportMetricsGone"}, "stopped over an hour ago"},
	}
	tl.check(t)
}
