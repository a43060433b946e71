package ociimage

import (
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// machine is the ELF machine of a GOARCH the image is built for.
func machine(arch string) (elf.Machine, bool) {
	switch arch {
	case "amd64":
		return elf.EM_X86_64, true
	case "arm64":
		return elf.EM_AARCH64, true
	}
	return 0, false
}

// checkBinary refuses what cannot run in an image without a C library: a
// file that is not a linux ELF executable for arch, or one that is
// dynamically linked (a program interpreter or needed libraries).
func checkBinary(name string, data []byte, arch string) error {
	want, ok := machine(arch)
	if !ok {
		return fmt.Errorf("arch %q: want amd64 or arm64", arch)
	}
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		// The file is in memory: the only failure is its format.
		return fmt.Errorf("binary %s: not an ELF executable (want a linux build of cmd/pachca-export)", name)
	}
	defer f.Close()
	if f.Machine != want {
		return fmt.Errorf("binary %s: built for %s, not %s (set GOARCH=%s)", name, f.Machine, arch, arch)
	}
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return fmt.Errorf("binary %s: ELF type %s is not an executable", name, f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("binary %s: dynamically linked (build it with CGO_ENABLED=0)", name)
		}
	}
	if libs, err := f.ImportedLibraries(); err == nil && len(libs) > 0 {
		return fmt.Errorf("binary %s: needs shared libraries %v (build it with CGO_ENABLED=0)", name, libs)
	}
	return nil
}

// checkNotices refuses notices that lack a module the binary links: each
// has a heading "path version" there (internal/notices writes them).
func checkNotices(name string, notices []byte, binName string, bin []byte) error {
	bi, err := buildinfo.Read(bytes.NewReader(bin))
	if err != nil {
		return fmt.Errorf("binary %s: no Go build information: %w", binName, err)
	}
	for _, d := range bi.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		if !bytes.Contains(notices, []byte("\n"+d.Path+" "+d.Version+"\n")) {
			return fmt.Errorf("notices %s: no licence of %s %s, which %s links (write them again with cmd/pachca-notices)", name, d.Path, d.Version, binName)
		}
	}
	return nil
}

// checkSBOM refuses an SBOM of another binary: internal/sbom writes the
// binary's SHA-256 as its main component's hash.
func checkSBOM(name string, sbom []byte, binName string, bin []byte) error {
	var doc struct {
		Metadata struct {
			Component struct {
				Hashes []struct{ Alg, Content string }
			}
		}
	}
	if err := json.Unmarshal(sbom, &doc); err != nil {
		return fmt.Errorf("sbom %s: %w", name, err)
	}
	sum := sha256.Sum256(bin)
	want := hex.EncodeToString(sum[:])
	for _, h := range doc.Metadata.Component.Hashes {
		if h.Alg == "SHA-256" && h.Content == want {
			return nil
		}
	}
	return fmt.Errorf("sbom %s: not the SBOM of %s, whose SHA-256 is %s (write it again with cmd/pachca-sbom)", name, binName, want)
}
