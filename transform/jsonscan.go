package transform

import (
	"encoding/binary"
	"encoding/json"
	"math/bits"
	"strconv"

	"github.com/valyala/fastjson"
)

// This file holds a small strict JSON scanner over the raw bytes of an event.
// fastjson is lenient (it accepts NaN, 1.2.3, raw control characters in
// strings, bad escapes) and re-quotes strings with Go escapes when it
// marshals, so details_json cannot come from it: the scanner validates the
// event as encoding/json's Valid would and finds the raw bytes of details,
// which are then copied with only the insignificant whitespace removed.

// span is a half-open byte range [off, end).
type span struct{ off, end int }

const msgNotObject = "not a JSON object"

// syntaxError says why and where the scanner stopped.
type syntaxError struct {
	msg string
	off int
}

func (e *syntaxError) Error() string { return e.msg + " at offset " + strconv.Itoa(e.off) }

// scanEvent validates b as one JSON object and returns the span of the value
// of its first top-level member named "details" (found false when there is
// none) and whether that value holds whitespace between its tokens, that is
// whether it needs compacting. The nesting limit is fastjson's, so both
// accept the same documents.
func scanEvent(b []byte) (details span, found, spaced bool, err *syntaxError) {
	s := scanner{b: b, want: "details"}
	i := skipWS(b, 0)
	if i == len(b) {
		return span{}, false, false, &syntaxError{"empty input", 0}
	}
	if b[i] != '{' {
		return span{}, false, false, &syntaxError{msgNotObject, i}
	}
	i = s.object(i, 1, true)
	if s.err != nil {
		return span{}, false, false, s.err
	}
	if i = skipWS(b, i); i != len(b) {
		return span{}, false, false, &syntaxError{"data after the object", i}
	}
	return s.found, s.hit, s.detailsWS > 0, nil
}

type scanner struct {
	b     []byte
	want  string // top-level member whose value span is recorded
	found span
	hit   bool
	err   *syntaxError
	esc   bool // the last string str scanned had an escape
	ws    int  // whitespace bytes skipped between tokens so far

	detailsWS int // whitespace bytes skipped inside the recorded value
}

// skipWS skips whitespace between tokens, counting it so that a value
// without any can be copied as it is.
func (s *scanner) skipWS(i int) int {
	if i < len(s.b) && s.b[i] > ' ' { // inlined: compact input has no whitespace
		return i
	}
	return s.skipWSSlow(i)
}

func (s *scanner) skipWSSlow(i int) int {
	j := skipWS(s.b, i)
	if j != i { // rare in API output: keep the common path free of stores
		s.ws += j - i
	}
	return j
}

func (s *scanner) fail(msg string, off int) int {
	if s.err == nil {
		s.err = &syntaxError{msg, off}
	}
	return len(s.b)
}

func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// value validates the value at b[i] and returns the index after it.
func (s *scanner) value(i, depth int) int {
	b := s.b
	if i >= len(b) {
		return s.fail("unexpected end of input", i)
	}
	switch c := b[i]; {
	case c == '{':
		return s.object(i, depth+1, false)
	case c == '[':
		return s.array(i, depth+1)
	case c == '"':
		return s.str(i)
	case c == 't':
		return s.literal(i, "true")
	case c == 'f':
		return s.literal(i, "false")
	case c == 'n':
		return s.literal(i, "null")
	case c == '-' || c >= '0' && c <= '9':
		return s.number(i)
	}
	return s.fail("invalid character "+strconv.QuoteRune(rune(b[i])), i)
}

func (s *scanner) object(i, depth int, top bool) int {
	if depth > fastjson.MaxDepth {
		return s.fail("nesting too deep", i)
	}
	b := s.b
	i = s.skipWS(i + 1)
	if i < len(b) && b[i] == '}' {
		return i + 1
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return s.fail("expected a member name", i)
		}
		ks := i
		i = s.str(i)
		if s.err != nil {
			return i
		}
		key, keyEsc := b[ks:i], s.esc
		i = s.skipWS(i)
		if i >= len(b) || b[i] != ':' {
			return s.fail("expected ':'", i)
		}
		i = s.skipWS(i + 1)
		vs, ws := i, s.ws
		i = s.value(i, depth)
		if s.err != nil {
			return i
		}
		if top && !s.hit && (keyEsc && keyIs(key, s.want) || !keyEsc && string(key[1:len(key)-1]) == s.want) {
			s.found, s.hit, s.detailsWS = span{vs, i}, true, s.ws-ws
		}
		i = s.skipWS(i)
		if i >= len(b) {
			return s.fail("unexpected end of input", i)
		}
		switch b[i] {
		case ',':
			i = s.skipWS(i + 1)
		case '}':
			return i + 1
		default:
			return s.fail("expected ',' or '}'", i)
		}
	}
}

