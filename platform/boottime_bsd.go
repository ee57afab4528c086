//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package platform

import (
	"time"

	"golang.org/x/sys/unix"
)

// systemBootTime is sysctl kern.boottime.
func systemBootTime() (time.Time, error) {
	tv, err := unix.SysctlTimeval("kern.boottime")
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(int64(tv.Sec), int64(tv.Usec)*1000), nil
}
