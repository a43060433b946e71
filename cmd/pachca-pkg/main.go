// Command pachca-pkg builds the Debian and RPM packages of pachca-export
// (`make packages`, `make release`) with nfpm as a library, from the
// release binaries, without dpkg-deb or rpmbuild. It is a build tool: it
// links nfpm, which the pachca-export binary never does.
//
//	pachca-pkg -version V [-date RFC3339] -notices FILE -maintainer 'NAME <EMAIL>' [-deploy DIR] [-readme FILE] -o DIR BINARY...
//
// For each BINARY (a static linux/amd64 or linux/arm64 pachca-export, its
// SBOM at BINARY.cdx.json as cmd/pachca-sbom writes it) it writes
// DIR/pachca-export_DEBVERSION_ARCH.deb and
// DIR/pachca-export-RPMVERSION-1.RPMARCH.rpm and prints their names. What
// is in them: see contents. Every file's time is -date (the commit's, as
// the binary's stamp), so one commit gives the same bytes.
package main

import (
	"debug/elf"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
	"github.com/goreleaser/nfpm/v2/rpm"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// spec is what one package is built from.
type spec struct {
	binary, arch   string // the file, its GOARCH
	sbom, notices  string
	readme, deploy string // README.md; the directory of systemd/ and package/
	version        string // the release VERSION (git describe)
	date           time.Time
	maintainer     string
}

// run executes the command line and returns the exit status: 0 done,
// 1 the build failed, 2 usage.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("pachca-pkg", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var s spec
	var out, date string
	fs.StringVar(&s.version, "version", "", "the release `VERSION` (git describe: v1.2.0, v1.2.0-3-gabcdef1, abcdef1)")
	fs.StringVar(&date, "date", "", "the time of every file and of the build, RFC 3339 (the commit's; default 1970-01-01T00:00:00Z)")
	fs.StringVar(&s.notices, "notices", "", "THIRD_PARTY_NOTICES `FILE` of the binaries (cmd/pachca-notices)")
	fs.StringVar(&s.maintainer, "maintainer", "", "the packages' maintainer, `NAME <EMAIL>`")
	fs.StringVar(&s.readme, "readme", "README.md", "the README `FILE`, in /usr/share/doc/pachca-export")
	fs.StringVar(&s.deploy, "deploy", "deploy", "the `DIR` of systemd/ (the units, the sysusers.d file) and package/ (the example configuration, the maintainer scripts)")
	fs.StringVar(&out, "o", "", "write the packages into `DIR`")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	usage := func(msg string) int {
		fmt.Fprintln(stderr, "pachca-pkg: "+msg)
		return 2
	}
	switch {
	case fs.NArg() == 0:
		return usage("no binary given: pachca-pkg [flags] dist/pachca-export-linux-amd64 ...")
	case out == "":
		return usage("-o DIR is required")
	case s.notices == "":
		return usage("-notices is required: the packages carry the licence texts of what the binary links (go run ./cmd/pachca-notices -o FILE BINARY)")
	case s.maintainer == "":
		return usage("-maintainer 'NAME <EMAIL>' is required (Debian's Maintainer field)")
	}
	for _, a := range fs.Args() {
		if strings.HasPrefix(a, "-") {
			return usage(fmt.Sprintf("%s after the binaries: flags go first", a))
		}
	}
	s.date = time.Unix(0, 0).UTC()
	if date != "" && date != "unknown" {
		t, err := time.Parse(time.RFC3339, date)
		if err != nil {
			return usage(fmt.Sprintf("-date %q: want RFC 3339, e.g. 2026-11-01T00:00:00Z", date))
		}
		s.date = t.UTC()
	}
	if _, err := packageVersion(s.version, s.date); err != nil {
		return usage(err.Error())
	}
	for _, bin := range fs.Args() {
		s.binary, s.sbom = bin, bin+".cdx.json"
		arch, err := goarch(bin)
		if err != nil {
			fmt.Fprintln(stderr, "pachca-pkg: "+err.Error())
			return 1
		}
		s.arch = arch
		for _, format := range []string{"deb", "rpm"} {
			name, err := build(s, format, out)
			if err != nil {
				fmt.Fprintf(stderr, "pachca-pkg: %s of %s: %v\n", format, bin, err)
				return 1
			}
			fmt.Fprintln(stdout, name)
		}
	}
	return 0
}

// goarch is the GOARCH of a linux ELF binary the packages are made for.
func goarch(file string) (string, error) {
	f, err := elf.Open(file)
	if err != nil {
		return "", fmt.Errorf("%s: not a linux binary: %w", file, err)
	}
	defer f.Close()
	switch f.Machine {
	case elf.EM_X86_64:
		return "amd64", nil
	case elf.EM_AARCH64:
		return "arm64", nil
	}
	return "", fmt.Errorf("%s: a binary for %s: packages are made for amd64 and arm64", file, f.Machine)
}

