package ociimage

import (
	"fmt"
	"os"
	"path/filepath"
)

// WriteRootfs writes files under dir (which must not exist yet) with their
// modes and owners: the tree the Dockerfile's final stage copies whole with
// `COPY --from=build /rootfs/ /`, which keeps both. Setting owners needs
// root, as in a container build stage.
func WriteRootfs(dir string, files []File) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		var err error
		if f.Mode.IsDir() {
			err = os.Mkdir(p, f.Mode.Perm())
		} else {
			err = os.WriteFile(p, f.Data, f.Mode.Perm())
		}
		if err == nil {
			err = os.Chown(p, f.UID, f.GID)
		}
		if err == nil {
			err = os.Chmod(p, f.Mode&(os.ModePerm|os.ModeSticky)) // past the umask
		}
		if err != nil {
			return fmt.Errorf("rootfs: %w", err)
		}
	}
	return nil
}
