package pipeline

import (
	"encoding/json"
	"fmt"
	"log/slog"
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

// TestSummaryFoldsUnlistedKeys: of thousands of keys the API reference does
// not list, the summary names MaxUnlistedKeys and folds the rest into one
// line (JSON: other_event_keys); every listed key is still named, and the
// events add up (was: a line each, 5,000 lines for an API that sent 5,000
// keys, and a JSON summary longer than journald keeps in one line).
func TestSummaryFoldsUnlistedKeys(t *testing.T) {
	s := newSummary("r1", time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC))
	s.PerKey = map[string]int64{"user_login": 7, "message_created": 3}
	for i := range 5000 {
		s.PerKey[fmt.Sprintf("unlisted_event_%04d", i)] = 2
	}
	var b strings.Builder
	s.Print(&b, "success")
	out := b.String()
	require.Less(t, strings.Count(out, "\n"), MaxUnlistedKeys+30, out)
	require.Regexp(t, `(?m)^  user_login\s+7$`, out)
	require.Regexp(t, `(?m)^  message_created\s+3$`, out)
	require.Regexp(t, `(?m)^  unlisted_event_0049\s+2$`, out)
	require.NotContains(t, out, "unlisted_event_0050")
	require.Regexp(t, `(?m)^  \(4950 other unlisted keys\)\s+9900$`, out)

	var j strings.Builder
	slog.New(slog.NewJSONHandler(&j, nil)).LogAttrs(t.Context(), slog.LevelInfo, "summary", s.Attrs()...)
	require.Less(t, j.Len(), 48<<10, "one journald line")
	var rec struct {
		EventKeys map[string]int64             `json:"event_keys"`
		Other     struct{ Keys, Events int64 } `json:"other_event_keys"`
	}
	require.NoError(t, json.Unmarshal([]byte(j.String()), &rec))
	require.Len(t, rec.EventKeys, 2+MaxUnlistedKeys)
	require.Equal(t, int64(4950), rec.Other.Keys)
	require.Equal(t, int64(9900), rec.Other.Events)
}
