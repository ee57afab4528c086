package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Logins with the host's own accounts: real Unix users made with useradd
// and given passwords with chpasswd or usermod -p, served by the real
// binary with a qpopper configuration that names no user database.

// sysUser is a Unix account a test made.
type sysUser struct {
	name, pass string
	uid, gid   int
	home       string
}

// addSysUser creates a Unix user with useradd (home under the site's
// directory) and sets its password with chpasswd, with method (YESCRYPT,
// SHA512, MD5, or "default": chpasswd's own choice, yescrypt on Debian
// 12) or as a ready hash with usermod -p when hash is set. It
// is removed with userdel when the test ends.
func addSysUser(t testing.TB, s *site, method, pass, hash string, extra ...string) *sysUser {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root: creates Unix users")
	}
	need(t, "useradd", "chpasswd", "usermod", "userdel")
	b := make([]byte, 4)
	rand.Read(b)
	name := "pt" + hex.EncodeToString(b)
	home := filepath.Join(s.dir, "home", name)
	os.MkdirAll(filepath.Dir(home), 0o755)
	args := append([]string{"-m", "-d", home, "-s", "/bin/sh"}, extra...)
	if out, err := exec.Command("useradd", append(args, name)...).CombinedOutput(); err != nil {
		t.Fatalf("useradd %s: %v\n%s", name, err, out)
	}
	t.Cleanup(func() { exec.Command("userdel", "-f", name).Run() })
	switch {
	case hash != "":
		runCmd(t, nil, "usermod", "-p", hash, name)
	case method == "default":
		runCmd(t, strings.NewReader(name+":"+pass+"\n"), "chpasswd")
	case method != "":
		runCmd(t, strings.NewReader(name+":"+pass+"\n"), "chpasswd", "-c", method)
	}
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &sysUser{name: name, pass: pass, uid: uid, gid: gid, home: home}
}

func runCmd(t testing.TB, stdin *strings.Reader, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// shadowHash is the user's hash as /etc/shadow holds it.
func shadowHash(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile("/etc/shadow")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Split(l, ":"); len(f) > 1 && f[0] == name {
			return f[1]
		}
	}
	t.Fatalf("%s not in /etc/shadow", name)
	return ""
}

// spoolFor writes the user's spool in the site's spool directory, owned
// by the user.
func (s *site) spoolFor(t *testing.T, u *sysUser, content string) string {
	t.Helper()
	p := filepath.Join(s.spoolDir, u.name)
	writeFile(t, p, content, 0o660)
	os.Chown(p, u.uid, u.gid)
	return p
}

// systemSite is a site whose configuration names no user database: the
// accounts are the system's, as at a site that swapped in.qpopper for
// popper.
func systemSite(t *testing.T, lines ...string) *site {
	t.Helper()
	s := newSite(t)
	s.userdb = ""
	s.setOptions(t, lines...)
	return s
}

// TestSystemPasswordsEveryHash logs real Unix users in with every
// password hash a site's shadow file may hold, through a real inetd and
// a qpopper configuration without any user database.
func TestSystemPasswordsEveryHash(t *testing.T) {
	need(t, "/usr/sbin/inetd")
	s := systemSite(t)
	users := []*sysUser{
		addSysUser(t, s, "default", "correct horse", ""),
		addSysUser(t, s, "SHA512", "s3cret pass", ""),
		addSysUser(t, s, "MD5", "md5 pass", ""),
		// Hashes chpasswd does not make, as Solaris and old hosts keep them
		// (made by mkpasswd -m descrypt, bcrypt and sunmd5).
		addSysUser(t, s, "", "despass", "33pslTW1fUeEM"),
		addSysUser(t, s, "", "blowfish", "$2b$05$M9BtLFmi5CP1ic0H6sk.Reuqnlf7yxnsGPMq/mbVzxgNFdZhD6gpu"),
		addSysUser(t, s, "", "sun md5", "$md5,rounds=41260$AhVD1p9I$$Tm8KKQIGPZQTmyO9i6bXQ/"),
	}
	for _, u := range users[:3] {
		if h := shadowHash(t, u.name); h == "" || h[0] != '$' {
			t.Fatalf("%s: chpasswd wrote %q", u.name, h)
		}
	}
	if !strings.HasPrefix(shadowHash(t, users[0].name), "$y$") {
		t.Fatalf("chpasswd (its default method) wrote %q; Debian 12's default is yescrypt", shadowHash(t, users[0].name))
	}
	port := s.viaInetd(t)
	for _, u := range users {
		s.spoolFor(t, u, msg("m-"+u.name, "for "+u.name))
		c := s.dialPort(t, port)
		c.ok("USER " + u.name)
		if r := c.do("PASS " + u.pass); !strings.HasPrefix(r, "+OK "+u.name+" has 1 visible message ") {
			t.Errorf("%s (%s): PASS: %q", u.name, shadowHash(t, u.name)[:4], r)
			continue
		}
		c.ok("QUIT")
	}
}

