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

// procStopped tells whether process pid of this host is stopped: by
// SIGSTOP or SIGTSTP (Ctrl-Z), or by a debugger ("T" or "t" in
// /proc/PID/stat). Such a process holds its flock until it goes on.
func procStopped(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// "PID (COMM) STATE ...": COMM may hold spaces and parentheses.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	return b[i+2] == 'T' || b[i+2] == 't'
}
