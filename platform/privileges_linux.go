package platform

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// Linux keeps credentials per thread, and Go's syscall package sets them
// on every thread by stopping the world and signalling each one (about
// 0.15 ms a call with a session's seven threads). The drop for good must
// reach every thread and takes three such calls. Taking and giving back
// the spool group need not: it is the process's saved group, which any
// of its threads may take at will, so holding it on the one thread that
// works in the spool directory (locked to it, see withEGID) gives no
// thread anything it could not take itself, and keeps the others in the
// user's own group.
const threadCredentials = true

// setGroupIDs makes gid the real and effective group, and saved (the
// spool group, or gid) the saved one, on every thread, in one call.
func setGroupIDs(gid, saved int) error { return syscall.Setresgid(gid, gid, saved) }

// setThreadEGID sets the effective group of the calling thread only.
func setThreadEGID(gid int) error {
	if _, _, e := unix.RawSyscall(sysSetresgid, ^uintptr(0), uintptr(gid), ^uintptr(0)); e != 0 {
		return e
	}
	return nil
}
