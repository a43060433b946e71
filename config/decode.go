package config

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/pachca-export/pachca-export/internal/smallfile"
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
	// written is the text in the file of every scalar that expandEnv
	// changed: an error shows it instead of the value, which may be a
	// secret given to the wrong key.
	written map[*yaml.Node]string
	// inline are the keys of secrets written in the file itself rather
	// than taken from the environment (${VAR}).
	inline []string
}

// isSecret tells whether the value at path is a secret: the token, an S3
// secret key, a Kafka SASL password.
func isSecret(path string) bool {
	return path == "source.token" || strings.HasSuffix(path, ".secret_access_key") || strings.HasSuffix(path, ".sasl.password")
}

// quote is the value of n for a message, quoted: the text written in the
// file when a variable was expanded in it.
func (c *checker) quote(n *yaml.Node) string {
	if w, ok := c.written[n]; ok {
		return strconv.Quote(w)
	}
	return strconv.Quote(n.Value)
}

// unexpand replaces, in each of the joined errors of err, the expanded values
// of variables with the text written in the file: quoted values always, and
// values of 8 bytes or more wherever they appear (shorter ones, such as 50
// or true, would replace words of the messages). Validation knows keys and
// values, not where a value came from; this is where that is known.
func (c *checker) unexpand(err error) error {
	if err == nil || len(c.written) == 0 {
		return err
	}
	type pair struct{ value, written string }
	var ps []pair
	for n, w := range c.written {
		if n.Value == "" {
			continue
		}
		ps = append(ps, pair{strconv.Quote(n.Value), strconv.Quote(w)})
		if len(n.Value) >= 8 {
			ps = append(ps, pair{n.Value, w})
		}
	}
	// Longest first: strings.Replacer tries its pairs in order, and a value
	// must not be cut by a shorter one.
	slices.SortStableFunc(ps, func(a, b pair) int { return len(b.value) - len(a.value) })
	var pairs []string
	for _, p := range ps {
		pairs = append(pairs, p.value, p.written)
	}
	r := strings.NewReplacer(pairs...)
	var out []error
	for _, e := range unjoin(err) {
		out = append(out, errors.New(r.Replace(e.Error())))
	}
	return errors.Join(out...)
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
			c.fail(n, path, "invalid duration %s (use a number with a unit: 500ms, 30s, 2m, 1h)", c.quote(n))
			return
		}
		// A bare 0 is a duration without a unit, as for ParseDuration, but
		// YAML resolves it as !!int, which yaml.v3 refuses to decode into a
		// time.Duration: decode it as the string it is.
		n.Tag = "!!str"
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			c.fail(n, path, "want a mapping of keys")
			return
		}
		fields := yamlFields(t)
		c.checkTwice(n, path)
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
			if item.Kind == yaml.ScalarNode && item.Tag == "!!null" {
				// yaml.v3 leaves such an entry out of the list: event_keys:
				// [~] would read as every event key.
				c.fail(item, fmt.Sprintf("%s[%d]", path, i), "an empty entry (null, ~ or a bare -): give it a value or remove it")
				continue
			}
			c.check(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			c.fail(n, path, "want a mapping")
			return
		}
		c.checkTwice(n, path)
		for i := 0; i+1 < len(n.Content); i += 2 {
			c.check(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value))
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			c.fail(n, path, "want a single value, not a list or mapping")
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || (n.Value != "true" && n.Value != "false") {
			c.fail(n, path, "want true or false, got %s", c.quote(n))
		} else if quoted(n) {
			c.fail(n, path, "want true or false, got the string %s: remove the quotes", c.quote(n))
		}
	case reflect.Int, reflect.Int32, reflect.Int64:
		if n.Kind != yaml.ScalarNode {
			c.fail(n, path, "want an integer")
		} else if _, err := strconv.ParseInt(n.Value, 0, 64); err != nil {
			c.fail(n, path, "want an integer, got %s", c.quote(n))
		} else if quoted(n) {
			c.fail(n, path, "want an integer, got the string %s: remove the quotes", c.quote(n))
		}
	case reflect.Float64:
		if n.Kind != yaml.ScalarNode {
			c.fail(n, path, "want a number")
		} else if _, err := strconv.ParseFloat(n.Value, 64); err != nil {
			c.fail(n, path, "want a number, got %s", c.quote(n))
		} else if quoted(n) {
			c.fail(n, path, "want a number, got the string %s: remove the quotes", c.quote(n))
		}
	}
}

