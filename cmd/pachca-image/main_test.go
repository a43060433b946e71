package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"debug/buildinfo"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/stretchr/testify/require"

	"github.com/pachca-export/pachca-export/internal/notices"
	"github.com/pachca-export/pachca-export/internal/sbom"
	"github.com/pachca-export/pachca-export/testkit/buildtest"
)

const hostCA = "/etc/ssl/certs/ca-certificates.crt"

// entry is a file of the image as a test sees it.
type entry struct {
	mode     fs.FileMode // permissions, fs.ModeDir, fs.ModeSticky
	uid, gid int
	data     []byte
}

// TestImage builds the image as `make image` does, reads the archive back
// both as an OCI layout and as a `docker save` archive, and checks what a
// container runtime would run: the entrypoint, a non-root user that
// /etc/passwd knows, the exact file list (no shell, nothing else), the CA
// bundle, writable /tmp and state directory, and the binary itself, taken
// out of the layer and run.
func TestImage(t *testing.T) {
	if _, err := os.Stat(hostCA); err != nil && os.Getenv("CI") != "true" {
		t.Skipf("no CA bundle on this machine (%v): install Debian's ca-certificates", err)
	}
	bin := buildtest.StaticBinary(t)
	dir := t.TempDir()
	archive := filepath.Join(dir, "image.tar")
	notices := writeNotices(t, bin)
	sbomFile := writeSBOM(t, bin)
	args := []string{"-binary", bin, "-arch", runtime.GOARCH, "-notices", notices, "-sbom", sbomFile, "-version", buildtest.Version,
		"-revision", buildtest.Commit, "-created", buildtest.Date}
	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, run(append(args, "-o", archive), &stdout, &stderr), stderr.String())
	require.Regexp(t, `^wrote .*image.tar: pachca-export:v0.0.0-test linux/`+runtime.GOARCH+` sha256:[0-9a-f]{64}\n$`, stdout.String())

	// The OCI layout view (skopeo, podman) and the docker view (docker
	// load, crane) name the same config and layer; every blob matches its
	// digest (layerFiles checks the layer's, compressed and not).
	oci := readLayout(t, archive)
	docker, err := tarball.ImageFromPath(archive, nil)
	require.NoError(t, err)
	for _, img := range []v1.Image{oci, docker} {
		cfgName, err := img.ConfigName()
		require.NoError(t, err)
		raw, err := img.RawConfigFile()
		require.NoError(t, err)
		require.Equal(t, cfgName.Hex, fmt.Sprintf("%x", sha256.Sum256(raw)))
	}
	ociCfg, err := oci.ConfigName()
	require.NoError(t, err)
	dockerCfg, err := docker.ConfigName()
	require.NoError(t, err)
	require.Equal(t, ociCfg, dockerCfg)
	ociLayers, err := oci.Layers()
	require.NoError(t, err)
	dockerLayers, err := docker.Layers()
	require.NoError(t, err)
	require.Len(t, ociLayers, 1)
	require.Len(t, dockerLayers, 1)
	ociDigest, err := ociLayers[0].Digest()
	require.NoError(t, err)
	dockerDigest, err := dockerLayers[0].Digest()
	require.NoError(t, err)
	require.Equal(t, ociDigest, dockerDigest)
	mt, err := oci.MediaType()
	require.NoError(t, err)
	require.Equal(t, types.OCIManifestSchema1, mt)
	digest, err := oci.Digest()
	require.NoError(t, err)
	require.Contains(t, stdout.String(), digest.String())

	cf, err := oci.ConfigFile()
	require.NoError(t, err)
	require.Equal(t, "linux", cf.OS)
	require.Equal(t, runtime.GOARCH, cf.Architecture)
	require.Equal(t, []string{"/usr/local/bin/pachca-export"}, cf.Config.Entrypoint)
	require.Empty(t, cf.Config.Cmd)
	require.Equal(t, "65532:65532", cf.Config.User)
	require.Equal(t, "/var/lib/pachca-export", cf.Config.WorkingDir)
	require.Equal(t, buildtest.Version, cf.Config.Labels["org.opencontainers.image.version"])
	require.Equal(t, buildtest.Commit, cf.Config.Labels["org.opencontainers.image.revision"])
	require.Equal(t, buildtest.Date, cf.Config.Labels["org.opencontainers.image.created"])
	require.Equal(t, buildtest.Date, cf.Created.UTC().Format("2006-01-02T15:04:05Z"))

	files := layerFiles(t, oci)
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	require.ElementsMatch(t, []string{
		"/etc", "/etc/group", "/etc/passwd", "/etc/ssl", "/etc/ssl/certs", "/etc/ssl/certs/ca-certificates.crt",
		"/tmp", "/usr", "/usr/local", "/usr/local/bin", "/usr/local/bin/pachca-export",
		"/usr/share", "/usr/share/doc", "/usr/share/doc/pachca-export", "/usr/share/doc/pachca-export/THIRD_PARTY_NOTICES",
		"/usr/share/doc/pachca-export/pachca-export.cdx.json",
		"/var", "/var/lib", "/var/lib/pachca-export",
	}, paths, "no shell, no package manager, nothing but these")

	// The licence texts of what the binary links (Apache-2.0 §4, BSD, MIT)
	// ship with it.
	wantNotices, err := os.ReadFile(notices)
	require.NoError(t, err)
	require.Equal(t, entry{mode: 0o644, data: wantNotices}, files["/usr/share/doc/pachca-export/THIRD_PARTY_NOTICES"])
	wantSBOM, err := os.ReadFile(sbomFile)
	require.NoError(t, err)
	require.Equal(t, entry{mode: 0o644, data: wantSBOM}, files["/usr/share/doc/pachca-export/pachca-export.cdx.json"])

	// The user runs non-root, is known to /etc/passwd and /etc/group, and
	// owns its home, the working directory; it cannot change the binary.
	require.Contains(t, strings.Split(string(files["/etc/passwd"].data), "\n"),
		"nonroot:x:65532:65532:nonroot:/var/lib/pachca-export:/sbin/nologin")
	require.Contains(t, strings.Split(string(files["/etc/group"].data), "\n"), "nonroot:x:65532:")
	require.Equal(t, entry{mode: fs.ModeDir | 0o750, uid: 65532, gid: 65532}, files["/var/lib/pachca-export"])
	require.Equal(t, entry{mode: fs.ModeDir | fs.ModeSticky | 0o777}, files["/tmp"])
	exe := files["/usr/local/bin/pachca-export"]
	require.Equal(t, fs.FileMode(0o755), exe.mode)
	require.Zero(t, exe.uid)

	ca := files["/etc/ssl/certs/ca-certificates.crt"]
	want, err := os.ReadFile(hostCA)
	require.NoError(t, err)
	require.Equal(t, want, ca.data)
	require.True(t, x509.NewCertPool().AppendCertsFromPEM(ca.data))

	// The binary out of the layer runs, as the image's user, and says
	// which build it is.
	extracted := filepath.Join(dir, "pachca-export")
	require.NoError(t, os.WriteFile(extracted, exe.data, 0o755))
	cmd := exec.CommandContext(t.Context(), extracted, "version")
	if os.Geteuid() == 0 {
		require.NoError(t, os.Chmod(filepath.Dir(dir), 0o755)) // t.TempDir's are 0700
		require.NoError(t, os.Chmod(dir, 0o755))
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65532, Gid: 65532}}
	}
	out, err := cmd.Output()
	require.NoError(t, err)
	require.Equal(t, "pachca-export "+buildtest.Version+" (commit "+buildtest.Commit+", built "+buildtest.Date+", "+
		runtime.Version()+" linux/"+runtime.GOARCH+")\n", string(out))

	// Reproducible: the same inputs give the same archive, byte for byte.
	again := filepath.Join(dir, "again.tar")
	require.Equal(t, 0, run(append(args, "-o", again), io.Discard, &stderr), stderr.String())
	require.Equal(t, fileSum(t, archive), fileSum(t, again))

	// The Dockerfile's build stage writes the same tree with -rootfs.
	if os.Geteuid() != 0 {
		t.Skip("-rootfs sets owners: needs root (as in a container build stage)")
	}
	rootfs := filepath.Join(dir, "rootfs")
	require.Equal(t, 0, run([]string{"-binary", bin, "-arch", runtime.GOARCH, "-notices", notices, "-sbom", sbomFile, "-rootfs", rootfs}, io.Discard, &stderr), stderr.String())
	require.Equal(t, files, treeFiles(t, rootfs))
}

