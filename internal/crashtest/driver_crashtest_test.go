//go:build crashtest

package crashtest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The driver runs a crash-test build of cmd/popper exactly as inetd
// would: the client connection is a socketpair end on fd 0 and 1.

// builds holds the crash-test builds of this test binary, one per package.
var builds struct {
	sync.Mutex
	bins map[string]string
}

// crashBinary builds a command of this module (./cmd/popper, ./cmd/popauth)
// with -tags crashtest, once per test binary.
func crashBinary(t *testing.T, pkg string) string {
	t.Helper()
	builds.Lock()
	defer builds.Unlock()
	if bin, ok := builds.bins[pkg]; ok {
		return bin
	}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	dir, err := os.MkdirTemp("", "popper-crashtest-bin")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-tags", "crashtest", "-o", bin, pkg)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build -tags crashtest %s: %v\n%s", pkg, err, out)
	}
	if builds.bins == nil {
		builds.bins = map[string]string{}
	}
	builds.bins[pkg] = bin
	return bin
}

// popper is the crash-test build of cmd/popper.
func popper(t *testing.T) string { return crashBinary(t, "./cmd/popper") }

const (
	testUser = "u"
	testPass = "secret"
)

// env is one spool directory with its configuration and user database.
type env struct {
	t        *testing.T
	bin      string
	root     string // holds config, userdb, logs
	spoolDir string
	config   string
	userdb   string
	uid, gid int
	server   bool     // -S
	extra    []string // more environment for popper (failpoints, op log)
	// mdaLog, when set, is the op log deliver records its writes in, so
	// that deliveries are inside the power-loss model.
	mdaLog string
}

