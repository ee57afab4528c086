package platform

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// detachEnv names the descriptor on which a detached daemon reports that
// it is ready, to the process that started it.
const detachEnv = "POPPER_DETACH_FD"

// Detach starts this program again with args in the background (a
// session of its own, standard input, output and error on /dev/null) and
// waits, up to timeout, for it to call Detached: nil once it listens, or
// the error that stopped it.
func Detach(args []string, timeout time.Duration) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer null.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	cmd := exec.Command(exe)
	cmd.Args = args
	cmd.Env = append(os.Environ(), detachEnv+"=3")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, null, null
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return err
	}
	cmd.Process.Release()
	r.SetReadDeadline(time.Now().Add(timeout))
	line, err := bufio.NewReader(r).ReadString('\n')
	switch {
	case line == "ready\n":
		return nil
	case line != "":
		return errors.New(strings.TrimSpace(line))
	case err != nil:
		return fmt.Errorf("the detached daemon said nothing: %v", err)
	}
	return nil
}

// Detached tells the process that started this one with Detach that it
// is ready (err nil) or has failed; it does nothing when this process was
// not started so. Its standard error is then /dev/null: this is where
// the reason for a failure to start can still be seen.
func Detached(err error) {
	v := os.Getenv(detachEnv)
	if v == "" {
		return
	}
	os.Unsetenv(detachEnv)
	f := os.NewFile(3, "detach")
	if f == nil {
		return
	}
	defer f.Close()
	if err != nil {
		fmt.Fprintf(f, "%s\n", strings.ReplaceAll(err.Error(), "\n", "; "))
		return
	}
	f.WriteString("ready\n")
}
