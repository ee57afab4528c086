//go:build linux && (386 || arm)

package platform

import "golang.org/x/sys/unix"

// The 32-bit ABIs' plain setresgid takes 16-bit ids.
const sysSetresgid = unix.SYS_SETRESGID32
