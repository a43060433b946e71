package parquetfmt

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/pachca-export/pachca-export/transform/ocsf"
)

// The Parquet schema of OCSF events is derived from ocsf.Event's Go types
// and JSON names once per file, so the NDJSON and Parquet shapes cannot
// drift apart: string -> STRING, int32 -> INT32 (integer_t), int64 -> INT64
// (long_t, timestamp_t: `time` stays a long, as OCSF and Security Lake's
// own tables have it), ocsf.DateTime -> TIMESTAMP(MILLIS, UTC) (`time_dt`),
// *bool -> BOOLEAN, ocsf.JSON -> STRING (JSON text), []string ->
// LIST<STRING>, structs -> nested groups, []struct -> LIST<group>,
// ocsf.Unmapped -> MAP<STRING, STRING>. A field without omitempty is
// always written; every other one is null when it is the zero value, as
// JSON omits it.

var (
	dateTimeType = reflect.TypeFor[ocsf.DateTime]()
	jsonType     = reflect.TypeFor[ocsf.JSON]()
	unmappedType = reflect.TypeFor[ocsf.Unmapped]()
)

// ocsfNode writes one Go value into one Arrow builder.
type ocsfNode struct {
	field    arrow.Field
	kind     nodeKind
	omit     bool        // omitempty: the zero value is null
	index    int         // the struct field index in its parent
	children []*ocsfNode // for structs and lists of structs
}

type nodeKind uint8

const (
	nodeString nodeKind = iota
	nodeInt32
	nodeInt64
	nodeDateTime
	nodeBoolPtr
	nodeStringList
	nodeStruct     // a struct value, always present
	nodeStructPtr  // a pointer to a struct, nil is null
	nodeStructList // a slice of structs
	nodeMap        // ocsf.Unmapped
)

// ocsfPlan is the columns of one file: the top-level fields of ocsf.Event
// that the file's classes use.
type ocsfPlan struct {
	schema  *arrow.Schema
	columns []*ocsfNode
	// absent are the Event fields outside the file's columns, which must be
	// zero in every event written.
	absent []int
	names  []string // JSON names of the Event fields, by index
}

// newOCSFPlan returns the plan for files of the given classes (every class
// Map produces when classes is empty); the metadata goes into the schema.
func newOCSFPlan(classes []int32, md arrow.Metadata) (*ocsfPlan, error) {
	wanted := map[string]bool{}
	if len(classes) == 0 {
		for _, c := range ocsf.Classes() {
			classes = append(classes, c.UID)
		}
	}
	for _, uid := range classes {
		c, ok := ocsf.ClassByUID(uid)
		if !ok {
			return nil, fmt.Errorf("parquet: no OCSF class %d", uid)
		}
		for _, a := range c.Attributes {
			wanted[a] = true
		}
	}
	t := reflect.TypeFor[ocsf.Event]()
	p := &ocsfPlan{names: make([]string, t.NumField())}
	var fields []arrow.Field
	for i := range t.NumField() {
		sf := t.Field(i)
		name, omit := jsonName(sf)
		p.names[i] = name
		if !wanted[name] {
			p.absent = append(p.absent, i)
			continue
		}
		n, err := buildNode(sf.Type, name, omit, i, 0)
		if err != nil {
			return nil, err
		}
		p.columns = append(p.columns, n)
		fields = append(fields, n.field)
	}
	p.schema = arrow.NewSchema(fields, &md)
	return p, nil
}

func jsonName(sf reflect.StructField) (name string, omitempty bool) {
	tag := sf.Tag.Get("json")
	name, opts, _ := strings.Cut(tag, ",")
	return name, slices.Contains(strings.Split(opts, ","), "omitempty")
}

// buildNode derives the Arrow field and writer of a Go type. Top-level
// fields without omitempty are required; everything else is nullable.
func buildNode(t reflect.Type, name string, omit bool, index, depth int) (*ocsfNode, error) {
	n := &ocsfNode{omit: omit, index: index}
	nullable := omit || depth > 0
	var dt arrow.DataType
	switch {
	case t == dateTimeType:
		n.kind, dt = nodeDateTime, timestampType
	case t == jsonType || t.Kind() == reflect.String:
		n.kind, dt = nodeString, arrow.BinaryTypes.String
	case t == unmappedType:
		n.kind, dt = nodeMap, arrow.MapOf(arrow.BinaryTypes.String, arrow.BinaryTypes.String)
	case t.Kind() == reflect.Int32:
		n.kind, dt = nodeInt32, arrow.PrimitiveTypes.Int32
	case t.Kind() == reflect.Int64:
		n.kind, dt = nodeInt64, arrow.PrimitiveTypes.Int64
	case t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Bool:
		n.kind, dt, nullable = nodeBoolPtr, arrow.FixedWidthTypes.Boolean, true
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		n.kind, nullable = nodeStringList, true
		dt = arrow.ListOfField(arrow.Field{Name: "element", Type: arrow.BinaryTypes.String, Nullable: true})
	case t.Kind() == reflect.Struct:
		n.kind = nodeStruct
		st, err := n.structOf(t, depth)
		if err != nil {
			return nil, err
		}
		dt = st
	case t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct:
		n.kind, nullable = nodeStructPtr, true
		st, err := n.structOf(t.Elem(), depth)
		if err != nil {
			return nil, err
		}
		dt = st
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		n.kind, nullable = nodeStructList, true
		st, err := n.structOf(t.Elem(), depth)
		if err != nil {
			return nil, err
		}
		dt = arrow.ListOfField(arrow.Field{Name: "element", Type: st, Nullable: true})
	default:
		return nil, fmt.Errorf("parquet: OCSF attribute %s: Go type %s has no Parquet type", name, t)
	}
	n.field = arrow.Field{Name: name, Type: dt, Nullable: nullable}
	return n, nil
}

