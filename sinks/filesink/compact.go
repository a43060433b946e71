package filesink

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/pachca-export/pachca-export/internal/atomicfile"
	"github.com/pachca-export/pachca-export/internal/failure"
	"github.com/pachca-export/pachca-export/sinks"
)

// swapDay commits a Compact partition of the daily layout: the day
// directory becomes one that holds only the new day file (final, its name)
// and mf, its manifest, both finished under
// temporary names. They are moved into a hidden staging directory next to
// the day's, which is then exchanged with it in one atomic rename
// (renameat2 RENAME_EXCHANGE): a reader listing dt=YYYY-MM-DD sees either
// the follow cycles' files or the day file, never both and never neither.
// The old directory, now under the staging name, is removed after. Where
// the file system cannot exchange (not Linux, or EINVAL), the files are
// renamed in and the other files of the day removed one by one: a reader
// may then see both for that long.
func (w *writer) swapDay(mf *atomicfile.File, final string) error {
	dayDir := filepath.Join(w.s.dir, w.p.Dir())
	stage, err := atomicfile.MkdirTemp(w.s.dir, "."+w.p.Dir()+stageMark, w.s.dirMode)
	if err != nil {
		return err
	}
	exchanged := false
	defer func() {
		if !exchanged {
			os.RemoveAll(stage) // the new day's files, never published
		}
	}()
	if err := w.files[0].Rename(filepath.Join(stage, final)); err != nil {
		return err
	}
	if err := mf.Rename(filepath.Join(stage, sinks.ManifestName)); err != nil {
		return err
	}
	if err := atomicfile.SyncDir(stage); err != nil {
		return err
	}
	err = unix.EINVAL
	if !w.s.noExchange {
		err = exchange(stage, dayDir)
	}
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		return replaceDay(stage, dayDir, final)
	}
	if err != nil {
		return fmt.Errorf("exchange %s: %w", dayDir, err)
	}
	exchanged = true
	// The old day, now under the staging name: a reader's glob of
	// everything would read its files beside the day's, and the next
	// start refuses to run beside it, so it may not stay unsaid.
	if err := w.s.removeAll(stage); err != nil {
		return failure.AsPermanent(fmt.Errorf("%s is compacted, but its earlier files, moved to %s, could not be removed: %w "+
			"(a write-once directory? the file sink needs one where it may remove its files; for follow set follow.keep_cycle_files: true, and move %s out of %s)",
			w.p.Dir(), stage, err, filepath.Base(stage), w.s.dir))
	}
	return atomicfile.SyncDir(w.s.dir)
}

// stageMark names the staging directories of swapDay: .dt=YYYY-MM-DD.compact-N.
const stageMark = ".compact-"

// removeStaleStages removes the staging directories a process killed in
// swapDay left at the root: before the exchange they hold the day file
// that was to come (the seal runs again), after it the old files of the
// day. A reader's glob (DuckDB's * takes names with a leading dot) would
// read either beside the day. Called under the root's lock: no swapDay is
// under way.
func (s *Sink) removeStaleStages() error {
	stages, err := filepath.Glob(filepath.Join(atomicfile.GlobEscape(s.dir), ".*"+stageMark+"*"))
	if err != nil {
		return err
	}
	for _, stage := range stages {
		if fi, err := os.Lstat(stage); err == nil && fi.IsDir() {
			if err := os.RemoveAll(stage); err != nil {
				return fmt.Errorf("remove %s, left by a compaction that did not finish: %w (a write-once directory? move it out of %s)", stage, err, s.dir)
			}
		}
	}
	return nil
}

// replaceDay is swapDay without an atomic exchange: the new files go into
// the day directory, then every other entry of it goes.
func replaceDay(stage, dayDir, final string) error {
	keep := []string{final, sinks.ManifestName}
	for _, name := range keep {
		if err := os.Rename(filepath.Join(stage, name), filepath.Join(dayDir, name)); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir(dayDir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !slices.Contains(keep, e.Name()) && !e.IsDir() {
			if err := os.Remove(filepath.Join(dayDir, e.Name())); err != nil {
				return err
			}
		}
	}
	return atomicfile.SyncDir(dayDir)
}
