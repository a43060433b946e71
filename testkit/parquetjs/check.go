package parquetjs

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// WithoutNulls drops null members, as File.Rows have none: the form to
// compare a schema v1 NDJSON line (whose ip_address may be null) with.
func WithoutNulls(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			if e != nil {
				out[k] = WithoutNulls(e)
			}
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = WithoutNulls(e)
		}
		return out
	}
	return v
}

// Node is one element of a Parquet schema with its children.
type Node struct {
	Elem     map[string]any // the SchemaElement, as hyparquet parses it
	Children []*Node
}

// Str is the element's member key (name, type, repetition_type, ...) if
// it is a string.
func (n *Node) Str(key string) string { s, _ := n.Elem[key].(string); return s }

// Logical is the element's logical type, nil if it has none.
func (n *Node) Logical() map[string]any {
	m, _ := n.Elem["logical_type"].(map[string]any)
	return m
}

// Schema rebuilds the tree of the flat, depth-first schema in a footer
// (File.Meta of Hyparquet); the root is the schema itself.
func Schema(t testing.TB, meta map[string]any) *Node {
	t.Helper()
	elems, ok := meta["schema"].([]any)
	require.True(t, ok, "the footer has a schema")
	i := 0
	var build func() *Node
	build = func() *Node {
		n := &Node{Elem: elems[i].(map[string]any)}
		i++
		if c, ok := n.Elem["num_children"].(interface{ Int64() (int64, error) }); ok {
			k, _ := c.Int64()
			for range k {
				n.Children = append(n.Children, build())
			}
		}
		return n
	}
	root := build()
	require.Equal(t, len(elems), i)
	return root
}

// lowerName is what Athena and Hive take as a column or field name
// without quoting, and what Spark cannot confuse with another by case.
var lowerName = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// RequireFooter checks the footer for what readers other than Arrow
// refuse or read wrong: only logical types Athena (Trino), Spark and
// pandas know, timestamps as TIMESTAMP(MILLIS, UTC) (not INT96, not
// NANOS, which Athena engine 2 and Spark 2 cannot read), no unsigned
// integers (Hive has none), lower-case names without dots or spaces
// that no two siblings share in any case (Athena and Spark match names
// without regard to case), the three-level LIST and MAP of the spec, one
// codec of those Hadoop-based readers all have (no LZ4), statistics on
// every column chunk (min_value and max_value unless all values are null,
// except for strings: Arrow leaves them out of a chunk with a value over
// 4 KiB), and created_by.
func RequireFooter(t testing.TB, file string, meta map[string]any, compression string) {
	t.Helper()
	require.NotEmpty(t, meta["created_by"], file)
	root := Schema(t, meta)
	var walk func(path string, n *Node)
	walk = func(path string, n *Node) {
		seen := map[string]string{}
		for _, c := range n.Children {
			name := c.Str("name")
			p := strings.TrimPrefix(path+"."+name, ".")
			require.Regexp(t, lowerName, name, "%s: column %s", file, p)
			require.NotContains(t, seen, strings.ToLower(name), "%s: %s and %s differ only in case", file, p, seen[strings.ToLower(name)])
			seen[strings.ToLower(name)] = p
			lt, typ := c.Logical(), c.Str("type")
			require.NotEqual(t, "INT96", typ, "%s: %s", file, p)
			switch ltype, _ := lt["type"].(string); ltype {
			case "", "STRING":
			case "TIMESTAMP":
				require.Equal(t, "INT64", typ, "%s: %s", file, p)
				require.Equal(t, "MILLIS", lt["unit"], "%s: %s", file, p)
				require.Equal(t, true, lt["isAdjustedToUTC"], "%s: %s", file, p)
			case "INTEGER":
				require.Equal(t, true, lt["isSigned"], "%s: %s is unsigned", file, p)
			case "LIST":
				// optional group name (LIST) { repeated group list { optional element } }
				require.Len(t, c.Children, 1, "%s: %s", file, p)
				rep := c.Children[0]
				require.Equal(t, "REPEATED", rep.Str("repetition_type"), "%s: %s", file, p)
				require.Equal(t, "list", rep.Str("name"), "%s: %s", file, p)
				require.Len(t, rep.Children, 1, "%s: %s: a three-level list", file, p)
				require.Equal(t, "element", rep.Children[0].Str("name"), "%s: %s", file, p)
			case "MAP":
				require.Len(t, c.Children, 1, "%s: %s", file, p)
				kv := c.Children[0]
				require.Equal(t, "REPEATED", kv.Str("repetition_type"), "%s: %s", file, p)
				require.Equal(t, "key_value", kv.Str("name"), "%s: %s", file, p)
				require.Len(t, kv.Children, 2, "%s: %s", file, p)
				require.Equal(t, "key", kv.Children[0].Str("name"), "%s: %s", file, p)
				require.Equal(t, "REQUIRED", kv.Children[0].Str("repetition_type"), "%s: %s: map keys are required", file, p)
				require.Equal(t, "value", kv.Children[1].Str("name"), "%s: %s", file, p)
			default:
				t.Fatalf("%s: %s: logical type %v", file, p, lt)
			}
			if typ == "BYTE_ARRAY" {
				require.Equal(t, "STRING", lt["type"], "%s: %s: byte arrays are strings", file, p)
			}
			walk(p, c)
		}
	}
	walk("", root)

	codec := map[string]string{"none": "UNCOMPRESSED", "snappy": "SNAPPY", "gzip": "GZIP", "zstd": "ZSTD", "": "ZSTD"}[compression]
	groups, _ := meta["row_groups"].([]any)
	if meta["num_rows"] != json.Number("0") {
		require.NotEmpty(t, groups, file)
	}
	for _, g := range groups {
		for _, c := range g.(map[string]any)["columns"].([]any) {
			md := c.(map[string]any)["meta_data"].(map[string]any)
			p := fmt.Sprint(md["path_in_schema"])
			require.Equal(t, codec, md["codec"], "%s: %s", file, p)
			st, _ := md["statistics"].(map[string]any)
			require.NotNil(t, st, "%s: %s: statistics", file, p)
			require.NotNil(t, st["null_count"], "%s: %s: null_count", file, p)
			if n, _ := md["num_values"].(interface{ Int64() (int64, error) }); n != nil {
				nv, _ := n.Int64()
				nulls, _ := st["null_count"].(interface{ Int64() (int64, error) }).Int64()
				if nv > nulls && md["type"] != "BYTE_ARRAY" {
					require.NotNil(t, st["min_value"], "%s: %s: min_value", file, p)
					require.NotNil(t, st["max_value"], "%s: %s: max_value", file, p)
				}
			}
		}
	}
}

