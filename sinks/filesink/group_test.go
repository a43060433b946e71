package filesink

import (
	"io/fs"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/testkit/fakefs"
)

type dirInfo = fakefs.Info

// TestGroupWarning: under a umask that takes bits of dir_mode (077, as a
// hardened host gives cron jobs), a process outside the group of a
// set-group-ID output directory makes day directories of its own group,
// which the log forwarder of the README's setup cannot read; check and
// run say so, as they do of an output directory that lost the bit so
// (was: the run succeeded and the forwarder read nothing new, silently).
func TestGroupWarning(t *testing.T) {
	const logs = 1002 // pachca-logs; the process is in 1001 only
	sys := func(dirs map[string]dirInfo) groupSys {
		return groupSys{
			stat: func(p string) (fs.FileInfo, error) {
				if d, ok := dirs[p]; ok {
					return d, nil
				}
				return nil, fs.ErrNotExist
			},
			member: func(gid uint32) bool { return gid == 1001 },
			name:   func(gid uint32) string { return map[uint32]string{logs: "pachca-logs"}[gid] },
		}
	}
	sgidOut := map[string]dirInfo{"/srv/out": {Perm: fs.ModeSetgid | 0o750, ID: logs}, "/srv/out/ndjson": {Perm: fs.ModeSetgid | 0o750, ID: logs}}
	lost := map[string]dirInfo{"/srv/out": {Perm: fs.ModeSetgid | 0o750, ID: logs}, "/srv/out/ndjson": {Perm: 0o750, ID: logs}}
	notYet := map[string]dirInfo{"/srv/out": {Perm: fs.ModeSetgid | 0o750, ID: logs}}

	const loses = "the directories this sink creates lose the set-group-ID bit of /srv/out, and with it its group pachca-logs (gid 1002), through which a log forwarder may read the files: the umask 0077 takes bits of output.dir_mode 0750 and this process is not in the group; run it with a umask that keeps them (0027: UMask= of a unit, umask in a cron job's command) or put its user in the group"
	require.Equal(t, loses, groupWarning("/srv/out", 0o750, 0o077, sys(sgidOut)))
	require.Equal(t, loses, groupWarning("/srv/out/ndjson", 0o750, 0o077, sys(lost)), "the bit looked for above dir")
	require.Empty(t, groupWarning("/srv/out/ndjson", 0o750, 0o077, sys(notYet)), "dir not made yet: check makes it first")

	require.Equal(t, `/srv/out/ndjson lost the set-group-ID bit of /srv/out (made under a umask that took bits of output.dir_mode): the directories this sink creates are not in group pachca-logs (gid 1002), through which a log forwarder may read the files; chmod g+s /srv/out/ndjson (README, "Letting a log forwarder read the files", for the day directories made meanwhile)`,
		groupWarning("/srv/out/ndjson", 0o750, 0o027, sys(lost)), "the umask set right since")

	require.Empty(t, groupWarning("/srv/out/ndjson", 0o750, 0o027, sys(sgidOut)), "a umask that keeps dir_mode")
	require.Empty(t, groupWarning("/srv/out/ndjson", 0o700, 0o077, sys(sgidOut)), "no group bits to keep")
	member := sys(lost)
	member.member = func(uint32) bool { return true }
	require.Empty(t, groupWarning("/srv/out", 0o750, 0o077, member), "a member keeps the bit")
	require.Empty(t, groupWarning("/srv/out/ndjson", 0o750, 0o077, sys(map[string]dirInfo{"/srv/out": {Perm: 0o750, ID: logs}, "/srv/out/ndjson": {Perm: 0o750, ID: logs}})), "no set-group-ID directory")
	require.Empty(t, groupWarning("/srv/out/ndjson", 0o750, 0o027, sys(map[string]dirInfo{"/srv/out": {Perm: fs.ModeSetgid | 0o750, ID: logs}, "/srv/out/ndjson": {Perm: 0o750, ID: 1001}})), "dir given another group on purpose")

	if runtime.GOOS == "linux" {
		_, ok := processUmask()
		require.True(t, ok, "/proc/self/status tells the umask")
	}
}
