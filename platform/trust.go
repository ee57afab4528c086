package platform

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// ErrUntrusted marks a file refused for its owner, type, links or mode.
var ErrUntrusted = errors.New("not trusted")

// OpenAdminFile opens a file that belongs to the administrator and that
// popper reads or writes with root's privileges (configuration, the
// account files, the trace file, the APOP database), and believes it
// only after checking that nobody else can have put it there or changed
// it:
//
//   - the last component is not a symbolic link (O_NOFOLLOW) and the file
//     is a regular one with a single link (no hard link to a file the
//     caller did not mean);
//   - it is owned by root, or by the process's own user when popper does
//     not run as root;
//   - neither its group nor others may write it;
//   - its directory is writable by no one but its owner, unless the
//     directory is sticky (/tmp): there others cannot replace a file they
//     do not own.
//
// A file that fails is closed and reported with ErrUntrusted, naming its
// owner and mode; a file that does not exist is the open error itself.
func OpenAdminFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	f, err := os.OpenFile(name, flag|syscall.O_NOFOLLOW|syscall.O_CLOEXEC|syscall.O_NONBLOCK, perm)
	if err != nil {
		return nil, err
	}
	if err := checkAdmin(f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func checkAdmin(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	id := IDOf(fi)
	switch {
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s: %w: not a regular file (%v)", f.Name(), ErrUntrusted, fi.Mode().Type())
	case id.Uid != 0 && int(id.Uid) != os.Geteuid():
		return fmt.Errorf("%s: %w: owned by uid %d, not root", f.Name(), ErrUntrusted, id.Uid)
	case id.Nlink != 1:
		return fmt.Errorf("%s: %w: it has %d links", f.Name(), ErrUntrusted, id.Nlink)
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("%s: %w: writable by group or others (mode %04o)", f.Name(), ErrUntrusted, fi.Mode().Perm())
	}
	dir := filepath.Dir(f.Name())
	di, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if di.Mode().Perm()&0o022 != 0 && di.Mode()&os.ModeSticky == 0 {
		return fmt.Errorf("%s: %w: its directory %s is writable by group or others (mode %04o)", f.Name(), ErrUntrusted, dir, di.Mode().Perm())
	}
	return nil
}
