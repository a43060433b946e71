// Command pachca-image builds the pachca-export container image without a
// container engine (`make image`), or writes its file system as a directory
// for the Dockerfile's build stage. Package ociimage says what is in it.
//
//	pachca-image -binary FILE [-arch amd64|arm64] [-ca-bundle FILE] -notices FILE [-sbom FILE] [-version V] [-revision SHA] [-created RFC3339] [-tag NAME:TAG] -o IMAGE.tar
//	pachca-image -binary FILE [-arch amd64|arm64] [-ca-bundle FILE] -notices FILE [-sbom FILE] -rootfs DIR
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/pachca-export/pachca-export/ociimage"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// run executes the command line and returns the exit status: 0 done,
// 1 the build failed, 2 usage.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("pachca-image", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var s ociimage.Spec
	var out, rootfs, created, tag string
	fs.StringVar(&s.Binary, "binary", "", "static linux `FILE` of pachca-export (CGO_ENABLED=0)")
	fs.StringVar(&s.Arch, "arch", runtime.GOARCH, "GOARCH of the binary: amd64 or arm64")
	fs.StringVar(&s.CABundle, "ca-bundle", "/etc/ssl/certs/ca-certificates.crt", "PEM `FILE` of trusted root certificates")
	fs.StringVar(&s.Notices, "notices", "", "THIRD_PARTY_NOTICES `FILE` of the binary (cmd/pachca-notices)")
	fs.StringVar(&s.SBOM, "sbom", "", "CycloneDX SBOM `FILE` of the binary (cmd/pachca-sbom), put beside the notices")
	fs.StringVar(&s.Version, "version", "dev", "version label")
	fs.StringVar(&s.Revision, "revision", "unknown", "commit label")
	fs.StringVar(&created, "created", "", "creation time, RFC 3339 (default 1970-01-01T00:00:00Z, for reproducible builds)")
	fs.StringVar(&tag, "tag", "", "image `NAME:TAG` recorded in the archive (default pachca-export:VERSION)")
	fs.StringVar(&out, "o", "", "write the image archive (OCI layout and docker save format) to `FILE`")
	fs.StringVar(&rootfs, "rootfs", "", "write the image's file system under `DIR` instead (needs root)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	usage := func(msg string) int {
		fmt.Fprintln(stderr, "pachca-image: "+msg)
		return 2
	}
	switch {
	case fs.NArg() > 0:
		return usage(fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	case s.Binary == "":
		return usage("-binary is required")
	case (out == "") == (rootfs == ""):
		return usage("give one of -o FILE and -rootfs DIR")
	case s.Notices == "":
		return usage("-notices is required: the image carries the licence texts of what the binary links (go run ./cmd/pachca-notices -o FILE BINARY)")
	}
	s.Created = time.Unix(0, 0).UTC()
	if created != "" && created != "unknown" {
		t, err := time.Parse(time.RFC3339, created)
		if err != nil {
			return usage(fmt.Sprintf("-created %q: want RFC 3339, e.g. 2026-11-01T00:00:00Z", created))
		}
		s.Created = t.UTC()
	}
	if tag == "" {
		tag = "pachca-export:" + s.Version
	}

	var msg string
	var err error
	if rootfs != "" {
		msg, err = writeRootfs(s, rootfs)
	} else {
		msg, err = writeArchive(s, out, tag)
	}
	if err != nil {
		fmt.Fprintln(stderr, "pachca-image: "+err.Error())
		return 1
	}
	fmt.Fprintln(stdout, msg)
	return 0
}

func writeRootfs(s ociimage.Spec, dir string) (string, error) {
	files, err := ociimage.Files(s)
	if err != nil {
		return "", err
	}
	if err := ociimage.WriteRootfs(dir, files); err != nil {
		return "", err
	}
	return fmt.Sprintf("wrote %s: %d entries", dir, len(files)), nil
}

// writeArchive builds the image and writes it through a temporary file, so
// a failed build leaves no truncated archive under the final name.
func writeArchive(s ociimage.Spec, out, tag string) (string, error) {
	img, err := ociimage.Build(s)
	if err != nil {
		return "", err
	}
	digest, err := img.Digest()
	if err != nil {
		return "", err
	}
	f, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	err = ociimage.WriteArchive(f, img, tag)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), out)
	}
	if err != nil {
		return "", fmt.Errorf("write %s: %w", out, err)
	}
	return fmt.Sprintf("wrote %s: %s linux/%s %s", out, tag, s.Arch, digest), nil
}
