package platform

import (
	"fmt"
	"os"
	"runtime"
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
	saved := gid
	if spoolGroup >= 0 {
		saved = spoolGroup
	}
	if err := setGroupIDs(gid, saved); err != nil {
		return fmt.Errorf("setting the groups to %d (saved %d): %w", gid, saved, err)
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
		if err := withEGID(spoolGroup, func() error { return nil }); err != nil {
			return fmt.Errorf("taking the spool group %d: %w", spoolGroup, err)
		}
	}
	spoolGID = spoolGroup
	return nil
}

// AsSpoolGroup runs fn with the group DropToUser kept as the effective
// group (the spool directory's, e.g. mail in a 2775 root:mail /var/mail),
// so that fn can make and remove the lock and temp drop there; without a
// kept group it just runs fn. The session goes back to the user's own
// group afterwards, whatever fn returns. Where credentials are per thread
// (Linux) only fn's thread takes the group: fn must not hand its work in
// the spool directory to other goroutines.
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

// withEGID runs fn with effective group gid. With per-thread credentials
// the goroutine stays on its thread until the group is given back; if it
// cannot be, the process stops with the thread still locked, so that no
// other goroutine ever runs there.
func withEGID(gid int, fn func() error) error {
	if threadCredentials {
		runtime.LockOSThread()
	}
	old := syscall.Getegid()
	if old == gid {
		defer unlockThread()
		return fn()
	}
	if err := setEGID(gid); err != nil {
		unlockThread()
		return err
	}
	defer func() {
		if err := setEGID(old); err != nil {
			panic("platform: cannot restore the effective group: " + err.Error())
		}
		unlockThread()
	}()
	return fn()
}

func unlockThread() {
	if threadCredentials {
		runtime.UnlockOSThread()
	}
}

func setEGID(gid int) error {
	if err := setThreadEGID(gid); err != nil {
		return fmt.Errorf("setting the effective group to %d: %w", gid, err)
	}
	if e := syscall.Getegid(); e != gid {
		return fmt.Errorf("after setting the effective group to %d: egid %d", gid, e)
	}
	return nil
}