// TestSystemAccountRefusals: a wrong password, an unknown user, a locked
// account and a blocked uid all get qpopper's "Password supplied ... is
// incorrect." (the blocked uid its own text only with the right
// password), each after the same delay; expired accounts and passwords
// get qpopper's texts, but only with the right password.
func TestSystemAccountRefusals(t *testing.T) {
	need(t, "/usr/sbin/inetd", "chage")
	s := systemSite(t, "set auth-delay = 1", "set max-auth-failures = 0")
	good := addSysUser(t, s, "SHA512", "right pass", "")
	locked := addSysUser(t, s, "SHA512", "right pass", "")
	runCmd(t, nil, "usermod", "-L", locked.name)
	expired := addSysUser(t, s, "SHA512", "right pass", "")
	runCmd(t, nil, "usermod", "-e", "1", expired.name)
	mustChange := addSysUser(t, s, "SHA512", "right pass", "")
	runCmd(t, nil, "chage", "-d", "0", mustChange.name)
	// uid 10 (uucp's on Debian): the last one BLOCK_UID refuses.
	low := addSysUser(t, s, "SHA512", "right pass", "", "-o", "-u", "10")
	port := s.viaInetd(t)
	for _, c := range []struct {
		user, pass, want string
	}{
		{good.name, "wrong pass", `-ERR [AUTH] Password supplied for "` + good.name + `" is incorrect.`},
		{"nosuchuser", "right pass", `-ERR [AUTH] Password supplied for "nosuchuser" is incorrect.`},
		{locked.name, "right pass", `-ERR [AUTH] Password supplied for "` + locked.name + `" is incorrect.`},
		{low.name, "wrong pass", `-ERR [AUTH] Password supplied for "` + low.name + `" is incorrect.`},
		{low.name, "right pass", `-ERR [AUTH] Access is blocked for UIDs below 10`},
		{expired.name, "wrong pass", `-ERR [AUTH] Password supplied for "` + expired.name + `" is incorrect.`},
		{expired.name, "right pass", `-ERR [AUTH] "` + expired.name + `": account expired.`},
		{mustChange.name, "right pass", `-ERR [AUTH] "` + mustChange.name + `": password expired.`},
	} {
		cl := s.dialPort(t, port)
		cl.ok("USER " + c.user)
		began := time.Now()
		r := cl.do("PASS " + c.pass)
		took := time.Since(began)
		if r != c.want {
			t.Errorf("%s/%q: %q, want %q", c.user, c.pass, r, c.want)
		}
		// The delay is a floor every refusal waits for; the unit tests of
		// auth.Policy show that it is the same deadline for all of them.
		if took < time.Second {
			t.Errorf("%s/%q answered after %v, before auth-delay", c.user, c.pass, took)
		}
		t.Logf("%-12s %-10q %6.3fs %s", c.user, c.pass, took.Seconds(), r)
	}
	if r := eoLogin(s.dialPort(t, port), good.name, "right pass"); !strings.HasPrefix(r, "+OK "+good.name+" has 0 visible messages") {
		t.Fatalf("good user: %q", r)
	}
	tr := eoTrace(t, s.trace)
	if !strings.Contains(tr, "[AUTH] Failed attempted login to "+good.name+" from host (") {
		t.Errorf("trace lacks the failed-login record:\n%s", tr)
	}
}

