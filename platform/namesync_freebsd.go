package platform

import "golang.org/x/sys/unix"

func fsTypeName(f *File) string {
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil {
		return ""
	}
	return unix.ByteSliceToString(st.Fstypename[:])
}
