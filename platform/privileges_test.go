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
	os.Chmod(shared, os.ModeSticky|0o777)

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

func init() {
	// dropkeep UID GID SPOOLGID DIR OTHER: drop to UID/GID keeping
	// SPOOLGID for AsSpoolGroup; show that DIR (root:SPOOLGID 0770) is
	// writable only inside AsSpoolGroup, that OTHER (root:SPOOLGID 0640,
	// a file only the group may read) cannot be read outside it, and that
	// the process is in no group but GID.
	helpers["dropkeep"] = func(args []string) error {
		uid, _ := strconv.Atoi(args[0])
		gid, _ := strconv.Atoi(args[1])
		sg, _ := strconv.Atoi(args[2])
		if err := DropToUser(uid, gid, sg); err != nil {
			return err
		}
		if g, _ := syscall.Getgroups(); len(g) != 1 || g[0] != gid {
			return fmt.Errorf("groups after the drop: %v, want [%d]", g, gid)
		}
		if e := syscall.Getegid(); e != gid {
			return fmt.Errorf("egid %d after the drop, want the user's %d", e, gid)
		}
		if err := threadIDs(uid, gid, sg, ""); err != nil {
			return fmt.Errorf("after the drop: %v", err)
		}
		if err := os.WriteFile(filepath.Join(args[3], "outside"), []byte("x"), 0600); !errors.Is(err, syscall.EACCES) {
			return fmt.Errorf("create in the spool directory outside AsSpoolGroup: %v, want EACCES", err)
		}
		if _, err := os.ReadFile(args[4]); !errors.Is(err, syscall.EACCES) {
			return fmt.Errorf("read a group-only file outside AsSpoolGroup: %v, want EACCES", err)
		}
		err := AsSpoolGroup(func() error {
			if e := syscall.Getegid(); e != sg {
				return fmt.Errorf("egid %d inside AsSpoolGroup, want %d", e, sg)
			}
			if err := os.WriteFile(filepath.Join(args[3], "inside"), []byte("x"), 0600); err != nil {
				return err
			}
			// Where credentials are per thread, only this one holds
			// the group.
			if threadCredentials {
				if err := threadIDs(uid, gid, sg, thisThread()); err != nil {
					return fmt.Errorf("inside AsSpoolGroup: %v", err)
				}
			}
			return AsOwnGroup(func() error {
				if _, err := os.ReadFile(args[4]); !errors.Is(err, syscall.EACCES) {
					return fmt.Errorf("read a group-only file in AsOwnGroup: %v, want EACCES", err)
				}
				return nil
			})
		})
		if err != nil {
			return err
		}
		if e := syscall.Getegid(); e != gid {
			return fmt.Errorf("egid %d after AsSpoolGroup, want %d", e, gid)
		}
		if err := threadIDs(uid, gid, sg, ""); err != nil {
			return fmt.Errorf("after AsSpoolGroup: %v", err)
		}
		fmt.Println("dropped")
		return nil
	}
}

// threadIDs checks, where /proc lists a process's threads, that each one
// but the one named except runs as uid with real, effective and file-system group gid,
// saved group sg and no other group.
func threadIDs(uid, gid, sg int, except string) error {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil // no /proc: nothing to check
	}
	wantUID := fmt.Sprintf("%d\t%d\t%d\t%d", uid, uid, uid, uid)
	wantGID := fmt.Sprintf("%d\t%d\t%d\t%d", gid, gid, sg, gid)
	for _, t := range tasks {
		if t.Name() == except {
			continue
		}
		b, err := os.ReadFile("/proc/self/task/" + t.Name() + "/status")
		if err != nil {
			continue // the thread ended
		}
		for _, l := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(l, ":\t")
			if (k == "Uid" && v != wantUID) || (k == "Gid" && v != wantGID) || (k == "Groups" && strings.TrimSpace(v) != strconv.Itoa(gid)) {
				return fmt.Errorf("thread %s has %s %q", t.Name(), k, v)
			}
		}
	}
	if len(tasks) < 2 {
		return fmt.Errorf("only %d thread", len(tasks))
	}
	return nil
}

// A session keeps the spool directory's group only for what needs it.
func TestDropToUserKeepsSpoolGroupAside(t *testing.T) {
	if !IsRoot() {
		t.Skip("needs root to drop privileges")
	}
	const nobody, group = 65534, 4242 // a group nobody is not in
	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0755)
	os.Chmod(dir, 0755)
	spoolDir := filepath.Join(dir, "mail")
	os.Mkdir(spoolDir, 0770)
	os.Chmod(spoolDir, 0770) // past the umask
	os.Chown(spoolDir, 0, group)
	other := filepath.Join(dir, "grouponly")
	os.WriteFile(other, []byte("the group's"), 0640)
	os.Chown(other, 0, group)
	out, err := helperCommand(t, "dropkeep", strconv.Itoa(nobody), strconv.Itoa(nobody), strconv.Itoa(group), spoolDir, other).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "dropped" {
		t.Fatalf("child: %v: %s", err, out)
	}
	fi, err := os.Stat(filepath.Join(spoolDir, "inside"))
	if err != nil {
		t.Fatal(err)
	}
	if id := IDOf(fi); id.Uid != nobody || id.Gid != group {
		t.Errorf("file made in AsSpoolGroup is owned %d:%d, want %d:%d", id.Uid, id.Gid, nobody, group)
	}
}
