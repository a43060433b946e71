package telemetry

import (
	"io/fs"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/testkit/fakefs"
)

type owned = fakefs.Info

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
	sticky := owned{Perm: fs.ModeDir | fs.ModeSticky | 0o777, ID: 0}
	rootsFile := map[string]owned{"/var/lib/node_exporter/textfile": sticky, prom: {Perm: 0o644, ID: 0}}

	err := replaceableBy(prom, 1001, stat(rootsFile))
	require.EqualError(t, err, "metrics file "+prom+" belongs to uid 0, in a directory with the sticky bit (/var/lib/node_exporter/textfile), where this process (uid 1001) may not replace it: remove it, or chown it to this process's user")

	require.NoError(t, replaceableBy(prom, 0, stat(rootsFile)), "root may")
	require.NoError(t, replaceableBy(prom, 1001, stat(map[string]owned{"/var/lib/node_exporter/textfile": sticky, prom: {Perm: 0o644, ID: 1001}})), "its own file")
	require.NoError(t, replaceableBy(prom, 1001, stat(map[string]owned{"/var/lib/node_exporter/textfile": sticky})), "no file yet")
	require.NoError(t, replaceableBy(prom, 1001, stat(map[string]owned{"/var/lib/node_exporter/textfile": {Perm: fs.ModeDir | 0o777, ID: 0}, prom: {Perm: 0o644, ID: 0}})), "no sticky bit: rename replaces it")
	require.NoError(t, replaceableBy(prom, 1001, stat(map[string]owned{"/var/lib/node_exporter/textfile": {Perm: fs.ModeDir | fs.ModeSticky | 0o775, ID: 1001}, prom: {Perm: 0o644, ID: 0}})), "its own directory")
}
