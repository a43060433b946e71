package state_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/state"
)

// TestLockHeldByAStoppedProcess: a holder of this host that is stopped (a
// run sent SIGSTOP or Ctrl-Z, a VM's process descheduled by a debugger)
// is named so, with the command that lets it go on, rather than with
// "wait for it to finish", which it never does while stopped (was: the
// same message as for a running holder, and an operator waited, or took
// the lock file for stale and removed it).
func TestLockHeldByAStoppedProcess(t *testing.T) {
	child := exec.Command("sleep", "60")
	require.NoError(t, child.Start())
	t.Cleanup(func() {
		child.Process.Signal(syscall.SIGCONT)
		child.Process.Kill()
		child.Wait()
	})
	root := t.TempDir()
	id := map[string]string{"base_url": "x"}
	a, err := state.Open(root, id)
	require.NoError(t, err)
	defer a.Close()
	// The lock file names the child as its holder, as if it had opened
	// the state: the flock is this process's, the message reads the file.
	host, _ := os.Hostname()
	line := fmt.Sprintf("pid %d on %s since 2026-12-01T02:00:05Z (run)\n", child.Process.Pid, host)
	require.NoError(t, os.WriteFile(filepath.Join(a.Dir(), "lock"), []byte(line), 0o600))

	_, err = state.Open(root, id)
	require.ErrorIs(t, err, state.ErrLocked)
	require.Regexp(t, `\(run\)\); wait for it to finish or stop it$`, err.Error(), "a running holder: wait")

	require.NoError(t, child.Process.Signal(syscall.SIGSTOP))
	stat := fmt.Sprintf("/proc/%d/stat", child.Process.Pid)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		b, err := os.ReadFile(stat)
		require.NoError(t, err)
		if containsState(b, 'T') {
			break
		}
	}
	_, err = state.Open(root, id)
	require.ErrorIs(t, err, state.ErrLocked)
	pid := child.Process.Pid
	require.Regexp(t, fmt.Sprintf(`held by pid %d on .* \(run\)\): it is stopped \(SIGSTOP, Ctrl-Z, a debugger\) and holds the state until it goes on \(kill -CONT %d\) or ends \(kill %d\)$`, pid, pid, pid), err.Error())
	v, err := state.Check(root, id)
	require.NoError(t, err)
	require.Contains(t, v.InUse(), fmt.Sprintf(", stopped (it goes on with kill -CONT %d): another run on it is refused", pid))
}

// containsState tells whether /proc/PID/stat content b has state s.
func containsState(b []byte, s byte) bool {
	for i := len(b) - 1; i > 0; i-- {
		if b[i] == ')' {
			return i+2 < len(b) && b[i+2] == s
		}
	}
	return false
}
