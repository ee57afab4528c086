package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Behind a load balancer: a real haproxy in front of popper sending
// PROXY v1 or v2, the daemon and inetd-mode sessions reading it, and the
// client's real address in the log records, the login record, the
// limits and the reverse lookup.

// haproxy runs haproxy in the foreground with one TCP frontend on a free
// loopback port and the given server lines; it returns the port.
func haproxy(t *testing.T, dir string, servers ...string) int {
	t.Helper()
	need(t, "haproxy")
	port := freePort(t)
	var b strings.Builder
	fmt.Fprintf(&b, "global\n  maxconn 2000\ndefaults\n  mode tcp\n  timeout connect 2s\n  timeout client 60s\n  timeout server 60s\n  retries 2\n  option redispatch\n")
	fmt.Fprintf(&b, "frontend pop\n  bind 127.0.0.1:%d\n  default_backend pops\nbackend pops\n  balance roundrobin\n", port)
	for i, s := range servers {
		fmt.Fprintf(&b, "  server p%d %s\n", i, s)
	}
	cfg := filepath.Join(dir, fmt.Sprintf("haproxy-%d.cfg", port))
	writeFile(t, cfg, b.String(), 0o644)
	if out, err := exec.Command("haproxy", "-c", "-f", cfg).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s", err, out)
	}
	cmd := exec.Command("haproxy", "-db", "-f", cfg)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitPort(t, port)
	return port
}

// dialVia connects to port from the local address src and reads the
// greeting.
func dialVia(t *testing.T, src string, port int) (*client, string) {
	t.Helper()
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	conn, err := d.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &client{t: t, conn: conn, r: bufio.NewReader(conn)}
	return c, c.line()
}

// proxySite serves alice, with PROXY trusted from 127.0.0.1 (where
// haproxy connects from) and no reverse lookups.
func proxySite(t *testing.T, lines ...string) *site {
	s := newSite(t)
	s.spool(t, "alice", msg("one", "first"))
	s.setOptions(t, append([]string{"set proxy-protocol", `set proxy-trusted = "127.0.0.1/32, ::1"`, "set reverse-lookup"}, lines...)...)
	return s
}

// TestHAProxySendProxyToDaemon: haproxy's send-proxy-v2 and send-proxy
// in front of the standalone daemon. The session logs the client's
// address, not haproxy's, in its login record and Stats: line, and
// max-sessions-per-address counts the clients behind haproxy apart.
func TestHAProxySendProxyToDaemon(t *testing.T) {
	for _, send := range []string{"send-proxy-v2", "send-proxy"} {
		t.Run(send, func(t *testing.T) {
			s := proxySite(t, "set max-sessions-per-address = 1")
			d := s.startDaemon(t)
			port := haproxy(t, s.dir, d.addr+" "+send)
			c, g := dialVia(t, "127.0.0.9", port)
			if !strings.HasPrefix(g, "+OK ") {
				t.Fatalf("greeting %q\n%s", g, d.log())
			}
			// A second client from the same address is over its limit; one
			// from another address is not.
			if _, g := dialVia(t, "127.0.0.9", port); g != "-ERR [SYS/TEMP] Too many sessions from your address; try again later." {
				t.Errorf("second session from 127.0.0.9: %q", g)
			}
			other, g := dialVia(t, "127.0.0.10", port)
			if !strings.HasPrefix(g, "+OK ") {
				t.Errorf("a session from 127.0.0.10: %q", g)
			}
			other.do("QUIT")
			if r := eoLogin(c, "alice", "secret"); !strings.HasPrefix(r, "+OK alice has 1 visible message") {
				t.Fatalf("PASS: %q", r)
			}
			c.ok("QUIT")
			d.waitLog("Stats: alice 0 0 1 ")
			for _, want := range []string{
				`POP login by user "alice" at (127.0.0.9) 127.0.0.9`,
				"Stats: alice 0 0 1 ",
				" 127.0.0.9 127.0.0.9",
				"Connection from 127.0.0.9 refused: 1 sessions from this address (max-sessions-per-address 1)",
			} {
				if !strings.Contains(d.log(), want) {
					t.Errorf("the log lacks %q:\n%s", want, d.log())
				}
			}
			if strings.Contains(d.log(), "at (127.0.0.1) 127.0.0.1") {
				t.Errorf("haproxy's address was logged as the client's:\n%s", d.log())
			}
		})
	}
}

// A PROXY header is believed only from proxy-trusted: a client that sends
// one itself is served as what it is (the header is a bad command), and
// a trusted peer that sends none is closed and logged.
func TestProxyHeaderOnlyFromTrusted(t *testing.T) {
	s := proxySite(t, "set proxy-trusted = 127.0.0.1")
	d := s.startDaemon(t)
	c, g := d.dialFrom(t, "127.0.0.5")
	if !strings.HasPrefix(g, "+OK ") {
		t.Fatalf("greeting %q", g)
	}
	if r := c.do("PROXY TCP4 192.0.2.1 127.0.0.1 1234 110"); !strings.HasPrefix(r, "-ERR ") {
		t.Errorf("a forged PROXY line: %q", r)
	}
	eoLogin(c, "alice", "secret")
	c.ok("QUIT")
	d.waitLog("Stats: alice 0 0 1 ")
	if !strings.Contains(d.log(), `POP login by user "alice" at (127.0.0.5) 127.0.0.5`) || strings.Contains(d.log(), "192.0.2.1") {
		t.Errorf("the forged header was believed:\n%s", d.log())
	}

	conn, err := net.Dial("tcp", d.addr) // from 127.0.0.1, trusted
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "USER alice\r\n")
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if b, _ := bufio.NewReader(conn).ReadString('\n'); b != "" {
		t.Errorf("a trusted peer without a header read %q", b)
	}
	d.waitLog("Connection from 127.0.0.1 closed: no valid PROXY protocol header (proxy-trusted)")
}

