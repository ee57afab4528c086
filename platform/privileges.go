package platform

import (
	"fmt"
	"os"
	"syscall"
)

// IsRoot reports whether the process runs with effective uid 0.
func IsRoot() bool { return os.Geteuid() == 0 }

// DropPrivileges makes the process run as uid and gid for good, with no
// group kept for the spool directory; see DropToUser.
func DropPrivileges(uid, gid int) error { return DropToUser(uid, gid, -1) }

// spoolGID is the group DropToUser kept for AsSpoolGroup; -1 for none.
var spoolGID = -1

// DropToUser makes the process run as uid and gid for good: the
// supplementary groups become [gid], then the group, then the user is set
// (every thread on Linux: Go's syscall package applies these to all
// threads since Go 1.16). When spoolGroup is not -1 the process keeps it
// as its saved group id only, to take it as its effective group for the
// spool-directory operations that need it (AsSpoolGroup) and for nothing
// else: files a user can point at (bulletins, options, a home-directory
// mailbox) are opened with the user's own groups.
//
// It then checks that all real and effective ids took and that uid 0
// cannot be regained, and returns an error if any step did not. A process
// that gets an error must not go on serving the user.
func DropToUser(uid, gid, spoolGroup int) error {
	if uid <= 0 || gid < 0 {
		return fmt.Errorf("DropPrivileges: refusing uid %d gid %d", uid, gid)
	}
	if spoolGroup == gid || spoolGroup == 0 {
		spoolGroup = -1 // nothing to keep; and never root's group
	}
	if err := syscall.Setgroups([]int{gid}); err != nil {
		return fmt.Errorf("setgroups([%d]): %w", gid, err)
	}
	if spoolGroup < 0 {
		if err := syscall.Setgid(gid); err != nil {
			return fmt.Errorf("setgid(%d): %w", gid, err)
		}
	} else {
		// Real gid, effective spoolGroup: the saved gid becomes
		// spoolGroup (POSIX setregid); then the effective one goes back
		// to the user's.
		if err := syscall.Setregid(gid, spoolGroup); err != nil {
			return fmt.Errorf("setregid(%d, %d): %w", gid, spoolGroup, err)
		}
		if err := syscall.Setregid(-1, gid); err != nil {
			return fmt.Errorf("setregid(-1, %d): %w", gid, err)
		}
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
	if spoolGroup >= 0 {
		// The kept group must come back when asked for, and only then.
		if err := setEGID(spoolGroup); err != nil {
			return fmt.Errorf("taking the spool group %d: %w", spoolGroup, err)
		}
		if err := setEGID(gid); err != nil {
			return err
		}
	}
	spoolGID = spoolGroup
	return nil
}

func setEGID(gid int) error {
	if err := syscall.Setregid(-1, gid); err != nil {
		return fmt.Errorf("setregid(-1, %d): %w", gid, err)
	}
	if e := syscall.Getegid(); e != gid {
		return fmt.Errorf("after setregid(-1, %d): egid %d", gid, e)
	}
	return nil
}

// AsSpoolGroup runs fn with the group DropToUser kept as the effective
// group (the spool directory's, e.g. mail in a 2775 root:mail /var/mail),
// so that fn can make and remove the lock and temp drop there; without a
// kept group it just runs fn. The session goes back to the user's own
// group afterwards, whatever fn returns.
func AsSpoolGroup(fn func() error) error {
	if spoolGID < 0 {
		return fn()
	}
	return withEGID(spoolGID, fn)
}

// AsOwnGroup runs fn with the user's own group as the effective group,
// for the paths a user can point at (bulletins, ~/.popbull) reached from
// within AsSpoolGroup.
func AsOwnGroup(fn func() error) error {
	if spoolGID < 0 {
		return fn()
	}
	return withEGID(syscall.Getgid(), fn)
}

func withEGID(gid int, fn func() error) error {
	old := syscall.Getegid()
	if old == gid {
		return fn()
	}
	if err := setEGID(gid); err != nil {
		return err
	}
	defer func() {
		if err := setEGID(old); err != nil {
			// The process would go on with the wrong group: stop it.
			panic("platform: cannot restore the effective group: " + err.Error())
		}
	}()
	return fn()
}
