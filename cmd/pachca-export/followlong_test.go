package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/internal/atomicfile"
	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/state"
	"github.com/pachca-export/pachca-export/testkit/exporttest"
	"github.com/pachca-export/pachca-export/testkit/logbuf"
)

// TestFollowLong runs one follow process for many simulated days, its
// clock (and the live simulator's) moved a day ahead at each by the offset
// file it reads at each reading of its clock (PACHCA_EXPORT_CLOCK_OFFSET=@FILE):
// a few seconds before a midnight, cycles, the midnight, the seal of the
// day, a few idle cycles (no live events), then the next day; 5% of the
// requests fail on every third day, all for 1.5 s as every fourth begins.
// NDJSON and Parquet sinks, an alert rule that fires every day, /metrics
// served. After each seal it samples what a daemon running for months must
// not let grow: open descriptors, goroutines, /metrics series, the state's
// files and bytes, the files of each sealed day (one per sink and its
// manifest), temporary files (state, sinks, TMPDIR), the log bytes, API
// requests and bytes written of an idle cycle; the heap, RSS and the bytes
// an idle cycle reads are logged. None of the bounded ones is higher over
// the last days than over the warm-up, but for a small slack; no idle
// cycle reads a sealed day; at the end every event of the sealed days is
// in NDJSON and in Parquet once, and verify passes.
//
// Without PACHCA_FOLLOW_LONG, 4 days (make test); PACHCA_FOLLOW_LONG=<days>
// for more (make followlong, 30 by default).
func TestFollowLong(t *testing.T) {
	t.Parallel()
	days := 4
	if v := os.Getenv("PACHCA_FOLLOW_LONG"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err, "PACHCA_FOLLOW_LONG=<days>")
		days = max(n, 3)
	}
	warm := min(5, days-1) // the warm-up: the days compared with the last ones
	fl := &followLong{t: t, days: days}
	fl.run()
	first, last := fl.samples[warm-1], fl.samples[len(fl.samples)-1]
	t.Logf("day %d vs day %d:\n%s\n%s", first.day, last.day, first, last)
	// The heap in use depends on when the collector last ran: its least
	// over a few days is about the live heap.
	least := func(ss []longSample) int64 {
		m := ss[0].heap
		for _, s := range ss {
			m = min(m, s.heap)
		}
		return m >> 10
	}
	t.Logf("least heap in use: %d KiB over days 1..%d, %d KiB over the last %d days", least(fl.samples[:warm]), warm, least(fl.samples[len(fl.samples)-warm:]), warm)
	// What fluctuates from day to day (the client's idle connections to
	// the API, each a descriptor and two goroutines; the events the
	// look-back holds) must not grow: its least over the last days is at
	// most its most over the warm-up days, and a small slack.
	warmUp, end := fl.samples[:warm], fl.samples[max(warm, len(fl.samples)-3):]
	for _, c := range []struct {
		what  string
		of    func(longSample) int64
		slack int64 // or, negative, a percentage of the most
	}{
		{"open descriptors", func(s longSample) int64 { return s.fds }, 2},
		{"goroutines", func(s longSample) int64 { return s.goroutines }, 4},
		{"/metrics series", func(s longSample) int64 { return s.series }, 0},
		{"state files", func(s longSample) int64 { return s.stateFiles }, 1},
		// But for the record of the days exported, one entry a day, the
		// state's files stay the size of the retention (period.retention:
		// 48h here) and of the look-back.
		{"alerts-sent.json", func(s longSample) int64 { return s.state["alerts-sent.json"] }, 256},
		// The ids of the open day and the events the rule holds vary
		// with the events a day's cycles caught (more on a slower
		// machine): half as much again is allowed.
		{"state bytes but exported.json", func(s longSample) int64 { return s.stateBytes - s.state["exported.json"] }, -50},
		{"files of a sealed day", func(s longSample) int64 { return s.dayFiles }, 0},
		{"temporary files", func(s longSample) int64 { return s.temps }, 0},
		{"log bytes of an idle cycle", func(s longSample) int64 { return s.idleLog }, 64},
		{"API requests of an idle cycle", func(s longSample) int64 { return s.idleRequests }, 1},
		{"bytes an idle cycle writes", func(s longSample) int64 { return s.idleWritten }, 2 << 10},
	} {
		most, least := c.of(warmUp[0]), c.of(end[0])
		for _, s := range warmUp {
			most = max(most, c.of(s))
		}
		for _, s := range end {
			least = min(least, c.of(s))
		}
		slack := c.slack
		if slack < 0 { // a percentage
			slack = most * -slack / 100
		}
		require.LessOrEqual(t, least, most+slack, "%s grow with the days: at most %d over days 1..%d, at least %d over days %d..%d",
			c.what, most, warm, least, end[0].day, last.day)
	}
	require.LessOrEqual(t, (last.state["exported.json"]-first.state["exported.json"])/int64(last.day-first.day), int64(256),
		"exported.json grows by one short entry a day")
	require.Equal(t, int64(4), last.dayFiles, "a sealed day is one file and its manifest per sink")
}

