//go:build solaris && !illumos

package platform

import "errors"

// Oracle Solaris libc has no flock(3) (it lives only in libucb), and a
// binary that calls unix.Flock would fail to load there.
const haveFlock = false

var errNoFlock = errors.New("flock is not available on Oracle Solaris; use fcntl")

// The session lock falls back to an fcntl write lock.
const sessionLockKind = LockFcntl

func flockTryLock(fd int) error { return errNoFlock }

func flockUnlock(fd int) error { return errNoFlock }

func sessionTryLock(fd int) error { return fcntlTryLock(fd) }
