package exporttest

import (
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
)

// MountTmpfs mounts a tmpfs with the given mount options ("size=64k", "ro")
// on dir and unmounts it when the test ends, or earlier through the returned
// function (safe to call again). Mounting needs root with CAP_SYS_ADMIN
// (tests and CI run so in a container); where it is not permitted the test
// skips, or fails when CI=true.
func MountTmpfs(t testing.TB, dir, options string) (unmount func() error) {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "mount", "-t", "tmpfs", "-o", options, "tmpfs", dir).CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("cannot mount a tmpfs on %s (needs root): %v: %s", dir, err, out)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	var once sync.Once
	var uerr error
	unmount = func() error {
		once.Do(func() {
			// Lazy: a file still open somewhere never makes this block or fail.
			if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
				uerr = fmt.Errorf("umount %s: %w: %s", dir, err, out)
			}
		})
		return uerr
	}
	t.Cleanup(func() {
		if err := unmount(); err != nil {
			t.Error(err)
		}
	})
	return unmount
}
