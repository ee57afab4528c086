package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/popperd/popper/internal/narrow"
)

// These tests run the real popper binary in inetd mode: the test accepts a
// TCP connection on loopback and hands it to popper as fd 0, as inetd does.

var popperBin string

func TestMain(m *testing.M) {
	narrow.Widen() // the tests run on every processor
	dir, err := os.MkdirTemp("", "popper-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Chmod(dir, 0755)
	popperBin = filepath.Join(dir, "popper")
	out, err := exec.Command("go", "build", "-o", popperBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// site is a spool directory, user database and config for one test.
type site struct {
	dir, spoolDir, userdb, config, trace string
	uid, gid                             int
}

func newSite(t testing.TB) *site {
	t.Helper()
	dir := t.TempDir()
	s := &site{dir: dir, uid: os.Getuid(), gid: os.Getgid()}
	if os.Getuid() == 0 {
		s.uid, s.gid = 65534, 65534
		// every component above the spool must be searchable by the user
		for d := dir; d != "/" && d != "."; d = filepath.Dir(d) {
			if strings.HasPrefix(d, os.TempDir()) && d != os.TempDir() {
				os.Chmod(d, 0755)
			}
		}
	}
	s.spoolDir = filepath.Join(dir, "mail")
	os.Mkdir(s.spoolDir, 0755)
	os.Chmod(s.spoolDir, os.ModeSticky|0o777) // 1777, as /var/mail on Solaris
	s.userdb = filepath.Join(dir, "userdb")
	s.config = filepath.Join(dir, "qpopper.config")
	s.trace = filepath.Join(dir, "trace")
	writeFile(t, s.userdb, fmt.Sprintf("alice:{PLAIN}secret:%d:%d::%s:/bin/sh\n", s.uid, s.gid, dir), 0600)
	// apop-db names a file of the site's, so that the host's own APOP
	// database cannot change what a test sees.
	writeFile(t, s.config, fmt.Sprintf("set spool-dir = \"%s\"\nset statistics\nset apop-db = \"%s\"\n", s.spoolDir, filepath.Join(dir, "pop.auth")), 0644)
	return s
}

func writeFile(t testing.TB, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, mode)
}

// spool writes a user's spool owned by the site's user.
func (s *site) spool(t *testing.T, user, content string) string {
	t.Helper()
	p := filepath.Join(s.spoolDir, user)
	writeFile(t, p, content, 0660)
	if os.Getuid() == 0 {
		os.Chown(p, s.uid, s.gid)
	}
	return p
}

// setOptions appends qpopper config lines to the site's config file.
func (s *site) setOptions(t *testing.T, lines ...string) {
	t.Helper()
	old, err := os.ReadFile(s.config)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, s.config, string(old)+strings.Join(lines, "\n")+"\n", 0644)
}

// args are popper's arguments for the site: its configuration, trace
// file and user database (none for a site of system accounts).
func (s *site) args(extra ...string) []string {
	a := []string{"-f", s.config, "-t", s.trace}
	if s.userdb != "" {
		a = append(a, "--userdb", s.userdb)
	}
	return append(a, extra...)
}

// dialPort connects to a popper that a real inetd serves on port and
// reads the greeting.
func (s *site) dialPort(t *testing.T, port int) *client {
	t.Helper()
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &client{t: t, conn: conn, r: bufio.NewReader(conn)}
	c.line()
	return c
}

// client is a POP3 conversation with one popper process.
type client struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
	cmd  *exec.Cmd
}

// dial starts popper on a fresh loopback connection and reads the
// greeting.
func (s *site) dial(t *testing.T, extra ...string) *client {
	t.Helper()
	c := s.start(t, extra...)
	c.line() // greeting
	return c
}

// start starts popper on a fresh loopback connection, as inetd does, and
// reads nothing.
func (s *site) start(t *testing.T, extra ...string) *client {
	t.Helper()
	return s.startBinary(t, popperBin, extra...)
}

// inetdSocket returns the client's end of a loopback TCP connection and
// the server's end as a file, to be a session's stdin and stdout as
// inetd's are.
func inetdSocket(b testing.TB) (net.Conn, *os.File) {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	server, err := ln.Accept()
	if err != nil {
		b.Fatal(err)
	}
	defer server.Close()
	f, err := server.(*net.TCPConn).File()
	if err != nil {
		b.Fatal(err)
	}
	return conn, f
}