// TestUsage: command line mistakes exit 2 with one line; an input that
// cannot make a working image exits 1 and names the fix.
func TestUsage(t *testing.T) {
	script := filepath.Join(t.TempDir(), "script")
	require.NoError(t, os.WriteFile(script, []byte("#!/bin/sh\n# a script, not the static binary an image without a shell needs\n"), 0o755))
	out := filepath.Join(t.TempDir(), "x.tar")
	// Notices that lack a module the binary links: here, every one.
	partial := filepath.Join(t.TempDir(), "THIRD_PARTY_NOTICES")
	require.NoError(t, os.WriteFile(partial, []byte("pachca-export includes the software below.\n"), 0o644))
	static := buildtest.StaticBinary(t)
	first, err := buildinfo.ReadFile(static)
	require.NoError(t, err)
	full := writeNotices(t, static)
	// An SBOM of another binary: here, of the same one changed by a byte.
	other := filepath.Join(t.TempDir(), "pachca-export")
	data, err := os.ReadFile(static)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(other, append(data, 0), 0o755))
	otherSBOM := writeSBOM(t, other)
	sum := sha256.Sum256(data)
	otherArch := map[string]string{"amd64": "arm64"}[runtime.GOARCH]
	if otherArch == "" {
		otherArch = "amd64"
	}
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"-o", "x.tar"}, 2, "-binary is required"},
		{[]string{"-binary", "/bin/sh"}, 2, "give one of -o FILE and -rootfs DIR"},
		{[]string{"-binary", "/bin/sh", "-o", "x", "-rootfs", "y"}, 2, "give one of -o FILE and -rootfs DIR"},
		{[]string{"-binary", "/bin/sh", "-notices", "n", "-o", "x", "-created", "yesterday"}, 2, `-created "yesterday": want RFC 3339, e.g. 2026-11-01T00:00:00Z`},
		{[]string{"-binary", "/bin/sh", "-o", "x", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"-binary", "/bin/sh", "-o", out}, 2, "-notices is required: the image carries the licence texts of what the binary links (go run ./cmd/pachca-notices -o FILE BINARY)"},
		{[]string{"-binary", "/bin/sh", "-notices", partial, "-arch", "386", "-o", out}, 1, `arch "386": want amd64 or arm64`},
		{[]string{"-binary", script, "-notices", partial, "-o", out}, 1, "binary " + script + ": not an ELF executable (want a linux build of cmd/pachca-export)"},
		{[]string{"-binary", "/bin/sh", "-notices", partial, "-arch", otherArch, "-o", out}, 1, "binary /bin/sh: built for " + machineName(runtime.GOARCH) + ", not " + otherArch + " (set GOARCH=" + otherArch + ")"},
		{[]string{"-binary", "/bin/sh", "-notices", partial, "-o", out}, 1, "binary /bin/sh: dynamically linked (build it with CGO_ENABLED=0)"},
		{[]string{"-binary", "/nonexistent", "-notices", partial, "-o", out}, 1, "binary: open /nonexistent: no such file or directory"},
		{[]string{"-binary", static, "-notices", "/nonexistent", "-o", out}, 1, "notices: open /nonexistent: no such file or directory (write them with: go run ./cmd/pachca-notices -o FILE " + static + ")"},
		{[]string{"-binary", static, "-notices", partial, "-o", out}, 1, "notices " + partial + ": no licence of " + first.Deps[0].Path + " " + first.Deps[0].Version + ", which " + static + " links (write them again with cmd/pachca-notices)"},
		{[]string{"-binary", static, "-notices", full, "-sbom", "/nonexistent", "-o", out}, 1, "sbom: open /nonexistent: no such file or directory (write it with: go run ./cmd/pachca-sbom -version V " + static + ")"},
		{[]string{"-binary", static, "-notices", full, "-sbom", otherSBOM, "-o", out}, 1, "sbom " + otherSBOM + ": not the SBOM of " + static + ", whose SHA-256 is " + fmt.Sprintf("%x", sum) + " (write it again with cmd/pachca-sbom)"},
	} {
		var stdout, stderr bytes.Buffer
		require.Equal(t, tc.code, run(tc.args, &stdout, &stderr), tc.args)
		require.Equal(t, "pachca-image: "+tc.msg+"\n", stderr.String(), tc.args)
		require.Empty(t, stdout.String())
		require.NoFileExists(t, out)
	}
}