// quoted reports whether the scalar n is a string however it reads ("5",
// !!str 5), which yaml.v3 would refuse to decode into a number or a flag
// with an error naming no key.
func quoted(n *yaml.Node) bool { return n.ShortTag() == "!!str" }

// checkTwice fails a key given twice in the mapping n: YAML forbids it, and
// which one would count is not for the reader to guess. It reports whether
// one was.
func (c *checker) checkTwice(n *yaml.Node, path string) (twice bool) {
	first := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if line, ok := first[k.Value]; ok {
			c.fail(k, join(path, k.Value), "given twice (first at line %d)", line)
			twice = true
			continue
		}
		first[k.Value] = k.Line
	}
	return twice
}

// child is the value at keys under the mapping n, or nil.
func child(n *yaml.Node, keys ...string) *yaml.Node {
	for _, k := range keys {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
			}
		}
		n = next
	}
	return n
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

var (
	envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}`)
	// bareEnvRef is a whole value that looks like $VAR: a shell habit that
	// would send the text "$PACHCA_TOKEN" to the API as the token.
	bareEnvRef = regexp.MustCompile(`^\$[A-Za-z_][A-Za-z0-9_]*$`)
)

// expandEnv replaces ${VAR} and ${VAR:-default} in every scalar of the tree.
// A variable that is unset and has no default is an error naming the key;
// so is a "${" that starts no reference (${ VAR }, ${VAR without its
// brace), and a token written $VAR: they would be taken as text. Neither
// error shows the value.
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
		if path == "source.token" && bareEnvRef.MatchString(n.Value) {
			c.tokenErr = &fieldError{file: c.file, line: n.Line, path: path, msg: "a variable written $NAME is not expanded: write ${NAME}"}
			n.Value = "" // no part of a token
			return
		}
		if !strings.Contains(n.Value, "${") {
			if n.Value != "" && isSecret(path) {
				c.inline = append(c.inline, path)
			}
			return
		}
		if strings.Contains(envRef.ReplaceAllString(n.Value, ""), "${") {
			err := &fieldError{file: c.file, line: n.Line, path: path,
				msg: "a ${ that starts no variable: write ${NAME} or ${NAME:-default} (NAME of letters, digits and _, no spaces); a value holding ${ itself goes into an environment variable, written ${NAME}"}
			if path == "source.token" {
				c.tokenErr = err
				n.Value = "" // no part of a token
			} else {
				c.errs = append(c.errs, err)
			}
			return
		}
		if c.written == nil {
			c.written = map[*yaml.Node]string{}
		}
		c.written[n] = n.Value
		n.Value = envRef.ReplaceAllStringFunc(n.Value, func(ref string) string {
			m := envRef.FindStringSubmatch(ref)
			v, ok := lookup(m[1])
			if v != "" {
				return v
			}
			if strings.Contains(ref, ":-") {
				return m[2]
			}
			// Set to "" is told apart: PACHCA_TOKEN=$(cat FILE) of a file
			// missing or empty, to a user who did set the variable.
			unset := "is not set"
			if ok {
				unset = "is set but empty"
			}
			err := &fieldError{file: c.file, line: n.Line, path: path, msg: fmt.Sprintf("environment variable %s %s", m[1], unset)}
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

// MaxFileSize is the largest configuration read: a pipeline.yaml is a few
// KiB, and reading /dev/zero must not run until the memory is gone.
const MaxFileSize = 4 << 20

// readFile reads the configuration, at most MaxFileSize bytes, naming the
// file in errors.
func readFile(path string) ([]byte, error) {
	b, err := smallfile.Read(path, MaxFileSize, nil)
	if errors.Is(err, smallfile.ErrTooLarge) {
		return nil, fmt.Errorf("%s: larger than %d MiB: not a pipeline configuration (see pipeline.yaml in the repository)", path, MaxFileSize>>20)
	}
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return b, nil
}
