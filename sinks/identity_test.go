package sinks

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDiffHidesBaseURLPassword: the refusal that names a different
// base_url shows its password as xxxxx.
func TestDiffHidesBaseURLPassword(t *testing.T) {
	here := Identity{BaseURL: "https://user:pw-SECRET-1@api.example.com/v1"}
	there := Identity{BaseURL: "https://user:pw-SECRET-2@api.example.com/v2"}
	diff := strings.Join(here.Diff(there), "\n")
	require.Contains(t, diff, `source.base_url: "https://user:xxxxx@api.example.com/v1" here, "https://user:xxxxx@api.example.com/v2" there`)
	require.NotContains(t, diff, "SECRET")
}
