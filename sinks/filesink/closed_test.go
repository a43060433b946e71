package filesink

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/ndjson"
)

// TestCheckClosedDays: day directories a run as another user (root, by
// hand) wrote, which this process may not write into or whose manifest it
// may not read, fail Check, naming them, before a run fetches anything
// (was: check OK, and the run failed at its first delivery, once the whole
// period was fetched: "open .../dt=2026-11-28/_manifest.json: permission
// denied"). Tests run as root, whom no mode stops: access denies here.
func TestCheckClosedDays(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"dt=2026-11-01", "dt=2026-11-02", "dt=2026-11-03"} {
		require.NoError(t, os.Mkdir(filepath.Join(dir, d), 0o750))
		require.NoError(t, os.WriteFile(filepath.Join(dir, d, sinks.ManifestName), []byte("{}"), 0o600))
	}
	require.NoError(t, os.Mkdir(filepath.Join(dir, "dt=2026-11-04"), 0o750)) // no manifest yet
	f, err := ndjson.Format("none")
	require.NoError(t, err)
	s := New(dir, f)
	require.NoError(t, s.Check(t.Context()), "every day open to this process")

	closed := map[string]uint32{} // path: the modes denied
	var asked []string
	s.access = func(path string, mode uint32) error {
		asked = append(asked, path)
		if err := effectiveAccess(path, mode); err != nil {
			return err
		}
		if closed[path]&mode != 0 {
			return &fs.PathError{Op: "access", Path: path, Err: syscall.EACCES}
		}
		return nil
	}
	require.NoError(t, s.Check(t.Context()))
	require.Len(t, asked, 8, "each day directory, and each manifest there is")

	closed[filepath.Join(dir, "dt=2026-11-02", sinks.ManifestName)] = unix.R_OK
	err = s.Check(t.Context())
	require.ErrorIs(t, err, fs.ErrPermission)
	require.EqualError(t, err, "ndjson: the day directory dt=2026-11-02 is closed to this process (written by another user?): access "+
		filepath.Join(dir, "dt=2026-11-02", sinks.ManifestName)+": permission denied")

	closed[filepath.Join(dir, "dt=2026-11-01")] = unix.W_OK
	closed[filepath.Join(dir, "dt=2026-11-04")] = unix.X_OK
	err = s.Check(t.Context())
	require.ErrorIs(t, err, fs.ErrPermission)
	require.EqualError(t, err, "ndjson: 3 day directories, dt=2026-11-01 .. dt=2026-11-04, are closed to this process (written by another user?): access "+
		filepath.Join(dir, "dt=2026-11-01")+": permission denied")
}
