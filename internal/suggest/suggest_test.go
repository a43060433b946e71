package suggest

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestClosest(t *testing.T) {
	commands := []string{"run", "check", "schema", "demo", "version", "help"}
	flags := []string{"c", "from", "to", "dry-run", "token", "metrics-file", "alerts-dry-run", "log-format", "log-level"}
	cases := []struct {
		name, word string
		candidates []string
		want       string
	}{
		{"transposition", "rnu", commands, "run"},
		{"missing letter", "chek", commands, "check"},
		{"extra letter", "schemaa", commands, "schema"},
		{"flag typo", "frm", flags, "from"},
		{"flag transposition", "dyr-run", flags, "dry-run"},
		{"unique prefix", "metrics", flags, "metrics-file"},
		{"ambiguous prefix", "log", flags, ""},
		{"far away", "frobnicate", commands, ""},
		{"no total replacement", "x", flags, ""},
		{"exact", "to", flags, "to"},
		{"empty", "", flags, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, Closest(tc.word, tc.candidates))
		})
	}
}
