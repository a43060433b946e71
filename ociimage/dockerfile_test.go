package ociimage_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/ociimage"
	"github.com/pachca-export/pachca-export/testkit/buildtest"
)

// TestDockerfileMatchesBuilder: the Dockerfile at the repository root and
// the daemonless builder make the same image. The build stage links the
// binary as `make release` does and lays out the file system with the
// builder itself; the final stage copies that tree whole and sets the
// builder's user, entrypoint, environment, working directory and labels.
func TestDockerfileMatchesBuilder(t *testing.T) {
	text, err := os.ReadFile("../Dockerfile")
	require.NoError(t, err)
	stages := parseDockerfile(t, string(text))
	require.Len(t, stages, 2, "a build stage and the final stage")
	build, final := stages[0], stages[1]

	gomod, err := os.ReadFile("../go.mod")
	require.NoError(t, err)
	goVersion := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(gomod)
	require.NotNil(t, goVersion, "go directive in go.mod")
	require.Equal(t, "golang:"+string(goVersion[1])+" AS build", build.from, "the build stage uses go.mod's Go (Debian: ca-certificates included)")
	runs := strings.Join(build.all("RUN"), "\n")
	for _, want := range []string{
		"CGO_ENABLED=0",
		"go build -trimpath -buildvcs=false",
		`-ldflags "` + buildtest.LDFlags("${VERSION}", "${COMMIT}", "${BUILD_DATE}") + `"`,
		"-o /out/pachca-export ./cmd/pachca-export",
		"go run ./cmd/pachca-notices -o /out/THIRD_PARTY_NOTICES /out/pachca-export",
		"go run ./cmd/pachca-image -binary /out/pachca-export",
		"-ca-bundle " + ociimage.CABundle,
		"-notices /out/THIRD_PARTY_NOTICES",
		`go run ./cmd/pachca-sbom -version "${VERSION}" /out/pachca-export`,
		"-sbom /out/pachca-export.cdx.json",
		"-rootfs /rootfs",
	} {
		require.Contains(t, runs, want, "build stage")
	}

	require.Equal(t, "scratch", final.from)
	kinds := map[string]int{}
	for _, in := range final.instrs {
		kinds[in.cmd]++
	}
	require.Equal(t, map[string]int{"COPY": 1, "ARG": 3, "LABEL": 1, "ENV": 1, "USER": 1, "WORKDIR": 1, "ENTRYPOINT": 1}, kinds,
		"the final stage has nothing the builder does not do")
	require.Equal(t, []string{"--from=build /rootfs/ /"}, final.all("COPY"))

	cfg := ociimage.Config(ociimage.Spec{Version: "${VERSION}", Revision: "${COMMIT}", Created: time.Unix(0, 0)})
	require.Equal(t, []string{cfg.User}, final.all("USER"))
	require.Equal(t, []string{cfg.WorkingDir}, final.all("WORKDIR"))
	var entrypoint []string
	require.NoError(t, json.Unmarshal([]byte(final.all("ENTRYPOINT")[0]), &entrypoint), "exec form")
	require.Equal(t, cfg.Entrypoint, entrypoint)
	require.Equal(t, cfg.Env, keyValues(t, final.all("ENV")[0]))
	labels := map[string]string{}
	for _, kv := range keyValues(t, final.all("LABEL")[0]) {
		k, v, _ := strings.Cut(kv, "=")
		labels[k] = v
	}
	cfg.Labels["org.opencontainers.image.created"] = "${BUILD_DATE}"
	require.Equal(t, cfg.Labels, labels)
}

// TestMakefileLDFlags: `make release` and `make image` stamp the version as
// the tests and the Dockerfile do.
func TestMakefileLDFlags(t *testing.T) {
	text, err := os.ReadFile("../Makefile")
	require.NoError(t, err)
	require.Contains(t, string(text), "\nLDFLAGS    := "+buildtest.LDFlags("$(VERSION)", "$(COMMIT)", "$(BUILD_DATE)")+"\n")
	require.Contains(t, string(text), "CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=false -ldflags '$(LDFLAGS)'")
}