func (n *ocsfNode) structOf(t reflect.Type, depth int) (*arrow.StructType, error) {
	var fields []arrow.Field
	for i := range t.NumField() {
		sf := t.Field(i)
		name, omit := jsonName(sf)
		c, err := buildNode(sf.Type, name, omit, i, depth+1)
		if err != nil {
			return nil, err
		}
		n.children = append(n.children, c)
		fields = append(fields, c.field)
	}
	return arrow.StructOf(fields...), nil
}

// appendValue appends v (a value of the node's Go type) to b.
func (n *ocsfNode) appendValue(b array.Builder, v reflect.Value) {
	switch n.kind {
	case nodeString:
		s := v.String()
		if s == "" && n.omit {
			b.AppendNull()
			return
		}
		b.(*array.StringBuilder).Append(validUTF8(s))
	case nodeInt32:
		if v.Int() == 0 && n.omit {
			b.AppendNull()
			return
		}
		b.(*array.Int32Builder).Append(int32(v.Int()))
	case nodeInt64:
		if v.Int() == 0 && n.omit {
			b.AppendNull()
			return
		}
		b.(*array.Int64Builder).Append(v.Int())
	case nodeDateTime:
		b.(*array.TimestampBuilder).Append(arrow.Timestamp(v.Int()))
	case nodeBoolPtr:
		if v.IsNil() {
			b.AppendNull()
			return
		}
		b.(*array.BooleanBuilder).Append(v.Elem().Bool())
	case nodeStringList:
		if v.Len() == 0 {
			b.AppendNull()
			return
		}
		lb := b.(*array.ListBuilder)
		lb.Append(true)
		vb := lb.ValueBuilder().(*array.StringBuilder)
		for i := range v.Len() {
			vb.Append(validUTF8(v.Index(i).String()))
		}
	case nodeStruct:
		n.appendStruct(b.(*array.StructBuilder), v)
	case nodeStructPtr:
		if v.IsNil() {
			b.AppendNull()
			return
		}
		n.appendStruct(b.(*array.StructBuilder), v.Elem())
	case nodeStructList:
		if v.Len() == 0 {
			b.AppendNull()
			return
		}
		lb := b.(*array.ListBuilder)
		lb.Append(true)
		sb := lb.ValueBuilder().(*array.StructBuilder)
		for i := range v.Len() {
			n.appendStruct(sb, v.Index(i))
		}
	case nodeMap:
		u := v.Interface().(ocsf.Unmapped)
		if len(u) == 0 {
			b.AppendNull()
			return
		}
		mb := b.(*array.MapBuilder)
		mb.Append(true)
		kb, ib := mb.KeyBuilder().(*array.StringBuilder), mb.ItemBuilder().(*array.StringBuilder)
		for _, f := range u {
			kb.Append(validUTF8(f.Name))
			ib.Append(validUTF8(f.Value))
		}
	}
}

func (n *ocsfNode) appendStruct(sb *array.StructBuilder, v reflect.Value) {
	sb.Append(true)
	for i, c := range n.children {
		c.appendValue(sb.FieldBuilder(i), v.Field(c.index))
	}
}

// check reports an event that sets an attribute outside the file's columns.
func (p *ocsfPlan) check(ev *ocsf.Event) error {
	v := reflect.ValueOf(ev).Elem()
	for _, i := range p.absent {
		if !v.Field(i).IsZero() {
			return fmt.Errorf("parquet: OCSF event %s (class %d) sets %s, which is not a column of this file",
				ev.Metadata.UID, ev.ClassUID, p.names[i])
		}
	}
	return nil
}

// appendEvent appends one checked event as a row.
func (p *ocsfPlan) appendEvent(rb *array.RecordBuilder, ev *ocsf.Event) {
	v := reflect.ValueOf(ev).Elem()
	for i, c := range p.columns {
		c.appendValue(rb.Field(i), v.Field(c.index))
	}
}