// startBinary is start with another build of popper.
func (s *site) startBinary(t *testing.T, bin string, extra ...string) *client {
	t.Helper()
	return s.startAs(t, bin, false, extra...)
}

// startAs is startBinary with the connection as standard error too, as
// inetd gives it, when stderr is true.
func (s *site) startAs(t *testing.T, bin string, stderr bool, extra ...string) *client {
	t.Helper()
	conn, f := inetdSocket(t)
	defer f.Close()
	cmd := exec.Command(bin, s.args(extra...)...)
	cmd.Stdin, cmd.Stdout = f, f
	if stderr {
		cmd.Stderr = f
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &client{t: t, conn: conn, r: bufio.NewReader(conn), cmd: cmd}
	t.Cleanup(func() { conn.Close(); cmd.Process.Kill(); cmd.Wait() })
	return c
}

func (c *client) line() string {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (got %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

// do sends a command and returns the status line.
func (c *client) do(cmd string) string {
	c.t.Helper()
	fmt.Fprintf(c.conn, "%s\r\n", cmd)
	return c.line()
}

// multi reads a multi-line body after a +OK.
func (c *client) multi() []string {
	c.t.Helper()
	var out []string
	for {
		l := c.line()
		if l == "." {
			return out
		}
		out = append(out, strings.TrimPrefix(l, "."))
	}
}

func (c *client) ok(cmd string) string {
	c.t.Helper()
	r := c.do(cmd)
	if !strings.HasPrefix(r, "+OK") {
		c.t.Fatalf("%s: %s", cmd, r)
	}
	return r
}

func msg(id, body string) string {
	return fmt.Sprintf("From sender@example.org Sat Nov 28 10:00:00 2026\nMessage-ID: <%s@example.org>\nSubject: %s\n\n%s\n\n", id, id, body)
}

func TestSessionRetrieveDeleteQuit(t *testing.T) {
	s := newSite(t)
	sp := s.spool(t, "alice", msg("one", "first")+msg("two", "second\n.dot line")+msg("three", "third"))
	c := s.dial(t)
	c.ok("USER alice")
	if r := c.ok("PASS secret"); !strings.Contains(r, "alice has 3 visible messages (0 hidden) in") {
		t.Fatalf("PASS reply %q", r)
	}
	c.ok("RETR 2")
	body := strings.Join(c.multi(), "\n")
	if !strings.Contains(body, "Message-ID: <two@example.org>") || !strings.Contains(body, "\n.dot line") || !strings.Contains(body, "X-UIDL: ") {
		t.Fatalf("RETR 2 body %q", body)
	}
	c.ok("DELE 2")
	if r := c.ok("QUIT"); !strings.HasPrefix(r, "+OK Pop server at ") || !strings.HasSuffix(r, " signing off.") {
		t.Fatalf("QUIT reply %q", r)
	}
	got, _ := os.ReadFile(sp)
	if strings.Contains(string(got), "<two@") || !strings.Contains(string(got), "<one@") || !strings.Contains(string(got), "<three@") {
		t.Fatalf("spool after QUIT:\n%s", got)
	}
	trace, _ := os.ReadFile(s.trace)
	if !strings.Contains(string(trace), "Stats: alice 1 ") {
		t.Errorf("no Stats line in the trace file:\n%s", trace)
	}
}

func TestWrongPasswordIsRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("qpopper's 10 s tarpit")
	}
	s := newSite(t)
	s.spool(t, "alice", msg("one", "first"))
	c := s.dial(t)
	c.ok("USER alice")
	if r := c.do("PASS wrong"); r != `-ERR [AUTH] Password supplied for "alice" is incorrect.` {
		t.Fatalf("PASS wrong: %q", r)
	}
}

func TestUnknownFlagPrintsUsage(t *testing.T) {
	out, err := exec.Command(popperBin, "-Z").CombinedOutput()
	var ee *exec.ExitError
	if err == nil || !errorsAs(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("popper -Z: %v, want exit 1", err)
	}
	if !strings.Contains(string(out), "-T timeout") {
		t.Fatalf("no usage text:\n%s", out)
	}
}

func errorsAs(err error, target **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	if ok {
		*target = e
	}
	return ok
}

// Debian's /var/mail is 2775 root:mail: only the mail group may create
// files there, so the session must run with the spool directory's group
// (qpopper's rule) to make its dotlock and temp drop.
func TestMailGroupSpoolDirectory(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root")
	}
	g, err := user.LookupGroup("mail")
	if err != nil {
		t.Skip("no mail group")
	}
	gid, _ := strconv.Atoi(g.Gid)
	s := newSite(t)
	os.Chown(s.spoolDir, 0, gid)
	os.Chmod(s.spoolDir, 0o2775)
	sp := s.spool(t, "alice", msg("one", "first")+msg("two", "second"))
	c := s.dial(t)
	c.ok("USER alice")
	c.ok("PASS secret")
	fi, err := os.Stat(filepath.Join(s.spoolDir, ".alice.pop"))
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != s.uid || int(st.Gid) != gid {
		t.Errorf("temp drop owned by %d:%d, want %d:%d", st.Uid, st.Gid, s.uid, gid)
	}
	c.ok("DELE 1")
	c.ok("QUIT")
	got, _ := os.ReadFile(sp)
	if strings.Contains(string(got), "<one@") || !strings.Contains(string(got), "<two@") {
		t.Fatalf("spool after QUIT:\n%s", got)
	}
}

