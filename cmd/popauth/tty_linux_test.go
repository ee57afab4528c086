package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// openPTY returns a pseudo-terminal's master and slave (Linux's
// /dev/ptmx, with the syscall package alone).
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Fatalf("TIOCSPTLCK: %v", e)
	}
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		t.Fatalf("TIOCGPTN: %v", e)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return m, s
}

func echoOn(t *testing.T, f *os.File) bool {
	t.Helper()
	var tio syscall.Termios
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), syscall.TCGETS, uintptr(unsafe.Pointer(&tio))); e != 0 {
		t.Fatalf("TCGETS: %v", e)
	}
	return tio.Lflag&syscall.ECHO != 0
}

// screen collects what the terminal shows.
type screen struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *screen) waitFor(t *testing.T, text string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		ok := strings.Contains(s.buf.String(), text)
		s.mu.Unlock()
		if ok {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("terminal never showed %q; it shows %q", text, s.String())
}

func (s *screen) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// typeSecrets runs popauth -user alice on a terminal and types the two
// answers.
func typeSecrets(t *testing.T, path, first, second string) (result, string, bool) {
	t.Helper()
	master, slave := openPTY(t)
	defer master.Close()
	cmd := exec.Command(popauthBin, "-db", path, "-user", "alice")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	scr := &screen{}
	go func() {
		b := make([]byte, 256)
		for {
			n, err := master.Read(b)
			scr.mu.Lock()
			scr.buf.Write(b[:n])
			scr.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	scr.waitFor(t, "New APOP secret for alice: ")
	master.Write([]byte(first + "\n"))
	if second != "" {
		scr.waitFor(t, "Retype the secret: ")
		master.Write([]byte(second + "\n"))
	}
	err := cmd.Wait()
	r := result{}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	echo := echoOn(t, slave)
	slave.Close()
	time.Sleep(50 * time.Millisecond)
	r.stderr = scr.String()
	return r, scr.String(), echo
}

func TestSecretFromTerminalWithoutEcho(t *testing.T) {
	path := newDB(t)
	r, shown, echo := typeSecrets(t, path, "hunter2 is long", "hunter2 is long")
	if r.code != 0 {
		t.Fatalf("popauth on a terminal: %v", r)
	}
	if strings.Contains(shown, "hunter2") {
		t.Errorf("the secret was echoed: %q", shown)
	}
	if !echo {
		t.Error("echo not restored")
	}
	sameSecrets(t, path, map[string]string{"alice": "hunter2 is long"})

	r, shown, echo = typeSecrets(t, path, "one thing", "another")
	if r.code != 1 || !strings.Contains(shown, "do not match") {
		t.Errorf("mismatch: %v", r)
	}
	if !echo {
		t.Error("echo not restored after a mismatch")
	}
	r, shown, _ = typeSecrets(t, path, "", "")
	if r.code != 1 || !strings.Contains(shown, "empty secret") {
		t.Errorf("empty secret: %v", r)
	}
	// ^C at the prompt ends popauth with the terminal as it was.
	r, _, echo = typeSecrets(t, path, "\x03", "")
	if r.code != 1 || !echo {
		t.Errorf("^C: %v, echo restored %v", r, echo)
	}
	sameSecrets(t, path, map[string]string{"alice": "hunter2 is long"})
}
