package main

import (
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
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
	"github.com/pachca-export/pachca-export/transform"
)

// The README is the user's manual: these tests hold it to the product.
// What a user copies from it (a pipeline.yaml snippet, a command line, a
// key of the configuration reference and its default) must be what the
// program accepts; the metric names are checked in package follow, which
// registers them all.

// readmeDoc is README.md split into what the tests read: its code blocks
// (indented, as the README writes them), cut at blank lines, and the text
// outside them.
type readmeDoc struct {
	blocks []snippet // each paragraph of a code block, unindented
	prose  []snippet // each paragraph outside the code blocks
}

// snippet is a piece of the README and the line it starts on.
type snippet struct {
	line int
	text string
}

func indentOf(s string) int { return len(s) - len(strings.TrimLeft(s, " ")) }

// readREADME reads ../../README.md. A code block is a run of lines indented
// 4 or more beyond the paragraph (or list item) before it, after a blank
// line.
func readREADME(t *testing.T) readmeDoc {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	lines := strings.Split(string(b), "\n")
	var d readmeDoc
	var para []string
	paraLine := 0
	flush := func() {
		if len(para) > 0 {
			d.prose = append(d.prose, snippet{paraLine, strings.Join(para, "\n")})
		}
		para = nil
	}
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if strings.TrimSpace(l) == "" {
			flush()
			continue
		}
		prev := -1 // the last non-blank line before
		for j := i - 1; j >= 0; j-- {
			if strings.TrimSpace(lines[j]) != "" {
				prev = j
				break
			}
		}
		if i > 0 && strings.TrimSpace(lines[i-1]) == "" && prev >= 0 {
			outer := indentOf(lines[prev])
			if strings.HasPrefix(strings.TrimSpace(lines[prev]), "- ") {
				outer += 2
			}
			if ind := indentOf(l); ind >= outer+4 {
				var cur []string
				start := i
				k := i
				for ; k < len(lines) && (strings.TrimSpace(lines[k]) == "" || indentOf(lines[k]) >= ind); k++ {
					if strings.TrimSpace(lines[k]) == "" {
						if len(cur) > 0 {
							d.blocks = append(d.blocks, snippet{start + 1, strings.Join(cur, "\n")})
						}
						cur, start = nil, k+1
						continue
					}
					cur = append(cur, lines[k][ind:])
				}
				if len(cur) > 0 {
					d.blocks = append(d.blocks, snippet{start + 1, strings.Join(cur, "\n")})
				}
				i = k - 1
				continue
			}
		}
		if len(para) == 0 {
			paraLine = i + 1
		}
		para = append(para, l)
	}
	flush()
	return d
}

var codeSpan = regexp.MustCompile("`([^`]+)`")

// spans are the inline code spans of the prose, line breaks made spaces.
func (d readmeDoc) spans() []snippet {
	var out []snippet
	for _, p := range d.prose {
		for _, m := range codeSpan.FindAllStringSubmatchIndex(p.text, -1) {
			line := p.line + strings.Count(p.text[:m[0]], "\n")
			out = append(out, snippet{line, strings.ReplaceAll(p.text[m[2]:m[3]], "\n", " ")})
		}
	}
	return out
}

// configKeys are the top-level keys of pipeline.yaml: a code block that
// starts with one of them is a configuration snippet.
var configSnippet = regexp.MustCompile(`^(source|period|transform|sinks|state|follow|output|alerts|signing):`)

// uncomment turns the commented-out keys of a snippet ("  # region: x")
// into keys, so that what the README offers to uncomment is checked too.
var commentedKey = regexp.MustCompile(`(?m)^(\s*)# ?(\s*[a-z_]+:(\s.*)?)$`)

// yamlSnippets are the README's configuration snippets, each as written and,
// when it holds commented-out keys, with them uncommented.
func (d readmeDoc) yamlSnippets() []snippet {
	var out []snippet
	for _, b := range d.blocks {
		if !configSnippet.MatchString(b.text) {
			continue
		}
		out = append(out, b)
		if u := commentedKey.ReplaceAllString(b.text, "$1$2"); u != b.text {
			out = append(out, snippet{b.line, u})
		}
	}
	return out
}

