package transform

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math/bits"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// This file holds a small strict JSON scanner over the raw bytes of an event,
// the transform's one JSON parser. It validates the event as encoding/json's
// Valid would and, in the same pass, records where the values the record
// needs are: the top-level member of each field the record reads, and the
// member of each details field inside the top-level details object.
// normalize.go then reads those spans directly, so there is no second parse.
// details_json is copied from the raw bytes with only the insignificant
// whitespace removed.
//
// One rule for a member name that appears twice in an object: the last one
// wins, as in JavaScript's JSON.parse, Python's json and Go's encoding/json.
// Every column follows it, and when the details object repeats a name,
// details_json keeps only the last member of that name, so that readers
// whose rule differs (some take the first) see the same value too.
// Values may nest maxDepth deep, counting the event itself.

// span is a half-open byte range [off, end).
type span struct{ off, end int }

const msgNotObject = "not a JSON object"

// syntaxError says why and where the scanner stopped.
type syntaxError struct {
	msg string
	off int
}

func (e *syntaxError) Error() string { return e.msg + " at offset " + strconv.Itoa(e.off) }

// Modes of scanner.object: what to record of the members.
const (
	modeNested  = iota // record nothing
	modeTop            // the event: record the fields the record reads
	modeDetails        // the first details object: record the details fields
)

// scanEvent validates b as one JSON object and returns the span of the value
// of its first top-level member named "details" (found false when there is
// none) and whether that value holds whitespace between its tokens, that is
// whether it needs compacting.
func scanEvent(b []byte) (details span, found, spaced bool, err *syntaxError) {
	var s scanner
	if err := s.scan(b); err != nil {
		return span{}, false, false, err
	}
	return s.top[fDetails], s.topSet&(1<<fDetails) != 0, s.detailsWS > 0, nil
}

// maxDepth bounds the nesting of values, the event's object counting as 1,
// so that a hostile event cannot exhaust the stack.
const maxDepth = 300

type scanner struct {
	b   []byte
	err *syntaxError
	esc bool // the last string str scanned had an escape
	ws  int  // whitespace bytes skipped between tokens so far

	top    [numFields]span // the value of the last member of each f* field
	topSet uint32          // bit f: top[f] was found
	det    [NumDetails]span
	detSet uint64 // bit i: det[i] was found in the details object

	detailsWS  int                 // whitespace bytes skipped inside top[fDetails]
	detailsDup bool                // the details object repeats a member name
	names      []nameSpan          // the member names of the details object so far
	key        []byte              // scratch for unescaped member names
	k1, k2     []byte              // scratch for comparing escaped names
	nameSet    map[string]struct{} // the names, unescaped, past linearNames of them
}

// nameSpan is a member name as it stands in the input, quotes included.
type nameSpan struct {
	q   span
	esc bool
}

