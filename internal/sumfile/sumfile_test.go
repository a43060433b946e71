package sumfile_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/internal/failure"
	"github.com/pachca-export/pachca-export/internal/sumfile"
)

type payload struct {
	Days []string `json:"days"`
}

func TestRoundTripAndMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.json")
	var got payload
	ok, err := sumfile.Read(path, &got, "recover")
	require.NoError(t, err)
	require.False(t, ok, "a missing file is not an error")

	want := payload{Days: []string{"2026-11-01", "2026-11-02"}}
	require.NoError(t, sumfile.Write(path, want, 0o600))
	ok, err = sumfile.Read(path, &got, "recover")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, want, got)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
}

// TestDamaged: a file cut anywhere, a changed byte in the data, an
// envelope without its checksum, a file without the envelope that is not
// the value alone: each is a permanent error naming the file and the
// recovery, never an empty read.
func TestDamaged(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	require.NoError(t, sumfile.Write(good, payload{Days: []string{"2026-11-01", "2026-11-02", "2026-11-03"}}, 0o600))
	b, err := os.ReadFile(good)
	require.NoError(t, err)
	edited := []byte(string(b))
	i := len(edited) - 12 // inside the last date
	edited[i] = '9'
	for name, content := range map[string][]byte{
		"half":        b[:len(b)/2],
		"all but one": b[:len(b)-2],
		"edited":      edited,
		"empty":       {},
		"no checksum": []byte(`{"data":{"days":["2026-11-01"]}}`),
		"other keys":  []byte(`{"days":["2026-11-01"],"seq":3}`),
		"other value": []byte(`["2026-11-01"]`),
		"empty value": []byte(`{}`),
		"null":        []byte(`null`),
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name+".json")
			require.NoError(t, os.WriteFile(path, content, 0o600))
			var got payload
			ok, err := sumfile.Read(path, &got, "move it away to start over")
			require.Error(t, err)
			require.False(t, ok)
			require.True(t, failure.IsPermanent(err), "a damaged file is permanent: %v", err)
			require.ErrorContains(t, err, path)
			require.ErrorContains(t, err, "is damaged")
			require.ErrorContains(t, err, "move it away to start over")
		})
	}
}

// TestEarlierVersion: a file an earlier version wrote, the value alone with
// no envelope, is read as it is, and the next Write gives it its envelope
// (was: "damaged (no checksum: written by an older version or by hand)",
// so an upgrade stopped on every state file the old version wrote).
func TestEarlierVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "exported.json")
	require.NoError(t, os.WriteFile(path, []byte("{\n  \"days\": [\"2026-11-01\"]\n}\n"), 0o600))
	var got payload
	ok, err := sumfile.Read(path, &got, "recover")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, payload{Days: []string{"2026-11-01"}}, got)

	got.Days = append(got.Days, "2026-11-02")
	require.NoError(t, sumfile.Write(path, got, 0o600))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Contains(t, string(b), `"sha256":`)
	var again payload
	_, err = sumfile.Read(path, &again, "recover")
	require.NoError(t, err)
	require.Equal(t, got, again)
}
