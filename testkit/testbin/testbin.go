// Package testbin finds the tools that tests run as real programs (MinIO,
// promtool, ...): installed pinned into the repository's bin/ by a make
// target, or named by an environment variable.
package testbin

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Find returns the path of the tool: $env when set (it must exist), else
// bin/<name> in the module root above the working directory.
func Find(env, name string) (string, error) {
	if p := os.Getenv(env); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", env, p, err)
		}
		return p, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(dir, "bin", name)
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("no %s binary at %s", name, p)
			}
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no %s binary: %s unset and no go.mod above the working directory", name, env)
		}
		dir = parent
	}
}

// Require returns the tool's path, or skips the test naming the make target
// that installs it; with CI=true a missing tool fails the test instead.
func Require(t testing.TB, env, name, target string) string {
	t.Helper()
	p, err := Find(env, name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%v (CI=true: run `make %s` first)", err, target)
		}
		t.Skipf("%v; run `make %s` to install it", err, target)
	}
	return p
}
