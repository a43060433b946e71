package state_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/extract"
	"github.com/pachca-export/pachca-export/internal/failure"
	"github.com/pachca-export/pachca-export/internal/sumfile"
	"github.com/pachca-export/pachca-export/state"
	"github.com/pachca-export/pachca-export/testkit/exporttest"
)

func TestLock(t *testing.T) {
	root := t.TempDir()
	id := map[string]string{"base_url": "x"}
	a, err := state.Open(root, id)
	require.NoError(t, err)
	_, err = state.Open(root, id)
	require.ErrorIs(t, err, state.ErrLocked)
	require.ErrorContains(t, err, "another pachca-export process is using this state")
	host, _ := os.Hostname()
	require.Regexp(t, fmt.Sprintf(`, held by pid %d on %s since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\); wait`, os.Getpid(), regexp.QuoteMeta(host)), err.Error(),
		"the message names the holder")
	a.Hold(state.ModeFollow, "")
	_, err = state.Open(root, id)
	require.ErrorIs(t, err, state.ErrLocked)
	require.Regexp(t, `Z \(follow\)\): a follow loop runs until it is stopped: stop it first \(it goes on where it stopped when started again\)$`, err.Error(),
		"a follow loop never finishes: waiting for it is no advice")
	// The holder's configuration file is named (was: not: a second
	// workspace's configuration copied from the first with only its token
	// changed keys the first one's state, and the advice to stop the
	// holder would have the two workspaces' events mixed in one output).
	a.Hold(state.ModeFollow, "/etc/pachca/acme/pipeline.yaml")
	_, err = state.Open(root, id)
	require.ErrorIs(t, err, state.ErrLocked)
	require.Regexp(t, `Z \(follow\) with /etc/pachca/acme/pipeline.yaml\): a follow loop runs until it is stopped: stop it first \(it goes on where it stopped when started again\); `+
		`if that is another workspace's configuration, give this one a source.workspace of its own \(the token is no part of the state's key\)$`, err.Error())
	a.Hold("run", "/etc/pachca/acme/pipeline.yaml")
	_, err = state.Open(root, id)
	require.Regexp(t, `Z \(run\) with /etc/pachca/acme/pipeline.yaml\); wait for it to finish or stop it; if that is another workspace's configuration, give this one a source.workspace of its own`, err.Error())
	other, err := state.Open(root, map[string]string{"base_url": "y"})
	require.NoError(t, err, "another identity is another state")
	require.NoError(t, other.Close())
	require.NoError(t, a.Close())
	require.NoError(t, a.Close())
	b, err := state.Open(root, id)
	require.NoError(t, err, "free after close")
	require.NoError(t, b.Close())
	key, err := state.Key(id)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(root, key), b.Dir())
	info, err := os.Stat(filepath.Join(root, key))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), info.Mode().Perm())

	// A process killed while writing follow.json left its temporary file:
	// the next Open removes it, and nothing else.
	stale := filepath.Join(b.Dir(), ".follow.json.tmp-123")
	require.NoError(t, os.WriteFile(stale, []byte("{"), 0o600))
	c, err := state.Open(root, id)
	require.NoError(t, err)
	require.NoError(t, c.Close())
	require.NoFileExists(t, stale)
	require.FileExists(t, filepath.Join(b.Dir(), "key.json"))
}

func TestExportedDays(t *testing.T) {
	s, err := state.Open(t.TempDir(), "k")
	require.NoError(t, err)
	defer s.Close()
	days, err := s.Exported()
	require.NoError(t, err)
	require.Empty(t, days)
	at := time.Date(2026, 11, 2, 3, 0, 0, 0, time.UTC)
	require.NoError(t, s.MarkExported(state.Day{Day: "2026-11-01", ExportedAt: at, RunID: "r", Records: 5}))
	require.NoError(t, s.MarkExported(state.Day{Day: "2026-10-31", ExportedAt: at, RunID: "r", Records: 7}))
	days, err = s.Exported()
	require.NoError(t, err)
	require.Len(t, days, 2)
	require.EqualValues(t, 7, days["2026-10-31"].Records)
	require.NoError(t, os.WriteFile(filepath.Join(s.Dir(), "exported.json"), []byte("{garbage"), 0o600))
	_, err = s.Exported()
	require.ErrorContains(t, err, "is damaged")
}

