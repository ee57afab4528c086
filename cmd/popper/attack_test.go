package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/popperd/popper/platform"
)

// The attacks of issue 10, as a local user with a shell on the mail host
// would run them against another user, on each spool-directory layout,
// with real Unix users and the real binary under a real inetd (traced by
// strace). Each shows: no byte of the victim's mail reaches the attacker,
// root opens nothing a user controls (in the users' homes not at all; in
// a directory users can write only without following links), the victim
// logs in afterwards with all of their mail, and a log record names the
// planted file and its owner.

// layout is how a site's spool directory is made.
type layout struct {
	name string
	mode os.FileMode
	// plantable: users outside the mail group can create files there.
	plantable bool
}

var layouts = []layout{
	{"1777 (Solaris, illumos)", os.ModeSticky | 0o777, true},
	{"2775 root:mail (Debian)", os.ModeSetgid | 0o775, false},
	{"775 root:mail (BSD)", 0o775, false},
}

// attackSite is a site of system accounts with a victim and an attacker.
type attackSite struct {
	*site
	victim, attacker *sysUser
	secret           string // in every message of the victim's
	port             int
	strace           string // strace output of every session
}

const mailGID = 8 // Debian's mail group

func newAttackSite(t *testing.T, l layout, lines ...string) *attackSite {
	t.Helper()
	need(t, "/usr/sbin/inetd", "setpriv", "strace")
	s := systemSite(t, append([]string{"set auth-delay = 0"}, lines...)...)
	os.Chown(s.spoolDir, 0, mailGID)
	os.Chmod(s.spoolDir, l.mode)
	a := &attackSite{site: s,
		victim:   addSysUser(t, s, "SHA512", "victim pass", ""),
		attacker: addSysUser(t, s, "SHA512", "attacker pass", ""),
	}
	b := make([]byte, 6)
	rand.Read(b)
	a.secret = "VICTIM-SECRET-" + hex.EncodeToString(b)
	return a
}

// victimMail is the victim's spool content, the way an MDA leaves it:
// the victim's, group mail, 0660.
func (a *attackSite) victimMail(t *testing.T, n int) string {
	t.Helper()
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString(msg(fmt.Sprintf("v%d", i), a.secret+" message "+strconv.Itoa(i)))
	}
	p := filepath.Join(a.spoolDir, a.victim.name)
	writeFile(t, p, b.String(), 0o660)
	os.Chown(p, a.victim.uid, mailGID)
	return p
}

// serve starts the real inetd with popper under strace.
func (a *attackSite) serve(t *testing.T, extra ...string) {
	t.Helper()
	a.strace = filepath.Join(a.dir, "strace")
	tracer := filepath.Join(a.dir, "traced-popper")
	writeFile(t, tracer, fmt.Sprintf("#!/bin/sh\nexec strace -f -qq -e trace=open,openat,setuid,setresuid,setreuid,clone,clone3,fork,vfork -e signal=none -o %s.$$ %s \"$@\"\n", q(a.strace), q(popperBin)), 0o755)
	a.port = a.viaInetdBinary(t, tracer, extra...)
}

// q quotes a path for sh.
func q(p string) string { return "'" + strings.ReplaceAll(p, "'", `'\''`) + "'" }

// as runs a shell command as u, with u's own groups, as u's shell would.
func as(u *sysUser, script string) ([]byte, error) {
	cmd := exec.Command("setpriv", "--reuid", strconv.Itoa(u.uid), "--regid", strconv.Itoa(u.gid), "--init-groups", "--", "/bin/sh", "-c", script)
	cmd.Env = []string{"HOME=" + u.home, "PATH=/usr/bin:/bin"}
	return cmd.CombinedOutput()
}

