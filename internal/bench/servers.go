package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// server is one POP3 server under test, on its own loopback port and its
// own copy of the spool.
type server struct {
	name     string // column heading
	key      string // file-name-safe name
	port     int
	spool    string   // the test user's mailbox
	dataDirs []string // writes under these are mail/index bytes
	state    []string // what a snapshot saves: the spool, the index
	cmd      *exec.Cmd
	sessions map[string]bool // comm names of per-session processes
	clean    func() error    // remove locks, temp drops, indexes
}

func (s *server) supervisor() int         { return s.cmd.Process.Pid }
func (s *server) isSession(c string) bool { return s.sessions[c] }

type account struct {
	name, pass string
	uid, gid   int // gid: the mail group, for the spool file
}

var (
	procMu sync.Mutex
	procs  = map[int]bool{}
)

// register records a process this program started in work/pids, so that
// scripts/bench's trap can end it by its id if this program dies.
func register(pid int) {
	procMu.Lock()
	defer procMu.Unlock()
	procs[pid] = true
	writePids()
}

func unregister(pid int) {
	procMu.Lock()
	defer procMu.Unlock()
	delete(procs, pid)
	writePids()
}

func writePids() {
	var b strings.Builder
	for p := range procs {
		fmt.Fprintln(&b, p)
	}
	os.WriteFile(filepath.Join(*workDir, "pids"), []byte(b.String()), 0600)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitListen(port int) error {
	for i := 0; i < 300; i++ {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("nothing listens on 127.0.0.1:%d", port)
}

func startCmd(cmd *exec.Cmd, logPath string) error {
	lf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		return err
	}
	register(cmd.Process.Pid)
	return nil
}

// stop ends the server's supervisor (inetd or Dovecot's master), which
// ends its children.
func (s *server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
	unregister(s.cmd.Process.Pid)
}

// viaInetd serves argv through a real openbsd-inetd on a loopback port,
// one process per connection, as qpopper sites run.
func viaInetd(s *server, dir string, argv ...string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	s.port = port
	conf := filepath.Join(dir, "inetd.conf")
	// nowait.N and -R: inetd's default limit (256 a minute) would
	// stop a sessions-per-second run.
	line := fmt.Sprintf("127.0.0.1:%d stream tcp nowait.1000000 root %s\n", port, strings.Join(argv, " "))
	if err := os.WriteFile(conf, []byte(line), 0644); err != nil {
		return err
	}
	s.cmd = exec.Command(*inetdBin, "-i", "-R", "1000000", conf)
	if err := startCmd(s.cmd, filepath.Join(dir, "inetd.log")); err != nil {
		return err
	}
	return waitListen(port)
}

func mkdirOwned(path string, mode os.FileMode, uid, gid int) error {
	if err := os.MkdirAll(path, mode); err != nil {
		return err
	}
	if err := os.Chmod(path, mode); err != nil {
		return err
	}
	return os.Chown(path, uid, gid)
}

// spoolDir is a directory like Debian's /var/mail: root:mail 2775.
func spoolDir(path string, mailGid int) error {
	return mkdirOwned(path, 0o775|os.ModeSetgid, 0, mailGid)
}

func newPopper(acct account, work, popperBin string, serverMode bool) (*server, error) {
	key := "popper"
	name := "popper"
	if serverMode {
		key, name = "popper-S", "popper -S"
	}
	dir := filepath.Join(work, "srv", key)
	mail := filepath.Join(dir, "mail")
	if err := os.MkdirAll(dir, 0755); err != nil {
		return nil, err
	}
	if err := spoolDir(mail, acct.gid); err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "popper.config")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("set spool-dir = %q\n", mail)), 0644); err != nil {
		return nil, err
	}
	s := &server{name: name, key: key, spool: filepath.Join(mail, acct.name),
		dataDirs: []string{mail + "/"}, sessions: map[string]bool{"popper": true}}
	s.state = []string{s.spool}
	s.clean = func() error {
		drops, _ := filepath.Glob(filepath.Join(mail, "."+acct.name+".pop*"))
		for _, d := range append(drops, s.spool+".lock") {
			os.Remove(d)
		}
		return nil
	}
	// The README's inetd.conf line for qpopper's replacement.
	argv := []string{popperBin, "popper", "-s"}
	if serverMode {
		argv = append(argv, "-S")
	}
	argv = append(argv, "-f", cfg)
	return s, viaInetd(s, dir, argv...)
}

func newPopa3d(acct account, work, bin string) (*server, error) {
	dir := filepath.Join(work, "srv", "popa3d")
	if err := os.MkdirAll(dir, 0755); err != nil {
		return nil, err
	}
	// popa3d's spool directory is compiled in: /var/mail.
	s := &server{name: "popa3d", key: "popa3d", spool: filepath.Join("/var/mail", acct.name),
		dataDirs: []string{filepath.Join("/var/mail", acct.name)}, sessions: map[string]bool{"popa3d": true}}
	s.state = []string{s.spool}
	s.clean = func() error {
		os.Remove(s.spool + ".lock")
		return nil
	}
	return s, viaInetd(s, dir, bin, "popa3d")
}

