package simulator

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// obj appends one JSON object to a byte slice, fields in call order. Events
// are rendered by hand because a million of them go through here at start-up.
type obj struct {
	b []byte
	n int // fields written
}

func newObj(b []byte) *obj { return &obj{b: append(b, '{')} }

func (o *obj) key(k string) {
	if o.n > 0 {
		o.b = append(o.b, ',')
	}
	o.n++
	o.b = appendString(o.b, k)
	o.b = append(o.b, ':')
}

func (o *obj) str(k, v string) *obj { o.key(k); o.b = appendString(o.b, v); return o }
func (o *obj) int(k string, v int64) *obj {
	o.key(k)
	o.b = strconv.AppendInt(o.b, v, 10)
	return o
}
func (o *obj) uint(k string, v uint64) *obj {
	o.key(k)
	o.b = strconv.AppendUint(o.b, v, 10)
	return o
}
func (o *obj) bool(k string, v bool) *obj { o.key(k); o.b = strconv.AppendBool(o.b, v); return o }
func (o *obj) null(k string) *obj         { o.key(k); o.b = append(o.b, "null"...); return o }
func (o *obj) raw(k string, v []byte) *obj {
	o.key(k)
	o.b = append(o.b, v...)
	return o
}

// nullStr writes v, or null when ok is false.
func (o *obj) nullStr(k, v string, ok bool) *obj {
	if !ok {
		return o.null(k)
	}
	return o.str(k, v)
}

// nullUint writes v, or null when ok is false.
func (o *obj) nullUint(k string, v uint64, ok bool) *obj {
	if !ok {
		return o.null(k)
	}
	return o.uint(k, v)
}

func (o *obj) strs(k string, v []string) *obj {
	o.key(k)
	o.b = append(o.b, '[')
	for i, s := range v {
		if i > 0 {
			o.b = append(o.b, ',')
		}
		o.b = appendString(o.b, s)
	}
	o.b = append(o.b, ']')
	return o
}

func (o *obj) uints(k string, v []uint64) *obj {
	o.key(k)
	o.b = append(o.b, '[')
	for i, n := range v {
		if i > 0 {
			o.b = append(o.b, ',')
		}
		o.b = strconv.AppendUint(o.b, n, 10)
	}
	o.b = append(o.b, ']')
	return o
}

func (o *obj) close() []byte { return append(o.b, '}') }

// appendString appends s as a JSON string: UTF-8 kept as is, quotes,
// backslashes and control characters escaped, invalid UTF-8 replaced.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\ufffd")
	}
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
