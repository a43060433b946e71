// Package state keeps what a run must remember: the UTC days exported to
// every sink, and the spool of windows fetched but not yet delivered, which is
// the checkpoint a killed run resumes from. Each state lives in its own
// directory, keyed by what defines the data, and is locked while a run uses it.
//
// A View reads a state without creating or locking it (a dry run); a Store
// is a View that holds the lock and may write.
//
// format.json records the newest layout that wrote to the state (Format):
// a state a newer version wrote is refused, not misread.
//
// Every file proves itself: exported.json, the progress of a range,
// key.json and follow.json carry their sha256 (internal/sumfile), spool files a trailer
// with their length and sha256. A damaged state file stops the run with a
// permanent error naming it and how to recover; a damaged spool file is
// removed and its window fetched again.
package state

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/pachca-export/pachca-export/internal/atomicfile"
	"github.com/pachca-export/pachca-export/internal/failure"
	"github.com/pachca-export/pachca-export/internal/sumfile"
)

// ErrLocked means another process (a run, a follow loop, a repair) holds
// the state.
var ErrLocked = errors.New("another pachca-export process is using this state")

// FollowingError is the ErrLocked of a state a follow loop holds: the
// refused command may add what it can do instead.
type FollowingError struct{ msg string }

func (e *FollowingError) Error() string        { return e.msg }
func (e *FollowingError) Is(target error) bool { return target == ErrLocked }

// Key returns a short stable hash of v (JSON-encoded), naming a state
// directory or a record inside one.
func Key(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("state: key of %T: %w", v, err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8]), nil
}

// Day records one UTC day exported to every sink. Records is what the
// day's files hold (a sealed followed day: every event of it, not only
// those new at the seal); `verify` compares the manifests with it.
type Day struct {
	Day        string    `json:"day"`
	ExportedAt time.Time `json:"exported_at"`
	RunID      string    `json:"run_id"`
	Records    int64     `json:"records"`
}

const (
	exportedFile = "exported.json"
	formatFile   = "format.json"
	keyFile      = "key.json"
	lockFile     = "lock"
	spoolDir     = "spool"
	fileMode     = 0o600
)

// Format numbers the layout of a state directory. A version that writes a
// state file an earlier version would misread (a new line format, a new
// meaning) raises it; a version that finds a higher number in format.json
// refuses the state rather than misread it. Versions before format.json
// (format 0) neither write nor read it: they cannot be stopped from
// misreading a newer state (README, "Upgrading").
const Format = 1

// formatStamp is format.json: the highest Format that wrote to the state.
type formatStamp struct {
	Format int `json:"format"`
}

// ErrNewerFormat means a newer version wrote to the state, in a format this
// one may misread.
var ErrNewerFormat = errors.New("written by a newer version of pachca-export")

// View reads one state directory. It creates nothing and takes no lock; a
// state that does not exist reads as empty.
type View struct {
	dir    string
	heldBy string // Check's finding, see InUse
}

// InUse says who holds the state's lock, as Check found it without taking
// the lock ("in use, held by pid 4242 on host since ... (follow): ..."), or
// "" when no process did or where the system cannot tell (Linux can).
func (v *View) InUse() string { return v.heldBy }

// Peek returns the view of the state of identity id under root, for reading
// only (a dry run). Without a state of id, it is the state of the first of
// former that exists: the one Open would take over.
func Peek(root string, id any, former ...any) (*View, error) {
	dir, _, err := stateDir(root, id, former)
	if err != nil {
		return nil, err
	}
	v := &View{dir: dir}
	if _, err := v.readFormat(); err != nil {
		return nil, err
	}
	return v, nil
}

// readFormat reads format.json (0 when there is none) and refuses a state
// a newer format wrote.
func (v *View) readFormat() (int, error) {
	var f formatStamp
	ok, err := sumfile.Read(filepath.Join(v.dir, formatFile), &f, "move it away if no newer version of pachca-export used this state")
	if err != nil {
		return 0, fmt.Errorf("state: %w", err)
	}
	if ok && f.Format > Format {
		return 0, failure.AsPermanent(fmt.Errorf("state: %s was %w (state format %d; this version reads formats up to %d): run that version or a newer one, or restore a copy of the state taken before it ran", v.dir, ErrNewerFormat, f.Format, Format))
	}
	return f.Format, nil
}

