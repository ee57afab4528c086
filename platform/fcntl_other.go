//go:build !linux

package platform

import "golang.org/x/sys/unix"

// Classic POSIX record lock, what lockf(3) and the local deliverers use.
const fcntlSetLock = unix.F_SETLK
