package sbom

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/internal/notices"
	"github.com/pachca-export/pachca-export/testkit/buildtest"
)

// TestGenerateMatchesBinary: the SBOM of a release build lists exactly the
// modules `go version -m` prints for it, each with its version and its h1:
// hash, and a licence; the standard library of the Go that built it; the
// embedded ECharts; the binary's own SHA-256. It is valid CycloneDX 1.6
// (the schema shipped in cyclonedx-go), decodes with cyclonedx-go, and the
// same binary gives the same bytes.
func TestGenerateMatchesBinary(t *testing.T) {
	bin := buildtest.StaticBinary(t)
	doc, err := Generate("../..", bin, "v1.2.0")
	require.NoError(t, err)

	var bom cdx.BOM
	require.NoError(t, cdx.NewBOMDecoder(bytes.NewReader(doc), cdx.BOMFileFormatJSON).Decode(&bom))
	require.Equal(t, cdx.SpecVersion1_6, bom.SpecVersion)
	require.Regexp(t, `^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, bom.SerialNumber)
	main := bom.Metadata.Component
	require.Equal(t, "pachca-export", main.Name)
	require.Equal(t, "v1.2.0", main.Version)
	data, err := os.ReadFile(bin)
	require.NoError(t, err)
	sum := sha256.Sum256(data)
	require.Equal(t, []cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: hex.EncodeToString(sum[:])}}, *main.Hashes)
	require.Contains(t, *main.Properties, cdx.Property{Name: "cdx:gomod:build:env:GOOS", Value: "linux"})

	// What the go command itself reads from the binary: "dep path version h1:...".
	out, err := exec.CommandContext(t.Context(), "go", "version", "-m", bin).Output()
	require.NoError(t, err)
	want := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^\s+(?:dep|=>)\s+(\S+)\s+(\S+)\s+(h1:\S+)$`).FindAllStringSubmatch(string(out), -1) {
		want[m[1]+" "+m[2]] = m[3]
	}
	require.Len(t, want, strings.Count(string(out), "\tdep\t"), "%s", out)
	got := map[string]string{}
	var std, echarts *cdx.Component
	for i, c := range *bom.Components {
		require.NotNil(t, c.Licenses, c.Name)
		switch {
		case c.Name == "stdlib":
			std = &(*bom.Components)[i]
		case c.Name == "echarts":
			echarts = &(*bom.Components)[i]
		default:
			require.Equal(t, "pkg:golang/"+c.Name+"@"+strings.ReplaceAll(c.Version, "+", "%2B"), c.PackageURL)
			require.Len(t, *c.Hashes, 1, c.Name)
			raw, err := hex.DecodeString((*c.Hashes)[0].Value)
			require.NoError(t, err)
			got[c.Name+" "+c.Version] = "h1:" + base64.StdEncoding.EncodeToString(raw)
		}
	}
	require.Equal(t, want, got)
	require.NotContains(t, string(doc), "github.com/stretchr/testify", "required by go.mod, not linked")

	goVersion := strings.TrimPrefix(runtime.Version(), "go")
	require.NotNil(t, std)
	require.Equal(t, goVersion, std.Version)
	require.Equal(t, "pkg:golang/stdlib@"+goVersion, std.PackageURL)
	require.Equal(t, "cpe:2.3:a:golang:go:"+goVersion+":-:*:*:*:*:*:*", std.CPE)
	require.Equal(t, cdx.Licenses{{License: &cdx.License{ID: "BSD-3-Clause"}}}, *std.Licenses)
	require.NotNil(t, echarts)
	require.Equal(t, "pkg:npm/echarts@"+notices.Embedded[0].Version, echarts.PackageURL)
	require.Equal(t, cdx.Licenses{{License: &cdx.License{ID: "Apache-2.0"}}}, *echarts.Licenses)
	require.Len(t, *(*bom.Dependencies)[0].Dependencies, len(*bom.Components), "the binary holds them all")

	validate(t, doc)

	again, err := Generate("../..", bin, "v1.2.0")
	require.NoError(t, err)
	require.True(t, bytes.Equal(doc, again), "the same binary, the same SBOM")
}