// login logs u in, retrieves every message and quits; it returns the
// PASS reply and the messages' text.
func (a *attackSite) login(t *testing.T, u *sysUser) (string, string) {
	t.Helper()
	t.Cleanup(func() {
		if t.Failed() {
			files, _ := filepath.Glob(a.strace + ".*")
			for _, f := range files {
				data, _ := os.ReadFile(f)
				lines := strings.Split(string(data), "\n")
				if len(lines) > 15 {
					lines = lines[len(lines)-15:]
				}
				t.Logf("%s:\n%s", f, strings.Join(lines, "\n"))
			}
		}
	})
	c := a.dialPort(t, a.port)
	c.ok("USER " + u.name)
	r := c.do("PASS " + u.pass)
	if !strings.HasPrefix(r, "+OK") {
		return r, ""
	}
	var all strings.Builder
	var n int
	fmt.Sscanf(strings.TrimPrefix(r, "+OK "+u.name+" has "), "%d", &n)
	for i := 1; i <= n; i++ {
		c.ok(fmt.Sprintf("RETR %d", i))
		all.WriteString(strings.Join(c.multi(), "\n"))
	}
	c.ok("QUIT")
	return r, all.String()
}

// noLeak fails when any file the attacker can read under dirs holds the
// victim's secret.
func (a *attackSite) noLeak(t *testing.T, dirs ...string) {
	t.Helper()
	var quoted []string
	for _, d := range dirs {
		quoted = append(quoted, q(d))
	}
	out, _ := as(a.attacker, "grep -rl "+a.secret+" "+strings.Join(quoted, " ")+" 2>/dev/null")
	if s := strings.TrimSpace(string(out)); s != "" {
		t.Errorf("the attacker can read the victim's mail in:\n%s", s)
	}
}

// victimHasAll logs the victim in and checks that every message of
// theirs is served (n of them) and no one else's.
func (a *attackSite) victimHasAll(t *testing.T, n int) {
	t.Helper()
	r, text := a.login(t, a.victim)
	want := fmt.Sprintf("+OK %s has %d visible message", a.victim.name, n)
	if !strings.HasPrefix(r, want) {
		t.Fatalf("victim's login: %q, want %q…\n%s", r, want, eoTrace(t, a.trace))
	}
	for i := 0; i < n; i++ {
		if !strings.Contains(text, fmt.Sprintf("%s message %d", a.secret, i)) {
			t.Errorf("victim's message %d is missing", i)
		}
	}
	if strings.Contains(text, "ATTACKER") {
		t.Errorf("the victim was served the attacker's mail")
	}
}

// plantedLogged checks the log record naming a planted file and its owner.
func (a *attackSite) plantedLogged(t *testing.T, path string) {
	t.Helper()
	want := fmt.Sprintf("Planted file %s (owner %s (uid %d), ", path, a.attacker.name, a.attacker.uid)
	if tr := eoTrace(t, a.trace); !strings.Contains(tr, want) {
		t.Errorf("no record %q…:\n%s", want, tr)
	}
}

var (
	straceLine = regexp.MustCompile(`^(\d+)\s+(\w+)\((.*)\)\s+= (-?\d+)`)
	openPath   = regexp.MustCompile(`^(?:AT_FDCWD, )?"((?:[^"\\]|\\.)*)", ([A-Z_|]+)`)
	unfinished = regexp.MustCompile(`^(\d+)\s+(.*) <unfinished \.\.\.>$`)
	resumed    = regexp.MustCompile(`^(\d+)\s+<\.\.\. \w+ resumed>(.*)$`)
)

// straceCalls joins the calls strace split because threads interleaved
// ("<unfinished ...>" and "<... call resumed>") into whole lines.
func straceCalls(data string) []string {
	var out []string
	pending := map[string]string{}
	for _, l := range strings.Split(data, "\n") {
		if m := unfinished.FindStringSubmatch(l); m != nil {
			pending[m[1]] = m[2]
			continue
		}
		if m := resumed.FindStringSubmatch(l); m != nil {
			l = m[1] + " " + pending[m[1]] + m[2]
			delete(pending, m[1])
		}
		out = append(out, l)
	}
	return out
}