// builds holds the extra builds the tests need, by file name.
var builds struct {
	sync.Mutex
	bins map[string]string
}

// build runs go build with args (ending in the package) once per test
// binary, into name beside the popper under test.
func build(t *testing.T, name string, args ...string) string {
	t.Helper()
	builds.Lock()
	defer builds.Unlock()
	if bin, ok := builds.bins[name]; ok {
		return bin
	}
	bin := filepath.Join(filepath.Dir(popperBin), name)
	cmd := exec.Command("go", append([]string{"build", "-o", bin}, args...)...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1") // PAM needs cgo; the others do not mind
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	if builds.bins == nil {
		builds.bins = map[string]string{}
	}
	builds.bins[name] = bin
	return bin
}

// pamPopper builds popper with PAM (-tags pam, cgo), as a site on a host
// with LDAP or NIS accounts would build it.
func pamPopper(t *testing.T) string {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root: PAM's pam_unix reads /etc/shadow")
	}
	if _, err := os.Stat("/usr/include/security/pam_appl.h"); err != nil {
		t.Skip("no PAM headers (libpam0g-dev; scripts/test installs it)")
	}
	return build(t, "popper-pam", "-tags", "pam", ".")
}

// pamService writes /etc/pam.d/NAME with the given stack and removes it
// when the test ends.
func pamService(t *testing.T, stack string) string {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	name := "popper-test-" + hex.EncodeToString(b)
	p := filepath.Join("/etc/pam.d", name)
	writeFile(t, p, stack, 0o644)
	t.Cleanup(func() { os.Remove(p) })
	return name
}

const pamUnixStack = "auth required pam_unix.so\naccount required pam_unix.so\n"

// TestPAMThroughInetd logs a system user in through the PAM build of
// popper under a real inetd, with the real Debian PAM stack (pam_unix),
// and checks qpopper's refusals.
func TestPAMThroughInetd(t *testing.T) {
	need(t, "/usr/sbin/inetd")
	bin := pamPopper(t)
	service := pamService(t, pamUnixStack)
	s := systemSite(t, "set auth-source = pam", fmt.Sprintf("set pam-service = %q", service), "set auth-delay = 3")
	u := addSysUser(t, s, "YESCRYPT", "pam pass", "")
	expired := addSysUser(t, s, "YESCRYPT", "pam pass", "")
	runCmd(t, nil, "usermod", "-e", "1", expired.name)
	s.spoolFor(t, u, msg("pam", "through PAM"))
	port := s.viaInetdBinary(t, bin)
	c := s.dialPort(t, port)
	c.ok("USER " + u.name)
	if r := c.do("PASS pam pass"); !strings.HasPrefix(r, "+OK "+u.name+" has 1 visible message ") {
		t.Fatalf("PAM login: %q\n%s", r, eoTrace(t, s.trace))
	}
	c.ok("QUIT")
	for _, tc := range []struct{ user, pass, want string }{
		{u.name, "wrong", `-ERR [AUTH] Password supplied for "` + u.name + `" is incorrect.`},
		{"nosuchuser", "pam pass", `-ERR [AUTH] Password supplied for "nosuchuser" is incorrect.`},
		{expired.name, "pam pass", `-ERR [AUTH] "` + expired.name + `": account expired.`},
	} {
		c := s.dialPort(t, port)
		c.ok("USER " + tc.user)
		began := time.Now()
		if r := c.do("PASS " + tc.pass); r != tc.want {
			t.Errorf("%s: %q, want %q", tc.user, r, tc.want)
		}
		t.Logf("%s/%q refused after %.3fs (pam_unix's own delay is within auth-delay)", tc.user, tc.pass, time.Since(began).Seconds())
	}
}

// popauth is cmd/popauth, built for the test.
func popauth(t *testing.T) string { return build(t, "popauth", "../popauth") }