func newEnv(t *testing.T, server bool) *env {
	t.Helper()
	e := &env{t: t, bin: popper(t), server: server, uid: os.Getuid(), gid: os.Getgid()}
	if e.uid == 0 {
		e.uid, e.gid = 65534, 65534
	}
	e.root = t.TempDir()
	// Every component above the spool must be searchable by the user.
	for d := e.root; d != "/" && d != "."; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o005 != 0o005 {
			os.Chmod(d, fi.Mode().Perm()|0o005)
		}
	}
	e.spoolDir = filepath.Join(e.root, "mail")
	if err := os.Mkdir(e.spoolDir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(e.spoolDir, os.ModeSticky|0o777)
	e.config = filepath.Join(e.root, "popper.conf")
	conf := fmt.Sprintf("set spool-dir = %s\nset temp-dir = %s\n", e.spoolDir, e.spoolDir)
	if err := os.WriteFile(e.config, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	e.userdb = filepath.Join(e.root, "userdb")
	db := fmt.Sprintf("%s:{PLAIN}%s:%d:%d:crash test:%s:/bin/sh\n", testUser, testPass, e.uid, e.gid, e.root)
	if err := os.WriteFile(e.userdb, []byte(db), 0o644); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) spoolPath() string { return filepath.Join(e.spoolDir, testUser) }

// put writes the spool directory's files (by name) owned by the user.
func (e *env) put(files map[string][]byte) {
	for n, d := range files {
		p := filepath.Join(e.spoolDir, n)
		if err := os.WriteFile(p, d, 0o600); err != nil {
			e.t.Fatal(err)
		}
		e.own(p)
	}
}

func (e *env) own(p string) {
	if os.Getuid() == 0 {
		if err := os.Chown(p, e.uid, e.gid); err != nil {
			e.t.Fatal(err)
		}
	}
}

// ownAll gives every file of the spool directory to the user (a
// materialized crash state is written by the test as root).
func (e *env) ownAll() {
	entries, _ := os.ReadDir(e.spoolDir)
	for _, de := range entries {
		e.own(filepath.Join(e.spoolDir, de.Name()))
	}
}

func (e *env) args() []string {
	a := []string{"-f", e.config, "--userdb", e.userdb}
	if e.server {
		a = append(a, "-S")
	}
	return a
}

// session is what a client saw.
type session struct {
	LoggedIn   bool
	QuitSent   bool
	QuitOK     bool
	Messages   [][]byte // what RETR returned, unstuffed, CRLF as LF
	Deleted    []string // Message-IDs DELE'd with +OK
	Retrieved  []string
	Transcript strings.Builder
	ExitErr    error
}

// plan is what a client does once logged in.
type plan struct {
	deleteIDs     map[string]bool // DELE these (after RETR of every message)
	deleteAll     bool
	afterLogin    func() // e.g. a delivery during the session
	dropAfterDele bool   // close the connection instead of QUIT
	noQuit        bool
	onQuitOK      func()            // called as soon as the QUIT +OK arrives
	killAfter     time.Duration     // SIGKILL popper this long after it started
	started       func(*os.Process) // told the popper process once it runs
	deleteIf      func(id string) bool
	afterRetr     func(n int) // after the reply to RETR n (and its DELE) was read
	beforeQuit    func()      // once every DELE is answered
	afterQuitSent func()      // as soon as QUIT is sent
}

var msgIDRe = regexp.MustCompile(`(?mi)^Message-ID:[ \t]*(\S+)`)

// run starts one inetd-mode session and drives it.
func (e *env) run(p plan, extraEnv ...string) *session {
	s := &session{}
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	child := os.NewFile(uintptr(fds[0]), "popper-side")
	mine := os.NewFile(uintptr(fds[1]), "client-side")
	conn, err := net.FileConn(mine)
	mine.Close()
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close()
	cmd := exec.Command(e.bin, e.args()...)
	cmd.Stdin, cmd.Stdout = child, child
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Env = append(append(os.Environ(), e.extra...), extraEnv...)
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	child.Close()
	if p.started != nil {
		p.started(cmd.Process)
	}
	if p.killAfter > 0 {
		timer := time.AfterFunc(p.killAfter, func() { cmd.Process.Signal(syscall.SIGKILL) })
		defer timer.Stop()
	}
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	r := bufio.NewReader(conn)
	line := func() (string, bool) {
		l, err := r.ReadString('\n')
		s.Transcript.WriteString("S: " + l)
		return strings.TrimRight(l, "\r\n"), err == nil
	}
	multi := func() ([]byte, bool) {
		var b bytes.Buffer
		for {
			l, ok := line()
			if !ok {
				return nil, false
			}
			if l == "." {
				return b.Bytes(), true
			}
			l = strings.TrimPrefix(l, ".")
			b.WriteString(l + "\n")
		}
	}
	send := func(c string) bool {
		s.Transcript.WriteString("C: " + c + "\n")
		_, err := conn.Write([]byte(c + "\r\n"))
		return err == nil
	}
	ok := func(l string, good bool) bool { return good && strings.HasPrefix(l, "+OK") }
	func() {
		if l, g := line(); !ok(l, g) {
			return
		}
		if !send("USER " + testUser) {
			return
		}
		if l, g := line(); !ok(l, g) {
			return
		}
		send("PASS " + testPass)
		if l, g := line(); !ok(l, g) {
			return
		}
		s.LoggedIn = true
		if p.afterLogin != nil {
			p.afterLogin()
		}
		send("LIST")
		l, g := line()
		if !ok(l, g) {
			return
		}
		list, g := multi()
		if !g {
			return
		}
		n := len(strings.Split(strings.TrimSpace(string(list)), "\n"))
		if len(bytes.TrimSpace(list)) == 0 {
			n = 0
		}
		for i := 1; i <= n; i++ {
			send(fmt.Sprintf("RETR %d", i))
			if l, g := line(); !ok(l, g) {
				return
			}
			msg, g := multi()
			if !g {
				return
			}
			id := ""
			if m := msgIDRe.FindSubmatch(msg); m != nil {
				id = string(m[1])
			}
			s.Retrieved = append(s.Retrieved, id)
			s.Messages = append(s.Messages, msg)
			if p.deleteAll || p.deleteIDs[id] || p.deleteIf != nil && p.deleteIf(id) {
				send(fmt.Sprintf("DELE %d", i))
				if l, g := line(); !ok(l, g) {
					return
				}
				s.Deleted = append(s.Deleted, id)
			}
			if p.afterRetr != nil {
				p.afterRetr(i)
			}
		}
		if p.dropAfterDele || p.noQuit {
			return
		}
		if p.beforeQuit != nil {
			p.beforeQuit()
		}
		send("QUIT")
		s.QuitSent = true
		if p.afterQuitSent != nil {
			p.afterQuitSent()
		}
		if l, g := line(); ok(l, g) {
			s.QuitOK = true
			if p.onQuitOK != nil {
				p.onQuitOK()
			}
		}
	}()
	conn.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case s.ExitErr = <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		s.ExitErr = <-done
		e.t.Errorf("popper did not exit after the client closed")
	}
	if stderr.Len() > 0 {
		s.Transcript.WriteString("stderr: " + stderr.String())
	}
	return s
}

