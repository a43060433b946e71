package main

import (
	"bytes"
	"os/exec"
	"regexp"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/testkit/buildtest"
)

// TestVersionStamped: a release build (ldflags -X, as `make release` and the
// Dockerfile link it) prints the stamped version, commit and date.
func TestVersionStamped(t *testing.T) {
	bin := buildtest.StaticBinary(t)
	want := "pachca-export " + buildtest.Version + " (commit " + buildtest.Commit +
		", built " + buildtest.Date + ", " + runtime.Version() + " linux/" + runtime.GOARCH + ")\n"
	for _, arg := range []string{"version", "--version"} {
		out, err := exec.CommandContext(t.Context(), bin, arg).Output()
		require.NoError(t, err, arg)
		require.Equal(t, want, string(out), arg)
	}
}

// TestVersionUnstamped: without ldflags the line keeps its shape, with what
// Go recorded or "unknown".
func TestVersionUnstamped(t *testing.T) {
	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, Main(t.Context(), []string{"version"}, &stdout, &stderr), stderr.String())
	require.Regexp(t, regexp.MustCompile(`^pachca-export \S+ \(commit (?:[0-9a-f]+(?:-dirty)?|unknown), built \S+, go\S+ [a-z0-9]+/[a-z0-9]+\)\n$`), stdout.String())
}
