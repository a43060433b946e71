package filesink

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/pachca-export/pachca-export/internal/account"
)

// GroupWarning says when the directories the sink creates are not in the
// group of the set-group-ID directory above them, through which a log
// forwarder reads the files (README, "Letting a log forwarder read the
// files"). The run still succeeds, and the forwarder reads nothing new:
//   - the umask takes bits of dir_mode away and this process is not in
//     the group: each directory made gets its mode with chmod, which
//     clears the bit for a process outside the group;
//   - dir, made so earlier, lost the bit its parent has (where the README
//     sets it).
//
// "" when none, or when it cannot tell (no /proc).
func (s *Sink) GroupWarning() string {
	umask, ok := processUmask()
	if !ok {
		return ""
	}
	return groupWarning(s.dir, s.dirMode, umask, groupSys{stat: os.Stat, member: inGroup, name: account.GroupName})
}

// groupSys is what groupWarning reads of the system; tests give their own.
type groupSys struct {
	stat   func(string) (fs.FileInfo, error)
	member func(gid uint32) bool // the process is in the group
	name   func(gid uint32) string
}

func groupWarning(dir string, dirMode fs.FileMode, umask fs.FileMode, sys groupSys) string {
	fi, err := sys.stat(dir)
	if err != nil {
		return ""
	}
	parent := filepath.Dir(dir)
	pfi, err := sys.stat(parent)
	gidOf := func(fi fs.FileInfo) (uint32, bool) {
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return 0, false
		}
		return st.Gid, true
	}
	at, atInfo := dir, fi
	if fi.Mode()&fs.ModeSetgid == 0 {
		if err != nil || pfi.Mode()&fs.ModeSetgid == 0 {
			return ""
		}
		at, atInfo = parent, pfi
	}
	gid, ok := gidOf(atInfo)
	if !ok {
		return ""
	}
	group := fmt.Sprintf("gid %d", gid)
	if n := sys.name(gid); n != "" {
		group = fmt.Sprintf("%s (gid %d)", n, gid)
	}
	if umask&dirMode.Perm() != 0 && !sys.member(gid) {
		return fmt.Sprintf("the directories this sink creates lose the set-group-ID bit of %s, and with it its group %s, through which a log forwarder may read the files: the umask %04o takes bits of output.dir_mode %04o and this process is not in the group; run it with a umask that keeps them (%04o: UMask= of a unit, umask in a cron job's command) or put its user in the group",
			at, group, umask, dirMode.Perm(), umask&^dirMode.Perm())
	}
	if at == parent {
		if g, ok := gidOf(fi); ok && g == gid {
			return fmt.Sprintf("%s lost the set-group-ID bit of %s (made under a umask that took bits of output.dir_mode): the directories this sink creates are not in group %s, through which a log forwarder may read the files; chmod g+s %s (README, \"Letting a log forwarder read the files\", for the day directories made meanwhile)",
				dir, parent, group, dir)
		}
	}
	return ""
}

// inGroup reports whether gid is the process's group or one of its
// supplementary groups.
func inGroup(gid uint32) bool {
	if os.Getegid() == int(gid) {
		return true
	}
	groups, err := os.Getgroups()
	return err == nil && slices.Contains(groups, int(gid))
}

// processUmask reads the process's umask from /proc/self/status (Linux
// 4.7 and later): setting it to read it back would change it, for a
// moment, for every thread.
func processUmask() (fs.FileMode, bool) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Umask:"); ok {
			m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			return fs.FileMode(m), err == nil
		}
	}
	return 0, false
}