// As root, popper must serve the session as the user: every file it makes
// belongs to the user with qpopper's modes, its credentials are the
// user's, and another user's spool is out of reach.
func TestRootDropsToTheUser(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root")
	}
	s := newSite(t)
	s.spool(t, "alice", msg("one", "first")+msg("two", "second"))
	secret := filepath.Join(s.dir, "root-only")
	writeFile(t, secret, msg("secret", "root's mail"), 0600)
	f, _ := os.OpenFile(s.userdb, os.O_APPEND|os.O_WRONLY, 0)
	fmt.Fprintf(f, "mallory:{PLAIN}pw:%d:%d::%s:/bin/sh:%s\n", s.uid, s.gid, s.dir, secret)
	f.Close()

	c := s.dial(t)
	c.ok("USER alice")
	c.ok("PASS secret")
	// The temp drop exists now: owner, mode.
	fi, err := os.Stat(filepath.Join(s.spoolDir, ".alice.pop"))
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if int(st.Uid) != s.uid || fi.Mode().Perm() != 0660 {
		t.Errorf("temp drop owned by %d mode %o, want %d mode 0660", st.Uid, fi.Mode().Perm(), s.uid)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err == nil {
		for _, l := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(l, "Uid:") && strings.Fields(l)[1:] != nil {
				for _, v := range strings.Fields(l)[1:] {
					if v != fmt.Sprint(s.uid) {
						t.Errorf("session still has %s", l)
					}
				}
			}
			if strings.HasPrefix(l, "Groups:") && strings.Contains(l, " 0") {
				t.Errorf("session keeps root's groups: %s", l)
			}
		}
	}
	c.ok("DELE 1")
	c.ok("QUIT")
	filepath.Walk(s.spoolDir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == s.spoolDir {
			return nil
		}
		if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != s.uid {
			t.Errorf("%s owned by %d, want %d", p, st.Uid, s.uid)
		}
		return nil
	})

	// mallory's mailbox is root's private file: the session must not read it.
	m := s.dial(t)
	m.ok("USER mallory")
	if r := m.do("PASS pw"); !strings.HasPrefix(r, "-ERR") {
		t.Fatalf("mallory read a root-only file: %s", r)
	}
	if b, _ := os.ReadFile(secret); !strings.Contains(string(b), "root's mail") {
		t.Fatal("root-only file changed")
	}
}

