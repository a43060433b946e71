package filesink_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/filesink"
	"github.com/pachca-export/pachca-export/sinks/ndjson"
	"github.com/pachca-export/pachca-export/sinks/parquetfmt"
	"github.com/pachca-export/pachca-export/sinks/sinktest"
	"github.com/pachca-export/pachca-export/testkit/exporttest"
	"github.com/pachca-export/pachca-export/transform"
)

// recordsOfSize returns the fewest test records whose NDJSON is over n bytes.
func recordsOfSize(p sinks.Partition, n int) []transform.Record {
	all := sinktest.Records(p.Day, 1000)
	size := 0
	for i := range all {
		size += len(ndjson.AppendRecord(nil, &all[i])) + 1
		if size > n {
			return all[:i+1]
		}
	}
	panic("need more records")
}

// TestFullDisk: on a tmpfs of two pages, a commit either delivers the file
// and its manifest, or fails naming what did not fit and leaves nothing
// under a final name: not when the data overflows, nor when only the
// manifest does not fit.
func TestFullDisk(t *testing.T) {
	f, err := ndjson.Format("none")
	require.NoError(t, err)
	p := sinktest.Partition()
	cases := []struct {
		name  string
		bytes int    // NDJSON bytes written
		want  string // "" = delivered; else the error names this file (relative to the day dir)
	}{
		{name: "both fit", bytes: 3000},
		{name: "no room for the manifest", bytes: 5000, want: sinks.ManifestName},
		{name: "no room for the data", bytes: 20000, want: p.BaseName() + f.Ext},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			exporttest.MountTmpfs(t, dir, "size=8k")
			s := filesink.New(dir, f)
			w, err := s.Open(t.Context(), p)
			require.NoError(t, err)
			recs := recordsOfSize(p, tc.bytes)
			err = w.Write(t.Context(), recs)
			if err == nil {
				_, err = w.Commit(t.Context())
			} else {
				require.NoError(t, w.Abort(context.Background()))
			}
			dayDir := filepath.Join(dir, p.Dir())
			entries, rerr := os.ReadDir(dayDir)
			require.NoError(t, rerr)
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			if tc.want == "" {
				require.NoError(t, err)
				require.ElementsMatch(t, []string{p.BaseName() + f.Ext, sinks.ManifestName}, names)
				return
			}
			require.ErrorContains(t, err, filepath.Join(dayDir, tc.want))
			require.ErrorContains(t, err, "no space left on device")
			require.NotContains(t, err.Error(), ".tmp-")
			require.Empty(t, names, "nothing left, final or temporary")
		})
	}
}

// TestFullDiskAtOpen: a Parquet file writes its magic bytes when it is
// opened, so on a disk with no room left its partition fails to open; the
// error names the file by its final name, as a failed write does, never
// the hidden temporary one (which differs at each try of a follow loop),
// and nothing is left behind.
func TestFullDiskAtOpen(t *testing.T) {
	f, err := parquetfmt.Format("zstd")
	require.NoError(t, err)
	p := sinktest.Partition()
	dir := t.TempDir()
	exporttest.MountTmpfs(t, dir, "size=8k")
	s := filesink.New(dir, f)
	dayDir := filepath.Join(dir, p.Dir())
	require.NoError(t, os.MkdirAll(dayDir, 0o750))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "filler"), make([]byte, 8192), 0o600))

	_, err = s.Open(t.Context(), p)
	require.ErrorContains(t, err, "write "+filepath.Join(dayDir, p.BaseName()+f.Ext)+": no space left on device")
	require.NotContains(t, err.Error(), ".tmp-")
	entries, err := os.ReadDir(dayDir)
	require.NoError(t, err)
	require.Empty(t, entries, "nothing left, final or temporary")
}

// TestDayDirRemovedBeforeCommit: a day directory removed while its file
// is written (by hand, a cleaner) fails the commit naming the file by its
// final name and the cause, never the hidden temporary one (was: "write
// FINAL: rename .FINAL.tmp-123 FINAL: ..."), and leaves nothing there.
func TestDayDirRemovedBeforeCommit(t *testing.T) {
	f, err := ndjson.Format("none")
	require.NoError(t, err)
	p := sinktest.Partition()
	dir := t.TempDir()
	s := filesink.New(dir, f)
	w, err := s.Open(t.Context(), p)
	require.NoError(t, err)
	require.NoError(t, w.Write(t.Context(), sinktest.Records(p.Day, 10)))
	dayDir := filepath.Join(dir, p.Dir())
	require.NoError(t, os.RemoveAll(dayDir))

	_, err = w.Commit(t.Context())
	require.EqualError(t, err, "ndjson: write "+filepath.Join(dayDir, p.BaseName()+f.Ext)+": no such file or directory")
	entries, err := os.ReadDir(dayDir)
	if err == nil {
		require.Empty(t, entries, "nothing left, final or temporary")
	}
}
