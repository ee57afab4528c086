//go:build linux || solaris

package platform

import "golang.org/x/sys/unix"

// Linux, illumos and Oracle Solaris name them TCGETS and TCSETS.
const (
	termiosGet = unix.TCGETS
	termiosSet = unix.TCSETS
)
