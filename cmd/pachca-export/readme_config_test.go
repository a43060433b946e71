package main

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/pipeline"
	"github.com/pachca-export/pachca-export/sinks/kafkasink"
	"github.com/pachca-export/pachca-export/sinks/s3sink"
)

// keyPaths lists the YAML keys under type t as dotted paths below prefix
// ("source.filters.actor_id"; a list of mappings as "rules[]"), as the
// loader accepts them: yaml tags, inline structs included.
func keyPaths(t reflect.Type, prefix string) []string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		if t.Kind() == reflect.Slice {
			if t.Elem().Kind() != reflect.Struct {
				return nil
			}
			prefix += "[]"
		}
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t == reflect.TypeFor[yaml.Node]() {
		return nil
	}
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if strings.Contains(opts, "inline") {
			out = append(out, keyPaths(f.Type, prefix)...)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		p := name
		if prefix != "" {
			p = prefix + "." + name
		}
		out = append(out, p)
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[yaml.Node]() && f.Type.PkgPath() != "time" ||
			f.Type.Kind() == reflect.Pointer || f.Type.Kind() == reflect.Slice {
			out = append(out, keyPaths(f.Type, p)...)
		}
	}
	return out
}

// sinkTypes are the settings of each sinks[].type.
var sinkTypes = map[string]reflect.Type{
	"ndjson":  reflect.TypeFor[config.FileSink](),
	"parquet": reflect.TypeFor[config.FileSink](),
	"s3":      reflect.TypeFor[s3sink.Config](),
	"kafka":   reflect.TypeFor[kafkasink.Config](),
	"stdout":  reflect.TypeFor[config.StdoutSink](),
}

// snippetKeys adds to out the key paths the YAML tree n gives, below prefix;
// sinks entries as sinks[TYPE].
func snippetKeys(n *yaml.Node, prefix string, out map[string]bool) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			snippetKeys(c, prefix, out)
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			p := prefix + "[]"
			if prefix == "sinks" && c.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(c.Content); i += 2 {
					if c.Content[i].Value == "type" {
						p = "sinks[" + c.Content[i+1].Value + "]"
					}
				}
			}
			snippetKeys(c, p, out)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := n.Content[i].Value
			if prefix != "" {
				p = prefix + "." + p
			}
			if strings.HasSuffix(prefix, "sources") {
				continue // the names of OCSF classes, checked by the loader
			}
			out[p] = true
			snippetKeys(n.Content[i+1], p, out)
		}
	}
}

// referenceKeys reads the key column of the configuration reference: each
// code span a dotted path, or a sibling of the path before it
// ("`source.filters.actor_id`, `actor_type`").
func referenceKeys(cell string) []string {
	var keys []string
	parent := ""
	for _, m := range codeSpan.FindAllStringSubmatch(cell, -1) {
		k := m[1]
		if strings.Contains(k, ".") {
			parent = k[:strings.LastIndex(k, ".")+1]
		} else {
			k = parent + k
		}
		keys = append(keys, k)
	}
	return keys
}

// withKey is the YAML of a mapping giving dotted path the value v.
func withKey(path, v string) string {
	var b strings.Builder
	for i, seg := range strings.Split(path, ".") {
		b.WriteString("\n" + strings.Repeat("  ", i) + seg + ":")
	}
	b.WriteString(" " + v + "\n")
	return b.String()[1:]
}

// sameConfig compares two loaded configurations, an empty list and none
// alike (`[]` in the file is the default nil).
func sameConfig(a, b any) bool {
	return reflect.DeepEqual(normalize(reflect.ValueOf(a)), normalize(reflect.ValueOf(b)))
}

func normalize(v reflect.Value) any {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		return normalize(v.Elem())
	case reflect.Struct:
		m := map[string]any{}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				m[v.Type().Field(i).Name] = normalize(v.Field(i))
			}
		}
		return m
	case reflect.Slice:
		var s []any
		for i := range v.Len() {
			s = append(s, normalize(v.Index(i)))
		}
		return s
	case reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return fmt.Sprint(v.Interface())
	}
	if v.IsValid() && v.CanInterface() {
		return v.Interface()
	}
	return nil
}

