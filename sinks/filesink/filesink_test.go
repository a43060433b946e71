package filesink_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/internal/failure"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/filesink"
	"github.com/pachca-export/pachca-export/sinks/ndjson"
	"github.com/pachca-export/pachca-export/sinks/parquetfmt"
	"github.com/pachca-export/pachca-export/sinks/sinktest"
)

// harness returns the conformance harness of a file sink; it also checks
// that no temporary file is left and that the manifest lists the file.
func harness(f sinks.Format) sinktest.Harness {
	dirs := map[sinks.Sink]string{}
	return sinktest.Harness{
		Replaces: true,
		New: func(t *testing.T) sinks.Sink {
			dir := t.TempDir()
			s := filesink.New(dir, f)
			dirs[s] = dir
			return s
		},
		Read: func(t *testing.T, s sinks.Sink, p sinks.Partition) []string {
			dayDir := filepath.Join(dirs[s], p.Dir())
			entries, _ := os.ReadDir(dayDir)
			for _, e := range entries {
				require.NotContains(t, e.Name(), ".tmp-", "temporary file left behind")
			}
			path := filepath.Join(dayDir, p.BaseName()+f.Ext)
			if _, err := os.Stat(path); os.IsNotExist(err) {
				return nil
			}
			info, err := os.Stat(path)
			require.NoError(t, err)
			require.Zero(t, info.Mode().Perm()&0o007, "not world-readable")
			var m sinks.Manifest
			b, err := os.ReadFile(filepath.Join(dayDir, sinks.ManifestName))
			require.NoError(t, err)
			require.NoError(t, json.Unmarshal(b, &m))
			require.Len(t, m.Files, 1)
			require.Equal(t, p.BaseName()+f.Ext, m.Files[0].Name)
			require.Equal(t, info.Size(), m.Files[0].Bytes)
			body, err := os.ReadFile(path)
			require.NoError(t, err)
			ids := sinktest.IDs(t, path, body)
			require.EqualValues(t, len(ids), m.Files[0].Records)
			return ids
		},
	}
}

func TestConformanceNDJSON(t *testing.T) {
	f, err := ndjson.Format("none")
	require.NoError(t, err)
	sinktest.Run(t, harness(f))
}

func TestConformanceParquet(t *testing.T) {
	f, err := parquetfmt.Format("zstd")
	require.NoError(t, err)
	sinktest.Run(t, harness(f))
}

// TestUnwritableDirectory: a directory that cannot be created fails Check
// and Open with a clear error.
func TestUnwritableDirectory(t *testing.T) {
	parent := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(parent, nil, 0o600))
	f, err := ndjson.Format("gzip")
	require.NoError(t, err)
	s := filesink.New(filepath.Join(parent, "out"), f)
	require.ErrorContains(t, s.Check(t.Context()), "not a directory")
	_, err = s.Open(t.Context(), sinktest.Partition())
	require.ErrorContains(t, err, "ndjson: mkdir")
}

// TestDirIsAFile: a dir that is a file fails Check and Claim naming it
// and what it is (was: "open DIR/_pachca-export.json: not a directory",
// a path below a file), and nothing is written.
func TestDirIsAFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	require.NoError(t, os.WriteFile(dir, []byte("x"), 0o600))
	f, err := ndjson.Format("none")
	require.NoError(t, err)
	s := filesink.New(dir, f)
	want := "ndjson: " + dir + " is a file, not a directory: give the sink a directory (dir), or move the file away"
	require.EqualError(t, s.Check(t.Context()), want)
	require.True(t, failure.IsUsage(s.Check(t.Context())), "a mistake in the configuration: exit 2")
	_, err = s.Claim(t.Context(), sinks.Claim{Create: true})
	require.EqualError(t, err, want)
	_, err = s.Claim(t.Context(), sinks.Claim{})
	require.EqualError(t, err, want)
	b, err := os.ReadFile(dir)
	require.NoError(t, err)
	require.Equal(t, "x", string(b))
}

