package main

import (
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

	s3tmp := fmt.Errorf("s3: temporary directory /tmp is not writable: %w (set the sink's temp_dir, or TMPDIR, to a writable directory)", rofs("open", "/tmp/.probe"))
	require.Equal(t, s3tmp, readOnlyHint(s3tmp))
	other := fmt.Errorf("state: %w", &fs.PathError{Op: "mkdir", Path: "/srv/st", Err: syscall.ENOSPC})
	require.Equal(t, other, readOnlyHint(other))
}
