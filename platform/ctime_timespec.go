//go:build darwin || freebsd || netbsd

package platform

import (
	"os"
	"syscall"
)

// ChangeTime is the inode's change time (st_ctime) in nanoseconds, which
// no one but the kernel sets: writing, truncating, chmod, chown and
// utime all move it.
func ChangeTime(fi os.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ctimespec.Nano()
	}
	return 0
}
