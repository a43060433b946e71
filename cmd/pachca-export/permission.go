package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/pachca-export/pachca-export/internal/account"
)

// owners is what permissionHint reads of the system: the process's
// effective user, the files' owners and the users' names. osOwners is the
// system's; tests give their own.
type owners struct {
	euid  int
	lstat func(string) (fs.FileInfo, error)
	name  func(uid uint32) string // "" when the uid has no name
	group func(gid uint32) string // "" when the gid has no name
}

func osOwners() owners {
	return owners{euid: os.Geteuid(), lstat: os.Lstat, name: account.UserName, group: account.GroupName}
}

// permissionHint adds to an error of permission denied (EACCES, EPERM) on
// a path who this process runs as and who owns the path, or the nearest
// directory above it this process can see, with the chown that gives it
// access: a run by hand as root leaves a state and output only root may
// write into, and the service's user then reads "mkdir .../state/KEY:
// permission denied" of a directory that exists. An error of several
// (errors.Join: two sinks) gets a hint on each line.
func permissionHint(err error, o owners) error {
	if err == nil || !errors.Is(err, fs.ErrPermission) {
		return err
	}
	if joined, ok := eachJoined(err, func(e error) error { return permissionHint(e, o) }); ok {
		return joined
	}
	hint := o.hint(deniedPath(err))
	if hint == "" {
		return err
	}
	return fmt.Errorf("%w (%s)", err, hint)
}

// deniedPath is the path an error of permission names: that of a failed
// open, mkdir or stat, or a rename's target (the one a sticky directory
// protects), else "".
func deniedPath(err error) string {
	var le *os.LinkError
	if errors.As(err, &le) && errors.Is(le.Err, fs.ErrPermission) {
		return le.New
	}
	var pe *fs.PathError
	if errors.As(err, &pe) && errors.Is(pe.Err, fs.ErrPermission) {
		return pe.Path
	}
	return ""
}

// hint names the process's user and the owner of path, or of the nearest
// directory above it that the process can see (a directory it may not
// enter hides what is below), and what gives the user access.
func (o owners) hint(path string) string {
	if path == "" || !filepath.IsAbs(path) {
		if path == "" {
			return ""
		}
		abs, err := filepath.Abs(path)
		if err != nil {
			return ""
		}
		path = abs
	}
	for p := filepath.Clean(path); ; p = filepath.Dir(p) {
		fi, err := o.lstat(p)
		if err == nil {
			return o.describe(p, fi)
		}
		if p == filepath.Dir(p) {
			return ""
		}
	}
}

func (o owners) describe(p string, fi fs.FileInfo) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	me := o.who(uint32(o.euid))
	kind, r := "file", ""
	if fi.IsDir() {
		kind, r = "directory", "-R "
	}
	mode := fmt.Sprintf("%04o", fi.Mode().Perm())
	if int(st.Uid) == o.euid {
		need := fs.FileMode(0o600)
		if fi.IsDir() {
			need = 0o700
		}
		if fi.Mode().Perm()&need == need {
			return fmt.Sprintf("this process runs as %s and owns the %s %s, mode %s: what denies it is no file mode (a read-only mount, the service's sandbox, SELinux or AppArmor)", me, kind, p, mode)
		}
		return fmt.Sprintf("this process runs as %s and owns the %s %s, but its mode is %s: chmod -R u+rwX %s", me, kind, p, mode, p)
	}
	owner := o.who(st.Uid) + ", group " + o.groupOf(st.Gid)
	user := o.name(uint32(o.euid))
	if user == "" {
		user = strconv.Itoa(o.euid)
	}
	// Another user's file in this user's directory: a run as that user
	// (a state's, a day's files) wrote the others there too.
	if !fi.IsDir() {
		if dir := filepath.Dir(p); o.owns(dir) {
			return fmt.Sprintf("this process runs as %s; the file %s belongs to %s, mode %s, in a directory of this process's user: chown -R %s %s, or run as its owner", me, p, owner, mode, user, dir)
		}
	}
	return fmt.Sprintf("this process runs as %s; the %s %s belongs to %s, mode %s: chown %s%s %s, or run as its owner", me, kind, p, owner, mode, r, user, p)
}

// owns reports whether path belongs to the process's user.
func (o owners) owns(path string) bool {
	fi, err := o.lstat(path)
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == o.euid
}

// groupOf is "NAME (gid N)", or "gid N" for a gid without a name.
func (o owners) groupOf(gid uint32) string {
	if n := o.group(gid); n != "" {
		return fmt.Sprintf("%s (gid %d)", n, gid)
	}
	return fmt.Sprintf("gid %d", gid)
}

// who is "user NAME (uid N)", or "uid N" for a uid without a name (systemd's
// DynamicUser= outside its own name service).
func (o owners) who(uid uint32) string {
	if n := o.name(uid); n != "" {
		return fmt.Sprintf("user %s (uid %d)", n, uid)
	}
	return fmt.Sprintf("uid %d", uid)
}
