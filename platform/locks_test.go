package platform

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

func init() {
	// holdlock KINDS PATH: take LockMailbox(KINDS) on PATH and hold it.
	helpers["holdlock"] = func(args []string) error {
		_, kinds, err := ParseLockKinds(args[0])
		if err != nil {
			return err
		}
		f, err := OpenFile(args[1], os.O_RDWR, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		unlock, err := LockMailbox(f, kinds, 0)
		if err != nil {
			return err
		}
		holdUntilStdinCloses()
		return unlock()
	}
	// holdsession PATH: take TryLockSession on PATH and hold it.
	helpers["holdsession"] = func(args []string) error {
		f, err := OpenFile(args[0], os.O_RDWR|os.O_CREATE, 0600)
		if err != nil {
			return err
		}
		defer f.Close()
		ok, err := TryLockSession(f)
		if err != nil {
			return err
		}
		if !ok {
			return errors.New("session lock busy")
		}
		holdUntilStdinCloses()
		return nil
	}
}

func TestParseLockKinds(t *testing.T) {
	good := []struct {
		in      string
		dotlock bool
		kinds   []LockKind
	}{
		{"dotlock,fcntl", true, []LockKind{LockFcntl}},
		{"fcntl, dotlock", true, []LockKind{LockFcntl}},
		{"flock fcntl", false, []LockKind{LockFlock, LockFcntl}},
		{"DOTLOCK", true, nil},
		{"dotlock,lockf", true, []LockKind{LockFcntl}},
	}
	for _, c := range good {
		d, k, err := ParseLockKinds(c.in)
		if err != nil || d != c.dotlock || !reflect.DeepEqual(k, c.kinds) {
			t.Errorf("ParseLockKinds(%q) = %v, %v, %v; want %v, %v", c.in, d, k, err, c.dotlock, c.kinds)
		}
	}
	for _, in := range []string{"", " , ", "fcntl,fcntl", "dotlock,dot"} {
		if _, _, err := ParseLockKinds(in); err == nil {
			t.Errorf("ParseLockKinds(%q) accepted", in)
		}
	}
	if LockFcntl.String() != "fcntl" || LockFlock.String() != "flock" {
		t.Errorf("String: %v %v", LockFcntl, LockFlock)
	}
}

func TestDefaultSpoolLocks(t *testing.T) {
	want := map[string]LockKind{"linux": LockFcntl, "illumos": LockFcntl, "solaris": LockFcntl,
		"freebsd": LockFlock, "openbsd": LockFlock, "netbsd": LockFlock, "darwin": LockFlock}
	if w, ok := want[runtime.GOOS]; ok {
		if got := DefaultSpoolLocks(); !reflect.DeepEqual(got, []LockKind{w}) {
			t.Errorf("DefaultSpoolLocks() = %v, want [%v]", got, w)
		}
	}
}

func newMailbox(t *testing.T) string {
	t.Helper()
	name := filepath.Join(t.TempDir(), "user")
	if err := os.WriteFile(name, []byte("From a@b Sat Nov 28 10:00:00 2026\n\nhi\n"), 0600); err != nil {
		t.Fatal(err)
	}
	return name
}

func openMailbox(t *testing.T, name string) *File {
	t.Helper()
	f, err := OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestLockMailboxContended(t *testing.T) {
	for _, kinds := range []string{"fcntl", "flock", "fcntl,flock"} {
		t.Run(kinds, func(t *testing.T) {
			_, k, _ := ParseLockKinds(kinds)
			mbox := newMailbox(t)
			h := startHolder(t, "holdlock", kinds, mbox)
			f := openMailbox(t, mbox)

			start := time.Now()
			_, err := LockMailbox(f, k, 300*time.Millisecond)
			if !errors.Is(err, ErrLockBusy) {
				t.Fatalf("LockMailbox while held: %v, want ErrLockBusy", err)
			}
			var le *LockError
			if !errors.As(err, &le) || !strings.HasPrefix(err.Error(), le.Kind.String()+": '"+mbox+"': Resource temporarily unavailable (") {
				t.Errorf("error text %q", err)
			}
			if d := time.Since(start); d < 300*time.Millisecond || d > 3*time.Second {
				t.Errorf("gave up after %v, want about 300ms", d)
			}

			h.release(t)
			unlock, err := LockMailbox(f, k, time.Second)
			if err != nil {
				t.Fatalf("LockMailbox after release: %v", err)
			}
			if err := unlock(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestLockMailboxHolderKilled(t *testing.T) {
	mbox := newMailbox(t)
	kinds := DefaultSpoolLocks()
	h := startHolder(t, "holdlock", kinds[0].String(), mbox)
	f := openMailbox(t, mbox)
	if _, err := LockMailbox(f, kinds, 0); !errors.Is(err, ErrLockBusy) {
		t.Fatalf("while held: %v", err)
	}
	time.AfterFunc(200*time.Millisecond, h.kill)
	unlock, err := LockMailbox(f, kinds, 5*time.Second)
	if err != nil {
		t.Fatalf("after the holder was killed: %v", err)
	}
	unlock()
}

// A partial set must be released when a later kind is busy, so that the
// holder of the busy one can take the rest (no cross-order deadlock).
func TestLockMailboxReleasesPartial(t *testing.T) {
	mbox := newMailbox(t)
	h := startHolder(t, "holdlock", "flock", mbox)
	f := openMailbox(t, mbox)
	if _, err := LockMailbox(f, []LockKind{LockFcntl, LockFlock}, 200*time.Millisecond); !errors.Is(err, ErrLockBusy) {
		t.Fatalf("got %v", err)
	}
	h.release(t)
	// fcntl must be free again: another process can take it at once.
	h2 := startHolder(t, "holdlock", "fcntl", mbox)
	h2.release(t)
}

// Interop with util-linux flock(1), the usual shell way to take flock.
func TestLockMailboxAgainstFlockCommand(t *testing.T) {
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("flock(1) not installed")
	}
	mbox := newMailbox(t)
	cmd := exec.Command("flock", "-x", mbox, "sh", "-c", "echo ready; read x")
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	buf := make([]byte, 6)
	if _, err := out.Read(buf); err != nil {
		t.Fatal(err)
	}
	f := openMailbox(t, mbox)
	if _, err := LockMailbox(f, []LockKind{LockFlock}, 0); !errors.Is(err, ErrLockBusy) {
		t.Fatalf("flock(1) holds it, got %v", err)
	}
	if ok, err := TryLockSession(f); ok || err != nil {
		t.Fatalf("TryLockSession while flock(1) holds it: %v, %v", ok, err)
	}
	unlock, err := LockMailbox(f, []LockKind{LockFcntl}, 0)
	if err != nil {
		t.Fatalf("fcntl is an independent lock on Linux: %v", err)
	}
	unlock()

	// And the other way round: flock -n fails while we hold it.
	if _, err = LockMailbox(f, []LockKind{LockFlock}, 200*time.Millisecond); err == nil {
		t.Fatal("got flock while flock(1) holds it")
	}
	stdin.Close()
	cmd.Wait()
	unlock, err = LockMailbox(f, []LockKind{LockFlock}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("flock", "-n", "-x", mbox, "true").Run(); err == nil {
		t.Error("flock -n succeeded while we hold the flock")
	}
	unlock()
	if err := exec.Command("flock", "-n", "-x", mbox, "true").Run(); err != nil {
		t.Errorf("flock -n after unlock: %v", err)
	}
}

func TestTryLockSession(t *testing.T) {
	drop := filepath.Join(t.TempDir(), ".user.pop")
	h := startHolder(t, "holdsession", drop)
	f, err := OpenFile(drop, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if ok, err := TryLockSession(f); ok || err != nil {
		t.Fatalf("while another session holds it: %v, %v", ok, err)
	}
	h.kill()
	if ok, err := TryLockSession(f); !ok || err != nil {
		t.Fatalf("after the holder died: %v, %v", ok, err)
	}
	// Two descriptors in one process exclude each other too (two sessions
	// of one daemon process).
	g, err := OpenFile(drop, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if ok, err := TryLockSession(g); ok || err != nil {
		t.Fatalf("second descriptor in this process: %v, %v", ok, err)
	}
}

// On Linux the fcntl lock is per descriptor (OFD), so closing another
// descriptor of the mailbox must not drop it.
func TestFcntlLockSurvivesOtherClose(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("OFD locks are Linux only; classic POSIX locks are dropped by any close")
	}
	mbox := newMailbox(t)
	f := openMailbox(t, mbox)
	unlock, err := LockMailbox(f, []LockKind{LockFcntl}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	g, err := os.Open(mbox)
	if err != nil {
		t.Fatal(err)
	}
	g.Close()
	cmd := helperCommand(t, "holdlock", "fcntl", mbox)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("another process got the fcntl lock after an unrelated close: %s", out)
	}
}

// procmail and Postfix take classic POSIX record locks (fcntl/lockf);
// python3's fcntl.lockf takes the same kind, so it stands in for them.
func TestFcntlAgainstClassicPOSIXLock(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	mbox := newMailbox(t)
	const holder = `
import fcntl, sys
f = open(sys.argv[1], "r+")
fcntl.lockf(f, fcntl.LOCK_EX)
print("ready", flush=True)
sys.stdin.read()
`
	cmd := exec.Command("python3", "-c", holder, mbox)
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	buf := make([]byte, 6)
	if _, err := out.Read(buf); err != nil {
		t.Fatal(err)
	}
	f := openMailbox(t, mbox)
	if _, err := LockMailbox(f, []LockKind{LockFcntl}, 200*time.Millisecond); !errors.Is(err, ErrLockBusy) {
		t.Fatalf("classic lock held elsewhere, got %v", err)
	}
	stdin.Close()
	cmd.Wait()

	unlock, err := LockMailbox(f, []LockKind{LockFcntl}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	const try = `
import fcntl, sys
f = open(sys.argv[1], "r+")
try:
    fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
except OSError:
    sys.exit(3)
`
	err = exec.Command("python3", "-c", try, mbox).Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
		t.Errorf("lockf while we hold the fcntl lock: %v, want exit 3", err)
	}
	unlock()
	if err := exec.Command("python3", "-c", try, mbox).Run(); err != nil {
		t.Errorf("lockf after unlock: %v", err)
	}
}
