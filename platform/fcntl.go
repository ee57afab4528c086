package platform

import (
	"io"

	"golang.org/x/sys/unix"
)

// wholeFile covers the file from offset 0 to any future end.
func wholeFile(typ int16) *unix.Flock_t {
	return &unix.Flock_t{Type: typ, Whence: io.SeekStart, Start: 0, Len: 0}
}

func fcntlTryLock(fd int) error {
	return ignoreEINTR(func() error { return unix.FcntlFlock(uintptr(fd), fcntlSetLock, wholeFile(unix.F_WRLCK)) })
}

func fcntlUnlock(fd int) error {
	return ignoreEINTR(func() error { return unix.FcntlFlock(uintptr(fd), fcntlSetLock, wholeFile(unix.F_UNLCK)) })
}

func ignoreEINTR(call func() error) error {
	for {
		err := call()
		if err != unix.EINTR {
			return err
		}
	}
}