// minimalSinks makes a snippet without sinks a whole configuration.
const minimalSinks = "sinks:\n  - type: ndjson\n    dir: out\n"

// parseSnippet parses one snippet as the loader does, without the file
// system (config.Parse), with a sink added when it has none.
func parseSnippet(text string) (*config.Config, error) {
	if !regexp.MustCompile(`(?m)^sinks:`).MatchString(text) {
		text += "\n" + minimalSinks
	}
	env := func(name string) (string, bool) {
		if name == "PACHCA_TOKEN" {
			return "readme-token", true
		}
		return "", false
	}
	cfg, err := config.Parse([]byte(text), "README.md", env)
	if cfg != nil {
		for i := range cfg.Sinks {
			cfg.Sinks[i].Line = 0 // where the sink is written, not what it is
		}
	}
	return cfg, err
}

// TestREADMEConfigSnippets: every pipeline.yaml snippet of the README, and
// each with its commented-out keys uncommented, loads.
func TestREADMEConfigSnippets(t *testing.T) {
	snips := readREADME(t).yamlSnippets()
	require.GreaterOrEqual(t, len(snips), 6, "the README's configuration snippets were not found")
	for _, s := range snips {
		_, err := parseSnippet(s.text)
		require.NoError(t, err, "README.md:%d:\n%s", s.line, s.text)
	}
}

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

// snippetKeys are the key paths the YAML of text gives, below prefix;
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

// section is the README's text from the line that starts with start to
// the next line that starts with end.
func section(t *testing.T, start, end string) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	s := string(b)
	i := strings.Index(s, "\n"+start)
	require.GreaterOrEqual(t, i, 0, "README: %q not found", start)
	s = s[i+1:]
	j := strings.Index(s[len(start):], "\n"+end)
	require.GreaterOrEqual(t, j, 0, "README: %q not found after %q", end, start)
	return s[:len(start)+j]
}

