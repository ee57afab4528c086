package platform

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func init() {
	// drop UID GID SECRET DIR: drop privileges, then show that SECRET
	// (root's 0600 file) cannot be opened and that a file made in DIR
	// belongs to UID.
	helpers["drop"] = func(args []string) error {
		uid, _ := strconv.Atoi(args[0])
		gid, _ := strconv.Atoi(args[1])
		if err := DropPrivileges(uid, gid); err != nil {
			return err
		}
		if IsRoot() {
			return errors.New("IsRoot after drop")
		}
		if _, err := os.Open(args[2]); !errors.Is(err, syscall.EACCES) {
			return fmt.Errorf("open root-only file after drop: %v, want EACCES", err)
		}
		made := filepath.Join(args[3], "made")
		if err := os.WriteFile(made, []byte("x"), 0600); err != nil {
			return err
		}
		fmt.Println("dropped")
		return nil
	}
}

func init() {
	// droplock UID MBOX: as UID, take the dotlock of MBOX.
	helpers["droplock"] = func(args []string) error {
		uid, _ := strconv.Atoi(args[0])
		if err := DropPrivileges(uid, uid); err != nil {
			return err
		}
		l, err := LockDot(args[1], DotLockOptions{})
		if err != nil {
			return err
		}
		fmt.Println("locked")
		return l.Unlock()
	}
}

// A stale lock this user may not even read (root's 0600) is still taken
// over by age when the directory lets us remove it.
func TestDotLockStaleUnreadable(t *testing.T) {
	if !IsRoot() {
		t.Skip("needs root to make a lock another user cannot read")
	}
	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0755)
	os.Chmod(dir, 0777)
	mbox := filepath.Join(dir, "user")
	writeForeignLock(t, mbox+".lock", "0", 10*time.Second)
	os.Chmod(mbox+".lock", 0600)
	out, err := helperCommand(t, "droplock", "65534", mbox).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Max tries exceeded") {
		t.Fatalf("fresh unreadable lock: %v %s", err, out)
	}
	old := time.Now().Add(-400 * time.Second)
	os.Chtimes(mbox+".lock", old, old)
	out, err = helperCommand(t, "droplock", "65534", mbox).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "locked" {
		t.Fatalf("stale unreadable lock: %v %s", err, out)
	}
}

func TestDropPrivileges(t *testing.T) {
	if !IsRoot() {
		t.Skip("needs root to drop privileges")
	}
	const nobody = 65534
	secretDir := t.TempDir()
	secret := filepath.Join(secretDir, "secret")
	if err := os.WriteFile(secret, []byte("root only"), 0600); err != nil {
		t.Fatal(err)
	}
	// The child must be able to reach its work directory.
	shared := t.TempDir()
	for _, d := range []string{filepath.Dir(secretDir), secretDir, filepath.Dir(shared)} {
		os.Chmod(d, 0755)
	}
	os.Chmod(shared, 01777)

	out, err := helperCommand(t, "drop", strconv.Itoa(nobody), strconv.Itoa(nobody), secret, shared).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "dropped" {
		t.Fatalf("child: %v: %s", err, out)
	}
	fi, err := os.Stat(filepath.Join(shared, "made"))
	if err != nil {
		t.Fatal(err)
	}
	if id := IDOf(fi); id.Uid != nobody || id.Gid != nobody {
		t.Errorf("file made after the drop is owned %d:%d, want %d:%d", id.Uid, id.Gid, nobody, nobody)
	}
}

func TestDropPrivilegesRefusesRoot(t *testing.T) {
	// Checked before any call is made, so this is safe in the test process.
	for _, ids := range [][2]int{{0, 0}, {-1, 5}, {100, -1}} {
		if err := DropPrivileges(ids[0], ids[1]); err == nil {
			t.Errorf("DropPrivileges(%d, %d) accepted", ids[0], ids[1])
		}
	}
}