// followLong is one run of TestFollowLong.
type followLong struct {
	t       *testing.T
	days    int
	sim     *simulator.Server
	cfg     *config.Config
	cfgPath string
	dir     string
	view    *state.View
	offset  time.Duration // of both clocks from the wall clock
	clock   string        // the file the process reads its offset from
	m0      time.Time     // the end of day 0
	cmd     *exec.Cmd
	dead    chan struct{} // closed once the process has ended
	err     error         // its Wait's, once dead is closed
	log     *logbuf.Buffer
	metrics string // /metrics' address
	samples []longSample
}

// longSample is what a day's end shows of the process: the least of three
// samples for what a cycle under way can raise for a moment.
type longSample struct {
	day                    int
	fds, goroutines        int64
	heap, rss              int64 // bytes
	series                 int64 // of /metrics
	stateFiles, stateBytes int64
	dayFiles               int64 // the most files a sealed day has, both sinks together
	temps                  int64 // temporary files in the state, the sinks, TMPDIR
	cycles                 int64 // committed since the start
	cycleLog, idleLog      int64 // log bytes per cycle of the day, per idle cycle
	idleRequests           int64 // API requests per idle cycle
	idleRead, idleWritten  int64 // bytes read and written per idle cycle (rchar, wchar: the log too)
	idleDuration           float64
	state                  map[string]int64
}

func (s longSample) String() string {
	return fmt.Sprintf("day %2d: fds %d, goroutines %d, heap %d KiB, RSS %d KiB, series %d, state %d files %d B %v, sealed day %d files, temporary %d, cycles %d, log/cycle %d B, log/idle cycle %d B, requests/idle cycle %d, read/idle cycle %d B, written/idle cycle %d B, idle cycle %.0f ms",
		s.day, s.fds, s.goroutines, s.heap>>10, s.rss>>10, s.series, s.stateFiles, s.stateBytes, s.state, s.dayFiles, s.temps, s.cycles, s.cycleLog, s.idleLog, s.idleRequests, s.idleRead, s.idleWritten, s.idleDuration*1000)
}

const (
	longInterval = 250 * time.Millisecond
	longLag      = 500 * time.Millisecond
	longLookback = time.Second
	longPatience = 2 * time.Minute
	longRate     = 20 // live events a second
)

func (f *followLong) midnight(k int) time.Time { return f.m0.AddDate(0, 0, k) }
func (f *followLong) date(k int) string        { return f.midnight(k).AddDate(0, 0, -1).Format(time.DateOnly) }
func (f *followLong) waitFor(what string, cond func() bool) {
	f.t.Helper()
	deadline := time.Now().Add(longPatience)
	for !cond() {
		select {
		case <-f.dead:
			require.Fail(f.t, "the follow process ended", "%v: %s", f.err, tail(f.log.String()))
		default:
		}
		require.False(f.t, time.Now().After(deadline), "timed out waiting for %s:\n%s", what, tail(f.log.String()))
		time.Sleep(20 * time.Millisecond)
	}
}