func TestSpoolCheckpoint(t *testing.T) {
	s, err := state.Open(t.TempDir(), "k")
	require.NoError(t, err)
	defer s.Close()
	sp := s.Spool()
	w := extract.Window{Stream: "user_login", Start: 1000, End: 5000}
	ww, err := sp.Open("2026-11-01", w)
	require.NoError(t, err)
	require.NoError(t, ww.Add(extract.Event{ID: "a", Raw: []byte("{\"id\":\"a\",\n \"x\": 1}")}))
	require.NoError(t, ww.Add(extract.Event{ID: "b", Raw: []byte(`{"id":"b"}`)}))
	// Not visible before commit.
	ws, err := sp.Windows("2026-11-01")
	require.NoError(t, err)
	require.Empty(t, ws)
	require.NoError(t, ww.Commit(extract.Window{Stream: "user_login", Start: 2000, End: 5000}))
	ws, err = sp.Windows("2026-11-01")
	require.NoError(t, err)
	require.Equal(t, []extract.Window{{Stream: "user_login", Start: 2000, End: 5000}}, ws)
	var lines []string
	var at []state.Line
	require.NoError(t, sp.Read("2026-11-01", ws[0], func(raw []byte, l state.Line) error {
		lines, at = append(lines, string(raw)), append(at, l)
		return nil
	}))
	require.Equal(t, []string{`{"id":"a","x":1}`, `{"id":"b"}`}, lines, "one event per line")

	// Lines read again where Read found them, in another order; a place
	// that is not a line is damage, not an event.
	var again []string
	require.NoError(t, sp.ReadLines("2026-11-01", ws[0], []state.Line{at[1], at[0]}, func(i int, raw []byte) error {
		again = append(again, fmt.Sprint(i, " ", string(raw)))
		return nil
	}))
	require.Equal(t, []string{`0 {"id":"b"}`, `1 {"id":"a","x":1}`}, again)
	err = sp.ReadLines("2026-11-01", ws[0], []state.Line{{Off: at[0].Off, Len: at[0].Len - 1}}, func(int, []byte) error { return nil })
	require.ErrorIs(t, err, state.ErrDamaged)

	// An aborted window leaves nothing; a killed one's temp file is cleaned.
	ab, err := sp.Open("2026-11-01", extract.Window{Start: 6000, End: 7000})
	require.NoError(t, err)
	require.NoError(t, ab.Add(extract.Event{Raw: []byte(`{}`)}))
	ab.Abort()
	_, err = sp.Open("2026-11-01", extract.Window{Start: 8000, End: 9000}) // never committed
	require.NoError(t, err)
	require.NoError(t, sp.CleanTemp())
	ws, err = sp.Windows("2026-11-01")
	require.NoError(t, err)
	require.Len(t, ws, 1)
	entries, err := os.ReadDir(filepath.Join(s.Dir(), "spool", "2026-11-01"))
	require.NoError(t, err)
	require.Len(t, entries, 1, "temporary files removed")
	require.NoError(t, sp.Remove("2026-11-01", ws))
	_, err = os.Stat(filepath.Join(s.Dir(), "spool", "2026-11-01"))
	require.True(t, os.IsNotExist(err))
}