// rootOpens checks the strace output: while a process (thread) still had
// uid 0 it opened nothing under the users' homes, and nothing in a
// directory other users can write without O_NOFOLLOW.
func (a *attackSite) rootOpens(t *testing.T) {
	t.Helper()
	files, _ := filepath.Glob(a.strace + ".*")
	if len(files) == 0 {
		t.Fatal("no strace output")
	}
	homes := filepath.Join(a.dir, "home") + "/"
	checked := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		uid := map[string]int{} // by thread; a new thread starts as its creator
		for _, line := range straceCalls(string(data)) {
			m := straceLine.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			tid, call, args, ret := m[1], m[2], m[3], m[4]
			switch call {
			case "clone", "clone3", "fork", "vfork":
				if ret != "-1" {
					uid[ret] = uid[tid]
				}
			case "setuid", "setresuid", "setreuid":
				if ret == "0" {
					f := strings.Split(args, ", ")
					n, _ := strconv.Atoi(f[len(f)-1])
					if call == "setreuid" || call == "setresuid" {
						n, _ = strconv.Atoi(f[1])
					}
					if n != -1 {
						uid[tid] = n
					}
				}
			case "open", "openat":
				if uid[tid] != 0 {
					continue
				}
				om := openPath.FindStringSubmatch(args)
				if om == nil {
					continue
				}
				path, flags := om[1], om[2]
				checked++
				switch {
				case strings.HasPrefix(path, homes):
					t.Errorf("root opened %s in a user's home (%s)", path, flags)
				case userWritableDir(filepath.Dir(filepath.Clean(path))) && !strings.Contains(flags, "O_NOFOLLOW"):
					t.Errorf("root opened %s in a directory users can write, following links (%s)", path, flags)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("strace saw no open as root: the check checked nothing")
	}
}

// userWritableDir reports whether users other than root may create names
// in dir.
func userWritableDir(dir string) bool {
	fi, err := os.Stat(dir)
	if err != nil {
		return false
	}
	return fi.Mode().Perm()&0o022 != 0
}

// TestAttackPlantedSpool: in a 1777 directory the attacker creates the
// spool of a user who has none yet, while the victim has mail in a
// leftover temp drop. The planted file must not be taken for the
// victim's mailbox nor receive the victim's mail.
func TestAttackPlantedSpool(t *testing.T) {
	for _, l := range layouts {
		t.Run(l.name, func(t *testing.T) {
			a := newAttackSite(t, l)
			spool := filepath.Join(a.spoolDir, a.victim.name)
			// The victim's crashed session left its mail in the temp drop.
			drop := filepath.Join(a.spoolDir, "."+a.victim.name+".pop")
			body := msg("v0", a.secret+" message 0") + msg("v1", a.secret+" message 1")
			writeFile(t, drop, body, 0o600)
			os.Chown(drop, a.victim.uid, mailGID)
			out, err := as(a.attacker, fmt.Sprintf("umask 0; printf 'From attacker@x Sat Nov 28 10:00:00 2026\\nSubject: ATTACKER\\n\\nATTACKER\\n\\n' > %s", q(spool)))
			if (err == nil) != l.plantable {
				t.Fatalf("planting in %s: %v %s", l.name, err, out)
			}
			a.serve(t)
			a.victimHasAll(t, 2)
			if l.plantable {
				a.plantedLogged(t, spool)
				if fi, err := os.Stat(spool); err != nil || int(platform.IDOf(fi).Uid) != a.victim.uid {
					t.Errorf("the spool after the victim's login is not the victim's: %v", err)
				}
			}
			a.noLeak(t, a.spoolDir, a.dir)
			a.rootOpens(t)
		})
	}
}

// TestAttackLockout: a temp drop or a dotlock made by the attacker in a
// 1777 directory kept the victim out for good (the sticky bit keeps the
// victim's session from removing it, and an attacker's hour-old lock was
// never cleared).
func TestAttackLockout(t *testing.T) {
	for _, planted := range []string{".%s.pop", "%s.lock", ".%s.pop.new"} {
		for _, l := range layouts {
			t.Run(fmt.Sprintf(planted, "victim")+" "+l.name, func(t *testing.T) {
				a := newAttackSite(t, l)
				a.victimMail(t, 3)
				path := filepath.Join(a.spoolDir, fmt.Sprintf(planted, a.victim.name))
				out, err := as(a.attacker, fmt.Sprintf("umask 0; echo 'From attacker@x Sat Nov 28 10:00:00 2026' > %s", q(path)))
				if (err == nil) != l.plantable {
					t.Fatalf("planting in %s: %v %s", l.name, err, out)
				}
				old := time.Now().Add(-time.Hour)
				os.Chtimes(path, old, old)
				a.serve(t)
				a.victimHasAll(t, 3)
				if l.plantable {
					a.plantedLogged(t, path)
				}
				a.noLeak(t, a.spoolDir, a.dir)
				a.rootOpens(t)
			})
		}
	}
}

// TestAttackSymlinkAndFIFO: the victim's names made a symbolic link (to
// root's files) or a FIFO (which would hang the session).
func TestAttackSymlinkAndFIFO(t *testing.T) {
	l := layouts[0]
	for _, tc := range []struct{ name, plant string }{
		{"spool symlink to /etc/shadow", "ln -s /etc/shadow %s"},
		{"spool FIFO", "mkfifo %s"},
		{"temp drop symlink", "ln -s /etc/shadow %s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAttackSite(t, l)
			path := filepath.Join(a.spoolDir, a.victim.name)
			if strings.Contains(tc.name, "temp drop") {
				a.victimMail(t, 1)
				path = filepath.Join(a.spoolDir, "."+a.victim.name+".pop")
			}
			if out, err := as(a.attacker, fmt.Sprintf(tc.plant, q(path))); err != nil {
				t.Fatalf("%s: %v %s", tc.plant, err, out)
			}
			a.serve(t)
			n := 0
			if strings.Contains(tc.name, "temp drop") {
				n = 1
			}
			a.victimHasAll(t, n)
			a.plantedLogged(t, path)
			a.rootOpens(t)
		})
	}
}

// TestAttackSpoolOptionsFile: with spool options on (-U), a
// .victim.qpopper-options the attacker planted in a 1777 directory
// steered the victim's session (set spool-dir handed the victim the
// attacker's mailbox). It must be ignored, with a record saying why.
func TestAttackSpoolOptionsFile(t *testing.T) {
	l := layouts[0]
	a := newAttackSite(t, l)
	a.victimMail(t, 2)
	trap := filepath.Join(a.attacker.home, "trap")
	opts := filepath.Join(a.spoolDir, "."+a.victim.name+".qpopper-options")
	script := fmt.Sprintf("mkdir -m 1777 %[1]s && printf 'From attacker@x Sat Nov 28 10:00:00 2026\\nSubject: ATTACKER\\n\\nATTACKER\\n\\n' > %[2]s && chmod 666 %[2]s && printf 'set spool-dir = \"%[3]s\"\\nset keep-temp-drop\\n' > %[4]s",
		q(trap), q(filepath.Join(trap, a.victim.name)), trap, q(opts))
	if out, err := as(a.attacker, "chmod 755 "+q(a.attacker.home)+" && "+script); err != nil {
		t.Fatalf("planting: %v %s", err, out)
	}
	a.serve(t, "-U")
	a.victimHasAll(t, 2)
	want := fmt.Sprintf("Unable to process spool options file for user %s: %s: not trusted: owned by uid %d", a.victim.name, opts, a.attacker.uid)
	if tr := eoTrace(t, a.trace); !strings.Contains(tr, want) {
		t.Errorf("no record %q:\n%s", want, tr)
	}
	a.noLeak(t, a.spoolDir, a.dir)
	a.rootOpens(t)
}

// TestAttackBulletinLink: with user option files on (-u), the attacker
// names a bulletin directory of their own whose bulletin is a symbolic
// link (or, where hard links are not protected, a hard link) to the
// victim's spool. Sessions ran with the mail group, so the victim's mail
// was served to the attacker as a bulletin.
func TestAttackBulletinLink(t *testing.T) {
	for _, l := range layouts {
		t.Run(l.name, func(t *testing.T) {
			a := newAttackSite(t, l, "set max-bulletins = 5")
			victimSpool := a.victimMail(t, 2)
			bulls := filepath.Join(a.attacker.home, "bulls")
			script := fmt.Sprintf("mkdir %[1]s && ln -s %[2]s %[3]s && printf 'set bulldir = \"%[4]s\"\\n' > %[5]s",
				q(bulls), q(victimSpool), q(filepath.Join(bulls, "1.symlink")), bulls, q(filepath.Join(a.attacker.home, ".qpopper-options")))
			if out, err := as(a.attacker, script); err != nil {
				t.Fatalf("planting: %v %s", err, out)
			}
			// A hard link, as an attacker can make one where the kernel
			// does not protect hard links (Solaris): made here by root.
			if err := os.Link(victimSpool, filepath.Join(bulls, "2.hardlink")); err != nil {
				t.Fatal(err)
			}
			a.serve(t, "-u")
			r, text := a.login(t, a.attacker)
			if !strings.HasPrefix(r, "+OK ") {
				t.Fatalf("attacker's login: %q", r)
			}
			if strings.Contains(text, a.secret) {
				t.Fatalf("the victim's mail was served to the attacker as a bulletin")
			}
			tr := eoTrace(t, a.trace)
			for _, b := range []string{"1.symlink", "2.hardlink"} {
				if !strings.Contains(tr, "bulletin "+filepath.Join(bulls, b)+": ") {
					t.Errorf("no record of the refused bulletin %s:\n%s", b, tr)
				}
			}
			os.Remove(filepath.Join(bulls, "2.hardlink"))
			a.victimHasAll(t, 2)
			a.rootOpens(t)
		})
	}
}

// TestAttackListUIDs: root running popper --list-uids for a user whose
// spool the attacker replaced by a link to /etc/shadow (printed it) or a
// FIFO (hung for ever).
func TestAttackListUIDs(t *testing.T) {
	l := layouts[0]
	for _, plant := range []string{"ln -s /etc/shadow %s", "mkfifo %s"} {
		t.Run(strings.Fields(plant)[0], func(t *testing.T) {
			a := newAttackSite(t, l)
			path := filepath.Join(a.spoolDir, a.victim.name)
			if out, err := as(a.attacker, fmt.Sprintf(plant, q(path))); err != nil {
				t.Fatalf("%s: %v %s", plant, err, out)
			}
			cmd := exec.Command(popperBin, "--list-uids", a.victim.name, "-f", a.config)
			done := make(chan struct{})
			var out []byte
			var err error
			go func() { out, err = cmd.CombinedOutput(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				t.Fatal("popper --list-uids hangs on a FIFO")
			}
			if err == nil || strings.Contains(string(out), "root:") {
				t.Fatalf("--list-uids of a planted spool: %v\n%s", err, out)
			}
		})
	}
}

// TestAttackClientThatNeverReads: a session of the victim's (a client
// gone wrong, or an attacker with the password) sends RETR of a big
// message twenty times and never reads. Writes had no deadline: the
// session, and the victim's mailbox lock, stayed for good, and every
// later login of the victim got [IN-USE]. The session must end within
// about the timeout, and the victim's next login get in.
func TestAttackClientThatNeverReads(t *testing.T) {
	a := newAttackSite(t, layouts[0], "set timeout = 2")
	big := msg("big", a.secret+" "+strings.Repeat("x", 8<<20))
	p := filepath.Join(a.spoolDir, a.victim.name)
	writeFile(t, p, big, 0o660)
	os.Chown(p, a.victim.uid, mailGID)
	a.serve(t)
	c := a.dialPort(t, a.port)
	c.ok("USER " + a.victim.name)
	c.ok("PASS " + a.victim.pass)
	for i := 0; i < 20; i++ {
		fmt.Fprintf(c.conn, "RETR 1\r\n")
	}
	// Never read. After the timeout the session is cut off and its
	// update runs (update-on-abort): the victim gets in again.
	deadline := time.Now().Add(30 * time.Second)
	for {
		cl := a.dialPort(t, a.port)
		cl.ok("USER " + a.victim.name)
		r := cl.do("PASS " + a.victim.pass)
		if strings.HasPrefix(r, "+OK") {
			cl.ok("QUIT")
			break
		}
		if !strings.Contains(r, "[IN-USE]") || time.Now().After(deadline) {
			t.Fatalf("victim's login: %q", r)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if tr := eoTrace(t, a.trace); !strings.Contains(tr, "Timeout (2 secs) during nw write") {
		t.Errorf("no record of the write timeout:\n%s", tr)
	}
}

// TestAttackFloodAndBigMIME: 2,000 bad commands on one connection are
// cut off after the twentieth; a -no-mime login that retrieves a 50 MB
// message does not hold it in memory (it peaked at 239 MB).
func TestAttackFloodAndBigMIME(t *testing.T) {
	a := newAttackSite(t, layouts[1])
	var b strings.Builder
	b.WriteString("From sender@example.org Sat Nov 28 10:00:00 2026\nMessage-ID: <big@x>\nMIME-Version: 1.0\n" +
		"Content-Type: multipart/mixed; boundary=\"b\"\n\n--b\nContent-Type: text/plain\n\n" + a.secret + "\n--b\n" +
		"Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n")
	line := strings.Repeat("QUJD", 19) + "\n"
	for b.Len() < 50<<20 {
		b.WriteString(line)
	}
	b.WriteString("--b--\n\n")
	p := filepath.Join(a.spoolDir, a.victim.name)
	writeFile(t, p, b.String(), 0o660)
	os.Chown(p, a.victim.uid, mailGID)
	a.serve(t)

	c := a.dialPort(t, a.port)
	for i := 0; i < 2000; i++ {
		fmt.Fprintf(c.conn, "BOGUS %d\r\n", i)
	}
	n := 0
	for {
		c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		l, err := c.r.ReadString('\n')
		if err != nil {
			break
		}
		n++
		if strings.HasPrefix(l, "-ERR Too many errors") {
			if n != 21 {
				t.Errorf("cut off after %d replies, want the 20 -ERRs and this one", n-1)
			}
			break
		}
	}
	if n > 21 {
		t.Fatalf("%d replies to 2,000 bad commands", n)
	}

	c = a.dialPort(t, a.port)
	c.ok("USER " + a.victim.name + "-no-mime")
	c.ok("PASS " + a.victim.pass)
	pid := newestPopper(t, a)
	c.ok("RETR 1")
	body := strings.Join(c.multi(), "\n")
	if !strings.Contains(body, a.secret) {
		t.Fatalf("the text part was not sent:\n%.300s", body)
	}
	hwm := vmHWM(t, pid)
	c.ok("QUIT")
	t.Logf("a -no-mime RETR of a %d MB message peaked at %d MB resident", b.Len()>>20, hwm>>10)
	if hwm > 100<<10 { // kB; the generous bound of a unit test, not a target
		t.Errorf("a -no-mime session grew to %d MB for a 50 MB message", hwm>>10)
	}
}

// newestPopper is the pid of the popper serving the latest connection
// (under strace: the traced child).
func newestPopper(t *testing.T, a *attackSite) int {
	t.Helper()
	out, err := exec.Command("pgrep", "-n", "-f", "^"+popperBin).Output()
	if err != nil {
		t.Fatalf("pgrep: %v", err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	return pid
}

// vmHWM is a process's peak resident size in kB.
func vmHWM(t *testing.T, pid int) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			n, _ := strconv.Atoi(strings.Fields(v)[0])
			return n
		}
	}
	t.Fatal("no VmHWM")
	return 0
}
