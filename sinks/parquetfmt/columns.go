package parquetfmt

import (
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/pachca-export/pachca-export/transform"
)

// The details of a row fit in one uint64 bitmask; this fails to compile
// when schema v1 grows past 64 details fields.
var _ [64 - transform.NumDetails]struct{}

// rows is one append's records with, per record, a bitmask of the details
// that are set and a copy of the top-level fields. A Record is over 2 KB,
// mostly details; one sequential pass over the records gathers what every
// column needs, so the column passes read 8 bytes a row for sparse details
// and a compact slice for the top-level columns, instead of a cache line of
// every record per column.
type rows struct {
	recs  []transform.Record
	valid []uint64
	heads []head
}

// head is the top-level fields of a record.
type head struct {
	id, eventKey, eventCategory, actorID, actorType string
	entityID, entityType, detailsJSON, workspace    string
	ip, userAgent                                   transform.NullString
	createdAt                                       int64
}

func (r *rows) set(recs []transform.Record) {
	r.recs = recs
	r.valid = r.valid[:0]
	r.heads = r.heads[:0]
	for i := range recs {
		rec := &recs[i]
		r.heads = append(r.heads, head{
			id: rec.ID, eventKey: rec.EventKey, eventCategory: rec.EventCategory,
			actorID: rec.ActorID, actorType: rec.ActorType, entityID: rec.EntityID,
			entityType: rec.EntityType, detailsJSON: rec.DetailsJSON, workspace: rec.Workspace,
			ip: rec.IPAddress, userAgent: rec.UserAgent, createdAt: rec.CreatedAt,
		})
		var m uint64
		for d := range rec.Details {
			if rec.Details[d].Valid {
				m |= 1 << d
			}
		}
		r.valid = append(r.valid, m)
	}
}

// clear drops the references to the caller's records and their strings.
func (r *rows) clear() {
	r.recs = nil
	clear(r.heads)
}

// columnWriter appends one column of rows to its builder.
type columnWriter func(b array.Builder, r *rows)

// columnWriters maps each field of schema v1 to the Record field it comes
// from. A column without a source is a schema change this encoder lacks.
func columnWriters(schema *arrow.Schema) ([]columnWriter, error) {
	details := make(map[string]int, transform.NumDetails)
	fields := transform.DetailFields()
	for i, f := range fields {
		details[f.Column().Name] = i
	}
	out := make([]columnWriter, schema.NumFields())
	for i, f := range schema.Fields() {
		var w columnWriter
		switch f.Name {
		case "id":
			w = stringColumn(func(h *head) string { return h.id })
		case "created_at":
			w = func(b array.Builder, r *rows) {
				tb := b.(*array.TimestampBuilder)
				for i := range r.heads {
					tb.Append(arrow.Timestamp(r.heads[i].createdAt))
				}
			}
		case "event_key":
			w = stringColumn(func(h *head) string { return h.eventKey })
		case "event_category":
			w = stringColumn(func(h *head) string { return h.eventCategory })
		case "actor_id":
			w = stringColumn(func(h *head) string { return h.actorID })
		case "actor_type":
			w = stringColumn(func(h *head) string { return h.actorType })
		case "entity_id":
			w = stringColumn(func(h *head) string { return h.entityID })
		case "entity_type":
			w = stringColumn(func(h *head) string { return h.entityType })
		case "ip_address":
			w = nullStringColumn(func(h *head) transform.NullString { return h.ip })
		case "user_agent":
			w = nullStringColumn(func(h *head) transform.NullString { return h.userAgent })
		case "details_json":
			w = stringColumn(func(h *head) string { return h.detailsJSON })
		case "workspace":
			w = stringColumn(func(h *head) string { return h.workspace })
		case "schema_version":
			w = func(b array.Builder, r *rows) {
				sb := b.(*array.StringBuilder)
				reserveData(sb, len(r.heads)*len(transform.SchemaVersion))
				for range r.heads {
					sb.Append(transform.SchemaVersion)
				}
			}
		default:
			d, ok := details[f.Name]
			if !ok {
				return nil, fmt.Errorf("parquet: column %q of schema v1 has no encoder", f.Name)
			}
			if w = detailColumn(d, fields[d].Kind); w == nil {
				return nil, fmt.Errorf("parquet: column %q: kind %v has no encoder", f.Name, fields[d].Kind)
			}
		}
		out[i] = w
	}
	return out, nil
}

