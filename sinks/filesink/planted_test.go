package filesink_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/sinks"
	"github.com/pachca-export/pachca-export/sinks/filesink"
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

// TestPlantedLinks: a symbolic link below the sink's directory is refused,
// naming it, rather than followed: one planted as a day directory took the
// day's files elsewhere, and one inside a day directory, named by a forged
// manifest entry, had the whole day's commit remove a file outside the
// directory (was: both followed). The directory itself may be a link.
func TestPlantedLinks(t *testing.T) {
	day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	whole := sinks.NewPartition(day, day, day.AddDate(0, 0, 1), "run")
	claim := func(t *testing.T, dir string) *filesink.Sink {
		s := newNDJSON(t, dir)
		_, err := s.Claim(t.Context(), sinks.Claim{Identity: nightly, Create: true})
		require.NoError(t, err)
		return s
	}

	t.Run("day directory", func(t *testing.T) {
		dir, elsewhere := filepath.Join(t.TempDir(), "out"), t.TempDir()
		s := claim(t, dir)
		link := filepath.Join(dir, "dt=2026-11-20")
		require.NoError(t, os.Symlink(elsewhere, link))
		w, err := s.Open(t.Context(), whole)
		if err == nil {
			_ = w.Abort(t.Context())
		}
		require.ErrorContains(t, err, link+" is a symbolic link")
		require.Empty(t, files(t, elsewhere))
	})

	t.Run("forged manifest entry", func(t *testing.T) {
		dir, elsewhere := filepath.Join(t.TempDir(), "out"), t.TempDir()
		s := claim(t, dir)
		victim := filepath.Join(elsewhere, "dt=2026-11-20", "precious")
		require.NoError(t, os.MkdirAll(filepath.Dir(victim), 0o700))
		require.NoError(t, os.WriteFile(victim, []byte("keep me"), 0o600))
		dayDir := filepath.Join(dir, "dt=2026-11-20")
		require.NoError(t, os.MkdirAll(dayDir, 0o750))
		require.NoError(t, os.Symlink(elsewhere, filepath.Join(dayDir, "dt=2026-11-20")))
		m := sinks.Manifest{Day: "2026-11-20", Files: []sinks.ManifestFile{{
			Name: "dt=2026-11-20/dt=2026-11-20/precious", From: whole.From, To: whole.To}}}
		require.NoError(t, os.WriteFile(filepath.Join(dayDir, sinks.ManifestName), m.Encode(), 0o600))
		require.ErrorContains(t, commitRelink(t, s, whole, 3), filepath.Join(dayDir, "dt=2026-11-20")+" is a symbolic link")
		b, err := os.ReadFile(victim)
		require.NoError(t, err)
		require.Equal(t, "keep me", string(b))
	})

	t.Run("the directory itself", func(t *testing.T) {
		real := t.TempDir()
		dir := filepath.Join(t.TempDir(), "out")
		require.NoError(t, os.Symlink(real, dir))
		require.NoError(t, commitRelink(t, claim(t, dir), whole, 3))
		require.FileExists(t, filepath.Join(real, "dt=2026-11-20", "pachca-audit-2026-11-20.ndjson.gz"))
	})
}
