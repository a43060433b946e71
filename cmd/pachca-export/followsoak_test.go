package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/state"
	"github.com/pachca-export/pachca-export/testkit/duckdbtest"
	"github.com/pachca-export/pachca-export/testkit/exporttest"
	"github.com/pachca-export/pachca-export/testkit/kafkatest"
	"github.com/pachca-export/pachca-export/testkit/logbuf"
	"github.com/pachca-export/pachca-export/testkit/miniotest"
)

// TestFollowKillSoak kills a follow process with SIGKILL at a moment drawn
// uniformly over its life (its start, the redo of a pending cycle, cycles,
// the seal of a day and its compaction, the writes of positions and
// manifests), starts it again, and so on until several UTC days are
// sealed, against the live simulator publishing events, a share of them
// late. The clocks of both are a few seconds before a midnight eight days
// ago; while the process is down they jump, at times, to the next midnight
// or the one after (a daemon down for a day or two: its restart catches up
// and seals the days in between). A last start, stopped with SIGTERM, ends
// each iteration; then SPEC §8: every event of the sealed days once in
// NDJSON and in Parquet (read with DuckDB), no event twice in any day, no
// file a reader's glob would pick up that no manifest lists, verify passes.
// In about half the iterations a Kafka sink too, on a kfake broker in the
// test process (it outlives the kills): every event of the sealed days from
// the loop's start (--from) on at least once in the topic, each message the
// record of an event of the simulator from then on (key its id, value and
// headers its fields), none other (README, Follow: the first day's events
// before --from go to file sinks at the seal, never to streams). With
// PACHCA_MINIO set (`make followsoak` sets it), about half the iterations
// add an S3 sink (MinIO), checked as the file sinks are.
// It runs only with PACHCA_FOLLOW_SOAK=<iterations> (`make followsoak`);
// PACHCA_FOLLOW_SOAK_SEED picks the random sequence;
// PACHCA_FOLLOW_SOAK_STRACE=1 kills at a syscall instead, on entering a
// random rename, unlink, fsync or write (strace's fault injection; after
// the delay still if that comes first).
func TestFollowKillSoak(t *testing.T) {
	n, rng, straceBin := soakSettings(t, "PACHCA_FOLLOW_SOAK", "followsoak", 11)
	minio := (*miniotest.Server)(nil)
	if os.Getenv("PACHCA_MINIO") != "" {
		minio = miniotest.Start(t)
		minio.CreateBucket("soak")
	}
	byMoment := killTally{}
	for i := range n {
		fs := followSoak{rng: rng, iter: i, strace: straceBin, days: 2 + rng.IntN(3), faults: rng.IntN(3) == 0, keep: rng.IntN(4) == 0,
			kafka: rng.IntN(2) == 0, s3: rng.IntN(2) == 0 && minio != nil, minio: minio}
		var moments []string
		ok := t.Run(fmt.Sprintf("%03d-days=%d-faults=%v-keep=%v-kafka=%v-s3=%v", i, fs.days, fs.faults, fs.keep, fs.kafka, fs.s3), func(t *testing.T) {
			fs.t = t
			defer func() { moments = fs.moments }() // a failed check ends the test at once
			fs.run()
		})
		byMoment.add(moments, ok)
	}
	byMoment.log(t, 70)
}

// followSoak is one iteration of TestFollowKillSoak.
type followSoak struct {
	t      *testing.T
	rng    *rand.Rand
	iter   int
	days   int  // days to seal, at least
	faults bool // the simulator fails 5% of the requests
	keep   bool // follow.keep_cycle_files
	kafka  bool // a Kafka sink too
	s3     bool // an S3 sink too, in minio
	minio  *miniotest.Server
	strace string
	// minLife is the shortest life: doubled after each that ended past
	// the moment a day was due to be sealed without sealing one, so that
	// a process whose seal takes longer than a life gets to the end of one.
	minLife time.Duration
	seals   []float64 // durations of the cycles that sealed days, in s
	// moments are the kills, each as what the process was doing: the
	// part of its epoch on the clock, its last log line, what it left.
	moments []string

	sim     *simulator.Server
	cfg     string
	dir     string
	view    *state.View
	brokers []string      // the kfake broker's, with kafka
	offset  time.Duration // of both clocks from the wall clock
	m0      time.Time     // the first midnight: day 0 is the day before it
	from    string        // --from
	late    int           // late events the cycles and seals logged
}

