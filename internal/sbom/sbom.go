// Package sbom writes the software bill of materials of a pachca-export
// binary as CycloneDX 1.6 JSON, the form Dependency-Track, Grype and Trivy
// read: the Go modules linked into it as the binary records them (the
// list `go version -m` prints: path, version and h1: hash, a replaced
// module as its replacement), the Go standard library of the toolchain
// that built it, the files embedded from other projects (internal/notices'
// Embedded), and the licence of each, identified from the licence files
// internal/notices finds (github.com/google/licensecheck). The same binary
// gives the same bytes: no time, and a serial number derived from the
// rest.
package sbom

import (
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/licensecheck"
	"github.com/google/uuid"

	"github.com/pachca-export/pachca-export/internal/notices"
)

// SpecVersion is the CycloneDX version written: 1.6, not cyclonedx-go's
// default 1.7, which Trivy could not decode in 2026 (aquasecurity/trivy
// issue 10185).
const SpecVersion = cdx.SpecVersion1_6

// mainName is the main component's name.
const mainName = "pachca-export"

// minCoverage is the share of a licence file, in per cent, that known
// licence texts must cover for it to be named (pkg.go.dev's threshold):
// below it the file says more than the texts found.
const minCoverage = 75

// Generate returns the SBOM of the binary, stamped version (the release's
// VERSION, which -trimpath keeps out of the build info). repo is the main
// module's directory (for notices.Embedded). It fails naming a module
// whose licence file is missing or not recognised, and, as
// notices.Linked, a binary built by another Go than the go command.
func Generate(repo, binary, version string) ([]byte, error) {
	data, err := os.ReadFile(binary)
	if err != nil {
		return nil, fmt.Errorf("sbom: %w", err)
	}
	bi, err := buildinfo.Read(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("sbom: %s: %w", binary, err)
	}
	std, mods, err := notices.Linked(binary)
	if err != nil {
		return nil, err
	}
	lic := map[string]string{} // path -> SPDX expression
	for _, m := range append([]notices.Module{std}, mods...) {
		if lic[m.Path], err = moduleLicence(m); err != nil {
			return nil, err
		}
	}
	var embedded []cdx.Component
	for _, e := range notices.Embedded {
		expr, err := licence(e.Name, filepath.Join(repo, filepath.FromSlash(e.Files[0])))
		if err != nil {
			return nil, err
		}
		embedded = append(embedded, cdx.Component{BOMRef: e.PURL, Type: cdx.ComponentTypeLibrary,
			Name: e.Package, Version: e.Version, Description: e.Name, PackageURL: e.PURL, Licenses: licences(expr)})
	}
	sum := sha256.Sum256(data)
	bom, err := Build(bi, mainName, version, hex.EncodeToString(sum[:]), lic, embedded)
	if err != nil {
		return nil, err
	}
	return Encode(bom)
}

// Build returns the BOM of a binary of build info bi and file SHA-256
// sha256hex: the main component name at version, one component a linked
// module (a replaced one as its replacement, what it replaces as its
// pedigree's ancestor), the standard library, then embedded. lic maps a
// module path (notices.StdlibName for the standard library) to its SPDX
// licence expression; a module it lacks has none.
func Build(bi *debug.BuildInfo, name, version, sha256hex string, lic map[string]string, embedded []cdx.Component) (*cdx.BOM, error) {
	main := cdx.Component{BOMRef: purl(bi.Main.Path, version), Type: cdx.ComponentTypeApplication,
		Name: name, Version: version, PackageURL: purl(bi.Main.Path, version),
		Hashes: &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: sha256hex}}}
	var props []cdx.Property
	for _, s := range bi.Settings {
		// the taxonomy's names for the target and cgo (cdx:gomod)
		if s.Key == "GOOS" || s.Key == "GOARCH" || s.Key == "CGO_ENABLED" {
			props = append(props, cdx.Property{Name: "cdx:gomod:build:env:" + s.Key, Value: s.Value})
		}
	}
	if len(props) > 0 {
		main.Properties = &props
	}
	var comps []cdx.Component
	for _, d := range bi.Deps {
		c, err := moduleComponent(d, lic)
		if err != nil {
			return nil, err
		}
		comps = append(comps, c)
	}
	stdVersion := strings.TrimPrefix(bi.GoVersion, "go")
	comps = append(comps, cdx.Component{
		BOMRef: "pkg:golang/stdlib@" + stdVersion, Type: cdx.ComponentTypeLibrary,
		Name: "stdlib", Version: stdVersion,
		Description: "the Go standard library and runtime of " + bi.GoVersion + ", the toolchain that built " + name,
		// Trivy and OSV look the standard library up by this purl, Grype by the CPE.
		PackageURL: "pkg:golang/stdlib@" + stdVersion,
		CPE:        "cpe:2.3:a:golang:go:" + stdVersion + ":-:*:*:*:*:*:*",
		Licenses:   licences(lic[notices.StdlibName]),
	})
	comps = append(comps, embedded...)
	refs := make([]string, len(comps))
	for i, c := range comps {
		refs[i] = c.BOMRef
	}
	bom := cdx.NewBOM()
	bom.Metadata = &cdx.Metadata{Component: &main}
	bom.Components = &comps
	// The build info has no graph: the binary holds every one of them.
	bom.Dependencies = &[]cdx.Dependency{{Ref: main.BOMRef, Dependencies: &refs}}
	return bom, nil
}

