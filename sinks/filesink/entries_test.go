package filesink_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/sinks/filesink"
)

// TestEntriesWhileFilesAreRenamed: a day directory read while a writer
// renames its temporary files into place (a follow cycle beside a verify
// or a report) lists what is there (was: a file gone between the reading
// of the directory and its size failed the listing with "no such file",
// which verify took for a day with no files: every file "missing").
func TestEntriesWhileFilesAreRenamed(t *testing.T) {
	root := t.TempDir()
	day := filepath.Join(root, "dt=2026-12-02")
	require.NoError(t, os.Mkdir(day, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(day, "kept.ndjson"), []byte("{}\n"), 0o600))
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; !stop.Load(); i++ {
			tmp := filepath.Join(day, fmt.Sprintf(".f%d.ndjson.tmp-1", i))
			if os.WriteFile(tmp, nil, 0o600) != nil || os.Rename(tmp, filepath.Join(day, "f.ndjson")) != nil {
				return
			}
		}
	})
	defer func() { stop.Store(true); wg.Wait() }()
	st := filesink.ReadOnly(root)
	for range 5000 {
		entries, err := st.Entries(t.Context(), "dt=2026-12-02")
		require.NoError(t, err)
		require.NotEmpty(t, entries)
		objects, err := st.List(t.Context(), "dt=2026-12-02")
		require.NoError(t, err)
		require.NotEmpty(t, objects)
	}
}
