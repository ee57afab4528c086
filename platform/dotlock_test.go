package platform

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func init() {
	// holddot MAILBOX TRIES: LockDot and hold it until stdin closes.
	helpers["holddot"] = func(args []string) error {
		tries, _ := strconv.Atoi(args[1])
		l, err := LockDot(args[0], DotLockOptions{Tries: tries, Wait: fastWait})
		if err != nil {
			return err
		}
		holdUntilStdinCloses()
		return l.Unlock()
	}
}

func fastWait(int) time.Duration { return 20 * time.Millisecond }

func expectBusy(t *testing.T, mbox string, opt DotLockOptions) {
	t.Helper()
	if opt.Wait == nil {
		opt.Wait = fastWait
	}
	l, err := LockDot(mbox, opt)
	if err == nil {
		l.Unlock()
		t.Fatalf("LockDot(%s) succeeded while the lock is held", mbox)
	}
	if !errors.Is(err, ErrLockBusy) {
		t.Fatalf("LockDot: %v, want ErrLockBusy", err)
	}
}

func mustLockDot(t *testing.T, mbox string, opt DotLockOptions) *DotLock {
	t.Helper()
	if opt.Wait == nil {
		opt.Wait = fastWait
	}
	l, err := LockDot(mbox, opt)
	if err != nil {
		t.Fatalf("LockDot(%s): %v", mbox, err)
	}
	return l
}

func TestDotLockBasics(t *testing.T) {
	for _, linkMode := range []bool{false, true} {
		t.Run(fmt.Sprintf("link=%v", linkMode), func(t *testing.T) {
			dir := t.TempDir()
			mbox := filepath.Join(dir, "user")
			l := mustLockDot(t, mbox, DotLockOptions{LinkMode: linkMode})
			if l.Path() != mbox+".lock" {
				t.Errorf("Path() = %q", l.Path())
			}
			data, err := os.ReadFile(l.Path())
			if err != nil {
				t.Fatal(err)
			}
			host, _ := os.Hostname()
			if want := fmt.Sprintf("%d@%s", os.Getpid(), host); string(data) != want {
				t.Errorf("lock content %q, want %q", data, want)
			}
			fi, _ := os.Lstat(l.Path())
			if fi.Mode().Perm() != 0600 || IDOf(fi).Nlink != 1 {
				t.Errorf("lock mode %v nlink %d, want 0600 and 1", fi.Mode(), IDOf(fi).Nlink)
			}

			_, err = LockDot(mbox, DotLockOptions{Tries: 2, Wait: fastWait, LinkMode: linkMode})
			want := fmt.Sprintf("maillock error 'Max tries exceeded' (4) on '%s': File exists (17)", l.Path())
			if err == nil || err.Error() != want || !errors.Is(err, ErrLockBusy) {
				t.Fatalf("second LockDot: %v\nwant %s", err, want)
			}

			if err := l.Unlock(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(l.Path()); !os.IsNotExist(err) {
				t.Errorf("lock still there after Unlock: %v", err)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 0 {
				t.Errorf("left behind: %v", entries)
			}
		})
	}
}

func TestDotLockWaitsWithQpopperBackoff(t *testing.T) {
	mbox := filepath.Join(t.TempDir(), "user")
	l := mustLockDot(t, mbox, DotLockOptions{})
	defer l.Unlock()
	var waits []int
	_, err := LockDot(mbox, DotLockOptions{Tries: 4, Wait: func(a int) time.Duration {
		waits = append(waits, a)
		return time.Millisecond
	}})
	if !errors.Is(err, ErrLockBusy) {
		t.Fatal(err)
	}
	if fmt.Sprint(waits) != "[1 2 3]" {
		t.Errorf("waited after attempts %v, want [1 2 3]", waits)
	}
}

func TestDotLockTwoProcesses(t *testing.T) {
	mbox := filepath.Join(t.TempDir(), "user")
	h := startHolder(t, "holddot", mbox, "1")
	expectBusy(t, mbox, DotLockOptions{Tries: 3})
	h.release(t)
	l := mustLockDot(t, mbox, DotLockOptions{})

	// The helper now waits for us, and gets the lock once we let go.
	cmd := helperCommand(t, "holddot", mbox, "200")
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	time.Sleep(100 * time.Millisecond)
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := out.Read(buf); err != nil || string(buf) != "ready" {
		t.Fatalf("helper did not get the lock after we released it: %q %v", buf, err)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
}

func writeForeignLock(t *testing.T, path, content string, age time.Duration) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0444); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-age)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
}

