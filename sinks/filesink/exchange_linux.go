//go:build linux

package filesink

import "golang.org/x/sys/unix"

// exchange swaps the directories a and b at once (renameat2 with
// RENAME_EXCHANGE); EINVAL where the file system cannot.
func exchange(a, b string) error {
	return unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE)
}
