// Package ocsfschema validates OCSF 1.3.0 events, as decoded JSON, against
// the schema source (the JSON files of github.com/ocsf/ocsf-schema at tag
// 1.3.0). It compiles what the OCSF server compiles: classes and objects
// with their `extends` chains, `$include`d profiles and includes, the
// dictionary's types and enums. Tests use it; the exporter does not.
//
// The embedded copy under testdata/ocsf-1.3.0 is the subset of the shared
// reference the tests need (see testdata/README.md), plus the two files of
// includes/ that the shared reference lacks.
package ocsfschema

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Version is the OCSF version of the embedded schema.
const Version = "1.3.0"

//go:embed all:testdata/ocsf-1.3.0
var vendored embed.FS

// VendoredDir is the directory of the embedded copy, relative to this package.
const VendoredDir = "testdata/ocsf-1.3.0"

// Vendored returns the embedded schema source as a file system rooted at the
// schema's top directory.
func Vendored() fs.FS {
	sub, err := fs.Sub(vendored, VendoredDir)
	if err != nil {
		panic(err) // the directory is embedded: cannot happen
	}
	return sub
}

// Attr is one compiled attribute of a class or object.
type Attr struct {
	Name        string
	Type        string // a scalar type (string_t, ...) or an object name
	IsArray     bool
	Requirement string // required, recommended or optional
	Profile     string // non-empty: the attribute belongs to this profile
	Enum        map[string]string
	Sibling     string
	Deprecated  bool
}

// Class is a compiled event class.
type Class struct {
	UID         int64
	Name        string
	Caption     string
	CategoryUID int64
	Category    string
	Attrs       map[string]*Attr
	Profiles    []string
	Constraints map[string][]string
}

// Object is a compiled object.
type Object struct {
	Name        string
	Attrs       map[string]*Attr
	Constraints map[string][]string
}

// scalarType is a data type of the dictionary's types section, resolved to
// its base type with the constraints of the whole chain.
type scalarType struct {
	base   string // string_t, integer_t, long_t, float_t, boolean_t, json_t
	regex  []*regexp.Regexp
	maxLen int
	rng    []int64
}

// Schema is a compiled OCSF schema. It is safe for concurrent use once Load
// returned.
type Schema struct {
	dict       map[string]map[string]any
	types      map[string]scalarType
	categories map[string]categoryDef
	classes    map[int64]*Class
	objects    map[string]*Object
}

type categoryDef struct {
	uid     int64
	caption string
}

// Load compiles the embedded schema.
func Load() (*Schema, error) { return LoadFS(Vendored()) }

// LoadFS compiles the schema source in fsys (the layout of the OCSF schema
// repository): every event class under events/ and every object that an
// attribute of a class or object refers to, transitively.
func LoadFS(fsys fs.FS) (*Schema, error) {
	s := &Schema{classes: map[int64]*Class{}, objects: map[string]*Object{}, categories: map[string]categoryDef{}}
	var dict struct {
		Attributes map[string]map[string]any
		Types      struct{ Attributes map[string]map[string]any }
	}
	if err := readJSON(fsys, "dictionary.json", &dict); err != nil {
		return nil, err
	}
	s.dict = dict.Attributes
	types, err := compileTypes(dict.Types.Attributes)
	if err != nil {
		return nil, err
	}
	s.types = types
	var cats struct{ Attributes map[string]map[string]any }
	if err := readJSON(fsys, "categories.json", &cats); err != nil {
		return nil, err
	}
	for name, c := range cats.Attributes {
		uid, _ := num(c["uid"])
		caption, _ := c["caption"].(string)
		s.categories[name] = categoryDef{uid: uid, caption: caption}
	}
	c := compiler{fsys: fsys, s: s, files: map[string]string{}, defs: map[string]map[string]any{}}
	if err := c.index(); err != nil {
		return nil, err
	}
	for name, p := range c.files {
		if !strings.HasPrefix(p, "events/") || strings.Contains(name, ":") {
			continue
		}
		def, err := c.def(name)
		if err != nil {
			return nil, err
		}
		if _, ok := def["uid"]; !ok {
			continue // an abstract parent (iam, finding, application) or base_event, compiled below
		}
		if err := c.class(name); err != nil {
			return nil, err
		}
	}
	if err := c.class("base_event"); err != nil {
		return nil, err
	}
	return s, nil
}

