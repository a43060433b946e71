package filesink

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/internal/failure"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/ndjson"
	"github.com/pachca-export/pachca-export/sinks/sinktest"
)

// deliverDay writes n records of p and commits them.
func deliverDay(t *testing.T, s *Sink, p sinks.Partition, n int) error {
	t.Helper()
	w, err := s.Open(t.Context(), p)
	require.NoError(t, err)
	require.NoError(t, w.Write(t.Context(), sinktest.Records(p.From, n)))
	_, err = w.Commit(t.Context())
	return err
}

// TestManifestRefused: a commit whose manifest cannot take its place (a
// write-once directory that refuses to replace it; an immutable file)
// leaves the day as it was: the day file the old manifest lists stays
// (was: a day exported again unchanged, whose file was kept as it was,
// had it removed, so the day the state records as exported was lost),
// and a file that no manifest lists and cannot be removed is named in the
// error (was: it stayed unsaid).
func TestManifestRefused(t *testing.T) {
	f, err := ndjson.Format("none")
	require.NoError(t, err)
	dir := t.TempDir()
	s := New(dir, f)
	p := sinktest.Partition()
	require.NoError(t, deliverDay(t, s, p, 10))
	dayFile := filepath.Join(dir, "dt=2026-11-01", "pachca-audit-2026-11-01.ndjson")
	manifest := filepath.Join(dir, "dt=2026-11-01", sinks.ManifestName)
	before, err := os.ReadFile(manifest)
	require.NoError(t, err)

	// Write-once: what exists is neither replaced nor removed.
	s.refuse = func(op, path string) error {
		if _, err := os.Lstat(path); err == nil {
			return syscall.EPERM
		}
		return nil
	}
	err = deliverDay(t, s, p, 10) // the same day again, unchanged: the file is kept
	require.EqualError(t, err, "ndjson: manifest "+manifest+": operation not permitted")
	require.FileExists(t, dayFile, "the day file the manifest lists stays")
	after, err := os.ReadFile(manifest)
	require.NoError(t, err)
	require.Equal(t, before, after)

	// A follow cycle's file, under a new name, then the manifest refused:
	// the file cannot be taken back out.
	part := sinks.NewPartition(p.Day, p.Day.Add(time.Hour), p.Day.Add(2*time.Hour), "run-2")
	part.Part = true
	s.refuse = func(op, path string) error {
		if _, err := os.Lstat(path); err == nil || op == "remove" {
			return syscall.EPERM
		}
		return nil
	}
	err = deliverDay(t, s, part, 5)
	cycle := filepath.Join(dir, "dt=2026-11-01", "pachca-audit-20261101T010000.000Z-20261101T020000.000Z.ndjson")
	require.EqualError(t, err, "ndjson: manifest "+manifest+": operation not permitted; "+cycle+" stays, listed by no manifest: "+
		"it could not be removed (a write-once directory? the file sink needs one where it may replace and remove its files)")
	require.FileExists(t, cycle)

	// Where removing works, the cycle's file goes (as before).
	require.NoError(t, os.Remove(cycle))
	s.refuse = func(op, path string) error {
		if path == manifest {
			return syscall.EPERM
		}
		return nil
	}
	require.Error(t, deliverDay(t, s, part, 5))
	require.NoFileExists(t, cycle)
	require.FileExists(t, dayFile)
}

// TestCompactCycleFilesStay: a follow's seal on a directory where the
// cycle files, written hours before, can no longer be removed (a
// write-once file system that commits files after an autocommit period)
// puts the day file in place, then fails, permanently, naming the staging
// directory that holds the cycle files and what to do (was: the seal
// succeeded, the staging directory with a second copy of the day stayed
// beside it, unsaid, and every later start failed on it).
func TestCompactCycleFilesStay(t *testing.T) {
	f, err := ndjson.Format("none")
	require.NoError(t, err)
	dir := t.TempDir()
	s := New(dir, f)
	day := sinktest.Partition().Day
	for i := range 2 {
		p := sinks.NewPartition(day, day.Add(time.Duration(i)*time.Hour), day.Add(time.Duration(i+1)*time.Hour), "run-c")
		p.Part = true
		require.NoError(t, deliverDay(t, s, p, 5))
	}
	s.refuse = func(op, path string) error {
		if op == "remove" && strings.HasPrefix(filepath.Base(path), "pachca-audit-20261101T") {
			return syscall.EPERM
		}
		return nil
	}
	p := sinks.NewPartition(day, day, day.Add(24*time.Hour), "run-seal")
	p.Compact = true
	err = deliverDay(t, s, p, 10)
	require.True(t, failure.IsPermanent(err), "permanent: %v", err)
	var stage string
	for _, n := range dirNames(t, dir) {
		if strings.Contains(n, stageMark) {
			stage = n
		}
	}
	require.NotEmpty(t, stage)
	require.EqualError(t, err, "ndjson: dt=2026-11-01 is compacted, but its earlier files, moved to "+filepath.Join(dir, stage)+
		", could not be removed: unlinkat "+filepath.Join(dir, stage, "pachca-audit-20261101T000000.000Z-20261101T010000.000Z.ndjson")+
		": operation not permitted (a write-once directory? the file sink needs one where it may remove its files; "+
		"for follow set follow.keep_cycle_files: true, and move "+stage+" out of "+dir+")")
	require.Equal(t, []string{"_manifest.json", "pachca-audit-2026-11-01.ndjson"}, dirNames(t, filepath.Join(dir, "dt=2026-11-01")))
}
