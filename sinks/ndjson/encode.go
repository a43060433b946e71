// Package ndjson encodes schema v1 records as newline-delimited JSON, one
// object per line with the column names of SPEC §5, optionally compressed.
// Kafka and stdout use AppendRecord for their message values.
package ndjson

import (
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
	dst = time.UnixMilli(r.CreatedAt).UTC().AppendFormat(dst, "2006-01-02T15:04:05.000Z")
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

func appendNullString(dst []byte, s transform.NullString) []byte {
	if !s.Valid {
		return append(dst, "null"...)
	}
	return AppendString(dst, s.Str)
}

const hex = "0123456789abcdef"

// AppendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, as
// encoding/json does; U+2028 and U+2029 are escaped so lines embed in JS.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
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
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
