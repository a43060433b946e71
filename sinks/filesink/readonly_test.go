package filesink_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/filesink"
	"github.com/pachca-export/pachca-export/sinks/ndjson"
)

// TestReadOnly: the store of a directory reads what a sink wrote there and
// refuses to write, leaving the directory as it was.
func TestReadOnly(t *testing.T) {
	dir := t.TempDir()
	f, err := ndjson.Format("gzip")
	require.NoError(t, err)
	day := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	p := sinks.NewPartition(day, day, day.Add(24*time.Hour), "run-1")
	w, err := filesink.New(dir, f).Open(t.Context(), p)
	require.NoError(t, err)
	_, err = w.Commit(t.Context())
	require.NoError(t, err)
	require.NoError(t, os.Mkdir(filepath.Join(dir, "dt=not-a-day"), 0o750))

	st := filesink.ReadOnly(dir)
	days, err := st.Days(t.Context(), "")
	require.NoError(t, err)
	require.Equal(t, []string{"dt=2026-11-01"}, days)
	manifest, version, err := st.Get(t.Context(), "dt=2026-11-01/"+sinks.ManifestName)
	require.NoError(t, err)
	rc, err := st.Open(t.Context(), "dt=2026-11-01/pachca-audit-2026-11-01.ndjson.gz")
	require.NoError(t, err)
	_, local := rc.(*os.File)
	require.True(t, local, "a local file, for sinks.LocalFile")
	require.NoError(t, rc.Close())
	_, err = st.Open(t.Context(), "dt=2026-11-02/x.ndjson")
	require.ErrorIs(t, err, fs.ErrNotExist)

	err = st.Put(t.Context(), "dt=2026-11-01/"+sinks.ManifestName, []byte("{}"), version)
	require.ErrorContains(t, err, "read-only")
	err = st.Put(t.Context(), sinks.MarkerName, []byte("{}"), sinks.NoVersion)
	require.ErrorContains(t, err, filepath.Join(dir, sinks.MarkerName)+": read-only")
	after, _, err := st.Get(t.Context(), "dt=2026-11-01/"+sinks.ManifestName)
	require.NoError(t, err)
	require.Equal(t, manifest, after)
	_, err = os.Stat(filepath.Join(dir, sinks.MarkerName))
	require.ErrorIs(t, err, fs.ErrNotExist)
}
