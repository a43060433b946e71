// Package telemetrytest checks metrics text the way Prometheus users do:
// the client library's linter in process, and `promtool check metrics`
// (built pinned by `make promtool`) in a subtest.
package telemetrytest

import (
	"bytes"
	"os/exec"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/testkit/testbin"
)

// Lint fails t when b breaks a Prometheus naming or format rule. The
// promtool subtest skips without promtool, unless CI=true.
func Lint(t *testing.T, b []byte) {
	t.Helper()
	problems, err := promlint.New(bytes.NewReader(b)).Lint()
	require.NoError(t, err, "%s", b)
	require.Empty(t, problems, "%s", b)
	t.Run("promtool", func(t *testing.T) {
		bin := testbin.Require(t, "PACHCA_PROMTOOL", "promtool", "promtool")
		cmd := exec.Command(bin, "check", "metrics")
		cmd.Stdin = bytes.NewReader(b)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "promtool check metrics:\n%s\n--- file:\n%s", out, b)
	})
}