// moduleComponent is the component of a module the binary links.
func moduleComponent(d *debug.Module, lic map[string]string) (cdx.Component, error) {
	orig := d
	if d.Replace != nil {
		d = d.Replace
	}
	c := cdx.Component{BOMRef: purl(d.Path, d.Version), Type: cdx.ComponentTypeLibrary,
		Name: d.Path, Version: d.Version, PackageURL: purl(d.Path, d.Version), Licenses: licences(lic[d.Path])}
	if d.Sum != "" {
		// h1: is the base64 of a SHA-256 (of the module's file list and
		// their SHA-256s); written as hex, as cyclonedx-gomod does.
		raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(d.Sum, "h1:"))
		if !strings.HasPrefix(d.Sum, "h1:") || err != nil || len(raw) != sha256.Size {
			return cdx.Component{}, fmt.Errorf("sbom: module %s %s: hash %q is not h1: and a SHA-256", d.Path, d.Version, d.Sum)
		}
		c.Hashes = &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: hex.EncodeToString(raw)}}
	}
	if orig != d {
		c.Pedigree = &cdx.Pedigree{Ancestors: &[]cdx.Component{{Type: cdx.ComponentTypeLibrary,
			Name: orig.Path, Version: orig.Version, PackageURL: purl(orig.Path, orig.Version)}}}
	}
	return c, nil
}

// purl is the package URL of a Go module; '+' (v2.0.0+incompatible) is
// escaped as purl-spec asks.
func purl(path, version string) string {
	p := "pkg:golang/" + path
	if version != "" {
		p += "@" + strings.ReplaceAll(version, "+", "%2B")
	}
	return p
}

// licences is a component's licences: one SPDX id, or the expression of
// several.
func licences(expr string) *cdx.Licenses {
	switch {
	case expr == "":
		return nil
	case strings.Contains(expr, " "):
		return &cdx.Licenses{{Expression: expr}}
	default:
		return &cdx.Licenses{{License: &cdx.License{ID: expr}}}
	}
}

// moduleLicence is the SPDX expression of m's licence files together.
func moduleLicence(m notices.Module) (string, error) {
	names, err := notices.LicenceFiles(m)
	if err != nil {
		return "", err
	}
	ids := map[string]bool{}
	for _, n := range names {
		if !notices.IsLicence(n) {
			continue
		}
		expr, err := licence(m.Path+" "+m.Version, filepath.Join(m.Dir, n))
		if err != nil {
			return "", err
		}
		for _, id := range strings.Split(expr, " AND ") {
			ids[id] = true
		}
	}
	return and(ids), nil
}

// licence names the licences of one licence file: several (a project's
// own and those of code it bundles, as in arrow-go's LICENSE.txt) each
// apply to a part, so they are joined with AND. A module carrying two
// licence files to choose from (LICENSE-MIT, LICENSE-APACHE) gets AND too,
// stricter than the choice it offers.
func licence(what, path string) (string, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("sbom: %s: %w", what, err)
	}
	cov := licensecheck.Scan(text)
	ids := map[string]bool{}
	for _, m := range cov.Match {
		if !m.IsURL { // a URL names a licence, it is not its text
			ids[m.ID] = true
		}
	}
	if len(ids) == 0 || cov.Percent < minCoverage {
		return "", fmt.Errorf("sbom: %s: licence not recognised in %s (%.0f%% of it is known licence text)", what, filepath.Base(path), cov.Percent)
	}
	return and(ids), nil
}

func and(ids map[string]bool) string {
	var l []string
	for id := range ids {
		l = append(l, id)
	}
	sort.Strings(l)
	return strings.Join(l, " AND ")
}

// Encode writes bom as indented JSON of SpecVersion, its serial number a
// name-based UUID (version 5) of the rest, so that the same BOM has the
// same number and a different one another.
func Encode(bom *cdx.BOM) ([]byte, error) {
	b := *bom
	b.SerialNumber = ""
	unnumbered, err := encode(&b)
	if err != nil {
		return nil, err
	}
	space := uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://github.com/pachca-export/pachca-export#sbom"))
	b.SerialNumber = uuid.NewSHA1(space, unnumbered).URN()
	return encode(&b)
}

func encode(bom *cdx.BOM) ([]byte, error) {
	var out bytes.Buffer
	if err := cdx.NewBOMEncoder(&out, cdx.BOMFileFormatJSON).SetPretty(true).EncodeVersion(bom, SpecVersion); err != nil {
		return nil, fmt.Errorf("sbom: encode: %w", err)
	}
	return out.Bytes(), nil
}
