//go:build !linux

package filesink

import "golang.org/x/sys/unix"

// exchange is not offered outside Linux: ENOSYS, and swapDay replaces the
// day in two renames instead.
func exchange(a, b string) error { return unix.ENOSYS }
