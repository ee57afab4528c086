//go:build linux && !386 && !arm

package platform

import "golang.org/x/sys/unix"

const sysSetresgid = unix.SYS_SETRESGID