// A bulletin in bulldir reaches the user once, with its To: rewritten.
func TestBulletinReachesUserOnce(t *testing.T) {
	s := newSite(t)
	s.spool(t, "alice", msg("one", "first"))
	bulls := filepath.Join(s.dir, "bulls")
	os.Mkdir(bulls, 0755)
	writeFile(t, filepath.Join(bulls, "7"), "From root@example.org Sat Nov 28 09:00:00 2026\nTo: all\nSubject: maintenance\n\nDowntime tonight.\n", 0644)
	f, _ := os.OpenFile(s.config, os.O_APPEND|os.O_WRONLY, 0)
	fmt.Fprintf(f, "set bulldir = \"%s\"\n", bulls)
	f.Close()
	if os.Getuid() == 0 {
		os.Chown(s.dir, s.uid, s.gid) // the user's home holds ~/.popbull
	}
	for round, want := range []string{"2 visible messages", "2 visible messages"} {
		c := s.dial(t)
		c.ok("USER alice")
		if r := c.ok("PASS secret"); !strings.Contains(r, want) {
			t.Fatalf("login %d: %q, want %q", round+1, r, want)
		}
		c.ok("RETR 2")
		body := strings.Join(c.multi(), "\n")
		if !strings.Contains(body, "Downtime tonight.") || !strings.Contains(body, "To: alice@") {
			t.Fatalf("login %d: message 2 is %q", round+1, body)
		}
		c.ok("QUIT")
	}
	if b, err := os.ReadFile(filepath.Join(s.dir, ".popbull")); err != nil || string(b) != "7\n" {
		t.Fatalf(".popbull = %q, %v", b, err)
	}
}

// A "-no-mime" login gets MIME mail as plain text (qpopper's mangling);
// the spool keeps the original.
func TestNoMIMELoginGetsPlainText(t *testing.T) {
	s := newSite(t)
	mime := "From sender@example.org Sat Nov 28 10:00:00 2026\nSubject: report\nMIME-Version: 1.0\n" +
		"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\n" +
		"caf=C3=A9 at noon\n--b\nContent-Type: application/pdf; name=r.pdf\nContent-Transfer-Encoding: base64\n\nJVBERi0xLjQK\n--b--\n\n"
	sp := s.spool(t, "alice", mime)
	c := s.dial(t)
	c.ok("USER alice-no-mime")
	c.ok("PASS secret")
	if r := c.ok("RETR 1"); r != "+OK Message follows" {
		t.Fatalf("RETR reply %q", r)
	}
	body := strings.Join(c.multi(), "\n")
	for _, want := range []string{"Subject: report", "Content-Type: text/plain; charset=us-ascii", "caf\xc3\xa9 at noon", `[application/pdf "r.pdf" part not shown: 9 octets]`} {
		if !strings.Contains(body, want) {
			t.Errorf("mangled RETR lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "JVBERi0xLjQK") {
		t.Errorf("attachment sent:\n%s", body)
	}
	c.ok("QUIT")
	c.cmd.Wait()
	got, _ := os.ReadFile(sp)
	if !strings.Contains(string(got), "JVBERi0xLjQK") || !strings.Contains(string(got), "caf=C3=A9") {
		t.Fatalf("spool changed by mangling:\n%s", got)
	}
	trace, _ := os.ReadFile(s.trace)
	if !strings.Contains(string(trace), `POP login by user "alice"`) {
		t.Errorf("login not logged as alice:\n%s", trace)
	}
}

// SIGHUP or SIGTERM mid-session: qpopper's hangup reply, and the session
// ends in order (update-on-abort commits the DELE; no temp drop is left).
func TestHangupSignalEndsSessionInOrder(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGTERM} {
		s := newSite(t)
		sp := s.spool(t, "alice", msg("one", "first")+msg("two", "second"))
		c := s.dial(t)
		c.ok("USER alice")
		c.ok("PASS secret")
		c.ok("DELE 1")
		c.cmd.Process.Signal(sig)
		if r := c.line(); !strings.HasPrefix(r, "-ERR POP hangup from ") {
			t.Fatalf("%v: %q", sig, r)
		}
		c.cmd.Wait()
		got, _ := os.ReadFile(sp)
		if strings.Contains(string(got), "<one@") || !strings.Contains(string(got), "<two@") {
			t.Fatalf("%v: spool after hangup:\n%s", sig, got)
		}
		if _, err := os.Lstat(filepath.Join(s.spoolDir, ".alice.pop")); err == nil {
			t.Fatalf("%v: temp drop left behind", sig)
		}
		if trace, _ := os.ReadFile(s.trace); !strings.Contains(string(trace), "alice at ") || !strings.Contains(string(trace), "-ERR POP hangup from ") {
			t.Fatalf("%v: trace:\n%s", sig, trace)
		}
	}
}
