package main

import (
	"bufio"
	"bytes"
	"debug/buildinfo"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/internal/notices"
	"github.com/pachca-export/pachca-export/internal/sbom"
	"github.com/pachca-export/pachca-export/simulator"
	"github.com/pachca-export/pachca-export/testkit/buildtest"
)

// The files every package holds, beside the directories: path -> mode.
var packaged = map[string]string{
	"/usr/bin/pachca-export":                                "-rwxr-xr-x",
	"/usr/lib/systemd/system/pachca-export.service":         "-rw-r--r--",
	"/usr/lib/systemd/system/pachca-export.timer":           "-rw-r--r--",
	"/usr/lib/systemd/system/pachca-export-follow.service":  "-rw-r--r--",
	"/usr/lib/systemd/system/pachca-export@.service":        "-rw-r--r--",
	"/usr/lib/systemd/system/pachca-export@.timer":          "-rw-r--r--",
	"/usr/lib/systemd/system/pachca-export-follow@.service": "-rw-r--r--",
	"/usr/lib/sysusers.d/pachca-export.conf":                "-rw-r--r--",
	"/etc/pachca-export/pipeline.yaml":                      "-rw-r--r--",
	"/usr/share/doc/pachca-export/README.md":                "-rw-r--r--",
	"/usr/share/doc/pachca-export/THIRD_PARTY_NOTICES":      "-rw-r--r--",
	"/usr/share/doc/pachca-export/pachca-export.cdx.json":   "-rw-r--r--",
}

// debOnly are the files only the .deb has: what Debian's policy and
// lintian ask for.
var debOnly = map[string]string{
	"/usr/share/doc/pachca-export/copyright":           "-rw-r--r--",
	"/usr/share/doc/pachca-export/changelog.Debian.gz": "-rw-r--r--",
	"/usr/share/lintian/overrides/pachca-export":       "-rw-r--r--",
}

// requireTool finds a program the test reads the packages with: without
// it the part skips, or fails with CI=true (`make test` installs it).
func requireTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found (CI=true: `make test` installs Debian's %s package)", name, pkg)
		}
		t.Skipf("%s not found: install Debian's %s package (make package-tools)", name, pkg)
	}
	return p
}

// command runs a program and returns its standard output; it fails the
// test, with both outputs, on an exit status other than 0.
func command(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), name, args...)
	cmd.Env = append(os.Environ(), "TZ=UTC") // dpkg-deb's dates
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "%s %s\n%s%s", name, strings.Join(args, " "), stdout.String(), stderr.String())
	return stdout.String()
}

// buildTool builds this command as `make packages` runs it: compressing
// a package's 50 MB in a test binary built with -race takes minutes.
func buildTool(t *testing.T) string {
	t.Helper()
	tool := filepath.Join(t.TempDir(), "pachca-pkg")
	command(t, "go", "build", "-o", tool, "github.com/pachca-export/pachca-export/cmd/pachca-pkg")
	return tool
}

// built is the packages of one build and what they were made from.
type built struct {
	bin, deb, rpm string
}

// buildPackages builds the packages of bin into a new directory, with the
// files of deploy/ copied to a new place and dated now, as in another
// checkout: nothing of that may change the bytes.
func buildPackages(t *testing.T, tool, bin, noticesFile, version string) built {
	t.Helper()
	deploy := t.TempDir()
	for _, sub := range []string{"systemd", "package"} {
		require.NoError(t, os.CopyFS(filepath.Join(deploy, sub), os.DirFS(filepath.Join("../../deploy", sub))))
	}
	out := t.TempDir()
	stdout := command(t, tool, "-version", version, "-date", buildtest.Date, "-notices", noticesFile,
		"-maintainer", "Pachca Export Maintainers <pachca-export@example.com>",
		"-deploy", deploy, "-readme", "../../README.md", "-o", out, bin)
	names := strings.Split(strings.TrimSpace(stdout), "\n")
	require.Len(t, names, 2, stdout)
	return built{bin: bin, deb: names[0], rpm: names[1]}
}

