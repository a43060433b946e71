package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/testkit/exporttest"
)

// TestUnwritableOutput: an output directory on a read-only file system, or
// one that fills up, ends the run with exit status 1 and a single line on
// stderr that names the directory (or file) and the cause.
func TestUnwritableOutput(t *testing.T) {
	base := startSim(t)
	day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -3).Format(time.DateOnly)
	cases := []struct {
		name, mount string
		want        []string // in the line; %OUT% is the sink directory
	}{
		// Found before anything is fetched: the sink is checked first.
		{name: "read-only", mount: "ro", want: []string{"directory %OUT% is not writable: read-only file system"}},
		{name: "disk full", mount: "size=4k",
			want: []string{"write %OUT%/dt=" + day + "/pachca-audit-", ".ndjson: no space left on device"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, base, secretToken, strings.Replace(goodConfig, "    dir: %DIR%/out\n", "    dir: %DIR%/out\n    compression: none\n", 1))
			out := filepath.Join(filepath.Dir(path), "out")
			require.NoError(t, os.MkdirAll(out, 0o750))
			exporttest.MountTmpfs(t, out, tc.mount)

			var stdout, stderr bytes.Buffer
			code := Main(t.Context(), []string{"run", "-c", path, "--log-level", "error", "--from", day, "--to", day + "T12:00:00Z"}, &stdout, &stderr)
			require.Equal(t, 1, code, stderr.String())
			require.Empty(t, stdout.String())
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			line := lines[len(lines)-1]
			require.Equal(t, 1, strings.Count(stderr.String(), "pachca-export: "), "one error line: %q", stderr.String())
			require.True(t, strings.HasPrefix(line, "pachca-export: "), "the error ends the output: %q", line)
			require.Regexp(t, `(?m)^result\s+failure$`, stderr.String(), "a failed run ends with its summary too")
			for _, w := range tc.want {
				require.Contains(t, line, strings.ReplaceAll(w, "%OUT%", out))
			}
			require.NotContains(t, line, ".tmp-", "the temporary file is not what the user knows")
			entries, err := filepath.Glob(filepath.Join(out, "dt=*", "*"))
			require.NoError(t, err)
			require.Empty(t, entries, "nothing left in the output directory")
		})
	}
}