// writeNotices writes the binary's THIRD_PARTY_NOTICES as `make image`
// does and returns the file's path.
func writeNotices(t *testing.T, bin string) string {
	t.Helper()
	text, err := notices.Generate("../..", bin)
	require.NoError(t, err)
	p := filepath.Join(t.TempDir(), "THIRD_PARTY_NOTICES")
	require.NoError(t, os.WriteFile(p, text, 0o644))
	return p
}

// writeSBOM writes the binary's SBOM as `make image` does and returns the
// file's path.
func writeSBOM(t *testing.T, bin string) string {
	t.Helper()
	doc, err := sbom.Generate("../..", bin, buildtest.Version)
	require.NoError(t, err)
	p := filepath.Join(t.TempDir(), "pachca-export.cdx.json")
	require.NoError(t, os.WriteFile(p, doc, 0o644))
	return p
}

func machineName(arch string) string {
	return map[string]string{"amd64": "EM_X86_64", "arm64": "EM_AARCH64"}[arch]
}

// readLayout unpacks the archive and opens it as an OCI image layout.
func readLayout(t *testing.T, archive string) v1.Image {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	f, err := os.Open(archive)
	require.NoError(t, err)
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		if h.Typeflag == tar.TypeDir {
			require.NoError(t, os.MkdirAll(p, 0o755))
			continue
		}
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		data, err := io.ReadAll(tr)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(p, data, 0o644))
	}
	lp, err := layout.FromPath(dir)
	require.NoError(t, err)
	idx, err := lp.ImageIndex()
	require.NoError(t, err)
	im, err := idx.IndexManifest()
	require.NoError(t, err)
	require.Len(t, im.Manifests, 1)
	require.Equal(t, "v0.0.0-test", im.Manifests[0].Annotations["org.opencontainers.image.ref.name"])
	require.Equal(t, &v1.Platform{OS: "linux", Architecture: runtime.GOARCH, Variant: map[string]string{"arm64": "v8"}[runtime.GOARCH]},
		im.Manifests[0].Platform)
	img, err := lp.Image(im.Manifests[0].Digest)
	require.NoError(t, err)
	return img
}