// recover runs popper --recover and returns its output and error.
func (e *env) recover(extraEnv ...string) (string, error) {
	cmd := exec.Command(e.bin, "--recover", "-f", e.config, "--userdb", e.userdb)
	cmd.Env = append(append(os.Environ(), e.extra...), extraEnv...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// deliver appends msg to the spool as a local delivery agent does on
// Linux: dotlock first, then an fcntl lock on the spool, append, unlock.
func (e *env) deliver(msg []byte) {
	lock := e.spoolPath() + ".lock"
	host, _ := os.Hostname()
	deadline := time.Now().Add(30 * time.Second)
	for {
		f, err := os.OpenFile(lock, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			fmt.Fprintf(f, "%d@%s", os.Getpid(), host)
			f.Close()
			break
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("deliver: dotlock %s busy for 30s", lock)
		}
		time.Sleep(20 * time.Millisecond)
	}
	defer os.Remove(lock)
	_, statErr := os.Lstat(e.spoolPath())
	f, err := os.OpenFile(e.spoolPath(), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	e.own(e.spoolPath())
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_SETLKW, &lk); err != nil {
		e.t.Fatal(err)
	}
	cur, _ := os.ReadFile(e.spoolPath())
	add := mdaAppend(cur, msg)[len(cur):]
	f.Seek(0, 2)
	f.Write(add)
	f.Sync()
	if statErr != nil { // a careful MDA makes a spool it creates durable
		if d, err := os.Open(e.spoolDir); err == nil {
			d.Sync()
			d.Close()
		}
	}
	if e.mdaLog != "" {
		w, err := OpenOpLogWriter(e.mdaLog)
		if err != nil {
			e.t.Fatal(err)
		}
		defer w.Close()
		var ops []Op
		if statErr != nil {
			ops = append(ops, Op{Kind: OpCreate, Path: e.spoolPath()}, Op{Kind: OpFsyncDir, Path: e.spoolDir})
		}
		ops = append(ops, Op{Kind: OpWrite, Path: e.spoolPath(), Off: int64(len(cur)), Data: add}, Op{Kind: OpFsync, Path: e.spoolPath()})
		for _, op := range ops {
			if err := w.Append(op); err != nil {
				e.t.Fatal(err)
			}
		}
	}
}

// testSpool is the mail every scenario starts with.
func testSpool(n int) []byte {
	var b bytes.Buffer
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "From sender%d@example.org Sat Nov 28 1%d:00:00 2026\n", i, i%10)
		fmt.Fprintf(&b, "From: sender%d@example.org\nTo: u@example.org\nSubject: message %d\n", i, i)
		fmt.Fprintf(&b, "Message-ID: <m%d@crashtest>\nDate: Sat, 28 Nov 2026 10:00:00 +0000\n\n", i)
		for j := 0; j < i*3; j++ {
			fmt.Fprintf(&b, "line %d of message %d\n", j, i)
		}
		if i == 2 {
			b.WriteString("From inside a body, not a separator\n>From quoted\n.leading dot\n")
		}
		b.WriteString("\n")
	}
	return b.Bytes()
}

// expect turns a finished (or killed) session into the manifest: messages
// DELE'd in a session whose QUIT +OK arrived must be gone, those DELE'd
// without it may go, everything else must survive.
func expect(t *testing.T, base Manifest, s *session, arrived ...[]byte) Manifest {
	m := append(Manifest(nil), base...)
	for _, id := range s.Deleted {
		if s.QuitOK {
			m = m.Set(id, MustGo)
		} else {
			m = m.Set(id, MayGo)
		}
	}
	for _, a := range arrived {
		am, err := ManifestOf(a, MustSurvive)
		if err != nil {
			t.Fatal(err)
		}
		m = append(m, am...)
	}
	return m
}

// verify runs the next login (which must succeed) and checks the spool
// directory. It returns the problems for the caller to report.
func (e *env) verify(label string, m Manifest) []string {
	var fails []string
	s := e.run(plan{})
	if !s.LoggedIn || !s.QuitOK {
		fails = append(fails, fmt.Sprintf("%s: recovery login failed (logged in %v, QUIT +OK %v)\n%s",
			label, s.LoggedIn, s.QuitOK, s.Transcript.String()))
	}
	probs, err := Check(e.spoolDir, m)
	if err != nil {
		fails = append(fails, label+": "+err.Error())
	}
	for _, p := range probs {
		fails = append(fails, label+": "+p.String())
	}
	if len(probs) > 0 {
		fails = append(fails, label+": directory: "+e.listing())
	}
	return fails
}

func (e *env) listing() string {
	entries, _ := os.ReadDir(e.spoolDir)
	var parts []string
	for _, de := range entries {
		fi, _ := de.Info()
		if fi != nil {
			parts = append(parts, fmt.Sprintf("%s(%d)", de.Name(), fi.Size()))
		}
	}
	return strings.Join(parts, " ")
}