func TestKeyStable(t *testing.T) {
	type id struct{ A, B string }
	key := func(v any) string {
		k, err := state.Key(v)
		require.NoError(t, err)
		return k
	}
	require.Equal(t, key(id{"x", "y"}), key(id{"x", "y"}))
	require.NotEqual(t, key(id{"x", "y"}), key(id{"x", "z"}))
	require.Len(t, key(id{}), 16)
	// The key of a configuration must not change between versions: it
	// names the state directory that records the exported days.
	require.Equal(t, "4d7a24fcc4c9ff89", key(id{"x", "y"}))
	_, err := state.Key(func() {})
	require.Error(t, err, "a value JSON cannot encode is an error, not a panic")
}

// TestSpoolDamaged: a window file cut short, with one byte changed, with a
// line added or without its trailer fails its read with ErrDamaged naming
// the file, and Sound removes it so that its window is fetched again.
func TestSpoolDamaged(t *testing.T) {
	s, err := state.Open(t.TempDir(), "k")
	require.NoError(t, err)
	defer s.Close()
	sp := s.Spool()
	const day = "2026-11-01"
	write := func(w extract.Window) string {
		ww, err := sp.Open(day, w)
		require.NoError(t, err)
		for i := range 100 {
			require.NoError(t, ww.Add(extract.Event{Raw: fmt.Appendf(nil, `{"id":"e%d","created_at":"2026-11-01T00:00:00.000Z"}`, i)}))
		}
		require.NoError(t, ww.Commit(w))
		return filepath.Join(s.Dir(), "spool", day, fmt.Sprintf("_all~%d~%d.ndjson", w.Start, w.End))
	}
	for _, tc := range []struct {
		name   string
		damage func(b []byte) []byte
		why    string
	}{
		{"cut to half", func(b []byte) []byte { return b[:len(b)/2] }, "no trailer"},
		{"cut at a line end", func(b []byte) []byte { return b[:bytes.LastIndexByte(b[:len(b)/2], '\n')+1] }, "no trailer"},
		{"one byte changed", func(b []byte) []byte { b[20] ^= 1; return b }, "do not match its trailer"},
		{"a line added", func(b []byte) []byte { return append([]byte(`{"id":"x"}`+"\n"), b...) }, "do not match its trailer"},
		// As a version before trailers wrote them.
		{"no trailer", func(b []byte) []byte { return b[:bytes.LastIndex(b, []byte("#pachca-spool"))] }, "written by an older version"},
		{"data after the trailer", func(b []byte) []byte { return append(b, "{}\n"...) }, "data after the trailer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			good := extract.Window{Start: 1000, End: 2000}
			bad := extract.Window{Start: 2000, End: 3000}
			write(good)
			path := write(bad)
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(path, tc.damage(b), 0o600))

			err = sp.Read(day, bad, func([]byte, state.Line) error { return nil })
			require.ErrorIs(t, err, state.ErrDamaged)
			require.ErrorContains(t, err, path)
			n := 0
			require.NoError(t, sp.Read(day, good, func([]byte, state.Line) error { n++; return nil }))
			require.Equal(t, 100, n)

			ws, removed, err := sp.Sound(day)
			require.NoError(t, err)
			require.Equal(t, []extract.Window{good}, ws)
			require.Len(t, removed, 1)
			require.ErrorIs(t, removed[0], state.ErrDamaged)
			require.ErrorContains(t, removed[0], path)
			require.ErrorContains(t, removed[0], tc.why, "the error says why")
			_, err = os.Stat(path)
			require.True(t, os.IsNotExist(err), "the damaged file is gone")
			require.NoError(t, sp.RemoveDay(day))
		})
	}
}