const (
	soakLag      = time.Second
	soakLookback = 3 * time.Second
	soakPatience = time.Minute
)

// prefix is the iteration's in the S3 bucket.
func (s *followSoak) prefix() string { return fmt.Sprintf("follow%03d", s.iter) }

func (s *followSoak) now() time.Time { return time.Now().Add(s.offset).UTC() }

// midnight is the end of day k.
func (s *followSoak) midnight(k int) time.Time { return s.m0.AddDate(0, 0, k) }

func (s *followSoak) date(k int) string {
	return s.midnight(k).AddDate(0, 0, -1).Format(time.DateOnly)
}

func (s *followSoak) run() {
	t := s.t
	s.m0 = time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -8)
	s.offset = time.Until(s.m0.Add(-s.secondsBefore()))
	sc := simulator.DefaultConfig()
	// Days of up to 10,000 events: a seal and its compaction take long
	// enough for kills to land in them.
	sc.Events, sc.Seed = (s.days+3)*(200+s.rng.IntN(10000)), int64(s.iter+1)
	sc.From, sc.To = s.m0.AddDate(0, 0, -1), s.m0.AddDate(0, 0, s.days+2)
	sc.ClockOffset = s.offset
	sc.Live = simulator.Live{Rate: float64(30 + s.rng.IntN(70)), LateShare: 0.3, MaxLate: 2500 * time.Millisecond}
	if s.faults {
		sc.FaultRate, sc.SlowDelay = 0.05, 300*time.Millisecond
	}
	sim, err := simulator.New(sc)
	require.NoError(t, err)
	base, err := sim.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { sim.Close() })
	s.sim = sim

	comp := []string{"none", "gzip", "zstd"}[s.rng.IntN(3)]
	extra := "" // the Kafka and S3 sinks
	if s.kafka {
		// In the test process: the topic outlives the kills.
		s.brokers = soakBroker(t)
		extra = soakKafkaSink(s.brokers)
	}
	if s.s3 {
		extra += soakS3Sink(s.minio, s.prefix())
	}
	s.cfg = writeConfig(t, base, secretToken, fmt.Sprintf(`source:
  base_url: %%BASE%%
  token: %%TOKEN%%
  workspace: acme
  requests_per_second: 200
  timeout: 5s
period:
  lag: %s
follow:
  interval: 500ms
  lookback: %s
  keep_cycle_files: %v
sinks:
  - type: ndjson
    dir: %%DIR%%/out/nd
    compression: %s
  - type: parquet
    dir: %%DIR%%/out/pq
%sstate:
  dir: %%DIR%%/state
`, soakLag, soakLookback, s.keep, comp, extra))
	s.dir = filepath.Dir(s.cfg)
	cfg, err := config.Load(s.cfg, os.LookupEnv)
	require.NoError(t, err)
	s.view, err = state.Peek(cfg.State.Dir, pipeline.Identity(cfg))
	require.NoError(t, err)
	// From the start of day 0 (its events so far come with the first
	// cycle), or from now (those before come with the seal).
	s.from = s.m0.AddDate(0, 0, -1).Format(time.RFC3339)
	if s.rng.IntN(2) == 0 {
		s.from = s.now().Add(-time.Second).Format(time.RFC3339Nano)
	}

	k := 0 // the epoch: the clocks are about midnight(k)
	for life := 0; ; life++ {
		require.Less(t, life, 6*s.days+10, "too many lives without sealing %d days: the process does not come back", s.days)
		exported := s.exported()
		if exported[s.date(k)] {
			if s.sealedAll(exported) {
				break
			}
			// Down for a while: the clocks jump to a few seconds before
			// the next midnight, or the one after.
			j := 1
			if s.rng.IntN(4) == 0 {
				j = 2
			}
			k += j
			s.jump(s.midnight(k).Add(-s.secondsBefore()))
		}
		s.killAt(k)
	}
	s.last()
	s.check()
}

// secondsBefore is how long before a midnight an epoch starts: 1.5 to 6 s.
func (s *followSoak) secondsBefore() time.Duration {
	return 1500*time.Millisecond + time.Duration(s.rng.Int64N(int64(4500*time.Millisecond)))
}

// jump moves both clocks to at, unless they are past it.
func (s *followSoak) jump(at time.Time) {
	if d := at.Sub(s.now()); d > 0 {
		s.offset += d
		s.sim.SetClockOffset(s.offset)
	}
}

