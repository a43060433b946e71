package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/state"
	"github.com/pachca-export/pachca-export/testkit/buildtest"
)

// relativeConfig is the shipped pipeline.yaml's shape: relative paths.
const relativeConfig = `source:
  base_url: %BASE%
  token: ${PACHCA_TOKEN}
  timeout: 5s
sinks:
  - type: ndjson
    dir: out/ndjson
state:
  dir: .pachca-export
`

// runIn runs the binary in dir, with PWD set to pwd ("" for none, as
// under `env -i` or a systemd unit's WorkingDirectory=), and returns its
// stderr.
func runIn(t *testing.T, bin, dir, pwd string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "PACHCA_TOKEN=" + secretToken}
	if pwd != "" {
		cmd.Env = append(cmd.Env, "PWD="+pwd)
	}
	var stderr bytes.Buffer
	cmd.Stdin, cmd.Stderr = nil, &stderr
	require.NoError(t, cmd.Run(), stderr.String())
	return stderr.String()
}

// linkedConfig writes relativeConfig for the API at base into top/real,
// which top/link names through a symbolic link.
func linkedConfig(t *testing.T, base string) (top, real, link string) {
	t.Helper()
	top = t.TempDir()
	real = filepath.Join(top, "real")
	link = filepath.Join(top, "link")
	require.NoError(t, os.Mkdir(real, 0o755))
	require.NoError(t, os.Symlink(real, link))
	require.NoError(t, os.WriteFile(filepath.Join(real, "pipeline.yaml"),
		bytes.ReplaceAll([]byte(relativeConfig), []byte("%BASE%"), []byte(base)), 0o600))
	return top, real, link
}

// TestRelativePathsWhateverPWD: the same `run -c pipeline.yaml` in the
// configuration's directory, reached through a symbolic link, keeps one
// state whether $PWD names the link (a shell) or is unset (cron's `env
// -i`, a systemd unit): the second run has nothing to export (was: the
// relative paths resolved through $PWD's link, another state key, and the
// shell's run exported again the day the cron job had exported; a Kafka
// sink got it twice).
func TestRelativePathsWhateverPWD(t *testing.T) {
	bin := buildtest.StaticBinary(t)
	top, real, link := linkedConfig(t, startSim(t))

	out := runIn(t, bin, link, "", "run", "-c", "pipeline.yaml")
	require.Regexp(t, `days delivered +1 `, out, "cron's first run: yesterday")
	out = runIn(t, bin, link, link, "run", "-c", "pipeline.yaml")
	require.Contains(t, out, "nothing to export", "the shell's run, in the same directory")
	out = runIn(t, bin, top, top, "run", "-c", "link/pipeline.yaml")
	require.Contains(t, out, "nothing to export", "-c through the link")
	states, err := filepath.Glob(filepath.Join(real, ".pachca-export", "*"))
	require.NoError(t, err)
	require.Len(t, states, 1, "one state")
}

// TestRelativePathsStateTakenOver: a state keyed by the sink's directory
// as $PWD spelt it, through a symbolic link (versions before 2026-12), is
// taken over by the configuration loaded through the link: its days stay
// exported.
func TestRelativePathsStateTakenOver(t *testing.T) {
	_, real, link := linkedConfig(t, "http://127.0.0.1:1")
	cfg, err := config.Load(filepath.Join(link, "pipeline.yaml"), func(string) (string, bool) { return secretToken, true })
	require.NoError(t, err)
	require.Equal(t, filepath.Join(real, "out", "ndjson"), cfg.Sinks[0].File.Dir, "against the real directory")
	require.Equal(t, filepath.Join(link, "out", "ndjson"), cfg.SpeltPath(cfg.Sinks[0].File.Dir))

	spelt := *cfg
	ndjson := *cfg.Sinks[0].File
	ndjson.Dir = filepath.Join(link, "out", "ndjson")
	spelt.Sinks = []config.Sink{{Type: "ndjson", File: &ndjson}}
	yesterday := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -1).Format(time.DateOnly)
	st, err := state.Open(cfg.State.Dir, pipeline.Identity(&spelt))
	require.NoError(t, err)
	require.NoError(t, st.MarkExported(state.Day{Day: yesterday, RunID: "earlier"}))
	require.NoError(t, st.Close())

	st, err = state.Open(cfg.State.Dir, pipeline.Identity(cfg), pipeline.FormerIdentities(cfg)...)
	require.NoError(t, err)
	defer st.Close()
	days, err := st.Exported()
	require.NoError(t, err)
	require.Contains(t, days, yesterday)
}

// TestDemoCommandsRunAsPrinted: the commands demo prints for its files run
// as printed in a shell for an --out with spaces, quotes, $ and non-ASCII
// letters (was: `zcat my demo/ndjson/...`, three words, and the path cut
// at its quote in duckdb's SQL).
func TestDemoCommandsRunAsPrinted(t *testing.T) {
	out := filepath.Join(t.TempDir(), `it's a $HOME "démo"`)
	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, Main(t.Context(), []string{"demo", "--out", out, "--events", "500"}, &stdout, &stderr), stderr.String())
	var zcat, duckdb string
	for _, line := range strings.Split(stdout.String(), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "zcat ") {
			zcat = line
		}
		if rest, ok := strings.CutPrefix(line, "duckdb -c "); ok {
			duckdb = "printf %s " + rest // the argument duckdb would get
		}
	}
	require.NotEmpty(t, zcat, stdout.String())
	require.NotEmpty(t, duckdb, stdout.String())

	got, err := exec.Command("sh", "-c", zcat).Output()
	require.NoError(t, err, zcat)
	require.True(t, json.Valid(bytes.TrimSpace(got)), "an NDJSON line: %q", got)

	got, err = exec.Command("sh", "-c", duckdb).Output()
	require.NoError(t, err, duckdb)
	require.Equal(t, "SELECT event_category, count(*) FROM read_parquet('"+strings.ReplaceAll(out, "'", "''")+
		"/parquet/dt=*/*.parquet', hive_partitioning=true) GROUP BY 1", string(got))
}
