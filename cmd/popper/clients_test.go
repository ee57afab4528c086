package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// End to end with the real parts a site uses: popper started by a real
// inetd (openbsd-inetd) or by systemd-socket-activate in inetd mode, mail
// fetched by curl, Python's poplib and fetchmail, and delivered during a
// session by procmail. scripts/test installs all of them; a missing one
// skips its test with the reason.

// sampleMessages are realistic messages in a spool: a dot-started line, a
// ">From " body line, a Content-Length header, 8-bit text, a long line, a
// 2 MB message, and a last message without a final newline.
func sampleMessages() []string {
	hdr := func(id, subj string) string {
		return fmt.Sprintf("From sender@example.org Sat Nov 28 10:%02d:00 2026\nReturn-Path: <sender@example.org>\n"+
			"Received: from mx.example.org by mail.example.org; Sat, 28 Nov 2026 10:00:00 +0000\n"+
			"Date: Sat, 28 Nov 2026 10:00:00 +0000\nFrom: Sender <sender@example.org>\nTo: alice@example.org\n"+
			"Message-ID: <%s@example.org>\nSubject: %s\n", len(id), id, subj)
	}
	big := strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.,\n", 2<<20/64)
	return []string{
		hdr("plain", "plain text") + "\nHello Alice,\n\nsee you on Friday.\n\n",
		hdr("dots", "dots") + "\n.starts with a dot\n..two dots\n.\nend\n\n",
		hdr("from", "quoted from") + "\nBody text\n>From the archives, quoted by the MDA\n\n",
		hdr("clen", "content length") + "Content-Length: 12\n\nTwelve bytes\n\n",
		hdr("utf8", "=?UTF-8?Q?Gr=C3=BC=C3=9Fe?=") + "MIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\n\nGrüße, naïve café — " + strings.Repeat("long line ", 200) + "\n\n",
		hdr("multi", "multipart") + "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b1\"\n\n" +
			"This is a MIME message.\n\n--b1\nContent-Type: text/plain\n\npart one\n.\n--b1\nContent-Type: application/octet-stream\n" +
			"Content-Transfer-Encoding: base64\n\nAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n--b1--\n\n",
		hdr("big", "two megabytes") + "\n" + big + "\n",
		hdr("last", "no final newline") + "\nthe end, without a newline",
	}
}

// wireForm is what a client receives for a stored message: the From line
// removed, Content-Length lines removed (qpopper strips them in RETR), and
// a final newline supplied. The X-UIDL line the server inserts is removed
// from the received side before comparing.
func wireForm(stored string) string {
	_, rest, _ := strings.Cut(stored, "\n")
	head, body, _ := strings.Cut(rest, "\n\n")
	var kept []string
	for _, l := range strings.Split(head, "\n") {
		if !strings.HasPrefix(strings.ToLower(l), "content-length:") {
			kept = append(kept, l)
		}
	}
	out := strings.Join(kept, "\n") + "\n\n" + body
	if !strings.HasSuffix(out, "\n") {
		out += "\n"
	}
	return out
}

// received normalises what a client saved: CRLF to LF, the X-UIDL line
// the server inserts and the Status: line qpopper's update writes back
// (Status: U for a message not yet retrieved) removed.
func received(b []byte) string {
	s := strings.ReplaceAll(string(b), "\r\n", "\n")
	var out []string
	inHeader := true
	for _, l := range strings.SplitAfter(s, "\n") {
		if inHeader && (strings.HasPrefix(l, "X-UIDL: ") || strings.HasPrefix(l, "Status: ")) {
			continue
		}
		if l == "\n" {
			inHeader = false
		}
		out = append(out, l)
	}
	return strings.Join(out, "")
}