func tail(log string) string {
	if len(log) > 4000 {
		return log[len(log)-4000:]
	}
	return log
}

// setClock moves both clocks to at.
func (f *followLong) setClock(at time.Time) {
	f.offset = time.Until(at)
	f.sim.SetClockOffset(f.offset)
	tmp := f.clock + ".new"
	require.NoError(f.t, os.WriteFile(tmp, []byte(f.offset.String()), 0o600))
	require.NoError(f.t, os.Rename(tmp, f.clock))
}

func (f *followLong) run() {
	t := f.t
	// The last day ends about today.
	f.m0 = time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -f.days)
	f.offset = time.Until(f.m0.Add(-3 * time.Second))
	sc := simulator.DefaultConfig()
	sc.Events, sc.Seed = 300*(f.days+1), 7
	sc.From, sc.To = f.m0.AddDate(0, 0, -1), f.m0.AddDate(0, 0, f.days)
	sc.ClockOffset = f.offset
	sc.Live = simulator.Live{Rate: longRate, LateShare: 0.3, MaxLate: 800 * time.Millisecond}
	sim, err := simulator.New(sc)
	require.NoError(t, err)
	base, err := sim.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { sim.Close() })
	f.sim = sim
	// A burst of failed logins of one actor a day: the rule fires daily.
	for k := range f.days {
		noon := f.midnight(k).Add(-12 * time.Hour)
		for i := range 6 {
			sim.WriteEvent("user_2fa_fail", noon.Add(time.Duration(i)*time.Second), 4242)
		}
	}

	f.cfgPath = writeConfig(t, base, secretToken, fmt.Sprintf(`source:
  base_url: %%BASE%%
  token: %%TOKEN%%
  workspace: acme
  requests_per_second: 200
  timeout: 5s
period:
  lag: %s
  retention: 48h
follow:
  interval: %s
  lookback: %s
  listen: 127.0.0.1:0
sinks:
  - type: ndjson
    dir: %%DIR%%/out/nd
    compression: gzip
  - type: parquet
    dir: %%DIR%%/out/pq
state:
  dir: %%DIR%%/state
alerts:
  rules:
    - name: Suspicious logins
      kind: threshold
      event_keys: [user_2fa_fail]
      threshold: 5
      window: 10m
      recipients: ["10001"]
`, longLag, longInterval, longLookback))
	f.dir = filepath.Dir(f.cfgPath)
	f.cfg, err = config.Load(f.cfgPath, os.LookupEnv)
	require.NoError(t, err)
	f.view, err = state.Peek(f.cfg.State.Dir, pipeline.Identity(f.cfg))
	require.NoError(t, err)
	f.clock = filepath.Join(f.dir, "clock")
	f.setClock(f.m0.Add(-3 * time.Second))

	f.cmd = child(t, "follow", "-c", f.cfgPath, "--from", f.date(0), "--log-format", "json")
	// Its own TMPDIR: what it leaves there counts as temporary files.
	require.NoError(t, os.Mkdir(filepath.Join(f.dir, "tmp"), 0o700))
	f.cmd.Env = append(f.cmd.Env, clockOffsetEnv+"=@"+f.clock, "TMPDIR="+filepath.Join(f.dir, "tmp"))
	f.log = &logbuf.Buffer{}
	f.cmd.Stderr = f.log
	require.NoError(t, f.cmd.Start())
	f.dead = make(chan struct{})
	go func() { f.err = f.cmd.Wait(); close(f.dead) }()
	t.Cleanup(func() {
		_ = f.cmd.Process.Kill()
		<-f.dead
	})
	f.waitFor("the endpoints' address in the log", func() bool {
		m := regexp.MustCompile(`"addr":"(127\.0\.0\.1:\d+)"`).FindStringSubmatch(f.log.String())
		if m != nil {
			f.metrics = "http://" + m[1] + "/metrics"
		}
		return m != nil
	})

	for k := range f.days {
		if k > 0 {
			f.setClock(f.midnight(k).Add(-time.Second))
			require.NoError(t, sim.SetLive(sc.Live))
		}
		if k%3 == 1 {
			// A bad day: 5% of the requests fail, the cycles retry.
			sim.SetFaults(0.05, simulator.Fault500, simulator.Fault503, simulator.FaultReset, simulator.FaultTruncate, simulator.FaultHTML, simulator.Fault429)
		}
		mark := len(f.log.String())
		if k%4 == 2 {
			// An outage of the API as the day begins: every request
			// fails for a while (the day's alert message among them).
			sim.SetFaults(1, simulator.Fault503)
			time.Sleep(1500 * time.Millisecond)
			sim.SetFaults(0)
		}
		f.waitFor("the seal of "+f.date(k), func() bool {
			ex, err := f.view.Exported()
			require.NoError(t, err)
			_, ok := ex[f.date(k)]
			return ok
		})
		sim.SetFaults(0)
		// A cycle after the seal: its files and state are settled.
		f.waitFor("a cycle after the seal", func() bool { return f.sealedThenCycled(f.log.String()[mark:]) })
		day := f.log.String()[mark:]
		s := f.sample(k + 1)
		if n := f.cycles(day); n > 0 {
			s.cycleLog = int64(len(day)) / n
		}
		// Idle: no live events, a few cycles from the first that read
		// none.
		stopped := len(f.log.String())
		require.NoError(t, sim.SetLive(simulator.Live{}))
		var idle, reqs int
		var io0 [2]int64
		f.waitFor("an idle cycle", func() bool {
			log := f.log.String()
			i := strings.LastIndex(log, `"msg":"follow: cycle"`)
			idle, reqs, io0 = len(log), len(sim.Stats().Log), f.io()
			return i > stopped && strings.Contains(log[i:], `"events":0,`) && strings.Contains(log[i:], `"late":0,`)
		})
		f.waitFor("idle cycles", func() bool { return f.cycles(f.log.String()[idle:]) >= 4 })
		io1 := f.io()
		out := f.log.String()[idle:]
		s.idleLog = int64(len(out)) / f.cycles(out)
		s.idleRead, s.idleWritten = (io1[0]-io0[0])/f.cycles(out), (io1[1]-io0[1])/f.cycles(out)
		s.idleDuration = meanDuration(out)
		// The idle cycles read the open day only: a sealed day is never
		// read again.
		asked := sim.Stats().Log[reqs:]
		for _, r := range asked {
			require.False(t, r.Start.Before(f.midnight(k)), "day %d: an idle cycle read the sealed %s: %+v", k+1, f.date(k), r)
		}
		s.idleRequests = int64(len(asked)) / f.cycles(out)
		// Twice more: after the idle cycles, and after the next.
		s = s.least(f.sample(k + 1))
		n := len(f.log.String())
		f.waitFor("one more cycle", func() bool { return f.cycles(f.log.String()[n:]) >= 1 })
		s = s.least(f.sample(k + 1))
		f.samples = append(f.samples, s)
		t.Logf("%s", s)
	}

	require.NoError(t, f.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-f.dead:
		require.NoError(t, f.err, "SIGTERM: exit 0\n%s", tail(f.log.String()))
	case <-time.After(15 * time.Second):
		require.Fail(t, "no exit within 15 s of SIGTERM")
	}
	f.check()
}