// RequireStatistics: the statistics of every column chunk outside a list
// or map are those of its values, as readers that skip row groups by them
// (Athena, Spark, DuckDB) need: the null count, and the least and the
// greatest value (strings in byte order, as the spec orders them) where
// the writer gives them. Wrong ones make a query skip rows that match.
func RequireStatistics(t testing.TB, file string, f File) {
	t.Helper()
	groups, _ := f.Meta["row_groups"].([]any)
	first := 0
	for gi, g := range groups {
		g := g.(map[string]any)
		n, err := g["num_rows"].(json.Number).Int64()
		require.NoError(t, err)
		rows := f.Rows[first : first+int(n)]
		first += int(n)
		for _, c := range g["columns"].([]any) {
			md := c.(map[string]any)["meta_data"].(map[string]any)
			var path []string
			for _, p := range md["path_in_schema"].([]any) {
				path = append(path, p.(string))
			}
			if slices.ContainsFunc(path, func(p string) bool { return p == "list" || p == "key_value" }) {
				continue
			}
			where := fmt.Sprintf("%s: row group %d: %s", file, gi, strings.Join(path, "."))
			var nulls int64
			var least, greatest any
			for _, row := range rows {
				var v any = row
				for _, p := range path {
					if m, ok := v.(map[string]any); ok {
						v = m[p]
					} else {
						v = nil
					}
				}
				if v == nil {
					nulls++
					continue
				}
				if least == nil || statLess(t, v, least) {
					least = v
				}
				if greatest == nil || statLess(t, greatest, v) {
					greatest = v
				}
			}
			st := md["statistics"].(map[string]any)
			require.Equal(t, json.Number(fmt.Sprint(nulls)), st["null_count"], "%s: null_count", where)
			if st["min_value"] != nil {
				require.Equal(t, least, st["min_value"], "%s: min_value", where)
			}
			if st["max_value"] != nil {
				require.Equal(t, greatest, st["max_value"], "%s: max_value", where)
			}
		}
	}
	require.Equal(t, len(f.Rows), first, "%s: the row groups hold every row", file)
}

// statLess orders two values of one column as Parquet's statistics do:
// numbers by value, booleans false first, strings (and timestamps as
// their ISO text) by their bytes.
func statLess(t testing.TB, a, b any) bool {
	t.Helper()
	switch a := a.(type) {
	case json.Number:
		x, err1 := a.Int64()
		y, err2 := b.(json.Number).Int64()
		require.NoError(t, err1)
		require.NoError(t, err2)
		return x < y
	case bool:
		return !a && b.(bool)
	case string:
		return a < b.(string)
	}
	t.Fatalf("no order for %T", a)
	return false
}