// TestPopauthThenAPOP: root gives a system user an APOP secret with
// popauth; the greeting then has a timestamp, APOP logs the user in
// through a real inetd, and USER is refused for that user (qpopper's
// rule) unless clear-text-password is always.
func TestPopauthThenAPOP(t *testing.T) {
	need(t, "/usr/sbin/inetd", "python3")
	s := systemSite(t, "set auth-delay = 1")
	u := addSysUser(t, s, "YESCRYPT", "unix pass", "")
	s.spoolFor(t, u, msg("apop", "by APOP"))
	db := filepath.Join(s.dir, "pop.auth")
	runCmd(t, nil, popauth(t), "-db", db, "-init")
	runCmd(t, strings.NewReader("apop secret\n"), popauth(t), "-db", db, "-user", u.name)
	if out := runCmd(t, nil, popauth(t), "-db", db, "-list"); !strings.Contains(out, u.name) {
		t.Fatalf("popauth -list: %q", out)
	}
	port := s.viaInetd(t)
	// poplib's apop() takes the timestamp from the greeting.
	script := fmt.Sprintf(`
import poplib
p = poplib.POP3("127.0.0.1", %d, timeout=20)
print(p.getwelcome().decode())
print(p.apop(%q, "apop secret").decode())
print(p.stat())
p.quit()
`, port, u.name)
	out, err := exec.Command("python3", "-c", script).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "+OK "+u.name+" has 1 visible message ") || !strings.Contains(string(out), "<") {
		t.Fatalf("poplib APOP: %v\n%s\n%s", err, out, eoTrace(t, s.trace))
	}
	c := s.dialPort(t, port)
	if r := c.do("USER " + u.name); r != "-ERR [AUTH] You must use stronger authentication such as AUTH or APOP to connect to this server" {
		t.Fatalf("USER of an APOP user: %q", r)
	}
	s.setOptions(t, "set clear-text-password = always")
	c = s.dialPort(t, port)
	c.ok("USER " + u.name)
	if r := c.do("PASS unix pass"); !strings.HasPrefix(r, "+OK ") {
		t.Fatalf("PASS with clear-text-password always: %q", r)
	}
}

// TestCurlSystemAccountWithoutAPOP: with no APOP database the greeting
// has no timestamp, so curl (which uses APOP whenever it sees one) logs
// a system account in, here with SASL PLAIN, which CAPA offers.
func TestCurlSystemAccountWithoutAPOP(t *testing.T) {
	need(t, "/usr/sbin/inetd", "curl")
	s := systemSite(t)
	u := addSysUser(t, s, "YESCRYPT", "curl pass", "")
	msgs := sampleMessages()[:3]
	s.spoolFor(t, u, strings.Join(msgs, ""))
	port := s.viaInetd(t)
	for i, m := range msgs {
		out, err := exec.Command("curl", "-s", "--max-time", "20", "-u", u.name+":curl pass", fmt.Sprintf("pop3://127.0.0.1:%d/%d", port, i+1)).Output()
		if err != nil {
			t.Fatalf("curl RETR %d: %v\n%s", i+1, err, eoTrace(t, s.trace))
		}
		if got, want := received(out), wireForm(m); got != want {
			t.Fatalf("message %d differs:\n%.300q\n%.300q", i+1, got, want)
		}
	}
	out, err := exec.Command("curl", "-v", "-s", "--max-time", "20", "-u", u.name+":curl pass", fmt.Sprintf("pop3://127.0.0.1:%d/", port)).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "AUTH PLAIN") || strings.Contains(string(out), "APOP") {
		t.Fatalf("curl -v did not log in with AUTH PLAIN: %v\n%s", err, out)
	}
}

