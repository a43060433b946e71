package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReadOnlyNamesWhereToWrite: a state or sink directory on a read-only
// file system (the shipped pipeline.yaml's relative paths copied to
// /etc/pachca-export under the systemd unit's ProtectSystem=strict or the
// pod's read-only root) says where the units write and how relative paths
// resolve (was: "state: mkdir /etc/pachca-export/.pachca-export: read-only
// file system", nothing on what to change). The S3 sink's error of its
// temporary directory, which says what to set, and other errors are left
// as they are.
func TestReadOnlyNamesWhereToWrite(t *testing.T) {
	const hint = " (the systemd units and the Kubernetes pods write only under /var/lib/pachca-export and /tmp: give state.dir and each file sink's dir an absolute path there; relative ones resolve against the configuration file's directory)"
	rofs := func(op, path string) error { return &fs.PathError{Op: op, Path: path, Err: syscall.EROFS} }

	err := readOnlyHint(fmt.Errorf("state: %w", rofs("mkdir", "/etc/pachca-export/.pachca-export")))
	require.EqualError(t, err, "state: mkdir /etc/pachca-export/.pachca-export: read-only file system"+hint)
	require.ErrorIs(t, err, syscall.EROFS, "still the error it was, for the exit status")

	err = readOnlyHint(errors.Join(
		fmt.Errorf("sinks[0]: ndjson: %w", rofs("mkdir", "/etc/pachca-export/out")),
		errors.New("sinks[1]: a failure of another kind")))
	require.EqualError(t, err, "sinks[0]: ndjson: mkdir /etc/pachca-export/out: read-only file system"+hint+"\nsinks[1]: a failure of another kind")

	// A directory that exists fails its probe, with no *fs.PathError.
	err = readOnlyHint(fmt.Errorf("state: directory /etc/pachca-export/.pachca-export is not writable: %w", syscall.EROFS))
	require.EqualError(t, err, "state: directory /etc/pachca-export/.pachca-export is not writable: read-only file system"+hint)

	// Already where the units write (a file system the kernel remounted
	// read-only after disk errors): the advice to write there would be
	// none (was: the same hint).
	const remounted = " (/var/lib/pachca-export, where the systemd units and the Kubernetes pods write, is on a file system mounted read-only: after disk errors the kernel remounts one so (see findmnt and the kernel log), or the volume is mounted read-only)"
	err = readOnlyHint(fmt.Errorf("state: %w", rofs("mkdir", "/var/lib/pachca-export/state")))
	require.EqualError(t, err, "state: mkdir /var/lib/pachca-export/state: read-only file system"+remounted)
	err = readOnlyHint(fmt.Errorf("sinks[0]: ndjson: directory /var/lib/pachca-export/out is not writable: %w", syscall.EROFS))
	require.EqualError(t, err, "sinks[0]: ndjson: directory /var/lib/pachca-export/out is not writable: read-only file system"+remounted)
	err = readOnlyHint(fmt.Errorf("state: %w", rofs("mkdir", "/var/lib/pachca-export-old/state")))
	require.EqualError(t, err, "state: mkdir /var/lib/pachca-export-old/state: read-only file system"+hint, "another directory")

	s3tmp := fmt.Errorf("s3: temporary directory /tmp is not writable: %w (set the sink's temp_dir, or TMPDIR, to a writable directory)", rofs("open", "/tmp/.probe"))
	require.Equal(t, s3tmp, readOnlyHint(s3tmp))
	other := fmt.Errorf("state: %w", &fs.PathError{Op: "mkdir", Path: "/srv/st", Err: syscall.ENOSPC})
	require.Equal(t, other, readOnlyHint(other))
}

// TestReadOnlyFlagPath: report's -o and demo's --out on a read-only file
// system (a cron job's working directory, a container's read-only root)
// say that the flag's path is there and resolves against the working
// directory, without readOnlyHint's advice on state.dir and the sinks'
// dirs, which they are not (was: "give state.dir and each file sink's dir
// an absolute path there; relative ones resolve against the configuration
// file's directory" for `report -o report.html`).
func TestReadOnlyFlagPath(t *testing.T) {
	rofs := &fs.PathError{Op: "open", Path: "report.html", Err: syscall.EROFS}
	var stderr bytes.Buffer
	e := &env{stderr: &stderr}
	err := flagPathHint(fmt.Errorf("report: %w", rofs), "-o", ", or - for standard output")
	require.ErrorIs(t, err, syscall.EROFS)
	require.Equal(t, 1, e.report(err))
	require.Equal(t, "pachca-export: report: open report.html: read-only file system (-o names a path on a read-only file system, "+
		"relative ones resolving against the working directory: give it one where this process may write, or - for standard output)\n", stderr.String())

	other := fmt.Errorf("report: %w", &fs.PathError{Op: "open", Path: "report.html", Err: syscall.ENOSPC})
	require.Equal(t, other, flagPathHint(other, "-o", ""), "other errors as they are")
}