// writeFormat records Format in format.json unless it is there already.
func (s *Store) writeFormat() error {
	had, err := s.readFormat()
	if err != nil || had == Format {
		return err
	}
	if err := sumfile.Write(filepath.Join(s.dir, formatFile), formatStamp{Format}, fileMode); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

// Dir is the state directory.
func (v *View) Dir() string { return v.dir }

// Check proves the state of identity id under root usable, without locking
// it (a run may hold it): root, created if need be, and the state's
// directory and its spool if they exist take a file, the state files that
// exist read whole (key.json and the follow id logs included), and the
// lock, if it exists, opens as Open opens it. It returns the view, for what the caller wants to
// show of it.
func Check(root string, id any, former ...any) (*View, error) {
	v, err := Peek(root, id, former...)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	for _, dir := range []string{root, v.dir, filepath.Join(v.dir, spoolDir)} {
		err := atomicfile.Probe(dir)
		if errors.Is(err, fs.ErrNotExist) && dir != root {
			break // no run used this state yet
		}
		if err != nil {
			return nil, fmt.Errorf("state: directory %s is not writable: %w", dir, err)
		}
	}
	// Without a lock: a run may hold it; opening it proves it a file.
	if f, err := openInPlace(filepath.Join(v.dir, lockFile), os.O_RDWR); err == nil {
		if held, _ := flocked(f); held {
			who, mode, _, stopped := holder(f)
			v.heldBy = "in use" + who
			if stopped != 0 {
				v.heldBy += fmt.Sprintf(", stopped (it goes on with kill -CONT %d)", stopped)
			}
			if mode == ModeFollow {
				v.heldBy += ": a run on this state is refused until the follow loop is stopped"
			} else {
				v.heldBy += ": another run on it is refused until this one ends"
			}
		}
		f.Close()
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("state: %w", err)
	}
	if err := v.readKey(); err != nil {
		return nil, err
	}
	if _, err := v.Exported(); err != nil {
		return nil, err
	}
	if _, _, err := v.Follow(); err != nil {
		return nil, err
	}
	if _, _, err := v.Owner(); err != nil {
		return nil, err
	}
	if _, _, err := v.PendingRelink(); err != nil {
		return nil, err // the next run reads it first
	}
	// The follow loop reads every id log at its start.
	days, err := v.DeliveredDays()
	if err != nil {
		return nil, err
	}
	for _, day := range days {
		if err := v.Delivered(day, math.MaxInt64, func(DeliveredID) {}); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// Exposed says, when the directory root (state.dir) exists and every user
// of the machine may write into it, what that lets them do: a warning for
// the log, "" otherwise. The state of each configuration below it is 0700,
// but whoever writes root may rename it away, or make one in its place
// before its first run, and so choose which days count as exported.
func Exposed(root string) string {
	fi, err := os.Stat(root)
	if err != nil || !fi.IsDir() || fi.Mode().Perm()&0o002 == 0 {
		return ""
	}
	mode := fi.Mode().Perm()
	if fi.Mode()&fs.ModeSticky != 0 {
		mode |= 0o1000 // /tmp's 1777: others' entries stay, but a new one is anyone's
	}
	return fmt.Sprintf("state.dir: %s is writable by every user of this machine (mode %04o): whoever writes it may replace a configuration's state, the record of the days exported; chmod o-w %s, or give state.dir a directory of its own",
		root, mode, root)
}

// Store is one state directory, locked for the life of the Store. Its
// methods are not safe for concurrent use unless documented otherwise.
type Store struct {
	View
	lock  *os.File
	since time.Time // when it was opened
}

// Open creates (0700) and locks the state of identity id under root: the
// directory is named by Key(id), and id is written to key.json so that a
// person can tell what it holds. A second Open of the same state, from this
// or another process, fails at once with ErrLocked.
// former are identities that named this state in earlier versions: without
// a state of id, the first of them that exists is locked and renamed to
// id's, so that an upgrade that adds to the key keeps the exported days and
// the follow position.
func Open(root string, id any, former ...any) (*Store, error) {
	key, err := Key(id)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(root, key)
	from, moved, err := stateDir(root, id, former)
	if err != nil {
		return nil, err
	}
	if !moved {
		if err := os.MkdirAll(filepath.Join(dir, spoolDir), 0o700); err != nil {
			return nil, fmt.Errorf("state: %w", err)
		}
	}
	f, err := lock(from)
	if moved && errors.Is(err, fs.ErrNotExist) {
		return Open(root, id) // another run took it over first
	}
	if err != nil {
		return nil, err
	}
	if moved {
		// Under the former state's lock: a concurrent run of it is refused
		// (ErrLocked); a later one finds it gone and opens id's.
		if err := os.Rename(from, dir); err != nil {
			f.Close()
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrExist) || errors.Is(err, syscall.ENOTEMPTY) {
				return Open(root, id) // another run took it over (or started id's) first
			}
			return nil, fmt.Errorf("state: take over %s: %w", from, err)
		}
		if err := os.MkdirAll(filepath.Join(dir, spoolDir), 0o700); err != nil {
			f.Close()
			return nil, fmt.Errorf("state: %w", err)
		}
	}
	s := &Store{View: View{dir: dir}, lock: f, since: time.Now()}
	s.Hold("", "")
	if err := s.removeStaleTemp(); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.writeFormat(); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.writeKey(id); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// openInPlace opens a state file that is written in place (the lock, the
// follow id logs) without following a symbolic link there: one planted by
// whoever else can write the directory would have the write truncate, or
// append to, a file elsewhere (mode fileMode when it creates one).
func openInPlace(path string, flag int) (*os.File, error) {
	f, err := os.OpenFile(path, flag|syscall.O_NOFOLLOW, fileMode)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("%s is a symbolic link, not a file of the state: remove it, and keep state.dir writable by its owner only", path)
	}
	return f, err
}

// stateDir is the directory of the state of id under root, or, when it does
// not exist, of the first of former that does (moved is then true).
func stateDir(root string, id any, former []any) (dir string, moved bool, err error) {
	key, err := Key(id)
	if err != nil {
		return "", false, err
	}
	dir = filepath.Join(root, key)
	if _, err := os.Stat(dir); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return dir, false, nil
	}
	for _, old := range former {
		k, err := Key(old)
		if err != nil {
			return "", false, err
		}
		if k == key {
			continue
		}
		if _, err := os.Stat(filepath.Join(root, k, keyFile)); err == nil {
			return filepath.Join(root, k), true, nil
		}
	}
	return dir, false, nil
}

// lock opens and locks the lock file of the state directory dir, or fails
// at once with ErrLocked naming its holder.
func lock(dir string) (*os.File, error) {
	f, err := openInPlace(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			who, mode, config, stopped := holder(f)
			other := ""
			if config != "" {
				// Two workspaces' configurations that differ only in their
				// tokens key one state: stopping the holder is then no cure.
				who += " with " + config
				other = "; if that is another workspace's configuration, give this one a source.workspace of its own (the token is no part of the state's key)"
			}
			if stopped != 0 {
				// Waiting for it to finish would be waiting for ever.
				return nil, fmt.Errorf("%w (%s%s): it is stopped (SIGSTOP, Ctrl-Z, a debugger) and holds the state until it goes on (kill -CONT %d) or ends (kill %d)%s",
					ErrLocked, dir, who, stopped, stopped, other)
			}
			if mode == ModeFollow {
				return nil, &FollowingError{msg: fmt.Sprintf("%v (%s%s): a follow loop runs until it is stopped: stop it first (it goes on where it stopped when started again)%s", ErrLocked, dir, who, other)}
			}
			return nil, fmt.Errorf("%w (%s%s); wait for it to finish or stop it%s", ErrLocked, dir, who, other)
		}
		return nil, fmt.Errorf("state: lock %s: %w", dir, err)
	}
	return f, nil
}

