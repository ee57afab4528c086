package platform

import "golang.org/x/sys/unix"

// On Linux the fcntl lock is an open file description lock: it conflicts
// with the classic POSIX locks of procmail and Postfix, but it belongs to
// the descriptor, so it survives the close of another descriptor of the
// same file and excludes other sessions of this process.
const fcntlSetLock = unix.F_OFD_SETLK
