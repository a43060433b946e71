// Package printable makes text that another party sent (an API's error
// message, an S3 server's error XML) safe to put into an error message,
// which the command prints to stderr, often a terminal.
package printable

import (
	"strconv"
	"strings"
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
