package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/extract"
	"github.com/pachca-export/pachca-export/internal/sumfile"
	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/state"
	"github.com/pachca-export/pachca-export/testkit/exporttest"
)

// TestMain lets the test binary act as pachca-export, so that tests can run
// it as a child process and kill it.
func TestMain(m *testing.M) {
	if os.Getenv("PACHCA_EXPORT_AS_CLI") == "1" {
		os.Exit(process())
	}
	os.Exit(m.Run())
}

func child(t *testing.T, args ...string) *exec.Cmd {
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), "PACHCA_EXPORT_AS_CLI=1")
	return cmd
}

// committedWindows reads the spool of the only state under root.
func committedWindows(t *testing.T, root string, days []string) ([]extract.Window, map[string]bool) {
	keys, err := os.ReadDir(root)
	require.NoError(t, err)
	require.Len(t, keys, 1)
	dir := filepath.Join(root, keys[0].Name())
	var ws []extract.Window
	for _, d := range days {
		entries, _ := os.ReadDir(filepath.Join(dir, "spool", d))
		for _, e := range entries {
			var w extract.Window
			if n, _ := fmtSscan(e.Name(), &w); n == 3 {
				ws = append(ws, w)
			}
		}
	}
	delivered := map[string]bool{}
	runs, _ := filepath.Glob(filepath.Join(dir, "run-*.json"))
	for _, r := range runs {
		var ds []string
		_, err := sumfile.Read(r, &ds, "")
		require.NoError(t, err)
		for _, d := range ds {
			delivered[d] = true
		}
	}
	return ws, delivered
}

// fmtSscan parses "_all~START~END.ndjson".
func fmtSscan(name string, w *extract.Window) (int, error) {
	base, ok := strings.CutSuffix(name, ".ndjson")
	if !ok {
		return 0, nil
	}
	parts := strings.Split(base, "~")
	if len(parts) != 3 {
		return 0, nil
	}
	var err error
	if w.Start, err = parseInt(parts[1]); err != nil {
		return 0, err
	}
	if w.End, err = parseInt(parts[2]); err != nil {
		return 0, err
	}
	return 3, nil
}

func parseInt(s string) (int64, error) {
	var n int64
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, io.ErrUnexpectedEOF
		}
		n = n*10 + int64(c-'0')
	}
	return n, nil
}

// checkNoTruncatedFile: every file under a final name is complete and
// matches its manifest entry.
func checkNoTruncatedFile(t *testing.T, dir string) {
	days, _ := filepath.Glob(filepath.Join(dir, "dt=*"))
	for _, d := range days {
		entries, err := os.ReadDir(d)
		require.NoError(t, err)
		var m sinks.Manifest
		if b, err := os.ReadFile(filepath.Join(d, sinks.ManifestName)); err == nil {
			require.NoError(t, json.Unmarshal(b, &m))
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") || strings.HasPrefix(e.Name(), "_") {
				continue
			}
			b, err := os.ReadFile(filepath.Join(d, e.Name()))
			require.NoError(t, err)
			zr, err := gzip.NewReader(bytes.NewReader(b))
			require.NoError(t, err, e.Name())
			_, err = io.Copy(io.Discard, zr)
			require.NoError(t, err, "%s is truncated", e.Name())
			sum := sha256.Sum256(b)
			found := false
			for _, f := range m.Files {
				if f.Name == e.Name() {
					found = true
					require.Equal(t, hex.EncodeToString(sum[:]), f.SHA256, e.Name())
				}
			}
			require.True(t, found, "%s is in the manifest", e.Name())
		}
	}
}

