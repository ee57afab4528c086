package platform

import (
	"time"

	"golang.org/x/sys/unix"
)

// systemBootTime is now minus sysinfo(2)'s uptime, less one second:
// uptime counts whole seconds, and a file may be judged older than the
// boot only when it surely is.
func systemBootTime() (time.Time, error) {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return time.Time{}, err
	}
	return time.Now().Add(-time.Duration(si.Uptime+1) * time.Second), nil
}
