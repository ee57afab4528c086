// Package platform holds the per-OS facts popper depends on: file
// durability, mailbox locks, privilege drop, syslog and socket hand-over.
// Nothing above it imports golang.org/x/sys/unix.
//
// Every file operation that changes a maildrop goes through File, SyncDir,
// Rename and Remove, so that crash tests (built with -tags crashtest) can
// record them and inject crashes; production builds pay one nil check.
package platform

import (
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
)

// File is an open file whose mutating operations are counted and, in
// crash-test builds, recorded.
type File struct {
	f *os.File
}

// Counters reports the durable-work counters, used by benchmarks.
type Counters struct {
	Fsyncs       int64 // file and directory syncs
	BytesWritten int64
	Renames      int64
	Unlinks      int64
}

var counters struct {
	fsyncs, bytes, renames, unlinks atomic.Int64
}

// ReadCounters returns the counters accumulated since the last Reset.
func ReadCounters() Counters {
	return Counters{
		Fsyncs:       counters.fsyncs.Load(),
		BytesWritten: counters.bytes.Load(),
		Renames:      counters.renames.Load(),
		Unlinks:      counters.unlinks.Load(),
	}
}

// ResetCounters zeroes the counters.
func ResetCounters() {
	counters.fsyncs.Store(0)
	counters.bytes.Store(0)
	counters.renames.Store(0)
	counters.unlinks.Store(0)
}

// OpenFile opens name like os.OpenFile but never follows a symbolic link
// in the last component and never leaks the descriptor across exec.
func OpenFile(name string, flag int, perm os.FileMode) (*File, error) {
	f, err := os.OpenFile(name, flag|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, perm)
	if err != nil {
		return nil, err
	}
	pf := &File{f: f}
	if flag&os.O_CREATE != 0 {
		record(opCreate, name, "", 0, nil)
	}
	if flag&os.O_TRUNC != 0 {
		record(opTruncate, name, "", 0, nil)
	}
	return pf, nil
}

// Name returns the name the file was opened with.
func (f *File) Name() string { return f.f.Name() }

// Fd returns the descriptor, for locks.
func (f *File) Fd() uintptr { return f.f.Fd() }

// OS returns the underlying *os.File for read-only uses (stat, reads).
func (f *File) OS() *os.File { return f.f }

func (f *File) Read(p []byte) (int, error)                { return f.f.Read(p) }
func (f *File) ReadAt(p []byte, off int64) (int, error)   { return f.f.ReadAt(p, off) }
func (f *File) Seek(off int64, whence int) (int64, error) { return f.f.Seek(off, whence) }
func (f *File) Stat() (os.FileInfo, error)                { return f.f.Stat() }
func (f *File) Close() error                              { return f.f.Close() }

// Write appends at the current offset.
func (f *File) Write(p []byte) (int, error) {
	var off int64
	if recorder != nil {
		off, _ = f.f.Seek(0, io.SeekCurrent)
	}
	n, err := f.f.Write(p)
	counters.bytes.Add(int64(n))
	if n > 0 {
		record(opWrite, f.f.Name(), "", off, p[:n])
	}
	return n, err
}

// WriteAt writes at off.
func (f *File) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.f.WriteAt(p, off)
	counters.bytes.Add(int64(n))
	if n > 0 {
		record(opWrite, f.f.Name(), "", off, p[:n])
	}
	return n, err
}

// Truncate changes the size of the file.
func (f *File) Truncate(size int64) error {
	err := f.f.Truncate(size)
	if err == nil {
		record(opTruncate, f.f.Name(), "", size, nil)
	}
	return err
}

// Sync makes the file's data and size durable (F_FULLFSYNC on darwin, as
// os.File.Sync does there).
func (f *File) Sync() error {
	counters.fsyncs.Add(1)
	err := f.f.Sync()
	if err == nil {
		record(opSync, f.f.Name(), "", 0, nil)
	}
	return err
}

// SyncDir makes the entries of dir (creates, renames, unlinks) durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	counters.fsyncs.Add(1)
	if err := syncDir(d); err != nil {
		return err
	}
	record(opSyncDir, dir, "", 0, nil)
	return nil
}

// SyncParent syncs the directory holding name.
func SyncParent(name string) error { return SyncDir(filepath.Dir(name)) }

// Rename renames oldname to newname atomically (same file system).
func Rename(oldname, newname string) error {
	counters.renames.Add(1)
	err := os.Rename(oldname, newname)
	if err == nil {
		record(opRename, oldname, newname, 0, nil)
	}
	return err
}

// Remove unlinks name.
func Remove(name string) error {
	counters.unlinks.Add(1)
	err := syscall.Unlink(name)
	if err != nil {
		return &os.PathError{Op: "unlink", Path: name, Err: err}
	}
	record(opUnlink, name, "", 0, nil)
	return nil
}