// TestStateFilesDamaged: exported.json, a run's progress and key.json cut
// short or edited stop with a permanent error that names the file and says
// how to recover; they are never read as empty.
func TestStateFilesDamaged(t *testing.T) {
	root := t.TempDir()
	s, err := state.Open(root, "k")
	require.NoError(t, err)
	require.NoError(t, s.MarkExported(state.Day{Day: "2026-11-01", RunID: "r", Records: 5960}))
	require.NoError(t, s.MarkExported(state.Day{Day: "2026-11-02", RunID: "r", Records: 6001}))
	require.NoError(t, s.AddRunProgress("range", "2026-11-01"))
	require.NoError(t, s.SetRelink(state.Relink{First: "2026-11-01", Last: "2026-11-02"}))
	require.NoError(t, s.Close())
	dir := s.Dir()
	read := map[string]func() error{
		"relink.json": func() error { // check says what the next run would stop on
			_, err := state.Check(root, "k")
			return err
		},
		"exported.json": func() error {
			v, err := state.Peek(root, "k")
			require.NoError(t, err)
			_, err = v.Exported()
			return err
		},
		"run-range.json": func() error {
			v, err := state.Peek(root, "k")
			require.NoError(t, err)
			_, err = v.RunProgress("range")
			return err
		},
		"key.json": func() error {
			s, err := state.Open(root, "k")
			if err == nil {
				s.Close()
			}
			return err
		},
	}
	for name, read := range read {
		for damage, f := range map[string]func([]byte) []byte{
			"half":   func(b []byte) []byte { return b[:len(b)/2] },
			"edited": func(b []byte) []byte { i := bytes.LastIndexByte(b, '1'); b[i] = '7'; return b },
		} {
			t.Run(name+"/"+damage, func(t *testing.T) {
				path := filepath.Join(dir, name)
				orig, err := os.ReadFile(path)
				require.NoError(t, err)
				defer os.WriteFile(path, orig, 0o600)
				require.NoError(t, read(), "intact")
				require.NoError(t, os.WriteFile(path, f(bytes.Clone(orig)), 0o600))
				err = read()
				require.Error(t, err)
				require.True(t, failure.IsPermanent(err), "%v", err)
				require.ErrorContains(t, err, path+" is damaged")
				require.ErrorContains(t, err, "move it away")
			})
		}
	}
}

// TestCheckRefusesWhatOpenRefuses: a state whose key.json is damaged or not
// a file, or whose lock is not a file, fails Check (pachca-export check)
// with the error the run's Open stops on, instead of passing a check that
// the next run fails at once.
func TestCheckRefusesWhatOpenRefuses(t *testing.T) {
	cases := map[string]func(t *testing.T, dir string){
		"key.json edited": func(t *testing.T, dir string) {
			path := filepath.Join(dir, "key.json")
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(path, bytes.Replace(b, []byte(`"k"`), []byte(`"x"`), 1), 0o600))
		},
		"key.json a directory": func(t *testing.T, dir string) {
			require.NoError(t, os.Remove(filepath.Join(dir, "key.json")))
			require.NoError(t, os.Mkdir(filepath.Join(dir, "key.json"), 0o700))
		},
		"lock a directory": func(t *testing.T, dir string) {
			require.NoError(t, os.Remove(filepath.Join(dir, "lock")))
			require.NoError(t, os.Mkdir(filepath.Join(dir, "lock"), 0o700))
		},
		"lock a symbolic link": func(t *testing.T, dir string) {
			require.NoError(t, os.Remove(filepath.Join(dir, "lock")))
			require.NoError(t, os.Symlink(filepath.Join(t.TempDir(), "elsewhere"), filepath.Join(dir, "lock")))
		},
	}
	for name, damage := range cases {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			s, err := state.Open(root, "k")
			require.NoError(t, err)
			require.NoError(t, s.Close())
			_, err = state.Check(root, "k")
			require.NoError(t, err, "intact")

			damage(t, s.Dir())
			_, openErr := state.Open(root, "k")
			require.Error(t, openErr)
			_, err = state.Check(root, "k")
			require.EqualError(t, err, openErr.Error())
		})
	}
}

