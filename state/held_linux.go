package state

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// flocked tells whether some process holds a flock on f, without taking
// one: trying the lock, even shared and for a moment, could refuse a run
// that starts in that moment. The kernel lists every lock in /proc/locks,
// a file by its device and inode ("1: FLOCK  ADVISORY  WRITE 4242
// 00:2f:1234 0 EOF"); known is false where it cannot be read.
func flocked(f *os.File) (held, known bool) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return false, false
	}
	locks, err := os.Open("/proc/locks")
	if err != nil {
		return false, false
	}
	defer locks.Close()
	want := fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	sc := bufio.NewScanner(locks)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		// A process waiting for a lock is listed with "->" after the id.
		if len(fields) < 6 || fields[1] != "FLOCK" {
			continue
		}
		if fields[5] == want {
			return true, true
		}
	}
	return false, sc.Err() == nil
}
