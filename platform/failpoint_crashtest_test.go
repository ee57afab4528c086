//go:build crashtest

package platform

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// The helper bodies run in a child process (this test binary re-executed
// through helper_test.go's helpers) because a failpoint kills its own
// process and the op log is opened at package init.
func init() {
	helpers["crashtest-failpoints"] = func([]string) error {
		for i := 0; i < 3; i++ {
			Failpoint("a")
			Failpoint("b")
		}
		return nil
	}
	helpers["crashtest-ops"] = func([]string) error {
		dir := os.Getenv("PLATFORM_CRASHTEST_DIR")
		f, err := OpenFile(filepath.Join(dir, "t"), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		f.Write([]byte("hello"))
		f.WriteAt([]byte("J"), 0)
		f.Truncate(3)
		f.Sync()
		f.Close()
		if err := Rename(filepath.Join(dir, "t"), filepath.Join(dir, "u")); err != nil {
			return err
		}
		if err := SyncDir(dir); err != nil {
			return err
		}
		return Remove(filepath.Join(dir, "u"))
	}
}

func helper(t *testing.T, name string, env ...string) error {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append(env, "POPPER_PLATFORM_HELPER=crashtest-"+name)...)
	out, err := cmd.CombinedOutput()
	if len(out) > 0 {
		t.Logf("helper output: %s", out)
	}
	return err
}

func killed(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

func TestFailpointTraceAndKill(t *testing.T) {
	trace := filepath.Join(t.TempDir(), "trace")
	if err := helper(t, "failpoints", "POPPER_FAILPOINT_TRACE="+trace); err != nil {
		t.Fatalf("no failpoint armed: %v", err)
	}
	b, _ := os.ReadFile(trace)
	if got := strings.Join(strings.Fields(string(b)), " "); got != "a b a b a b" {
		t.Errorf("trace %q", got)
	}
	os.Remove(trace)
	err := helper(t, "failpoints", "POPPER_FAILPOINT_TRACE="+trace, "POPPER_FAILPOINT=b:2")
	if !killed(err) {
		t.Fatalf("b:2 did not SIGKILL: %v", err)
	}
	b, _ = os.ReadFile(trace)
	if got := strings.Join(strings.Fields(string(b)), " "); got != "a b a b" {
		t.Errorf("trace up to the kill %q", got)
	}
	if err := helper(t, "failpoints", "POPPER_FAILPOINT=a"); !killed(err) {
		t.Fatalf("a (first hit) did not SIGKILL: %v", err)
	}
	if err := helper(t, "failpoints", "POPPER_FAILPOINT=a:4"); err != nil {
		t.Fatalf("a:4 is never reached, yet: %v", err)
	}
}

func TestOpLogRecordsEveryOp(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(t.TempDir(), "oplog")
	if err := helper(t, "ops", "POPPER_OPLOG="+log, "PLATFORM_CRASHTEST_DIR="+dir); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []string
	sc := bufio.NewScanner(f)
	for seq := int64(1); sc.Scan(); seq++ {
		var r OpRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		if r.Seq != seq || !filepath.IsAbs(r.Path) {
			t.Errorf("record %+v", r)
		}
		s := r.Op + " " + filepath.Base(r.Path)
		if r.Path2 != "" {
			s += ">" + filepath.Base(r.Path2)
		}
		if r.Op == opWrite || r.Op == opTruncate {
			s += "@" + string(rune('0'+r.Off)) + ":" + string(r.Data)
		}
		got = append(got, s)
	}
	want := "create t|write t@0:hello|write t@0:J|truncate t@3:|fsync t|rename t>u|fsyncdir " + filepath.Base(dir) + "|unlink u"
	if strings.Join(got, "|") != want {
		t.Errorf("op log\n%s\nwant\n%s", strings.Join(got, "|"), want)
	}
}

func init() {
	helpers["crashtest-dotlock"] = func([]string) error {
		_, err := LockDot(filepath.Join(os.Getenv("PLATFORM_CRASHTEST_DIR"), "user"), DotLockOptions{})
		return err
	}
}

// A locker killed at each step of the link method leaves a state the
// next locker gets through at once: after the unique file is written, no
// lock (and a unique file, which holds no mail); after the link, a lock
// with two names and a dead owner, taken over with both names removed.
func TestDotLockKilledAtEachStep(t *testing.T) {
	for _, fp := range []string{"dotlock.written", "dotlock.linked"} {
		t.Run(fp, func(t *testing.T) {
			dir := t.TempDir()
			err := helper(t, "dotlock", "PLATFORM_CRASHTEST_DIR="+dir, "POPPER_FAILPOINT="+fp)
			if !killed(err) {
				t.Fatalf("not killed at %s: %v", fp, err)
			}
			var temps []string
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if IsDotLockTemp(e.Name()) {
					temps = append(temps, e.Name())
				}
			}
			lock := filepath.Join(dir, "user.lock")
			fi, lockErr := os.Lstat(lock)
			switch fp {
			case "dotlock.written":
				if lockErr == nil || len(temps) != 1 {
					t.Fatalf("after a kill before link: lock %v, unique files %v", lockErr, temps)
				}
			case "dotlock.linked":
				if lockErr != nil || IDOf(fi).Nlink != 2 || len(temps) != 1 {
					t.Fatalf("after a kill after link: lock %v (links %d), unique files %v", lockErr, IDOf(fi).Nlink, temps)
				}
			}
			l, err := LockDot(filepath.Join(dir, "user"), DotLockOptions{Tries: 1})
			if err != nil {
				t.Fatalf("the next locker: %v", err)
			}
			if err := l.Unlock(); err != nil {
				t.Fatal(err)
			}
			entries, _ = os.ReadDir(dir)
			if fp == "dotlock.linked" && len(entries) != 0 {
				t.Errorf("left behind after the takeover: %v", entries)
			}
		})
	}
}