// tableRows are the rows of the markdown tables in text, as cells.
func tableRows(text string) [][]string {
	var rows [][]string
	for _, l := range strings.Split(text, "\n") {
		if !strings.HasPrefix(l, "| ") || strings.HasPrefix(l, "|---") {
			continue
		}
		var cells []string
		cell, code := "", false
		for _, r := range strings.TrimSpace(l)[1:] {
			switch {
			case r == '`':
				code = !code
			case r == '|' && !code:
				cells = append(cells, strings.TrimSpace(cell))
				cell = ""
				continue
			}
			cell += string(r)
		}
		rows = append(rows, cells)
	}
	return rows
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

// commandLine finds "pachca-export COMMAND ARGS" in a line of a code block
// or a code span; a span may also start with the command ("run --replace").
var flagToken = regexp.MustCompile(`^--?[a-z][a-z0-9-]*$`)

// commandFlags are the flags a README line gives each command: the words
// after "pachca-export COMMAND" up to a comment, a redirection or the end.
func commandFlags(text string, spanStart bool) map[string][]string {
	out := map[string][]string{}
	words := strings.Fields(text)
	for i := 0; i < len(words); i++ {
		start := -1
		if words[i] == "pachca-export" && i+1 < len(words) && lookupCommand(words[i+1]) != nil {
			start = i + 1
		} else if spanStart && i == 0 && lookupCommand(words[0]) != nil && len(words) > 1 && strings.HasPrefix(words[1], "-") {
			start = 0
		}
		if start < 0 {
			continue
		}
		name := words[start]
		out[name] = append(out[name], "")
		for _, w := range words[start+1:] {
			if strings.HasPrefix(w, "#") || strings.HasPrefix(w, ">") || w == "|" || w == "&&" || w == ";" {
				break
			}
			w = strings.Trim(w, "[](),;")
			for _, f := range strings.Split(w, "/") {
				f, _, _ = strings.Cut(f, "=")
				if flagToken.MatchString(f) {
					out[name] = append(out[name], strings.TrimLeft(f, "-"))
				}
			}
		}
		i = start
	}
	return out
}

// TestREADMECommandFlags: every flag the README gives a command, in a code
// block, a code span or the list of a command's flags, is one of its flags.
// And the reverse: every flag of a command is named for it somewhere.
func TestREADMECommandFlags(t *testing.T) {
	doc := readREADME(t)
	given := map[string]map[string]bool{}
	add := func(where snippet, cmd string, fl []string) {
		c := lookupCommand(cmd)
		fs := newFlags(c.name)
		c.setup(fs, &env{stdout: os.Stdout, stderr: os.Stderr})
		if given[cmd] == nil {
			given[cmd] = map[string]bool{}
		}
		for _, f := range fl {
			if f == "" {
				continue
			}
			require.True(t, fs.Lookup(f) != nil || f == "help" || f == "h",
				"README.md:%d: pachca-export %s has no flag %s: %q", where.line, cmd, flagName(f), where.text)
			given[cmd][f] = true
		}
	}
	for _, b := range doc.blocks {
		for i, l := range strings.Split(b.text, "\n") {
			for cmd, fl := range commandFlags(l, false) {
				add(snippet{b.line + i, l}, cmd, fl)
			}
		}
	}
	// A span that starts with a flag ("`--layout ndjson`") is a flag of the
	// command the paragraph named last.
	for _, p := range doc.prose {
		last := ""
		for _, s := range (readmeDoc{prose: []snippet{p}}).spans() {
			for cmd, fl := range commandFlags(s.text, true) {
				add(s, cmd, fl)
				last = cmd
			}
			if f := strings.Fields(s.text); last != "" && len(f) > 0 && flagToken.MatchString(f[0]) {
				add(s, last, []string{strings.TrimLeft(f[0], "-")})
			}
		}
	}
	// "Flags of `run`: `-c FILE`, `--from T`, ..." up to the paragraph's end.
	flagsOf := regexp.MustCompile("Flags of `([a-z]+)`:")
	for _, p := range doc.prose {
		m := flagsOf.FindStringSubmatchIndex(p.text)
		if m == nil {
			continue
		}
		cmd := p.text[m[2]:m[3]]
		var fl []string
		for _, s := range codeSpan.FindAllStringSubmatch(p.text[m[1]:], -1) {
			if f := strings.Fields(s[1]); strings.HasPrefix(f[0], "-") && flagToken.MatchString(f[0]) {
				fl = append(fl, strings.TrimLeft(f[0], "-"))
			}
		}
		add(p, cmd, fl)
	}
	// Flags every command with a log takes are described once, for all.
	everywhere := map[string]bool{"log-format": true, "log-level": true}
	var unnamed []string
	for _, c := range commands() {
		fs := newFlags(c.name)
		c.setup(fs, &env{stdout: os.Stdout, stderr: os.Stderr})
		for _, f := range fs.order {
			if !given[c.name][f] && !everywhere[f] {
				unnamed = append(unnamed, c.name+" "+flagName(f))
			}
		}
	}
	require.Empty(t, unnamed, "flags the README names for no command line or list of flags of their command")
}

// TestREADMEFileNames: every file the README names the state or a sink
// holding (`exported.json`, `_manifest.json`, ...) is a name the code
// writes: a string literal of a Go file that is not a test.
func TestREADMEFileNames(t *testing.T) {
	var code strings.Builder
	err := filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") && path != "../..") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			b, err := os.ReadFile(path)
			code.Write(b)
			return err
		}
		return nil
	})
	require.NoError(t, err)
	named := 0
	for _, s := range readREADME(t).spans() {
		if !regexp.MustCompile(`^[a-z_][a-z0-9_.-]*\.json$`).MatchString(s.text) {
			continue
		}
		named++
		require.True(t, strings.Contains(code.String(), `"`+s.text+`"`), "README.md:%d: %s is no file name of the code", s.line, s.text)
	}
	require.Positive(t, named)
}

