// Package configschema generates the JSON Schema (draft 2020-12) of
// pipeline.yaml, for editors that validate and complete YAML against one
// (VS Code's YAML extension, JetBrains IDEs). The shape comes from the
// config structs by reflection (github.com/invopop/jsonschema over their
// yaml tags); what reflection cannot say, the descriptions, the static
// rules of Validate and the union of sinks[].type, comes from keys.go.
// It writes config/pipeline.schema.json (make config-schema), which the
// binary embeds (config.JSONSchema) and prints (schema --config): the
// generator and its libraries are no part of the binary.
//
// The schema accepts what config accepts: ${VAR} wherever a value may be
// (the file is expanded before it is checked), null for every key (the
// default applies), any scalar for a key that holds text (a YAML integer
// decodes into a string: recipients: [10001]). Rules across keys (token or
// token_file, period.from before period.to, a security_lake layout's schema)
// stay config's: `pachca-export check` reports them.
package configschema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/invopop/jsonschema"
	orderedmap "github.com/pb33f/ordered-map/v2"

	"github.com/pachca-export/pachca-export/config"
	"github.com/pachca-export/pachca-export/sinks/kafkasink"
	"github.com/pachca-export/pachca-export/sinks/s3sink"
)

// File is the schema's name beside a pipeline.yaml, as the README and the
// modelines name it (config/pipeline.schema.json in the repository).
const File = "pipeline.schema.json"

// Refs of the definitions every schema holds.
const (
	envRef      = "#/$defs/env"
	durationRef = "#/$defs/duration"
	positiveRef = "#/$defs/positive_duration"
)

// envPattern matches a value holding a reference config expands
// (config's envRef): such a value is checked only once expanded.
const envPattern = `\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}`

// textPattern matches a value in which every ${ starts such a reference:
// config refuses ${ VAR } and ${VAR without its brace.
const textPattern = `^([^$]|\$+[^${]|\$+$|\$*` + envPattern + `)*$`

// durationPattern is what time.ParseDuration reads, without a sign: every
// duration of the file is 0 or more.
const durationPattern = `^\+?(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$`

