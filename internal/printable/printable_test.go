package printable

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLine(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{name: "plain", in: "access denied", want: "access denied"},
		{name: "line breaks", in: "a\nb\r\n c\t\td", want: "a b c d"},
		{name: "ANSI escape", in: "\x1b[31mred\x1b[0m", want: `\x1b[31mred\x1b[0m`},
		{name: "OSC title", in: "\x1b]0;owned\x07", want: `\x1b]0;owned\a`},
		{name: "C1 CSI", in: "\u009b2J", want: `\u009b2J`},
		{name: "bidi override", in: "abc\u202edef", want: `abc\u202edef`},
		{name: "invalid UTF-8", in: "a\xffb", want: "a\uFFFDb"},
		{name: "non-ASCII letters", in: "доступ запрещён", want: "доступ запрещён"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, Line(tc.in))
		})
	}
}

func TestEscaped(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{name: "plain", in: "pachca-audit-2026-11-20.ndjson", want: "pachca-audit-2026-11-20.ndjson"},
		{name: "spaces kept", in: "a  b ", want: "a  b "},
		{name: "line breaks and tabs", in: "a\r\nb\tc", want: `a\r\nb\tc`},
		{name: "erase line", in: "\x1b[2K\rOK", want: `\x1b[2K\rOK`},
		{name: "OSC title", in: "\x1b]0;owned\x07", want: `\x1b]0;owned\a`},
		{name: "C1 CSI", in: "\u009b2J", want: `\u009b2J`},
		{name: "bidi override", in: "evil\u202egnp.exe", want: `evil\u202egnp.exe`},
		{name: "byte not UTF-8", in: "a\x9bb\xff", want: `a\x9bb\xff`},
		{name: "replacement character", in: "a\uFFFDb", want: "a\uFFFDb"},
		{name: "non-ASCII letters", in: "доступ «запрещён»", want: "доступ «запрещён»"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, Escaped(tc.in))
		})
	}
}
