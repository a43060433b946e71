package main

import (
	"bytes"
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/transform"
)

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

// TestREADMEStateFiles: every file a run leaves in its state directory is
// a row of the README's table of what the state holds, so that an
// operator cleaning a state finds each one there (was: reader.json, made
// by every run, was in no row).
func TestREADMEStateFiles(t *testing.T) {
	var globs []string
	for _, row := range tableRows(section(t, "### What the state holds", "By hand,"))[1:] {
		for _, m := range codeSpan.FindAllStringSubmatch(row[0], -1) {
			first, _, _ := strings.Cut(m[1], "/")
			globs = append(globs, regexp.MustCompile(`<[^>]+>`).ReplaceAllString(first, "*"))
		}
	}
	require.Contains(t, globs, "exported.json", "README: the table of what the state holds")
	base := startSim(t)
	day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -3)
	path := writeConfig(t, base, secretToken, goodConfig+"transform:\n  drop_own_reads: true\n")
	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, Main(t.Context(), []string{"run", "-c", path, "--from", day.Format(time.DateOnly),
		"--to", day.AddDate(0, 0, 1).Format(time.DateOnly)}, &stdout, &stderr), stderr.String())
	keys, err := os.ReadDir(filepath.Join(filepath.Dir(path), "state"))
	require.NoError(t, err)
	require.Len(t, keys, 1)
	entries, err := os.ReadDir(filepath.Join(filepath.Dir(path), "state", keys[0].Name()))
	require.NoError(t, err)
	var missing []string
	for _, e := range entries {
		if !slices.ContainsFunc(globs, func(g string) bool { ok, _ := filepath.Match(g, e.Name()); return ok }) {
			missing = append(missing, e.Name())
		}
	}
	require.Empty(t, missing, "README, What the state holds: files of a run's state that no row names")
}

// TestREADMEVerifyLines: the verdicts the README shows for a file edited
// after its export, a text line and its --format json object, are what
// verify prints for one, but for the day, the path and the digests the
// README shortens to "7c1e…" (was: the README dropped the comma after
// the file's sha256).
func TestREADMEVerifyLines(t *testing.T) {
	var text, js string
	for _, b := range readREADME(t).blocks {
		for _, l := range strings.Split(b.text, "\n") {
			switch {
			case strings.HasPrefix(l, "FAIL  dt=") && strings.Contains(l, "sha256"):
				text = l
			case strings.HasPrefix(l, `{"status":"FAIL"`) && strings.Contains(l, "sha256"):
				js = l
			}
		}
	}
	require.NotEmpty(t, text, "README: the FAIL line of verify")
	require.NotEmpty(t, js, "README: the FAIL line of verify --format json")
	// pattern makes a README line a pattern of verify's: any day, sink
	// path and digest, and the columns' padding.
	pattern := func(l string) *regexp.Regexp {
		p := regexp.QuoteMeta(l)
		p = regexp.MustCompile(`[0-9a-f]{4}…`).ReplaceAllString(p, `[0-9a-f]{64}`)
		p = regexp.MustCompile(`\d{4}-\d\d-\d\d`).ReplaceAllString(p, `\d{4}-\d\d-\d\d`)
		p = strings.ReplaceAll(p, "out/ndjson", `\S*/ndjson`)
		p = regexp.MustCompile(` {2,}`).ReplaceAllString(p, ` +`)
		return regexp.MustCompile("^" + p + "$")
	}
	base := startSim(t)
	day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -3)
	path := writeConfig(t, base, secretToken, strings.Replace(goodConfig, "dir: %DIR%/out", "dir: %DIR%/out/ndjson\n    compression: gzip", 1))
	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, Main(t.Context(), []string{"run", "-c", path, "--from", day.Format(time.DateOnly),
		"--to", day.AddDate(0, 0, 1).Format(time.DateOnly)}, &stdout, &stderr), stderr.String())
	d := day.Format(time.DateOnly)
	file := filepath.Join(filepath.Dir(path), "out", "ndjson", "dt="+d, "pachca-audit-"+d+".ndjson.gz")
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	b[len(b)/2] ^= 0xff // edited or damaged
	require.NoError(t, os.WriteFile(file, b, 0o600))
	for _, tc := range []struct {
		readme string
		args   []string
	}{
		{text, nil},
		{js, []string{"--format", "json"}},
	} {
		stdout.Reset()
		require.Equal(t, 1, Main(t.Context(), append([]string{"verify", "-c", path}, tc.args...), &stdout, &stderr), stderr.String())
		require.Regexp(t, pattern(tc.readme), strings.TrimSpace(stdout.String()), "README.md: %s", tc.readme)
	}
}