// TestPackages builds the .deb and the .rpm of a freshly built binary as
// `make packages` does, twice, and reads them back with Debian's and
// RPM's own tools: files, modes, owners, conffiles, maintainer scripts,
// lintian; the .deb unpacked: systemd-analyze verify on its units, the
// sysusers.d file creating the user, the binary's version, and check on
// the example configuration with a token planted, against the simulator.
func TestPackages(t *testing.T) {
	requireTool(t, "dpkg-deb", "dpkg")
	bin := buildtest.StaticBinary(t)
	info, err := buildinfo.ReadFile(bin)
	require.NoError(t, err)
	for _, m := range info.Deps {
		require.NotContains(t, m.Path, "nfpm", "the packaging library is a build tool's, never the binary's")
	}
	text, err := notices.Generate("../..", bin)
	require.NoError(t, err)
	noticesFile := filepath.Join(t.TempDir(), "THIRD_PARTY_NOTICES")
	require.NoError(t, os.WriteFile(noticesFile, text, 0o644))
	doc, err := sbom.Generate("../..", bin, buildtest.Version)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(bin+".cdx.json", doc, 0o644))

	const version = "v1.2.0-3-gabcdef1"
	tool := buildTool(t)
	p := buildPackages(t, tool, bin, noticesFile, version)
	debArch := runtime.GOARCH
	rpmArch := map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[runtime.GOARCH]
	require.Equal(t, "pachca-export_1.2.0+3.gabcdef1-1_"+debArch+".deb", filepath.Base(p.deb))
	require.Equal(t, "pachca-export-1.2.0+3.gabcdef1-1."+rpmArch+".rpm", filepath.Base(p.rpm))

	t.Run("reproducible", func(t *testing.T) {
		again := buildPackages(t, tool, bin, noticesFile, version)
		for _, pair := range [][2]string{{p.deb, again.deb}, {p.rpm, again.rpm}} {
			a, err := os.ReadFile(pair[0])
			require.NoError(t, err)
			b, err := os.ReadFile(pair[1])
			require.NoError(t, err)
			require.True(t, bytes.Equal(a, b), "%s: two builds of one binary and one commit differ", filepath.Base(pair[0]))
		}
	})

	t.Run("deb", func(t *testing.T) {
		// lintian takes about 15 s: it runs while the rest is checked.
		lintianDone := startLintian(t, p.deb)
		defer lintianDone()
		control := command(t, "dpkg-deb", "--field", p.deb)
		for _, want := range []string{"Package: pachca-export", "Version: 1.2.0+3.gabcdef1-1", "Architecture: " + debArch,
			"Maintainer: Pachca Export Maintainers <pachca-export@example.com>", "Section: admin"} {
			require.Contains(t, control, want+"\n")
		}
		require.NotContains(t, control, "Depends:", "a static binary: the package depends on nothing")
		require.Equal(t, "/etc/pachca-export/pipeline.yaml\n", command(t, "dpkg-deb", "--info", p.deb, "conffiles"))

		// dpkg-deb --contents: mode, owner/group, size, date, time, ./path
		want := map[string]string{}
		for _, m := range []map[string]string{packaged, debOnly} {
			for k, v := range m {
				want[k] = v
			}
		}
		got := map[string]string{}
		sc := bufio.NewScanner(strings.NewReader(command(t, "dpkg-deb", "--contents", p.deb)))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			require.Len(t, f, 6, sc.Text())
			require.Contains(t, []string{"root/root", "0/0"}, f[1], "%s: owned by root", f[5])
			require.Equal(t, "2026-11-30", f[3], "%s: dated by -date (the commit's time), in UTC", f[5])
			path := strings.TrimPrefix(f[5], ".")
			if strings.HasPrefix(f[0], "d") {
				require.Equal(t, "drwxr-xr-x", f[0], path)
				continue
			}
			got[path] = f[0]
		}
		require.Equal(t, want, got)

		t.Run("maintainer scripts", func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "DEBIAN")
			command(t, "dpkg-deb", "--control", p.deb, dir)
			for _, s := range []string{"postinst", "prerm", "postrm"} {
				b, err := os.ReadFile(filepath.Join(dir, s))
				require.NoError(t, err)
				command(t, "sh", "-n", filepath.Join(dir, s))
				require.NotRegexp(t, `systemctl (enable|start|restart)`, string(b), "%s: the package never enables or starts a unit", s)
				require.NotContains(t, string(b), "/var/lib/pachca-export\n", "%s: removal leaves the state alone", s)
			}
			postinst, err := os.ReadFile(filepath.Join(dir, "postinst"))
			require.NoError(t, err)
			require.Contains(t, string(postinst), "systemd-sysusers pachca-export.conf")
			require.Contains(t, string(postinst), "systemctl daemon-reload")
		})

		root := t.TempDir()
		command(t, "dpkg-deb", "--extract", p.deb, root)

		t.Run("units", func(t *testing.T) {
			analyze := requireTool(t, "systemd-analyze", "systemd")
			for _, u := range units {
				b, err := os.ReadFile(filepath.Join(root, "usr/lib/systemd/system", u))
				require.NoError(t, err)
				require.NotContains(t, string(b), "/usr/local/bin/", u)
				if strings.HasSuffix(u, ".service") {
					require.Regexp(t, `(?m)^ExecStart=/usr/bin/pachca-export (run|follow) -c /etc/pachca-export/`, string(b), u)
				}
			}
			// systemd-analyze --root reads the units the targets they
			// name (from this machine) beside the package's.
			vroot := t.TempDir()
			require.NoError(t, os.CopyFS(vroot, os.DirFS(root)))
			hostUnits := "/usr/lib/systemd/system"
			if _, err := os.Stat(filepath.Join(hostUnits, "sysinit.target")); err != nil {
				hostUnits = "/lib/systemd/system"
			}
			entries, err := os.ReadDir(hostUnits)
			require.NoError(t, err)
			for _, e := range entries {
				dst := filepath.Join(vroot, "usr/lib/systemd/system", e.Name())
				if _, err := os.Lstat(dst); err == nil || e.IsDir() {
					continue
				}
				src := filepath.Join(hostUnits, e.Name())
				if e.Type()&fs.ModeSymlink != 0 {
					target, err := os.Readlink(src)
					require.NoError(t, err)
					require.NoError(t, os.Symlink(target, dst))
					continue
				}
				b, err := os.ReadFile(src)
				require.NoError(t, err)
				require.NoError(t, os.WriteFile(dst, b, 0o644))
			}
			out, err := exec.CommandContext(t.Context(), analyze, "verify", "--root="+vroot,
				"pachca-export.service", "pachca-export.timer", "pachca-export-follow.service",
				"pachca-export@acme.service", "pachca-export@acme.timer", "pachca-export-follow@acme.service").CombinedOutput()
			require.NoError(t, err, "%s", out)
			require.Empty(t, string(out))
		})

		t.Run("sysusers", func(t *testing.T) {
			sysusers := requireTool(t, "systemd-sysusers", "systemd")
			require.NoError(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
			command(t, sysusers, "--root="+root, "pachca-export.conf")
			passwd, err := os.ReadFile(filepath.Join(root, "etc/passwd"))
			require.NoError(t, err)
			require.Regexp(t, `(?m)^pachca-export:x:[0-9]+:[0-9]+:[^:]*:/var/lib/pachca-export:`, string(passwd))
		})

		packagedBin := filepath.Join(root, "usr/bin/pachca-export")
		t.Run("version", func(t *testing.T) {
			require.Regexp(t, `^pachca-export `+regexp.QuoteMeta(buildtest.Version)+` \(commit `+buildtest.Commit[:12],
				command(t, packagedBin, "version"))
		})

		t.Run("check", func(t *testing.T) {
			sc := simulator.DefaultConfig()
			sim, err := simulator.New(sc)
			require.NoError(t, err)
			base, err := sim.Start("127.0.0.1:0")
			require.NoError(t, err)
			t.Cleanup(func() { sim.Close() })

			// The packaged file as the administrator leaves it at first:
			// the workspace, the token in token.env (which systemd reads
			// for the units, here into the environment), the state and
			// the sinks under this test's /var/lib, the simulator's URL.
			example, err := os.ReadFile(filepath.Join(root, "etc/pachca-export/pipeline.yaml"))
			require.NoError(t, err)
			text := string(example)
			require.Equal(t, 3, strings.Count(text, "\n    dir: /var/lib/pachca-export/")+strings.Count(text, "\n  dir: /var/lib/pachca-export/"), "the state and the two file sinks under the units' StateDirectory=")
			require.Contains(t, text, "  token: ${PACHCA_TOKEN} ")
			defaultURL := "  # base_url: https://api.pachca.com/api/shared/v1"
			require.Contains(t, text, defaultURL)
			text = strings.ReplaceAll(text, "/var/lib/pachca-export/", filepath.Join(root, "var/lib/pachca-export")+"/")
			text = strings.Replace(text, defaultURL, "  base_url: "+base+" #", 1)
			conf := filepath.Join(root, "etc/pachca-export/pipeline.yaml")
			require.NoError(t, os.WriteFile(conf, []byte(text), 0o644))
			tokenEnv := filepath.Join(root, "etc/pachca-export/token.env")
			require.NoError(t, os.WriteFile(tokenEnv, []byte("PACHCA_TOKEN="+sc.Token+"\n"), 0o600))

			env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "PACHCA_TOKEN=") })
			b, err := os.ReadFile(tokenEnv)
			require.NoError(t, err)
			env = append(env, strings.TrimSpace(string(b)))
			cmd := exec.CommandContext(t.Context(), packagedBin, "check", "-c", conf)
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s", out)
			for _, item := range []string{"config", "token", "state", "sinks[0]", "sinks[1]"} {
				require.Regexp(t, `(?m)^OK +`+regexp.QuoteMeta(item)+` `, string(out))
			}
			require.NotContains(t, string(out), "FAIL")
			require.NotContains(t, string(out), sc.Token)

			// Without the token, check names what is missing.
			cmd = exec.CommandContext(t.Context(), packagedBin, "check", "-c", conf)
			cmd.Env = env[:len(env)-1]
			out, _ = cmd.CombinedOutput()
			require.Contains(t, string(out), "PACHCA_TOKEN")
		})
	})

	t.Run("rpm", func(t *testing.T) {
		rpmTool := requireTool(t, "rpm", "rpm")
		query := func(args ...string) string {
			return command(t, rpmTool, append(append([]string{"-qp"}, args...), p.rpm)...)
		}
		require.Equal(t, "pachca-export 1.2.0+3.gabcdef1 1 "+rpmArch+" pachca-pkg "+fmt.Sprint(mustTime(t, buildtest.Date).Unix()),
			query("--queryformat", "%{NAME} %{VERSION} %{RELEASE} %{ARCH} %{BUILDHOST} %{BUILDTIME}"))

		var want []string
		for f := range packaged {
			want = append(want, f)
		}
		want = append(want, "/etc/pachca-export")
		slices.Sort(want)
		require.Equal(t, want, strings.Fields(query("-l")))
		require.Equal(t, "/etc/pachca-export/pipeline.yaml\n", query("--configfiles"))

		// Every file: mode, owner, group, and the config flags (n: noreplace).
		lines := strings.Split(strings.TrimSpace(query("--queryformat", "[%{FILEMODES:perms} %{FILEUSERNAME} %{FILEGROUPNAME} %{FILEFLAGS:fflags} %{FILENAMES}\n]")), "\n")
		for _, l := range lines {
			f := strings.Fields(l)
			require.GreaterOrEqual(t, len(f), 4, l)
			path := f[len(f)-1]
			require.Equal(t, "root", f[1], l)
			require.Equal(t, "root", f[2], l)
			switch {
			case path == "/etc/pachca-export":
				require.Equal(t, "drwxr-xr-x", f[0])
			case path == "/etc/pachca-export/pipeline.yaml":
				require.Equal(t, []string{"-rw-r--r--", "root", "root", "cn", path}, f, "a config file, noreplace: an edited one is kept on upgrade")
			default:
				require.Equal(t, packaged[path], f[0], l)
			}
		}

		scripts := query("--scripts")
		for _, s := range []string{"postinstall scriptlet (using /bin/sh)", "preuninstall scriptlet (using /bin/sh)", "postuninstall scriptlet (using /bin/sh)"} {
			require.Contains(t, scripts, s)
		}
		require.Contains(t, scripts, "systemd-sysusers pachca-export.conf")
		require.NotRegexp(t, `systemctl (enable|start|restart)`, scripts)
	})
}

