package filesink_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/sinks"
)

// TestPlantedMarkerOrManifest: what someone put under the name of the
// marker or of a day's manifest before a run (a link to /dev/zero, a FIFO,
// a file larger than any manifest) fails the claim or the commit naming
// it, at once: it is neither read until memory runs out (was: a crash of
// the Go runtime, with its stack trace) nor waited on for ever.
func TestPlantedMarkerOrManifest(t *testing.T) {
	day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	plants := []struct {
		name  string
		plant func(t *testing.T, path string)
		want  string
	}{
		{"link to a device", func(t *testing.T, path string) { require.NoError(t, os.Symlink("/dev/zero", path)) }, "is a device"},
		{"fifo", func(t *testing.T, path string) { require.NoError(t, syscall.Mkfifo(path, 0o600)) }, "is a named pipe"},
		{"huge file", func(t *testing.T, path string) {
			require.NoError(t, os.WriteFile(path, nil, 0o600))
			require.NoError(t, os.Truncate(path, sinks.MaxSmallObject+1))
		}, "is larger than 8 MiB"},
	}
	for _, pl := range plants {
		t.Run("marker/"+pl.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			require.NoError(t, os.MkdirAll(dir, 0o750))
			marker := filepath.Join(dir, sinks.MarkerName)
			pl.plant(t, marker)
			_, err := newNDJSON(t, dir).Claim(t.Context(), sinks.Claim{Identity: nightly, Create: true})
			require.ErrorContains(t, err, marker+" "+pl.want)
		})
		t.Run("manifest/"+pl.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			s := newNDJSON(t, dir)
			_, err := s.Claim(t.Context(), sinks.Claim{Identity: nightly, Create: true})
			require.NoError(t, err)
			manifest := filepath.Join(dir, "dt=2026-11-20", sinks.ManifestName)
			require.NoError(t, os.MkdirAll(filepath.Dir(manifest), 0o750))
			pl.plant(t, manifest)
			p := sinks.NewPartition(day, day, day.AddDate(0, 0, 1), "run")
			require.ErrorContains(t, commitRelink(t, s, p, 3), manifest+" "+pl.want)
		})
	}
}