func stringColumn(get func(*head) string) columnWriter {
	return func(b array.Builder, r *rows) {
		sb := b.(*array.StringBuilder)
		n := 0
		for i := range r.heads {
			n += len(get(&r.heads[i]))
		}
		reserveData(sb, n)
		for i := range r.heads {
			sb.Append(validUTF8(get(&r.heads[i])))
		}
	}
}

// reserveData makes room for n more bytes of string data, at least doubling
// the buffer when it grows: StringBuilder.ReserveData grows to the exact
// size, which copies the whole buffer on every append of a batch.
func reserveData(sb *array.StringBuilder, n int) {
	if sb.DataLen()+n > sb.DataCap() {
		sb.ReserveData(max(n, sb.DataCap()))
	}
}

func nullStringColumn(get func(*head) transform.NullString) columnWriter {
	return func(b array.Builder, r *rows) {
		sb := b.(*array.StringBuilder)
		for i := range r.heads {
			if s := get(&r.heads[i]); s.Valid {
				sb.Append(validUTF8(s.Str))
			} else {
				sb.AppendNull()
			}
		}
	}
}

// detailColumn returns the writer of details field d, or nil for a kind it
// does not know.
func detailColumn(d int, k transform.Kind) columnWriter {
	switch k {
	case transform.KindString:
		return func(b array.Builder, r *rows) {
			sb := b.(*array.StringBuilder)
			eachDetail(r, d, sb.AppendNulls, func(v *transform.Value) { sb.Append(validUTF8(v.Str)) })
		}
	case transform.KindInt64:
		return func(b array.Builder, r *rows) {
			ib := b.(*array.Int64Builder)
			eachDetail(r, d, ib.AppendNulls, func(v *transform.Value) { ib.Append(v.Int) })
		}
	case transform.KindBool:
		return func(b array.Builder, r *rows) {
			bb := b.(*array.BooleanBuilder)
			eachDetail(r, d, bb.AppendNulls, func(v *transform.Value) { bb.Append(v.Bool) })
		}
	case transform.KindTimestamp:
		return func(b array.Builder, r *rows) {
			tb := b.(*array.TimestampBuilder)
			eachDetail(r, d, tb.AppendNulls, func(v *transform.Value) { tb.Append(arrow.Timestamp(v.Int)) })
		}
	case transform.KindStringList:
		return func(b array.Builder, r *rows) {
			lb := b.(*array.ListBuilder)
			sb := lb.ValueBuilder().(*array.StringBuilder)
			eachDetail(r, d, lb.AppendNulls, func(v *transform.Value) {
				lb.Append(true) // a valid list, empty unless elements follow
				for _, s := range v.List {
					sb.Append(validUTF8(s))
				}
			})
		}
	}
	return nil
}

// eachDetail calls value for each row whose details field d is set, and
// nulls for each run of rows where it is not, in row order.
func eachDetail(r *rows, d int, nulls func(n int), value func(v *transform.Value)) {
	bit := uint64(1) << d
	run := 0
	for i, m := range r.valid {
		if m&bit == 0 {
			run++
			continue
		}
		if run > 0 {
			nulls(run)
			run = 0
		}
		value(&r.recs[i].Details[d])
	}
	if run > 0 {
		nulls(run)
	}
}

// validUTF8 replaces invalid UTF-8 by the transform's rule, the NDJSON
// encoder's: Parquet strings are UTF-8 and readers (pyarrow, Spark) reject
// anything else. Records from the transform are valid already.
func validUTF8(s string) string { return transform.ValidUTF8(s) }
