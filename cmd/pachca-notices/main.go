// Command pachca-notices writes THIRD_PARTY_NOTICES for pachca-export
// binaries (`make release`, `make image`): the licence and notice files of
// everything they link and embed, from the Go module cache. Package
// internal/notices says what is in it.
//
//	pachca-notices [-repo DIR] -o FILE BINARY...
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/pachca-export/pachca-export/internal/atomicfile"
	"github.com/pachca-export/pachca-export/internal/notices"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// run executes the command line and returns the exit status: 0 written,
// 1 a text is missing or a binary unreadable, 2 usage.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("pachca-notices", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "write the notices to `FILE`")
	repo := fs.String("repo", ".", "the pachca-export checkout `DIR` (for the files embedded from it)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *out == "" || fs.NArg() == 0 {
		fmt.Fprintln(stderr, "pachca-notices: usage: pachca-notices [-repo DIR] -o FILE BINARY...")
		return 2
	}
	text, err := notices.Generate(*repo, fs.Args()...)
	if err == nil {
		err = atomicfile.WriteFile(*out, text, 0o644)
	}
	if err != nil {
		fmt.Fprintln(stderr, "pachca-notices: "+err.Error())
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s: %d bytes\n", *out, len(text))
	return 0
}