// TestREADMESchema: the columns of the README's table of schema v1 are the
// schema's, nullable where it says so, every column is in the table (those
// of the details variants as `details_<field>`), and the count the README
// gives is the schema's.
func TestREADMESchema(t *testing.T) {
	sec := section(t, "## Normalized schema v1", "## OCSF 1.3 output")
	cols := map[string]transform.Column{}
	for _, c := range transform.Columns() {
		cols[c.Name] = c
	}
	named := map[string]bool{}
	var wrong []string
	for _, row := range tableRows(sec)[1:] {
		for _, m := range codeSpan.FindAllStringSubmatch(row[0], -1) {
			name := m[1]
			named[name] = true
			if strings.Contains(name, "<") {
				continue
			}
			c, ok := cols[name]
			switch {
			case !ok:
				wrong = append(wrong, name+": no column of schema v1")
			case c.Nullable != strings.Contains(row[1], "nullable"):
				wrong = append(wrong, fmt.Sprintf("%s: nullable is %v", name, c.Nullable))
			}
		}
	}
	for name := range cols {
		if !named[name] && !(strings.HasPrefix(name, "details_") && named["details_<field>"]) {
			wrong = append(wrong, name+": a column the README's table does not name")
		}
	}
	m := regexp.MustCompile(`lines of (\d+) columns`).FindStringSubmatch(sec)
	require.NotNil(t, m, "README: the number of columns of a line")
	if m[1] != fmt.Sprint(len(cols)) {
		wrong = append(wrong, fmt.Sprintf("lines of %s columns: schema v1 has %d", m[1], len(cols)))
	}
	slices.Sort(wrong)
	require.Empty(t, wrong, "README, Normalized schema v1, against transform.Columns")
}

// TestREADMELayout: every folder the README's Layout lists exists, and
// imports run down the list, never up, as it says; test kits (a package
// whose name ends in "test") may import anything and are imported by tests
// only.
func TestREADMELayout(t *testing.T) {
	const module = "github.com/pachca-export/pachca-export/"
	var order []string
	for _, l := range strings.Split(section(t, "## Layout", "    simulator/"), "\n") {
		if f := strings.Fields(l); len(l) > 4 && l[4] != ' ' && len(f) > 0 && strings.HasSuffix(f[0], "/") {
			order = append(order, strings.TrimSuffix(f[0], "/"))
		}
	}
	order = append(order, "simulator")
	require.Greater(t, len(order), 20, "README: the Layout list")
	for _, dir := range order {
		fi, err := os.Stat(filepath.Join("../..", dir))
		require.NoError(t, err, "README, Layout: %s/", dir)
		require.True(t, fi.IsDir(), "README, Layout: %s/", dir)
	}
	rank := func(pkg string) int {
		best := -1
		for i, o := range order {
			if (pkg == o || strings.HasPrefix(pkg, o+"/")) && (best < 0 || len(o) > len(order[best])) {
				best = i
			}
		}
		return best
	}
	kit := func(pkg string) bool { return strings.HasSuffix(pkg, "test") }
	var wrong []string
	fset := token.NewFileSet()
	err := filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".") && path != "../..") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		pkg := filepath.ToSlash(filepath.Dir(strings.TrimPrefix(path, "../../")))
		for _, imp := range f.Imports {
			dep, ok := strings.CutPrefix(strings.Trim(imp.Path.Value, `"`), module)
			switch {
			case !ok || kit(pkg):
			case kit(dep):
				wrong = append(wrong, pkg+" imports the test kit "+dep)
			case rank(pkg) < 0:
				wrong = append(wrong, pkg+": not in the Layout")
			case rank(dep) < rank(pkg):
				wrong = append(wrong, pkg+" imports "+dep+", above it")
			}
		}
		return nil
	})
	require.NoError(t, err)
	slices.Sort(wrong)
	require.Empty(t, slices.Compact(wrong), "README, Layout: imports run down the list")
}
