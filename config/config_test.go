package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/config"
)

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

// TestBadConfigs: every testdata/bad-*.yaml fails with exactly the lines of
// its .err file, each naming the file, the key and (for decoding errors) the line.
func TestBadConfigs(t *testing.T) {
	files, err := filepath.Glob("testdata/bad-*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			want, err := os.ReadFile(strings.TrimSuffix(path, ".yaml") + ".err")
			require.NoError(t, err)
			_, err = config.Parse(mustRead(t, path), filepath.Base(path), env(nil))
			require.Error(t, err)
			got := strings.Split(err.Error(), "\n")
			for _, line := range strings.Split(strings.TrimSpace(string(want)), "\n") {
				require.Contains(t, got, line, "all errors:\n%s", err)
			}
		})
	}
}

func mustRead(t *testing.T, path string) []byte {
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

func TestGoodConfig(t *testing.T) {
	cfg, err := config.Load("testdata/good-full.yaml", env(map[string]string{"PACHCA_TOKEN": "tok-123"}))
	require.NoError(t, err)
	require.Equal(t, "tok-123", cfg.Source.Token)
	require.Equal(t, []string{"user_login", "user_2fa_fail"}, cfg.Source.Filters.EventKeys)
	require.Equal(t, 25.0, cfg.Source.RequestsPerSecond)
	require.Equal(t, 10*time.Second, cfg.Source.Timeout)
	require.Equal(t, 5*time.Minute, cfg.Period.Lag)
	require.Len(t, cfg.Sinks, 5)
	require.Equal(t, "zstd", cfg.Sinks[0].File.Compression)
	require.Equal(t, "ndjson", cfg.Sinks[2].S3.Format)
	require.Equal(t, "gzip", cfg.Sinks[2].S3.Compression)
	require.True(t, cfg.Sinks[2].S3.ForcePathStyle)
	require.Equal(t, 10*time.Millisecond, cfg.Sinks[3].Kafka.BatchTimeout)
	require.NotNil(t, cfg.Sinks[4].Stdout)
	require.Len(t, cfg.Alerts.Rules, 2)
	require.Equal(t, []string{"10001", "10002"}, cfg.Alerts.Rules[0].Recipients)
	require.Equal(t, 10*time.Minute, cfg.Alerts.Rules[0].Window)
}

// TestShippedPipeline: the example in the repository root is valid as shipped.
func TestShippedPipeline(t *testing.T) {
	cfg, err := config.Load("../pipeline.yaml", env(map[string]string{"PACHCA_TOKEN": "x"}))
	require.NoError(t, err)
	require.Equal(t, 50.0, cfg.Source.RequestsPerSecond)
	require.Equal(t, 8, cfg.Source.Concurrency)
	require.Equal(t, "yesterday", cfg.Period.Default)
	require.Len(t, cfg.Sinks, 2)
}

func TestDefaultsAndTokenFile(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(tok, []byte("from-file\n"), 0o600))
	path := filepath.Join(dir, "p.yaml")
	require.NoError(t, os.WriteFile(path, []byte("source:\n  token_file: "+tok+"\n  requests_per_second: ${RPS:-20}\nsinks:\n  - type: stdout\n"), 0o600))
	cfg, err := config.Load(path, env(nil))
	require.NoError(t, err)
	require.Equal(t, "from-file", cfg.Source.Token)
	require.Equal(t, 20.0, cfg.Source.RequestsPerSecond, "default of ${VAR:-default}, resolved as a number")
	require.Equal(t, config.Default().Source.BaseURL, cfg.Source.BaseURL)
	require.Equal(t, 2*time.Minute, cfg.Period.Lag)
	require.Equal(t, ".pachca-export", cfg.State.Dir)

	require.NoError(t, os.WriteFile(path, []byte("source:\n  token_file: "+filepath.Join(dir, "missing")+"\nsinks:\n  - type: stdout\n"), 0o600))
	_, err = config.Load(path, env(nil))
	require.ErrorContains(t, err, "source.token_file: no such file or directory")
}

func TestParseTime(t *testing.T) {
	for in, want := range map[string]time.Time{
		"2026-11-01":                time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		"2026-11-01T00:00:00Z":      time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		"2026-11-01T03:00:00+03:00": time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		"2026-11-01T00:00:00.250Z":  time.Date(2026, 11, 1, 0, 0, 0, 250e6, time.UTC),
	} {
		got, err := config.ParseTime(in)
		require.NoError(t, err, in)
		require.True(t, want.Equal(got), in)
	}
	_, err := config.ParseTime("11/01/2026")
	require.ErrorContains(t, err, `invalid time "11/01/2026"`)
}