// The releases' VERSION, as git describe --tags --always --dirty prints
// it: a tag (v1.2.0, v1.2.0-rc.1), the commits since it and the commit
// (v1.2.0-3-gabcdef1), a commit with no tag before it (abcdef1), -dirty.
var (
	describeTag  = regexp.MustCompile(`^v?([0-9]+(?:\.[0-9]+)*)(?:-((?:alpha|beta|rc|pre)[.0-9A-Za-z]*))?(?:-([0-9]+)-g([0-9a-f]+))?(-dirty)?$`)
	describeHash = regexp.MustCompile(`^([0-9a-f]{4,40})(-dirty)?$`)
	// What dpkg and rpm both accept in a version without a revision or a
	// release, and compare the same way for these: digits first, then
	// letters, digits and . + ~ (~ sorts before anything, a pre-release).
	validVersion = regexp.MustCompile(`^[0-9][0-9A-Za-z.+~]*$`)
)

// packageVersion maps a release VERSION to the version of both packages,
// in the order dpkg and rpm compare them: v1.2.0 -> 1.2.0, v1.2.0-rc.1 ->
// 1.2.0~rc.1 (before 1.2.0), v1.2.0-3-gabcdef1 -> 1.2.0+3.gabcdef1 (after
// it), a commit with no tag before it -> 0.0.0+git20261203084212.gabcdef1
// (ordered by the commit's time), -dirty -> +dirty or .dirty, dev ->
// 0.0.0+dev.
func packageVersion(v string, date time.Time) (string, error) {
	var out string
	dirty := false
	switch m := describeTag.FindStringSubmatch(v); {
	case m != nil:
		out = m[1]
		if m[2] != "" {
			out += "~" + m[2]
		}
		if m[3] != "" {
			out += "+" + m[3] + ".g" + m[4]
		}
		dirty = m[5] != ""
	case describeHash.MatchString(v):
		m := describeHash.FindStringSubmatch(v)
		out = "0.0.0+git" + date.UTC().Format("20060102150405") + ".g" + m[1]
		dirty = m[2] != ""
	case v == "dev":
		out = "0.0.0+dev"
	default:
		return "", fmt.Errorf("-version %q: want what git describe --tags --always --dirty prints (v1.2.0, v1.2.0-rc.1, v1.2.0-3-gabcdef1, abcdef1, with -dirty) or dev", v)
	}
	if dirty {
		if strings.Contains(out, "+") {
			out += ".dirty"
		} else {
			out += "+dirty"
		}
	}
	if !validVersion.MatchString(out) {
		return "", fmt.Errorf("-version %q: %q is no package version", v, out)
	}
	return out, nil
}

// The units the packages install, from deploy/systemd.
var units = []string{
	"pachca-export.service", "pachca-export.timer", "pachca-export-follow.service",
	"pachca-export@.service", "pachca-export@.timer", "pachca-export-follow@.service",
}

// The binary's path in the packages, and where deploy/systemd's units
// (for a binary installed by hand) look for it.
const (
	packagedBinary = "/usr/bin/pachca-export"
	manualBinary   = "/usr/local/bin/pachca-export"
	docDir         = "/usr/share/doc/pachca-export/"
	// packageRelease is the packaging's own revision, the same for every
	// VERSION: the packages are made from the release, never patched.
	packageRelease = "1"
)

const description = `Export the Pachca audit-event log to files, S3 and Kafka
pachca-export copies the audit-event log of a Pachca workspace into
NDJSON and Parquet files, an S3 bucket or a Kafka topic: every night
(pachca-export.timer) or as a continuous feed for a SIEM
(pachca-export-follow.service). Every event of a day lands exactly once
in every file sink, with signed manifests that verify reads back.
The package enables and starts no unit: write the token into
/etc/pachca-export/token.env, edit /etc/pachca-export/pipeline.yaml,
then systemctl enable --now pachca-export.timer.`

