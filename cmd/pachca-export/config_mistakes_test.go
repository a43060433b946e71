package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestConfigMistakesExit2: configurations that used to panic, exhaust memory
// or fail every run are one line and exit status 2, before any request.
func TestConfigMistakesExit2(t *testing.T) {
	for _, tc := range []struct{ name, config, path, want string }{
		{name: "rate too high", config: strings.Replace(goodConfig, "  timeout: 5s\n", "  timeout: 5s\n  requests_per_second: 1e19\n", 1),
			want: "pipeline.yaml:6: source.requests_per_second: must be between 0.01 and 10000"},
		{name: "rate too low", config: strings.Replace(goodConfig, "  timeout: 5s\n", "  timeout: 5s\n  requests_per_second: 1e-300\n", 1),
			want: "source.requests_per_second: must be between 0.01 and 10000"},
		{name: "endless file", path: "/dev/zero", want: "/dev/zero: larger than 4 MiB"},
		{name: "two sinks, one dir", config: strings.Replace(goodConfig, "state:", "  - type: parquet\n    dir: %DIR%/out\nstate:", 1),
			want: "sinks[1].dir: the same directory as sinks[0].dir"},
	} {
		for _, args := range [][]string{{"run", "--dry-run"}, {"run"}, {"check"}} {
			t.Run(tc.name+"/"+strings.Join(args, " "), func(t *testing.T) {
				path := tc.path
				if path == "" {
					path = writeConfig(t, "http://127.0.0.1:9", secretToken, tc.config)
				}
				args := append(append([]string(nil), args...), "-c", path)
				if args[0] == "run" {
					args = append(args, "--from", "2026-01-01", "--to", "2026-01-02")
				}
				var stdout, stderr bytes.Buffer
				code := Main(t.Context(), args, &stdout, &stderr)
				out := stdout.String() + stderr.String()
				require.Equal(t, 2, code, out)
				require.Contains(t, stderr.String(), tc.want)
				require.Len(t, strings.Split(strings.TrimSpace(stderr.String()), "\n"), 1, "one line: %s", out)
				require.NotContains(t, out, "goroutine ")
			})
		}
	}
}

// TestOutputPathNotAFile: --metrics-file or report -o naming something
// that is not a file (here a named pipe; /dev/null or /dev/full by
// mistake; a symbolic link, as /dev/stdout is) is a usage error naming it,
// and it is left as it is (was: renamed over: as root, `report -o
// /dev/null` replaced the device node with the page, and `report -o
// /dev/stdout` with stdout a log file replaced the link /dev/stdout; a
// pipe held a run whose configuration did not load).
func TestOutputPathNotAFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	log := filepath.Join(dir, "stdout.log")
	require.NoError(t, os.WriteFile(log, []byte("a log\n"), 0o600))
	link := filepath.Join(dir, "stdout") // as /dev/stdout -> /proc/self/fd/1 -> a log file
	require.NoError(t, os.Symlink(log, link))
	isLink := " is a symbolic link (to " + log + "), not a file"
	good := writeConfig(t, "http://127.0.0.1:1", "x", goodConfig)
	broken := writeConfig(t, "http://127.0.0.1:1", "x", "source: [\n")
	for _, tc := range []struct {
		name string
		path string
		args []string
		want string
	}{
		{"metrics file", fifo, []string{"run", "-c", good, "--from", "2026-11-01", "--to", "2026-11-02", "--metrics-file", fifo},
			"pachca-export: --metrics-file: metrics file " + fifo + " is a named pipe, not a file"},
		{"metrics file of a configuration that does not load", fifo, []string{"run", "-c", broken, "--metrics-file", fifo},
			"pachca-export: metrics file " + fifo + " is a named pipe, not a file"},
		{"report", fifo, []string{"report", t.TempDir(), "--from", "2026-11-01", "--to", "2026-11-02", "-o", fifo},
			"pachca-export: report: -o " + fifo + " is a named pipe, not a file: give the path of a file, or - for standard output"},
		{"metrics file a link", link, []string{"run", "-c", good, "--from", "2026-11-01", "--to", "2026-11-02", "--metrics-file", link},
			"pachca-export: --metrics-file: metrics file " + link + isLink},
		{"report a link", link, []string{"report", t.TempDir(), "--from", "2026-11-01", "--to", "2026-11-02", "-o", link},
			"pachca-export: report: -o " + link + isLink + ": give the path of a file, or - for standard output"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, err := os.Lstat(tc.path)
			require.NoError(t, err)
			var stdout, stderr bytes.Buffer
			require.Equal(t, 2, Main(t.Context(), tc.args, &stdout, &stderr), stderr.String())
			require.Contains(t, stderr.String(), tc.want)
			fi, err := os.Lstat(tc.path)
			require.NoError(t, err)
			require.Equal(t, before.Mode().Type(), fi.Mode().Type(), "left as it was")
			b, err := os.ReadFile(log)
			require.NoError(t, err)
			require.Equal(t, "a log\n", string(b), "the link's target left as it was")
		})
	}
}
