package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/pachca-export/pachca-export/extract"
	"github.com/pachca-export/pachca-export/internal/atomicfile"
	"github.com/pachca-export/pachca-export/internal/sumfile"
	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/testkit/duckdbtest"
	"github.com/pachca-export/pachca-export/testkit/exporttest"
	"github.com/pachca-export/pachca-export/testkit/kafkatest"
	"github.com/pachca-export/pachca-export/testkit/miniotest"
)

// TestKillSoak kills runs with SIGKILL after a random delay, uniform over
// the whole of an uncut run (its start, the fetch, the delivery of days,
// the state writes, the summary), runs the same command again to the end
// and checks the output: every event of the period once in NDJSON and in
// Parquet (read with DuckDB), in S3 and (at least once) in Kafka; no file a
// reader's glob would pick up that no manifest lists; verify passes; the
// last run fetches no day recorded as exported. A hidden temporary file of
// a write may stay (README, Output: no data glob matches it). Scenarios:
// one kill, a kill during the rerun, a kill of a --replace run, of a
// catch-up run, of a whole-range run over files of part of a day, and of
// verify --repair; faults in the simulator or not; S3 (MinIO, when
// PACHCA_MINIO is set) and Kafka (kfake) sinks in a third of them. It runs only with PACHCA_KILL_SOAK=<iterations>
// (`make killsoak`); PACHCA_KILL_SOAK_SEED picks the random sequence,
// PACHCA_KILL_SOAK_SCENARIOS (comma-separated) limits the scenarios and
// PACHCA_KILL_SOAK_STRACE=1 kills at a syscall (strace's fault injection)
// rather than after a delay.
func TestKillSoak(t *testing.T) {
	n, rng, straceBin := soakSettings(t, "PACHCA_KILL_SOAK", "killsoak", 7)
	minio := (*miniotest.Server)(nil)
	if os.Getenv("PACHCA_MINIO") != "" {
		minio = miniotest.Start(t)
		minio.CreateBucket("soak")
	}
	scenarios := []string{"kill", "kill-rerun-kill", "replace", "catchup", "repair", "partial"}
	if only := os.Getenv("PACHCA_KILL_SOAK_SCENARIOS"); only != "" {
		scenarios = strings.Split(only, ",")
	}
	full := map[string]time.Duration{} // an uncut run's duration, by kind
	byMoment := killTally{}
	for i := range n {
		sc := scenarios[rng.IntN(len(scenarios))]
		s := soak{strace: straceBin, rng: rng, iter: i, scenario: sc, faults: rng.IntN(2) == 1, remote: minio != nil && rng.IntN(3) == 0, minio: minio, full: full}
		var moments []string
		ok := t.Run(fmt.Sprintf("%03d-%s-faults=%v-remote=%v", i, sc, s.faults, s.remote), func(t *testing.T) {
			s.t = t
			defer func() { moments = s.moments }() // a failed check ends the test at once
			s.run()
		})
		byMoment.add(moments, ok)
	}
	byMoment.log(t, 45)
}

type soak struct {
	t        *testing.T
	rng      *rand.Rand
	iter     int
	scenario string
	faults   bool
	remote   bool
	minio    *miniotest.Server
	strace   string // with PACHCA_KILL_SOAK_STRACE=1: kill at a syscall instead of after a delay
	full     map[string]time.Duration
	moments  []string

	sim      *simulator.Server
	cfg      string
	dir      string
	from, to time.Time
	brokers  []string
	prefix   string
}

