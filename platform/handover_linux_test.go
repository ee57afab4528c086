package platform

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

func init() {
	// systemd: take the listeners systemd-socket-activate passed, answer
	// one connection on the first, and check LISTEN_* were cleared.
	helpers["systemd-conn"] = func(args []string) error {
		ls, c, err := SystemdSockets()
		if err != nil {
			return err
		}
		if len(ls) != 0 || c == nil {
			return fmt.Errorf("got %d listeners and conn %v, want a connection", len(ls), c)
		}
		defer c.Close()
		_, err = fmt.Fprintf(c, "+OK served %s\r\n", c.RemoteAddr())
		return err
	}
	helpers["systemd"] = func(args []string) error {
		ls, _, err := SystemdSockets()
		if err != nil {
			return err
		}
		if len(ls) != 1 {
			return fmt.Errorf("got %d listeners, want 1", len(ls))
		}
		if v := os.Getenv("LISTEN_FDS"); v != "" {
			return fmt.Errorf("LISTEN_FDS still set to %q", v)
		}
		fmt.Println("ready")
		c, err := ls[0].Accept()
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = fmt.Fprintf(c, "+OK listening on %s\r\n", ls[0].Addr())
		return err
	}
}

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func socketActivate(t *testing.T) string {
	t.Helper()
	exe, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		t.Skip("systemd-socket-activate not installed")
	}
	return exe
}

func dialRetry(t *testing.T, addr string) net.Conn {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestSystemdListeners(t *testing.T) {
	activate := socketActivate(t)
	self, _ := os.Executable()
	addr := freeLoopbackAddr(t)
	cmd := exec.Command(activate, "-l", addr, "-E", "POPPER_PLATFORM_HELPER=systemd", self)
	out, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	// systemd-socket-activate starts the service on the first connection.
	c := dialRetry(t, addr)
	defer c.Close()
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "ready\n" {
		cmd.Wait()
		t.Fatalf("child said %q; stderr %s", line, stderr.String())
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	greeting, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if want := "+OK listening on " + addr + "\r\n"; greeting != want {
		t.Errorf("got %q, want %q", greeting, want)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v; stderr %s", err, stderr.String())
	}
}

func TestSystemdListenersNone(t *testing.T) {
	t.Setenv("LISTEN_FDS", "")
	t.Setenv("LISTEN_PID", "")
	ls, conn, err := SystemdSockets()
	if ls != nil || conn != nil || err != nil {
		t.Errorf("without LISTEN_FDS: %v, %v, %v", ls, conn, err)
	}
}

// Accept=yes without StandardInput=socket: one process per connection,
// the connection on fd 3 with LISTEN_FDS=1; it must be served, not
// taken for a listener.
func TestSystemdAcceptedConnection(t *testing.T) {
	activate := socketActivate(t)
	self, _ := os.Executable()
	addr := freeLoopbackAddr(t)
	cmd := exec.Command(activate, "-a", "-l", addr, "-E", "POPPER_PLATFORM_HELPER=systemd-conn", self)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	c := dialRetry(t, addr)
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	greeting, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("%v; stderr %s", err, stderr.String())
	}
	if want := "+OK served " + c.LocalAddr().String() + "\r\n"; greeting != want {
		t.Errorf("got %q, want %q", greeting, want)
	}
}

// systemd-socket-activate --inetd --accept starts one process per
// connection with the socket on fd 0 and 1, exactly as inetd does.
func TestInetdConnUnderSocketActivate(t *testing.T) {
	activate := socketActivate(t)
	self, _ := os.Executable()
	addr := freeLoopbackAddr(t)
	cmd := exec.Command(activate, "--inetd", "-a", "-l", addr, "-E", "POPPER_PLATFORM_HELPER=inetd", self)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	for i := 0; i < 2; i++ { // two connections, two instances
		c := dialRetry(t, addr)
		greeting, answer := talkPOP(t, c)
		c.Close()
		if want := "+OK ready " + c.LocalAddr().String() + "\r\n"; greeting != want {
			t.Errorf("greeting %q, want %q (stderr %s)", greeting, want, stderr.String())
		}
		if answer != "+OK got QUIT\r\n" {
			t.Errorf("answer %q", answer)
		}
	}
}

func TestSdNotify(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	if err := SdNotify("READY=1"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := conn.Read(buf)
	if err != nil || string(buf[:n]) != "READY=1" {
		t.Fatalf("systemd got %q, %v", buf[:n], err)
	}
	t.Setenv("NOTIFY_SOCKET", "")
	if err := SdNotify("READY=1"); err != nil {
		t.Errorf("without NOTIFY_SOCKET: %v", err)
	}
}
