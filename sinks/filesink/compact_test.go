package filesink

import (
	"encoding/json"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/internal/atomicfile"
	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/ndjson"
	"github.com/pachca-export/pachca-export/sinks/sinktest"
)

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// TestCompact: the parts a follow loop wrote of a day are replaced by the
// day file in one step, and the manifest lists the day file alone.
func TestCompact(t *testing.T) {
	for _, exchange := range []bool{true, false} {
		t.Run(map[bool]string{true: "exchange", false: "fallback"}[exchange], func(t *testing.T) {
			dir := t.TempDir()
			f, err := ndjson.Format("none")
			require.NoError(t, err)
			s := New(dir, f)
			day := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
			recs := sinktest.Records(day, 30)
			for i, span := range [][2]int{{0, 10}, {10, 20}} {
				p := sinks.NewPartition(day, day.Add(time.Duration(i)*time.Hour), day.Add(time.Duration(i+1)*time.Hour), "run-c")
				p.Part = true
				w, err := s.Open(t.Context(), p)
				require.NoError(t, err)
				require.NoError(t, w.Write(t.Context(), recs[span[0]:span[1]]))
				_, err = w.Commit(t.Context())
				require.NoError(t, err)
			}
			dayDir := filepath.Join(dir, "dt=2026-11-01")
			require.Len(t, dirNames(t, dayDir), 3, "two parts and the manifest")

			p := sinks.NewPartition(day, day, day.Add(24*time.Hour), "run-seal")
			p.Compact = true
			w, err := s.Open(t.Context(), p)
			require.NoError(t, err)
			require.NoError(t, w.Write(t.Context(), recs))
			inode := func() uint64 {
				fi, err := os.Stat(dayDir)
				require.NoError(t, err)
				return fi.Sys().(*syscall.Stat_t).Ino
			}
			before := inode()
			s.noExchange = !exchange
			_, err = w.Commit(t.Context())
			require.NoError(t, err)
			require.Equal(t, exchange, inode() != before, "the day directory was exchanged whole")
			require.Equal(t, []string{"_manifest.json", "pachca-audit-2026-11-01.ndjson"}, dirNames(t, dayDir))
			require.Equal(t, []string{"dt=2026-11-01"}, dirNames(t, dir), "no staging directory left")
			var m sinks.Manifest
			b, err := os.ReadFile(filepath.Join(dayDir, sinks.ManifestName))
			require.NoError(t, err)
			require.NoError(t, json.Unmarshal(b, &m))
			require.Len(t, m.Files, 1)
			require.Equal(t, "pachca-audit-2026-11-01.ndjson", m.Files[0].Name)
			require.EqualValues(t, 30, m.Records)
			body, err := os.ReadFile(filepath.Join(dayDir, "pachca-audit-2026-11-01.ndjson"))
			require.NoError(t, err)
			require.Len(t, sinktest.IDs(t, "x.ndjson", body), 30)
		})
	}
}

// TestStaleStageRemoved: a process killed while compacting a day leaves a
// hidden staging directory at the root, which DuckDB's * would read beside
// the day; the next claim to write removes it, and only such directories,
// and the probe file of a check killed at work; in a directory whose name
// a glob pattern treats specially too (was: matched nothing, left there).
func TestStaleStageRemoved(t *testing.T) {
	for _, name := range []string{"out", "logs [prod]*?"} {
		t.Run(name, func(t *testing.T) { staleStageRemoved(t, filepath.Join(t.TempDir(), name)) })
	}
}

func staleStageRemoved(t *testing.T, dir string) {
	f, err := ndjson.Format("none")
	require.NoError(t, err)
	stage := filepath.Join(dir, ".dt=2026-11-01"+stageMark+"12345")
	require.NoError(t, os.MkdirAll(stage, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(stage, "pachca-audit-2026-11-01.ndjson"), []byte("{}\n"), 0o600))
	other := filepath.Join(dir, ".not-a-stage")
	require.NoError(t, os.MkdirAll(other, 0o700))
	// What a check killed between creating its probe and removing it
	// leaves (was: there for good).
	probe := filepath.Join(dir, atomicfile.ProbePrefix+"2356340674")
	require.NoError(t, os.WriteFile(probe, nil, 0o600))

	s := New(dir, f)
	_, err = s.Claim(t.Context(), sinks.Claim{})
	require.NoError(t, err)
	require.DirExists(t, stage, "a claim that writes nothing (check, verify) touches nothing")
	require.FileExists(t, probe)
	_, err = s.Claim(t.Context(), sinks.Claim{Create: true})
	require.NoError(t, err)
	require.NoDirExists(t, stage)
	require.NoFileExists(t, probe)
	require.DirExists(t, other)
}
