// Package fuzztest helps fuzz targets that read files.
package fuzztest

import (
	"os"
	"testing"
)

// Dir returns a directory for a fuzz target's files, removed at the end of
// tb: in memory (/dev/shm) where there is one, else tb.TempDir(). Each
// input on a disk mounted with discard (as this project's test machines
// are) costs a discard per file removed, some 0.1 s: a target that made a
// TempDir per input ran a few inputs a second. A target writes its input
// to the same names in it each time.
func Dir(tb testing.TB) string {
	tb.Helper()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "pachca-fuzz-"); err == nil {
			tb.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return tb.TempDir()
}
