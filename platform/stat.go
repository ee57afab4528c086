package platform

import (
	"os"
	"syscall"
)

// FileID is the identity and ownership of a file, as the maildrop checks
// need them (qpopper refuses a temp drop it does not own, that others can
// read, or that has more than one link).
type FileID struct {
	Dev, Ino uint64
	Nlink    uint64
	Uid, Gid uint32
}

// IDOf extracts the FileID from a FileInfo returned by Stat or Lstat.
func IDOf(fi os.FileInfo) FileID {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return FileID{}
	}
	return FileID{
		Dev:   uint64(st.Dev),
		Ino:   uint64(st.Ino),
		Nlink: uint64(st.Nlink),
		Uid:   st.Uid,
		Gid:   st.Gid,
	}
}

// SameFile reports whether two FileIDs name the same inode.
func (a FileID) SameFile(b FileID) bool { return a.Dev == b.Dev && a.Ino == b.Ino }