// scan validates b as one JSON object and records the spans of its members.
// The scanner may be reused; its results hold until the next scan.
func (s *scanner) scan(b []byte) *syntaxError {
	s.b, s.err, s.ws = b, nil, 0
	s.topSet, s.detSet, s.detailsWS, s.detailsDup, s.names = 0, 0, 0, false, s.names[:0]
	i := skipWS(b, 0)
	if i == len(b) {
		return &syntaxError{"empty input", 0}
	}
	if b[i] != '{' {
		return &syntaxError{msgNotObject, i}
	}
	i = s.object(i, 1, modeTop)
	if s.err != nil {
		return s.err
	}
	if i = skipWS(b, i); i != len(b) {
		return &syntaxError{"data after the object", i}
	}
	return nil
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
	if depth >= maxDepth {
		return s.fail("nesting too deep", i)
	}
	switch c := b[i]; {
	case c == '{':
		return s.object(i, depth+1, modeNested)
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

func (s *scanner) object(i, depth, mode int) int {
	if depth > maxDepth {
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
		switch mode {
		case modeNested:
			i = s.value(i, depth)
		case modeTop:
			i = s.topMember(s.name(key, keyEsc), i, depth)
		case modeDetails:
			vs := i
			i = s.value(i, depth)
			// A name with bytes that are not UTF-8 is compared as it is
			// written out, each such byte U+FFFD: "\xff" and "\xfe" are
			// then the same name.
			if s.repeated(span{ks, ks + len(key)}, keyEsc || !utf8.Valid(key)) {
				s.detailsDup = true
			}
			if d := detailIndex(s.name(key, keyEsc)); d >= 0 {
				s.det[d], s.detSet = span{vs, i}, s.detSet|1<<d // the last of a name wins
			}
		}
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
		case '}':
			return i + 1
		default:
			return s.fail("expected ',' or '}'", i)
		}
	}
}

// topMember scans the value at b[i] of the top-level member named name and
// records it when it is a field the record reads, replacing an earlier
// member of the same name. The members of the details object are recorded
// too.
func (s *scanner) topMember(name []byte, i, depth int) int {
	f := fieldIndex(name)
	if f < 0 {
		return s.value(i, depth)
	}
	vs, ws := i, s.ws
	if f == fDetails { // a repeated details member replaces the one before
		s.detSet, s.detailsDup, s.names = 0, false, s.names[:0]
	}
	if f == fDetails && i < len(s.b) && s.b[i] == '{' {
		i = s.object(i, depth+1, modeDetails)
	} else {
		i = s.value(i, depth)
	}
	s.top[f], s.topSet = span{vs, i}, s.topSet|1<<f
	if f == fDetails {
		s.detailsWS = s.ws - ws
	}
	return i
}

// linearNames is how many member names of the details object repeated
// compares one by one; past it, a hostile object of many thousand members
// would take quadratic time, and the names go into a set.
const linearNames = 32

// repeated records the member name at q (quotes included) of the details
// object and reports whether an earlier member had the same name once
// unescaped.
func (s *scanner) repeated(q span, esc bool) bool {
	if len(s.names) >= linearNames {
		if len(s.names) == linearNames {
			if s.nameSet == nil {
				s.nameSet = map[string]struct{}{}
			}
			clear(s.nameSet)
			for _, p := range s.names {
				s.nameSet[string(s.unescapedName(p))] = struct{}{}
			}
		}
		s.names = append(s.names, nameSpan{q, esc})
		k := s.unescapedName(s.names[len(s.names)-1])
		if _, dup := s.nameSet[string(k)]; dup {
			return true
		}
		s.nameSet[string(k)] = struct{}{}
		return false
	}
	dup := false
	name := s.b[q.off:q.end]
	for _, p := range s.names {
		prev := s.b[p.q.off:p.q.end]
		if !esc && !p.esc {
			dup = bytes.Equal(prev, name)
		} else {
			s.k1 = appendUnescaped(s.k1[:0], prev[1:len(prev)-1])
			s.k2 = appendUnescaped(s.k2[:0], name[1:len(name)-1])
			dup = bytes.Equal(s.k1, s.k2)
		}
		if dup {
			break
		}
	}
	s.names = append(s.names, nameSpan{q, esc})
	return dup
}

// unescapedName returns the name p without its quotes, unescaped when it
// needs it (a scratch buffer holds it until the next call).
func (s *scanner) unescapedName(p nameSpan) []byte {
	return s.name(s.b[p.q.off:p.q.end], p.esc)
}

// name returns the member name of the quoted string q, unescaped (a scratch
// buffer holds it until the next call).
func (s *scanner) name(q []byte, esc bool) []byte {
	if !esc {
		return q[1 : len(q)-1]
	}
	s.key = appendUnescaped(s.key[:0], q[1:len(q)-1])
	return s.key
}

func (s *scanner) array(i, depth int) int {
	if depth > maxDepth {
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

// keyIs reports whether the quoted member name q equals want once unescaped.
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
// named key of obj, a valid compact JSON object (details_json, whose names
// are unique).
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

// appendUniqueMembers appends obj, a valid compact JSON object, keeping of
// each member name only the last member (in its place).
func appendUniqueMembers(dst, obj []byte) []byte {
	type member struct {
		name string // unescaped
		all  span
	}
	var ms []member
	last := map[string]int{} // name -> index in ms of its last member
	var key []byte
	for i := 1; i < len(obj) && obj[i] == '"'; {
		ks := i
		i = skipString(obj, i)
		key = appendUnescaped(key[:0], obj[ks+1:i-1])
		ke := i
		i = skipValue(obj, ke+1)
		ms = append(ms, member{string(key), span{ks, i}})
		last[string(key)] = len(ms) - 1
		i++ // past ',' or '}'
	}
	dst = append(dst, '{')
	first := true
	for j, m := range ms {
		if last[m.name] != j {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, obj[m.all.off:m.all.end]...)
	}
	return append(dst, '}')
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

// appendUnescaped appends the contents q (without the quotes) of a string the
// scanner validated, unescaped as encoding/json does: surrogate pairs
// combine, each unpaired surrogate becomes U+FFFD and the escape after it is
// read on its own, and invalid UTF-8 becomes U+FFFD (appendValidUTF8).
func appendUnescaped(dst, q []byte) []byte {
	for {
		n := bytes.IndexByte(q, '\\')
		if n < 0 {
			return appendValidUTF8(dst, q)
		}
		dst = appendValidUTF8(dst, q[:n])
		c := q[n+1]
		q = q[n+2:]
		switch c {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			x := hex4(q)
			q = q[4:]
			if utf16.IsSurrogate(x) {
				if len(q) >= 6 && q[0] == '\\' && q[1] == 'u' {
					if r := utf16.DecodeRune(x, hex4(q[2:])); r != utf8.RuneError {
						dst = utf8.AppendRune(dst, r)
						q = q[6:]
						break
					}
				}
				x = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, x)
		default: // '"', '\\', '/'
			dst = append(dst, c)
		}
	}
}

// hex4 decodes the four hex digits at the start of b, which the scanner
// validated.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c <= '9':
			c -= '0'
		case c >= 'a':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// surrogateEscape returns the code unit of the \u escape that starts at
// b[i] (a backslash of valid JSON text) when it is a surrogate.
func surrogateEscape(b []byte, i int) (rune, bool) {
	if i+6 > len(b) || b[i+1] != 'u' {
		return 0, false
	}
	x := hex4(b[i+2:])
	return x, utf16.IsSurrogate(x)
}

// appendPairedEscapes appends the valid JSON text src to dst with every \u
// escape of an unpaired surrogate written as \ufffd, which is what
// encoding/json reads it as: JSON readers that are strict about UTF-16
// (DuckDB's json functions, Spark) reject the text otherwise. ok is false,
// and dst unchanged, when src has no such escape.
func appendPairedEscapes(dst, src []byte) (_ []byte, ok bool) {
	start := 0
	for i := 0; i < len(src); i++ {
		if src[i] != '\\' {
			continue
		}
		x, sur := surrogateEscape(src, i)
		if !sur {
			i++ // the escaped character, a backslash maybe
			continue
		}
		if y, next := surrogateEscape(src, i+6); next && utf16.DecodeRune(x, y) != utf8.RuneError {
			i += 11 // a pair
			continue
		}
		if !ok {
			dst, ok = append(dst, src[:i]...), true
		} else {
			dst = append(dst, src[start:i]...)
		}
		dst = append(dst, `\ufffd`...)
		i += 5
		start = i + 1
	}
	if !ok {
		return dst, false
	}
	return append(dst, src[start:]...), true
}
