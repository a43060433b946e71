// Package ndjson encodes schema v1 records as newline-delimited JSON, one
// object per line with the column names of SPEC §5, optionally compressed.
// Kafka and stdout use AppendRecord for their message values.
package ndjson

import (
	"bytes"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/pachca-export/pachca-export/transform"
)

var detailKeys = func() [transform.NumDetails]string {
	var keys [transform.NumDetails]string
	for i, f := range transform.DetailFields() {
		keys[i] = `,"details_` + f.JSON + `":`
	}
	return keys
}()

// AppendRecord appends r as one JSON object (no newline) to dst. Top-level
// columns are always present (ip_address and user_agent may be null); a
// details_* column is present only when the event carries that field, so a
// missing details_* key means null.
func AppendRecord(dst []byte, r *transform.Record) []byte {
	dst = append(dst, `{"id":`...)
	dst = AppendString(dst, r.ID)
	dst = append(dst, `,"created_at":"`...)
	dst = AppendTime(dst, r.CreatedAt)
	dst = append(dst, `","event_key":`...)
	dst = AppendString(dst, r.EventKey)
	dst = append(dst, `,"event_category":`...)
	dst = AppendString(dst, r.EventCategory)
	dst = append(dst, `,"actor_id":`...)
	dst = AppendString(dst, r.ActorID)
	dst = append(dst, `,"actor_type":`...)
	dst = AppendString(dst, r.ActorType)
	dst = append(dst, `,"entity_id":`...)
	dst = AppendString(dst, r.EntityID)
	dst = append(dst, `,"entity_type":`...)
	dst = AppendString(dst, r.EntityType)
	dst = append(dst, `,"ip_address":`...)
	dst = appendNullString(dst, r.IPAddress)
	dst = append(dst, `,"user_agent":`...)
	dst = appendNullString(dst, r.UserAgent)
	dst = append(dst, `,"details_json":`...)
	dst = AppendString(dst, r.DetailsJSON)
	fields := transform.DetailFields()
	for i := range r.Details {
		v := &r.Details[i]
		if !v.Valid {
			continue
		}
		dst = append(dst, detailKeys[i]...)
		switch fields[i].Kind {
		case transform.KindString:
			dst = AppendString(dst, v.Str)
		case transform.KindInt64:
			dst = strconv.AppendInt(dst, v.Int, 10)
		case transform.KindBool:
			dst = strconv.AppendBool(dst, v.Bool)
		case transform.KindStringList:
			dst = append(dst, '[')
			for j, s := range v.List {
				if j > 0 {
					dst = append(dst, ',')
				}
				dst = AppendString(dst, s)
			}
			dst = append(dst, ']')
		}
	}
	dst = append(dst, `,"workspace":`...)
	dst = AppendString(dst, r.Workspace)
	dst = append(dst, `,"schema_version":"`+transform.SchemaVersion+`"}`...)
	return dst
}

// appendRuneEscape appends the \uXXXX escape of r, a rune of the BMP.
func appendRuneEscape(dst []byte, r rune) []byte {
	return append(dst, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
}

// EscapeLineBreaks returns the JSON text b with every U+0085, U+2028 and
// U+2029 written as its \u escape, as AppendString writes them: b itself
// when it holds none, else a new slice. In JSON these stand only inside
// strings, so the text reads as the same values, and each line of NDJSON
// stays one line to every reader.
func EscapeLineBreaks(b []byte) []byte {
	if bytes.IndexByte(b, 0xc2) < 0 && bytes.IndexByte(b, 0xe2) < 0 { // the lead bytes of the three
		return b
	}
	var out []byte
	start := 0
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if size > 1 && (r == '\u0085' || r == '\u2028' || r == '\u2029') {
			if out == nil {
				out = make([]byte, 0, len(b)+16)
			}
			out = appendRuneEscape(append(out, b[start:i]...), r)
			start = i + size
		}
		i += size
	}
	if out == nil {
		return b
	}
	return append(out, b[start:]...)
}

func appendNullString(dst []byte, s transform.NullString) []byte {
	if !s.Valid {
		return append(dst, "null"...)
	}
	return AppendString(dst, s.Str)
}

const hex = "0123456789abcdef"

// AppendTime appends the UTC time of ms (milliseconds since the Unix epoch)
// as 2006-01-02T15:04:05.000Z, byte for byte what time.Time.AppendFormat
// writes, without its layout parsing.
func AppendTime(dst []byte, ms int64) []byte {
	const minMs, maxMs = -62167219200000, 253402300799999 // 0000-01-01 .. 9999-12-31, UTC
	if ms < minMs || ms > maxMs {
		return time.UnixMilli(ms).UTC().AppendFormat(dst, "2006-01-02T15:04:05.000Z")
	}
	days, rem := ms/86400000, ms%86400000
	if rem < 0 {
		days, rem = days-1, rem+86400000
	}
	y, m, d := civilFromDays(days)
	sec, milli := rem/1000, rem%1000
	var b [24]byte
	put4(b[0:], int(y))
	b[4] = '-'
	put2(b[5:], int(m))
	b[7] = '-'
	put2(b[8:], int(d))
	b[10] = 'T'
	put2(b[11:], int(sec/3600))
	b[13] = ':'
	put2(b[14:], int(sec/60%60))
	b[16] = ':'
	put2(b[17:], int(sec%60))
	b[19] = '.'
	b[20] = byte('0' + milli/100)
	b[21] = byte('0' + milli/10%10)
	b[22] = byte('0' + milli%10)
	b[23] = 'Z'
	return append(dst, b[:]...)
}

func put2(b []byte, v int) { b[0], b[1] = byte('0'+v/10), byte('0'+v%10) }

func put4(b []byte, v int) { put2(b, v/100); put2(b[2:], v%100) }

// civilFromDays is the proleptic Gregorian date of a day number counted from
// 1970-01-01 (H. Hinnant's algorithm).
func civilFromDays(z int64) (y, m, d int64) {
	z += 719468
	era := z / 146097
	if z < 0 {
		era = (z - 146096) / 146097
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	m = mp + 3
	if m > 12 {
		m -= 12
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}

// safeWord reports whether none of the 8 bytes of x needs escaping or UTF-8
// checking: no byte below 0x20, none at or above 0x80, no '"' and no '\\'.
// The tests are the classic SWAR ones (exact for "is there any such byte").
func safeWord(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q := x ^ (ones * '"')
	bs := x ^ (ones * '\\')
	bad := x | // high bit: non-ASCII
		((x - ones*0x20) & ^x) | // a byte below 0x20
		((q - ones) & ^q) | // a '"'
		((bs - ones) & ^bs) // a '\\'
	return bad&highs == 0
}

// AppendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, as
// encoding/json does; U+2028 and U+2029 are escaped so lines embed in JS,
// and U+0085 too: with them, the three line breaks JSON lets stand in a
// string, on which Unicode-aware readers (Python's str.splitlines, Java's
// Scanner.nextLine) end a line.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		// Runs of plain ASCII go 8 bytes at a time.
		for i+8 <= len(s) {
			w := s[i : i+8] // one bounds check; the compiler merges the loads
			if !safeWord(uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
				uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56) {
				break
			}
			i += 8
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' || r == '\u0085' {
			dst = append(dst, s[start:i]...)
			dst = appendRuneEscape(dst, r)
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