// TestCheckReadsTheIDLogs: a follow id log with a damaged line fails Check
// with the error the follow loop stops on at its start (was: check passed,
// and the next follow start stopped at once on it).
func TestCheckReadsTheIDLogs(t *testing.T) {
	root := t.TempDir()
	s, err := state.Open(root, "k")
	require.NoError(t, err)
	at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC).UnixMilli()
	require.NoError(t, s.AppendDelivered(1, slices.Values([]state.DeliveredID{{"a", at, 1}, {"b", at + 1, 2}})))
	_, err = state.Check(root, "k")
	require.NoError(t, err, "intact")

	path := filepath.Join(s.Dir(), "follow-ids", "2026-11-01")
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, bytes.Replace(b, []byte(" a "), []byte(" e "), 1), 0o600))
	startErr := s.Delivered("2026-11-01", 1, func(state.DeliveredID) {})
	require.Error(t, startErr)
	require.NoError(t, s.Close())
	_, err = state.Check(root, "k")
	require.EqualError(t, err, startErr.Error())
}

// TestCheckProbesTheSpool: a spool that takes no file fails Check, naming
// it, rather than the run that would stop on its first window.
func TestCheckProbesTheSpool(t *testing.T) {
	root := t.TempDir()
	s, err := state.Open(root, "k")
	require.NoError(t, err)
	require.NoError(t, s.Close())
	spool := filepath.Join(s.Dir(), "spool")
	exporttest.MountTmpfs(t, spool, "ro")

	_, err = state.Check(root, "k")
	require.EqualError(t, err, "state: directory "+spool+" is not writable: read-only file system")
}

// TestSpoolFullDisk: a spool that runs out of room fails naming the
// window's file as the spool calls it, the same at each try of a follow
// loop, never its hidden temporary one; nothing is left.
func TestSpoolFullDisk(t *testing.T) {
	s, err := state.Open(t.TempDir(), "k")
	require.NoError(t, err)
	defer s.Close()
	dayDir := filepath.Join(s.Dir(), "spool", "2026-11-01")
	require.NoError(t, os.MkdirAll(dayDir, 0o700))
	exporttest.MountTmpfs(t, dayDir, "size=8k")
	require.NoError(t, os.WriteFile(filepath.Join(dayDir, "filler"), make([]byte, 4096), 0o600))

	ww, err := s.Spool().Open("2026-11-01", extract.Window{Start: 1000, End: 5000})
	require.NoError(t, err)
	raw := []byte(`{"id":"` + strings.Repeat("x", 1000) + `"}`)
	for i := 0; i < 100 && err == nil; i++ {
		err = ww.Add(extract.Event{ID: "x", Raw: raw})
	}
	if err == nil {
		err = ww.Commit(extract.Window{Start: 2000, End: 5000})
	} else {
		ww.Abort()
	}
	require.ErrorContains(t, err, "write "+dayDir+"/_all~")
	require.ErrorContains(t, err, ".ndjson: no space left on device")
	require.NotContains(t, err.Error(), ".tmp-")
	entries, err := os.ReadDir(dayDir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "the filler alone")
}

// TestSpoolDoesNotRecreateARemovedState: a window opened after the state
// directory was removed (by hand, by a cleaner of temporary files) fails
// naming the spool, and makes no directory again (was: the spool's day
// directory and its parents, the state's own directory among them, were
// made again without the lock, a partial state for another process).
func TestSpoolDoesNotRecreateARemovedState(t *testing.T) {
	root := t.TempDir()
	s, err := state.Open(root, "k")
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, os.RemoveAll(root))

	_, err = s.Spool().Open("2026-11-01", extract.Window{Start: 1000, End: 5000})
	require.ErrorContains(t, err, "spool: "+filepath.Join(s.Dir(), "spool")+" is gone (the state directory removed while this process used it?)")
	require.NoDirExists(t, root, "nothing made again")
}

