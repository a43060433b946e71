package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/internal/fdfloor"
	"github.com/pachca-export/pachca-export/testkit/buildtest"
	"github.com/pachca-export/pachca-export/testkit/exporttest"
)

// TestUnwritableOutput: an output directory on a read-only file system, or
// one that fills up, ends the run with exit status 1 and a single line on
// stderr that names the directory (or file) and the cause.
func TestUnwritableOutput(t *testing.T) {
	base := startSim(t)
	day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -3).Format(time.DateOnly)
	cases := []struct {
		name, mount string
		want        []string // in the line; %OUT% is the sink directory
	}{
		// Found before anything is fetched: the sink is checked first. The
		// directory exists, so no mkdir names it: the hint on where to
		// write is there all the same (was: left out).
		{name: "read-only", mount: "ro", want: []string{"directory %OUT% is not writable: read-only file system",
			"(the systemd units and the Kubernetes pods write only under /var/lib/pachca-export and /tmp"}},
		{name: "disk full", mount: "size=4k",
			want: []string{"write %OUT%/dt=" + day + "/pachca-audit-", ".ndjson: no space left on device"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, base, secretToken, strings.Replace(goodConfig, "    dir: %DIR%/out\n", "    dir: %DIR%/out\n    compression: none\n", 1))
			out := filepath.Join(filepath.Dir(path), "out")
			require.NoError(t, os.MkdirAll(out, 0o750))
			exporttest.MountTmpfs(t, out, tc.mount)

			var stdout, stderr bytes.Buffer
			code := Main(t.Context(), []string{"run", "-c", path, "--log-level", "error", "--from", day, "--to", day + "T12:00:00Z"}, &stdout, &stderr)
			require.Equal(t, 1, code, stderr.String())
			require.Empty(t, stdout.String())
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			line := lines[len(lines)-1]
			require.Equal(t, 1, strings.Count(stderr.String(), "pachca-export: "), "one error line: %q", stderr.String())
			require.True(t, strings.HasPrefix(line, "pachca-export: "), "the error ends the output: %q", line)
			require.Regexp(t, `(?m)^result\s+failure$`, stderr.String(), "a failed run ends with its summary too")
			for _, w := range tc.want {
				require.Contains(t, line, strings.ReplaceAll(w, "%OUT%", out))
			}
			require.NotContains(t, line, ".tmp-", "the temporary file is not what the user knows")
			entries, err := filepath.Glob(filepath.Join(out, "dt=*", "*"))
			require.NoError(t, err)
			require.Empty(t, entries, "nothing left in the output directory")
		})
	}
}

// TestTooManyOpenFiles: an error of too many open files (a shell's ulimit
// -n, a unit's LimitNOFILE= below what a run holds at once) is one line
// that names the file, the cause, the process's limit and how to raise it,
// exit status 1 (was: the cause alone).
func TestTooManyOpenFiles(t *testing.T) {
	var lim syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim))
	var stderr bytes.Buffer
	e := &env{stderr: &stderr}
	err := fmt.Errorf("spool: %w", &fs.PathError{Op: "open", Path: "/var/lib/pachca-export/x/spool/2026-11-20", Err: syscall.EMFILE})
	require.Equal(t, 1, e.report(err))
	require.Equal(t, fmt.Sprintf("pachca-export: spool: open /var/lib/pachca-export/x/spool/2026-11-20: too many open files "+
		"(this process may open %d files at once: raise the limit to 1024 or more, with ulimit -n or the unit's LimitNOFILE=, or lower source.concurrency)\n", lim.Cur), stderr.String())

	stderr.Reset()
	require.Equal(t, 1, e.report(errors.New("spool: open x: no space left on device")))
	require.Equal(t, "pachca-export: spool: open x: no space left on device\n", stderr.String(), "other errors as they are")
}

// TestOpenFilesLimitTooLow: started with a limit of open files too low for
// Go's runtime to create its poller (a shell's `ulimit -n 7`), the command
// ends with one line naming the limit and how to raise it, exit status 2
// (was, from 6 to 8: the runtime's "fatal error: runtime: eventfd failed"
// and its stack trace, from a dependency's package initialisation).
func TestOpenFilesLimitTooLow(t *testing.T) {
	bin := buildtest.StaticBinary(t)
	for n := 5; n <= fdfloor.Min; n++ {
		cmd := exec.Command("sh", "-c", `ulimit -n "$1" && exec "$0" run -c missing.yaml --dry-run`, bin, strconv.Itoa(n))
		cmd.Dir = t.TempDir()
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit, "limit %d", n)
		require.Equal(t, 2, exit.ExitCode(), "limit %d: %s", n, stderr.String())
		require.Empty(t, stdout.String())
		if n < fdfloor.Min {
			require.Equal(t, fmt.Sprintf("pachca-export: this process may open %d files at once, fewer than the %d it needs to start: "+
				"raise the limit to 1024 or more, with ulimit -n or the unit's LimitNOFILE=\n", n, fdfloor.Min), stderr.String(), "limit %d", n)
		} else {
			require.Contains(t, stderr.String(), "missing.yaml", "at %d the command starts, and reads its configuration", n)
		}
	}

	// With --log-format json the line is one JSON object, as the command's
	// errors are (was: the text line, which jq refuses).
	cmd := exec.Command("sh", "-c", `ulimit -n 10 && exec "$0" run -c missing.yaml --log-format JSON`, bin)
	cmd.Dir = t.TempDir()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	var exit *exec.ExitError
	require.ErrorAs(t, cmd.Run(), &exit)
	require.Equal(t, 2, exit.ExitCode(), stderr.String())
	var rec struct {
		Time     time.Time `json:"time"`
		Level    string    `json:"level"`
		Msg      string    `json:"msg"`
		ExitCode int       `json:"exit_code"`
	}
	dec := json.NewDecoder(&stderr)
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&rec), stderr.String())
	require.False(t, dec.More(), "one object")
	require.Equal(t, "ERROR", rec.Level)
	require.Equal(t, 2, rec.ExitCode)
	require.False(t, rec.Time.IsZero(), "a time")
	require.Equal(t, fmt.Sprintf("this process may open 10 files at once, fewer than the %d it needs to start: "+
		"raise the limit to 1024 or more, with ulimit -n or the unit's LimitNOFILE=", fdfloor.Min), rec.Msg)
}