func TestDotLockStaleByAge(t *testing.T) {
	mbox := filepath.Join(t.TempDir(), "user")
	// maillock writes "0\0"; only the age can tell it is stale.
	writeForeignLock(t, mbox+".lock", "0\x00", 400*time.Second)
	expectBusy(t, mbox, DotLockOptions{Stale: time.Hour})
	l := mustLockDot(t, mbox, DotLockOptions{})
	data, _ := os.ReadFile(l.Path())
	if !strings.HasPrefix(string(data), strconv.Itoa(os.Getpid())+"@") {
		t.Errorf("after takeover the lock holds %q", data)
	}
	l.Unlock()

	writeForeignLock(t, mbox+".lock", "0\x00", 10*time.Second)
	expectBusy(t, mbox, DotLockOptions{Tries: 2})
	os.Remove(mbox + ".lock")
}

func TestDotLockDeadOwner(t *testing.T) {
	mbox := filepath.Join(t.TempDir(), "user")
	h := startHolder(t, "holddot", mbox, "1")
	h.kill() // killed while holding: the lock file stays behind
	data, err := os.ReadFile(mbox + ".lock")
	if err != nil {
		t.Fatalf("the killed holder's lock should remain: %v", err)
	}
	if !strings.HasPrefix(string(data), strconv.Itoa(h.cmd.Process.Pid)+"@") {
		t.Fatalf("lock content %q", data)
	}
	l := mustLockDot(t, mbox, DotLockOptions{Tries: 1})
	l.Unlock()

	// The same dead pid on another host is not ours to judge.
	writeForeignLock(t, mbox+".lock", fmt.Sprintf("%d@not-%s", h.cmd.Process.Pid, hostname(t)), 0)
	expectBusy(t, mbox, DotLockOptions{Tries: 1})
	// A live process on this host keeps its lock.
	writeForeignLock(t, mbox+".lock", fmt.Sprintf("%d@%s", os.Getppid(), hostname(t)), 0)
	expectBusy(t, mbox, DotLockOptions{Tries: 1})
}

