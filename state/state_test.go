package state_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/extract"
	"github.com/pachca-export/pachca-export/state"
)

func TestLock(t *testing.T) {
	root := t.TempDir()
	id := map[string]string{"base_url": "x"}
	a, err := state.Open(root, id)
	require.NoError(t, err)
	_, err = state.Open(root, id)
	require.ErrorIs(t, err, state.ErrLocked)
	require.ErrorContains(t, err, "another pachca-export run is using this state")
	other, err := state.Open(root, map[string]string{"base_url": "y"})
	require.NoError(t, err, "another identity is another state")
	require.NoError(t, other.Close())
	require.NoError(t, a.Close())
	require.NoError(t, a.Close())
	b, err := state.Open(root, id)
	require.NoError(t, err, "free after close")
	require.NoError(t, b.Close())
	key, err := state.Key(id)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(root, key), b.Dir())
	info, err := os.Stat(filepath.Join(root, key))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), info.Mode().Perm())
}

func TestExportedDays(t *testing.T) {
	s, err := state.Open(t.TempDir(), "k")
	require.NoError(t, err)
	defer s.Close()
	days, err := s.Exported()
	require.NoError(t, err)
	require.Empty(t, days)
	at := time.Date(2026, 11, 2, 3, 0, 0, 0, time.UTC)
	require.NoError(t, s.MarkExported(state.Day{Day: "2026-11-01", ExportedAt: at, RunID: "r", Records: 5}))
	require.NoError(t, s.MarkExported(state.Day{Day: "2026-10-31", ExportedAt: at, RunID: "r", Records: 7}))
	days, err = s.Exported()
	require.NoError(t, err)
	require.Len(t, days, 2)
	require.EqualValues(t, 7, days["2026-10-31"].Records)
	require.NoError(t, os.WriteFile(filepath.Join(s.Dir(), "exported.json"), []byte("{garbage"), 0o600))
	_, err = s.Exported()
	require.ErrorContains(t, err, "is damaged")
}

func TestSpoolCheckpoint(t *testing.T) {
	s, err := state.Open(t.TempDir(), "k")
	require.NoError(t, err)
	defer s.Close()
	sp := s.Spool()
	w := extract.Window{Stream: "user_login", Start: 1000, End: 5000}
	ww, err := sp.Open("2026-11-01", w)
	require.NoError(t, err)
	require.NoError(t, ww.Add(extract.Event{ID: "a", Raw: []byte("{\"id\":\"a\",\n \"x\": 1}")}))
	require.NoError(t, ww.Add(extract.Event{ID: "b", Raw: []byte(`{"id":"b"}`)}))
	// Not visible before commit.
	ws, err := sp.Windows("2026-11-01")
	require.NoError(t, err)
	require.Empty(t, ws)
	require.NoError(t, ww.Commit(extract.Window{Stream: "user_login", Start: 2000, End: 5000}))
	ws, err = sp.Windows("2026-11-01")
	require.NoError(t, err)
	require.Equal(t, []extract.Window{{Stream: "user_login", Start: 2000, End: 5000}}, ws)
	var lines []string
	require.NoError(t, sp.Read("2026-11-01", ws[0], func(raw []byte) error { lines = append(lines, string(raw)); return nil }))
	require.Equal(t, []string{`{"id":"a","x":1}`, `{"id":"b"}`}, lines, "one event per line")

	// An aborted window leaves nothing; a killed one's temp file is cleaned.
	ab, err := sp.Open("2026-11-01", extract.Window{Start: 6000, End: 7000})
	require.NoError(t, err)
	require.NoError(t, ab.Add(extract.Event{Raw: []byte(`{}`)}))
	ab.Abort()
	_, err = sp.Open("2026-11-01", extract.Window{Start: 8000, End: 9000}) // never committed
	require.NoError(t, err)
	require.NoError(t, sp.CleanTemp())
	ws, err = sp.Windows("2026-11-01")
	require.NoError(t, err)
	require.Len(t, ws, 1)
	entries, err := os.ReadDir(filepath.Join(s.Dir(), "spool", "2026-11-01"))
	require.NoError(t, err)
	require.Len(t, entries, 1, "temporary files removed")
	require.NoError(t, sp.Remove("2026-11-01", ws))
	_, err = os.Stat(filepath.Join(s.Dir(), "spool", "2026-11-01"))
	require.True(t, os.IsNotExist(err))
}

func TestKeyStable(t *testing.T) {
	type id struct{ A, B string }
	key := func(v any) string {
		k, err := state.Key(v)
		require.NoError(t, err)
		return k
	}
	require.Equal(t, key(id{"x", "y"}), key(id{"x", "y"}))
	require.NotEqual(t, key(id{"x", "y"}), key(id{"x", "z"}))
	require.Len(t, key(id{}), 16)
	// The key of a configuration must not change between versions: it
	// names the state directory that records the exported days.
	require.Equal(t, "4d7a24fcc4c9ff89", key(id{"x", "y"}))
	_, err := state.Key(func() {})
	require.Error(t, err, "a value JSON cannot encode is an error, not a panic")
}