// ModeFollow is the mode a follow loop holds its state in (Store.Hold).
const ModeFollow = "follow"

// Hold says in the lock file who holds the state, for the message of a
// process refused meanwhile: this process, since the state was opened,
// mode, what it does ("run", ModeFollow, ...; "" for unsaid), and config,
// the configuration file it runs ("" for unsaid; on a second line). Nothing
// relies on it.
func (s *Store) Hold(mode, config string) {
	if err := s.lock.Truncate(0); err != nil {
		return
	}
	host, _ := os.Hostname()
	line := fmt.Sprintf("pid %d on %s since %s", os.Getpid(), host, s.since.UTC().Format(time.RFC3339))
	if mode != "" {
		line += " (" + mode + ")"
	}
	line += "\n"
	if config != "" && !strings.ContainsAny(config, "\n\r") {
		line += holderConfig + config + "\n"
	}
	s.lock.WriteAt([]byte(line), 0)
}

// holderConfig starts the lock file's line naming the holder's
// configuration file.
const holderConfig = "config "

// holder is ", held by pid N on HOST since T (MODE)" as the lock file f
// says, the mode and the configuration file, or "" when it says nothing
// readable (the holder has not written it yet, or a version before the
// configuration file); stopped is the holder's pid when it runs on this
// host and is stopped (see procStopped), else 0.
func holder(f *os.File) (who, mode, config string, stopped int) {
	b := make([]byte, 8<<10)
	n, _ := f.ReadAt(b, 0)
	var pid int
	var host, since string
	line, rest, _ := strings.Cut(string(b[:n]), "\n")
	if _, err := fmt.Sscanf(line, "pid %d on %s since %s", &pid, &host, &since); err != nil {
		return "", "", "", 0
	}
	if c, ok := strings.CutPrefix(rest, holderConfig); ok {
		if c, ok = strings.CutSuffix(c, "\n"); ok && utf8.ValidString(c) {
			config = c
		}
	}
	who = fmt.Sprintf(", held by pid %d on %s since %s", pid, host, since)
	if _, m, ok := strings.Cut(line, " ("); ok && strings.HasSuffix(m, ")") {
		mode = strings.TrimSuffix(m, ")")
		who += " (" + mode + ")"
	}
	if me, _ := os.Hostname(); host == me && procStopped(pid) {
		stopped = pid
	}
	return who, mode, config, stopped
}