func (s *soak) run() {
	t := s.t
	s.to = time.Now().UTC().Truncate(24 * time.Hour)
	s.from = s.to.AddDate(0, 0, -3)
	sc := simulator.DefaultConfig()
	sc.Events, sc.From, sc.To, sc.Seed = 300+s.rng.IntN(900), s.from, s.to, int64(s.iter+1)
	if s.rng.IntN(4) == 0 {
		// A bulk operation: more events in one millisecond than the
		// fetcher holds back, which go to the window file as they come.
		sc.TieGroup = extract.DefaultMaxWindowEvents + s.rng.IntN(2500)
		sc.Events += sc.TieGroup
	}
	if s.faults {
		sc.FaultRate, sc.SlowDelay = 0.05, 300*time.Millisecond
	}
	sim, err := simulator.New(sc)
	require.NoError(t, err)
	base, err := sim.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { sim.Close() })
	s.sim = sim

	extra := ""
	if s.remote {
		s.brokers = soakBroker(t)
		s.prefix = fmt.Sprintf("it%03d", s.iter)
		extra = soakS3Sink(s.minio, s.prefix) + soakKafkaSink(s.brokers)
	}
	comp := []string{"none", "gzip", "zstd"}[s.rng.IntN(3)]
	s.cfg = writeConfig(t, base, secretToken, `source:
  base_url: %BASE%
  token: %TOKEN%
  workspace: acme
  timeout: 5s
sinks:
  - type: ndjson
    dir: %DIR%/out/nd
    compression: `+comp+`
  - type: parquet
    dir: %DIR%/out/pq
`+extra+`state:
  dir: %DIR%/state
`)
	s.dir = filepath.Dir(s.cfg)
	rng := []string{"--from", s.from.Format(time.DateOnly), "--to", s.to.Format(time.DateOnly)}
	runArgs := append([]string{"run", "-c", s.cfg}, rng...)

	switch s.scenario {
	case "kill":
		s.kill("run", runArgs)
	case "kill-rerun-kill":
		s.kill("run", runArgs)
		s.kill("run", runArgs)
	case "replace":
		s.complete(runArgs)
		s.kill("replace", append(runArgs, "--replace"))
		runArgs = append(runArgs, "--replace")
	case "partial":
		// Files of part of a day first: the whole day replaces them.
		s.complete([]string{"run", "-c", s.cfg, "--from", s.from.Add(6 * time.Hour).Format(time.RFC3339), "--to", s.to.Add(-30 * time.Hour).Format(time.RFC3339)})
		s.kill("run-over-partial", runArgs)
	case "catchup":
		s.complete([]string{"run", "-c", s.cfg, "--from", s.from.Format(time.DateOnly), "--to", s.from.AddDate(0, 0, 1).Format(time.DateOnly)})
		runArgs = []string{"run", "-c", s.cfg}
		s.kill("catchup", runArgs)
	case "repair":
		s.complete(runArgs)
		day := s.from.AddDate(0, 0, s.rng.IntN(3)).Format(time.DateOnly)
		files, _ := filepath.Glob(filepath.Join(s.dir, "out", "nd", "dt="+day, "pachca-audit-*"))
		require.NotEmpty(t, files)
		require.NoError(t, os.Remove(files[0]))
		runArgs = append([]string{"verify", "-c", s.cfg, "--repair"}, rng...)
		s.kill("repair", runArgs)
	}
	exported := s.exportedDays()
	mark := len(s.sim.Stats().Log)
	s.complete(runArgs)
	s.check(exported, mark)
}

