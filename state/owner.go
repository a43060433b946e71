package state

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/pachca-export/pachca-export/internal/sumfile"
)

// OwnerFile records whose token exported the state's days (Owner).
const OwnerFile = "owner.json"

// Owner is the user who owned the token a state's days were exported with:
// the workspace's owner, since only the owner's token reads the audit log.
// Another owner's token is another workspace's, whose events do not belong
// in this state's output.
type Owner struct {
	UserID int64     `json:"user_id"`
	Since  time.Time `json:"since"` // when it was first recorded
}

// Owner reads the recorded owner; ok is false when none is (a state no
// run has used yet, or written by a version before owners were recorded).
// A damaged file is a permanent error naming it.
func (v *View) Owner() (o Owner, ok bool, err error) {
	ok, err = sumfile.Read(filepath.Join(v.dir, OwnerFile), &o,
		"remove it: the next run records its token's owner again")
	if err != nil {
		return Owner{}, false, fmt.Errorf("state: %w", err)
	}
	return o, ok, nil
}

// OwnerPath is the file that records the owner, for a message that tells
// how to accept a new one.
func (v *View) OwnerPath() string { return filepath.Join(v.dir, OwnerFile) }

// SetOwner records o durably.
func (s *Store) SetOwner(o Owner) error {
	o.Since = o.Since.UTC()
	if err := sumfile.Write(filepath.Join(s.dir, OwnerFile), o, fileMode); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}
