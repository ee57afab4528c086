package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The standalone daemon, run as a site runs it: popper ADDRESS with the
// site's flags and configuration, the real binary, real signals.

// daemon is a running standalone popper.
type daemon struct {
	t      *testing.T
	s      *site
	cmd    *exec.Cmd
	addr   string // host:port it listens on
	stderr *syncBuffer
	done   chan struct{}
	err    error // from Wait, once done is closed
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startDaemon runs popper 127.0.0.1:PORT with the site's arguments and
// extra, and waits until it listens.
func (s *site) startDaemon(t *testing.T, extra ...string) *daemon {
	t.Helper()
	return s.startDaemonCmd(t, nil, extra...)
}

// startDaemonCmd is startDaemon with a wrapper command (say, sh -c with
// a ulimit) in front of popper: wrap(args) returns the command to run.
func (s *site) startDaemonCmd(t *testing.T, wrap func(args []string) *exec.Cmd, extra ...string) *daemon {
	t.Helper()
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	args := append([]string{addr}, s.args(extra...)...)
	var cmd *exec.Cmd
	if wrap != nil {
		cmd = wrap(append([]string{popperBin}, args...))
	} else {
		cmd = exec.Command(popperBin, args...)
	}
	d := &daemon{t: t, s: s, cmd: cmd, addr: addr, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = d.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.err = cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			cmd.Process.Kill()
			<-d.done
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	started := fmt.Sprintf(" started: listening on %s, pid %d, ", addr, cmd.Process.Pid)
	for !strings.Contains(d.log(), started) && !strings.Contains(d.stderr.String(), started) {
		select {
		case <-d.done:
			t.Fatalf("the daemon exited: %v\nstderr: %s\nlog: %s", d.err, d.stderr, d.log())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon did not start\nstderr: %s\nlog: %s", d.stderr, d.log())
		}
	}
	return d
}

// log is the trace file, where the daemon and its sessions log.
func (d *daemon) log() string {
	b, _ := os.ReadFile(d.s.trace)
	return string(b)
}

// waitLog waits for text to appear in the log.
func (d *daemon) waitLog(text string) {
	d.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(d.log(), text) {
		if time.Now().After(deadline) {
			d.t.Fatalf("the log never said %q:\n%s", text, d.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dialFrom connects from the local address src ("" = any) and reads the
// greeting.
func (d *daemon) dialFrom(t *testing.T, src string) (*client, string) {
	t.Helper()
	dialer := net.Dialer{Timeout: 10 * time.Second}
	if src != "" {
		dialer.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	conn, err := dialer.Dial("tcp", d.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &client{t: t, conn: conn, r: bufio.NewReader(conn)}
	return c, c.line()
}

func (d *daemon) dial(t *testing.T) *client {
	t.Helper()
	c, g := d.dialFrom(t, "")
	if !strings.HasPrefix(g, "+OK ") {
		t.Fatalf("greeting %q", g)
	}
	return c
}

// signal sends sig to the daemon.
func (d *daemon) signal(sig syscall.Signal) {
	d.cmd.Process.Signal(sig)
}

// wait waits up to timeout for the daemon to exit and returns its exit
// code (-1: still running).
func (d *daemon) wait(timeout time.Duration) int {
	select {
	case <-d.done:
		if d.err == nil {
			return 0
		}
		var ee *exec.ExitError
		if errors.As(d.err, &ee) {
			return ee.ExitCode()
		}
		return -2
	case <-time.After(timeout):
		return -1
	}
}

func TestHelpPrintsUsage(t *testing.T) {
	for _, flag := range []string{"-h", "--help"} {
		out, err := exec.Command(popperBin, flag).Output()
		if err != nil || !strings.HasPrefix(string(out), "Usage: popper [ [address][:][port] ]") || !strings.Contains(string(out), "--pidfile") {
			t.Errorf("popper %s: %v\n%s", flag, err, out)
		}
	}
}

// Run by hand, with neither a connection on standard input nor an
// address, popper says what it expected and exits 1.
func TestByHandWithoutConnection(t *testing.T) {
	s := newSite(t)
	cmd := exec.Command(popperBin, "-f", s.config)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("popper -f cfg </dev/null: %v", err)
	}
	for _, want := range []string{"standard input is not a network connection", "inetd", "popper 110 -f /etc/qpopper.config"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr.String())
		}
	}
}

// Start and stop: a log line with the address, pid, version and
// configuration; a pid file while it runs; SIGTERM ends it with exit 0,
// a log line and the pid file gone.
func TestDaemonStartStopAndPidFile(t *testing.T) {
	s := newSite(t)
	s.spool(t, "alice", msg("one", "first"))
	pidfile := filepath.Join(s.dir, "popper.pid")
	d := s.startDaemon(t, "--pidfile", pidfile)
	pid := d.cmd.Process.Pid
	want := fmt.Sprintf("popper %s (qpopper %s compatible) started: listening on %s, pid %d, config %s", popperVersion, version, d.addr, pid, s.config)
	if !strings.Contains(d.log(), want) {
		t.Errorf("no start line %q in:\n%s", want, d.log())
	}
	if b, err := os.ReadFile(pidfile); err != nil || string(b) != strconv.Itoa(pid)+"\n" {
		t.Errorf("pid file: %q, %v", b, err)
	}
	c := d.dial(t)
	eoLogin(c, "alice", "secret")
	c.ok("QUIT")
	d.signal(syscall.SIGTERM)
	if code := d.wait(10 * time.Second); code != 0 {
		t.Fatalf("after SIGTERM: exit %d; stderr %s", code, d.stderr)
	}
	for _, want := range []string{"popper stopping on SIGTERM: no new sessions", fmt.Sprintf("popper stopped (pid %d)", pid)} {
		if !strings.Contains(d.log(), want) {
			t.Errorf("no %q in the log:\n%s", want, d.log())
		}
	}
	if _, err := os.Stat(pidfile); !os.IsNotExist(err) {
		t.Errorf("pid file left behind: %v", err)
	}
}

// sessionOf is a process's session id.
func sessionOf(t *testing.T, pid int) int {
	t.Helper()
	f := procStat(pid)
	if f == nil {
		t.Skip("no /proc")
	}
	sid, _ := strconv.Atoi(f[3])
	return sid
}

// procStat is /proc/PID/stat after the command name: state, ppid, pgrp,
// session...; nil when there is none (Linux only).
func procStat(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	return strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
}

// A configuration --check-config refuses keeps the daemon from starting.
func TestDaemonRefusesBadConfig(t *testing.T) {
	s := newSite(t)
	s.setOptions(t, "set no-such-option = 1")
	port := freePort(t)
	out, err := exec.Command(popperBin, append([]string{fmt.Sprintf("127.0.0.1:%d", port)}, s.args()...)...).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "Unrecognized option") || !strings.Contains(string(out), "not started") {
		t.Fatalf("daemon with a bad configuration: %v\n%s", err, out)
	}
}

// --detach returns once the daemon in the background listens, and the
// daemon it left behind serves and stops on SIGTERM.
func TestDaemonDetach(t *testing.T) {
	s := newSite(t)
	s.spool(t, "alice", msg("one", "first"))
	pidfile := filepath.Join(s.dir, "popper.pid")
	port := freePort(t)
	out, err := exec.Command(popperBin, append([]string{fmt.Sprintf("127.0.0.1:%d", port), "--detach", "--pidfile", pidfile}, s.args()...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("popper --detach: %v\n%s", err, out)
	}
	b, err := os.ReadFile(pidfile)
	if err != nil {
		t.Fatalf("no pid file once --detach returned: %v", err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	p, _ := os.FindProcess(pid)
	t.Cleanup(func() { p.Kill() })
	if sid := sessionOf(t, pid); sid != pid {
		t.Errorf("the detached daemon's session is %d, not its own (%d)", sid, pid)
	}
	c := s.dialPort(t, port)
	if r := eoLogin(c, "alice", "secret"); !strings.HasPrefix(r, "+OK alice has 1 visible message") {
		t.Fatalf("PASS: %q", r)
	}
	c.ok("QUIT")
	p.Signal(syscall.SIGTERM)
	for i := 0; ; i++ {
		if _, err := os.Stat(pidfile); os.IsNotExist(err) {
			break
		}
		if i == 100 {
			t.Fatal("the detached daemon did not stop on SIGTERM (its pid file is still there)")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A daemon that cannot listen: --detach says why and exits 1.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	out, err = exec.Command(popperBin, append([]string{ln.Addr().String(), "--detach"}, s.args()...)...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Unable to listen on "+ln.Addr().String()) {
		t.Fatalf("--detach on a taken port: %v\n%s", err, out)
	}
}

// Limits: at most max-sessions-per-address from one address, at most
// max-sessions in all; the connection past a limit reads -ERR [SYS/TEMP]
// and is logged, and a slot that frees up is used again.
func TestDaemonSessionLimits(t *testing.T) {
	s := newSite(t)
	s.setOptions(t, "set max-sessions = 3", "set max-sessions-per-address = 2")
	d := s.startDaemon(t)
	a1, _ := d.dialFrom(t, "127.0.0.1")
	d.dialFrom(t, "127.0.0.1")
	_, g := d.dialFrom(t, "127.0.0.1")
	if g != "-ERR [SYS/TEMP] Too many sessions from your address; try again later." {
		t.Errorf("third from 127.0.0.1: %q", g)
	}
	d.waitLog("Connection from 127.0.0.1 refused: 2 sessions from this address (max-sessions-per-address 2)")
	d.dialFrom(t, "127.0.0.2")
	_, g = d.dialFrom(t, "127.0.0.3")
	if g != "-ERR [SYS/TEMP] Too many sessions; try again later." {
		t.Errorf("fourth in all: %q", g)
	}
	d.waitLog("Connection from 127.0.0.3 refused: 3 sessions running (max-sessions 3)")
	a1.ok("QUIT")
	for i := 0; ; i++ {
		_, g = d.dialFrom(t, "127.0.0.3")
		if strings.HasPrefix(g, "+OK ") {
			break
		}
		if i == 50 {
			t.Fatalf("after a QUIT the slot is not free: %q", g)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// SIGHUP: new sessions get the configuration as it is now, the daemon
// keeps listening, and a broken configuration is logged and not used.
func TestDaemonReloadOnSIGHUP(t *testing.T) {
	s := newSite(t)
	d := s.startDaemon(t)
	before := d.dial(t) // a session from before the reload
	if g := d.greeting(t); !strings.Contains(g, "(version 4.0.5)") {
		t.Fatalf("greeting %q", g)
	}
	s.setOptions(t, "set shy")
	d.signal(syscall.SIGHUP)
	d.waitLog("Configuration re-read on SIGHUP (" + s.config + "): new sessions use it")
	if g := d.greeting(t); strings.Contains(g, "version") {
		t.Errorf("after SIGHUP with shy: greeting %q", g)
	}
	s.setOptions(t, "set no-such-option")
	d.signal(syscall.SIGHUP)
	d.waitLog("Configuration not re-read on SIGHUP: 1 problem(s); sessions keep the previous configuration")
	if !strings.Contains(d.log(), `Unrecognized option; scanning "no-such-option"`) {
		t.Errorf("the problem is not logged:\n%s", d.log())
	}
	if g := d.greeting(t); !strings.HasPrefix(g, "+OK ") || strings.Contains(g, "version") {
		t.Errorf("after a bad SIGHUP: greeting %q, want the shy one", g)
	}
	before.ok("USER alice")
	before.ok("QUIT")
	if code := d.wait(0); code != -1 {
		t.Fatalf("the daemon exited (%d)", code)
	}
}

func (d *daemon) greeting(t *testing.T) string {
	t.Helper()
	c, g := d.dialFrom(t, "")
	c.do("QUIT")
	return g
}

// SIGTERM stops accepting at once and lets a running session finish:
// its DELE and QUIT are committed. Past shutdown-grace a session that
// lingers is ended in order, as on a hangup (update-on-abort: its DELE
// is committed, its mail is back in the spool).
func TestDaemonSIGTERMLetsSessionsFinish(t *testing.T) {
	s := newSite(t)
	sp := s.spool(t, "alice", msg("one", "first")+msg("two", "second"))
	s.setOptions(t, "set shutdown-grace = 2")
	d := s.startDaemon(t)
	c := d.dial(t)
	eoLogin(c, "alice", "secret")
	c.ok("DELE 1")
	d.signal(syscall.SIGTERM)
	d.waitLog("popper stopping on SIGTERM: no new sessions; waiting up to 2 s for 1 running")
	if conn, err := net.DialTimeout("tcp", d.addr, time.Second); err == nil {
		conn.Close()
		t.Error("the daemon still accepts after SIGTERM")
	}
	c.ok("DELE 2")
	c.ok("QUIT")
	if code := d.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if got, _ := os.ReadFile(sp); len(got) != 0 {
		t.Errorf("spool after QUIT: %q", got)
	}
	if strings.Contains(d.log(), "shutdown-grace is over") {
		t.Error("the grace ran out though the session ended in time")
	}

	// A session that outlasts the grace.
	s.spool(t, "alice", msg("three", "third")+msg("four", "fourth"))
	d = s.startDaemon(t)
	c = d.dial(t)
	eoLogin(c, "alice", "secret")
	c.ok("DELE 1")
	began := time.Now()
	d.signal(syscall.SIGTERM)
	if r := c.line(); !strings.HasPrefix(r, "-ERR POP hangup from ") {
		t.Fatalf("the lingering session read %q", r)
	}
	if took := time.Since(began); took < 2*time.Second {
		t.Errorf("the session was ended after %v, within the grace", took)
	}
	if code := d.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
	d.waitLog("popper stopping: shutdown-grace is over; ending 1 sessions as on a hangup")
	got, _ := os.ReadFile(sp)
	if strings.Contains(string(got), "<three@") || !strings.Contains(string(got), "<four@") {
		t.Errorf("spool after the hangup:\n%s", got)
	}
	if _, err := os.Lstat(filepath.Join(s.spoolDir, ".alice.pop")); err == nil {
		t.Error("temp drop left behind")
	}
}

// Out of descriptors, accept or the start of a session fails; the daemon
// logs it, tells the client to come back, backs off, and serves again
// once sessions have ended, instead of dying.
func TestDaemonSurvivesRunningOutOfDescriptors(t *testing.T) {
	need(t, "sh")
	s := newSite(t)
	s.setOptions(t, "set max-sessions = 0", "set max-sessions-per-address = 0")
	d := s.startDaemonCmd(t, func(args []string) *exec.Cmd {
		// Few enough descriptors that a handful of sessions uses them up.
		return exec.Command("sh", append([]string{"-c", `ulimit -n 24 && exec "$@"`, "sh"}, args...)...)
	})
	var held []net.Conn
	for i := 0; i < 60 && !strings.Contains(d.log(), "too many open files"); i++ {
		conn, err := net.DialTimeout("tcp", d.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, conn)
		time.Sleep(30 * time.Millisecond)
	}
	d.waitLog("too many open files")
	if r := d.log(); strings.Contains(r, "cannot start a session") && !strings.Contains(r, "Server out of resources") {
		t.Errorf("a client turned away for want of descriptors was not told so:\n%s", r)
	}
	for _, c := range held {
		c.Close()
	}
	for i := 0; ; i++ {
		c, g := d.dialFrom(t, "")
		c.conn.Close()
		if strings.HasPrefix(g, "+OK ") {
			break
		}
		if i == 100 {
			t.Fatalf("no session once the descriptors are back: %q\n%s", g, d.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code := d.wait(0); code != -1 {
		t.Fatalf("the daemon exited (%d): %s", code, d.stderr)
	}
	t.Logf("%d connections used the descriptors up", len(held))
}

// With no system log (none runs here, or it is hidden), the daemon and
// its sessions log to standard error, and say so once.
func TestDaemonLogsToStderrWithoutSyslog(t *testing.T) {
	for _, p := range []string{"/dev/log", "/var/run/syslog", "/var/run/log"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode()&os.ModeSocket != 0 {
			t.Skipf("a system log listens on %s: this test needs a host without one", p)
		}
	}
	s := newSite(t)
	s.spool(t, "alice", msg("one", "first"))
	s.trace = "" // no -t: records go to syslog, or its fallback
	args := []string{"-f", s.config, "--userdb", s.userdb}
	port := freePort(t)
	cmd := exec.Command(popperBin, append([]string{fmt.Sprintf("127.0.0.1:%d", port)}, args...)...)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitPort(t, port)
	for i := 0; i < 2; i++ {
		c := s.dialPort(t, port)
		eoLogin(c, "alice", "secret")
		c.ok("QUIT")
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	out := stderr.String()
	if n := strings.Count(out, "System log unavailable"); n != 1 {
		t.Errorf("the fallback is announced %d times:\n%s", n, out)
	}
	for _, want := range []string{" started: listening on ", `Stats: alice 0 0 1 `, "popper stopped"} {
		if !strings.Contains(out, want) {
			t.Errorf("standard error lacks %q:\n%s", want, out)
		}
	}
}

// TestDaemonUnderLoad is the bounded load generator: 200 sessions at once
// through the daemon, a SIGHUP while they log in and while they are all
// open (no session is lost or broken by it, none of the daemon's
// descriptors leak), then max-sessions enforced under 200 concurrent
// connections, then SIGTERM with 50 sessions open: all of them finish.
func TestDaemonUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	const n = 200
	s := newSite(t)
	var db strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&db, "u%03d:{PLAIN}pw%03d:%d:%d::%s:/bin/sh\n", i, i, s.uid, s.gid, s.dir)
		s.spool(t, fmt.Sprintf("u%03d", i), msg(fmt.Sprintf("m%03d", i), "load"))
	}
	writeFile(t, s.userdb, db.String(), 0o600)
	s.setOptions(t, fmt.Sprintf("set max-sessions = %d", n+10), fmt.Sprintf("set max-sessions-per-address = %d", n+10))
	d := s.startDaemon(t)
	fds := func() int {
		e, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", d.cmd.Process.Pid))
		return len(e)
	}
	fdsBefore := fds()

	// Phase 1: n sessions log in at once; SIGHUP during the logins and
	// again while all are open; then each retrieves, deletes and quits.
	began := time.Now()
	var loggedIn, finished sync.WaitGroup
	release := make(chan struct{})
	errs := make(chan string, 2*n)
	loggedIn.Add(n)
	finished.Add(n)
	for i := 0; i < n; i++ {
		go func(i int) {
			defer finished.Done()
			in := false
			defer func() {
				if !in {
					loggedIn.Done()
				}
			}()
			conn, err := net.DialTimeout("tcp", d.addr, 20*time.Second)
			if err != nil {
				errs <- err.Error()
				return
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(60 * time.Second))
			r := bufio.NewReader(conn)
			eof := false
			say := func(cmd string) string {
				if cmd != "" {
					fmt.Fprintf(conn, "%s\r\n", cmd)
				}
				l, err := r.ReadString('\n')
				eof = err != nil
				return strings.TrimRight(l, "\r\n")
			}
			for _, c := range []string{"", fmt.Sprintf("USER u%03d", i), fmt.Sprintf("PASS pw%03d", i)} {
				if l := say(c); !strings.HasPrefix(l, "+OK") {
					errs <- fmt.Sprintf("u%03d %q: %q", i, c, l)
					return
				}
			}
			in = true
			loggedIn.Done()
			<-release
			if l := say("RETR 1"); !strings.HasPrefix(l, "+OK") {
				errs <- fmt.Sprintf("u%03d RETR: %q", i, l)
				return
			}
			for l := say(""); l != "."; l = say("") {
				if eof {
					errs <- fmt.Sprintf("u%03d: the message ended early", i)
					return
				}
			}
			for _, c := range []string{"DELE 1", "QUIT"} {
				if l := say(c); !strings.HasPrefix(l, "+OK") {
					errs <- fmt.Sprintf("u%03d %s: %q", i, c, l)
					return
				}
			}
		}(i)
		if i == n/2 {
			d.signal(syscall.SIGHUP) // while sessions are still arriving
		}
	}
	loggedIn.Wait()
	openAt := time.Since(began)
	d.signal(syscall.SIGHUP) // while all are open
	d.waitLog("Configuration re-read on SIGHUP")
	close(release)
	finished.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	total := time.Since(began)
	for i := 0; i < n; i++ {
		if b, _ := os.ReadFile(filepath.Join(s.spoolDir, fmt.Sprintf("u%03d", i))); len(b) != 0 {
			t.Errorf("u%03d's DELE was not committed: %d bytes left", i, len(b))
		}
	}
	if got := strings.Count(d.log(), "Configuration re-read on SIGHUP"); got != 2 {
		t.Errorf("%d reloads logged, want 2", got)
	}
	for i := 0; i < 100 && d.running() > 0; i++ {
		time.Sleep(50 * time.Millisecond)
	}
	if after := fds(); after != fdsBefore {
		t.Errorf("the daemon had %d descriptors before the load, %d after", fdsBefore, after)
	}
	t.Logf("%d concurrent sessions: all logged in after %v, all done after %v; daemon descriptors %d before and after",
		n, openAt.Round(time.Millisecond), total.Round(time.Millisecond), fdsBefore)

	// Phase 2: max-sessions 50 with n connections at once.
	const max = 50
	s.setOptions(t, fmt.Sprintf("set max-sessions = %d", max))
	d.signal(syscall.SIGHUP)
	for strings.Count(d.log(), "Configuration re-read on SIGHUP") < 3 {
		time.Sleep(20 * time.Millisecond)
	}
	type held struct {
		c *client
		g string
	}
	got := make(chan held, n)
	for i := 0; i < n; i++ {
		go func() {
			conn, err := net.DialTimeout("tcp", d.addr, 20*time.Second)
			if err != nil {
				got <- held{g: err.Error()}
				return
			}
			c := &client{t: t, conn: conn, r: bufio.NewReader(conn)}
			conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			l, _ := c.r.ReadString('\n')
			got <- held{c, strings.TrimRight(l, "\r\n")}
		}()
	}
	var open []*client
	refused := 0
	for i := 0; i < n; i++ {
		h := <-got
		switch {
		case strings.HasPrefix(h.g, "+OK "):
			open = append(open, h.c)
		case h.g == "-ERR [SYS/TEMP] Too many sessions; try again later.":
			refused++
			h.c.conn.Close()
		default:
			t.Errorf("connection read %q", h.g)
		}
	}
	if len(open) != max || refused != n-max {
		t.Errorf("with max-sessions %d and %d connections: %d served, %d refused", max, n, len(open), refused)
	}
	if c := strings.Count(d.log(), "refused: 50 sessions running (max-sessions 50)"); c != refused {
		t.Errorf("%d refusals logged, %d made", c, refused)
	}

	// Phase 3: SIGTERM with the served sessions logged in; each
	// finishes its QUIT.
	for i, c := range open {
		fmt.Fprintf(c.conn, "USER u%03d\r\nPASS pw%03d\r\n", i, i)
	}
	for _, c := range open {
		c.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		c.line()
		if l := c.line(); !strings.HasPrefix(l, "+OK") {
			t.Fatalf("login: %q", l)
		}
	}
	d.signal(syscall.SIGTERM)
	d.waitLog("popper stopping on SIGTERM: no new sessions; waiting up to 30 s for 50 running")
	for _, c := range open {
		c.ok("STAT")
		c.ok("QUIT")
	}
	if code := d.wait(20 * time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM", code)
	}
}

// running is the number of the daemon's session processes.
func (d *daemon) running() int { return len(childrenOf(d.cmd.Process.Pid)) }

// childrenOf lists the processes whose parent is pid (from /proc).
func childrenOf(pid int) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	ppid := strconv.Itoa(pid)
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if f := procStat(child); err == nil && len(f) > 1 && f[1] == ppid {
			out = append(out, child)
		}
	}
	return out
}

// ---- the standalone daemon's rows of TestEveryOption ----

func eoMaxSessions(t *testing.T) {
	s := newSite(t)
	s.setOptions(t, "set max-sessions = 1")
	d := s.startDaemon(t)
	d.dialFrom(t, "127.0.0.1")
	if _, g := d.dialFrom(t, "127.0.0.2"); g != "-ERR [SYS/TEMP] Too many sessions; try again later." {
		t.Fatalf("second session with max-sessions 1: %q", g)
	}
	d.waitLog("Connection from 127.0.0.2 refused: 1 sessions running (max-sessions 1)")
}

func eoMaxSessionsPerAddress(t *testing.T) {
	s := newSite(t)
	s.setOptions(t, "set max-sessions-per-address = 1")
	d := s.startDaemon(t)
	d.dialFrom(t, "127.0.0.1")
	if _, g := d.dialFrom(t, "127.0.0.1"); g != "-ERR [SYS/TEMP] Too many sessions from your address; try again later." {
		t.Fatalf("second session from one address: %q", g)
	}
	if _, g := d.dialFrom(t, "127.0.0.2"); !strings.HasPrefix(g, "+OK ") {
		t.Fatalf("a session from another address: %q", g)
	}
}

func eoPidFile(t *testing.T) {
	s := newSite(t)
	pf := filepath.Join(s.dir, "run", "popper.pid")
	os.Mkdir(filepath.Dir(pf), 0o755)
	s.setOptions(t, fmt.Sprintf("set pid-file = %q", pf))
	d := s.startDaemon(t)
	if b, err := os.ReadFile(pf); err != nil || string(b) != fmt.Sprintf("%d\n", d.cmd.Process.Pid) {
		t.Fatalf("pid file %q, %v", b, err)
	}
	d.signal(syscall.SIGTERM)
	d.wait(10 * time.Second)
	if _, err := os.Stat(pf); !os.IsNotExist(err) {
		t.Fatalf("pid file after the stop: %v", err)
	}
}

// eoProxyLogin sends a PROXY v1 header naming 192.0.2.9 from src, logs
// alice in and returns the login record's client part, or the reply
// that refused the header.
func eoProxyLogin(t *testing.T, d *daemon, src string) string {
	t.Helper()
	dl := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	conn, err := dl.Dial("tcp", d.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PROXY TCP4 192.0.2.9 127.0.0.1 40000 110\r\n")
	c := &client{t: t, conn: conn, r: bufio.NewReader(conn)}
	c.line()
	r := c.do("USER alice")
	if !strings.HasPrefix(r, "+OK") {
		return r // the header line was a command
	}
	c.do("PASS secret")
	c.do("QUIT")
	d.waitLog("Stats: alice ")
	for _, l := range strings.Split(d.log(), "\n") {
		if i := strings.Index(l, `POP login by user "alice" at `); i >= 0 {
			return l[i+len(`POP login by user "alice" at `):]
		}
	}
	return "no login record"
}

func eoProxyProtocol(t *testing.T) {
	s := newSite(t)
	s.setOptions(t, "set proxy-trusted = 127.0.0.1", "set reverse-lookup")
	d := s.startDaemon(t)
	if r := eoProxyLogin(t, d, "127.0.0.1"); !strings.HasPrefix(r, "-ERR ") {
		t.Fatalf("without proxy-protocol the header is a command: %q", r)
	}
	s.setOptions(t, "set proxy-protocol")
	d = s.startDaemon(t)
	if r := eoProxyLogin(t, d, "127.0.0.1"); r != "(192.0.2.9) 192.0.2.9" {
		t.Fatalf("with proxy-protocol the login record names %q", r)
	}
	s.setOptions(t, `set proxy-trusted = ""`)
	out, err := exec.Command(popperBin, "--check-config", "-f", s.config).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "proxy-protocol is set but proxy-trusted names no load balancer") {
		t.Fatalf("proxy-protocol without proxy-trusted: %v\n%s", err, out)
	}
}

func eoProxyTrusted(t *testing.T) {
	s := newSite(t)
	s.setOptions(t, "set proxy-protocol", `set proxy-trusted = "127.0.0.7, 10.0.0.0/8"`, "set reverse-lookup")
	d := s.startDaemon(t)
	if r := eoProxyLogin(t, d, "127.0.0.8"); !strings.HasPrefix(r, "-ERR ") {
		t.Fatalf("a header from an address not listed was believed: %q", r)
	}
	if r := eoProxyLogin(t, d, "127.0.0.7"); r != "(192.0.2.9) 192.0.2.9" {
		t.Fatalf("from a listed balancer the login record names %q", r)
	}
	s.setOptions(t, "set proxy-trusted = 10.0.0.0/33")
	if out, err := exec.Command(popperBin, "--check-config", "-f", s.config).CombinedOutput(); err == nil || !strings.Contains(string(out), "Bad value for the proxy-trusted option") {
		t.Fatalf("a bad prefix: %v\n%s", err, out)
	}
}

func eoShutdownGrace(t *testing.T) {
	s := newSite(t)
	s.spool(t, "alice", msg("one", "first"))
	s.setOptions(t, "set shutdown-grace = 1")
	d := s.startDaemon(t)
	c := d.dial(t)
	eoLogin(c, "alice", "secret")
	began := time.Now()
	d.signal(syscall.SIGTERM)
	if r := c.line(); !strings.HasPrefix(r, "-ERR POP hangup from ") {
		t.Fatalf("after the grace: %q", r)
	}
	if took := time.Since(began); took < time.Second || took > 10*time.Second {
		t.Fatalf("an idle session was ended %v after SIGTERM with shutdown-grace 1 (the default waits 30 s)", took)
	}
	d.waitLog("waiting up to 1 s for 1 running")
}