// start starts the process; with at ("renameat#3"), under strace, to be
// killed on entering that call.
func (s *followSoak) start(at string) (*exec.Cmd, *logbuf.Buffer) {
	cmd := child(s.t, "follow", "-c", s.cfg, "--from", s.from, "--log-format", "json")
	cmd.Env = append(cmd.Env, clockOffsetEnv+"="+s.offset.String())
	if at != "" {
		killAtSyscall(cmd, s.strace, at)
		// Its own process group, killed whole: a tracee outlives a
		// tracer killed alone.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	var stderr logbuf.Buffer
	cmd.Stderr = &stderr
	require.NoError(s.t, cmd.Start())
	return cmd, &stderr
}

// killAt starts the process and kills it after a delay uniform over its
// life in epoch k: until 2.5 s past the moment day k is due to be sealed
// (midnight(k) + lag + lookback), and at least 3 s.
func (s *followSoak) killAt(k int) {
	t := s.t
	due := s.midnight(k).Add(soakLag + soakLookback)
	s.minLife = max(s.minLife, 3*time.Second)
	life := max(due.Add(2500*time.Millisecond).Sub(s.now()), s.minLife)
	before := len(s.exported())
	delay := time.Duration(s.rng.Int64N(int64(life) + 1))
	at := ""
	if s.strace != "" {
		calls := []struct {
			name string
			max  int // about the most one thread makes in a life
		}{{"rename", 20}, {"renameat", 20}, {"renameat2", 3}, {"unlinkat", 10}, {"fsync", 20}, {"write", 100}}
		c := calls[s.rng.IntN(len(calls))]
		at, delay = fmt.Sprintf("%s#%d", c.name, 1+s.rng.IntN(c.max)), life
	}
	cmd, stderr := s.start(at)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	how := "after the delay"
	select {
	case <-time.After(delay):
		if at != "" {
			require.NoError(t, syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)) // strace and the process
		} else if err := cmd.Process.Signal(syscall.SIGKILL); !errors.Is(err, os.ErrProcessDone) {
			require.NoError(t, err)
		}
		<-exited
	case err := <-exited:
		var ee *exec.ExitError
		if at == "" || !errors.As(err, &ee) || !strings.Contains(ee.String(), "killed") && ee.ExitCode() != 128+9 {
			require.Failf(t, "the follow process ended by itself", "%v: %s", err, stderr.String())
		}
		how = "at " + strings.Split(at, "#")[0]
	}
	now := s.now()
	phase := "before midnight"
	switch {
	case !now.Before(due.Add(2 * time.Second)):
		phase = "seal due +2s"
	case !now.Before(due):
		phase = "seal due"
	case !now.Before(s.midnight(k)):
		phase = "after midnight"
	}
	s.logged(stderr.String())
	if sealed := len(s.exported()) > before; sealed {
		s.minLife = 0
	} else if !now.Before(due) {
		s.minLife *= 2
	}
	left := s.leftBehind()
	if !now.Before(due) && !s.exported()[s.date(k)] && strings.Contains(stderr.String(), `"msg":"follow: cycle"`) &&
		time.Since(lastTime(stderr.String())) > 700*time.Millisecond {
		// Due, not sealed, the first cycle done and none for longer than
		// the interval: the next cycle was in the seal.
		left = "in the seal, " + left
	}
	moment := fmt.Sprintf("%-16s after %-28q %s", phase, lastMsg(stderr.String()), left)
	if s.strace != "" {
		moment = fmt.Sprintf("%-15s %s", how, moment)
	}
	s.moments = append(s.moments, moment)
	t.Logf("killed %s %v of %v (%s): %s", at, delay.Round(time.Millisecond), life.Round(time.Millisecond), now.Format("01-02T15:04:05.000"), moment)
}

// leftBehind names what a killed process left half done: a pending cycle,
// a compaction's staging directory, a temporary file.
func (s *followSoak) leftBehind() string {
	var left []string
	if f, _, err := s.view.Follow(); err == nil && f.Pending != nil {
		left = append(left, "pending cycle")
	}
	for _, sink := range []string{"nd", "pq"} {
		if m, _ := filepath.Glob(filepath.Join(s.dir, "out", sink, ".dt=*")); len(m) > 0 {
			left = append(left, "staged compaction")
			break
		}
	}
	tmp := false
	_ = filepath.WalkDir(filepath.Join(s.dir, "out"), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasPrefix(d.Name(), ".") {
			tmp = true
		}
		return nil
	})
	if tmp {
		left = append(left, "temporary file")
	}
	if len(left) == 0 {
		return "nothing half done"
	}
	return strings.Join(left, "+")
}

