package alerts

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// A message's template is the operator's; the values it names come from
// the events, and so from whoever caused them (a chat's or a bot's name in
// the details, an actor's id and type). Pachca reads a message's content as
// markdown with mentions: a value is neutralised before the template sees
// it (neutral), so that it stays text on the line the template put it on.

// lookalike replaces a character of a value that Pachca's markdown and
// mentions act on (bold, italic, strike, code, links, @all and <@id>), or
// the backslash, which would escape the template's next character; 0 for
// another.
func lookalike(r rune) rune {
	switch r {
	case '@':
		return '＠'
	case '*':
		return '∗'
	case '_':
		return '＿'
	case '~':
		return '∼'
	case '`':
		return 'ˋ'
	case '[':
		return '［'
	case ']':
		return '］'
	case '\\':
		return '⧵'
	}
	return 0
}

// Pachca publishes no limit of a message's content for POST /messages (its
// OpenAPI document has none; its markdown blocks take 12,000 characters,
// its incoming webhooks 40,000 bytes): a message is cut to maxMessageChars
// characters, at most 16,000 bytes, well below both, and each value to
// maxValueChars, so that one long value (the details of a big event, the
// ids of a long burst) leaves room for the rest of the template.
const (
	maxMessageChars = 4000
	maxValueChars   = 1000
)

// maxMarks is how many combining marks in a row a value keeps as they are:
// more stack over the lines around (zalgo text), and are escaped.
const maxMarks = 4

// neutral returns the value s as a message shows it: a character Pachca's
// markdown or mentions act on replaced by a look-alike (lookalike); "//"
// before a host, and a dot before a letter, bracketed ([//], [.]), so that
// no link is made of it; a character that is not printable (a line break,
// a tab, another control character, a bidirectional override, a zero-width
// character, a space other than ASCII's) written as a Go escape (\n, \u202e), like a byte that is not UTF-8
// (\xff); a run of spaces as one space. A value over maxChars characters
// is cut there, with "… (cut: N more characters)".
func neutral(s string, maxChars int) string {
	var b strings.Builder
	chars, marks := 0, 0
	keep, kept := -1, 0                                          // where b is cut, and its characters, once past the mark's room
	room := maxChars - utf8.RuneCountInString(cutMark(4*len(s))) // a byte is at most 4 characters (\x1b)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		next := s[i+size:]
		tok := ""
		switch {
		case r == utf8.RuneError && size == 1:
			tok = fmt.Sprintf(`\x%02x`, s[i])
		case r == ' ' && strings.HasPrefix(next, " "):
			// a run of spaces: its last one is written
		case r == '/' && strings.HasPrefix(next, "/") && startsAlnum(next[1:]):
			tok, size = "[//]", 2
		case r == '.' && startsLetter(next):
			tok = "[.]"
		case unicode.In(r, unicode.Mn, unicode.Me) && marks >= maxMarks:
			tok = escape(r)
		case r != ' ' && !strconv.IsPrint(r):
			tok = escape(r)
		case lookalike(r) != 0:
			tok = string(lookalike(r))
		default:
			tok = s[i : i+size]
		}
		if unicode.In(r, unicode.Mn, unicode.Me) {
			marks++
		} else {
			marks = 0
		}
		i += size
		n := utf8.RuneCountInString(tok)
		if keep < 0 && chars+n > room {
			keep, kept = b.Len(), chars
		}
		b.WriteString(tok)
		chars += n
	}
	if chars <= maxChars {
		return b.String()
	}
	return b.String()[:keep] + cutMark(chars-kept)
}

// cutMark ends a value cut short, n characters of it left out. It holds
// none of the characters neutral replaces, so that it starts no markup.
func cutMark(n int) string {
	return fmt.Sprintf("… (cut: %d more characters)", n)
}

// escape writes r as in a Go string: \n, \x1b, \u202e.
func escape(r rune) string {
	q := strconv.QuoteRuneToASCII(r)
	return q[1 : len(q)-1]
}

func startsLetter(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return unicode.IsLetter(r)
}

func startsAlnum(s string) bool {
	r, _ := utf8.DecodeRuneInString(s)
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

// neutralFinding is f with every value that comes from the events
// neutralised, as a template sees it. The rule, its kind and event keys,
// and the workspace are the operator's, and are kept as they are.
func neutralFinding(f Finding) Finding {
	g := f
	for _, v := range []*string{&g.ActorID, &g.ActorType, &g.IP, &g.EntityID, &g.EntityType, &g.Details} {
		*v = neutral(*v, maxValueChars)
	}
	g.EventIDs = make([]string, len(f.EventIDs))
	for i, id := range f.EventIDs {
		g.EventIDs[i] = neutral(id, maxValueChars)
	}
	return g
}

// cutMessage cuts msg to maxMessageChars characters, ending it with what
// was cut.
func cutMessage(msg string) string {
	n := utf8.RuneCountInString(msg)
	if n <= maxMessageChars {
		return msg
	}
	mark := fmt.Sprintf(" … (message cut: %d of its %d characters left out)", n, n) // as long as the mark written, or longer
	keep := maxMessageChars - utf8.RuneCountInString(mark)
	i := 0
	for range keep {
		_, size := utf8.DecodeRuneInString(msg[i:])
		i += size
	}
	return msg[:i] + fmt.Sprintf(" … (message cut: %d of its %d characters left out)", n-keep, n)
}