func (s *scanner) array(i, depth int) int {
	if depth > fastjson.MaxDepth {
		return s.fail("nesting too deep", i)
	}
	b := s.b
	i = s.skipWS(i + 1)
	if i < len(b) && b[i] == ']' {
		return i + 1
	}
	for {
		i = s.value(i, depth)
		if s.err != nil {
			return i
		}
		i = s.skipWS(i)
		if i >= len(b) {
			return s.fail("unexpected end of input", i)
		}
		switch b[i] {
		case ',':
			i = s.skipWS(i + 1)
		case ']':
			return i + 1
		default:
			return s.fail("expected ',' or ']'", i)
		}
	}
}

// str validates the string starting at the quote b[i]. Bytes that are not
// valid UTF-8 pass, as in encoding/json; control characters and unknown
// escapes do not.
func (s *scanner) str(i int) int {
	b := s.b
	s.esc = false
	for i++; i < len(b); i++ {
		i = plainRun(b, i)
		if i >= len(b) {
			break
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1
		case c < 0x20:
			return s.fail("control character in string", i)
		case c == '\\':
			s.esc = true
			i++
			if i >= len(b) {
				return s.fail("unexpected end of input", i)
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) || !isHex(b[i+1]) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) {
					return s.fail(`invalid \u escape`, i)
				}
				i += 4
			default:
				return s.fail("invalid escape", i)
			}
		}
	}
	return s.fail("unterminated string", i)
}

// plainRun returns the index of the first byte at or after i that is a quote,
// a backslash or a control character (or len(b)), eight bytes at a time: most
// of an event is string bytes.
func plainRun(b []byte, i int) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		q := x ^ (ones * '"')
		bs := x ^ (ones * '\\')
		// A byte's high bit is set where it is zero (q, bs) or below 0x20
		// (x); bytes above the first hit may be false alarms, the first is not.
		m := ((q - ones) &^ q) | ((bs - ones) &^ bs) | ((x - ones*0x20) &^ x)
		if m &= highs; m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; c < 0x20 || c == '"' || c == '\\' {
			return i
		}
	}
	return i
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func (s *scanner) literal(i int, lit string) int {
	if len(s.b)-i < len(lit) || string(s.b[i:i+len(lit)]) != lit {
		return s.fail("invalid literal", i)
	}
	return i + len(lit)
}

// number validates -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func (s *scanner) number(i int) int {
	b, start := s.b, i
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && isDigit(b[i]):
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	default:
		return s.fail("invalid number", start)
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			return s.fail("invalid number", start)
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return s.fail("invalid number", start)
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	return i
}

// keyIs reports whether the quoted member name q equals want once unescaped,
// the way fastjson's Object.Visit compares names.
func keyIs(q []byte, want string) bool {
	raw := q[1 : len(q)-1]
	for _, c := range raw {
		if c == '\\' {
			var k string
			return json.Unmarshal(q, &k) == nil && k == want
		}
	}
	return string(raw) == want
}

// appendCompact appends the valid JSON text src to dst without the whitespace
// between tokens; everything else, escapes and number literals included, is
// copied byte for byte.
func appendCompact(dst, src []byte) []byte {
	start := 0
	for i := 0; i < len(src); i++ {
		switch src[i] {
		case '"':
			for i++; i < len(src) && src[i] != '"'; i++ {
				if src[i] == '\\' {
					i++
				}
			}
		case ' ', '\t', '\n', '\r':
			dst = append(dst, src[start:i]...)
			start = i + 1
		}
	}
	return append(dst, src[start:]...)
}

// member returns the span, relative to obj, of the value of the first member
// named key of obj, a valid compact JSON object.
func member(obj []byte, key string) (span, bool) {
	i := 1
	for i < len(obj) && obj[i] == '"' {
		ks := i
		i = skipString(obj, i)
		name := obj[ks:i]
		vs := i + 1 // past ':'
		i = skipValue(obj, vs)
		if keyIs(name, key) {
			return span{vs, i}, true
		}
		i++ // past ',' or '}'
	}
	return span{}, false
}

// skipString returns the index after the valid string that starts at obj[i].
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// skipValue returns the index after the valid compact value at b[i].
func skipValue(b []byte, i int) int {
	depth := 0
	for i < len(b) {
		switch b[i] {
		case '"':
			i = skipString(b, i)
			if depth == 0 {
				return i
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i
			}
			depth--
			if depth == 0 {
				return i + 1
			}
		case ',':
			if depth == 0 {
				return i
			}
		}
		i++
	}
	return i
}