func need(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (scripts/test installs it)", tool)
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func waitPort(t *testing.T, port int) {
	t.Helper()
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nothing listens on port %d", port)
}

// viaInetd serves the site through a real openbsd-inetd on a free port,
// with an inetd.conf line like a site's.
func (s *site) viaInetd(t *testing.T, extra ...string) int {
	t.Helper()
	return s.viaInetdBinary(t, popperBin, extra...)
}

// viaInetdBinary is viaInetd with another build of popper.
func (s *site) viaInetdBinary(t *testing.T, bin string, extra ...string) int {
	t.Helper()
	need(t, "/usr/sbin/inetd")
	port := freePort(t)
	who := "root"
	if os.Getuid() != 0 {
		u, err := user.Current()
		if err != nil {
			t.Skip(err)
		}
		who = u.Username
	}
	args := strings.Join(append([]string{"popper", "-s"}, s.args(extra...)...), " ")
	conf := filepath.Join(s.dir, "inetd.conf")
	writeFile(t, conf, fmt.Sprintf("127.0.0.1:%d stream tcp nowait %s %s %s\n", port, who, bin, args), 0644)
	cmd := exec.Command("/usr/sbin/inetd", "-i", conf)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitPort(t, port)
	return port
}

// viaSocketActivate serves the site through systemd-socket-activate in
// inetd mode (Accept=yes, the socket on fd 0).
func (s *site) viaSocketActivate(t *testing.T) int {
	t.Helper()
	need(t, "systemd-socket-activate")
	port := freePort(t)
	cmd := exec.Command("systemd-socket-activate", append([]string{"-l", fmt.Sprintf("127.0.0.1:%d", port), "-a", "--inetd",
		popperBin, "-s"}, s.args()...)...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitPort(t, port)
	return port
}

func TestCurlThroughInetdAndSocketActivation(t *testing.T) {
	need(t, "curl")
	for _, via := range []string{"inetd", "systemd-socket-activate"} {
		t.Run(via, func(t *testing.T) {
			s := newSite(t)
			msgs := sampleMessages()
			s.spool(t, "alice", strings.Join(msgs, ""))
			var port int
			if via == "inetd" {
				port = s.viaInetd(t)
			} else {
				port = s.viaSocketActivate(t)
			}
			for i, m := range msgs {
				out, err := exec.Command("curl", "-s", "--max-time", "20", fmt.Sprintf("pop3://alice:secret@127.0.0.1:%d/%d", port, i+1)).Output()
				if err != nil {
					t.Fatalf("curl RETR %d: %v", i+1, err)
				}
				if got, want := received(out), wireForm(m); got != want {
					t.Fatalf("message %d differs: got %d bytes, want %d\n%.300q\n%.300q", i+1, len(got), len(want), got, want)
				}
			}
		})
	}
}

const poplibScript = `
import poplib, sys, json
port, delete = int(sys.argv[1]), [int(x) for x in sys.argv[2].split(",") if x]
p = poplib.POP3("127.0.0.1", port, timeout=30)
p.user("alice"); p.pass_("secret")
count, size = p.stat()
uidl = [l.decode() for l in p.uidl()[1]]
msgs = []
for i in range(1, count + 1):
    resp, lines, octets = p.retr(i)
    msgs.append(b"\n".join(lines).decode("latin-1") + "\n")
if len(sys.argv) > 3:
    sys.stdout.write(json.dumps({"waiting": True}) + "\n"); sys.stdout.flush()
    sys.stdin.readline()
for d in delete:
    p.dele(d)
print(json.dumps({"count": count, "uidl": uidl, "msgs": msgs, "quit": p.quit().decode()}))
`

func TestPoplibDeleteQuitAndStableUIDs(t *testing.T) {
	need(t, "python3")
	s := newSite(t)
	msgs := sampleMessages()
	sp := s.spool(t, "alice", strings.Join(msgs, ""))
	port := s.viaInetd(t)
	script := filepath.Join(s.dir, "fetch.py")
	writeFile(t, script, poplibScript, 0644)
	run := func(del string) string {
		out, err := exec.Command("python3", script, fmt.Sprint(port), del).CombinedOutput()
		if err != nil {
			t.Fatalf("poplib: %v\n%s", err, out)
		}
		return string(out)
	}
	first := run("")
	for i, m := range msgs {
		// poplib strips the line ends and undoes the byte-stuffing.
		want := wireForm(m)
		if !strings.Contains(first, jsonString(want[strings.Index(want, "Message-ID"):])) && !strings.Contains(first, fmt.Sprintf("<%s@example.org>", idOf(m))) {
			t.Fatalf("message %d missing from poplib output", i+1)
		}
	}
	second := run("2,4")
	if uidlOf(first) != uidlOf(second) {
		t.Fatalf("UIDL changed between sessions:\n%s\n%s", uidlOf(first), uidlOf(second))
	}
	got, _ := os.ReadFile(sp)
	for i, m := range msgs {
		present := bytes.Contains(got, []byte(fmt.Sprintf("<%s@example.org>", idOf(m))))
		if deleted := i == 1 || i == 3; present == deleted {
			t.Errorf("message %d (%s): present=%v after DELE 2, DELE 4, QUIT", i+1, idOf(m), present)
		}
	}
}

func idOf(m string) string {
	i := strings.Index(m, "Message-ID: <")
	j := strings.Index(m[i:], "@")
	return m[i+len("Message-ID: <") : i+j]
}

func uidlOf(jsonOut string) string {
	i := strings.Index(jsonOut, `"uidl": [`)
	j := strings.Index(jsonOut[i:], "]")
	return jsonOut[i : i+j]
}

func jsonString(s string) string { return strings.ReplaceAll(s, "\n", `\n`)[:40] }

func TestFetchmailFetchesEveryMessageByteIdentical(t *testing.T) {
	need(t, "fetchmail")
	s := newSite(t)
	msgs := sampleMessages()
	s.spool(t, "alice", strings.Join(msgs, ""))
	port := s.viaInetd(t)
	out := filepath.Join(s.dir, "fetched")
	os.Mkdir(out, 0755)
	rc := filepath.Join(s.dir, "fetchmailrc")
	writeFile(t, rc, fmt.Sprintf("set no syslog\nset no bouncemail\npoll 127.0.0.1 port %d protocol pop3 uidl:\n"+
		"  user alice password secret is root here\n  mda \"/bin/sh -c 'cat > %s/msg.$$'\"\n  fetchall nokeep sslproto ''\n", port, out), 0600)
	cmd := exec.Command("fetchmail", "-f", rc, "--invisible", "--nosoftbounce", "-v")
	cmd.Env = append(os.Environ(), "HOME="+s.dir, "FETCHMAILHOME="+s.dir)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("fetchmail: %v\n%s", err, b)
	}
	sameMessages(t, "fetchmail", receivedFiles(t, filepath.Join(out, "msg.*")), msgs)
	// nokeep: fetchmail deleted them all, and the session committed that.
	s.spoolEmpty(t, "fetchmail")
}

func TestProcmailDeliveryDuringSessionSurvives(t *testing.T) {
	need(t, "procmail", "python3")
	s := newSite(t)
	msgs := sampleMessages()[:3]
	sp := s.spool(t, "alice", strings.Join(msgs, ""))
	port := s.viaInetd(t)
	script := filepath.Join(s.dir, "fetch.py")
	writeFile(t, script, poplibScript, 0644)
	py := exec.Command("python3", script, fmt.Sprint(port), "1,2,3", "wait")
	stdin, _ := py.StdinPipe()
	stdout, _ := py.StdoutPipe()
	var stderr bytes.Buffer
	py.Stderr = &stderr
	if err := py.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until the session holds the mailbox, then deliver with procmail
	// (dotlock + fcntl, as on a real host).
	pyOut := bufio.NewReader(stdout)
	if l, err := pyOut.ReadString('\n'); err != nil || !strings.Contains(l, "waiting") {
		t.Fatalf("poplib did not log in: %q %v\n%s", l, err, stderr.String())
	}
	rc := filepath.Join(s.dir, "procmailrc")
	writeFile(t, rc, fmt.Sprintf("LOCKTIMEOUT=60\n:0:\n%s\n", sp), 0644)
	deliver := exec.Command("procmail", "-m", rc)
	deliver.Stdin = strings.NewReader("From: late@example.org\nMessage-ID: <late@example.org>\nSubject: late\n\narrived during the session\n")
	if b, err := deliver.CombinedOutput(); err != nil {
		t.Fatalf("procmail: %v\n%s", err, b)
	}
	stdin.Write([]byte("\n"))
	rest, _ := io.ReadAll(pyOut)
	if err := py.Wait(); err != nil {
		t.Fatalf("poplib: %v\n%s%s", err, rest, stderr.String())
	}
	got, _ := os.ReadFile(sp)
	if !bytes.Contains(got, []byte("<late@example.org>")) {
		t.Fatalf("mail delivered during the session was lost; spool:\n%s", got)
	}
	for _, m := range msgs {
		if bytes.Contains(got, []byte(fmt.Sprintf("<%s@example.org>", idOf(m)))) {
			t.Fatalf("deleted message %s still in the spool", idOf(m))
		}
	}
}

// receivedFiles reads the message files matching the patterns, each
// normalised by received, in sorted order.
func receivedFiles(t *testing.T, patterns ...string) []string {
	t.Helper()
	var got []string
	for _, pat := range patterns {
		files, _ := filepath.Glob(pat)
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, received(b))
		}
	}
	sort.Strings(got)
	return got
}

