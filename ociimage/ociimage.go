// Package ociimage assembles the pachca-export container image without a
// container engine: one layer holding a static binary, a CA bundle, the
// licence texts of what the binary links (THIRD_PARTY_NOTICES) and its
// SBOM, an /etc/passwd with the non-root user, /tmp and the state directory; a
// configuration that runs the binary as that user. cmd/pachca-image writes
// it as an image archive (`make image`) and, for the Dockerfile's build
// stage, as a directory tree that the final stage copies whole, so both
// ways of building give the same file system.
//
// Writable state: the image's working directory, StateDir, belongs to the
// non-root user (mount a volume on it to keep the state; pipeline.yaml names
// it with absolute paths, since its relative ones resolve against the
// file's own directory), and /tmp is world-writable with the sticky bit
// (the S3 sink's temporary files). A read-only root file system needs a
// volume on both.
package ociimage

import (
	"archive/tar"
	"bytes"
	"crypto/x509"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Where things are in the image and who runs it. The Dockerfile at the
// repository root repeats them; a test keeps the two equal.
const (
	UID        = 65532 // the distroless convention for "nonroot"
	GID        = 65532
	UserName   = "nonroot"
	User       = "65532:65532" // numeric, so runAsNonRoot can verify it
	BinaryPath = "/usr/local/bin/pachca-export"
	CABundle   = "/etc/ssl/certs/ca-certificates.crt"
	NoticesDir = "/usr/share/doc/pachca-export"
	Notices    = NoticesDir + "/THIRD_PARTY_NOTICES"
	SBOM       = NoticesDir + "/pachca-export.cdx.json"
	StateDir   = "/var/lib/pachca-export"
	TempDir    = "/tmp"
)

// Spec is what one image is built from.
type Spec struct {
	// Binary is the path of a statically linked linux executable of
	// pachca-export for Arch.
	Binary string
	// CABundle is the path of a PEM bundle of trusted root certificates,
	// e.g. /etc/ssl/certs/ca-certificates.crt of Debian's ca-certificates.
	CABundle string
	// Notices is the path of THIRD_PARTY_NOTICES for Binary
	// (cmd/pachca-notices): the licence texts an image that redistributes
	// the binary must carry.
	Notices string
	// SBOM, if set, is the path of the binary's CycloneDX SBOM
	// (cmd/pachca-sbom), put beside the notices.
	SBOM string
	// Arch is the GOARCH of the binary: amd64 or arm64.
	Arch string
	// Version and Revision (the commit) become image labels.
	Version, Revision string
	// Created is the image's creation time and every file's modification
	// time; a fixed value (the commit's time) makes builds reproducible.
	Created time.Time
}

// File is one entry of the image's file system.
type File struct {
	Path     string      // absolute, slash-separated
	Mode     fs.FileMode // permissions with fs.ModeDir and fs.ModeSticky where they apply
	UID, GID int
	Data     []byte // contents of a regular file
}

// Files reads the binary and the CA bundle of s, checks them, and returns
// the image's file system, parents before children.
func Files(s Spec) ([]File, error) {
	bin, err := os.ReadFile(s.Binary)
	if err != nil {
		return nil, fmt.Errorf("binary: %w", err)
	}
	if err := checkBinary(s.Binary, bin, s.Arch); err != nil {
		return nil, err
	}
	ca, err := os.ReadFile(s.CABundle)
	if err != nil {
		return nil, fmt.Errorf("CA bundle: %w (Debian's ca-certificates package provides /etc/ssl/certs/ca-certificates.crt)", err)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("CA bundle %s: no PEM certificate in it", s.CABundle)
	}
	notices, err := os.ReadFile(s.Notices)
	if err != nil {
		return nil, fmt.Errorf("notices: %w (write them with: go run ./cmd/pachca-notices -o FILE %s)", err, s.Binary)
	}
	if err := checkNotices(s.Notices, notices, s.Binary, bin); err != nil {
		return nil, err
	}
	var sbom []byte
	if s.SBOM != "" {
		if sbom, err = os.ReadFile(s.SBOM); err != nil {
			return nil, fmt.Errorf("sbom: %w (write it with: go run ./cmd/pachca-sbom -version V %s)", err, s.Binary)
		}
		if err := checkSBOM(s.SBOM, sbom, s.Binary, bin); err != nil {
			return nil, err
		}
	}
	dir := func(p string, mode fs.FileMode, id int) File {
		return File{Path: p, Mode: fs.ModeDir | mode, UID: id, GID: id}
	}
	file := func(p string, mode fs.FileMode, data []byte) File {
		return File{Path: p, Mode: mode, Data: data}
	}
	files := []File{
		dir("/etc", 0o755, 0),
		file("/etc/group", 0o644, []byte("root:x:0:\n"+UserName+":x:65532:\n")),
		file("/etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/sbin/nologin\n"+
			UserName+":x:65532:65532:"+UserName+":"+StateDir+":/sbin/nologin\n")),
		dir("/etc/ssl", 0o755, 0),
		dir("/etc/ssl/certs", 0o755, 0),
		file(CABundle, 0o644, ca),
		dir(TempDir, fs.ModeSticky|0o777, 0),
		dir("/usr", 0o755, 0),
		dir("/usr/local", 0o755, 0),
		dir("/usr/local/bin", 0o755, 0),
		file(BinaryPath, 0o755, bin),
		dir("/usr/share", 0o755, 0),
		dir("/usr/share/doc", 0o755, 0),
		dir(NoticesDir, 0o755, 0),
		file(Notices, 0o644, notices),
		dir("/var", 0o755, 0),
		dir("/var/lib", 0o755, 0),
		dir(StateDir, 0o750, UID),
	}
	if sbom != nil {
		files = append(files, file(SBOM, 0o644, sbom))
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files, nil
}

// Labels are the image's OCI annotations of s. The Dockerfile sets the same
// keys.
func Labels(s Spec) map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":       "pachca-export",
		"org.opencontainers.image.description": "Exports the Pachca audit-event log to NDJSON, Parquet, S3 and Kafka",
		"org.opencontainers.image.version":     s.Version,
		"org.opencontainers.image.revision":    s.Revision,
		"org.opencontainers.image.created":     s.Created.UTC().Format(time.RFC3339),
	}
}

