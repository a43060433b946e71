package config

import (
	"fmt"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/pachca-export/pachca-export/internal/suggest"
)

// fieldError is one problem at one key of the file.
type fieldError struct {
	file string
	line int
	path string
	msg  string
}

func (e *fieldError) Error() string {
	loc := e.file
	if e.line > 0 {
		loc += ":" + strconv.Itoa(e.line)
	}
	if e.path == "" {
		return loc + ": " + e.msg
	}
	return loc + ": " + e.path + ": " + e.msg
}

// checker walks a YAML tree against the Go type it will be decoded into and
// collects every unknown key and every scalar of the wrong type, each with its
// path and line, before anything is decoded. yaml.v3's own KnownFields
// reports Go type names and stops at the first problem.
type checker struct {
	file string
	errs []error
	// tokenErr is an unset variable in source.token: kept apart from errs,
	// so that commands that need no token still load the file.
	tokenErr error
}

func (c *checker) fail(n *yaml.Node, path, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	c.errs = append(c.errs, &fieldError{file: c.file, line: line, path: path, msg: fmt.Sprintf(format, args...)})
}

var durationType = reflect.TypeFor[time.Duration]()

// check reports whether n fits t; path names n for messages.
func (c *checker) check(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // absent value: the default applies
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == nodeType:
		return // decoded and checked later, like each entry of sinks
	case t == durationType:
		if n.Kind != yaml.ScalarNode {
			c.fail(n, path, "want a duration such as 30s or 2m")
			return
		}
		if _, err := time.ParseDuration(n.Value); err != nil {
			c.fail(n, path, "invalid duration %q (use a number with a unit: 500ms, 30s, 2m, 1h)", n.Value)
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			c.fail(n, path, "want a mapping of keys")
			return
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			f, ok := fields[k.Value]
			if !ok {
				c.fail(k, join(path, k.Value), "unknown key%s", didYouMean(k.Value, fields))
				continue
			}
			c.check(v, f.Type, join(path, k.Value))
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			c.fail(n, path, "want a list")
			return
		}
		for i, item := range n.Content {
			c.check(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			c.fail(n, path, "want a mapping")
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			c.check(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value))
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			c.fail(n, path, "want a single value, not a list or mapping")
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || (n.Value != "true" && n.Value != "false") {
			c.fail(n, path, "want true or false, got %q", n.Value)
		}
	case reflect.Int, reflect.Int32, reflect.Int64:
		if n.Kind != yaml.ScalarNode {
			c.fail(n, path, "want an integer")
		} else if _, err := strconv.ParseInt(n.Value, 0, 64); err != nil {
			c.fail(n, path, "want an integer, got %q", n.Value)
		}
	case reflect.Float64:
		if n.Kind != yaml.ScalarNode {
			c.fail(n, path, "want a number")
		} else if _, err := strconv.ParseFloat(n.Value, 64); err != nil {
			c.fail(n, path, "want a number, got %q", n.Value)
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// yamlFields maps the YAML keys of struct t to their fields, inlined structs included.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if strings.Contains(opts, "inline") {
			maps := yamlFields(f.Type)
			for k, v := range maps {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f
	}
	return out
}

// didYouMean names the closest known key, for a misspelt one.
func didYouMean(key string, fields map[string]reflect.StructField) string {
	names := slices.Sorted(maps.Keys(fields))
	if best := suggest.Closest(key, names); best != "" {
		return fmt.Sprintf(" (did you mean %s?)", best)
	}
	return " (known keys: " + strings.Join(names, ", ") + ")"
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}`)

// expandEnv replaces ${VAR} and ${VAR:-default} in every scalar of the tree.
// A variable that is unset and has no default is an error naming the key.
func (c *checker) expandEnv(n *yaml.Node, path string, lookup func(string) (string, bool)) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, ch := range n.Content {
			c.expandEnv(ch, path, lookup)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			c.expandEnv(n.Content[i+1], join(path, n.Content[i].Value), lookup)
		}
	case yaml.SequenceNode:
		for i, ch := range n.Content {
			c.expandEnv(ch, fmt.Sprintf("%s[%d]", path, i), lookup)
		}
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "${") {
			return
		}
		n.Value = envRef.ReplaceAllStringFunc(n.Value, func(ref string) string {
			m := envRef.FindStringSubmatch(ref)
			if v, ok := lookup(m[1]); ok && v != "" {
				return v
			}
			if strings.Contains(ref, ":-") {
				return m[2]
			}
			err := &fieldError{file: c.file, line: n.Line, path: path, msg: fmt.Sprintf("environment variable %s is not set", m[1])}
			if path == "source.token" {
				c.tokenErr = err
			} else {
				c.errs = append(c.errs, err)
			}
			return ""
		})
		if path == "source.token" && c.tokenErr != nil {
			n.Value = "" // no part of a token
		}
		// Let the expanded value resolve as if written in place: 50 is a number.
		if n.Style == 0 {
			n.Tag = ""
		}
	}
}

// readFile reads the configuration, naming the file in errors.
func readFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return b, nil
}
