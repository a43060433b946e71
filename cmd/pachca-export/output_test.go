package main

import (
	"bytes"
	"context"
	"io/fs"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// fullWriter is standard output on a full disk, or /dev/full: every write
// fails as os.File's does there.
type fullWriter struct{}

func (fullWriter) Write([]byte) (int, error) {
	return 0, &fs.PathError{Op: "write", Path: "/dev/stdout", Err: syscall.ENOSPC}
}

// TestLostOutputFails: a command whose output could not be written fails,
// exit status 1, with a line saying why, so that `pachca-export verify >
// verdicts.txt` on a full disk does not pass with the verdicts gone (was:
// version, help, schema --format arrow and sql, check, verify, the dry
// run's plan exited 0).
func TestLostOutputFails(t *testing.T) {
	base := startSim(t)
	path := writeConfig(t, base, secretToken, goodConfig)
	day := pastDay(3)
	next := pastDay(2)
	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, Main(t.Context(), []string{"run", "-c", path, "--from", day, "--to", next}, &stdout, &stderr), stderr.String())
	for _, args := range [][]string{
		{"version"},
		{"help"},
		{"help", "run"},
		{"run", "--help"},
		{"schema"},
		{"schema", "--format", "arrow"},
		{"schema", "--format", "sql"},
		{"check", "-c", path},
		{"verify", "-c", path},
		{"verify", "-c", path, "--format", "json"},
		{"run", "-c", path, "--dry-run", "--from", day, "--to", next},
		{"report", "-c", path, "--from", day, "--to", next, "-o", "-"},
	} {
		t.Run(strings.ReplaceAll(strings.Join(args, " "), path, "FILE"), func(t *testing.T) {
			// The command itself succeeds where its output is taken.
			var stdout, stderr bytes.Buffer
			require.Equal(t, 0, Main(t.Context(), args, &stdout, &stderr), stderr.String())
			require.NotEmpty(t, stdout.String())

			stderr.Reset()
			code := Main(t.Context(), args, fullWriter{}, &stderr)
			require.Equal(t, 1, code, stderr.String())
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			require.Contains(t, lines[len(lines)-1], "write /dev/stdout: no space left on device", stderr.String())
		})
	}
}

// TestCheckInterrupted: a check stopped by a signal (`timeout 10s
// pachca-export check`, an Ansible task's timeout) ends on "check:
// interrupted", exit status 1 (was: "check: 1 problem(s)", the token's
// line FAIL with "context canceled", as if the token had a problem).
func TestCheckInterrupted(t *testing.T) {
	path := writeConfig(t, startSim(t), secretToken, goodConfig)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var stdout, stderr bytes.Buffer
	require.Equal(t, 1, Main(ctx, []string{"check", "-c", path}, &stdout, &stderr), stdout.String()+stderr.String())
	require.Equal(t, "pachca-export: check: interrupted\n", stderr.String())
}
