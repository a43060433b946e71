package main

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/config"
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

// isConfigSnippet reports whether a code block is a pipeline.yaml snippet:
// its first line is a top-level key of the configuration ("follow:").
func isConfigSnippet(text string) bool {
	text = modeline.ReplaceAllString(text, "") // the editor's comment above the keys
	text = strings.TrimPrefix(text, "\n")
	first, _, _ := strings.Cut(text, "\n")
	key, rest, ok := strings.Cut(first, ":")
	if !ok || strings.TrimSpace(rest) != "" && !strings.HasPrefix(strings.TrimSpace(rest), "#") {
		return false
	}
	return slices.Contains(keyPaths(reflect.TypeFor[config.Config](), ""), key) || key == "sinks"
}

// commentedKey is a commented-out key of a snippet ("  # region: x"):
// uncommented, so that what the README offers to uncomment is checked too.
var commentedKey = regexp.MustCompile(`(?m)^(\s*)# ?(\s*[a-z_]+:(\s.*)?)$`)

// yamlSnippets are the README's configuration snippets, each as written and,
// when it holds commented-out keys, with them uncommented.
func (d readmeDoc) yamlSnippets() []snippet {
	var out []snippet
	for _, b := range d.blocks {
		if !isConfigSnippet(b.text) {
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

// flagToken is a flag as the README writes it: -c, --from.
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