// last starts the process once more, waits until it sealed the days and
// committed a cycle of its own, and stops it with SIGTERM: exit 0.
func (s *followSoak) last() {
	t := s.t
	cmd, stderr := s.start("")
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(soakPatience)
	for !s.sealedAll(s.exported()) || !strings.Contains(stderr.String(), `"msg":"follow: cycle"`) {
		select {
		case err := <-exited:
			require.Failf(t, "the follow process ended by itself", "%v: %s", err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		require.False(t, time.Now().After(deadline), "the restarted process sealed no day or committed no cycle within %v: %s", soakPatience, stderr.String())
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-exited:
		require.NoError(t, err, "SIGTERM: exit 0\n%s", stderr.String())
	case <-time.After(15 * time.Second):
		require.Fail(t, "no exit within 15 s of SIGTERM")
	}
	s.logged(stderr.String())
}

// exported are the days the state records as exported.
func (s *followSoak) exported() map[string]bool {
	ex, err := s.view.Exported()
	require.NoError(s.t, err)
	out := map[string]bool{}
	for d := range ex {
		out[d] = true
	}
	return out
}

func (s *followSoak) sealedAll(exported map[string]bool) bool {
	for k := range s.days {
		if !exported[s.date(k)] {
			return false
		}
	}
	return true
}

// check compares the sealed days with the simulator's events, reads every
// day for doubles, looks for stray files and runs verify.
func (s *followSoak) check() {
	t := s.t
	exported := s.exported()
	var sealed []string
	for d := range exported {
		sealed = append(sealed, d)
	}
	sort.Strings(sealed)
	require.Equal(t, s.date(0), sealed[0], "day 0 sealed first")
	last, err := time.Parse(time.DateOnly, sealed[len(sealed)-1])
	require.NoError(t, err)
	require.Len(t, sealed, int(last.Sub(s.m0.AddDate(0, 0, -1))/(24*time.Hour))+1, "the sealed days follow each other: %v", sealed)
	want := exporttest.Expected(s.sim, s.m0.AddDate(0, 0, -1), last.AddDate(0, 0, 1))
	sort.Float64s(s.seals)
	t.Logf("%d sealed days, %d events, %d late events caught; %d cycles sealed days, taking %v s", len(sealed), len(want), s.late, len(s.seals), s.seals)

	// NDJSON: no event twice anywhere (ReadNDJSON fails on a double, in
	// the open day's cycle files too), the sealed days exactly.
	nd := filepath.Join(s.dir, "out", "nd")
	all := exporttest.ReadNDJSON(t, nd)
	got := map[string]exporttest.Line{}
	for id, l := range all {
		if exported[strings.TrimPrefix(l.Dir, "dt=")] {
			got[id] = l
		}
	}
	exporttest.Compare(t, want, got, "acme")

	// Parquet, with DuckDB: no id twice; the sealed days' ids exactly.
	pq := filepath.Join(s.dir, "out", "pq")
	rows := duckdbtest.Query(t, fmt.Sprintf(`select count(*)::int n, count(distinct id)::int d from read_parquet('%s/*/*.parquet')`, pq))
	require.Equal(t, rows[0]["d"], rows[0]["n"], "parquet: an id twice")
	globs := make([]string, len(sealed))
	for i, d := range sealed {
		globs[i] = fmt.Sprintf("'%s/dt=%s/*.parquet'", pq, d)
	}
	ids := duckdbtest.Query(t, fmt.Sprintf(`select id from read_parquet([%s])`, strings.Join(globs, ", ")))
	seen := map[string]bool{}
	for _, r := range ids {
		seen[r["id"].(string)] = true
	}
	require.Len(t, ids, len(want), "parquet events of the sealed days")
	for _, ev := range want {
		require.True(t, seen[ev.ID], "parquet lacks %s (%s)", ev.ID, ev.CreatedAt.Format(time.RFC3339Nano))
	}

	dirs := []string{filepath.Join(s.dir, "out", "nd"), filepath.Join(s.dir, "out", "pq")}
	if s.s3 {
		// S3, downloaded: as NDJSON, the sealed days exactly.
		local := downloadPrefix(t, s.minio, "soak", s.prefix())
		got := map[string]exporttest.Line{}
		for id, l := range exporttest.ReadNDJSON(t, local) {
			if exported[strings.TrimPrefix(l.Dir, "dt=")] {
				got[id] = l
			}
		}
		exporttest.Compare(t, want, got, "acme")
		dirs = append(dirs, local)
	}
	for _, dir := range dirs {
		(&soak{t: t}).noStrayFile(dir)
		if !s.keep {
			for _, d := range sealed {
				files, err := filepath.Glob(filepath.Join(dir, "dt="+d, "pachca-audit-*"))
				require.NoError(t, err)
				require.Len(t, files, 1, "a sealed day is one file: %v", files)
			}
		}
	}
	if s.kafka {
		s.checkKafka(want)
	}
	out, err := child(t, "verify", "-c", s.cfg, "--from", sealed[0], "--to", last.AddDate(0, 0, 1).Format(time.DateOnly)).CombinedOutput()
	require.NoError(t, err, "verify: %s", out)
}

// lastTime is the time of the last JSON line of a log.
func lastTime(log string) time.Time {
	var last time.Time
	for _, line := range strings.Split(log, "\n") {
		var l struct {
			Time time.Time `json:"time"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && !l.Time.IsZero() {
			last = l.Time
		}
	}
	return last
}

// logged adds up what the cycles of a follow process logged: the late
// events, the durations of those that sealed days.
func (s *followSoak) logged(log string) {
	for _, line := range strings.Split(log, "\n") {
		var c struct {
			Msg        string  `json:"msg"`
			Late       int     `json:"late"`
			SealedDays int     `json:"sealed_days"`
			Duration   float64 `json:"duration_s"`
		}
		if json.Unmarshal([]byte(line), &c) != nil || c.Msg != "follow: cycle" {
			continue
		}
		s.late += c.Late
		if c.SealedDays > 0 {
			s.seals = append(s.seals, math.Round(c.Duration*100)/100)
		}
	}
}

// checkKafka reads the topic: every event of want (the sealed days') from
// the loop's start on at least once; every message an event of the
// simulator from then on, of any day (the open day's cycles send theirs
// too), its key the id, its value the record and its headers the event's
// (README, Kafka).
func (s *followSoak) checkKafka(want []simulator.Event) {
	t := s.t
	pos, _, err := s.view.Follow()
	require.NoError(t, err)
	start := time.UnixMilli(pos.Start.UnixMilli()).UTC() // as the loop compares (plan.StreamsFrom)
	events := map[string]simulator.Event{}
	for _, ev := range s.sim.Events() {
		events[ev.ID] = ev
	}
	seen := map[string]int{}
	recs := kafkatest.Consume(t, s.brokers, "audit")
	for _, r := range recs {
		id := string(r.Key)
		ev, ok := events[id]
		require.True(t, ok, "kafka: message at %d/%d keyed %q is no event of the simulator: %s", r.Partition, r.Offset, id, r.Value)
		require.False(t, ev.CreatedAt.Before(start), "kafka: %s (%s) is before the loop's start %s", id, ev.CreatedAt.Format(time.RFC3339Nano), start.Format(time.RFC3339Nano))
		seen[id]++
		exporttest.CompareOne(t, ev.Raw, exporttest.Line{Dir: "dt=" + ev.CreatedAt.Format(time.DateOnly), Fields: exporttest.Decode(t, r.Value)}, "acme")
		headers := map[string]string{}
		for _, h := range r.Headers {
			headers[h.Key] = string(h.Value)
		}
		require.Equal(t, map[string]string{"event_key": ev.Key, "schema_version": "pachca.audit.v1", "workspace": "acme"}, headers, "kafka: headers of %s", id)
		require.True(t, r.Timestamp.Equal(ev.CreatedAt), "kafka: timestamp of %s: %v, created_at %v", id, r.Timestamp, ev.CreatedAt)
	}
	before := 0
	for _, ev := range want {
		if ev.CreatedAt.Before(start) {
			before++
			continue
		}
		require.Positive(t, seen[ev.ID], "kafka lacks %s (%s %s)", ev.ID, ev.Key, ev.CreatedAt.Format(time.RFC3339Nano))
	}
	twice, most := 0, 0
	for _, n := range seen {
		if n > 1 {
			twice++
		}
		most = max(most, n)
	}
	t.Logf("kafka: %d messages, %d events, %d of them more than once (at most %d times); %d events of the sealed days before the start %s, in the files only",
		len(recs), len(seen), twice, most, before, start.Format(time.RFC3339Nano))
}
