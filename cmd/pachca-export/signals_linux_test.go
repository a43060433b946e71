package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/testkit/exporttest"
	"github.com/pachca-export/pachca-export/testkit/logbuf"
)

// TestSecondInterrupt: a real run whose stop cannot finish (its stdout
// sink writes to a pipe nobody reads, a write that ignores its context)
// says at the first Ctrl-C how to force the exit, and at the second dies
// at once of SIGINT (130 in a shell), one line saying what becomes of the work
// (was: every further Ctrl-C swallowed, kill -9 the only way out); the
// same command started again exports every event once.
func TestSecondInterrupt(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			d0 := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -6)
			sc := simulator.DefaultConfig()
			sc.Events, sc.From, sc.To, sc.Seed = 3000, d0, d0.AddDate(0, 0, 4), 7
			sim, err := simulator.New(sc)
			require.NoError(t, err)
			base, err := sim.Start("127.0.0.1:0")
			require.NoError(t, err)
			t.Cleanup(func() { sim.Close() })
			path := writeConfig(t, base, secretToken, strings.Replace(goodConfig, "state:", "  - type: stdout\nstate:", 1))
			args := []string{"run", "-c", path, "--log-format", format, "--from", d0.Format(time.DateOnly), "--to", d0.AddDate(0, 0, 4).Format(time.DateOnly)}

			r, w, err := os.Pipe()
			require.NoError(t, err)
			defer r.Close()
			_, err = unix.FcntlInt(w.Fd(), unix.F_SETPIPE_SZ, 4096)
			require.NoError(t, err)
			cmd := child(t, args...)
			var stderr logbuf.Buffer
			cmd.Stdout, cmd.Stderr = w, &stderr
			require.NoError(t, cmd.Start())
			t.Cleanup(func() { _ = cmd.Process.Kill() }) // blocked for ever, should the test fail
			w.Close()
			waitUntil(t, "stdout's pipe to fill", &stderr, func() bool { return pipeFull(t, r) })

			require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
			waitUntil(t, "the first interrupt's line", &stderr, func() bool { return strings.Contains(stderr.String(), stopHint) })
			require.NoError(t, cmd.Process.Signal(syscall.SIGINT), "the stop waits on the pipe: the process is still there\n%s", stderr.String())
			var exit *exec.ExitError
			require.ErrorAs(t, cmd.Wait(), &exit)
			// Dead of SIGINT, as a shell running it in a loop must see to
			// stop too (was: exit status 130, and the loop went on).
			ws, ok := exit.Sys().(syscall.WaitStatus)
			require.True(t, ok)
			require.True(t, ws.Signaled() && ws.Signal() == syscall.SIGINT, "dead of SIGINT, not %v: %s", exit, stderr.String())

			lines := strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")
			last := lines[len(lines)-1]
			if format == "text" {
				require.Equal(t, "pachca-export: "+stopHint, lines[len(lines)-2])
				require.Equal(t, "pachca-export: "+forcedLine, last)
			} else {
				recs := jsonLines(t, stderr.String())
				hint, forced := recs[len(recs)-2], recs[len(recs)-1]
				require.Equal(t, "WARN", hint["level"])
				require.Equal(t, stopHint, hint["msg"])
				require.Equal(t, "ERROR", forced["level"])
				require.Equal(t, forcedLine, forced["msg"])
				require.EqualValues(t, exitForced, forced["exit_code"])
				require.Equal(t, "acme", forced["workspace"])
			}

			var out, errOut bytes.Buffer
			require.Equal(t, 0, Main(t.Context(), args, &out, &errOut), errOut.String())
			exporttest.Compare(t, exporttest.Expected(sim, d0, d0.AddDate(0, 0, 4)), exporttest.ReadNDJSON(t, filepath.Join(filepath.Dir(path), "out")), "acme")
		})
	}
}

// pipeFull says the pipe holds as much as it can: its writer blocks.
func pipeFull(t *testing.T, r *os.File) bool {
	size, err := unix.FcntlInt(r.Fd(), unix.F_GETPIPE_SZ, 0)
	require.NoError(t, err)
	n, err := unix.IoctlGetInt(int(r.Fd()), unix.TIOCINQ) // FIONREAD
	require.NoError(t, err)
	return n >= size
}

// waitUntil polls cond for up to a minute, failing with the child's stderr.
func waitUntil(t *testing.T, what string, stderr *logbuf.Buffer, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		require.True(t, time.Now().Before(deadline), "no %s: %s", what, stderr.String())
		time.Sleep(10 * time.Millisecond)
	}
}