// startLintian starts lintian on a .deb and returns what waits for it and
// fails the test on an error lintian reports (E:). lintian is Debian's
// own check of a package against its policy; its warnings are logged.
func startLintian(t *testing.T, deb string) func() {
	t.Helper()
	lintian, err := exec.LookPath("lintian")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("lintian not found (CI=true: `make test` installs Debian's lintian package)")
		}
		t.Logf("lintian not found: not run (install Debian's lintian package: make package-tools)")
		return func() {}
	}
	cmd := exec.CommandContext(t.Context(), lintian, "--fail-on", "error", "--tag-display-limit", "0", deb)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	return func() {
		err := cmd.Wait()
		t.Logf("lintian:\n%s", out.String())
		require.NoError(t, err, "lintian finds errors in %s:\n%s", filepath.Base(deb), out.String())
		require.NotRegexp(t, `(?m)^E: `, out.String())
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	require.NoError(t, err)
	return tm
}

// TestPackageVersion: git describe's forms map to versions that dpkg and
// rpm both order as the releases are ordered (a release candidate before
// its release, commits after a tag after it, untagged commits by time).
func TestPackageVersion(t *testing.T) {
	date := time.Date(2026, 12, 3, 8, 42, 12, 0, time.UTC)
	for in, want := range map[string]string{
		"v1.2.0":                  "1.2.0",
		"1.2.0":                   "1.2.0",
		"v1.2.0-rc.1":             "1.2.0~rc.1",
		"v1.2.0-3-gabcdef1":       "1.2.0+3.gabcdef1",
		"v1.2.0-3-gabcdef1-dirty": "1.2.0+3.gabcdef1.dirty",
		"v1.2.0-dirty":            "1.2.0+dirty",
		"v1.2.0-rc.1-2-g0123abc":  "1.2.0~rc.1+2.g0123abc",
		"eab9c09":                 "0.0.0+git20261203084212.geab9c09",
		"eab9c09-dirty":           "0.0.0+git20261203084212.geab9c09.dirty",
		"dev":                     "0.0.0+dev",
	} {
		got, err := packageVersion(in, date)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "v1.2.0 ", "release-1", "v1.2.0-foo", "v1.2.0/../x"} {
		_, err := packageVersion(bad, date)
		require.Error(t, err, "%q", bad)
	}

	ordered := []string{"0.0.0+git20261203084212.geab9c09", "0.0.0+git20261204000000.g0123abc",
		"1.2.0~rc.1", "1.2.0~rc.1+2.g0123abc", "1.2.0", "1.2.0+3.gabcdef1", "1.2.0+10.g0123abc", "1.2.1~rc.1", "1.2.1"}
	if dpkg, err := exec.LookPath("dpkg"); err == nil {
		for i := 1; i < len(ordered); i++ {
			require.NoError(t, exec.CommandContext(t.Context(), dpkg, "--compare-versions", ordered[i-1], "lt", ordered[i]).Run(),
				"dpkg: %s < %s", ordered[i-1], ordered[i])
		}
	}
	if rpmTool, err := exec.LookPath("rpm"); err == nil {
		for i := 1; i < len(ordered); i++ {
			out := command(t, rpmTool, "--eval", fmt.Sprintf(`%%{lua: print(rpm.vercmp(%q, %q))}`, ordered[i-1], ordered[i]))
			require.Equal(t, "-1", strings.TrimSpace(out), "rpm: %s < %s", ordered[i-1], ordered[i])
		}
	}
}