// maildirMessages reads every message file of a maildir's new/ and cur/.
func maildirMessages(t *testing.T, dir string) []string {
	return receivedFiles(t, filepath.Join(dir, "new", "*"), filepath.Join(dir, "cur", "*"))
}

// spoolEmpty checks that a client's DELEs of every message were committed.
func (s *site) spoolEmpty(t *testing.T, client string) {
	t.Helper()
	if sp, _ := os.ReadFile(filepath.Join(s.spoolDir, "alice")); len(sp) != 0 {
		t.Fatalf("%s deleted every message, but the spool still has %d bytes", client, len(sp))
	}
}

func mkMaildir(t *testing.T, dir string) {
	t.Helper()
	for _, sub := range []string{"new", "cur", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0700); err != nil {
			t.Fatal(err)
		}
	}
}

func sameMessages(t *testing.T, client string, got []string, msgs []string) {
	t.Helper()
	var want []string
	for _, m := range msgs {
		want = append(want, wireForm(m))
	}
	sort.Strings(want)
	if len(got) != len(want) {
		t.Fatalf("%s fetched %d messages, want %d", client, len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%s: fetched message differs:\n%.400q\nwant\n%.400q", client, got[i], want[i])
		}
	}
}

func TestMpopAndGetmailFetchByteIdentical(t *testing.T) {
	msgs := sampleMessages()
	t.Run("mpop", func(t *testing.T) {
		need(t, "mpop")
		s := newSite(t)
		s.spool(t, "alice", strings.Join(msgs, ""))
		port := s.viaInetd(t)
		md := filepath.Join(s.dir, "mpop-maildir")
		mkMaildir(t, md)
		rc := filepath.Join(s.dir, "mpoprc")
		writeFile(t, rc, fmt.Sprintf("account default\nhost 127.0.0.1\nport %d\nuser alice\npassword secret\nauth user\ntls off\n"+
			"delivery maildir %s\nkeep on\nreceived_header off\nuidls_file %s/mpop_uidls\n", port, md, s.dir), 0600)
		if b, err := exec.Command("mpop", "-C", rc, "-a").CombinedOutput(); err != nil {
			t.Fatalf("mpop: %v\n%s", err, b)
		}
		sameMessages(t, "mpop", maildirMessages(t, md), msgs)
	})
	t.Run("getmail", func(t *testing.T) {
		need(t, "getmail")
		s := newSite(t)
		s.spool(t, "alice", strings.Join(msgs, ""))
		port := s.viaInetd(t)
		md := filepath.Join(s.dir, "gm-maildir")
		mkMaildir(t, md)
		rc := filepath.Join(s.dir, "getmailrc")
		writeFile(t, rc, fmt.Sprintf("[retriever]\ntype = SimplePOP3Retriever\nserver = 127.0.0.1\nport = %d\nusername = alice\npassword = secret\n\n"+
			"[destination]\ntype = Maildir\npath = %s/\n\n[options]\nread_all = true\ndelete = true\ndelivered_to = false\nreceived = false\nmessage_log_syslog = false\n", port, md), 0600)
		gmdir := filepath.Join(s.dir, "getmail")
		os.Mkdir(gmdir, 0700)
		cmd := exec.Command("getmail", "--getmaildir", gmdir, "--rcfile", rc, "--quiet")
		if os.Getuid() == 0 {
			// getmail refuses to deliver as root: run it as the mail user.
			for _, p := range []string{gmdir, rc, md, md + "/new", md + "/cur", md + "/tmp"} {
				os.Chown(p, s.uid, s.gid)
			}
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(s.uid), Gid: uint32(s.gid)}}
			cmd.Env = append(os.Environ(), "HOME="+gmdir)
		}
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("getmail: %v\n%s", err, b)
		}
		// getmail's Python email parser refolds header lines longer than
		// 78 characters when it writes them: compare unfolded headers.
		unfold := func(m string) string {
			head, body, _ := strings.Cut(m, "\n\n")
			return strings.ReplaceAll(head, ";\n ", "; ") + "\n\n" + body
		}
		var got []string
		for _, m := range maildirMessages(t, md) {
			got = append(got, unfold(m))
		}
		sort.Strings(got)
		sameMessages(t, "getmail", got, msgs)
		s.spoolEmpty(t, "getmail")
	})
}

