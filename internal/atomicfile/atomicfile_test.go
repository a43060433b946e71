package atomicfile

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.json")
	require.NoError(t, WriteFile(path, []byte("one"), 0o640))
	require.NoError(t, WriteFile(path, []byte("two"), 0o600))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "two", string(b))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	require.Equal(t, []string{"a.json"}, entries(t, dir), "no temporary file left")

	require.Error(t, WriteFile(filepath.Join(dir, "missing", "b"), []byte("x"), 0o600))
}

func TestFileCommitAndDiscard(t *testing.T) {
	dir := t.TempDir()
	f, err := Create(dir, "data.ndjson", 0o644)
	require.NoError(t, err)
	require.True(t, IsTemp(filepath.Base(f.Name())), f.Name())
	_, err = f.WriteString("x\n")
	require.NoError(t, err)
	require.Equal(t, []string{filepath.Base(f.Name())}, entries(t, dir), "hidden until committed")
	require.NoError(t, f.Commit(filepath.Join(dir, "data.ndjson")))
	f.Discard() // after commit: removes nothing
	require.Equal(t, []string{"data.ndjson"}, entries(t, dir))
	fi, err := os.Stat(filepath.Join(dir, "data.ndjson"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o644), fi.Mode().Perm())

	g, err := Create(dir, "other", 0o600)
	require.NoError(t, err)
	g.Discard()
	g.Discard()
	require.Equal(t, []string{"data.ndjson"}, entries(t, dir), "discard leaves nothing")
	require.False(t, IsTemp("data.ndjson"))
	require.False(t, IsTemp("_manifest.json"))
}

func TestRemoveStale(t *testing.T) {
	dir := t.TempDir()
	stale, err := Create(dir, "day[1].ndjson", 0o600)
	require.NoError(t, err)
	require.NoError(t, stale.File.Close()) // its process was killed: the lock went with it
	other, err := Create(dir, "other.ndjson", 0o600)
	require.NoError(t, err)
	require.NoError(t, WriteFile(filepath.Join(dir, "day[1].ndjson"), []byte("x"), 0o600))
	require.NoError(t, RemoveStale(dir, "day[1].ndjson"))
	_, err = os.Stat(stale.Name())
	require.True(t, os.IsNotExist(err), "the stale temporary file is gone")
	_, err = os.Stat(other.Name())
	require.NoError(t, err, "another name's temporary file stays")
	_, err = os.Stat(filepath.Join(dir, "day[1].ndjson"))
	require.NoError(t, err, "the final file stays")
}

// TestReplaceable: a file or nothing may be replaced; a directory, a
// device or a named pipe, given by mistake, is named instead.
func TestReplaceable(t *testing.T) {
	dir := t.TempDir()
	file, fifo := filepath.Join(dir, "file"), filepath.Join(dir, "fifo")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	// A link to a regular file, as /dev/stdout is when stdout is a log
	// file: the rename would replace the link (was: followed, and accepted).
	link := filepath.Join(dir, "link")
	require.NoError(t, os.Symlink(file, link))
	for path, want := range map[string]string{
		file:                       "",
		filepath.Join(dir, "none"): "",
		dir:                        dir + " is a directory, not a file",
		"/dev/null":                "/dev/null is a device, not a file",
		fifo:                       fifo + " is a named pipe, not a file",
		link:                       link + " is a symbolic link (to " + file + "), not a file",
	} {
		err := Replaceable(path)
		if want == "" {
			require.NoError(t, err, path)
		} else {
			require.EqualError(t, err, want)
		}
	}
}

