package pipeline

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSummaryPrintsKeysSafely: an event key is the API's text; on a
// terminal or in journald it must not forge summary lines or send escape
// sequences, and an empty one, or one with a space, must show.
func TestSummaryPrintsKeysSafely(t *testing.T) {
	s := newSummary("r1", time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC))
	s.PerKey = map[string]int64{
		"user_login": 2,
		"user_login\nresult                    success": 1,
		"\x1b[31mevil\x1b[0m":                           1,
		"":                                              1,
		"ключ":                                          1,
		"bad\xff":                                       1,
		"user_login ":                                   1,
		strings.Repeat("k", 40000):                      1,
	}
	var b strings.Builder
	s.Print(&b, "failure")
	out := b.String()
	require.NotContains(t, out, "\x1b")
	require.Equal(t, 1, strings.Count(out, "\nresult"), out) // no forged line
	for _, line := range []string{
		`  user_login  `,
		`  "user_login\nresult                    success"  `,
		`  "\x1b[31mevil\x1b[0m"  `,
		`  ""  `,
		`  ключ  `,
		`  "bad\xff"  `,
		`  "user_login "  `, // not a second user_login
		"  " + strings.Repeat("k", 64) + "… (40000 bytes)  ",
	} {
		require.Contains(t, out, "\n"+line, out)
	}
	// A key thousands of characters long is cut: it would pad every line.
	for line := range strings.Lines(out) {
		require.Less(t, len(line), 200, line)
	}
}
