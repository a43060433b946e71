package reader

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"time"
	"unsafe"

	"github.com/valyala/fastjson"

	"github.com/pachca-export/pachca-export/sinks/ndjson"
)

// readNDJSON streams the rows of part p from obj, the NDJSON file (gzip or
// zstd by its name), every byte of which passes through v.
func readNDJSON(ctx context.Context, obj io.Reader, p Part, v *verifier, fn func([]Row) error) error {
	raw := io.TeeReader(obj, v)
	lines, err := ndjson.Decompress(p.Name(), raw)
	if err != nil {
		return v.damaged(err)
	}
	defer lines.Close()
	sc := bufio.NewScanner(lines)
	sc.Buffer(make([]byte, 0, 256<<10), ndjson.MaxLine)
	var (
		parser fastjson.Parser
		n      int64
		row    = make([]Row, 1)
	)
	for sc.Scan() {
		n++
		if n%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		line := sc.Bytes()
		if len(line) == 0 {
			n--
			continue
		}
		val, err := parser.ParseBytes(line)
		if err != nil {
			return v.damaged(fmt.Errorf("line %d: %w", n, err))
		}
		if err := decodeRow(val, &row[0]); err != nil {
			return v.damaged(fmt.Errorf("line %d: %w", n, err))
		}
		if !p.in(row[0].CreatedAt) {
			continue
		}
		if err := fn(row); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return v.damaged(fmt.Errorf("line %d: %w", n+1, err))
	}
	if err := drain(raw); err != nil {
		return v.damaged(err)
	}
	if err := v.checkBytes(); err != nil {
		return err
	}
	return v.checkRecords(n)
}

// decodeRow fills r from one record object. Strings point into the parser.
func decodeRow(val *fastjson.Value, r *Row) error {
	o, err := val.Object()
	if err != nil {
		return err
	}
	*r = Row{}
	var created string
	var bad error
	o.Visit(func(k []byte, v *fastjson.Value) {
		if bad != nil {
			return
		}
		var dst *string
		switch string(k) {
		case "id":
			dst = &r.ID
		case "created_at":
			dst = &created
		case "event_key":
			dst = &r.EventKey
		case "event_category":
			dst = &r.EventCategory
		case "actor_id":
			dst = &r.ActorID
		case "actor_type":
			dst = &r.ActorType
		case "entity_id":
			dst = &r.EntityID
		case "entity_type":
			dst = &r.EntityType
		case "ip_address":
			if v.Type() == fastjson.TypeNull {
				return
			}
			r.IPAddress.Valid = true
			dst = &r.IPAddress.Str
		case "details_json":
			dst = &r.DetailsJSON
		default:
			return
		}
		b, err := v.StringBytes()
		if err != nil {
			bad = fmt.Errorf("%s: %w", k, err)
			return
		}
		*dst = unsafe.String(unsafe.SliceData(b), len(b))
	})
	if bad != nil {
		return bad
	}
	t, err := time.Parse("2006-01-02T15:04:05.000Z", created)
	if err != nil {
		return fmt.Errorf("created_at: %w", err)
	}
	r.CreatedAt = t.UnixMilli()
	return nil
}