// kill starts args, SIGKILLs it after a delay uniform over an uncut run of
// the same kind (measured on the first of its kind) and records the moment:
// the share of that run and the last thing the process logged.
func (s *soak) kill(kind string, args []string) {
	t := s.t
	key := fmt.Sprintf("%s-remote=%v-faults=%v", kind, s.remote, s.faults)
	full, ok := s.full[key]
	if !ok {
		// Measure on a copy of the state and output, so that this
		// iteration still kills the run it measured.
		start := time.Now()
		snapshot := s.snapshot()
		s.complete(args)
		s.full[key] = time.Since(start)
		s.restore(snapshot)
		full = s.full[key]
	}
	delay := time.Duration(s.rng.Int64N(int64(full)*11/10 + 1))
	cmd := child(t, append(args, "--log-format", "json")...)
	at := ""
	if s.strace != "" {
		// SIGKILL on entering the Nth call of one syscall by one thread:
		// before a rename, an unlink, an fsync, a write or an open.
		calls := []struct {
			name string
			max  int // about the most one thread makes in a run
		}{{"renameat", 10}, {"unlinkat", 8}, {"fsync", 15}, {"write", 150}, {"openat", 50}, {"ftruncate", 4}}
		c := calls[s.rng.IntN(len(calls))]
		sys := c.name
		at = fmt.Sprintf("%s#%d", sys, 1+s.rng.IntN(c.max))
		killAtSyscall(cmd, s.strace, at)
		delay = time.Hour
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	moment := ""
	select {
	case <-time.After(delay):
		if err := cmd.Process.Signal(syscall.SIGKILL); !errors.Is(err, os.ErrProcessDone) {
			require.NoError(t, err) // else it ended as the delay did
		}
		<-exited
		moment = lastMsg(stderr.String())
	case err := <-exited:
		moment = "exit"
		if at != "" && err != nil {
			moment = "at " + at
		} else if err != nil && s.scenario != "repair" {
			t.Errorf("%s exited before the kill: %v: %s", kind, err, stderr.String())
		}
	}
	if at != "" {
		s.moments = append(s.moments, kind+" "+strings.Split(moment, "#")[0], kind+" after "+lastMsg(stderr.String()))
	} else {
		s.moments = append(s.moments, kind+" after "+moment, fmt.Sprintf("%s at %d0%%", kind, int(10*delay/full)))
	}
	t.Logf("killed %s after %v of %v: %s", kind, delay, full, moment)
}

// lastMsg is the msg of the last complete JSON line of a log.
// killTally counts a soak's kills by moment (what the process was doing,
// or the syscall it was killed at), and those of iterations that failed.
type killTally map[string]*struct{ kills, failed int }

// add counts the kills of one iteration at moments; ok: it passed.
func (k killTally) add(moments []string, ok bool) {
	for _, m := range moments {
		if k[m] == nil {
			k[m] = &struct{ kills, failed int }{}
		}
		k[m].kills++
		if !ok {
			k[m].failed++
		}
	}
}

// log logs the tally, a moment a line in a column width wide.
func (k killTally) log(t *testing.T, width int) {
	t.Helper()
	for _, m := range slices.Sorted(maps.Keys(k)) {
		t.Logf("%-*s %4d kills, %d in failed iterations", width, m, k[m].kills, k[m].failed)
	}
}

// soakSettings reads a soak's settings from the environment: env, the
// number of iterations (none: the test is skipped, naming `make target`),
// env_SEED, the random sequence (stream: the soak's own of it), and
// env_STRACE=1: kill at a syscall, with strace (its path, else "").
func soakSettings(t *testing.T, env, target string, stream uint64) (n int, rng *rand.Rand, strace string) {
	n, _ = strconv.Atoi(os.Getenv(env))
	if n <= 0 {
		t.Skipf("set %s=<iterations> to run this soak (make %s)", env, target)
	}
	seed, _ := strconv.ParseUint(os.Getenv(env+"_SEED"), 10, 64)
	rng = rand.New(rand.NewPCG(seed, stream))
	if os.Getenv(env+"_STRACE") == "1" {
		var err error
		strace, err = exec.LookPath("strace")
		require.NoError(t, err, "%s_STRACE=1 needs strace", env)
	}
	return n, rng, strace
}

// killAtSyscall runs cmd under strace, which SIGKILLs it on entering the
// call at names: "renameat#3", the third renameat of one thread.
func killAtSyscall(cmd *exec.Cmd, strace, at string) {
	cmd.Args = append([]string{strace, "-f", "-qq", "-o", "/dev/null", "-e", "trace=" + strings.Split(at, "#")[0],
		"-e", "inject=" + strings.Replace(at, "#", ":signal=SIGKILL:when=", 1), cmd.Path}, cmd.Args[1:]...)
	cmd.Path = strace
}

func lastMsg(log string) string {
	msg := "nothing logged"
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		var l struct {
			Msg string `json:"msg"`
		}
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg != "" {
			msg = l.Msg
		}
	}
	return msg
}

