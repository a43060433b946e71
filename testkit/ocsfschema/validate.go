package ocsfschema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Decode parses one JSON event for Validate, keeping numbers exact.
func Decode(b []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var ev map[string]any
	if err := d.Decode(&ev); err != nil {
		return nil, fmt.Errorf("ocsfschema: decode: %w", err)
	}
	if d.More() {
		return nil, errors.New("ocsfschema: decode: data after the event")
	}
	return ev, nil
}

// LikeJSON returns got, an OCSF event as a Parquet reader gives it, with
// each string that Parquet holds as JSON text (json_t attributes,
// unmapped.details) decoded where want, the NDJSON event decoded with
// json.Number, embeds it as JSON.
func LikeJSON(want, got any) any {
	if s, ok := got.(string); ok {
		if _, isText := want.(string); !isText && want != nil {
			if doc, err := Decode([]byte(`{"v":` + s + `}`)); err == nil {
				return doc["v"]
			}
		}
		return got
	}
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return got
		}
		out := map[string]any{}
		for k, e := range g {
			out[k] = LikeJSON(w[k], e)
		}
		return out
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return got
		}
		out := make([]any, len(g))
		for i := range g {
			out[i] = LikeJSON(w[i], g[i])
		}
		return out
	}
	return got
}

// Validate checks one event (decoded with Decode) against its class and
// returns every violation found, joined, each naming its attribute path:
//   - class_uid names a class; category_uid is its category;
//     type_uid = class_uid * 100 + activity_id;
//   - every required attribute of the class and, recursively, of each object
//     is present (profile attributes only when metadata.profiles lists the
//     profile), and the objects' at_least_one / just_one constraints hold;
//   - every attribute is defined for its class or object (plus the *_dt
//     siblings of timestamps under the datetime profile), not deprecated, and
//     of its dictionary type: JSON kind, integer range, max_len, regex,
//     arrays where is_array;
//   - enum values are defined for the class or object, and a sibling caption
//     (activity_name, severity, status, type_name, ...) matches its value
//     unless the value is 99 (Other).
func (s *Schema) Validate(ev map[string]any) error {
	v := validator{s: s}
	uidV, ok := ev["class_uid"]
	if !ok {
		return errors.New("class_uid: missing")
	}
	uid, ok := intOf(uidV)
	if !ok {
		return fmt.Errorf("class_uid: %v is not an integer", uidV)
	}
	cl, ok := s.classes[uid]
	if !ok {
		return fmt.Errorf("class_uid: unknown class %d", uid)
	}
	v.profiles = profilesOf(ev)
	for _, p := range v.profiles {
		if !slices.Contains(cl.Profiles, p) {
			v.errf("metadata.profiles", "profile %q is not defined for class %s", p, cl.Name)
		}
	}
	v.attrs("", ev, cl.Attrs, cl.Constraints)
	if act, ok := intOf(ev["activity_id"]); ok {
		if tu, ok := intOf(ev["type_uid"]); ok && tu != uid*100+act {
			v.errf("type_uid", "%d, want class_uid*100+activity_id = %d", tu, uid*100+act)
		}
	}
	return errors.Join(v.errs...)
}

type validator struct {
	s        *Schema
	profiles []string
	errs     []error
}

func (v *validator) errf(path, format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
}

