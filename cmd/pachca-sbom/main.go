// Command pachca-sbom writes the software bill of materials of each
// pachca-export binary it is given, as CycloneDX JSON beside it
// (BINARY.cdx.json; `make release`): the modules linked into it, the Go
// standard library, the embedded files, their licences. Package
// internal/sbom says what is in it.
//
//	pachca-sbom [-repo DIR] -version VERSION BINARY...
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/pachca-export/pachca-export/internal/atomicfile"
	"github.com/pachca-export/pachca-export/internal/sbom"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// Suffix is what the SBOM's name adds to the binary's.
const Suffix = ".cdx.json"

// run executes the command line and returns the exit status: 0 written,
// 1 a licence is missing or not recognised or a binary unreadable, 2 usage.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("pachca-sbom", flag.ContinueOnError)
	fs.SetOutput(stderr)
	version := fs.String("version", "", "the `VERSION` the binaries were stamped with (make release's VERSION)")
	repo := fs.String("repo", ".", "the pachca-export checkout `DIR` (for the files embedded from it)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *version == "" || fs.NArg() == 0 {
		fmt.Fprintln(stderr, "pachca-sbom: usage: pachca-sbom [-repo DIR] -version VERSION BINARY...")
		return 2
	}
	for _, bin := range fs.Args() {
		doc, err := sbom.Generate(*repo, bin, *version)
		if err == nil {
			err = atomicfile.WriteFile(bin+Suffix, doc, 0o644)
		}
		if err != nil {
			fmt.Fprintln(stderr, "pachca-sbom: "+err.Error())
			return 1
		}
		fmt.Fprintf(stdout, "wrote %s: %d bytes\n", bin+Suffix, len(doc))
	}
	return 0
}
