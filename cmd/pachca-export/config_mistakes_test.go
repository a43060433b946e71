package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestConfigMistakesExit2: configurations that used to panic, exhaust memory
// or fail every run are one line and exit status 2, before any request.
func TestConfigMistakesExit2(t *testing.T) {
	for _, tc := range []struct{ name, config, path, want string }{
		{name: "rate too high", config: strings.Replace(goodConfig, "  timeout: 5s\n", "  timeout: 5s\n  requests_per_second: 1e19\n", 1),
			want: "pipeline.yaml:6: source.requests_per_second: must be between 0.01 and 10000"},
		{name: "rate too low", config: strings.Replace(goodConfig, "  timeout: 5s\n", "  timeout: 5s\n  requests_per_second: 1e-300\n", 1),
			want: "source.requests_per_second: must be between 0.01 and 10000"},
		{name: "endless file", path: "/dev/zero", want: "/dev/zero: larger than 4 MiB"},
		{name: "two sinks, one dir", config: strings.Replace(goodConfig, "state:", "  - type: parquet\n    dir: %DIR%/out\nstate:", 1),
			want: "sinks[1].dir: the same directory as sinks[0].dir"},
	} {
		for _, args := range [][]string{{"run", "--dry-run"}, {"run"}, {"check"}} {
			t.Run(tc.name+"/"+strings.Join(args, " "), func(t *testing.T) {
				path := tc.path
				if path == "" {
					path = writeConfig(t, "http://127.0.0.1:9", secretToken, tc.config)
				}
				args := append(append([]string(nil), args...), "-c", path)
				if args[0] == "run" {
					args = append(args, "--from", "2026-01-01", "--to", "2026-01-02")
				}
				var stdout, stderr bytes.Buffer
				code := Main(t.Context(), args, &stdout, &stderr)
				out := stdout.String() + stderr.String()
				require.Equal(t, 2, code, out)
				require.Contains(t, stderr.String(), tc.want)
				require.Len(t, strings.Split(strings.TrimSpace(stderr.String()), "\n"), 1, "one line: %s", out)
				require.NotContains(t, out, "goroutine ")
			})
		}
	}
}