func (s *soak) complete(args []string) {
	cmd := child(s.t, args...)
	out, err := cmd.CombinedOutput()
	require.NoError(s.t, err, "%v: %s", args, out)
}

// snapshot copies the test's output and state aside; restore puts them back.
func (s *soak) snapshot() string {
	dst := s.t.TempDir()
	for _, d := range []string{"out", "state"} {
		if _, err := os.Stat(filepath.Join(s.dir, d)); err == nil {
			require.NoError(s.t, exec.Command("cp", "-a", filepath.Join(s.dir, d), dst).Run())
		}
	}
	return dst
}

func (s *soak) restore(snap string) {
	for _, d := range []string{"out", "state"} {
		require.NoError(s.t, os.RemoveAll(filepath.Join(s.dir, d)))
		if _, err := os.Stat(filepath.Join(snap, d)); err == nil {
			require.NoError(s.t, exec.Command("cp", "-a", filepath.Join(snap, d), s.dir).Run())
		}
	}
	// The measured run's S3 objects stay (the rerun replaces them) and
	// Kafka holds its events once more (at least once).
}

// exportedDays reads the days the state records as exported.
func (s *soak) exportedDays() map[string]bool {
	keys, err := os.ReadDir(filepath.Join(s.dir, "state"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil // killed before it made the state
	}
	require.NoError(s.t, err)
	out := map[string]bool{}
	for _, k := range keys {
		var m map[string]json.RawMessage
		_, err := sumfile.Read(filepath.Join(s.dir, "state", k.Name(), "exported.json"), &m, "")
		require.NoError(s.t, err)
		for d := range m {
			out[d] = true
		}
	}
	return out
}

func (s *soak) check(exportedBefore map[string]bool, mark int) {
	t := s.t
	want := exporttest.Expected(s.sim, s.from, s.to)
	exporttest.Compare(t, want, exporttest.ReadNDJSON(t, filepath.Join(s.dir, "out", "nd")), "acme")
	pq := filepath.Join(s.dir, "out", "pq")
	rows := duckdbtest.Query(t, fmt.Sprintf(`select count(*)::int n, count(distinct id)::int d from read_parquet('%s/*/*.parquet')`, pq))
	require.EqualValues(t, len(want), rows[0]["n"], "parquet events")
	require.EqualValues(t, len(want), rows[0]["d"], "parquet distinct ids")
	for _, sink := range []string{"nd", "pq"} {
		s.noStrayFile(filepath.Join(s.dir, "out", sink))
	}
	if s.remote {
		s.checkRemote(want)
	}
	out, err := child(t, "verify", "-c", s.cfg, "--from", s.from.Format(time.DateOnly), "--to", s.to.Format(time.DateOnly)).CombinedOutput()
	require.NoError(t, err, "verify: %s", out)
	// The last run fetched no day recorded as exported before it.
	if s.scenario != "repair" {
		for _, r := range s.sim.Stats().Log[mark:] {
			if !r.Start.IsZero() && r.Status == 200 {
				day := r.Start.UTC().Format(time.DateOnly)
				require.False(t, exportedBefore[day] && s.scenario != "replace", "the rerun fetched %s, exported before it", day)
			}
		}
	}
}

// noStrayFile: under dir only the marker, and in dt= directories the
// manifest and the data files it lists.
func (s *soak) noStrayFile(dir string) {
	t := s.t
	require.NoError(t, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		rel, _ := filepath.Rel(dir, path)
		if d.IsDir() {
			require.True(t, rel == "." || strings.HasPrefix(rel, "dt=") && !strings.Contains(rel, "/"), "stray directory %s", rel)
			return nil
		}
		if rel == sinks.MarkerName {
			return nil
		}
		day, name := filepath.Split(rel)
		if atomicfile.IsTemp(name) {
			// A write's hidden temporary file: no data glob matches it, and
			// the next write of the same file removes it (README, Output).
			t.Logf("temporary file left: %s", rel)
			return nil
		}
		require.True(t, strings.HasPrefix(day, "dt="), "stray file %s", rel)
		if name == sinks.ManifestName {
			return nil
		}
		var m sinks.Manifest
		b, err := os.ReadFile(filepath.Join(dir, day, sinks.ManifestName))
		require.NoError(t, err, "%s has no manifest", rel)
		require.NoError(t, json.Unmarshal(b, &m))
		require.True(t, slices.ContainsFunc(m.Files, func(f sinks.ManifestFile) bool { return f.Name == name }), "%s is in no manifest", rel)
		return nil
	}))
}