func profilesOf(ev map[string]any) []string {
	md, _ := ev["metadata"].(map[string]any)
	ps, _ := md["profiles"].([]any)
	var out []string
	for _, p := range ps {
		if s, ok := p.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// active reports whether an attribute applies: core, or of a declared profile.
func (v *validator) active(a *Attr) bool {
	return a.Profile == "" || slices.Contains(v.profiles, a.Profile)
}

// attrs validates the members of one class instance or object.
func (v *validator) attrs(prefix string, obj map[string]any, defs map[string]*Attr, cons map[string][]string) {
	for _, name := range sortedKeys(defs) {
		a := defs[name]
		if a.Requirement != "required" || !v.active(a) {
			continue
		}
		if val, ok := obj[name]; !ok || val == nil {
			v.errf(join(prefix, name), "required attribute missing")
		}
	}
	present := func(name string) bool { val, ok := obj[name]; return ok && val != nil }
	if l := cons["at_least_one"]; len(l) > 0 && !slices.ContainsFunc(l, present) {
		v.errf(prefixOr(prefix), "at least one of %v required", l)
	}
	if l := cons["just_one"]; len(l) > 0 {
		n := 0
		for _, name := range l {
			if present(name) {
				n++
			}
		}
		if n != 1 {
			v.errf(prefixOr(prefix), "exactly one of %v required, have %d", l, n)
		}
	}
	for _, name := range sortedKeys(obj) {
		val := obj[name]
		path := join(prefix, name)
		a, ok := defs[name]
		if !ok {
			if base, isDT := strings.CutSuffix(name, "_dt"); isDT && slices.Contains(v.profiles, "datetime") {
				if ts, ok := defs[base]; ok && ts.Type == "timestamp_t" && !ts.IsArray {
					v.value(path, val, &Attr{Name: name, Type: "datetime_t"})
					continue
				}
			}
			v.errf(path, "not an attribute of this class or object")
			continue
		}
		if !v.active(a) {
			v.errf(path, "attribute of profile %q, which metadata.profiles does not list", a.Profile)
		}
		if a.Deprecated {
			v.errf(path, "deprecated attribute")
		}
		if val == nil {
			continue
		}
		if a.IsArray {
			l, ok := val.([]any)
			if !ok {
				v.errf(path, "want an array, have %T", val)
				continue
			}
			for i, e := range l {
				v.value(path+"["+strconv.Itoa(i)+"]", e, a)
			}
			continue
		}
		v.value(path, val, a)
		if a.Sibling != "" && a.Enum != nil {
			v.sibling(prefix, obj, a, val)
		}
	}
}

func prefixOr(p string) string {
	if p == "" {
		return "(event)"
	}
	return p
}

// sibling checks that the caption attribute of an enum matches its value.
func (v *validator) sibling(prefix string, obj map[string]any, a *Attr, val any) {
	sv, ok := obj[a.Sibling]
	if !ok || sv == nil {
		return
	}
	id, ok := intOf(val)
	if !ok || id == 99 || a.Name == "type_uid" && id%100 == 99 {
		return // Other: the sibling holds the source's own value
	}
	want, ok := a.Enum[strconv.FormatInt(id, 10)]
	if ok && sv != want {
		v.errf(join(prefix, a.Sibling), "%q, want %q (the caption of %s %d)", sv, want, a.Name, id)
	}
}

// value validates one scalar or object value (one element of an array).
func (v *validator) value(path string, val any, a *Attr) {
	if obj, isObj := v.s.objects[a.Type]; isObj || !strings.HasSuffix(a.Type, "_t") {
		m, ok := val.(map[string]any)
		if !ok {
			v.errf(path, "want an object (%s), have %T", a.Type, val)
			return
		}
		if !isObj {
			v.errf(path, "%s: %v", a.Type, errUnvendored)
			return
		}
		if a.Type == "object" {
			return // a free-form object, e.g. unmapped
		}
		v.attrs(path, m, obj.Attrs, obj.Constraints)
		return
	}
	t, ok := v.s.types[a.Type]
	if !ok {
		v.errf(path, "unknown type %s", a.Type)
		return
	}
	switch t.base {
	case "string_t":
		s, ok := val.(string)
		if !ok {
			v.errf(path, "want a string (%s), have %T", a.Type, val)
			return
		}
		if t.maxLen > 0 && utf8.RuneCountInString(s) > t.maxLen {
			v.errf(path, "%d characters, %s allows %d", utf8.RuneCountInString(s), a.Type, t.maxLen)
		}
		for _, re := range t.regex {
			if !re.MatchString(s) {
				v.errf(path, "%q does not match the %s pattern", short(s), a.Type)
			}
		}
		if a.Enum != nil {
			if _, ok := a.Enum[s]; !ok {
				v.errf(path, "%q is not a value of the enum", short(s))
			}
		}
	case "integer_t", "long_t":
		n, ok := intOf(val)
		if !ok {
			v.errf(path, "want an integer (%s), have %v", a.Type, val)
			return
		}
		if t.base == "integer_t" && (n < math.MinInt32 || n > math.MaxInt32) {
			v.errf(path, "%d overflows a 32-bit integer_t", n)
		}
		if len(t.rng) == 2 && (n < t.rng[0] || n > t.rng[1]) {
			v.errf(path, "%d outside %v", n, t.rng)
		}
		if a.Enum != nil {
			if _, ok := a.Enum[strconv.FormatInt(n, 10)]; !ok {
				v.errf(path, "%d is not a value of the enum (%v)", n, sortedKeys(a.Enum))
			}
		}
	case "float_t":
		if _, ok := val.(json.Number); !ok {
			v.errf(path, "want a number, have %T", val)
		}
	case "boolean_t":
		if _, ok := val.(bool); !ok {
			v.errf(path, "want a boolean, have %T", val)
		}
	case "json_t":
	default:
		v.errf(path, "unsupported base type %s", t.base)
	}
}

func short(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

func intOf(v any) (int64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	i, err := strconv.ParseInt(string(n), 10, 64)
	return i, err == nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
