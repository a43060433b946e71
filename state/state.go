// Package state keeps what a run must remember: the UTC days exported to
// every sink, and the spool of windows fetched but not yet delivered, which is
// the checkpoint a killed run resumes from. Each state lives in its own
// directory, keyed by what defines the data, and is locked while a run uses it.
package state

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"
)

// ErrLocked means another run holds the state.
var ErrLocked = errors.New("another pachca-export run is using this state")

// Key returns a short stable hash of v (JSON-encoded), naming a state directory.
func Key(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("state: key of %T: %v", v, err)) // only plain structs are passed
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// Store is one state directory, locked for the life of the Store.
type Store struct {
	dir  string
	lock *os.File
}

// Day records one UTC day exported to every sink.
type Day struct {
	Day        string    `json:"day"`
	ExportedAt time.Time `json:"exported_at"`
	RunID      string    `json:"run_id"`
	Records    int64     `json:"records"`
}

const exportedFile = "exported.json"

// Open creates (0700) and locks root/key. describe is written to key.json so
// that a person can tell what the directory holds. A second Open of the same
// directory, from this or another process, fails at once with ErrLocked.
func Open(root, key string, describe any) (*Store, error) {
	dir := filepath.Join(root, key)
	if err := os.MkdirAll(filepath.Join(dir, "spool"), 0o700); err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (%s); wait for it to finish or stop it", ErrLocked, dir)
		}
		return nil, fmt.Errorf("state: lock %s: %w", dir, err)
	}
	s := &Store{dir: dir, lock: f}
	if describe != nil {
		b, err := json.MarshalIndent(describe, "", "  ")
		if err == nil {
			err = WriteFileAtomic(filepath.Join(dir, "key.json"), append(b, '\n'))
		}
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("state: %w", err)
		}
	}
	return s, nil
}

// Peek returns the state root/key for reading only (Exported, RunProgress):
// it creates nothing and takes no lock, for a dry run. A state that does not
// exist reads as empty.
func Peek(root, key string) *Store { return &Store{dir: filepath.Join(root, key)} }

// Dir is the state directory.
func (s *Store) Dir() string { return s.dir }

// Close releases the lock; safe to call twice.
func (s *Store) Close() error {
	if s.lock == nil {
		return nil
	}
	err := s.lock.Close()
	s.lock = nil
	return err
}

// Exported returns the days exported to every sink, by day (YYYY-MM-DD).
func (s *Store) Exported() (map[string]Day, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, exportedFile))
	if errors.Is(err, os.ErrNotExist) {
		return map[string]Day{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	var f struct {
		Days []Day `json:"days"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("state: %s is damaged: %w", filepath.Join(s.dir, exportedFile), err)
	}
	out := make(map[string]Day, len(f.Days))
	for _, d := range f.Days {
		out[d.Day] = d
	}
	return out, nil
}

// MarkExported records d, durably, before returning.
func (s *Store) MarkExported(d Day) error {
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
	b, err := json.MarshalIndent(struct {
		Days []Day `json:"days"`
	}{list}, "", "  ")
	if err != nil {
		return err
	}
	if err := WriteFileAtomic(filepath.Join(s.dir, exportedFile), append(b, '\n')); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

// WriteFileAtomic writes data to path through a temporary file in the same
// directory, fsyncs it, renames it into place and fsyncs the directory, so
// that path holds either the old or the new content after a crash. Mode 0600.
func WriteFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename this fails harmlessly
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return SyncDir(dir)
}

// SyncDir fsyncs a directory, making renames in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}

// RunProgress returns the days an interrupted run of the same range
// already delivered; key names the range. A finished run clears it.
func (s *Store) RunProgress(key string) (map[string]bool, error) {
	b, err := os.ReadFile(s.progressPath(key))
	if errors.Is(err, os.ErrNotExist) {
		return map[string]bool{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	var days []string
	if err := json.Unmarshal(b, &days); err != nil {
		return nil, fmt.Errorf("state: %s is damaged: %w", s.progressPath(key), err)
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
	b, err := json.Marshal(days)
	if err != nil {
		return err
	}
	return WriteFileAtomic(s.progressPath(key), b)
}

// ClearRunProgress forgets the progress of range key, once its run finished.
func (s *Store) ClearRunProgress(key string) error {
	err := os.Remove(s.progressPath(key))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

func (s *Store) progressPath(key string) string {
	return filepath.Join(s.dir, "run-"+key+".json")
}
