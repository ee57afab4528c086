//go:build darwin || freebsd || netbsd

package spool

import (
	"os"
	"syscall"
)

// changeTime is the inode's change time (st_ctime) in nanoseconds, which
// no one but the kernel sets: writing, truncating, chmod, chown and
// utime all move it.
func changeTime(fi os.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ctimespec.Nano()
	}
	return 0
}