// TestKillAndResume kills a multi-day export with SIGKILL part way, checks
// that no final file is truncated, reruns it with the same arguments and gets
// the exact event set, without fetching finished windows again.
func TestKillAndResume(t *testing.T) {
	d0 := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -10)
	sc := simulator.DefaultConfig()
	sc.Events, sc.From, sc.To, sc.Seed = 12000, d0, d0.AddDate(0, 0, 4), 3
	sc.Latency = 20 * time.Millisecond
	sim, err := simulator.New(sc)
	require.NoError(t, err)
	base, err := sim.Start("127.0.0.1:0")
	require.NoError(t, err)
	defer sim.Close()

	cfgPath := writeConfig(t, base, secretToken, strings.Replace(goodConfig, "  timeout: 5s", "  timeout: 5s\n  requests_per_second: 60\n  concurrency: 4", 1)+"")
	require.NoError(t, os.WriteFile(cfgPath, []byte(strings.Replace(mustReadFile(t, cfgPath), "dir: "+filepath.Dir(cfgPath)+"/out", "dir: "+filepath.Dir(cfgPath)+"/out\n    compression: gzip", 1)), 0o600))
	dir := filepath.Dir(cfgPath)
	stateDir, outDir := filepath.Join(dir, "state"), filepath.Join(dir, "out")
	from, to := d0.Format(time.DateOnly), d0.AddDate(0, 0, 4).Format(time.DateOnly)
	var days []string
	for i := range 4 {
		days = append(days, d0.AddDate(0, 0, i).Format(time.DateOnly))
	}

	cmd := child(t, "run", "-c", cfgPath, "--from", from, "--to", to)
	logFile, err := os.Create(filepath.Join(dir, "child.log"))
	require.NoError(t, err)
	defer logFile.Close()
	cmd.Stderr = logFile
	require.NoError(t, cmd.Start())
	// Kill once some windows are committed and some days delivered, well
	// before the end.
	deadline := time.Now().Add(60 * time.Second)
	for {
		ws, delivered := func() ([]extract.Window, map[string]bool) {
			if _, err := os.Stat(stateDir); err != nil {
				return nil, nil
			}
			entries, _ := os.ReadDir(stateDir)
			if len(entries) == 0 {
				return nil, nil
			}
			return committedWindows(t, stateDir, days)
		}()
		if len(ws) >= 3 && len(delivered) >= 1 {
			break
		}
		require.True(t, time.Now().Before(deadline), "the run never got far enough: %s", mustReadFile(t, logFile.Name()))
		time.Sleep(5 * time.Millisecond)
	}
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	killedAt := time.Now()
	require.NotContains(t, mustReadFile(t, logFile.Name()), "days delivered", "the run finished before the kill")

	checkNoTruncatedFile(t, outDir)
	done, delivered := committedWindows(t, stateDir, days)
	require.NotEmpty(t, done)
	require.NotEmpty(t, delivered)
	require.Less(t, len(delivered), 4, "killed part way")

	var out, errOut bytes.Buffer
	code := Main(t.Context(), []string{"run", "-c", cfgPath, "--from", from, "--to", to}, &out, &errOut)
	require.Equal(t, 0, code, errOut.String())
	require.Contains(t, errOut.String(), "resuming an interrupted run")

	exporttest.Compare(t, exporttest.Expected(sim, d0, d0.AddDate(0, 0, 4)), exporttest.ReadNDJSON(t, outDir), "acme")
	checkNoTruncatedFile(t, outDir)

	// No request of the second run touched a finished window or a delivered day.
	for _, r := range sim.Stats().Log {
		if r.At.Before(killedAt) || r.Start.IsZero() {
			continue
		}
		s, e := r.Start.UnixMilli(), r.End.UnixMilli()
		for _, w := range done {
			// e, inclusive, is the end of the request's window: it may be a
			// finished window's start, whose events the fetcher skips.
			require.False(t, s < w.End && e > w.Start, "request %v..%v refetched finished window %v", r.Start, r.End, w)
		}
		require.False(t, delivered[r.Start.UTC().Format(time.DateOnly)], "request %v refetched a delivered day", r.Start)
	}
	_ = state.ErrLocked
}

func mustReadFile(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}