// TestModes: configured modes apply exactly, whatever the umask, to the day
// directory, the data file and the manifest; a directory created under a
// set-group-ID directory keeps the bit, so files stay in the group a log
// forwarder reads with.
func TestModes(t *testing.T) {
	old := syscall.Umask(0o077) // the strictest umask a hardened unit sets
	defer syscall.Umask(old)
	root := t.TempDir()
	require.NoError(t, os.Chmod(root, 0o750|os.ModeSetgid))
	f, err := ndjson.Format("none")
	require.NoError(t, err)
	dir := filepath.Join(root, "out", "ndjson")
	s := filesink.New(dir, f, filesink.WithModes(0o640, 0o750))
	require.NoError(t, s.Check(t.Context()))
	p := sinktest.Partition()
	w, err := s.Open(t.Context(), p)
	require.NoError(t, err)
	require.NoError(t, w.Write(t.Context(), sinktest.Records(p.Day, 3)))
	_, err = w.Commit(t.Context())
	require.NoError(t, err)

	mode := func(path string) os.FileMode {
		fi, err := os.Stat(path)
		require.NoError(t, err)
		return fi.Mode() & (os.ModePerm | os.ModeSetgid)
	}
	require.Equal(t, 0o750|os.ModeSetgid, mode(filepath.Join(root, "out")), "created parent")
	require.Equal(t, 0o750|os.ModeSetgid, mode(dir))
	require.Equal(t, 0o750|os.ModeSetgid, mode(filepath.Join(dir, p.Dir())))
	require.Equal(t, os.FileMode(0o640), mode(filepath.Join(dir, p.Dir(), p.BaseName()+f.Ext)))
	require.Equal(t, os.FileMode(0o640), mode(filepath.Join(dir, p.Dir(), sinks.ManifestName)))

	// The defaults: owner-only files.
	s = filesink.New(filepath.Join(t.TempDir(), "d"), f)
	w, err = s.Open(t.Context(), p)
	require.NoError(t, err)
	require.NoError(t, w.Write(t.Context(), sinktest.Records(p.Day, 1)))
	res, err := w.Commit(t.Context())
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), mode(res.Files[0]))
	require.Equal(t, os.FileMode(0o750), mode(filepath.Dir(res.Files[0])))
}

// TestStaleTemporaryFiles: a killed run's temporary file of a partition is
// gone once the partition is written again, so no glob finds it.
func TestStaleTemporaryFiles(t *testing.T) {
	dir := t.TempDir()
	f, err := ndjson.Format("gzip")
	require.NoError(t, err)
	s := filesink.New(dir, f)
	p := sinktest.Partition()
	dayDir := filepath.Join(dir, p.Dir())
	require.NoError(t, os.MkdirAll(dayDir, 0o750))
	stale := filepath.Join(dayDir, "."+p.BaseName()+f.Ext+".tmp-123456")
	require.NoError(t, os.WriteFile(stale, []byte("half a file"), 0o600))
	w, err := s.Open(t.Context(), p)
	require.NoError(t, err)
	require.NoError(t, w.Write(t.Context(), sinktest.Records(p.Day, 3)))
	_, err = w.Commit(t.Context())
	require.NoError(t, err)
	_, err = os.Stat(stale)
	require.True(t, os.IsNotExist(err), "the killed run's temporary file is gone")
}

// TestSameFileKept: a partition written again with the same bytes (a follow
// cycle redone after a kill, or after another sink failed) keeps the file
// under its name, the same inode; other bytes or another mode replace it
// (was: an equal file renamed over it, a new inode, which Filebeat and
// Fluent Bit read again from its start: every event of it twice).
func TestSameFileKept(t *testing.T) {
	dir := t.TempDir()
	f, err := ndjson.Format("none")
	require.NoError(t, err)
	p := sinktest.Partition()
	path := filepath.Join(dir, p.Dir(), p.BaseName()+f.Ext)
	write := func(s *filesink.Sink, runID string, n int) os.FileInfo {
		t.Helper()
		p := sinks.NewPartition(p.Day, p.From, p.To, runID)
		w, err := s.Open(t.Context(), p)
		require.NoError(t, err)
		require.NoError(t, w.Write(t.Context(), sinktest.Records(p.Day, n)))
		_, err = w.Commit(t.Context())
		require.NoError(t, err)
		entries, err := os.ReadDir(filepath.Dir(path))
		require.NoError(t, err)
		for _, e := range entries {
			require.NotContains(t, e.Name(), ".tmp-", "temporary file left behind")
		}
		fi, err := os.Stat(path)
		require.NoError(t, err)
		return fi
	}
	s := filesink.New(dir, f)
	first := write(s, "run-1", 3)
	require.True(t, os.SameFile(first, write(s, "run-2", 3)), "the same bytes: the file kept")
	b, err := os.ReadFile(filepath.Join(dir, p.Dir(), sinks.ManifestName))
	require.NoError(t, err)
	m, err := sinks.DecodeManifest(b)
	require.NoError(t, err)
	require.Len(t, m.Files, 1)
	require.Equal(t, "run-2", m.Files[0].RunID, "the manifest written anew")
	require.EqualValues(t, first.Size(), m.Files[0].Bytes)

	more := write(s, "run-3", 4)
	require.False(t, os.SameFile(first, more), "other bytes: replaced")
	require.Greater(t, more.Size(), first.Size())
	moded := write(filesink.New(dir, f, filesink.WithModes(0o640, 0o750)), "run-4", 4)
	require.False(t, os.SameFile(more, moded), "another mode: replaced")
	require.Equal(t, os.FileMode(0o640), moded.Mode().Perm())
}