// Config is how the image runs: the binary as the entrypoint, as the
// non-root user, in the state directory.
func Config(s Spec) v1.Config {
	return v1.Config{
		User:       User,
		Entrypoint: []string{BinaryPath},
		Env:        []string{"PATH=/usr/local/bin"},
		WorkingDir: StateDir,
		Labels:     Labels(s),
	}
}

// Build returns the image of s: OCI media types, one gzip layer, platform
// linux/Arch. The same Spec gives the same digest.
func Build(s Spec) (v1.Image, error) {
	files, err := Files(s)
	if err != nil {
		return nil, err
	}
	var layerTar bytes.Buffer
	if err := writeTar(&layerTar, files, s.Created); err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar.Bytes())), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching) // compressed once, not per read
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History:   v1.History{Created: v1.Time{Time: s.Created}, CreatedBy: "pachca-image: static binary, CA bundle, notices, passwd, /tmp, " + StateDir},
	})
	if err != nil {
		return nil, fmt.Errorf("append layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = "linux", s.Arch, variant(s.Arch)
	cf.Created = v1.Time{Time: s.Created}
	cf.Config = Config(s)
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return img, nil
}

// variant is the platform variant registries expect for arch.
func variant(arch string) string {
	if arch == "arm64" {
		return "v8"
	}
	return ""
}

// writeTar writes files as a layer: relative names, numeric owners, every
// time set to mtime.
func writeTar(w io.Writer, files []File, mtime time.Time) error {
	tw := tar.NewWriter(w)
	for _, f := range files {
		h := &tar.Header{
			Name:    f.Path[1:],
			Mode:    int64(f.Mode.Perm()),
			Uid:     f.UID,
			Gid:     f.GID,
			ModTime: mtime,
			Format:  tar.FormatPAX,
		}
		if f.Mode&fs.ModeSticky != 0 {
			h.Mode |= 0o1000 // c_ISVTX
		}
		if f.Mode.IsDir() {
			h.Typeflag, h.Name = tar.TypeDir, h.Name+"/"
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.Data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("layer: %s: %w", f.Path, err)
		}
		if _, err := tw.Write(f.Data); err != nil {
			return fmt.Errorf("layer: %s: %w", f.Path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("layer: %w", err)
	}
	return nil
}
