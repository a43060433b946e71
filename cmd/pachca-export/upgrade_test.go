package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/state"
	"github.com/pachca-export/pachca-export/testkit/logbuf"
)

// compatFixture is what pachca-export c3145b5, the last release, left after
// two nightly runs (2026-11-20, -21) and a follow loop stopped by SIGTERM
// at 2026-11-22T12:00Z (cycle files of that morning, follow.json, the
// day's follow id log), all signed (testdata/compat-c3145b5/generate.sh).
const compatFixture = "testdata/compat-c3145b5"

// TestUpgradeFromC3145b5: today's binary continues the state and output
// c3145b5 wrote, as README's "Upgrading" says: check passes; follow goes
// on from the old watermark and seals 2026-11-22 (the old cycle files
// replaced by the day's file); the nightly run's catch-up exports
// 2026-11-23 and nothing before it; verify passes every day, the old
// manifests' signatures and chain included, with all the API has; every
// event of the simulator is in the NDJSON files once. It fails when the
// state's files, the follow id logs, the location marker or the manifests
// and their chain are read otherwise than c3145b5 wrote them.
func TestUpgradeFromC3145b5(t *testing.T) {
	t.Parallel()
	f := openCompatFixture(t, true)
	cfgPath, at, cli := f.cfgPath, f.at, f.cli

	// The morning after the follow loop stopped: check, then follow.
	env := at(time.Date(2026, 11, 23, 0, 5, 0, 0, time.UTC))
	out, errOut, err := cli(env, "check", "-c", cfgPath)
	require.NoError(t, err, "check:\n%s%s", out, errOut)
	require.Contains(t, out, "holds this configuration's data")
	require.NotContains(t, out, "FAIL")

	cmd := child(t, "follow", "-c", cfgPath, "--listen", "127.0.0.1:0")
	cmd.Env = append(cmd.Env, env...)
	var followLog logbuf.Buffer
	cmd.Stderr = &followLog
	require.NoError(t, cmd.Start())
	sealed := regexp.MustCompile(`msg="follow: day sealed" workspace=compat day=2026-11-22 `)
	deadline := time.Now().Add(time.Minute)
	for !sealed.MatchString(followLog.String()) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("follow sealed no 2026-11-22 within a minute:\n%s", followLog.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), "follow:\n%s", followLog.String())
	// The seal counts the 46 events of c3145b5's cycle files (its follow id
	// log read) and delivers the 47 after its watermark, 11:58:02.985.
	require.Contains(t, followLog.String(), `msg="follow: day sealed" workspace=compat day=2026-11-22 events_before=46 events_new=47 compacted=true`)
	require.NotRegexp(t, `level=(WARN|ERROR)`, followLog.String())

	// The next night's run: the catch-up exports 2026-11-23 only.
	env = at(time.Date(2026, 11, 24, 6, 0, 0, 0, time.UTC))
	out, errOut, err = cli(env, "run", "-c", cfgPath)
	require.NoError(t, err, "run:\n%s%s", out, errOut)
	require.Regexp(t, `range +2026-11-23T00:00:00Z \.\. 2026-11-24T00:00:00Z`, errOut)
	require.Regexp(t, `days delivered +1 \(2026-11-23\)`, errOut)
	require.NotRegexp(t, `level=(WARN|ERROR)`, errOut)

	f.verifyOnce(t, env)
}

// compatTree is a copy of the fixture's tree beside the simulator it was
// written against.
type compatTree struct {
	dir, cfgPath string
	events       int
	// at moves the exporter's clock and the API's to a time, and returns
	// the environment of the commands run then.
	at  func(time.Time) []string
	cli func(env []string, args ...string) (stdout, stderr string, err error)
}

