//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package platform

import "golang.org/x/sys/unix"

// The BSDs and macOS name the termios ioctls TIOCGETA and TIOCSETA.
const (
	termiosGet = unix.TIOCGETA
	termiosSet = unix.TIOCSETA
)
