//go:build illumos || solaris

package platform

import "golang.org/x/sys/unix"

func fsTypeName(f *File) string {
	var st unix.Statvfs_t
	if err := unix.Fstatvfs(int(f.Fd()), &st); err != nil {
		return ""
	}
	b := make([]byte, 0, len(st.Basetype))
	for _, c := range st.Basetype {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return string(b)
}