// TestNewerFormatRefused: a state whose format.json a newer version wrote
// is refused by Open, Check and Peek alike, naming the file's format and
// what to do, and nothing in it is read or written; a state without
// format.json (an earlier version's) is opened and gets one.
func TestNewerFormatRefused(t *testing.T) {
	root := t.TempDir()
	id := map[string]string{"base_url": "x"}
	s, err := state.Open(root, id)
	require.NoError(t, err)
	require.NoError(t, s.MarkExported(state.Day{Day: "2026-11-01", RunID: "r", Records: 1}))
	dir := s.Dir()
	require.NoError(t, s.Close())
	stamp := filepath.Join(dir, "format.json")
	b, err := os.ReadFile(stamp)
	require.NoError(t, err)
	require.Contains(t, string(b), fmt.Sprintf(`"format": %d`, state.Format))

	// An earlier version's state: no format.json.
	require.NoError(t, os.Remove(stamp))
	s, err = state.Open(root, id)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.FileExists(t, stamp)

	require.NoError(t, sumfile.Write(stamp, map[string]int{"format": state.Format + 1}, 0o600))
	before, err := os.ReadFile(filepath.Join(dir, "exported.json"))
	require.NoError(t, err)
	_, err = state.Open(root, id)
	require.ErrorIs(t, err, state.ErrNewerFormat)
	require.True(t, failure.IsPermanent(err))
	require.ErrorContains(t, err, fmt.Sprintf("(state format %d; this version reads formats up to %d): run that version or a newer one", state.Format+1, state.Format))
	_, err = state.Check(root, id)
	require.ErrorIs(t, err, state.ErrNewerFormat)
	_, err = state.Peek(root, id)
	require.ErrorIs(t, err, state.ErrNewerFormat)
	after, err := os.ReadFile(filepath.Join(dir, "exported.json"))
	require.NoError(t, err)
	require.Equal(t, before, after)
	b, err = os.ReadFile(stamp)
	require.NoError(t, err)
	require.Contains(t, string(b), fmt.Sprintf(`"format": %d`, state.Format+1), "left as the newer version wrote it")
}

// TestSymlinksNotFollowed: a symbolic link planted at the lock or at a
// follow id log, by whoever else can write the state directory, fails the
// run naming it and leaves the file it points to as it was (was: opening
// the lock truncated that file and wrote "pid N on HOST since T" into it,
// and an id log appended the ids to it).
func TestSymlinksNotFollowed(t *testing.T) {
	victim := filepath.Join(t.TempDir(), "victim")
	const content = "someone else's file\nlast line without newline"
	root := t.TempDir()
	s, err := state.Open(root, "k")
	require.NoError(t, err)
	dir := s.Dir()

	require.NoError(t, os.WriteFile(victim, []byte(content), 0o600))
	ids := filepath.Join(dir, "follow-ids")
	require.NoError(t, os.MkdirAll(ids, 0o700))
	log := filepath.Join(ids, "2026-11-01")
	require.NoError(t, os.Symlink(victim, log))
	at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC).UnixMilli()
	err = s.AppendDelivered(1, slices.Values([]state.DeliveredID{{"a", at, 1}}))
	require.EqualError(t, err, "state: "+log+" is a symbolic link, not a file of the state: remove it, and keep state.dir writable by its owner only")
	require.NoError(t, s.Close())

	lock := filepath.Join(dir, "lock")
	require.NoError(t, os.Remove(lock))
	require.NoError(t, os.Symlink(victim, lock))
	_, err = state.Open(root, "k")
	require.EqualError(t, err, "state: "+lock+" is a symbolic link, not a file of the state: remove it, and keep state.dir writable by its owner only")

	b, err := os.ReadFile(victim)
	require.NoError(t, err)
	require.Equal(t, content, string(b), "the file the links point to is untouched")
}

// TestOpenTakesOverFormer: without a state of its identity, Open takes
// over the state of a former identity, renamed under its lock: refused
// while another run holds it, kept whole after.
func TestOpenTakesOverFormer(t *testing.T) {
	root := t.TempDir()
	former, id := map[string]string{"k": "old"}, map[string]string{"k": "new"}
	old, err := state.Open(root, former)
	require.NoError(t, err)
	require.NoError(t, old.MarkExported(state.Day{Day: "2026-11-20", RunID: "r"}))

	_, err = state.Open(root, id, former)
	require.ErrorIs(t, err, state.ErrLocked, "the former state is in use")
	require.NoError(t, old.Close())

	st, err := state.Open(root, id, former)
	require.NoError(t, err)
	defer st.Close()
	days, err := st.Exported()
	require.NoError(t, err)
	require.Len(t, days, 1)
	oldKey, err := state.Key(former)
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(root, oldKey))
	require.ErrorIs(t, err, os.ErrNotExist)
}