// TestCheckpwProgram logs a system user in through checkpw, a real
// checkpassword program from Debian (it checks ~/Maildir/.password, then
// becomes the user and runs its subprogram).
func TestCheckpwProgram(t *testing.T) {
	need(t, "/usr/sbin/inetd", "/usr/bin/checkpw")
	s := systemSite(t, "set auth-source = checkpassword", `set checkpassword = "/usr/bin/checkpw"`, "set auth-delay = 1")
	u := addSysUser(t, s, "", "", "*") // no Unix password: only checkpw knows one
	os.MkdirAll(filepath.Join(u.home, "Maildir"), 0o700)
	pw := filepath.Join(u.home, "Maildir", ".password")
	writeFile(t, pw, "maildir pass\n", 0o600)
	for _, p := range []string{filepath.Dir(pw), pw} {
		os.Chown(p, u.uid, u.gid)
	}
	s.spoolFor(t, u, msg("cpw", "through checkpw"))
	port := s.viaInetd(t)
	c := s.dialPort(t, port)
	c.ok("USER " + u.name)
	if r := c.do("PASS maildir pass"); !strings.HasPrefix(r, "+OK "+u.name+" has 1 visible message ") {
		t.Fatalf("checkpw login: %q\n%s", r, eoTrace(t, s.trace))
	}
	c.ok("QUIT")
	c = s.dialPort(t, port)
	c.ok("USER " + u.name)
	if r := c.do("PASS wrong"); r != `-ERR [AUTH] Password supplied for "`+u.name+`" is incorrect.` {
		t.Fatalf("checkpw, wrong password: %q", r)
	}
}

// TestCheckConfigAuthSources: --check-config fails, naming the reason,
// when every login would fail.
func TestCheckConfigAuthSources(t *testing.T) {
	s := newSite(t)
	check := func(extra ...string) (string, bool) {
		out, err := exec.Command(popperBin, append([]string{"--check-config", "-f", s.config}, extra...)...).CombinedOutput()
		return string(out), err == nil
	}
	if out, ok := check("--userdb", s.userdb); !ok {
		t.Fatalf("good userdb: %s", out)
	}
	for _, c := range []struct {
		name  string
		lines []string
		args  []string
		want  string
	}{
		{"missing userdb", nil, []string{"--userdb", filepath.Join(s.dir, "nope")}, "no such file"},
		{"malformed userdb", nil, []string{"--userdb", eoFile(t, s, "bad-userdb", "alice:{PLAIN}x:notanumber:1::/:/bin/sh")}, "bad uid or gid"},
		{"userdb others can write", nil, []string{"--userdb", func() string {
			p := eoFile(t, s, "open-userdb", "alice:{PLAIN}x:1000:1000::/:/bin/sh")
			os.Chmod(p, 0o666)
			return p
		}()}, "writable by group or others"},
		{"PAM not compiled in", []string{"set auth-source = pam"}, nil, "without PAM"},
		{"no checkpassword program", []string{"set auth-source = checkpassword"}, nil, "no checkpassword program"},
		{"relative checkpassword", []string{"set auth-source = checkpassword", `set checkpassword = "checkpw"`}, nil, "not an absolute path"},
		{"userdb source without a file", []string{"set auth-source = userdb"}, nil, "needs popper-userdb"},
		{"bad APOP database", []string{fmt.Sprintf("set apop-db = %q", func() string {
			p := eoFile(t, s, "bad.auth", "popauth 1", "alice:nothex")
			os.Chmod(p, 0o600)
			return p
		}())}, []string{"--userdb", s.userdb}, "APOP database"},
		{"qpopper's ndbm APOP database beside", []string{fmt.Sprintf("set apop-db = %q", func() string {
			p := filepath.Join(s.dir, "qpop.auth")
			writeFile(t, p+".dir", "", 0o600)
			writeFile(t, p+".pag", "", 0o600)
			return p
		}())}, []string{"--userdb", s.userdb}, "popauth -import"},
	} {
		cfg := eoFile(t, s, "check.conf", append([]string{fmt.Sprintf("set spool-dir = %q", s.spoolDir), fmt.Sprintf("set apop-db = %q", filepath.Join(s.dir, "none"))}, c.lines...)...)
		out, err := exec.Command(popperBin, append([]string{"--check-config", "-f", cfg}, c.args...)...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), c.want) {
			t.Errorf("%s: exit %v, output %q; want failure mentioning %q", c.name, err, out, c.want)
		}
	}
	if os.Getuid() == 0 {
		// The system source needs the shadow file: as root it is there,
		// and a popper run by anyone else is told it cannot read it.
		if out, ok := check(); !ok {
			t.Errorf("system accounts as root: %s", out)
		}
		cmd := exec.Command(popperBin, "--check-config", "-f", s.config)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "/etc/shadow") {
			t.Errorf("system accounts as nobody: exit %v, %q; want the unreadable shadow file reported", err, out)
		}
	}
}