// TestMakefileReleaseFiles: `make release` writes an SBOM of each binary
// it builds (BINARY.cdx.json) and THIRD_PARTY_NOTICES for them, and lists
// them in SHA256SUMS with the .deb and .rpm packages; `make image` gives the builder the image binary's
// notices and SBOM.
func TestMakefileReleaseFiles(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	out, err := exec.CommandContext(t.Context(), "make", "-n", "-C", "..", "release", "image",
		"VERSION=v1.2.0", "COMMIT=c", "BUILD_DATE=2026-11-30T08:15:00Z", "IMAGE_ARCH=amd64").CombinedOutput()
	require.NoError(t, err, "%s", out)
	bins := "dist/pachca-export-linux-amd64 dist/pachca-export-linux-arm64 dist/pachca-export-darwin-amd64 dist/pachca-export-darwin-arm64"
	require.Contains(t, string(out), "go run ./cmd/pachca-sbom -version 'v1.2.0' "+bins+"\n")
	require.Contains(t, string(out), "go run ./cmd/pachca-notices -o dist/THIRD_PARTY_NOTICES "+bins+"\n")
	require.Contains(t, string(out), "sha256sum pachca-export-linux-amd64 pachca-export-linux-arm64 pachca-export-darwin-amd64 pachca-export-darwin-arm64 "+
		"pachca-export-linux-amd64.cdx.json pachca-export-linux-arm64.cdx.json pachca-export-darwin-amd64.cdx.json pachca-export-darwin-arm64.cdx.json THIRD_PARTY_NOTICES pachca-export_*.deb pachca-export-*.rpm;")
	require.Contains(t, string(out), "go run ./cmd/pachca-pkg -version 'v1.2.0' ")
	require.Contains(t, string(out), "go run ./cmd/pachca-notices -o dist/THIRD_PARTY_NOTICES-linux-amd64 dist/pachca-export-linux-amd64\n")
	require.Contains(t, string(out), "go run ./cmd/pachca-sbom -version 'v1.2.0' dist/pachca-export-linux-amd64\n")
	require.Contains(t, string(out), "-notices dist/THIRD_PARTY_NOTICES-linux-amd64 -sbom dist/pachca-export-linux-amd64.cdx.json")
}

// TestMakefileCommitDirty: a release built from a tree with uncommitted
// changes is stamped commit SHA-dirty, not as the commit it is not (the
// version may be given: make release VERSION=v1.2.0).
func TestMakefileCommitDirty(t *testing.T) {
	for _, tool := range []string{"make", "git"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s", tool)
		}
	}
	makefile, err := filepath.Abs("../Makefile")
	require.NoError(t, err)
	dir := t.TempDir()
	git := func(args ...string) string {
		cmd := exec.CommandContext(t.Context(), "git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "git %v: %s", args, out)
		return strings.TrimSpace(string(out))
	}
	commitOf := func() string {
		cmd := exec.CommandContext(t.Context(), "make", "-n", "-f", makefile, "release", "VERSION=v1.2.0")
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		m := regexp.MustCompile(`-X main\.buildCommit=(\S+)`).FindSubmatch(out)
		require.NotNil(t, m, "%s", out)
		return string(m[1])
	}
	git("init", "-q")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n"), 0o644))
	git("add", "main.go")
	git("commit", "-q", "-m", "one")
	sha := git("rev-parse", "HEAD")
	require.Equal(t, sha, commitOf(), "a clean tree")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main // changed\n"), 0o644))
	require.Equal(t, sha+"-dirty", commitOf(), "a tree with a change not committed")
}

// stage is one FROM of a Dockerfile and its instructions.
type stage struct {
	from   string // what follows FROM, flags removed
	instrs []instruction
}

type instruction struct {
	cmd  string // upper case
	args string // continuation lines joined
}

// all returns the arguments of every cmd instruction of the stage.
func (s stage) all(cmd string) []string {
	var out []string
	for _, in := range s.instrs {
		if in.cmd == cmd {
			out = append(out, in.args)
		}
	}
	return out
}

// parseDockerfile splits a Dockerfile into stages: comments dropped,
// continuation lines joined, global ARGs before the first FROM skipped.
func parseDockerfile(t *testing.T, text string) []stage {
	t.Helper()
	var stages []stage
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		in := instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			from := in.args
			for strings.HasPrefix(from, "--") {
				_, from, _ = strings.Cut(from, " ")
			}
			stages = append(stages, stage{from: from})
			return
		}
		if len(stages) > 0 {
			stages[len(stages)-1].instrs = append(stages[len(stages)-1].instrs, in)
		}
	}
	for _, raw := range strings.Split(text, "\n") {
		line := strings.TrimSpace(raw)
		if strings.HasPrefix(line, "#") {
			continue
		}
		if body, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(line)
		flush()
	}
	flush()
	return stages
}

// keyValues splits `k=v k2="v 2"` (ENV, LABEL) into "k=v" strings, quotes
// removed.
func keyValues(t *testing.T, s string) []string {
	t.Helper()
	var out []string
	for _, m := range regexp.MustCompile(`([^\s=]+)=("(?:[^"\\]|\\.)*"|\S+)`).FindAllStringSubmatch(s, -1) {
		v := m[2]
		if strings.HasPrefix(v, `"`) {
			var err error
			v, err = strconv.Unquote(v)
			require.NoError(t, err, m[0])
		}
		out = append(out, m[1]+"="+v)
	}
	return out
}