// Generate returns the schema as indented JSON, ending in a newline. It
// fails naming every key of the structs that keys.go does not describe,
// and every entry of keys.go that names no key.
func Generate() ([]byte, error) {
	g := &generator{keys: keys(), used: map[string]bool{}}
	root := g.reflect(config.Default())
	root.Version = jsonschema.Version
	root.Title = "pachca-export pipeline.yaml"
	root.Description = "The configuration of pachca-export (pachca-export schema --config prints this schema)."
	root.Required = []string{"sinks"}
	g.object(root, reflect.ValueOf(config.Default()), "")
	// sinks is decoded apart (config's document), entry by entry: it goes
	// where the README's table has it, before state.
	props := orderedmap.New[string, *jsonschema.Schema]()
	for name, p := range root.Properties.FromOldest() {
		if name == "state" {
			props.Set("sinks", g.sinks())
		}
		props.Set(name, p)
	}
	root.Properties = props
	root.Definitions = jsonschema.Definitions{
		"env": {Type: "string", Pattern: envPattern, AllOf: []*jsonschema.Schema{{Pattern: textPattern}},
			Description: "${NAME} or ${NAME:-default}: expanded from the environment before the file is checked"},
		"duration": {AnyOf: []*jsonschema.Schema{
			{Type: "string", Pattern: durationPattern},
			{Const: 0},
		}, Description: "a duration: a number with a unit (500ms, 30s, 2m, 1h), or 0"},
		// A digit other than 0 somewhere: not 0, 0s, 0.0h.
		"positive_duration": {AllOf: []*jsonschema.Schema{{Ref: durationRef}}, Not: &jsonschema.Schema{Const: 0},
			Pattern: "[1-9]", Description: "a duration above 0: a number with a unit (500ms, 30s, 2m, 1h)"},
	}
	var errs []error
	for _, p := range g.missing {
		errs = append(errs, fmt.Errorf("%s: no description in config/configschema/keys.go", p))
	}
	for _, p := range slices.Sorted(func(yield func(string) bool) {
		for p := range g.keys {
			if !g.used[p] && !yield(p) {
				return
			}
		}
	}) {
		errs = append(errs, fmt.Errorf("%s: described in config/configschema/keys.go but no such key", p))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // patterns and descriptions read as written: ->, <source>
	enc.SetIndent("", "  ")
	if err := enc.Encode(root); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

type generator struct {
	keys    map[string]key
	used    map[string]bool
	missing []string
}

// reflect is the bare schema of v's type: one tree, no $id, nothing
// required (keys.go says what is), time.Duration as the duration definition.
func (g *generator) reflect(v any) *jsonschema.Schema {
	r := &jsonschema.Reflector{
		FieldNameTag:               "yaml",
		DoNotReference:             true,
		ExpandedStruct:             true,
		Anonymous:                  true,
		RequiredFromJSONSchemaTags: true,
		// Two types named Config (config's, alerts') must not be taken for one.
		Namer: func(t reflect.Type) string { return t.PkgPath() + "." + t.Name() },
		Mapper: func(t reflect.Type) *jsonschema.Schema {
			if t == reflect.TypeFor[time.Duration]() {
				return &jsonschema.Schema{Ref: durationRef}
			}
			return nil
		},
	}
	s := r.Reflect(v)
	s.Version, s.Definitions = "", nil
	return s
}

// lookup finds the key of path, trying each of paths in turn (a sink's key
// by its type, its group, then every sink's); it records a key not found.
func (g *generator) lookup(paths ...string) key {
	for _, p := range paths {
		if k, ok := g.keys[p]; ok {
			g.used[p] = true
			return k
		}
	}
	g.missing = append(g.missing, paths[0])
	return key{}
}

// candidates are the paths keys.go may describe path under: itself, and
// for a sink's key ("sinks.ndjson.dir") its group's and every sink's.
func candidates(path string) []string {
	rest, ok := strings.CutPrefix(path, "sinks.")
	if !ok {
		return []string{path}
	}
	typ, sub, ok := strings.Cut(rest, ".")
	if !ok {
		return []string{path}
	}
	out := []string{path}
	if typ == "ndjson" || typ == "parquet" {
		out = append(out, "sinks.file."+sub)
	}
	return append(out, "sinks.*."+sub)
}

// object completes the properties of the struct schema s, whose default
// values are v (the zero Value for none), at path.
func (g *generator) object(s *jsonschema.Schema, v reflect.Value, path string) {
	if s.Properties == nil {
		return
	}
	for name, p := range s.Properties.FromOldest() {
		sub := name
		if path != "" {
			sub = path + "." + name
		}
		s.Properties.Set(name, g.property(p, field(v, name), sub))
	}
}

// property is the schema of the key at path, reflected as s, its default
// v.
func (g *generator) property(s *jsonschema.Schema, v reflect.Value, path string) *jsonschema.Schema {
	k := g.lookup(candidates(path)...)
	var out *jsonschema.Schema
	switch {
	case s.Ref == durationRef && k.positive:
		out = orEnv(&jsonschema.Schema{Ref: positiveRef}, true)
	case s.Ref == durationRef:
		out = orEnv(&jsonschema.Schema{Ref: durationRef}, true)
	case s.Type == "object" && s.Properties != nil: // a struct
		g.object(s, v, path)
		s.Required = k.required
		s.AllOf = k.allOf
		out = withTypes(s, "object", "null")
	case s.Type == "object": // a mapping of free keys
		s.AdditionalProperties = scalar(s.AdditionalProperties, k, true)
		if k.names != nil {
			s.PropertyNames = &jsonschema.Schema{Enum: anys(k.names)}
		}
		out = withTypes(s, "object", "null")
	case s.Type == "array":
		if s.Items.Type == "object" && s.Items.Properties != nil { // a list of structs
			item := g.lookup(path + "[]")
			g.object(s.Items, reflect.Value{}, path+"[]")
			s.Items.Required = item.required
			s.Items.AllOf = item.allOf
			s.Items.Description = item.desc
		} else {
			s.Items = scalar(s.Items, k, true)
		}
		if k.minItems > 0 {
			s.MinItems = &k.minItems
		}
		s.UniqueItems = k.unique
		out = withTypes(s, "array", "null")
	default:
		out = scalar(s, k, false)
	}
	out.Description = k.desc
	out.Default = defaultOf(v)
	return out
}

// scalar is the schema of a scalar value reflected as s, with k's rules;
// item for the entry of a list or mapping, which may not be null (config
// refuses an empty entry).
func scalar(s *jsonschema.Schema, k key, item bool) *jsonschema.Schema {
	var alts []*jsonschema.Schema
	switch s.Type {
	case "string":
		switch {
		case k.enum != nil:
			alts = append(alts, &jsonschema.Schema{Enum: anys(k.enum)})
		case k.pattern != "":
			pattern := k.pattern
			if k.orEmpty {
				pattern = "^$|" + pattern
			}
			alts = append(alts, &jsonschema.Schema{Type: "string", Pattern: pattern})
			// Config matches the text of a number or a flag too.
			re := regexp.MustCompile(pattern)
			if slices.ContainsFunc(numberTexts, re.MatchString) {
				alts = append(alts, bounded(&jsonschema.Schema{Type: "number"}, k))
			}
			if re.MatchString("true") || re.MatchString("false") {
				alts = append(alts, &jsonschema.Schema{Type: "boolean"})
			}
		default:
			// Any scalar: config decodes its text; ${VAR} is a string.
			text := &jsonschema.Schema{Pattern: textPattern}
			if item {
				return withTypes(text, "string", "number", "boolean")
			}
			return withTypes(text, "string", "number", "boolean", "null")
		}
	case "integer", "number":
		alts = append(alts, bounded(&jsonschema.Schema{Type: s.Type}, k))
	default:
		alts = append(alts, &jsonschema.Schema{Type: s.Type})
	}
	out := &jsonschema.Schema{AnyOf: alts}
	if len(alts) == 1 {
		out = alts[0]
	}
	return orEnv(out, !item)
}

// numberTexts are texts of YAML numbers: a pattern that matches one of
// them may match a number's text (no pattern of keys.go matches some
// numbers' texts but none of these).
var numberTexts = []string{"0", "1", "12", "123", "10001", "0640", "123456789012", "1.5", "1e3", "-1"}

func bounded(s *jsonschema.Schema, k key) *jsonschema.Schema {
	s.Minimum, s.Maximum = json.Number(k.min), json.Number(k.max)
	return s
}

// orEnv is s, or a ${VAR}, or (nullable) null: the key left empty.
func orEnv(s *jsonschema.Schema, nullable bool) *jsonschema.Schema {
	alts := []*jsonschema.Schema{s}
	if s.AnyOf != nil && s.Description == "" { // one anyOf, not two nested
		alts = slices.Clone(s.AnyOf)
	}
	alts = append(alts, &jsonschema.Schema{Ref: envRef})
	if nullable {
		alts = append(alts, &jsonschema.Schema{Type: "null"})
	}
	return &jsonschema.Schema{AnyOf: alts}
}

// withTypes gives s several types (invopop's Type holds one).
func withTypes(s *jsonschema.Schema, types ...string) *jsonschema.Schema {
	s.Type = ""
	if s.Extras == nil {
		s.Extras = map[string]any{}
	}
	s.Extras["type"] = types
	return s
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// sinks is the schema of the sinks list: a union on type, each type with
// its own keys and defaults, and a type given as ${VAR}, whose keys only
// config can check once it is expanded.
func (g *generator) sinks() *jsonschema.Schema {
	k := g.lookup("sinks")
	var branches []*jsonschema.Schema
	for _, typ := range config.SinkTypes {
		var v any
		switch typ {
		case "ndjson", "parquet":
			f := config.FileSink{}
			f.SetDefaults()
			f.Compression = config.DefaultFileCompression(typ)
			v = f
		case "s3":
			c := s3sink.Config{}
			c.SetDefaults()
			v = c
		case "kafka":
			c := kafkasink.Config{}
			c.SetDefaults()
			v = c
		case "stdout":
			v = config.StdoutSink{}
		}
		s := g.reflect(v)
		path := "sinks." + typ
		g.object(s, reflect.ValueOf(v), path)
		desc := sinkDescs[typ]
		props := orderedmap.New[string, *jsonschema.Schema]()
		props.Set("type", &jsonschema.Schema{Const: typ, Description: "the sink's type: " + strings.Join(config.SinkTypes, ", ")})
		if s.Properties != nil {
			for name, p := range s.Properties.FromOldest() {
				props.Set(name, p)
			}
		}
		branches = append(branches, &jsonschema.Schema{
			Title: typ + " sink", Description: desc.desc, Type: "object",
			Properties: props, Required: append([]string{"type"}, desc.required...),
			AdditionalProperties: jsonschema.FalseSchema,
		})
	}
	envType := orderedmap.New[string, *jsonschema.Schema]()
	envType.Set("type", &jsonschema.Schema{Ref: envRef, Description: "the sink's type, from the environment"})
	branches = append(branches, &jsonschema.Schema{
		Title: "sink of a type given as ${VAR}", Description: "its keys are checked once the type is expanded",
		Type: "object", Properties: envType, Required: []string{"type"},
	})
	return &jsonschema.Schema{Type: "array", MinItems: &k.minItems, Description: k.desc,
		Items: &jsonschema.Schema{OneOf: branches}}
}

// field is the value of the key name of the struct v (inlined structs
// searched), or the zero Value.
func field(v reflect.Value, name string) reflect.Value {
	if !v.IsValid() {
		return reflect.Value{}
	}
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return reflect.Value{}
		}
		v = v.Elem()
	}
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		tag, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case !f.IsExported() || tag == "-":
		case strings.Contains(opts, "inline"):
			if w := field(v.Field(i), name); w.IsValid() {
				return w
			}
		case tag == name:
			return v.Field(i)
		}
	}
	return reflect.Value{}
}

// defaultOf is v as the file would give it, or nil for a zero value: a
// duration as "2m", not 120000000000.
func defaultOf(v reflect.Value) any {
	if !v.IsValid() || v.IsZero() {
		return nil
	}
	if v.Type() == reflect.TypeFor[time.Duration]() {
		s := time.Duration(v.Int()).String()
		if t, ok := strings.CutSuffix(s, "m0s"); ok {
			s = t + "m"
		}
		if t, ok := strings.CutSuffix(s, "h0m"); ok {
			s = t + "h"
		}
		return s
	}
	switch v.Kind() {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int64, reflect.Float64:
		return v.Interface()
	}
	return nil
}
