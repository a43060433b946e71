// Package fdfloor ends the process with one line, before anything else
// runs, when it may open fewer files at once than Go's runtime and the
// command need to start: below some eight, the runtime's poller cannot be
// created and the first file opened (by a dependency's package
// initialisation) ends the process with the runtime's stack trace.
//
// Imported for its side effect by the command; its initialisation runs
// before those of the dependencies that open files, as Go initialises the
// packages whose dependencies are ready in the order of their import
// paths (github.com/pachca-export/... before google.golang.org/...); it
// imports no more than os does, fmt not even, to be ready that early.
package fdfloor

import (
	"os"
	"strconv"
	"syscall"
	"time"
)

// Min is the fewest files a process may open at once for the command to
// start: standard streams, the runtime's poller, the configuration, the
// state's lock and files, a connection and a sink's file.
const Min = 16

// exitUsage is the exit status of a configuration error, as the command's:
// a limit this low is the environment's setting, not a failure that a
// restart (a unit's Restart=) would get past.
const exitUsage = 2

func init() {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur >= Min {
		return
	}
	msg := "this process may open " + strconv.FormatUint(lim.Cur, 10) +
		" files at once, fewer than the " + strconv.Itoa(Min) + " it needs to start: raise the limit to 1024 or more, with ulimit -n or the unit's LimitNOFILE="
	if jsonLog(os.Args[1:]) {
		// As the command's errors are with --log-format json: one object,
		// which journald, Vector or jq parse (was: this line as text).
		os.Stderr.WriteString(`{"time":"` + time.Now().UTC().Format(time.RFC3339Nano) + `","level":"ERROR","msg":` +
			strconv.Quote(msg) + `,"exit_code":` + strconv.Itoa(exitUsage) + "}\n")
	} else {
		os.Stderr.WriteString("pachca-export: " + msg + "\n")
	}
	os.Exit(exitUsage)
}

// jsonLog says args ask for --log-format json (or -log-format, =json,
// JSON), as the command reads them; strings is not imported this early.
func jsonLog(args []string) bool {
	for i, a := range args {
		switch {
		case a == "--":
			return false
		case (a == "--log-format" || a == "-log-format") && i+1 < len(args):
			return isJSON(args[i+1])
		case hasPrefix(a, "--log-format="):
			return isJSON(a[len("--log-format="):])
		case hasPrefix(a, "-log-format="):
			return isJSON(a[len("-log-format="):])
		}
	}
	return false
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }

// isJSON is s == "json" in any case.
func isJSON(s string) bool {
	if len(s) != 4 {
		return false
	}
	for i := range 4 {
		if s[i]|0x20 != "json"[i] {
			return false
		}
	}
	return true
}