// TestBuildReplaced: a module replaced in go.mod is listed as the
// replacement the binary links, with its hash, the module it replaces as
// its ancestor; a version with +incompatible is escaped in the purl.
func TestBuildReplaced(t *testing.T) {
	h1 := "h1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xab}, 32))
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "example.com/app", Version: "(devel)"}, Deps: []*debug.Module{
		{Path: "example.com/old", Version: "v1.0.0", Sum: "h1:ignored", Replace: &debug.Module{Path: "example.com/fork", Version: "v1.0.1", Sum: h1}},
		{Path: "example.com/legacy", Version: "v2.0.0+incompatible", Sum: h1},
	}}
	bom, err := Build(bi, "app", "v1", strings.Repeat("0", 64), map[string]string{"example.com/fork": "MIT", "example.com/old": "GPL-3.0-only"}, nil)
	require.NoError(t, err)
	fork := (*bom.Components)[0]
	require.Equal(t, "example.com/fork", fork.Name)
	require.Equal(t, "v1.0.1", fork.Version)
	require.Equal(t, "pkg:golang/example.com/fork@v1.0.1", fork.PackageURL)
	require.Equal(t, []cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: strings.Repeat("ab", 32)}}, *fork.Hashes)
	require.Equal(t, cdx.Licenses{{License: &cdx.License{ID: "MIT"}}}, *fork.Licenses, "the replacement's licence")
	require.Equal(t, []cdx.Component{{Type: cdx.ComponentTypeLibrary, Name: "example.com/old", Version: "v1.0.0",
		PackageURL: "pkg:golang/example.com/old@v1.0.0"}}, *fork.Pedigree.Ancestors)
	require.Equal(t, "pkg:golang/example.com/legacy@v2.0.0%2Bincompatible", (*bom.Components)[1].PackageURL)

	doc, err := Encode(bom)
	require.NoError(t, err)
	validate(t, doc)
	require.NotContains(t, string(doc), "h1:ignored")

	bi.Deps[1].Sum = "h1:notbase64"
	_, err = Build(bi, "app", "v1", "00", nil, nil)
	require.EqualError(t, err, `sbom: module example.com/legacy v2.0.0+incompatible: hash "h1:notbase64" is not h1: and a SHA-256`)
}

// TestLicenceNotRecognised: a licence file that is mostly not a known
// licence fails the SBOM, naming the module; one licence, or several in
// one file, become an id or an AND expression.
func TestLicenceNotRecognised(t *testing.T) {
	dir := t.TempDir()
	m := notices.Module{Path: "example.com/odd", Version: "v1.0.0", Dir: dir}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "LICENSE"), []byte("You may use this if you are nice.\n"), 0o644))
	_, err := moduleLicence(m)
	require.EqualError(t, err, "sbom: example.com/odd v1.0.0: licence not recognised in LICENSE (0% of it is known licence text)")

	mit, err := os.ReadFile(filepath.Join(moduleDir(t, "github.com/segmentio/kafka-go"), "LICENSE"))
	require.NoError(t, err)
	bsd, err := os.ReadFile(filepath.Join(moduleDir(t, "golang.org/x/sync"), "LICENSE"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "LICENSE"), mit, 0o644))
	expr, err := moduleLicence(m)
	require.NoError(t, err)
	require.Equal(t, "MIT", expr)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "LICENSE"), append(append(mit, '\n'), bsd...), 0o644))
	expr, err = moduleLicence(m)
	require.NoError(t, err)
	require.Equal(t, "BSD-3-Clause AND MIT", expr)
	require.Equal(t, &cdx.Licenses{{Expression: "BSD-3-Clause AND MIT"}}, licences(expr))
}

// validate checks doc against the CycloneDX 1.6 JSON schema that
// cyclonedx-go ships (with the SPDX and JSF schemas it refers to), formats
// asserted.
func validate(t *testing.T, doc []byte) {
	t.Helper()
	dir := filepath.Join(moduleDir(t, "github.com/CycloneDX/cyclonedx-go"), "schema")
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	for url, file := range map[string]string{
		"http://cyclonedx.org/schema/bom-1.6.schema.json":  "bom-1.6.schema.json",
		"http://cyclonedx.org/schema/spdx.schema.json":     "spdx.schema.json",
		"http://cyclonedx.org/schema/jsf-0.82.schema.json": "jsf-0.82.schemax.json",
	} {
		f, err := os.Open(filepath.Join(dir, file))
		require.NoError(t, err)
		s, err := jsonschema.UnmarshalJSON(f)
		f.Close()
		require.NoError(t, err, file)
		require.NoError(t, c.AddResource(url, s))
	}
	sch, err := c.Compile("http://cyclonedx.org/schema/bom-1.6.schema.json")
	require.NoError(t, err)
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	require.NoError(t, err)
	require.NoError(t, sch.Validate(inst))
}

// moduleDir is a module's directory in the module cache, at go.mod's version.
func moduleDir(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "go", "list", "-m", "-f", "{{.Dir}}", path).Output()
	require.NoError(t, err)
	dir := strings.TrimSpace(string(out))
	require.NotEmpty(t, dir, "%s not in the module cache: go mod download %s", path, path)
	return dir
}