// openCompatFixture copies the fixture to a temporary directory, its state
// placed at the copy's key when keepState (else the copy has a new state,
// as a tree copied elsewhere by hand), and starts the simulator.
func openCompatFixture(t *testing.T, keepState bool) *compatTree {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.CopyFS(dir, os.DirFS(filepath.Join(compatFixture, "tree"))))
	key, err := os.ReadFile(filepath.Join(compatFixture, "signing.pem"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "signing.pem"), key, 0o600))
	cfgPath := filepath.Join(dir, "pipeline.yaml")
	require.NoError(t, os.Chmod(cfgPath, 0o600))
	if keepState {
		placeState(t, cfgPath)
	}

	// The simulator generate.sh ran: the same seed, the same 400 events.
	// (A change to what the simulator generates fails verify --against-api
	// on the fixture's days: run generate.sh again.)
	sc := simulator.DefaultConfig()
	sc.Seed, sc.Events = 7, 400
	sc.From, sc.To = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	sim, err := simulator.New(sc)
	require.NoError(t, err)
	base, err := sim.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { sim.Close() })
	// The locations' identity holds base_url http://pachca-api.test: the
	// simulator is reached as its proxy, wherever it listens.
	proxy := "HTTP_PROXY=" + strings.TrimSuffix(base, "/api/shared/v1")
	return &compatTree{
		dir: dir, cfgPath: cfgPath, events: sc.Events,
		at: func(t time.Time) []string {
			d := time.Until(t)
			sim.SetClockOffset(d)
			return []string{proxy, "http_proxy=", "NO_PROXY=", "no_proxy=", clockOffsetEnv + "=" + d.String()}
		},
		cli: func(env []string, args ...string) (stdout, stderr string, err error) {
			cmd := child(t, args...)
			cmd.Env = append(cmd.Env, env...)
			var o, e bytes.Buffer
			cmd.Stdout, cmd.Stderr = &o, &e
			err = cmd.Run()
			return o.String(), e.String(), err
		},
	}
}

// verifyOnce checks with verify that every day of the tree up to
// 2026-11-23 holds all the API has, signed by the fixture's key and
// chained, and that every event is in the NDJSON files once, a day in
// one file.
func (f *compatTree) verifyOnce(t *testing.T, env []string) {
	t.Helper()
	out, errOut, err := f.cli(env, "verify", "-c", f.cfgPath, "--against-api", "--public-key", filepath.Join(compatFixture, "signing.pub"))
	require.NoError(t, err, "verify:\n%s%s", out, errOut)
	ok := regexp.MustCompile(`(?m)^OK +dt=(2026-11-2[0-3]) +sinks\[[01]\] .* all the API has, signature good$`)
	require.Len(t, ok.FindAllString(out, -1), 8, "verify:\n%s", out)
	require.NotContains(t, out, "FAIL")

	seen := map[string]int{}
	files, err := filepath.Glob(filepath.Join(f.dir, "out", "ndjson", "dt=*", "*.ndjson.gz"))
	require.NoError(t, err)
	require.Len(t, files, 4, "one file a day: %v", files)
	for _, file := range files {
		for _, id := range ndjsonIDs(t, file) {
			seen[id]++
		}
	}
	require.Len(t, seen, f.events)
	for id, n := range seen {
		require.Equal(t, 1, n, "event %s delivered %d times", id, n)
	}
}

// TestUpgradeFromC3145b5Copied: the tree copied to another path, as
// README's "Changing the configuration" says of a tree moved whole: a new
// state (the key holds the absolute paths), whose catch-up warns and goes
// on after the days the sinks hold whole, 2026-11-22 (the old loop's
// cycle files replaced) and 2026-11-23; verify passes, every event once.
func TestUpgradeFromC3145b5Copied(t *testing.T) {
	t.Parallel()
	f := openCompatFixture(t, false)
	env := f.at(time.Date(2026, 11, 24, 6, 0, 0, 0, time.UTC))
	out, errOut, err := f.cli(env, "run", "-c", f.cfgPath)
	require.NoError(t, err, "run:\n%s%s", out, errOut)
	require.Contains(t, errOut, "beside sinks that hold days")
	require.Regexp(t, `days delivered +2 \(2026-11-22 \.\. 2026-11-23\)`, errOut)
	f.verifyOnce(t, env)
}

// placeState moves the fixture's one state directory to the key of the
// configuration at its new path: the key holds the sinks' absolute paths,
// and generate.sh took them out (README, "Changing the configuration": a
// tree copied elsewhere gets a new state; here the old one is kept).
func placeState(t *testing.T, cfgPath string) {
	t.Helper()
	cfg, err := config.Load(cfgPath, os.LookupEnv)
	require.NoError(t, err)
	key, err := state.Key(pipeline.Identity(cfg))
	require.NoError(t, err)
	keys, err := os.ReadDir(cfg.State.Dir)
	require.NoError(t, err)
	require.Len(t, keys, 1)
	require.NoError(t, os.Rename(filepath.Join(cfg.State.Dir, keys[0].Name()), filepath.Join(cfg.State.Dir, key)))
}

// ndjsonIDs is the ids of the events of a gzipped NDJSON file.
func ndjsonIDs(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	require.NoError(t, err)
	var ids []string
	sc := bufio.NewScanner(zr)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r struct {
			ID string `json:"id"`
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r), "%s", path)
		ids = append(ids, r.ID)
	}
	require.NoError(t, sc.Err())
	_, err = io.Copy(io.Discard, zr)
	require.NoError(t, err)
	return ids
}