// removeStaleTemp removes the temporary files of state files that a process
// killed while writing one left in the directory (under the lock: no one
// else writes them).
func (s *Store) removeStaleTemp() error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	for _, e := range entries {
		if !e.IsDir() && atomicfile.IsTemp(e.Name()) {
			if err := os.Remove(filepath.Join(s.dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("state: %w", err)
			}
		}
	}
	return nil
}

// readKey reads key.json whole, if it exists: a damaged one stops the run
// like any damaged state file.
func (v *View) readKey() error {
	var old json.RawMessage
	if _, err := sumfile.Read(filepath.Join(v.dir, keyFile), &old, "move it away: it is written again from the configuration"); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

// writeKey checks key.json and writes it again from id.
func (s *Store) writeKey(id any) error {
	if err := s.readKey(); err != nil {
		return err
	}
	if err := sumfile.Write(filepath.Join(s.dir, keyFile), id, fileMode); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

// Held fails when the state's directory is no longer the one this Store
// locked: removed (rm -rf by hand, a temporary-files cleaner) or replaced
// under the running process. Writing on would recreate a partial state,
// without the lock (so that another process could take it meanwhile) and
// without the record of the exported days (so that a follow loop would
// export every day since its start again). The error is permanent.
func (s *Store) Held() error {
	held, err := s.lock.Stat()
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	path := filepath.Join(s.dir, lockFile)
	now, err := os.Lstat(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("state: %w", err)
	}
	if err == nil && os.SameFile(held, now) {
		return nil
	}
	return failure.Permanentf("state: %s was removed or replaced while this process used it (its lock file %s is gone): stopping before writing there; "+
		"put the directory back from a backup and start again, or start again to begin a new state", s.dir, path)
}

// Close releases the lock; safe to call twice.
func (s *Store) Close() error {
	if s.lock == nil {
		return nil
	}
	err := s.lock.Close()
	s.lock = nil
	return err
}

// exportedRecovery tells what to do with a damaged exported.json.
const exportedRecovery = "restore it from a backup, or move it away and export the days again with " +
	"--from/--to (pachca-export verify lists the days the sinks hold; files are never replaced by fewer events)"

// exportedDays is the content of exported.json.
type exportedDays struct {
	Days []Day `json:"days"`
}

// Exported returns the days exported to every sink, by day (YYYY-MM-DD). A
// damaged record is a permanent error naming the file, never an empty one.
func (v *View) Exported() (map[string]Day, error) {
	var f exportedDays
	path := filepath.Join(v.dir, exportedFile)
	if _, err := sumfile.Read(path, &f, exportedRecovery); err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	out := make(map[string]Day, len(f.Days))
	for _, d := range f.Days {
		// A day that is no date, or of fewer than no records, was never
		// written (was: read as exported, and the day itself never).
		if t, err := time.Parse(time.DateOnly, d.Day); err != nil || t.Format(time.DateOnly) != d.Day || d.Records < 0 {
			return nil, failure.Permanentf("state: %s is damaged (day %q of %d records): %s", path, d.Day, d.Records, exportedRecovery)
		}
		out[d.Day] = d
	}
	return out, nil
}

// MarkExported records d, durably, before returning; it fails, permanently,
// when the state's directory was removed or replaced (Held).
func (s *Store) MarkExported(d Day) error {
	if err := s.Held(); err != nil {
		return err
	}
	days, err := s.Exported()
	if err != nil {
		return err
	}
	days[d.Day] = d
	list := make([]Day, 0, len(days))
	for _, v := range days {
		list = append(list, v)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Day < list[j].Day })
	if err := sumfile.Write(filepath.Join(s.dir, exportedFile), exportedDays{list}, fileMode); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

// RunProgress returns the days an interrupted run of the same range
// already delivered; key names the range. A finished run clears it.
func (v *View) RunProgress(key string) (map[string]bool, error) {
	var days []string
	_, err := sumfile.Read(v.progressPath(key), &days,
		"move it away: the interrupted run then delivers every day of its range again")
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	out := map[string]bool{}
	for _, d := range days {
		out[d] = true
	}
	return out, nil
}

// AddRunProgress records, durably, that the run of range key delivered day.
func (s *Store) AddRunProgress(key, day string) error {
	done, err := s.RunProgress(key)
	if err != nil {
		return err
	}
	done[day] = true
	days := make([]string, 0, len(done))
	for d := range done {
		days = append(days, d)
	}
	sort.Strings(days)
	if err := sumfile.Write(s.progressPath(key), days, fileMode); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

// ClearRunProgress forgets the progress of range key, once its run finished.
func (s *Store) ClearRunProgress(key string) error {
	err := os.Remove(s.progressPath(key))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

func (v *View) progressPath(key string) string {
	return filepath.Join(v.dir, "run-"+key+".json")
}

// Sibling is another state under the same state.dir: the identity its
// key.json records and the days it records exported, first and last.
type Sibling struct {
	Dir         string
	Identity    json.RawMessage
	Days        map[string]Day
	First, Last string // YYYY-MM-DD
}

// Identities returns the identities the states under root record (their
// key.json), for a caller to find the state of its identity spelt
// otherwise by an earlier version. A state that cannot be read is left out.
func Identities(root string) []json.RawMessage {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil
	}
	var out []json.RawMessage
	for _, e := range entries {
		var id json.RawMessage
		if ok, err := sumfile.Read(filepath.Join(root, e.Name(), keyFile), &id, ""); e.IsDir() && ok && err == nil {
			out = append(out, id)
		}
	}
	return out
}

// Siblings lists the states beside v's under their common root that
// record an exported day. It reads, never writes; a state that cannot be
// read is left out (its own run reports it).
func (v *View) Siblings() []Sibling {
	var out []Sibling
	v.eachSibling(func(sib *View, id json.RawMessage) {
		days, err := sib.Exported()
		if err != nil || len(days) == 0 {
			return
		}
		s := Sibling{Dir: sib.dir, Identity: id, Days: days}
		for d := range days {
			if s.First == "" || d < s.First {
				s.First = d
			}
			s.Last = max(s.Last, d)
		}
		out = append(out, s)
	})
	return out
}

// eachSibling calls fn with each state beside v's under their common root
// whose identity (key.json) reads, and that identity.
func (v *View) eachSibling(fn func(sib *View, id json.RawMessage)) {
	root := filepath.Dir(v.dir)
	entries, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range entries {
		dir := filepath.Join(root, e.Name())
		if !e.IsDir() || dir == v.dir {
			continue
		}
		var id json.RawMessage
		if ok, err := sumfile.Read(filepath.Join(dir, keyFile), &id, ""); ok && err == nil {
			fn(&View{dir: dir}, id)
		}
	}
}
