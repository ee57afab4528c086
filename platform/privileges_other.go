//go:build !linux

package platform

import "syscall"

// Elsewhere a process has one set of credentials, which every call sets
// for all its threads at once.
const threadCredentials = false

// setGroupIDs makes gid the real and effective group and saved the saved
// one. POSIX has no setresgid: setregid with a real group sets the saved
// one to the new effective group, which then goes back to gid.
func setGroupIDs(gid, saved int) error {
	if saved == gid {
		return syscall.Setgid(gid)
	}
	if err := syscall.Setregid(gid, saved); err != nil {
		return err
	}
	return syscall.Setregid(-1, gid)
}

func setThreadEGID(gid int) error { return syscall.Setregid(-1, gid) }
