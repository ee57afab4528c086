package platform

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/popperd/popper/compat"
)

func init() {
	// inetd: serve one POP-like exchange on the inetd connection, or print
	// the error InetdConn gave.
	helpers["inetd"] = func(args []string) error {
		c, err := InetdConn()
		if err != nil {
			fmt.Print(err.Error())
			return nil
		}
		defer c.Close()
		fmt.Fprintf(c, "+OK ready %s\r\n", c.RemoteAddr())
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(c, "+OK got %s", line)
		return err
	}
}

// talkPOP reads the helper's greeting, sends a line and reads the answer.
func talkPOP(t *testing.T, c net.Conn) (greeting, answer string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	greeting, err := r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "QUIT\r\n")
	answer, err = r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return greeting, answer
}

func TestInetdConnTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	sf, err := server.(*net.TCPConn).File()
	server.Close()
	if err != nil {
		t.Fatal(err)
	}
	cmd := helperCommand(t, "inetd")
	cmd.Stdin = sf // as inetd does: the connection is fd 0
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sf.Close()
	greeting, answer := talkPOP(t, client)
	if want := "+OK ready " + client.LocalAddr().String() + "\r\n"; greeting != want {
		t.Errorf("greeting %q, want %q", greeting, want)
	}
	if answer != "+OK got QUIT\r\n" {
		t.Errorf("answer %q", answer)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v %s", err, stderr.String())
	}
}

func TestInetdConnSocketpair(t *testing.T) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	ours := os.NewFile(uintptr(fds[0]), "ours")
	theirs := os.NewFile(uintptr(fds[1]), "theirs")
	c, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cmd := helperCommand(t, "inetd")
	cmd.Stdin = theirs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	theirs.Close()
	greeting, answer := talkPOP(t, c)
	if !strings.HasPrefix(greeting, "+OK ready") || answer != "+OK got QUIT\r\n" {
		t.Errorf("greeting %q answer %q", greeting, answer)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestInetdConnNotASocket(t *testing.T) {
	name := filepath.Join(t.TempDir(), "stdin")
	os.WriteFile(name, []byte("USER x\r\n"), 0600)
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := helperCommand(t, "inetd")
	cmd.Stdin = f
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	text, _ := compat.Strerror(syscall.ENOTSOCK)
	want := fmt.Sprintf("Unable to obtain socket and address of client: %s (%d)", text, int(syscall.ENOTSOCK))
	if string(out) != want {
		t.Errorf("got  %q\nwant %q", out, want)
	}
	if (&InetdError{Err: syscall.ENOTSOCK}).Error() != "Unable to obtain socket and address of client: Socket operation on non-socket (88)" && syscall.ENOTSOCK == 88 {
		t.Error("InetdError text differs from qpopper's on Linux")
	}
	if !errors.Is(&InetdError{Err: syscall.ENOTSOCK}, syscall.ENOTSOCK) {
		t.Error("InetdError does not unwrap to the errno")
	}
}