// TestCheckSaysWhoHoldsTheState: Check tells a state in use by a running
// process (was: "writable" only, and the run that followed was refused),
// without taking the lock itself, and says nothing of a holder that has
// ended, whose lines stay in the lock file.
func TestCheckSaysWhoHoldsTheState(t *testing.T) {
	root := t.TempDir()
	id := map[string]string{"base_url": "x"}
	s, err := state.Open(root, id)
	require.NoError(t, err)
	s.Hold(state.ModeFollow, "")
	v, err := state.Check(root, id)
	require.NoError(t, err)
	require.Regexp(t, fmt.Sprintf(`^in use, held by pid %d on .+ \(follow\): a run on this state is refused until the follow loop is stopped$`, os.Getpid()), v.InUse())
	s.Hold("run", "")
	v, err = state.Check(root, id)
	require.NoError(t, err)
	require.Regexp(t, `\(run\): another run on it is refused until this one ends$`, v.InUse())

	s2, err := state.Open(root, id)
	require.ErrorIs(t, err, state.ErrLocked, "Check took no lock, and left the holder's")
	require.Nil(t, s2)
	require.NoError(t, s.Close())
	v, err = state.Check(root, id)
	require.NoError(t, err)
	require.Empty(t, v.InUse(), "the holder ended; its lines in the lock file are no use")
	s, err = state.Open(root, id)
	require.NoError(t, err, "Check left no lock behind")
	require.NoError(t, s.Close())
}

// TestExposedRoot: a state.dir every user may write into is named in a
// warning, /tmp's sticky 1777 too (a new entry there is anyone's to make
// before the first run) (was: used without a word); the owner's or a
// group's is not.
func TestExposedRoot(t *testing.T) {
	root := filepath.Join(t.TempDir(), "state")
	require.Empty(t, state.Exposed(root), "not there yet: Open makes it 0700")
	require.NoError(t, os.Mkdir(root, 0o700))
	for _, tc := range []struct {
		mode os.FileMode
		want string
	}{
		{0o700, ""},
		{0o770, ""},
		{0o777, "0777"},
		{0o777 | os.ModeSticky, "1777"},
	} {
		require.NoError(t, os.Chmod(root, tc.mode))
		got := state.Exposed(root)
		if tc.want == "" {
			require.Empty(t, got, "%v", tc.mode)
			continue
		}
		require.Equal(t, "state.dir: "+root+" is writable by every user of this machine (mode "+tc.want+"): whoever writes it may replace a configuration's state, the record of the days exported; chmod o-w "+root+", or give state.dir a directory of its own", got)
	}
}

// TestSpoolCleanTempInGlobDirectory: under a state.dir whose name a glob
// pattern treats specially ("/srv/state [prod]*?"), the partial window a
// killed run left is removed too (was: the pattern matched nothing, and
// it stayed for good).
func TestSpoolCleanTempInGlobDirectory(t *testing.T) {
	s, err := state.Open(filepath.Join(t.TempDir(), "state [prod]*?"), "k")
	require.NoError(t, err)
	defer s.Close()
	sp := s.Spool()
	_, err = sp.Open("2026-11-01", extract.Window{Start: 8000, End: 9000}) // never committed
	require.NoError(t, err)
	require.NoError(t, sp.CleanTemp())
	entries, err := os.ReadDir(filepath.Join(s.Dir(), "spool", "2026-11-01"))
	require.NoError(t, err)
	require.Empty(t, entries, "temporary files removed")
}
