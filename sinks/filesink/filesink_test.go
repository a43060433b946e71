package filesink_test

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/filesink"
	"github.com/pachca-export/pachca-export/sinks/ndjson"
	"github.com/pachca-export/pachca-export/sinks/parquetfmt"
	"github.com/pachca-export/pachca-export/sinks/sinktest"
)

func readNDJSON(t *testing.T, path string) []string {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var ids []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m struct{ ID string }
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m))
		ids = append(ids, m.ID)
	}
	return ids
}

func readParquet(t *testing.T, path string) []string {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	rdr, err := file.NewParquetReader(f)
	require.NoError(t, err)
	defer rdr.Close()
	fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	require.NoError(t, err)
	tbl, err := fr.ReadTable(t.Context())
	require.NoError(t, err)
	defer tbl.Release()
	var ids []string
	for _, chunk := range tbl.Column(0).Data().Chunks() {
		s := chunk.(*array.String)
		for i := range s.Len() {
			ids = append(ids, s.Value(i))
		}
	}
	return ids
}

// harness returns the conformance harness of a file sink; it also checks
// that no temporary file is left and that the manifest lists the file.
func harness(f sinks.Format, read func(*testing.T, string) []string) sinktest.Harness {
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
			ids := read(t, path)
			require.EqualValues(t, len(ids), m.Files[0].Records)
			if ids == nil {
				ids = []string{}
			}
			return ids
		},
	}
}

func TestConformanceNDJSON(t *testing.T) {
	f, err := ndjson.Format("none")
	require.NoError(t, err)
	sinktest.Run(t, harness(f, readNDJSON))
}

func TestConformanceParquet(t *testing.T) {
	f, err := parquetfmt.Format("zstd")
	require.NoError(t, err)
	sinktest.Run(t, harness(f, readParquet))
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