// contents lists the packages' files: the binary, the units (their
// ExecStart= on /usr/bin), the sysusers.d file, the example
// configuration (a conffile, kept when edited), the README, the notices
// and the SBOM. Files deb or rpm do not take from a source on disk are
// written into tmp.
func contents(s spec, tmp string) (files.Contents, error) {
	file := func(src, dst string, mode os.FileMode) *files.Content {
		return &files.Content{Source: src, Destination: dst, Type: files.TypeFile,
			FileInfo: &files.ContentFileInfo{Owner: "root", Group: "root", Mode: mode, MTime: s.date}}
	}
	dir := func(dst string) *files.Content {
		return &files.Content{Destination: dst, Type: files.TypeDir,
			FileInfo: &files.ContentFileInfo{Owner: "root", Group: "root", Mode: 0o755, MTime: s.date}}
	}
	c := files.Contents{
		file(s.binary, packagedBinary, 0o755),
		file(filepath.Join(s.deploy, "systemd", "pachca-export.sysusers"), "/usr/lib/sysusers.d/pachca-export.conf", 0o644),
		dir("/etc/pachca-export"),
		file(s.readme, docDir+"README.md", 0o644),
		file(s.notices, docDir+"THIRD_PARTY_NOTICES", 0o644),
		file(s.sbom, docDir+"pachca-export.cdx.json", 0o644),
	}
	conf := file(filepath.Join(s.deploy, "package", "pipeline.yaml"), "/etc/pachca-export/pipeline.yaml", 0o644)
	conf.Type = files.TypeConfigNoReplace
	c = append(c, conf)
	for _, u := range units {
		b, err := os.ReadFile(filepath.Join(s.deploy, "systemd", u))
		if err != nil {
			return nil, err
		}
		exec := "ExecStart=" + manualBinary + " "
		if n := strings.Count(string(b), "\n"+exec); n != 1 && strings.HasSuffix(u, ".service") {
			return nil, fmt.Errorf("%s: want one line %s...: the packaged unit runs %s", u, exec, packagedBinary)
		}
		b = []byte(strings.ReplaceAll(string(b), manualBinary, packagedBinary))
		staged := filepath.Join(tmp, u)
		if err := os.WriteFile(staged, b, 0o644); err != nil {
			return nil, err
		}
		c = append(c, file(staged, "/usr/lib/systemd/system/"+u, 0o644))
	}
	// Debian's policy: the copyright file names the licences of all the
	// package carries, a static binary included: THIRD_PARTY_NOTICES.
	copyright := filepath.Join(tmp, "copyright")
	if err := os.WriteFile(copyright, []byte("pachca-export\n\n"+
		"The licence texts of the Go standard library and of every module the\n"+
		"pachca-export binary links, and of Apache ECharts, which its reports\n"+
		"embed, are in /usr/share/doc/pachca-export/THIRD_PARTY_NOTICES;\n"+
		"the modules, their versions and licences, in pachca-export.cdx.json\n"+
		"(CycloneDX 1.6) beside it.\n"), 0o644); err != nil {
		return nil, err
	}
	cp := file(copyright, docDir+"copyright", 0o644)
	cp.Packager = "deb"
	overrides := file(filepath.Join(s.deploy, "package", "lintian-overrides"), "/usr/share/lintian/overrides/pachca-export", 0o644)
	overrides.Packager = "deb"
	c = append(c, cp, overrides)
	return c, nil
}

// build writes one package of s into dir and returns its name.
func build(s spec, format, dir string) (string, error) {
	version, err := packageVersion(s.version, s.date)
	if err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp("", "pachca-pkg-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	c, err := contents(s, tmp)
	if err != nil {
		return "", err
	}
	changelog := filepath.Join(tmp, "changelog.yml")
	// Debian's changelog.Debian.gz: one entry, the release's (lintian
	// wants one in every package).
	if err := os.WriteFile(changelog, []byte(fmt.Sprintf("- semver: %s\n  date: %s\n  packager: %s\n"+
		"  deb:\n    urgency: medium\n    distributions: [stable]\n  changes:\n    - note: %s\n",
		yamlQuote(version+"-"+packageRelease), s.date.Format(time.RFC3339), yamlQuote(s.maintainer), yamlQuote("pachca-export "+s.version))), 0o644); err != nil {
		return "", err
	}
	script := func(name string) string { return filepath.Join(s.deploy, "package", name) }
	info := &nfpm.Info{
		Name:          "pachca-export",
		Arch:          s.arch,
		Platform:      "linux",
		Version:       version,
		VersionSchema: "none", // as mapped: nfpm's semver would move the parts
		Release:       packageRelease,
		Section:       "admin",
		Priority:      "optional",
		Maintainer:    s.maintainer,
		Description:   description,
		MTime:         s.date,
		Overridables: nfpm.Overridables{
			Contents: c,
			Umask:    0o022,
			Scripts: nfpm.Scripts{
				PostInstall: script("postinstall.sh"),
				PreRemove:   script("preremove.sh"),
				PostRemove:  script("postremove.sh"),
			},
			RPM: nfpm.RPM{
				Summary:   strings.SplitN(description, "\n", 2)[0],
				Group:     "Applications/System",
				BuildHost: "pachca-pkg", // not this machine's name: the same bytes anywhere
			},
		},
	}
	if format == "deb" {
		info.Changelog = changelog
	} else { // rpm's Summary is the first line
		info.Description = strings.SplitN(description, "\n", 2)[1]
	}
	var p interface {
		nfpm.Packager
		ConventionalFileName(*nfpm.Info) string
	}
	if format == "deb" {
		p = deb.Default
	} else {
		p = rpm.DefaultRPM
	}
	info = nfpm.WithDefaults(info)
	if err := nfpm.Validate(info); err != nil {
		return "", err
	}
	name := p.ConventionalFileName(info)
	f, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	err = p.Package(info, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(dir, name))
	}
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, name), nil
}

// yamlQuote is s as a YAML double-quoted scalar.
func yamlQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