// Class returns the compiled class of a class_uid.
func (s *Schema) Class(uid int64) (*Class, bool) {
	c, ok := s.classes[uid]
	return c, ok
}

// Object returns a compiled object by name.
func (s *Schema) Object(name string) (*Object, bool) {
	o, ok := s.objects[name]
	return o, ok
}

func readJSON(fsys fs.FS, name string, v any) error {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return fmt.Errorf("ocsfschema: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("ocsfschema: %s: %w", name, err)
	}
	return nil
}

func compileTypes(defs map[string]map[string]any) (map[string]scalarType, error) {
	out := map[string]scalarType{}
	var resolve func(name string, depth int) (scalarType, error)
	resolve = func(name string, depth int) (scalarType, error) {
		if t, ok := out[name]; ok {
			return t, nil
		}
		d, ok := defs[name]
		if !ok || depth > 8 {
			return scalarType{}, fmt.Errorf("ocsfschema: unknown type %q", name)
		}
		var t scalarType
		if parent, ok := d["type"].(string); ok {
			pt, err := resolve(parent, depth+1)
			if err != nil {
				return t, err
			}
			t = pt
			t.regex = slices.Clone(pt.regex)
		} else {
			t.base = name
		}
		if re, ok := d["regex"].(string); ok {
			r, err := regexp.Compile(re)
			if err != nil {
				return t, fmt.Errorf("ocsfschema: type %s: regex: %w", name, err)
			}
			t.regex = append(t.regex, r)
		}
		if n, ok := num(d["max_len"]); ok {
			t.maxLen = int(n)
		}
		if r, ok := d["range"].([]any); ok && len(r) == 2 {
			lo, _ := num(r[0])
			hi, _ := num(r[1])
			t.rng = []int64{lo, hi}
		}
		out[name] = t
		return t, nil
	}
	for name := range defs {
		if _, err := resolve(name, 0); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func num(v any) (int64, bool) {
	switch n := v.(type) {
	case float64:
		return int64(n), true
	case json.Number:
		i, err := n.Int64()
		return i, err == nil
	}
	return 0, false
}

// compiler resolves names to files and compiles classes and objects.
type compiler struct {
	fsys  fs.FS
	s     *Schema
	files map[string]string // "events:<name>" or "objects:<name>" -> path
	defs  map[string]map[string]any
}

func (c *compiler) index() error {
	for _, dir := range []string{"events", "objects"} {
		err := fs.WalkDir(c.fsys, dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || path.Ext(p) != ".json" {
				return err
			}
			var def map[string]any
			if err := readJSON(c.fsys, p, &def); err != nil {
				return err
			}
			name, _ := def["name"].(string)
			if name == "" {
				return fmt.Errorf("ocsfschema: %s: no name", p)
			}
			c.files[dir+":"+name] = p
			c.defs[dir+":"+name] = def
			if dir == "events" {
				c.files[name] = p
				c.defs[name] = def
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func (c *compiler) def(name string) (map[string]any, error) {
	d, ok := c.defs[name]
	if !ok {
		return nil, fmt.Errorf("ocsfschema: no definition of %q", name)
	}
	return d, nil
}

// attrDefs is the raw attribute definitions of one file after its $include
// files were merged in (profile attributes annotated with their profile).
func (c *compiler) attrDefs(def map[string]any) (map[string]map[string]any, error) {
	out := map[string]map[string]any{}
	attrs, _ := def["attributes"].(map[string]any)
	if inc, ok := attrs["$include"].([]any); ok {
		for _, p := range inc {
			ps, _ := p.(string)
			var f struct {
				Name       string
				Meta       string
				Attributes map[string]map[string]any
			}
			if err := readJSON(c.fsys, ps, &f); err != nil {
				return nil, err
			}
			for name, a := range f.Attributes {
				a = maps.Clone(a)
				if f.Meta == "profile" {
					a["profile"] = f.Name
				}
				out[name] = merge(out[name], a)
			}
		}
	}
	for name, a := range attrs {
		if name == "$include" {
			continue
		}
		m, _ := a.(map[string]any)
		out[name] = merge(out[name], m)
	}
	return out, nil
}

// merge deep-merges b over a (enums are united, b's captions win), as the
// OCSF server merges a child's attribute over its parent's.
func merge(a, b map[string]any) map[string]any {
	out := maps.Clone(a)
	if out == nil {
		out = map[string]any{}
	}
	for k, v := range b {
		am, aok := out[k].(map[string]any)
		bm, bok := v.(map[string]any)
		if aok && bok {
			out[k] = merge(am, bm)
			continue
		}
		out[k] = v
	}
	return out
}

// compileAttrs resolves raw attribute definitions against the dictionary.
func (c *compiler) compileAttrs(owner string, raw map[string]map[string]any) (map[string]*Attr, error) {
	out := map[string]*Attr{}
	for name, a := range raw {
		d, ok := c.s.dict[name]
		if !ok {
			return nil, fmt.Errorf("ocsfschema: %s.%s: not in the dictionary", owner, name)
		}
		full := merge(d, a)
		attr := &Attr{Name: name}
		attr.Type, _ = full["type"].(string)
		attr.IsArray, _ = full["is_array"].(bool)
		attr.Requirement, _ = full["requirement"].(string)
		if attr.Requirement == "" {
			attr.Requirement = "optional"
		}
		attr.Profile, _ = full["profile"].(string) // a JSON null (profile reset) reads as ""
		attr.Sibling, _ = full["sibling"].(string)
		_, attr.Deprecated = full["@deprecated"]
		if e, ok := full["enum"].(map[string]any); ok {
			attr.Enum = map[string]string{}
			for k, v := range e {
				m, _ := v.(map[string]any)
				attr.Enum[k], _ = m["caption"].(string)
			}
		}
		if attr.Type == "" {
			return nil, fmt.Errorf("ocsfschema: %s.%s: no type", owner, name)
		}
		out[name] = attr
	}
	return out, nil
}

func constraints(def map[string]any) map[string][]string {
	raw, ok := def["constraints"].(map[string]any)
	if !ok {
		return nil
	}
	out := map[string][]string{}
	for k, v := range raw {
		l, _ := v.([]any)
		for _, x := range l {
			if s, ok := x.(string); ok {
				out[k] = append(out[k], s)
			}
		}
	}
	return out
}

// classChain returns the raw merged attributes, category, profiles and
// constraints of an event definition and its parents.
func (c *compiler) classChain(name string, depth int) (attrs map[string]map[string]any, category string, profiles []string, cons map[string][]string, err error) {
	def, err := c.def(name)
	if err != nil {
		return nil, "", nil, nil, err
	}
	attrs = map[string]map[string]any{}
	if parent, ok := def["extends"].(string); ok && depth < 8 {
		attrs, category, profiles, cons, err = c.classChain(parent, depth+1)
		if err != nil {
			return nil, "", nil, nil, err
		}
	}
	own, err := c.attrDefs(def)
	if err != nil {
		return nil, "", nil, nil, err
	}
	for k, v := range own {
		attrs[k] = merge(attrs[k], v)
	}
	if cat, ok := def["category"].(string); ok {
		category = cat
	}
	if ps, ok := def["profiles"].([]any); ok {
		for _, p := range ps {
			if s, ok := p.(string); ok && !slices.Contains(profiles, s) {
				profiles = append(profiles, s)
			}
		}
	}
	if cc := constraints(def); cc != nil {
		cons = cc
	}
	return attrs, category, profiles, cons, nil
}

func (c *compiler) class(name string) error {
	def, err := c.def(name)
	if err != nil {
		return err
	}
	raw, category, profiles, cons, err := c.classChain(name, 0)
	if err != nil {
		return err
	}
	attrs, err := c.compileAttrs(name, raw)
	if err != nil {
		return err
	}
	cl := &Class{Name: name, Attrs: attrs, Profiles: profiles, Constraints: cons}
	cl.Caption, _ = def["caption"].(string)
	local, _ := num(def["uid"])
	if cat, ok := c.s.categories[category]; ok {
		cl.CategoryUID, cl.Category = cat.uid, cat.caption
	} else if category != "other" && category != "" {
		return fmt.Errorf("ocsfschema: class %s: unknown category %q", name, category)
	}
	cl.UID = cl.CategoryUID*1000 + local
	if name == "base_event" {
		cl.UID = 0
	}
	// The classification enums the OCSF server generates for each class.
	set := func(attr string, enum map[string]string) {
		if a, ok := attrs[attr]; ok {
			a.Enum = enum
		}
	}
	set("class_uid", map[string]string{strconv.FormatInt(cl.UID, 10): cl.Caption})
	set("category_uid", map[string]string{strconv.FormatInt(cl.CategoryUID, 10): cl.Category})
	if cl.UID == 0 {
		attrs["category_uid"].Enum = map[string]string{"0": "Uncategorized"}
	}
	types := map[string]string{}
	for id, caption := range attrs["activity_id"].Enum {
		a, _ := strconv.ParseInt(id, 10, 64)
		types[strconv.FormatInt(cl.UID*100+a, 10)] = cl.Caption + ": " + caption
	}
	set("type_uid", types)
	c.s.classes[cl.UID] = cl
	for _, a := range attrs {
		if err := c.object(a.Type, 0); err != nil {
			return fmt.Errorf("class %s: %w", name, err)
		}
	}
	return nil
}

// object compiles the object name (and every object its attributes use)
// unless name is a scalar type or already compiled.
func (c *compiler) object(name string, depth int) error {
	if strings.HasSuffix(name, "_t") {
		return nil
	}
	if _, ok := c.s.objects[name]; ok {
		return nil
	}
	if _, ok := c.defs["objects:"+name]; !ok {
		// Not vendored: Validate reports it if a record ever uses it.
		return nil
	}
	raw, cons, err := c.objectChain(name, 0)
	if err != nil {
		return err
	}
	attrs, err := c.compileAttrs(name, raw)
	if err != nil {
		return err
	}
	o := &Object{Name: name, Attrs: attrs, Constraints: cons}
	c.s.objects[name] = o
	for _, a := range attrs {
		if err := c.object(a.Type, depth+1); err != nil {
			return err
		}
	}
	return nil
}

func (c *compiler) objectChain(name string, depth int) (map[string]map[string]any, map[string][]string, error) {
	def, ok := c.defs["objects:"+name]
	if !ok {
		return nil, nil, fmt.Errorf("ocsfschema: object %q not vendored", name)
	}
	attrs := map[string]map[string]any{}
	var cons map[string][]string
	if parent, ok := def["extends"].(string); ok && depth < 8 {
		var err error
		attrs, cons, err = c.objectChain(parent, depth+1)
		if err != nil {
			return nil, nil, err
		}
	}
	own, err := c.attrDefs(def)
	if err != nil {
		return nil, nil, err
	}
	for k, v := range own {
		attrs[k] = merge(attrs[k], v)
	}
	if cc, ok := def["constraints"]; ok && cc != nil {
		cons = constraints(def) // an empty map resets the parent's constraints
	}
	return attrs, cons, nil
}

// errUnvendored marks an object a record uses but the embedded copy lacks.
var errUnvendored = errors.New("object not vendored")
