//go:build !linux

package state

import "os"

// flocked does not know elsewhere than on Linux (see held_linux.go).
func flocked(*os.File) (held, known bool) { return false, false }

// procStopped does not know elsewhere than on Linux (see held_linux.go).
func procStopped(int) bool { return false }