// TestRemoveStaleLeavesAFileBeingWritten: a temporary file another writer
// holds, written or finished but not yet renamed, stays (was: removed, and
// the other run's rename failed with "no such file or directory").
func TestRemoveStaleLeavesAFileBeingWritten(t *testing.T) {
	dir := t.TempDir()
	final := filepath.Join(dir, "day.ndjson")
	live, err := Create(dir, "day.ndjson", 0o600)
	require.NoError(t, err)
	_, err = live.Write([]byte("x\n"))
	require.NoError(t, err)
	require.NoError(t, RemoveStale(dir, "day.ndjson"))
	require.NoError(t, live.Finish())
	require.NoError(t, RemoveStale(dir, "day.ndjson"))
	require.NoError(t, live.Commit(final))
	got, err := os.ReadFile(final)
	require.NoError(t, err)
	require.Equal(t, "x\n", string(got))
	require.Equal(t, []string{"day.ndjson"}, entries(t, dir))
}

// TestMkdirForeignGroup: under a set-group-ID directory whose group the
// process is not in (a log forwarder's group, the exporter's user not a
// member: README, "Letting a log forwarder read the files"), the
// directories MkdirAll and MkdirTemp create keep the bit, so the files made
// in them are in that group too. Was: both chmod'ed every new directory,
// and chmod(2) by a non-member clears the bit: the day directories lost
// it, and the day files in them were in the exporter's group, unreadable
// to the forwarder. Setting the scene needs root; the directories are made
// by this test's binary run again as another user, in no group of the tree.
func TestMkdirForeignGroup(t *testing.T) {
	const uid, gid, foreign = 65534, 65534, 4242
	if top := os.Getenv("ATOMICFILE_FOREIGN_GROUP"); top != "" {
		syscall.Umask(0o027) // the systemd unit's
		require.NoError(t, MkdirAll(filepath.Join(top, "out", "dt=2026-11-01"), 0o750))
		_, err := MkdirTemp(filepath.Join(top, "out"), ".dt=2026-11-01.compact-", 0o750)
		require.NoError(t, err)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a directory a group the test is not in")
	}
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		require.NoError(t, os.Chmod(d, 0o755)) // the other user walks through
	}
	top := filepath.Join(dir, "top")
	require.NoError(t, os.Mkdir(top, 0o700))
	require.NoError(t, os.Chown(top, uid, foreign))
	require.NoError(t, os.Chmod(top, 0o750|os.ModeSetgid))

	self, err := os.ReadFile(os.Args[0]) // in a directory only root enters
	require.NoError(t, err)
	bin := filepath.Join(dir, "atomicfile.test")
	require.NoError(t, os.WriteFile(bin, self, 0o755))
	cmd := exec.CommandContext(t.Context(), bin, "-test.run=^TestMkdirForeignGroup$")
	cmd.Env = append(os.Environ(), "ATOMICFILE_FOREIGN_GROUP="+top)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)

	made, err := filepath.Glob(filepath.Join(top, "out", "*"))
	require.NoError(t, err)
	require.Len(t, made, 2)
	for _, d := range append(made, filepath.Join(top, "out")) {
		fi, err := os.Stat(d)
		require.NoError(t, err)
		require.Equal(t, 0o750|os.ModeSetgid|os.ModeDir, fi.Mode(), d)
		require.Equal(t, uint32(foreign), fi.Sys().(*syscall.Stat_t).Gid, d)
	}
}

// TestRemoveInGlobDirectory: in a directory whose name holds what a glob
// pattern treats specially ("/srv/logs [prod]*?"), the temporary files and
// probes a killed process left are removed (was: the pattern, the
// directory unquoted, matched nothing, and they stayed for good).
func TestRemoveInGlobDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs [prod]*?")
	require.NoError(t, os.Mkdir(dir, 0o700))
	stale, err := Create(dir, "day.ndjson", 0o600)
	require.NoError(t, err)
	require.NoError(t, stale.File.Close()) // its process was killed
	probe := filepath.Join(dir, ProbePrefix+"123")
	require.NoError(t, os.WriteFile(probe, nil, 0o600))

	require.NoError(t, RemoveStale(dir, "day.ndjson"))
	require.NoError(t, RemoveProbes(dir))
	require.Empty(t, entries(t, dir))
}
