//go:build !solaris || illumos

package platform

import "golang.org/x/sys/unix"

const haveFlock = true

var errNoFlock error // never used where flock exists

// The session lock is a flock, as in qpopper.
const sessionLockKind = LockFlock

func flockTryLock(fd int) error {
	return ignoreEINTR(func() error { return unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) })
}

func flockUnlock(fd int) error {
	return ignoreEINTR(func() error { return unix.Flock(fd, unix.LOCK_UN) })
}

func sessionTryLock(fd int) error { return flockTryLock(fd) }