func TestNmhInc(t *testing.T) {
	inc := "/usr/bin/mh/inc"
	if _, err := os.Stat(inc); err != nil {
		t.Skip("nmh not installed (scripts/test installs it)")
	}
	msgs := sampleMessages()
	s := newSite(t)
	s.spool(t, "alice", strings.Join(msgs, ""))
	port := s.viaInetd(t)
	home := filepath.Join(s.dir, "mh")
	os.MkdirAll(filepath.Join(home, "Mail", "inbox"), 0700)
	writeFile(t, filepath.Join(home, ".mh_profile"), "Path: Mail\n", 0600)
	writeFile(t, filepath.Join(home, ".netrc"), "machine 127.0.0.1 login alice password secret\n", 0600)
	cmd := exec.Command(inc, "-host", "127.0.0.1", "-port", fmt.Sprint(port), "-user", "alice")
	cmd.Env = append(os.Environ(), "HOME="+home, "MH="+filepath.Join(home, ".mh_profile"))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("inc: %v\n%s", err, b)
	}
	sameMessages(t, "inc", receivedFiles(t, filepath.Join(home, "Mail", "inbox", "[0-9]*")), msgs)
	// inc deletes what it incorporated.
	s.spoolEmpty(t, "inc")
}

// A site's qpopper configuration runs unchanged: the sample config of a
// Debian-style host (spool /var/mail, 2775 root:mail) and its inetd.conf
// line, with only --userdb added because system accounts come later.
func TestSampleQpopperConfigUnchanged(t *testing.T) {
	need(t, "/usr/sbin/inetd", "curl")
	if os.Getuid() != 0 {
		t.Skip("needs root: the sample config serves /var/mail and the system's accounts")
	}
	if fi, err := os.Stat("/var/mail"); err != nil || !fi.IsDir() {
		t.Skip("no /var/mail")
	}
	conf, err := filepath.Abs("../../compat/testdata/qpopper.config")
	if err != nil {
		t.Fatal(err)
	}
	// A real Unix user with chpasswd's default hash (yescrypt on Debian):
	// the inetd.conf line below is qpopper's with only the path changed.
	s := systemSite(t)
	u := addSysUser(t, s, "default", "secret", "")
	name := u.name
	sp := filepath.Join("/var/mail", name)
	msgs := sampleMessages()[:4]
	writeFile(t, sp, strings.Join(msgs, ""), 0660)
	os.Chown(sp, u.uid, -1)
	t.Cleanup(func() {
		// The spool, its lock, and what popper keeps beside it (the temp
		// drop, the index .NAME.cache).
		beside, _ := filepath.Glob(filepath.Join("/var/mail", "."+name+".*"))
		for _, p := range append([]string{sp, sp + ".lock"}, beside...) {
			os.Remove(p)
		}
	})
	port := freePort(t)
	inetdConf := filepath.Join(s.dir, "inetd.conf")
	writeFile(t, inetdConf, fmt.Sprintf("127.0.0.1:%d stream tcp nowait root %s popper -s -f %s\n", port, popperBin, conf), 0644)
	cmd := exec.Command("/usr/sbin/inetd", "-i", inetdConf)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitPort(t, port)
	for i, m := range msgs {
		out, err := exec.Command("curl", "-s", "--max-time", "20", fmt.Sprintf("pop3://%s:secret@127.0.0.1:%d/%d", name, port, i+1)).Output()
		if err != nil {
			t.Fatalf("curl RETR %d: %v", i+1, err)
		}
		if got, want := received(out), wireForm(m); got != want {
			t.Fatalf("message %d differs:\n%.300q\n%.300q", i+1, got, want)
		}
	}
	dele := fmt.Sprintf("import poplib; p = poplib.POP3('127.0.0.1', %d, timeout=20); p.user('%s'); p.pass_('secret'); p.dele(1); p.quit()", port, name)
	if out, err := exec.Command("python3", "-c", dele).CombinedOutput(); err != nil {
		t.Fatalf("poplib DELE 1: %v\n%s", err, out)
	}
	got, _ := os.ReadFile(sp)
	if strings.Contains(string(got), "<plain@") || !strings.Contains(string(got), "<dots@") {
		t.Fatalf("after DELE 1 and QUIT the spool holds:\n%.500s", got)
	}
}

// A systemd socket unit with Accept=yes but without StandardInput=socket
// passes the connection on fd 3 (LISTEN_FDS=1) and leaves fd 0 alone.
func TestSystemdAcceptYesOnFD3(t *testing.T) {
	need(t, "systemd-socket-activate")
	s := newSite(t)
	s.spool(t, "alice", msg("one", "first"))
	port := freePort(t)
	cmd := exec.Command("systemd-socket-activate", "-l", fmt.Sprintf("127.0.0.1:%d", port), "-a",
		popperBin, "-f", s.config, "-t", s.trace, "--userdb", s.userdb)
	cmd.Stdin = nil // /dev/null: not a socket
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitPort(t, port)
	conn, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	c := &client{t: t, conn: conn, r: bufio.NewReader(conn)}
	defer conn.Close()
	if g := c.line(); !strings.HasPrefix(g, "+OK Qpopper (version ") {
		trace, _ := os.ReadFile(s.trace)
		t.Fatalf("greeting %q; trace:\n%s", g, trace)
	}
	c.ok("USER alice")
	if r := c.ok("PASS secret"); !strings.Contains(r, "1 visible message") {
		t.Fatalf("PASS: %q", r)
	}
	c.ok("QUIT")
}
