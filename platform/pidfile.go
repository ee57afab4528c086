package platform

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// WritePidFile records this process's id in path ("pid\n"), as root may:
// written to a new file beside it and renamed into place, so that a link
// planted at path is replaced, never written through, and a reader sees
// the old id or the new one. The directory must be writable by no one
// but its owner (or be sticky, as /run is not but /tmp is).
func WritePidFile(path string) error {
	dir := filepath.Dir(path)
	di, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if di.Mode().Perm()&0o022 != 0 && di.Mode()&os.ModeSticky == 0 {
		return fmt.Errorf("%s: %w: its directory %s is writable by group or others (mode %04o)", path, ErrUntrusted, dir, di.Mode().Perm())
	}
	tmp, f, err := createUnique(path)
	if err != nil {
		return err
	}
	_, werr := fmt.Fprintf(f, "%d\n", os.Getpid())
	if err := f.Chmod(0o644); werr == nil {
		werr = err
	}
	if err := f.Close(); werr == nil {
		werr = err
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		os.Remove(tmp)
	}
	return werr
}

// RemovePidFile removes path if it still holds this process's id.
func RemovePidFile(path string) {
	b, err := os.ReadFile(path)
	if err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(os.Getpid()) {
		os.Remove(path)
	}
}