// privateXinetd finds xinetd: on PATH, or unpacked where scripts/test
// puts it (dpkg-deb -x, since Debian's xinetd package replaces
// openbsd-inetd).
func privateXinetd(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("xinetd"); err == nil {
		return p
	}
	p := "/var/cache/popper-test/xinetd/usr/sbin/xinetd"
	if _, err := os.Stat(p); err != nil {
		t.Skip("xinetd not installed (scripts/test unpacks it into /var/cache/popper-test/xinetd)")
	}
	return p
}

// inetd mode behind haproxy: xinetd (and openbsd-inetd) start popper on
// the connection, and popper reads haproxy's header itself.
func TestHAProxyToXinetd(t *testing.T) {
	xinetdBin := privateXinetd(t)
	s := proxySite(t)
	port := freePort(t)
	conf := filepath.Join(s.dir, "xinetd.conf")
	args := strings.Join(append([]string{"-s"}, s.args()...), " ")
	writeFile(t, conf, fmt.Sprintf(`defaults
{
	instances = 50
}
service pop3-test
{
	type        = UNLISTED
	socket_type = stream
	protocol    = tcp
	wait        = no
	user        = root
	bind        = 127.0.0.1
	port        = %d
	server      = %s
	server_args = %s
	disable     = no
}
`, port, popperBin, args), 0o644)
	xinetd := exec.Command(xinetdBin, "-dontfork", "-f", conf, "-pidfile", filepath.Join(s.dir, "xinetd.pid"))
	var xerr syncBuffer
	xinetd.Stderr = &xerr
	if err := xinetd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { xinetd.Process.Kill(); xinetd.Wait() })
	waitPort(t, port)
	hp := haproxy(t, s.dir, fmt.Sprintf("127.0.0.1:%d send-proxy-v2", port))
	c, g := dialVia(t, "127.0.0.11", hp)
	if !strings.HasPrefix(g, "+OK ") {
		t.Fatalf("greeting via haproxy and xinetd: %q\n%s", g, xerr.String())
	}
	if r := eoLogin(c, "alice", "secret"); !strings.HasPrefix(r, "+OK alice has 1 visible message") {
		t.Fatalf("PASS: %q", r)
	}
	c.ok("QUIT")
	trace := eoTrace(t, s.trace)
	if !strings.Contains(trace, `POP login by user "alice" at (127.0.0.11) 127.0.0.11`) {
		t.Errorf("the trace lacks the client's address:\n%s", trace)
	}

	// The same session straight to openbsd-inetd: no load balancer.
	s2 := newSite(t)
	s2.spool(t, "alice", msg("one", "first"))
	ip := s2.viaInetd(t)
	c2, g := dialVia(t, "127.0.0.12", ip)
	if !strings.HasPrefix(g, "+OK ") {
		t.Fatalf("openbsd-inetd: %q", g)
	}
	eoLogin(c2, "alice", "secret")
	c2.ok("QUIT")
	if trace := eoTrace(t, s2.trace); !strings.Contains(trace, "POP login by user \"alice\" at ") || !strings.Contains(trace, "127.0.0.12") {
		t.Errorf("openbsd-inetd trace:\n%s", trace)
	}
}

// systemd's listener hand-over (Accept=no): systemd-socket-activate
// passes the listening socket, popper serves it as the daemon does, with
// PROXY from haproxy, and stops on SIGTERM.
func TestSystemdListenerHandOver(t *testing.T) {
	need(t, "systemd-socket-activate")
	s := proxySite(t)
	port := freePort(t)
	cmd := exec.Command("systemd-socket-activate", append([]string{"-l", fmt.Sprintf("127.0.0.1:%d", port), popperBin}, s.args()...)...)
	// A file, not a pipe: sessions inherit it and may outlive popper.
	stderr, err := os.Create(filepath.Join(s.dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var werr error
	go func() { werr = cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	waitPort(t, port)
	hp := haproxy(t, s.dir, fmt.Sprintf("127.0.0.1:%d send-proxy-v2", port))
	for i := 0; i < 2; i++ {
		c, g := dialVia(t, "127.0.0.13", hp)
		if !strings.HasPrefix(g, "+OK ") {
			b, _ := os.ReadFile(stderr.Name())
			t.Fatalf("greeting %q\n%s\n%s", g, b, eoTrace(t, s.trace))
		}
		eoLogin(c, "alice", "secret")
		c.ok("QUIT")
	}
	trace := eoTrace(t, s.trace)
	if !strings.Contains(trace, fmt.Sprintf(" started: listening on 127.0.0.1:%d, pid %d", port, cmd.Process.Pid)) ||
		strings.Count(trace, `POP login by user "alice" at (127.0.0.13) 127.0.0.13`) != 2 {
		t.Errorf("trace:\n%s", trace)
	}
	cmd.Process.Signal(os.Interrupt)
	select {
	case <-done:
		if werr != nil {
			t.Errorf("after SIGINT: %v", werr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("popper did not stop")
	}
}
