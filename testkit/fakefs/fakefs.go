// Package fakefs gives tests the metadata of files they cannot make as
// root: another user's files and directories, and modes that would deny
// anyone but root.
package fakefs

import (
	"io/fs"
	"syscall"
	"time"
)

// Info is a file's mode (fs.ModeDir for a directory) and its owner, whose
// user and group id are both ID.
type Info struct {
	Perm fs.FileMode
	ID   uint32
}

func (i Info) Name() string       { return "" }
func (i Info) Size() int64        { return 0 }
func (i Info) Mode() fs.FileMode  { return i.Perm }
func (i Info) ModTime() time.Time { return time.Time{} }
func (i Info) IsDir() bool        { return i.Perm.IsDir() }
func (i Info) Sys() any           { return &syscall.Stat_t{Uid: i.ID, Gid: i.ID} }
