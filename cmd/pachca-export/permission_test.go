package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/testkit/fakefs"
)

type fakeInfo = fakefs.Info

// fakeOwners is a system where the process runs as uid 1001 (pexu) and
// sees the files of seen; every other path is denied, as below a directory
// it may not enter. Tests run as root, whom no mode denies.
func fakeOwners(seen map[string]fakeInfo) owners {
	return owners{euid: 1001,
		lstat: func(p string) (fs.FileInfo, error) {
			if fi, ok := seen[p]; ok {
				return fi, nil
			}
			return nil, &fs.PathError{Op: "lstat", Path: p, Err: syscall.EACCES}
		},
		name:  func(uid uint32) string { return map[uint32]string{0: "root", 1001: "pexu"}[uid] },
		group: func(gid uint32) string { return map[uint32]string{0: "root", 1001: "pexu"}[gid] },
	}
}

// TestPermissionDeniedNamesOwner: a state or output that a run by hand as
// root left behind refuses the service's user with the owner of what
// denies it and the chown to run (was: "mkdir .../state/KEY: permission
// denied" of a directory that exists, and nothing on what to do).
func TestPermissionDeniedNamesOwner(t *testing.T) {
	o := fakeOwners(map[string]fakeInfo{
		"/":                      {Perm: fs.ModeDir | 0o755, ID: 0},
		"/srv":                   {Perm: fs.ModeDir | 0o755, ID: 0},
		"/srv/pe":                {Perm: fs.ModeDir | 0o755, ID: 1001},
		"/srv/pe/state":          {Perm: fs.ModeDir | 0o700, ID: 0},
		"/srv/pe/out":            {Perm: fs.ModeDir | 0o750, ID: 0},
		"/srv/cfg":               {Perm: fs.ModeDir | 0o755, ID: 0},
		"/srv/cfg/token":         {Perm: 0o600, ID: 0},
		"/srv/pe/st":             {Perm: fs.ModeDir | 0o700, ID: 1001},
		"/srv/pe/st/key.json":    {Perm: 0o600, ID: 0},
		"/srv/pe/mine":           {Perm: fs.ModeDir | 0o500, ID: 1001},
		"/srv/pe/sandboxed":      {Perm: fs.ModeDir | 0o750, ID: 1001},
		"/srv/pe/tf":             {Perm: fs.ModeDir | fs.ModeSticky | 0o777, ID: 0},
		"/srv/pe/tf/pachca.prom": {Perm: 0o644, ID: 0},
	})
	denied := func(op, path string) error {
		return &fs.PathError{Op: op, Path: path, Err: syscall.EACCES}
	}

	err := permissionHint(fmt.Errorf("state: %w", denied("mkdir", "/srv/pe/state/c65fd736")), o)
	require.EqualError(t, err, "state: mkdir /srv/pe/state/c65fd736: permission denied (this process runs as user pexu (uid 1001); the directory /srv/pe/state belongs to user root (uid 0), group root (gid 0), mode 0700: chown -R pexu /srv/pe/state, or run as its owner)")
	require.ErrorIs(t, err, fs.ErrPermission, "still the error it was, for the exit status")

	err = permissionHint(fmt.Errorf("source.token_file: %w", denied("open", "/srv/cfg/token")), o)
	require.EqualError(t, err, "source.token_file: open /srv/cfg/token: permission denied (this process runs as user pexu (uid 1001); the file /srv/cfg/token belongs to user root (uid 0), group root (gid 0), mode 0600: chown pexu /srv/cfg/token, or run as its owner)")

	// Another user's file in a directory of this user's: the others a
	// run as that user wrote there go with it.
	err = permissionHint(fmt.Errorf("state: %w", denied("open", "/srv/pe/st/key.json")), o)
	require.EqualError(t, err, "state: open /srv/pe/st/key.json: permission denied (this process runs as user pexu (uid 1001); the file /srv/pe/st/key.json belongs to user root (uid 0), group root (gid 0), mode 0600, in a directory of this process's user: chown -R pexu /srv/pe/st, or run as its owner)")

	// Two sinks refused: each line names its own.
	err = permissionHint(errors.Join(
		fmt.Errorf("sinks[0]: %w", denied("mkdir", "/srv/pe/out/ndjson")),
		errors.New("sinks[1]: a failure of another kind"),
		fmt.Errorf("state: %w", denied("open", "/srv/pe/state/c65fd736/lock"))), o)
	require.EqualError(t, err, "sinks[0]: mkdir /srv/pe/out/ndjson: permission denied (this process runs as user pexu (uid 1001); the directory /srv/pe/out belongs to user root (uid 0), group root (gid 0), mode 0750: chown -R pexu /srv/pe/out, or run as its owner)\n"+
		"sinks[1]: a failure of another kind\n"+
		"state: open /srv/pe/state/c65fd736/lock: permission denied (this process runs as user pexu (uid 1001); the directory /srv/pe/state belongs to user root (uid 0), group root (gid 0), mode 0700: chown -R pexu /srv/pe/state, or run as its owner)")

	// A rename over another user's file in a sticky directory (a
	// textfile collector's): the target is named.
	err = permissionHint(&os.LinkError{Op: "rename", Old: "/srv/pe/tf/.pachca.prom.tmp-1", New: "/srv/pe/tf/pachca.prom", Err: syscall.EPERM}, o)
	require.ErrorContains(t, err, "operation not permitted (this process runs as user pexu (uid 1001); the file /srv/pe/tf/pachca.prom belongs to user root (uid 0), group root (gid 0), mode 0644: chown pexu /srv/pe/tf/pachca.prom, or run as its owner)")

	// Its own directory: the mode, or something other than a mode.
	require.ErrorContains(t, permissionHint(denied("open", "/srv/pe/mine/x"), o),
		"(this process runs as user pexu (uid 1001) and owns the directory /srv/pe/mine, but its mode is 0500: chmod -R u+rwX /srv/pe/mine)")
	require.ErrorContains(t, permissionHint(denied("open", "/srv/pe/sandboxed/x"), o),
		"(this process runs as user pexu (uid 1001) and owns the directory /srv/pe/sandboxed, mode 0750: what denies it is no file mode (a read-only mount, the service's sandbox, SELinux or AppArmor))")

	// systemd's DynamicUser=: a uid without a name.
	dyn := o
	dyn.euid = 61234
	require.ErrorContains(t, permissionHint(denied("mkdir", "/srv/pe/out/ndjson"), dyn),
		"(this process runs as uid 61234; the directory /srv/pe/out belongs to user root (uid 0), group root (gid 0), mode 0750: chown -R 61234 /srv/pe/out, or run as its owner)")

	// Other errors stay as they were.
	other := fmt.Errorf("sinks[0]: %w", &fs.PathError{Op: "open", Path: "/srv/pe/out/x", Err: syscall.ENOSPC})
	require.Equal(t, other, permissionHint(other, o))
	noPath := fmt.Errorf("bind: %w", syscall.EACCES)
	require.Equal(t, noPath, permissionHint(noPath, o))
	require.NoError(t, permissionHint(nil, o))
}
