package telemetry

import (
	"io/fs"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type owned struct {
	mode fs.FileMode
	uid  uint32
}

func (o owned) Name() string       { return "" }
func (o owned) Size() int64        { return 0 }
func (o owned) Mode() fs.FileMode  { return o.mode }
func (o owned) ModTime() time.Time { return time.Time{} }
func (o owned) IsDir() bool        { return o.mode.IsDir() }
func (o owned) Sys() any           { return &syscall.Stat_t{Uid: o.uid} }

// TestMetricsFileOfAnotherUserInStickyDir: a metrics file a run as root
// left in a textfile directory with the sticky bit (1777) cannot be
// replaced by the service's user: refused before the run (was: the run
// exported, then failed on "rename ...: operation not permitted").
// Tests run as root, whom the sticky bit does not stop: the owners are
// given.
func TestMetricsFileOfAnotherUserInStickyDir(t *testing.T) {
	const prom = "/var/lib/node_exporter/textfile/pachca.prom"
	stat := func(files map[string]owned) func(string) (fs.FileInfo, error) {
		return func(p string) (fs.FileInfo, error) {
			if f, ok := files[p]; ok {
				return f, nil
			}
			return nil, fs.ErrNotExist
		}
	}
	sticky := owned{fs.ModeDir | fs.ModeSticky | 0o777, 0}
	rootsFile := map[string]owned{"/var/lib/node_exporter/textfile": sticky, prom: {0o644, 0}}

	err := replaceableBy(prom, 1001, stat(rootsFile))
	require.EqualError(t, err, "metrics file "+prom+" belongs to uid 0, in a directory with the sticky bit (/var/lib/node_exporter/textfile), where this process (uid 1001) may not replace it: remove it, or chown it to this process's user")

	require.NoError(t, replaceableBy(prom, 0, stat(rootsFile)), "root may")
	require.NoError(t, replaceableBy(prom, 1001, stat(map[string]owned{"/var/lib/node_exporter/textfile": sticky, prom: {0o644, 1001}})), "its own file")
	require.NoError(t, replaceableBy(prom, 1001, stat(map[string]owned{"/var/lib/node_exporter/textfile": sticky})), "no file yet")
	require.NoError(t, replaceableBy(prom, 1001, stat(map[string]owned{"/var/lib/node_exporter/textfile": {fs.ModeDir | 0o777, 0}, prom: {0o644, 0}})), "no sticky bit: rename replaces it")
	require.NoError(t, replaceableBy(prom, 1001, stat(map[string]owned{"/var/lib/node_exporter/textfile": {fs.ModeDir | fs.ModeSticky | 0o775, 1001}, prom: {0o644, 0}})), "its own directory")
}
