package alerts

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// TestNeutralHostileValues: what a workspace's member can put into an
// event's values (a chat's or a bot's name, which the details carry) stays
// text on its line of the message: no mention, link, markup, second line,
// reversed text or invisible character (was: written into the message as it
// was, so that a chat named "@all" notified the whole workspace from the
// security team's alert, and a name with a line break forged a second line).
func TestNeutralHostileValues(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"mention of all", "@all look here", "＠all look here"},
		{"mention by id", "<@10001> approved", "<＠10001> approved"},
		{"markdown link", "[details](https://evil.example/sso)", "［details］(https:[//]evil[.]example/sso)"},
		{"bare link", "see https://evil.example/x or www.evil.example", "see https:[//]evil[.]example/x or www[.]evil[.]example"},
		{"protocol-relative link", "//evil.example", "[//]evil[.]example"},
		{"forged line", "x\nResolved: false positive\r\n", `x\nResolved: false positive\r\n`},
		{"line separator", "x\u2028Resolved", `x\u2028Resolved`},
		{"bold, italic, strike", "**urgent** _now_ ~~not~~", "∗∗urgent∗∗ ＿now＿ ∼∼not∼∼"},
		{"code fence", "```\nfenced", `ˋˋˋ\nfenced`},
		{"backslash", `name\`, "name⧵"},
		{"right-to-left override", "report\u202efdp.exe", `report\u202efdp[.]exe`},
		{"zero-width and bidi isolate", "ad\u200bmin\u2066x", `ad\u200bmin\u2066x`},
		{"escape sequence", "\x1b[2J\u009b2J", `\x1b［2J\u009b2J`},
		{"invalid UTF-8", "a\xffb\xc3", `a\xffb\xc3`},
		{"padding", "a" + strings.Repeat(" ", 300) + "Resolved", "a Resolved"},
		{"tab and other spaces", "a\tb\u00a0c\u3000d", `a\tb\u00a0c\u3000d`},
		{"stacked marks", "Z" + strings.Repeat("\u0301", 6), "Z" + strings.Repeat("\u0301", 4) + `\u0301\u0301`},
		{"address and version", "203.0.113.54 Chrome/120.0.0.0", "203.0.113.54 Chrome/120.0.0.0"},
		{"cyrillic and emoji", "Отдел продаж 🚀", "Отдел продаж 🚀"},
		{"ratio", "1/2 a//", "1/2 a//"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, neutral(tc.in, maxValueChars))
		})
	}
}

// TestNeutralCut: a value over its length is cut at a whole character or
// escape, marked, and never longer than the length.
func TestNeutralCut(t *testing.T) {
	got := neutral(strings.Repeat("a", 5000), maxValueChars)
	require.Equal(t, strings.Repeat("a", 970)+"… (cut: 4030 more characters)", got)
	require.LessOrEqual(t, utf8.RuneCountInString(got), maxValueChars)

	// Escapes are whole: the kept part ends with a complete \u202e.
	got = neutral(strings.Repeat("a", 960)+strings.Repeat("\u202e", 20), maxValueChars)
	require.LessOrEqual(t, utf8.RuneCountInString(got), maxValueChars)
	kept, _, ok := strings.Cut(got, "… (cut: ")
	require.True(t, ok, got)
	require.True(t, strings.HasSuffix(kept, `a`) || strings.HasSuffix(kept, `\u202e`), kept)
	require.Equal(t, strings.Repeat("a", 960)+strings.Repeat(`\u202e`, 1), kept[:966])

	require.Equal(t, "short", neutral("short", maxValueChars))
}

// TestRenderNeutralisesEventValues: the operator's template keeps its own
// markup, mentions and lines; the values of the events it names are
// neutralised; the event key, the rule and the workspace, which are the
// operator's, are kept as they are.
func TestRenderNeutralisesEventValues(t *testing.T) {
	r := Rule{Name: "Watched_bots", Kind: KindWatch, EventKeys: []string{"bot_created"}, Recipients: []string{"10001"},
		Template: "**{{.Rule}}** <@10001>: {{.EventKey}} by {{.ActorID}} ({{.ActorType}}) from {{.IP}}\n{{.EntityType}} {{.EntityID}}: {{.Details}}\nevent {{join .EventIDs \", \"}}"}
	f := Finding{Rule: r.Name, Kind: KindWatch, EventKey: "bot_created", Count: 1, First: t0, Last: t0,
		ActorID: "1@all", ActorType: "User\nResolved: false positive", IP: "10.0.0.1\r",
		EntityID: "7](https://evil.example)", EntityType: "Bot\u202e", Details: `{"name":"@all **pwned** https://evil.example"}`,
		EventIDs: []string{"id_1\n"}}
	msg, err := Render(r, f)
	require.NoError(t, err)
	require.Equal(t, "**Watched_bots** <@10001>: bot_created by 1＠all (User\\nResolved: false positive) from 10.0.0.1\\r\n"+
		"Bot\\u202e 7］(https:[//]evil[.]example): {\"name\":\"＠all ∗∗pwned∗∗ https:[//]evil[.]example\"}\n"+
		"event id＿1\\n", msg)
	require.Equal(t, "User\nResolved: false positive", f.ActorType, "the finding itself is not changed")
}

// TestRenderCutsLongMessages: a template over many values (the ids of a
// burst of thousands of events, long details) renders a message of at most
// maxMessageChars characters, which says it was cut (was: a message as long
// as the values made it, which the API may refuse, run after run).
func TestRenderCutsLongMessages(t *testing.T) {
	r := Rule{Name: "Long", Kind: KindThreshold, EventKeys: []string{"user_2fa_fail"}, Threshold: 5, Window: time.Minute,
		Recipients: []string{"10001"}, Template: "{{.Count}} events: {{join .EventIDs \", \"}}"}
	f := Finding{Rule: r.Name, Kind: KindThreshold, ActorID: "1", ActorType: "User", Count: 5000, First: t0, Last: t0}
	for range 5000 {
		f.EventIDs = append(f.EventIDs, "00000000-0000-0000-0000-000000000000")
	}
	msg, err := Render(r, f)
	require.NoError(t, err)
	require.Equal(t, maxMessageChars, utf8.RuneCountInString(msg))
	require.True(t, strings.HasPrefix(msg, "5000 events: 00000000-0000-0000-0000-000000000000, "), msg[:80])
	require.True(t, strings.HasSuffix(msg, " … (message cut: 186069 of its 190011 characters left out)"), msg[len(msg)-80:])

	// Multi-byte characters are cut whole.
	f.EventIDs = []string{strings.Repeat("я", 900)}
	r.Template = "{{.EventIDs}} {{.EventIDs}} {{.EventIDs}} {{.EventIDs}} {{.EventIDs}}"
	msg, err = Render(r, f)
	require.NoError(t, err)
	require.True(t, utf8.ValidString(msg))
	require.LessOrEqual(t, utf8.RuneCountInString(msg), maxMessageChars)
	require.Contains(t, msg, "я … (message cut: ")
}
