// Package account names the users and groups that own files, for the
// messages that say who may write where.
package account

import (
	"os/user"
	"strconv"
)

// UserName is the name of user uid, or "" when it has none.
func UserName(uid uint32) string {
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return ""
	}
	return u.Username
}

// GroupName is the name of group gid, or "" when it has none.
func GroupName(gid uint32) string {
	g, err := user.LookupGroupId(strconv.FormatUint(uint64(gid), 10))
	if err != nil {
		return ""
	}
	return g.Name
}
