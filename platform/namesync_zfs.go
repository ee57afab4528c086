//go:build freebsd || illumos || solaris

package platform

// Of these systems' file systems only ZFS is known to make a new name
// durable with the file's fsync (UFS is synced as POSIX requires).
func nameDurableWithSync(f *File) bool {
	return fsTypeName(f) == "zfs"
}
