package atomicfile_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/internal/atomicfile"
	"github.com/pachca-export/pachca-export/testkit/exporttest"
)

// TestWriteFileFullDisk: on a full disk WriteFile fails naming the file by
// its final name, the one the user knows (the state's key.json, a metrics
// file), never the hidden temporary one, which differs at each try; the old
// content stays and nothing else is left.
func TestWriteFileFullDisk(t *testing.T) {
	dir := t.TempDir()
	exporttest.MountTmpfs(t, dir, "size=8k")
	path := filepath.Join(dir, "key.json")
	require.NoError(t, atomicfile.WriteFile(path, []byte("old"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "filler"), make([]byte, 4096), 0o600))

	err := atomicfile.WriteFile(path, make([]byte, 8192), 0o600)
	require.EqualError(t, err, "write "+path+": no space left on device")
	b, rerr := os.ReadFile(path)
	require.NoError(t, rerr)
	require.Equal(t, "old", string(b))
	es, rerr := os.ReadDir(dir)
	require.NoError(t, rerr)
	require.Len(t, es, 2, "key.json and the filler, no temporary file")
}

// TestWriteFileOverADirectory: a directory where the file belongs fails
// the rename; the error names the file, not the temporary one, and the
// temporary file is gone.
func TestWriteFileOverADirectory(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "follow.json")
	require.NoError(t, os.MkdirAll(filepath.Join(path, "x"), 0o700))

	err := atomicfile.WriteFile(path, []byte("{}"), 0o600)
	require.ErrorContains(t, err, "rename "+path+": ")
	require.NotContains(t, err.Error(), ".tmp-")
	es, rerr := os.ReadDir(dir)
	require.NoError(t, rerr)
	require.Len(t, es, 1, "the directory alone, no temporary file")
}