// io is what the process has read and written so far, in bytes: rchar
// and wchar of /proc/PID/io.
func (f *followLong) io() [2]int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", f.cmd.Process.Pid))
	require.NoError(f.t, err)
	var out [2]int64
	for i, k := range []string{"rchar", "wchar"} {
		m := regexp.MustCompile(`(?m)^` + k + `: (\d+)$`).FindSubmatch(b)
		require.NotNil(f.t, m, "%s in /proc/PID/io", k)
		out[i], _ = strconv.ParseInt(string(m[1]), 10, 64)
	}
	return out
}

// meanDuration is the mean duration_s of the cycles in a log.
func meanDuration(log string) float64 {
	sum, n := 0.0, 0
	for _, line := range strings.Split(log, "\n") {
		var c struct {
			Msg      string  `json:"msg"`
			Duration float64 `json:"duration_s"`
		}
		if json.Unmarshal([]byte(line), &c) == nil && c.Msg == "follow: cycle" {
			sum, n = sum+c.Duration, n+1
		}
	}
	return sum / float64(max(n, 1))
}

// cycles counts the committed cycles in a log.
func (f *followLong) cycles(log string) int64 {
	return int64(strings.Count(log, `"msg":"follow: cycle"`))
}

// sealedThenCycled: a cycle line after a day sealed line.
func (f *followLong) sealedThenCycled(log string) bool {
	i := strings.Index(log, `"msg":"follow: day sealed"`)
	return i >= 0 && strings.Contains(log[i:], `"msg":"follow: cycle"`) &&
		strings.Count(log[i:], `"msg":"follow: cycle"`) >= 2 // the sealing cycle's own line, and the next
}