const dovecotConf = `# Dovecot 2.3 for scripts/bench: pop3 only, on loopback, mbox on the
# benchmark's own spool copy, the index on disk and kept between sessions.
base_dir = %[1]s/run
state_dir = %[1]s/state
instance_name = popper-bench
protocols = pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
log_path = %[1]s/dovecot.log
passdb {
  driver = shadow
}
userdb {
  driver = passwd
}
mail_location = mbox:%[1]s/home/%%u:INBOX=%[1]s/mail/%%u:INDEX=%[1]s/index/%%u
mail_privileged_group = mail
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = %[2]d
  }
}
`

func newDovecot(acct account, work string) (*server, error) {
	dir := filepath.Join(work, "srv", "dovecot")
	mail := filepath.Join(dir, "mail")
	index := filepath.Join(dir, "index")
	home := filepath.Join(dir, "home", acct.name)
	for _, d := range []string{dir, filepath.Join(dir, "run"), filepath.Join(dir, "state"), filepath.Join(dir, "home")} {
		if err := os.MkdirAll(d, 0755); err != nil {
			return nil, err
		}
	}
	if err := spoolDir(mail, acct.gid); err != nil {
		return nil, err
	}
	if err := mkdirOwned(index, 0755, 0, 0); err != nil {
		return nil, err
	}
	if err := mkdirOwned(home, 0700, acct.uid, acct.gid); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "dovecot.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(dovecotConf, dir, port)), 0644); err != nil {
		return nil, err
	}
	userIndex := filepath.Join(index, acct.name)
	s := &server{name: "Dovecot", key: "dovecot", port: port, spool: filepath.Join(mail, acct.name),
		dataDirs: []string{mail + "/", index + "/", filepath.Join(dir, "home") + "/"},
		sessions: map[string]bool{"pop3": true, "pop3-login": true}}
	s.state = []string{s.spool, userIndex}
	s.clean = func() error {
		os.Remove(s.spool + ".lock")
		if err := os.RemoveAll(userIndex); err != nil {
			return err
		}
		return mkdirOwned(userIndex, 0700, acct.uid, acct.gid)
	}
	if err := s.clean(); err != nil {
		return nil, err
	}
	s.cmd = exec.Command(*dovecotBin, "-F", "-c", conf)
	if err := startCmd(s.cmd, filepath.Join(dir, "master.log")); err != nil {
		return nil, err
	}
	return s, waitListen(port)
}

// install puts a fresh copy of ref in place of the server's spool, as a
// delivery would leave it (owner the user, group mail, 0660), after
// removing its locks, temp drops and index.
func (s *server) install(ref string, acct account) error {
	if err := s.clean(); err != nil {
		return err
	}
	if err := copyFile(ref, s.spool); err != nil {
		return err
	}
	if err := os.Chown(s.spool, acct.uid, acct.gid); err != nil {
		return err
	}
	if err := os.Chmod(s.spool, 0660); err != nil {
		return err
	}
	// Delivered a few seconds ago, not this second: popa3d waits a
	// second before it reads a mailbox modified in the current one.
	then := time.Now().Add(-5 * time.Second)
	return os.Chtimes(s.spool, then, then)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0660)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// copyTree copies a file or a directory tree, keeping modes, owners and
// modification times (Dovecot validates its mbox index by size and
// mtime).
func copyTree(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0755); err != nil {
		return err
	}
	return filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		t := filepath.Join(dst, rel)
		st := fi.Sys().(*syscall.Stat_t)
		if fi.IsDir() {
			if err := os.MkdirAll(t, fi.Mode().Perm()); err != nil {
				return err
			}
		} else if err := copyFile(p, t); err != nil {
			return err
		}
		os.Chmod(t, fi.Mode()&(os.ModePerm|os.ModeSetgid|os.ModeSticky))
		os.Lchown(t, int(st.Uid), int(st.Gid))
		return os.Chtimes(t, fi.ModTime(), fi.ModTime())
	})
}

// snapshot saves the server's state (spool, index) after it has served
// the spool once; restore puts it back, so that every mutating
// measurement starts from the same state.
func (s *server) snapshot(work string) error {
	dir := filepath.Join(work, "snap", s.key)
	os.RemoveAll(dir)
	for i, p := range s.state {
		if err := copyTree(p, filepath.Join(dir, strconv.Itoa(i))); err != nil {
			return err
		}
	}
	return nil
}

func (s *server) restore(work string) error {
	if err := s.clean(); err != nil {
		return err
	}
	dir := filepath.Join(work, "snap", s.key)
	for i, p := range s.state {
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			os.RemoveAll(p)
		}
		if err := copyTree(filepath.Join(dir, strconv.Itoa(i)), p); err != nil {
			return err
		}
	}
	return nil
}

func lookupAccount(name, pass string) (account, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return account{}, err
	}
	g, err := user.LookupGroup("mail")
	if err != nil {
		return account{}, err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(g.Gid)
	return account{name: name, pass: pass, uid: uid, gid: gid}, nil
}
