package deploy_test

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// unit is a parsed systemd unit file: section -> key -> values in order.
type unit map[string]map[string][]string

func (u unit) get(section, key string) []string { return u[section][key] }

// readUnit parses a unit file (comments, sections, key=value; no
// continuation lines, which these units do not use).
func readUnit(t *testing.T, file string) unit {
	t.Helper()
	f, err := os.Open(file)
	require.NoError(t, err)
	defer f.Close()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			require.True(t, ok, "%s: %q", file, line)
			require.NotEmpty(t, section, "%s: %q before any section", file, line)
			require.NotContains(t, v, `\`, "%s: continuation lines are not parsed here", file)
			u[section][k] = append(u[section][k], v)
		}
	}
	require.NoError(t, sc.Err())
	return u
}

// hardening is what both services must set, as systemd-analyze security
// weighs it; values as written in the units.
func hardening() map[string]string {
	return map[string]string{
		"NoNewPrivileges":         "true",
		"ProtectSystem":           "strict",
		"ProtectHome":             "true",
		"PrivateTmp":              "true",
		"PrivateDevices":          "true",
		"PrivateMounts":           "true",
		"CapabilityBoundingSet":   "",
		"AmbientCapabilities":     "",
		"ProtectClock":            "true",
		"ProtectHostname":         "true",
		"ProtectKernelLogs":       "true",
		"ProtectKernelModules":    "true",
		"ProtectKernelTunables":   "true",
		"ProtectControlGroups":    "true",
		"ProtectProc":             "invisible",
		"ProcSubset":              "pid",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
		"RestrictNamespaces":      "true",
		"RestrictRealtime":        "true",
		"RestrictSUIDSGID":        "true",
		"RemoveIPC":               "true",
		"LockPersonality":         "true",
		"MemoryDenyWriteExecute":  "true",
		"SystemCallArchitectures": "native",
		"SystemCallErrorNumber":   "EPERM",
		"UMask":                   "0027",
		"User":                    "pachca-export",
		"Group":                   "pachca-export",
		"StateDirectory":          "pachca-export",
		"WorkingDirectory":        "%S/pachca-export",
	}
}

// TestSystemdUnits: both services carry the whole sandbox, mark optional
// paths optional, run the command they are for as the user the sysusers
// file creates; the nightly service is started by the timer, the follow
// service restarts on failure and never runs beside the nightly one.
func TestSystemdUnits(t *testing.T) {
	for _, tc := range []struct {
		file, command string
	}{
		{"systemd/pachca-export.service", "run"},
		{"systemd/pachca-export-follow.service", "follow"},
		{"systemd/pachca-export@.service", "run"},
		{"systemd/pachca-export-follow@.service", "follow"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			u := readUnit(t, tc.file)
			want := hardening()
			config := "/etc/pachca-export/pipeline.yaml"
			if strings.Contains(tc.file, "@") { // a workspace's instance: TestSystemdTemplates
				config = "/etc/pachca-export/%i/pipeline.yaml"
				want["StateDirectory"] = "pachca-export/%i"
				want["WorkingDirectory"] = "%S/pachca-export/%i"
			}
			if tc.command == "follow" {
				delete(want, "ProcSubset") // /metrics reads /proc/stat: TestFollowUnitMetrics
				require.Empty(t, u.get("Service", "ProcSubset"))
			}
			for k, v := range want {
				require.Equal(t, []string{v}, u.get("Service", k), "%s: %s=", tc.file, k)
			}
			require.Equal(t, []string{"@system-service", "~@privileged @resources"}, u.get("Service", "SystemCallFilter"))
			for _, line := range u.get("Service", "ReadWritePaths") {
				for _, p := range strings.Fields(line) {
					require.True(t, strings.HasPrefix(p, "-"), "%s: ReadWritePaths %s: mark it optional (-), or the unit fails where it is missing", tc.file, p)
				}
			}
			exec := u.get("Service", "ExecStart")
			require.Len(t, exec, 1)
			require.True(t, strings.HasPrefix(exec[0], "/usr/local/bin/pachca-export "+tc.command+" -c "+config+" "), exec[0])
			require.Equal(t, []string{"network-online.target"}, u.get("Unit", "Wants"))
		})
	}

	timer := readUnit(t, "systemd/pachca-export.timer")
	require.Equal(t, []string{"true"}, timer.get("Timer", "Persistent"), "a missed night runs at boot")
	require.Empty(t, timer.get("Timer", "Unit"), "it starts pachca-export.service, its namesake")
	nightly := readUnit(t, "systemd/pachca-export.service")
	require.Equal(t, []string{"oneshot"}, nightly.get("Service", "Type"))
	follow := readUnit(t, "systemd/pachca-export-follow.service")
	// follow ends with exit status 0 on SIGHUP as on SIGTERM: only
	// systemctl stop, which systemd never restarts, may stop the feed
	// (was: on-failure, and a stray SIGHUP stopped it for good).
	require.Equal(t, []string{"always"}, follow.get("Service", "Restart"))
	require.Equal(t, []string{"2"}, follow.get("Service", "RestartPreventExitStatus"), "a configuration error is not restarted every 30 s")
	// The state's lock keeps follow and the nightly run apart. Conflicts=
	// works both ways: a timer left enabled would stop the feed at the
	// night's run, and Restart= never restarts a unit a conflict stopped.
	require.Empty(t, follow.get("Unit", "Conflicts"), "the nightly run must not stop the feed")

	sysusers, err := os.ReadFile("systemd/pachca-export.sysusers")
	require.NoError(t, err)
	require.Regexp(t, `(?m)^u pachca-export - "[^"]+" /var/lib/pachca-export$`, string(sysusers))
}