func (f *followLong) sample(day int) longSample {
	t := f.t
	s := longSample{day: day, state: map[string]int64{}}
	pid := f.cmd.Process.Pid
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	require.NoError(t, err)
	s.fds = int64(len(fds))
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	if m := regexp.MustCompile(`VmRSS:\s+(\d+) kB`).FindSubmatch(status); m != nil {
		kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
		s.rss = kb << 10
	}
	resp, err := http.Get(f.metrics)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s.series++
		name, value, _ := strings.Cut(line, " ")
		v, _ := strconv.ParseFloat(value, 64)
		switch name {
		case "go_goroutines":
			s.goroutines = int64(v)
		case "go_memstats_heap_inuse_bytes":
			s.heap = int64(v)
		}
		if strings.HasPrefix(name, "pachca_export_follow_cycles_total{") && strings.Contains(name, `result="success"`) {
			s.cycles = int64(v)
		}
	}
	// Between two cycles if it can (no cycle pending before and after the
	// walk), which a busy machine may not leave time for: TestFollowLong
	// keeps the least of three samples a day.
	for try := 0; ; try++ {
		before, _, err := f.view.Follow()
		require.NoError(t, err)
		s.stateFiles, s.stateBytes, s.state = f.stateSize()
		after, _, err := f.view.Follow()
		require.NoError(t, err)
		if before.Pending == nil && after.Pending == nil && before.Seq == after.Seq || try == 20 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.temps = f.temporary()
	ex, err := f.view.Exported()
	require.NoError(t, err)
	for d := range ex {
		n := int64(0)
		for _, sink := range []string{"nd", "pq"} {
			files, err := os.ReadDir(filepath.Join(f.dir, "out", sink, "dt="+d))
			require.NoError(t, err)
			n += int64(len(files))
		}
		s.dayFiles = max(s.dayFiles, n)
	}
	return s
}

// stateSize is the number of files of the state, their bytes, and the
// bytes of each file at its top and of each directory.
func (f *followLong) stateSize() (files, bytes int64, of map[string]int64) {
	t := f.t
	of = map[string]int64{}
	// The process goes on meanwhile: a file may go between the listing
	// of its directory and its reading.
	require.NoError(t, filepath.WalkDir(f.cfg.State.Dir, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		require.NoError(t, err)
		if d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		require.NoError(t, err)
		files++
		bytes += info.Size()
		rel, _ := filepath.Rel(f.cfg.State.Dir, path)
		parts := strings.Split(rel, string(filepath.Separator))
		key := parts[len(parts)-1]
		if len(parts) > 2 {
			key = parts[1] + "/"
		}
		of[key] += info.Size()
		return nil
	}))
	return files, bytes, of
}

