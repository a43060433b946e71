package transform

import "unicode/utf8"

// One rule for text that is not valid UTF-8, applied here so that every sink
// gets the same strings: each byte that does not belong to a valid UTF-8
// sequence becomes U+FFFD. It is encoding/json's rule (its encoder writes
// one \ufffd per such byte and its decoder reads one), so the record's text
// is what any JSON reader makes of the API's bytes, and the extractor's ids
// (read with encoding/json) are the record's.

// ValidUTF8 returns s with each byte that is not part of valid UTF-8
// replaced by U+FFFD. Records from the transform are valid already; the
// encoders call it to keep their output valid whatever they are given.
func ValidUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return string(appendValidUTF8(nil, []byte(s)))
}

// appendValidUTF8 appends b to dst with each byte that is not part of valid
// UTF-8 replaced by U+FFFD.
func appendValidUTF8(dst, b []byte) []byte {
	if utf8.Valid(b) {
		return append(dst, b...)
	}
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size == 1 {
			dst = utf8.AppendRune(dst, utf8.RuneError)
		} else {
			dst = append(dst, b[:size]...)
		}
		b = b[size:]
	}
	return dst
}
