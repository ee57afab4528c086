//go:build crashtest

package crashtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A session stopped (SIGSTOP, or a host under heavy load) for longer than
// the dotlock's stale age, at each step before which it discards or
// overwrites spool bytes, while an MDA that trusts only the dotlock
// (procmail's lockfile, as dotlockfile and mail.local variants behave)
// takes the lock over as stale and appends. When the session resumes it
// must find the lock no longer its own, or the spool grown, and stop
// without overwriting: the new message survives, once, and nothing the
// client did not see acknowledged is lost.
//
// The stop is a failpoint with POPPER_FAILPOINT_ACTION=stop; the lock is
// aged by hand instead of waiting the real 300 s.
func TestPausedSessionKeepsDotlockOnlyDelivery(t *testing.T) {
	if _, err := exec.LookPath("lockfile"); err != nil {
		t.Skip("lockfile (procmail) not installed; scripts/test installs it")
	}
	for _, tc := range []struct {
		name      string
		server    bool
		failpoint string
		deleteAll bool
	}{
		{"copy login, copied", false, "login.copied", false},
		{"copy update, locked", false, "update.locked", false},
		{"copy update, new mail saved", false, "update.newmail-saved", false},
		{"copy update, spool truncated", false, "update.spool-truncated", false},
		{"normal update, temp drop synced", false, "update.tempdrop-synced", false},
		{"server update, temp drop synced", true, "update.tempdrop-synced", false},
		{"server update, delete all", true, "update.locked", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.server)
			base := bigSpool(t, 40, 3000)
			spool := base
			if strings.HasPrefix(tc.name, "copy ") {
				spool = withJunk(base)
			}
			e.put(map[string][]byte{testUser: spool})
			e.ownAll()
			manifest, err := ManifestOf(base, MustSurvive)
			if err != nil {
				t.Fatal(err)
			}
			newMail := []byte("From late@example.org Sat Nov 28 12:00:00 2026\nMessage-ID: <late@crashtest>\nSubject: delivered while popper was stopped\n\nlate\n\n")
			var afterLogin func()
			if strings.HasPrefix(tc.failpoint, "update.newmail") {
				// An update saves new mail only when some arrived during
				// the session.
				during := []byte("From during@example.org Sat Nov 28 11:00:00 2026\nMessage-ID: <during@crashtest>\n\nduring\n\n")
				manifest = append(manifest, mustManifest(t, during)...)
				afterLogin = func() { e.deliver(during) }
			}
			procs := make(chan *os.Process, 1)
			done := make(chan *session, 1)
			del := map[string]bool{"<m1@crashtest>": true, "<m7@crashtest>": true}
			go func() {
				done <- e.run(plan{deleteIDs: del, deleteAll: tc.deleteAll, started: func(p *os.Process) { procs <- p },
					afterLogin: afterLogin},
					"POPPER_FAILPOINT="+tc.failpoint, "POPPER_FAILPOINT_ACTION=stop")
			}()
			p := <-procs
			if !waitStopped(p.Pid, 30*time.Second) {
				p.Kill()
				t.Fatalf("popper never stopped at %s:\n%s", tc.failpoint, (<-done).Transcript.String())
			}
			// The MDA: the lock looks 400 s old; lockfile -l 300 breaks it.
			lock := e.spoolPath() + ".lock"
			old := time.Now().Add(-400 * time.Second)
			os.Chtimes(lock, old, old)
			mda := exec.Command("sh", "-c", fmt.Sprintf("lockfile -l 300 -s 0 -r 0 %[1]s && cat >> %[2]s && rm -f %[1]s", lock, e.spoolPath()))
			mda.Stdin = bytes.NewReader(newMail)
			before := e.listing()
			out, err := mda.CombinedOutput()
			if err != nil {
				t.Fatalf("the dotlock-only MDA: %v\n%s", err, out)
			}
			defer func() {
				if t.Failed() {
					t.Logf("before the MDA: %s\nMDA said: %s", before, out)
				}
			}()
			p.Signal(syscall.SIGCONT)
			s := <-done
			if s.QuitOK && strings.HasPrefix(tc.failpoint, "update.") {
				t.Errorf("QUIT acknowledged although the lock was lost:\n%s", s.Transcript.String())
			}
			if !strings.Contains(s.Transcript.String(), "-ERR") {
				t.Errorf("the session did not say it failed:\n%s", s.Transcript.String())
			}
			m := expect(t, manifest, s, newMail)
			if out, err := e.recover(); err != nil {
				t.Fatalf("popper --recover: %v\n%s", err, out)
			}
			fails := e.verify(tc.name, m)
			for _, f := range fails {
				t.Error(f)
			}
			if t.Failed() {
				t.Logf("session:\n%s", s.Transcript.String())
			}
		})
	}
}

// waitStopped waits for process pid to be in the stopped state.
func waitStopped(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err == nil {
			if i := bytes.LastIndexByte(b, ')'); i >= 0 && len(b) > i+2 && b[i+2] == 'T' {
				return true
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

func mustManifest(t *testing.T, mbox []byte) Manifest {
	t.Helper()
	m, err := ManifestOf(mbox, MustSurvive)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// bigSpool is n messages of about size bytes each.
func bigSpool(t *testing.T, n, size int) []byte {
	var b bytes.Buffer
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "From sender%d@example.org Sat Nov 28 10:00:00 2026\nMessage-ID: <m%d@crashtest>\nSubject: message %d\n\n", i, i, i)
		for b.Len() < i*size {
			fmt.Fprintf(&b, "body line of message %d, padding padding padding\n", i)
		}
		b.WriteString("\n")
	}
	return b.Bytes()
}