func hostname(t *testing.T) string {
	h, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// Many takers of one stale lock: exactly one may win.
func TestDotLockTakeoverHasOneWinner(t *testing.T) {
	testHookBeforeTakeover = func() { time.Sleep(5 * time.Millisecond) }
	defer func() { testHookBeforeTakeover = nil }()
	for _, linkMode := range []bool{false, true} {
		for round := 0; round < 20; round++ {
			mbox := filepath.Join(t.TempDir(), "user")
			writeForeignLock(t, mbox+".lock", "0", time.Hour)
			var wg sync.WaitGroup
			var mu sync.Mutex
			var won []*DotLock
			for i := 0; i < 8; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					l, err := LockDot(mbox, DotLockOptions{LinkMode: linkMode})
					if err == nil {
						mu.Lock()
						won = append(won, l)
						mu.Unlock()
					} else if !errors.Is(err, ErrLockBusy) {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			if len(won) != 1 {
				t.Fatalf("link=%v round %d: %d takers won the stale lock", linkMode, round, len(won))
			}
			if err := won[0].Unlock(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestDotLockRefresh(t *testing.T) {
	mbox := filepath.Join(t.TempDir(), "user")
	l := mustLockDot(t, mbox, DotLockOptions{})
	defer l.Unlock()
	old := time.Now().Add(-250 * time.Second)
	os.Chtimes(l.Path(), old, old)

	// Touched recently by us: Refresh does nothing.
	if err := l.Refresh(); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(l.Path()); time.Since(fi.ModTime()) < 200*time.Second {
		t.Fatalf("Refresh touched the lock %v after taking it", time.Since(l.touched))
	}
	// A long hold: the last touch was more than 180 s ago.
	l.touched = time.Now().Add(-DotLockRefresh - time.Second)
	if err := l.Refresh(); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(l.Path()); time.Since(fi.ModTime()) > 5*time.Second {
		t.Fatalf("Refresh left mtime %v old", time.Since(fi.ModTime()))
	}
	// Another process with a 240 s stale limit must now see it as live.
	expectBusy(t, mbox, DotLockOptions{Stale: 240 * time.Second})
}

func TestDotLockLostIsReported(t *testing.T) {
	mbox := filepath.Join(t.TempDir(), "user")
	l := mustLockDot(t, mbox, DotLockOptions{})
	os.Remove(l.Path())
	writeForeignLock(t, l.Path(), "0", 0) // someone else's lock now
	l.touched = time.Time{}
	if err := l.Refresh(); err == nil {
		t.Error("Refresh of a lock taken over succeeded")
	}
	if err := l.Unlock(); err == nil {
		t.Error("Unlock removed a lock that is not ours")
	}
	if _, err := os.Stat(l.Path()); err != nil {
		t.Errorf("the other lock was removed: %v", err)
	}
}

func TestDotLockRefusesLinks(t *testing.T) {
	dir := t.TempDir()
	mbox := filepath.Join(dir, "user")
	target := filepath.Join(dir, "victim")
	os.WriteFile(target, []byte("x"), 0600)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(target, old, old)

	os.Symlink(target, mbox+".lock")
	_, err := LockDot(mbox, DotLockOptions{})
	var de *DotLockError
	if !errors.As(err, &de) || errors.Is(err, ErrLockBusy) || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("symlink lock: %v", err)
	}
	os.Remove(mbox + ".lock")

	os.Link(target, mbox+".lock")
	if IsLockerLink(mbox + ".lock") {
		t.Error("IsLockerLink of a mailbox linked as the lock")
	}
	if _, err := LockDot(mbox, DotLockOptions{}); err == nil || !strings.Contains(err.Error(), "more than one link") {
		t.Fatalf("hard-linked lock: %v", err)
	}
	if _, err := os.Stat(target); err != nil {
		t.Errorf("target was removed: %v", err)
	}
}

func TestDotLockCreateError(t *testing.T) {
	mbox := filepath.Join(t.TempDir(), "missing-dir", "user")
	_, err := LockDot(mbox, DotLockOptions{})
	want := fmt.Sprintf("maillock error 'Unable to create lockfile' (2) on '%s.lock': No such file or directory (2)", mbox)
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}

// Debian's dotlockfile (liblockfile) and ours must each see the other's
// lock as held.
func TestDotLockInteropDotlockfile(t *testing.T) {
	if _, err := exec.LookPath("dotlockfile"); err != nil {
		t.Skip("dotlockfile (lockfile-progs) not installed")
	}
	mbox := filepath.Join(t.TempDir(), "user")
	l := mustLockDot(t, mbox, DotLockOptions{})
	for _, args := range [][]string{{"-l", "-r", "0"}, {"-l", "-r", "0", "-p"}} {
		if out, err := exec.Command("dotlockfile", append(args, l.Path())...).CombinedOutput(); err == nil {
			t.Errorf("dotlockfile %v took our lock: %s", args, out)
		}
	}
	l.Unlock()

	if out, err := exec.Command("dotlockfile", "-l", "-r", "0", mbox+".lock").CombinedOutput(); err != nil {
		t.Fatalf("dotlockfile: %v %s", err, out)
	}
	expectBusy(t, mbox, DotLockOptions{Tries: 2})
	if out, err := exec.Command("dotlockfile", "-u", mbox+".lock").CombinedOutput(); err != nil {
		t.Fatalf("dotlockfile -u: %v %s", err, out)
	}
	mustLockDot(t, mbox, DotLockOptions{}).Unlock()
}

// procmail's lockfile(1) and ours must each see the other's lock as held.
func TestDotLockInteropProcmailLockfile(t *testing.T) {
	if _, err := exec.LookPath("lockfile"); err != nil {
		t.Skip("lockfile (procmail) not installed")
	}
	mbox := filepath.Join(t.TempDir(), "user")
	l := mustLockDot(t, mbox, DotLockOptions{})
	if out, err := exec.Command("lockfile", "-r", "0", l.Path()).CombinedOutput(); err == nil {
		t.Errorf("lockfile took our lock: %s", out)
	}
	l.Unlock()

	if out, err := exec.Command("lockfile", "-r", "0", mbox+".lock").CombinedOutput(); err != nil {
		t.Fatalf("lockfile: %v %s", err, out)
	}
	expectBusy(t, mbox, DotLockOptions{Tries: 2})
	os.Remove(mbox + ".lock")
	mustLockDot(t, mbox, DotLockOptions{}).Unlock()
}

// pretendBoot makes BootTime return boot for the rest of the test.
func pretendBoot(t *testing.T, boot time.Time) {
	t.Helper()
	bootTime.override = func() time.Time { return boot }
	t.Cleanup(func() { bootTime.override = nil })
}

// A lock that names no one (empty, NUL bytes from a power cut, a write
// cut short) or this host, written before the host booted, is stale at
// once; written since the boot it is judged by age. maillock's "0\0" and
// another host's lock are judged by age alone, boot or no boot.
func TestDotLockPredatingBoot(t *testing.T) {
	host := hostname(t)
	live := fmt.Sprintf("%d@%s", os.Getppid(), host) // a live pid of this host
	for _, c := range []struct {
		content string
		stale   bool // when written before the boot
	}{
		{"", true},
		{"\x00\x00\x00\x00\x00\x00", true},
		{"4242@", true},
		{"@" + host, true},
		{"42x", true},
		{live, true},
		{"0\x00", false},
		{"4242", false},
		{"4242\n", false},
		{fmt.Sprintf("%d@not-%s", os.Getppid(), host), false},
	} {
		t.Run(strconv.Quote(c.content), func(t *testing.T) {
			mbox := filepath.Join(t.TempDir(), "user")
			writeForeignLock(t, mbox+".lock", c.content, 20*time.Second)
			// Written 10 s after the boot: busy, whatever it holds.
			pretendBoot(t, time.Now().Add(-30*time.Second))
			expectBusy(t, mbox, DotLockOptions{Tries: 1})
			// The host booted 10 s ago, after the lock was written.
			pretendBoot(t, time.Now().Add(-10*time.Second))
			if !c.stale {
				expectBusy(t, mbox, DotLockOptions{Tries: 1})
				return
			}
			l := mustLockDot(t, mbox, DotLockOptions{Tries: 1})
			if data, _ := os.ReadFile(l.Path()); string(data) != lockOwner() {
				t.Errorf("after takeover the lock holds %q", data)
			}
			l.Unlock()
		})
	}
	// Without a boot time (a system that does not say) only age counts.
	mbox := filepath.Join(t.TempDir(), "user")
	writeForeignLock(t, mbox+".lock", "", 20*time.Second)
	pretendBoot(t, time.Time{})
	expectBusy(t, mbox, DotLockOptions{Tries: 1})
}

func TestBootTimeIsInThePast(t *testing.T) {
	b := BootTime()
	if b.IsZero() || !b.Before(time.Now()) || time.Since(b) > 10*365*24*time.Hour {
		t.Fatalf("BootTime() = %v", b)
	}
	// A file made now was made after the boot.
	f := filepath.Join(t.TempDir(), "f")
	os.WriteFile(f, nil, 0o600)
	fi, _ := os.Stat(f)
	if fi.ModTime().Before(b) {
		t.Errorf("a new file's mtime %v is before the boot %v", fi.ModTime(), b)
	}
}

// Every lock is made by link(2) from a unique file: no name but the lock
// remains, and the lock never existed empty. Where link(2) cannot be used
// (here: no room in the name for the unique suffix) the default falls
// back to O_EXCL and LinkMode (no-atomic-open) fails.
func TestDotLockLinkMethodAndFallback(t *testing.T) {
	dir := t.TempDir()
	mbox := filepath.Join(dir, "user")
	var created []string
	l := mustLockDot(t, mbox, DotLockOptions{})
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		created = append(created, e.Name())
	}
	if fmt.Sprint(created) != "[user.lock]" {
		t.Errorf("after LockDot the directory holds %v", created)
	}
	l.Unlock()

	long := filepath.Join(dir, strings.Repeat("m", 240)) // lock 245 bytes, unique name over 255
	l = mustLockDot(t, long, DotLockOptions{})
	if data, _ := os.ReadFile(l.Path()); string(data) != lockOwner() {
		t.Errorf("O_EXCL fallback lock holds %q", data)
	}
	l.Unlock()
	_, err := LockDot(long, DotLockOptions{LinkMode: true})
	if err == nil || !strings.Contains(err.Error(), "'Unable to create lockfile' (2)") || !errors.Is(err, syscall.ENAMETOOLONG) {
		t.Fatalf("LinkMode with a unique name over NAME_MAX: %v", err)
	}
}

// A lock left with two names by a locker killed between link(2) and
// removing its unique name is judged like any lock: a dead owner on this
// host loses it at once (and its unique name goes too), a live one keeps
// it. A second name that is no locker's is still refused.
func TestDotLockWithLockerSibling(t *testing.T) {
	dir := t.TempDir()
	mbox := filepath.Join(dir, "user")
	h := startHolder(t, "holddot", mbox, "1")
	h.kill()
	dead := fmt.Sprintf("%d@%s", h.cmd.Process.Pid, hostname(t))
	lock := mbox + ".lock"
	sibling := filepath.Join(dir, fmt.Sprintf(".user.lock.%s.%d.0123456789ab", uniqueHost(), h.cmd.Process.Pid))
	if !IsDotLockTemp(sibling) {
		t.Fatalf("IsDotLockTemp(%q) = false", sibling)
	}
	os.Remove(lock)
	writeForeignLock(t, sibling, dead, 0)
	if err := os.Link(sibling, lock); err != nil {
		t.Fatal(err)
	}
	if !IsLockerLink(lock) {
		t.Error("IsLockerLink does not see the unique name")
	}
	l := mustLockDot(t, mbox, DotLockOptions{Tries: 1})
	if IsLockerLink(l.Path()) {
		t.Error("IsLockerLink of a lock with one link")
	}
	if _, err := os.Lstat(sibling); !os.IsNotExist(err) {
		t.Errorf("the dead locker's unique name is still there: %v", err)
	}
	l.Unlock()

	// A live owner keeps a lock with a second name (stopped between the
	// two steps); maillock's "<mailbox>XXXXXX" is recognised, and kept.
	for _, name := range []string{sibling, filepath.Join(dir, "userAbC123")} {
		writeForeignLock(t, name, fmt.Sprintf("%d@%s", os.Getppid(), hostname(t)), 0)
		os.Link(name, lock)
		expectBusy(t, mbox, DotLockOptions{Tries: 1})
		os.Remove(lock)
		os.Remove(name)
	}
	writeForeignLock(t, filepath.Join(dir, "userAbC123"), "0\x00", time.Hour)
	os.Link(filepath.Join(dir, "userAbC123"), lock)
	mustLockDot(t, mbox, DotLockOptions{Tries: 1}).Unlock()
	if _, err := os.Lstat(filepath.Join(dir, "userAbC123")); err != nil {
		t.Errorf("maillock's unique name was removed: %v", err)
	}

	// A mailbox linked as the lock is no locker's unique name, even with
	// maillock's shape of name.
	big := filepath.Join(dir, "userMAILBX")
	writeForeignLock(t, big, strings.Repeat("From x\n", 100), time.Hour)
	os.Link(big, lock)
	if IsLockerLink(lock) {
		t.Error("IsLockerLink of a mailbox linked as the lock")
	}
	if _, err := LockDot(mbox, DotLockOptions{}); err == nil || !strings.Contains(err.Error(), "more than one link") {
		t.Fatalf("a mailbox linked as the lock: %v", err)
	}
	if _, err := os.Stat(big); err != nil {
		t.Fatal(err)
	}
}

func TestIsDotLockTemp(t *testing.T) {
	for name, want := range map[string]bool{
		".alice.lock.mail1.example.org.4242.0123456789ab": true,
		"/var/mail/.alice.lock.h.1.abcdefabcdef":          true,
		".alice.lock..1.abcdefabcdef":                     true,
		"alice.lock":                                      false,
		".alice.pop":                                      false,
		".alice.lock.h.1.abcdefabcde":                     false,
		".alice.lock.h.x.abcdefabcdef":                    false,
		"alice.lock.h.1.abcdefabcdef":                     false,
	} {
		if IsDotLockTemp(name) != want {
			t.Errorf("IsDotLockTemp(%q) = %v", name, !want)
		}
	}
}

func TestParseLockOwner(t *testing.T) {
	for in, want := range map[string]string{
		"123@host":   "123 host false",
		"123@host\n": "123 host false",
		"0\x00":      "0  false",
		"77":         "77  false",
		"":           "0  true",
		"123@":       "0  true",
		"@host":      "0  true",
		"-1@host":    "0  true",
		"12@a b":     "0  true",
		"\x00\x00":   "0  true",
	} {
		pid, host, torn := parseLockOwner([]byte(in))
		if got := fmt.Sprint(pid, " ", host, " ", torn); got != want {
			t.Errorf("parseLockOwner(%q) = %s, want %s", in, got, want)
		}
	}
}
