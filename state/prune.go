package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/pachca-export/pachca-export/internal/atomicfile"
	"github.com/pachca-export/pachca-export/internal/sumfile"
)

// Pruned counts what Prune removed.
type Pruned struct {
	ProgressDays  int // days taken out of the progress of a range
	ProgressFiles int // progress files removed, none of their days left
	SpoolDays     int // spool directories of days past the retention
	IDLogs        int // follow id logs of days exported or past the retention
}

// Any says whether Prune removed anything.
func (p Pruned) Any() bool { return p != Pruned{} }

// pastRetention says whether the UTC day date (YYYY-MM-DD) ends at or
// before oldest, the API's retention edge: such a day is never fetched,
// delivered nor sealed again (a run skips it, a follow loop too).
func pastRetention(date string, oldest time.Time) bool {
	t, err := time.Parse(time.DateOnly, date)
	return err == nil && !t.Add(24*time.Hour).After(oldest)
}

// Prune removes from the state what no run, follow loop or verify can use
// any more (README, "What the state holds"), given oldest, the API's
// retention edge (now - period.retention):
//
//   - of the progress of each range (run-<key>.json, left by a run that was
//     interrupted and maybe never repeated), the days wholly before oldest,
//     which a rerun of the range skips anyway; a file left without a day is
//     removed;
//   - the spool of days recorded as exported (a crash between recording a
//     day and removing its spool leaves it; not counted in Pruned) and of
//     days wholly before oldest, which no run delivers;
//   - the follow id logs of days wholly before oldest (never sealed) and
//     of days recorded as exported (sealed, or exported by a run).
//
// A progress file that does not read is left alone: the rerun of its
// range reports it. The day on the retention edge, partly held, keeps all
// it has.
func (s *Store) Prune(oldest time.Time) (Pruned, error) {
	var p Pruned
	if err := s.Held(); err != nil {
		return p, err
	}
	progress, err := filepath.Glob(filepath.Join(atomicfile.GlobEscape(s.dir), "run-*.json"))
	if err != nil {
		return p, fmt.Errorf("state: %w", err)
	}
	for _, path := range progress {
		var days []string
		if ok, err := sumfile.Read(path, &days, ""); !ok || err != nil {
			continue
		}
		keep := slices.DeleteFunc(slices.Clone(days), func(d string) bool { return pastRetention(d, oldest) })
		switch {
		case len(keep) == len(days):
			continue
		case len(keep) == 0:
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return p, fmt.Errorf("state: %w", err)
			}
			p.ProgressFiles++
		default:
			if err := sumfile.Write(path, keep, fileMode); err != nil {
				return p, fmt.Errorf("state: %w", err)
			}
		}
		p.ProgressDays += len(days) - len(keep)
	}
	exported, err := s.Exported()
	if err != nil {
		return p, err
	}
	// The days spooled, not every day exported: a state of years holds
	// thousands of those.
	sp := s.Spool()
	if days, err := sp.Days(); err == nil {
		for _, d := range days {
			_, done := exported[d]
			if !done && !pastRetention(d, oldest) {
				continue
			}
			if err := sp.RemoveDay(d); err != nil {
				return p, fmt.Errorf("spool: %w", err)
			}
			if !done {
				p.SpoolDays++
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return p, err
	}
	logs, err := s.DeliveredDays()
	if err != nil {
		return p, err
	}
	for _, d := range logs {
		if _, done := exported[d]; done || pastRetention(d, oldest) {
			if err := s.RemoveDelivered(d); err != nil {
				return p, err
			}
			p.IDLogs++
		}
	}
	return p, nil
}

// String is what Prune removed, for the log.
func (p Pruned) String() string {
	var parts []string
	add := func(n int, what string) {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, what))
		}
	}
	add(p.ProgressDays, "day(s) of the progress of interrupted ranges")
	add(p.ProgressFiles, "progress file(s) left empty")
	add(p.SpoolDays, "spooled day(s)")
	add(p.IDLogs, "follow id log(s)")
	return strings.Join(parts, ", ")
}

// relinkFile records the block of consecutive days a run is delivering:
// until the run relinks the manifests after them, a day it rewrote may be
// followed in a sink by a day still linked to the manifest it replaced.
const relinkFile = "relink.json"

// Relink is a block of days, [First, Last] (YYYY-MM-DD), whose later days
// may not be linked to them yet.
type Relink struct {
	First string `json:"first"`
	Last  string `json:"last"`
}

// PendingRelink returns the block a run was delivering when it stopped
// before relinking the days after it (killed); ok false when none.
func (v *View) PendingRelink() (r Relink, ok bool, err error) {
	ok, err = sumfile.Read(filepath.Join(v.dir, relinkFile), &r,
		"move it away, then run `pachca-export verify`: a chain broken after those days is named there, and a rerun of the days before it links it again")
	if err != nil {
		return Relink{}, false, fmt.Errorf("state: %w", err)
	}
	return r, ok, nil
}

// SetRelink records, durably, that the days of r are being delivered.
func (s *Store) SetRelink(r Relink) error {
	if err := s.Held(); err != nil {
		return err
	}
	if err := sumfile.Write(filepath.Join(s.dir, relinkFile), r, fileMode); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

// ClearRelink forgets the block, once the days after it are relinked.
func (s *Store) ClearRelink() error {
	if err := os.Remove(filepath.Join(s.dir, relinkFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}