// TestSystemdTemplates: the template units, one instance per workspace on
// one host (was: single-instance units only, one workspace a host), are
// the single units with the instance naming the workspace's configuration,
// token and state directory (its own, the only place it may write), and
// nothing else changed: the sandbox, the restart policy and the timer stay
// those of the units they copy.
func TestSystemdTemplates(t *testing.T) {
	perInstance := strings.NewReplacer(
		"/etc/pachca-export/%i/", "/etc/pachca-export/",
		"pachca-export/%i", "pachca-export",
		" of workspace %i", "",
	)
	for single, template := range map[string]string{
		"pachca-export.service":        "pachca-export@.service",
		"pachca-export-follow.service": "pachca-export-follow@.service",
		"pachca-export.timer":          "pachca-export@.timer",
	} {
		t.Run(template, func(t *testing.T) {
			want, got := readUnit(t, "systemd/"+single), readUnit(t, "systemd/"+template)
			for section, keys := range got {
				for k, vs := range keys {
					for i := range vs {
						vs[i] = perInstance.Replace(vs[i])
					}
					got[section][k] = vs
				}
			}
			require.Equal(t, want, got, "%s: as %s but for the instance's paths", template, single)
			if strings.HasSuffix(template, ".service") {
				u := readUnit(t, "systemd/"+template)
				require.Equal(t, []string{"/etc/pachca-export/%i/token.env"}, u.get("Service", "EnvironmentFile"), "each workspace's token")
				require.Equal(t, []string{"pachca-export/%i"}, u.get("Service", "StateDirectory"), "each workspace's state, the only place it writes")
			}
		})
	}
}

// TestSystemdAnalyze runs systemd-analyze on the units in a scratch root
// (the host's unit directory copied in, a stand-in executable at the
// ExecStart path): `verify` must print nothing, `security --offline=true`
// must rate each service OK or better. Without systemd-analyze the test
// skips (`make test` installs Debian's systemd package); with CI=true it
// fails instead.
func TestSystemdAnalyze(t *testing.T) {
	bin, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("systemd-analyze not found (CI=true: `make test` installs Debian's systemd package)")
		}
		t.Skip("systemd-analyze not found: install Debian's systemd package (make systemd-analyze)")
	}
	root := analyzeRoot(t)
	units := []string{"pachca-export.service", "pachca-export.timer", "pachca-export-follow.service",
		"pachca-export@acme.service", "pachca-export@acme.timer", "pachca-export-follow@acme.service"}

	t.Run("verify", func(t *testing.T) {
		out, err := exec.CommandContext(t.Context(), bin, append([]string{"verify", "--root=" + root}, units...)...).CombinedOutput()
		require.NoError(t, err, "%s", out)
		require.Empty(t, string(out))
	})
	t.Run("verify reports a mistake", func(t *testing.T) {
		bad := filepath.Join(root, "etc/systemd/system/pachca-export-typo.service")
		text, err := os.ReadFile("systemd/pachca-export.service")
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(bad, bytes.Replace(text, []byte("\nProtectHome="), []byte("\nProtectHom="), 1), 0o644))
		out, _ := exec.CommandContext(t.Context(), bin, "verify", "--root="+root, "pachca-export-typo.service").CombinedOutput()
		require.Contains(t, string(out), "Unknown key 'ProtectHom'")
	})
	level := regexp.MustCompile(`Overall exposure level for (\S+): (\d+\.\d) (\S+)`)
	for _, service := range []string{"pachca-export.service", "pachca-export-follow.service", "pachca-export@acme.service", "pachca-export-follow@acme.service"} {
		t.Run("security "+service, func(t *testing.T) {
			out, err := exec.CommandContext(t.Context(), bin, "security", "--offline=true", "--root="+root, "--no-pager", service).CombinedOutput()
			require.NoError(t, err, "%s", out)
			m := level.FindStringSubmatch(string(out))
			require.NotNil(t, m, "%s", out)
			score, err := strconv.ParseFloat(m[2], 64)
			require.NoError(t, err)
			t.Logf("%s: exposure %s %s", service, m[2], m[3])
			require.Less(t, score, 5.0, "OK or better (below 5.0): %s\n%s", m[0], out)
		})
	}
}

// analyzeRoot lays out a root directory for systemd-analyze --root: the
// host's units (targets the units refer to), ours under /etc, and an
// executable where ExecStart looks.
func analyzeRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	var hostUnits string
	for _, d := range []string{"/usr/lib/systemd/system", "/lib/systemd/system"} {
		if _, err := os.Stat(filepath.Join(d, "sysinit.target")); err == nil {
			hostUnits = d
			break
		}
	}
	require.NotEmpty(t, hostUnits, "no systemd unit directory on this machine")
	copyTree(t, hostUnits, filepath.Join(root, "usr/lib/systemd/system"))
	etc := filepath.Join(root, "etc/systemd/system")
	require.NoError(t, os.MkdirAll(etc, 0o755))
	for _, f := range []string{"pachca-export.service", "pachca-export.timer", "pachca-export-follow.service",
		"pachca-export@.service", "pachca-export@.timer", "pachca-export-follow@.service"} {
		b, err := os.ReadFile(filepath.Join("systemd", f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(etc, f), b, 0o644))
	}
	require.NoError(t, os.MkdirAll(filepath.Join(root, "usr/local/bin"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "usr/local/bin/pachca-export"), []byte("#!/bin/sh\n"), 0o755))
	return root
}

// copyTree copies directories, files and symbolic links (unit aliases).
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, p)
		if err != nil {
			return err
		}
		dst := filepath.Join(to, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(dst, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, dst)
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(dst, b, 0o644)
		}
	})
	require.NoError(t, err)
}
