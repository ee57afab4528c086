package platform

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// Tests that need a second process re-execute the test binary with
// POPPER_PLATFORM_HELPER naming one of these helpers. A helper prints
// "ready" once it holds what it was asked to hold, then waits for its
// stdin to close.
var helpers = map[string]func(args []string) error{}

func TestMain(m *testing.M) {
	if name := os.Getenv("POPPER_PLATFORM_HELPER"); name != "" {
		h, ok := helpers[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "unknown helper %q\n", name)
			os.Exit(2)
		}
		if err := h(os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// helperCommand builds the command that runs helper name with args.
func helperCommand(t *testing.T, name string, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), "POPPER_PLATFORM_HELPER="+name)
	return cmd
}

// heldByHelper is a helper process holding something until released.
type heldByHelper struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	once  sync.Once
}

// startHolder runs helper name and waits until it reports "ready".
func startHolder(t *testing.T, name string, args ...string) *heldByHelper {
	t.Helper()
	cmd := helperCommand(t, name, args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &heldByHelper{cmd: cmd, stdin: stdin}
	t.Cleanup(func() { h.kill() })
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- line
	}()
	select {
	case line := <-ready:
		if strings.TrimSpace(line) != "ready" {
			cmd.Wait()
			t.Fatalf("helper %s: got %q, stderr %q", name, line, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("helper %s not ready; stderr %q", name, stderr.String())
	}
	return h
}

// release asks the helper to let go and waits for it to exit cleanly.
func (h *heldByHelper) release(t *testing.T) {
	t.Helper()
	h.stdin.Close()
	var err error
	h.once.Do(func() { err = h.cmd.Wait() })
	if err != nil {
		t.Fatalf("helper exit: %v", err)
	}
}

// kill ends the helper abruptly, as a crash would.
func (h *heldByHelper) kill() {
	h.once.Do(func() {
		h.cmd.Process.Kill()
		h.cmd.Wait()
	})
}

// holdUntilStdinCloses prints "ready" and blocks until stdin is closed.
func holdUntilStdinCloses() {
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
}
