// Package buildtest builds the pachca-export command the way `make release`
// and `make image` do (static, trimmed paths, version stamped with -ldflags
// -X), for tests that run the real binary.
package buildtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
)

// The build identity StaticBinary links in.
const (
	Version = "v0.0.0-test"
	Commit  = "0123456789abcdef0123456789abcdef01234567"
	Date    = "2026-11-30T08:15:00Z"
)

// LDFlags is the -ldflags value of the release build for a version, commit
// and date: the Makefile's LDFLAGS and the Dockerfile's go build say the same.
func LDFlags(version, commit, date string) string {
	return "-s -w -X main.buildVersion=" + version + " -X main.buildCommit=" + commit + " -X main.buildDate=" + date
}

// StaticBinary builds cmd/pachca-export for linux on this machine's
// architecture with CGO_ENABLED=0, -trimpath and LDFlags(Version, Commit,
// Date) into a temporary directory and returns its path. It skips the test
// under -short: the first build in a fresh Go cache compiles the whole tree
// once more (about two minutes on two cores), later ones take seconds.
func StaticBinary(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("buildtest: builds the static binary; skipped with -short")
	}
	// Test binaries of several packages build the same thing at once; one
	// at a time, the later ones find everything in the Go build cache.
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "pachca-export-buildtest.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("buildtest: %v", err)
	}
	defer lock.Close() // releases the lock
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatalf("buildtest: lock %s: %v", lock.Name(), err)
	}
	out := filepath.Join(t.TempDir(), "pachca-export")
	cmd := exec.CommandContext(t.Context(), "go", "build", "-trimpath", "-buildvcs=false",
		"-ldflags", LDFlags(Version, Commit, Date), "-o", out,
		"github.com/pachca-export/pachca-export/cmd/pachca-export")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("buildtest: go build: %v\n%s", err, b)
	}
	return out
}