// TestREADMEConfigReference: the configuration reference and the sinks
// table of the README against the loader. Every key they name is one the
// loader accepts, and every default they state is the default (the file
// giving it loads to what the file leaving it out does). The reverse too:
// every key the loader accepts is named there or given in one of the
// README's snippets, so that no setting is undocumented.
func TestREADMEConfigReference(t *testing.T) {
	doc := readREADME(t)
	ref := section(t, "## Configuration: pipeline.yaml", "Relative paths in the file")
	accepted := map[string]bool{"sinks": true}
	for _, k := range keyPaths(reflect.TypeFor[config.Config](), "") {
		accepted[k] = true
	}
	documented := map[string]bool{}
	base, err := parseSnippet("")
	require.NoError(t, err)
	rows := tableRows(ref)
	require.NotEmpty(t, rows)
	for _, row := range rows[1:] {
		for _, k := range referenceKeys(row[0]) {
			require.True(t, accepted[k], "README, configuration reference: %s is not a key of pipeline.yaml", k)
			documented[k] = true
			def := row[1]
			if def == "" || len(referenceKeys(row[0])) > 1 || strings.Contains(def, "<") || k == "sinks" {
				continue
			}
			def = strings.Trim(def, "`")
			cfg, err := parseSnippet(withKey(k, def))
			require.NoError(t, err, "README, configuration reference: %s: %s", k, def)
			require.True(t, sameConfig(base, cfg), "README, configuration reference: %s: the default is not %s", k, def)
		}
	}
	// Keys the prose names by their paths, and the snippets give.
	for _, s := range doc.spans() {
		if k, _, _ := strings.Cut(s.text, ":"); accepted[k] {
			documented[k] = true
		}
	}
	sinkKeys := map[string]map[string]bool{} // type -> keys the snippets give
	for _, s := range doc.yamlSnippets() {
		var n yaml.Node
		require.NoError(t, yaml.Unmarshal([]byte(s.text), &n), "README.md:%d", s.line)
		keys := map[string]bool{}
		snippetKeys(&n, "", keys)
		for k := range keys {
			if typ, rest, ok := strings.Cut(strings.TrimPrefix(k, "sinks["), "]."); ok && strings.HasPrefix(k, "sinks[") {
				if sinkKeys[typ] == nil {
					sinkKeys[typ] = map[string]bool{}
				}
				sinkKeys[typ][rest] = true
				continue
			}
			documented[k] = true
		}
	}
	var undocumented []string
	for k := range accepted {
		container := false // a mapping is documented by its keys
		for other := range accepted {
			container = container || strings.HasPrefix(other, k+".") || strings.HasPrefix(other, k+"[].")
		}
		if !documented[k] && !container {
			undocumented = append(undocumented, k)
		}
	}
	slices.Sort(undocumented)
	require.Empty(t, undocumented, "pipeline.yaml keys in no row of the README's configuration reference, no snippet, and no `KEY: ...` of its prose")

	// Sinks: each type's row names its keys (the leaf of a nested one:
	// `tls` (`enabled`, ...)); its defaults are the loader's.
	sinkRows := map[string]string{}
	for _, row := range tableRows(section(t, "Sinks:", "The S3 sink's credentials"))[1:] {
		sinkRows[strings.Trim(row[0], "`")] = row[1]
	}
	require.ElementsMatch(t, config.SinkTypes, slices.Collect(mapKeys(sinkRows)), "README's sinks table: one row per sinks[].type")
	for typ, row := range sinkRows {
		named := map[string]bool{}
		for _, m := range codeSpan.FindAllStringSubmatch(row, -1) {
			for _, k := range strings.Split(m[1], "/") {
				k, _, _ = strings.Cut(k, ":")
				named[k] = true
			}
		}
		for _, k := range keyPaths(sinkTypes[typ], "") {
			leaf := k[strings.LastIndex(k, ".")+1:]
			if onlyOther[typ+"."+strings.Split(k, ".")[0]] {
				continue
			}
			require.True(t, named[leaf] || sinkKeys[typ][k] || sinkKeys["s3"][k] && named[strings.Split(k, ".")[0]],
				"sinks[].type %s takes the key %s, which its row of the README's sinks table does not name", typ, k)
		}
		for _, d := range statedDefaults(row) {
			without, with := sinkSnippet(typ, ""), sinkSnippet(typ, d[0]+": "+d[1])
			a, err := parseSnippet(without)
			require.NoError(t, err, without)
			b, err := parseSnippet(with)
			require.NoError(t, err, "README's sinks table: %s: %s: %s", typ, d[0], d[1])
			require.True(t, sameSinks(a, b), "README's sinks table: %s: the default of %s is not %s", typ, d[0], d[1])
		}
	}
}

// sameSinks reports whether a and b write the same with the same state:
// a file sink's compression left out is its type's default.
func sameSinks(a, b *config.Config) bool {
	if !reflect.DeepEqual(pipeline.Identity(a), pipeline.Identity(b)) {
		return false
	}
	for _, c := range []*config.Config{a, b} {
		for _, s := range c.Sinks {
			if s.File != nil {
				s.File.Compression = s.FileCompression()
			}
		}
	}
	return sameConfig(a.Sinks, b.Sinks)
}

// onlyOther are sink keys the parser takes for a type but the README names
// for the others only, since the type takes nothing but their defaults.
var onlyOther = map[string]bool{
	"ndjson.layout": true, "ndjson.security_lake": true, // security_lake writes Parquet only
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// statedDefault matches "`key`: `value` (default", "`key` (`value`
// default" and "`key` (default value)" in a row of the sinks table.
var statedDefault = []*regexp.Regexp{
	regexp.MustCompile("`([a-z_]+)`: `([^`]+)` \\(default"),
	regexp.MustCompile("`([a-z_]+)` \\(`([^`]+)` default"),
	regexp.MustCompile("`([a-z_]+)` \\(default ([a-z0-9]+)\\)"),
}

// statedDefaults are the key and value pairs of the defaults a row states.
func statedDefaults(row string) [][2]string {
	var out [][2]string
	for _, re := range statedDefault {
		for _, m := range re.FindAllStringSubmatch(row, -1) {
			out = append(out, [2]string{m[1], m[2]})
		}
	}
	return out
}

// sinkSnippet is a configuration of one sink of type typ with its required
// keys and the line extra.
func sinkSnippet(typ, extra string) string {
	s := "sinks:\n  - type: " + typ + "\n"
	switch typ {
	case "ndjson", "parquet":
		s += "    dir: out\n"
	case "s3":
		s += "    bucket: audit\n    region: us-east-1\n"
	case "kafka":
		s += "    brokers: [127.0.0.1:9092]\n    topic: t\n"
	}
	if extra != "" {
		s += "    " + extra + "\n"
	}
	return s
}
