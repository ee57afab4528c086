package platform

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// procmail, the usual Linux local deliverer, takes a dotlock and an fcntl
// lock on the mailbox. While we hold either one it must not write; once we
// let go its delivery must land.
func TestProcmailWaitsForOurLocks(t *testing.T) {
	if _, err := exec.LookPath("procmail"); err != nil {
		t.Skip("procmail not installed")
	}
	for _, which := range []string{"dotlock", "fcntl"} {
		t.Run(which, func(t *testing.T) {
			dir := t.TempDir()
			mbox := filepath.Join(dir, "user")
			before := "From old@example.org Sat Nov 28 10:00:00 2026\n\nold\n\n"
			os.WriteFile(mbox, []byte(before), 0600)
			rc := filepath.Join(dir, "rc")
			os.WriteFile(rc, []byte("LOCKSLEEP=1\n:0:\n"+mbox+"\n"), 0644)

			var release func() error
			if which == "dotlock" {
				l := mustLockDot(t, mbox, DotLockOptions{})
				release = l.Unlock
			} else {
				f := openMailbox(t, mbox)
				unlock, err := LockMailbox(f, []LockKind{LockFcntl}, 0)
				if err != nil {
					t.Fatal(err)
				}
				release = unlock
			}

			cmd := exec.Command("procmail", "-m", rc)
			cmd.Stdin = strings.NewReader("From: new@example.org\nSubject: t\n\nnew body\n")
			var out strings.Builder
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				t.Fatalf("procmail finished while we held the %s: %v %s", which, err, out.String())
			case <-time.After(1500 * time.Millisecond):
			}
			if data, _ := os.ReadFile(mbox); string(data) != before {
				t.Fatalf("procmail wrote under our %s: %q", which, data)
			}
			if err := release(); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("procmail: %v %s", err, out.String())
				}
			case <-time.After(15 * time.Second):
				cmd.Process.Kill()
				t.Fatal("procmail did not deliver after we let go")
			}
			data, _ := os.ReadFile(mbox)
			if !strings.HasPrefix(string(data), before) || !strings.Contains(string(data), "new body") {
				t.Errorf("mailbox after delivery: %q", data)
			}
		})
	}
}
