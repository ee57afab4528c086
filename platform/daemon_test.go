package platform

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// flakyListener fails Accept with EMFILE a number of times before each
// real accept, as a process out of descriptors sees it.
type flakyListener struct {
	net.Listener
	mu    sync.Mutex
	fails int
}

func (l *flakyListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if l.fails > 0 {
		l.fails--
		l.mu.Unlock()
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept", syscall.EMFILE)}
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}

// echoStart stands in for a session: it greets and runs /bin/true.
func echoStart(conn net.Conn, client netip.AddrPort) (*os.Process, error) {
	fmt.Fprintf(conn, "+OK hello %s\r\n", client)
	return os.StartProcess("/bin/true", []string{"true"}, &os.ProcAttr{})
}

// Accept errors (out of descriptors) are retried with a backoff from 5 ms
// doubling to 1 s, reported at the first failure and when accept works
// again, and never end the daemon; only Stop does.
func TestDaemonAcceptBackoff(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &flakyListener{Listener: ln, fails: 7}
	var mu sync.Mutex
	var reports []string
	d := &Daemon{Start: echoStart, AcceptTrouble: func(err error, failures int, delay time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		reports = append(reports, fmt.Sprintf("%v|%d|%v", err != nil, failures, delay))
	}}
	done := make(chan struct{})
	go func() { d.Serve([]net.Listener{fl}); close(done) }()
	began := time.Now()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if l, err := bufio.NewReader(c).ReadString('\n'); err != nil || !strings.HasPrefix(l, "+OK hello 127.0.0.1:") {
		t.Fatalf("read %q, %v", l, err)
	}
	c.Close()
	// 5+10+20+40+80+160+320 ms of backoff before the seventh retry.
	if took := time.Since(began); took < 600*time.Millisecond {
		t.Errorf("served after %v: no backoff", took)
	}
	mu.Lock()
	got := strings.Join(reports, " ")
	mu.Unlock()
	if got != "true|1|5ms false|7|0s" {
		t.Errorf("reports %q", got)
	}
	d.Stop()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after Stop")
	}
	// (Once the session has started: a child between fork and exec holds
	// every descriptor, the listener's too.)
	if !d.Wait(5 * time.Second) {
		t.Fatal("the session did not end")
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("the listener still accepts after Stop")
	}
}

// The limits count admitted connections, globally and per client
// address; a session that ends frees its slot; a session that cannot
// start is answered and holds nothing.
func TestDaemonLimits(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	release := make(chan struct{})
	var refusals []string
	var mu sync.Mutex
	d := &Daemon{
		Start: func(conn net.Conn, client netip.AddrPort) (*os.Process, error) {
			fmt.Fprintf(conn, "+OK\r\n")
			<-release // the session runs until released
			return nil, errors.New("no session here")
		},
		Refused: func(conn net.Conn, client netip.AddrPort, why Limited, running, max int) {
			mu.Lock()
			refusals = append(refusals, fmt.Sprintf("%s %d %d/%d", client.Addr(), why, running, max))
			mu.Unlock()
			fmt.Fprintf(conn, "-ERR\r\n")
		},
		StartFailed: func(net.Conn, netip.AddrPort, error) {},
	}
	d.SetPolicy(DaemonPolicy{MaxSessions: 3, MaxPerAddress: 2})
	go d.Serve([]net.Listener{ln})
	defer d.Stop()
	dial := func(src string) string {
		dl := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		c, err := dl.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(5 * time.Second))
		l, _ := bufio.NewReader(c).ReadString('\n')
		return strings.TrimSpace(l)
	}
	got := []string{dial("127.0.0.1"), dial("127.0.0.1"), dial("127.0.0.1"), dial("127.0.0.2"), dial("127.0.0.3")}
	if strings.Join(got, " ") != "+OK +OK -ERR +OK -ERR" {
		t.Errorf("replies %q", got)
	}
	mu.Lock()
	if r := strings.Join(refusals, ", "); r != "127.0.0.1 2 2/2, 127.0.0.3 1 3/3" {
		t.Errorf("refusals %q", r)
	}
	mu.Unlock()
	if n := d.Running(); n != 3 {
		t.Errorf("Running() = %d, want 3", n)
	}
	close(release)
	if !d.Wait(5 * time.Second) {
		t.Fatalf("Wait: %d still running", d.Running())
	}
	if r := dial("127.0.0.1"); r != "+OK" {
		t.Errorf("after the sessions ended: %q", r)
	}
}

// A trusted peer's PROXY header names the client, v1 and v2; nothing
// after the header is consumed; a trusted peer without a header is
// turned away; an untrusted peer's bytes are left alone.
func TestReadProxyHeader(t *testing.T) {
	v2 := []byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\xc0\x00\x02\x07\x7f\x00\x00\x01\x30\x39\x00\x6e")
	for name, c := range map[string]struct {
		header []byte
		want   string
	}{
		"v1":       {[]byte("PROXY TCP4 192.0.2.7 127.0.0.1 12345 110\r\n"), "192.0.2.7:12345"},
		"v1 tcp6":  {[]byte("PROXY TCP6 2001:db8::7 ::1 12345 110\r\n"), "[2001:db8::7]:12345"},
		"v1 local": {[]byte("PROXY UNKNOWN\r\n"), "invalid AddrPort"},
		"v2":       {v2, "192.0.2.7:12345"},
		"v2 local": {[]byte("\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00"), "invalid AddrPort"},
	} {
		t.Run(name, func(t *testing.T) {
			a, b := net.Pipe()
			defer a.Close()
			go func() { b.Write(append(append([]byte{}, c.header...), "USER x\r\n"...)); b.Close() }()
			src, err := ReadProxyHeader(a, 5*time.Second)
			if err != nil || src.String() != c.want {
				t.Fatalf("ReadProxyHeader = %v, %v; want %s", src, err, c.want)
			}
			rest, _ := bufio.NewReader(a).ReadString('\n')
			if rest != "USER x\r\n" {
				t.Errorf("after the header the connection holds %q", rest)
			}
		})
	}
	a, b := net.Pipe()
	go func() { b.Write([]byte("USER x\r\n")); b.Close() }()
	if _, err := ReadProxyHeader(a, 5*time.Second); err == nil {
		t.Error("no header, yet no error")
	}
	a, b = net.Pipe()
	defer b.Close()
	began := time.Now()
	if _, err := ReadProxyHeader(a, 200*time.Millisecond); err == nil || time.Since(began) > 3*time.Second {
		t.Errorf("a silent peer: %v after %v", err, time.Since(began))
	}
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	for addr, want := range map[string]bool{"10.1.2.3": true, "::ffff:10.1.2.3": true, "::1": true, "11.0.0.1": false, "127.0.0.1": false} {
		if ProxyTrusted(trusted, netip.MustParseAddr(addr)) != want {
			t.Errorf("ProxyTrusted(%s) = %v", addr, !want)
		}
	}
}