// least is the least of two samples of a day, measure by measure: what a
// cycle under way holds for a moment (a connection, a goroutine, its
// spool) is in one of them only.
func (s longSample) least(o longSample) longSample {
	s.fds, s.goroutines, s.heap, s.rss = min(s.fds, o.fds), min(s.goroutines, o.goroutines), min(s.heap, o.heap), min(s.rss, o.rss)
	s.series, s.dayFiles, s.temps = min(s.series, o.series), min(s.dayFiles, o.dayFiles), min(s.temps, o.temps)
	s.stateFiles, s.stateBytes = min(s.stateFiles, o.stateFiles), min(s.stateBytes, o.stateBytes)
	state := map[string]int64{}
	for k, v := range s.state {
		state[k] = min(v, o.state[k])
	}
	s.state = state
	return s
}

// temporary counts the temporary files and compactions' staging
// directories in the state, the sinks and the process's TMPDIR.
func (f *followLong) temporary() int64 {
	n := int64(0)
	for _, dir := range []string{f.cfg.State.Dir, filepath.Join(f.dir, "out"), filepath.Join(f.dir, "tmp")} {
		require.NoError(f.t, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			require.NoError(f.t, err)
			if atomicfile.IsTemp(d.Name()) || strings.HasPrefix(d.Name(), ".dt=") || dir == filepath.Join(f.dir, "tmp") && path != dir {
				n++
			}
			return nil
		}))
	}
	return n
}

// check compares the sealed days with the simulator's events, in NDJSON
// and in Parquet, and runs verify.
func (f *followLong) check() {
	t := f.t
	ex, err := f.view.Exported()
	require.NoError(t, err)
	for k := range f.days {
		require.Contains(t, ex, f.date(k))
	}
	sealed := func(got map[string]exporttest.Line) map[string]exporttest.Line {
		out := map[string]exporttest.Line{}
		for id, l := range got {
			if _, ok := ex[strings.TrimPrefix(l.Dir, "dt=")]; ok {
				out[id] = l
			}
		}
		return out
	}
	want := exporttest.Expected(f.sim, f.m0.AddDate(0, 0, -1), f.midnight(f.days-1))
	t.Logf("%d events in %d sealed days, %d alert messages", len(want), f.days, len(f.sim.Stats().Messages))
	require.Zero(t, f.temporary(), "temporary files left by the stopped process")
	exporttest.Compare(t, want, sealed(exporttest.ReadNDJSON(t, filepath.Join(f.dir, "out", "nd"))), "acme")
	exporttest.Compare(t, want, sealed(exporttest.ReadParquet(t, filepath.Join(f.dir, "out", "pq"))), "acme")
	require.GreaterOrEqual(t, len(f.sim.Stats().Messages), f.days, "the rule fired every day")
	cmd := child(t, "verify", "-c", f.cfgPath, "--from", f.date(0), "--to", f.midnight(f.days-1).Format(time.DateOnly))
	cmd.Env = append(cmd.Env, clockOffsetEnv+"=@"+f.clock)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "verify: %s", out)
}

// TestClockOffsetFile: PACHCA_EXPORT_CLOCK_OFFSET=@FILE moves the clock by
// what FILE holds at each reading (TestFollowLong moves a running process's
// clock so); a FILE missing or not a duration at the start is a usage
// error, and one unreadable later leaves the offset as it was.
func TestClockOffsetFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "clock")
	e := &env{lookup: func(k string) (string, bool) { return "@" + path, k == clockOffsetEnv }}
	_, err := e.now()
	require.ErrorContains(t, err, clockOffsetEnv)
	require.NoError(t, os.WriteFile(path, []byte("48h\n"), 0o600))
	now, err := e.now()
	require.NoError(t, err)
	require.InDelta(t, 48*time.Hour, time.Until(now()), float64(time.Minute))
	require.NoError(t, os.WriteFile(path, []byte("-24h"), 0o600))
	require.InDelta(t, -24*time.Hour, time.Until(now()), float64(time.Minute))
	require.NoError(t, os.WriteFile(path, []byte("soon"), 0o600))
	require.InDelta(t, -24*time.Hour, time.Until(now()), float64(time.Minute))
}
