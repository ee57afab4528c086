package platform

// NameDurableWithSync reports whether, on the file system holding f, a
// successful fsync of f also makes durable the name f was created under,
// so that no fsync of its directory is needed for it (doc/crash-model.md,
// "Persistence"). POSIX does not promise it; these file systems do:
//
//   - ext3 and ext4 with their journal: fsync commits the journal
//     transaction that last changed the inode, and with it every earlier
//     one, the file's creation included;
//   - XFS: fsync forces the log up to the inode's last change, which is
//     after the create;
//   - btrfs: fsync of a new inode logs its directory entries with it;
//   - ZFS: fsync commits the intent log, whose create records are
//     synchronous;
//   - tmpfs: nothing on it survives a power cut, so no name needs a sync.
//
// Everything else (UFS, NFS, APFS, FAT, ...) answers false, and the
// directory is synced as POSIX requires. An ext4 made without a journal
// cannot be told from one with; such a spool directory is not supported.
func NameDurableWithSync(f *File) bool {
	if strictNames {
		return false
	}
	return nameDurableWithSync(f)
}
