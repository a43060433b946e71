package parquetfmt_test

import (
	"os"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/sinks/parquetfmt"
	"github.com/pachca-export/pachca-export/transform"
)

// TestInteropParquetGo reads the files with github.com/parquet-go/parquet-go,
// a reader that shares no code with Arrow Go: it must agree on the row
// count, the column names, the physical and logical types and the values.
func TestInteropParquetGo(t *testing.T) {
	recs := append(edgeRecords(), genRecords(6000, 4)...)
	path := encode(t, recs, 1000, "", parquetfmt.WithRowGroupRows(2500))

	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	st, err := f.Stat()
	require.NoError(t, err)
	pf, err := parquet.OpenFile(f, st.Size())
	require.NoError(t, err)

	require.EqualValues(t, len(recs), pf.NumRows())
	require.Len(t, pf.RowGroups(), 3)
	v, ok := pf.Lookup("run_id")
	require.True(t, ok)
	require.Equal(t, "run-0001", v)
	v, _ = pf.Lookup("schema_version")
	require.Equal(t, transform.SchemaVersion, v)

	fields := pf.Schema().Fields()
	cols := transform.Columns()
	require.Len(t, fields, len(cols))
	for i, c := range cols {
		requireNode(t, c, fields[i])
	}

	r := parquet.NewGenericReader[map[string]any](f, pf.Schema())
	defer r.Close()
	got := make([]transform.Record, 0, len(recs))
	rows := make([]map[string]any, 512)
	for {
		for i := range rows {
			rows[i] = map[string]any{}
		}
		n, err := r.Read(rows)
		for _, row := range rows[:n] {
			got = append(got, recordOfRow(t, row))
		}
		if err != nil {
			break
		}
	}
	require.Equal(t, recs, got)
}

// requireNode checks one column as parquet-go sees it.
func requireNode(t *testing.T, c transform.Column, n parquet.Field) {
	t.Helper()
	require.Equal(t, c.Name, n.Name())
	require.Equal(t, c.Nullable, n.Optional(), "%s optional", c.Name)
	require.Equal(t, !c.Nullable, n.Required(), "%s required", c.Name)
	lt := n.Type().LogicalType()
	switch c.Kind {
	case transform.KindString:
		require.True(t, n.Leaf())
		require.Equal(t, parquet.ByteArray, n.Type().Kind(), c.Name)
		require.IsType(t, &format.StringType{}, lt.Value, c.Name)
	case transform.KindTimestamp:
		require.Equal(t, parquet.Int64, n.Type().Kind(), c.Name)
		ts, ok := lt.Value.(*format.TimestampType)
		require.True(t, ok, "%s: logical type %v", c.Name, lt)
		require.True(t, ts.IsAdjustedToUTC, c.Name)
		require.IsType(t, &format.MilliSeconds{}, ts.Unit.Value, c.Name)
	case transform.KindInt64:
		require.Equal(t, parquet.Int64, n.Type().Kind(), c.Name)
	case transform.KindBool:
		require.Equal(t, parquet.Boolean, n.Type().Kind(), c.Name)
	case transform.KindStringList:
		// The three-level LIST of the Parquet spec: optional group (LIST) {
		// repeated group list { optional binary element (STRING) } }.
		require.False(t, n.Leaf())
		require.IsType(t, &format.ListType{}, lt.Value, c.Name)
		require.Len(t, n.Fields(), 1)
		rep := n.Fields()[0]
		require.Equal(t, "list", rep.Name())
		require.True(t, rep.Repeated())
		require.Len(t, rep.Fields(), 1)
		elem := rep.Fields()[0]
		require.Equal(t, "element", elem.Name())
		require.True(t, elem.Optional())
		require.Equal(t, parquet.ByteArray, elem.Type().Kind())
		require.IsType(t, &format.StringType{}, elem.Type().LogicalType().Value)
	default:
		t.Fatalf("%s: kind %v", c.Name, c.Kind)
	}
}

// recordOfRow converts a row as parquet-go reads it back into a record.
func recordOfRow(t *testing.T, row map[string]any) transform.Record {
	t.Helper()
	s := func(k string) string {
		v, ok := row[k].(string)
		require.True(t, ok, "%s: %T", k, row[k])
		return v
	}
	ns := func(k string) transform.NullString {
		if row[k] == nil {
			return transform.NullString{}
		}
		return null(s(k))
	}
	ts, ok := row["created_at"].(int64)
	require.True(t, ok, "created_at: %T", row["created_at"])
	r := transform.Record{
		ID: s("id"), CreatedAt: ts, EventKey: s("event_key"), EventCategory: s("event_category"),
		ActorID: s("actor_id"), ActorType: s("actor_type"), EntityID: s("entity_id"), EntityType: s("entity_type"),
		IPAddress: ns("ip_address"), UserAgent: ns("user_agent"), DetailsJSON: s("details_json"),
		Workspace: s("workspace"),
	}
	require.Equal(t, transform.SchemaVersion, s("schema_version"))
	for i, f := range transform.DetailFields() {
		raw := row[f.Column().Name]
		if raw == nil {
			continue
		}
		v := &r.Details[i]
		v.Valid = true
		switch f.Kind {
		case transform.KindString:
			v.Str, ok = raw.(string)
		case transform.KindInt64:
			v.Int, ok = raw.(int64)
		case transform.KindBool:
			v.Bool, ok = raw.(bool)
		case transform.KindStringList:
			var elems []any
			elems, ok = raw.([]any)
			v.List = []string{}
			for _, e := range elems {
				es, isStr := e.(string)
				require.True(t, isStr, "%s element %T", f.JSON, e)
				v.List = append(v.List, es)
			}
		}
		require.True(t, ok, "%s: %T", f.JSON, raw)
	}
	return r
}
