package main

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/simulator"
)

// TestSecretsNeverWritten takes the token from each place it can come from
// (an environment variable the config names, token_file, --token) through
// every outcome (success, 401, 403, a dry run, a configuration error about
// the token, check) in both log formats at debug level, and searches every
// byte written to stdout, stderr, the state and the output for it. After a
// successful run no state or output file or directory is world-readable.
func TestSecretsNeverWritten(t *testing.T) {
	const good = "tok-SECRET-7d3e91b2-do-not-print"
	const wrong = "tok-SECRET-0a55c4e1-rejected"
	base := startSim(t, func(c *simulator.Config) { c.Token = good })
	day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -3).Format(time.DateOnly)
	period := []string{"--from", day, "--to", day + "T12:00:00Z"}

	const head = "source:\n  base_url: %BASE%\n  workspace: acme\n  timeout: 5s\n"
	const tail = "sinks:\n  - type: ndjson\n    dir: %DIR%/out\nstate:\n  dir: %DIR%/state\n"
	sources := []struct {
		name string
		// config is the source's token lines; badConfig makes Load fail on them.
		config, badConfig string
		setup             func(t *testing.T, dir, token string) []string // extra args
	}{
		{
			name:      "env",
			config:    "  token: ${PACHCA_TEST_SECRET}\n",
			badConfig: "  token: ${PACHCA_TEST_SECRET}\n  token_file: %DIR%/token\n", // both: refused
			setup: func(t *testing.T, _, token string) []string {
				t.Setenv("PACHCA_TEST_SECRET", token)
				return nil
			},
		},
		{
			name:      "token_file",
			config:    "  token_file: %DIR%/token\n",
			badConfig: "  token_file: %DIR%/token\n  token: ${PACHCA_TEST_SECRET}\n",
			setup: func(t *testing.T, dir, token string) []string {
				t.Setenv("PACHCA_TEST_SECRET", token)
				require.NoError(t, os.WriteFile(filepath.Join(dir, "token"), []byte(token+"\n"), 0o600))
				return nil
			},
		},
		{
			name:      "flag",
			config:    "",
			badConfig: "  token_file: %DIR%/token\n  token: also-set\n", // both: refused
			setup: func(_ *testing.T, _, token string) []string {
				return []string{"--token", token}
			},
		},
	}
	outcomes := []struct {
		name  string
		token string
		bad   bool // use the source's badConfig
		cmd   string
		args  []string
		code  int
		want  string // in stderr
	}{
		{name: "success", token: good, cmd: "run", args: period, code: 0, want: "delivered"},
		{name: "401", token: wrong, cmd: "run", args: period, code: 2, want: "the API rejected the token (401"},
		{name: "403", token: simulator.TokenNoScope, cmd: "run", args: period, code: 2, want: "scope audit_events:read"},
		{name: "dry run", token: good, cmd: "run", args: append([]string{"--dry-run"}, period...), code: 0},
		{name: "config error", token: good, bad: true, cmd: "run", args: period, code: 2, want: "source.token"},
		{name: "check", token: good, cmd: "check", code: 0},
		{name: "check 401", token: wrong, cmd: "check", code: 2, want: "check: 1 problem"},
	}
	for _, src := range sources {
		for _, oc := range outcomes {
			for _, format := range []string{"text", "json"} {
				if oc.cmd == "check" && format == "json" {
					continue // check takes no log flags
				}
				t.Run(src.name+"/"+oc.name+"/"+format, func(t *testing.T) {
					dir := t.TempDir()
					lines := src.config
					if oc.bad {
						lines = src.badConfig
					}
					body := strings.NewReplacer("%BASE%", base, "%DIR%", dir).Replace(head + lines + tail)
					path := filepath.Join(dir, "pipeline.yaml")
					require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
					args := []string{oc.cmd, "-c", path}
					if oc.cmd == "run" {
						args = append(args, "--log-level", "debug", "--log-format", format)
					}
					args = append(append(args, src.setup(t, dir, oc.token)...), oc.args...)

					var stdout, stderr bytes.Buffer
					code := Main(t.Context(), args, &stdout, &stderr)
					out := stdout.String() + stderr.String()
					require.Equal(t, oc.code, code, out)
					require.Contains(t, stderr.String(), oc.want)
					require.NotContains(t, out, oc.token, "the token was printed")
					require.NotContains(t, out, "SECRET", "part of a token was printed")
					require.NotContains(t, out, "goroutine ", "a stack trace was printed")

					for _, sub := range []string{"state", "out"} {
						filepath.WalkDir(filepath.Join(dir, sub), func(p string, d fs.DirEntry, err error) error {
							if err != nil {
								return nil // a run that stopped early writes no output
							}
							info, err := d.Info()
							require.NoError(t, err)
							require.Zero(t, info.Mode().Perm()&0o007, "%s is open to everyone: %v", p, info.Mode())
							if !d.IsDir() {
								b, err := os.ReadFile(p)
								require.NoError(t, err)
								require.NotContains(t, string(b), oc.token, "the token is in %s", p)
							}
							return nil
						})
					}
					if oc.name == "success" {
						files, err := filepath.Glob(filepath.Join(dir, "out", "dt=*", "*.ndjson*"))
						require.NoError(t, err)
						require.NotEmpty(t, files, "the permission check saw the output")
						_, err = os.Stat(filepath.Join(dir, "state"))
						require.NoError(t, err)
					}
				})
			}
		}
	}
}