// layerFiles reads the only layer of img after checking its blob against
// the manifest's digest and its contents against the config's diff ID (one
// pass each: validate.Image reads a layer several times, minutes under the
// race detector).
func layerFiles(t *testing.T, img v1.Image) map[string]entry {
	t.Helper()
	layers, err := img.Layers()
	require.NoError(t, err)
	require.Len(t, layers, 1)
	l := layers[0]
	digest, err := l.Digest()
	require.NoError(t, err)
	rc, err := l.Compressed()
	require.NoError(t, err)
	h := sha256.New()
	_, err = io.Copy(h, rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	require.Equal(t, digest.Hex, fmt.Sprintf("%x", h.Sum(nil)), "layer blob")
	cf, err := img.ConfigFile()
	require.NoError(t, err)
	require.Len(t, cf.RootFS.DiffIDs, 1)

	rc, err = l.Uncompressed()
	require.NoError(t, err)
	defer rc.Close()
	h.Reset()
	files := map[string]entry{}
	tee := io.TeeReader(rc, h)
	tr := tar.NewReader(tee)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		data, err := io.ReadAll(tr)
		require.NoError(t, err)
		e := entry{mode: fs.FileMode(hdr.Mode).Perm(), uid: hdr.Uid, gid: hdr.Gid}
		if hdr.Mode&0o1000 != 0 {
			e.mode |= fs.ModeSticky
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			e.mode |= fs.ModeDir
		case tar.TypeReg:
			e.data = data
		default:
			t.Fatalf("%s: unexpected tar type %c", hdr.Name, hdr.Typeflag)
		}
		name := "/" + strings.TrimSuffix(hdr.Name, "/")
		require.NotContains(t, files, name, "one entry per path")
		files[name] = e
	}
	_, err = io.Copy(io.Discard, tee) // any padding after the end belongs to the diff ID
	require.NoError(t, err)
	require.Equal(t, cf.RootFS.DiffIDs[0].Hex, fmt.Sprintf("%x", h.Sum(nil)), "layer contents")
	return files
}

// treeFiles reads a directory tree written by -rootfs.
func treeFiles(t *testing.T, root string) map[string]entry {
	t.Helper()
	files := map[string]entry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		st := info.Sys().(*syscall.Stat_t)
		e := entry{mode: info.Mode() & (fs.ModeDir | fs.ModeSticky | fs.ModePerm), uid: int(st.Uid), gid: int(st.Gid)}
		if info.Mode().IsRegular() {
			if e.data, err = os.ReadFile(p); err != nil {
				return err
			}
		}
		rel, err := filepath.Rel(root, p)
		files["/"+filepath.ToSlash(rel)] = e
		return err
	})
	require.NoError(t, err)
	return files
}

func fileSum(t *testing.T, name string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(name)
	require.NoError(t, err)
	return sha256.Sum256(b)
}