// TestUsage: a mistake on the command line is one line and exit status
// 2; a file that is no linux binary, one line and 1.
func TestUsage(t *testing.T) {
	notices := filepath.Join(t.TempDir(), "N")
	require.NoError(t, os.WriteFile(notices, []byte("n\n"), 0o644))
	base := []string{"-version", "v1.2.0", "-notices", notices, "-maintainer", "A <a@example.com>", "-o", t.TempDir()}
	for _, tc := range []struct {
		args   []string
		status int
		msg    string
	}{
		{base, 2, "no binary given"},
		{append(slices.Clone(base[2:]), "bin"), 2, "-version"},
		{[]string{"-version", "v1.2.0+x y", "-notices", notices, "-maintainer", "A <a@example.com>", "-o", t.TempDir(), "bin"}, 2, `-version "v1.2.0+x y"`},
		{append(slices.Clone(base), "bin", "-o", "x"), 2, "-o after the binaries: flags go first"},
		{append(slices.Clone(base), "-date", "yesterday", "bin"), 2, `-date "yesterday"`},
		{append(slices.Clone(base), notices), 1, "not a linux binary"},
	} {
		var stdout, stderr bytes.Buffer
		require.Equal(t, tc.status, run(tc.args, &stdout, &stderr), "%q: %s", tc.args, stderr.String())
		require.Contains(t, stderr.String(), tc.msg)
		require.Equal(t, 1, strings.Count(stderr.String(), "\n"), stderr.String())
		require.Empty(t, stdout.String())
	}
}
