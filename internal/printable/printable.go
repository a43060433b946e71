// Package printable makes text that another party sent (an API's error
// message, an S3 server's error XML) safe to put into an error message,
// which the command prints to stderr, often a terminal.
package printable

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Line returns s on one line with nothing a terminal acts on: its runs of
// white space (line breaks too) as one space, and every other character
// that is not printable (the ESC of a terminal's escape sequences, BEL, a
// bidirectional override) escaped as in a Go string. A hostile or broken
// server can then neither add lines that read as the program's own nor
// drive the terminal that shows them.
func Line(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	var b strings.Builder
	for _, r := range s {
		if r == ' ' || strconv.IsPrint(r) {
			b.WriteRune(r)
			continue
		}
		q := strconv.QuoteRune(r)
		b.WriteString(q[1 : len(q)-1])
	}
	return b.String()
}

// Escaped returns s with every character a terminal may act on escaped as
// in a Go string: line breaks and tabs (\n, \t), ESC (\x1b), a
// bidirectional override (\u202e), each byte that is not UTF-8 (\x9b,
// which some terminals take for a control of their own). Unlike Line it
// keeps the spaces of s as they are, for text whose exact spelling
// matters: a file name or an event id read from the output, put into a
// line the program prints.
func Escaped(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == ' ' || strconv.IsPrint(r):
			b.WriteString(s[i : i+n])
		default:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
		i += n
	}
	return b.String()
}
