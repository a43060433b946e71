// Package notices writes THIRD_PARTY_NOTICES for a pachca-export binary:
// the licence and notice files of every module linked into it (the list
// Go records in the binary, the one `go version -m` prints), of the Go
// standard library, and of Apache ECharts, which the report pages embed.
// Apache-2.0 (§4) asks a binary's distributor to give a copy of the
// licence and of the NOTICE files; BSD and MIT, the copyright notice and
// the licence text. The texts come from the Go module cache (`go mod
// download`, which asks the Go proxy only for a module not yet there) and
// the toolchain's GOROOT, so the same binary gives the same file.
package notices

import (
	"bytes"
	"debug/buildinfo"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Module is one component whose texts the file carries.
type Module struct {
	Path, Version string
	Dir           string // where its licence files are
}

// Embedded are third-party files embedded in the binary that no Go module
// carries: their licence files (the licence first), relative to the main
// module's directory, and the package they come from, for the SBOM
// (report/page's test keeps ECharts' version that of page.EChartsVersion).
var Embedded = []struct {
	Name                   string
	Files                  []string
	Package, Version, PURL string
}{
	{"Apache ECharts (report/page/assets/echarts.common.min.js, in every report page)",
		[]string{"report/page/assets/echarts.LICENSE", "report/page/assets/echarts.NOTICE"},
		"echarts", "6.1.0", "pkg:npm/echarts@6.1.0"},
}

// licenceFile is a file a module's licence terms are in: LICENSE, LICENCE,
// COPYING, NOTICE, PATENTS, with or without an extension (LICENSE.txt,
// NOTICE.md, LICENSE-APACHE).
var licenceFile = regexp.MustCompile(`(?i)^(licen[cs]e|copying|notice|patents|unlicense)([.-].*)?$`)

// Generate returns THIRD_PARTY_NOTICES for the binaries (their modules'
// union). It fails naming any module whose directory has no licence file,
// and a binary built by another Go than the one running (its standard
// library's texts would be another release's). repo is the main module's
// directory (for Embedded).
func Generate(repo string, binaries ...string) ([]byte, error) {
	std, mods, err := Linked(binaries...)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.WriteString("pachca-export includes the software below: the Go standard library, the Go\n" +
		"modules linked into it (`go version -m pachca-export` lists the same modules\n" +
		"and versions), and files embedded in it. Each one's licence and notice files\n" +
		"follow as their authors wrote them.\n")
	if err := section(&out, std); err != nil {
		return nil, err
	}
	for _, m := range mods {
		if err := section(&out, m); err != nil {
			return nil, err
		}
	}
	for _, e := range Embedded {
		fmt.Fprintf(&out, "\n%s\n%s\n", strings.Repeat("=", 78), e.Name)
		for _, f := range e.Files {
			if err := appendFile(&out, filepath.Join(repo, filepath.FromSlash(f)), f); err != nil {
				return nil, err
			}
		}
	}
	return out.Bytes(), nil
}

// Linked returns the Go standard library (Path "Go standard library",
// Version the binaries' go1.x, Dir the running toolchain's GOROOT) and the
// modules linked into the binaries (their union, a replaced module as its
// replacement, sorted by path), each in its directory of the module cache.
// It fails when the binaries were built by different Go releases or by
// another one than the go command's, whose GOROOT would be another
// release's standard library.
func Linked(binaries ...string) (Module, []Module, error) {
	deps := map[string]string{} // path -> version
	goVersion := ""
	for _, b := range binaries {
		bi, err := buildinfo.ReadFile(b)
		if err != nil {
			return Module{}, nil, fmt.Errorf("notices: %s: %w", b, err)
		}
		if goVersion == "" {
			goVersion = bi.GoVersion
		}
		if bi.GoVersion != goVersion {
			return Module{}, nil, fmt.Errorf("notices: %s built by %s, another binary by %s", b, bi.GoVersion, goVersion)
		}
		for _, d := range bi.Deps {
			if d.Replace != nil {
				d = d.Replace
			}
			deps[d.Path] = d.Version
		}
	}
	goroot, err := goEnv("GOROOT", "GOVERSION")
	if err != nil {
		return Module{}, nil, err
	}
	if goroot[1] != goVersion {
		return Module{}, nil, fmt.Errorf("notices: the binaries were built by %s, the go command is %s: run it with the Go that built them", goVersion, goroot[1])
	}
	mods, err := download(deps)
	if err != nil {
		return Module{}, nil, err
	}
	return Module{Path: StdlibName, Version: goVersion, Dir: goroot[0]}, mods, nil
}

// StdlibName is the Path Linked gives the Go standard library.
const StdlibName = "Go standard library"

// LicenceFiles returns the names of m's licence and notice files (LICENSE,
// COPYING, NOTICE, PATENTS...) in its directory, sorted, failing when none
// of them is a licence.
func LicenceFiles(m Module) ([]string, error) {
	entries, err := os.ReadDir(m.Dir)
	if err != nil {
		return nil, fmt.Errorf("notices: module %s %s: %w", m.Path, m.Version, err)
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() && licenceFile.MatchString(e.Name()) {
			names = append(names, e.Name())
		}
	}
	if !hasLicence(names) {
		return nil, fmt.Errorf("notices: module %s %s: no licence file (LICENSE, COPYING) in %s", m.Path, m.Version, m.Dir)
	}
	return names, nil // ReadDir sorts them
}

// section appends m's licence files, failing when it has none.
func section(out *bytes.Buffer, m Module) error {
	names, err := LicenceFiles(m)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\n%s\n%s %s\n", strings.Repeat("=", 78), m.Path, m.Version)
	for _, n := range names {
		if err := appendFile(out, filepath.Join(m.Dir, n), n); err != nil {
			return err
		}
	}
	return nil
}

// IsLicence tells a licence file among LicenceFiles' names from a NOTICE
// or PATENTS file, which alone grants nothing.
func IsLicence(name string) bool {
	l := strings.ToLower(name)
	return strings.HasPrefix(l, "licen") || strings.HasPrefix(l, "copying") || strings.HasPrefix(l, "unlicense")
}

func hasLicence(names []string) bool {
	for _, n := range names {
		if IsLicence(n) {
			return true
		}
	}
	return false
}

func appendFile(out *bytes.Buffer, path, title string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("notices: %w", err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return fmt.Errorf("notices: %s is empty", path)
	}
	fmt.Fprintf(out, "\n--- %s\n\n%s", title, bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")))
	if !bytes.HasSuffix(b, []byte("\n")) {
		out.WriteByte('\n')
	}
	return nil
}

// download finds each module in the module cache (fetching it through the
// Go proxy if it is not there), sorted by path.
func download(deps map[string]string) ([]Module, error) {
	if len(deps) == 0 {
		return nil, nil
	}
	args := []string{"mod", "download", "-json"}
	for p, v := range deps {
		args = append(args, p+"@"+v)
	}
	cmd := exec.Command("go", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	// go mod download -json reports a module it cannot get in its Error
	// field and exits 1: read the objects first, they name it.
	var mods []Module
	dec := json.NewDecoder(bytes.NewReader(b))
	for dec.More() {
		var m struct{ Path, Version, Dir, Error string }
		if derr := dec.Decode(&m); derr != nil {
			return nil, fmt.Errorf("notices: go mod download: %w", derr)
		}
		if m.Error != "" {
			return nil, fmt.Errorf("notices: module %s %s: %s", m.Path, m.Version, m.Error)
		}
		mods = append(mods, Module{Path: m.Path, Version: m.Version, Dir: m.Dir})
	}
	if err != nil {
		return nil, fmt.Errorf("notices: go mod download: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	if len(mods) != len(deps) {
		return nil, fmt.Errorf("notices: go mod download returned %d modules of %d", len(mods), len(deps))
	}
	sort.Slice(mods, func(i, j int) bool { return mods[i].Path < mods[j].Path })
	return mods, nil
}

// goEnv returns the go command's values of the variables.
func goEnv(names ...string) ([]string, error) {
	b, err := exec.Command("go", append([]string{"env"}, names...)...).Output()
	if err != nil {
		return nil, fmt.Errorf("notices: go env: %w", err)
	}
	vals := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(vals) != len(names) {
		return nil, fmt.Errorf("notices: go env %v: %q", names, b)
	}
	return vals, nil
}
