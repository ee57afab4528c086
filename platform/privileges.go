package platform

import (
	"fmt"
	"os"
	"syscall"
)

// BlockUID is qpopper's BLOCK_UID: logins of users with uid <= BlockUID
// are refused (system accounts). The caller enforces it.
const BlockUID = 10

// IsRoot reports whether the process runs with effective uid 0.
func IsRoot() bool { return os.Geteuid() == 0 }

// DropPrivileges makes the process run as uid and gid for good: the
// supplementary groups become [gid], then the group, then the user is set
// (every thread on Linux: Go's syscall package applies these to all
// threads since Go 1.16). It then checks that all real and effective ids
// took and that uid 0 cannot be regained, and returns an error if any
// step did not. A process that gets an error must not go on serving the
// user.
func DropPrivileges(uid, gid int) error {
	if uid <= 0 || gid < 0 {
		return fmt.Errorf("DropPrivileges: refusing uid %d gid %d", uid, gid)
	}
	if err := syscall.Setgroups([]int{gid}); err != nil {
		return fmt.Errorf("setgroups([%d]): %w", gid, err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return fmt.Errorf("setgid(%d): %w", gid, err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return fmt.Errorf("setuid(%d): %w", uid, err)
	}
	if r, e := syscall.Getuid(), syscall.Geteuid(); r != uid || e != uid {
		return fmt.Errorf("after setuid(%d): uid %d euid %d", uid, r, e)
	}
	if r, e := syscall.Getgid(), syscall.Getegid(); r != gid || e != gid {
		return fmt.Errorf("after setgid(%d): gid %d egid %d", gid, r, e)
	}
	groups, err := syscall.Getgroups()
	if err != nil {
		return fmt.Errorf("getgroups: %w", err)
	}
	for _, g := range groups {
		if g != gid {
			return fmt.Errorf("after setgroups([%d]): still in group %d", gid, g)
		}
	}
	if err := syscall.Setuid(0); err == nil {
		return fmt.Errorf("setuid(0) succeeded after dropping to uid %d", uid)
	}
	return nil
}