func (s *soak) checkRemote(want []simulator.Event) {
	t := s.t
	// S3: download the prefix and read it as the file sink's layout.
	local := downloadPrefix(t, s.minio, "soak", s.prefix)
	exporttest.Compare(t, want, exporttest.ReadNDJSON(t, local), "acme")
	s.noStrayFile(local)
	// Kafka: every event at least once.
	seen := map[string]bool{}
	for _, r := range kafkatest.Consume(t, s.brokers, "audit") {
		seen[string(r.Key)] = true
	}
	for _, ev := range want {
		require.True(t, seen[ev.ID], "event %s not in Kafka", ev.ID)
	}
}

// soakBroker starts a Kafka broker (kfake) in the test process, which
// outlives the kills of the soaks' children, with the topic audit.
func soakBroker(t *testing.T) []string {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "audit"))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// soakKafkaSink is the soaks' Kafka sink, to the topic audit of brokers,
// as an entry of sinks: in pipeline.yaml.
func soakKafkaSink(brokers []string) string {
	return fmt.Sprintf(`  - type: kafka
    brokers: [%s]
    topic: audit
    write_timeout: 3s
    dial_timeout: 2s
`, strings.Join(brokers, ","))
}

// soakS3Sink is the soaks' S3 sink, gzipped NDJSON under prefix in the
// bucket soak of m, as an entry of sinks: in pipeline.yaml.
func soakS3Sink(m *miniotest.Server, prefix string) string {
	return fmt.Sprintf(`  - type: s3
    bucket: soak
    prefix: %s
    region: %s
    endpoint: %s
    force_path_style: true
    access_key_id: %s
    secret_access_key: %s
    format: ndjson
    compression: gzip
`, prefix, m.Region, m.Endpoint, m.AccessKey, m.SecretKey)
}

// downloadPrefix copies the objects of bucket under prefix into a
// directory, in the file sink's layout, and fails on an object neither the
// marker nor in a dt= directory.
func downloadPrefix(t *testing.T, minio *miniotest.Server, bucket, prefix string) string {
	local := t.TempDir()
	cl := minio.Client()
	// One page: a soak's prefix holds far fewer than 1,000 objects.
	list, err := cl.ListObjectsV2(t.Context(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix + "/")})
	require.NoError(t, err)
	require.False(t, aws.ToBool(list.IsTruncated), "more than one page of objects under %s", prefix)
	for _, o := range list.Contents {
		rel := strings.TrimPrefix(*o.Key, prefix+"/")
		require.True(t, rel == sinks.MarkerName || strings.HasPrefix(rel, "dt="), "stray object %s", *o.Key)
		obj, err := cl.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: o.Key})
		require.NoError(t, err)
		b, err := io.ReadAll(obj.Body)
		obj.Body.Close()
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(filepath.Join(local, filepath.Dir(rel)), 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(local, rel), b, 0o600))
	}
	return local
}
