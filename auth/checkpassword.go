package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Checkpassword asks an external program with the checkpassword
// interface of qmail (cr.yp.to/checkpwd/interface.html): popper runs
//
//	program [args...] reporter
//
// as root with "name\0password\0timestamp\0" to read on descriptor 3. The
// program exits 1 for a wrong password, 2 when misused and 111 when it
// cannot check now; on success it becomes the user (uid, gid, $HOME) and
// runs reporter, which is popper itself (IdentityFlag): it writes the
// identity the program chose on its standard output, so accounts the
// program knows and /etc/passwd does not are served too.
type Checkpassword struct {
	Argv     []string // the program and its arguments
	Reporter []string // popper's own path and IdentityFlag
	Client   Client
	Timeout  time.Duration // 0 = 30 s
}

// IdentityFlag is the argument that makes popper print its uid, gid and
// $HOME (see ReportIdentity) instead of serving.
const IdentityFlag = "--checkpassword-identity"

// ReportIdentity is popper run as the checkpassword program's
// subprogram: one line "uid gid home" on standard output.
func ReportIdentity() int {
	fmt.Printf("%d %d %s\n", os.Getuid(), os.Getgid(), os.Getenv("HOME"))
	return 0
}

func (c *Checkpassword) Name() string { return "checkpassword" }

// maxCredentials is the interface's limit on what descriptor 3 carries.
const maxCredentials = 512

func (c *Checkpassword) Authenticate(name, password string) (*Account, error) {
	if password == "" {
		return nil, ErrWrongPassword
	}
	creds := name + "\x00" + password + "\x00\x00"
	if len(creds) > maxCredentials || strings.ContainsRune(name+password, 0) {
		return nil, ErrWrongPassword
	}
	if len(c.Argv) == 0 {
		return nil, &TempError{Source: c.Name(), Err: errors.New("no program configured (set checkpassword)")}
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	r, w, err := os.Pipe()
	if err != nil {
		return nil, &TempError{Source: c.Name(), Err: err}
	}
	args := append(append([]string{}, c.Argv[1:]...), c.Reporter...)
	cmd := exec.CommandContext(ctx, c.Argv[0], args...)
	cmd.ExtraFiles = []*os.File{r} // descriptor 3
	// Only what a checker may need: a PATH and ucspi-tcp's names of the
	// peer, which some checkers log.
	cmd.Env = []string{"PATH=/usr/bin:/bin:/usr/sbin:/sbin", "TCPREMOTEIP=" + c.Client.IP, "TCPREMOTEHOST=" + c.Client.Host}
	// A checker that hangs is killed with everything it started, and its
	// output pipes are not waited for past the timeout.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, &TempError{Source: c.Name(), Err: err}
	}
	r.Close()
	w.WriteString(creds) // fits in any pipe buffer: at most 512 bytes
	w.Close()
	err = cmd.Wait()
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return nil, &TempError{Source: c.Name(), Err: fmt.Errorf("%s did not answer within %v", c.Argv[0], timeout)}
	case errors.As(err, &ee):
		ws, _ := ee.Sys().(syscall.WaitStatus)
		switch {
		case ws.Signaled():
			return nil, &TempError{Source: c.Name(), Err: fmt.Errorf("%s killed by %v", c.Argv[0], ws.Signal())}
		case ee.ExitCode() == 111:
			return nil, &TempError{Source: c.Name(), Err: fmt.Errorf("%s exited 111 (temporary failure) %s", c.Argv[0], strings.TrimSpace(errOut.String()))}
		case ee.ExitCode() == 2:
			return nil, &TempError{Source: c.Name(), Err: fmt.Errorf("%s exited 2 (misused) %s", c.Argv[0], strings.TrimSpace(errOut.String()))}
		}
		return nil, fmt.Errorf("%s exited %d: %w", c.Argv[0], ee.ExitCode(), ErrWrongPassword)
	case err != nil:
		return nil, &TempError{Source: c.Name(), Err: err}
	}
	a, err := parseIdentity(name, out.String())
	if err != nil {
		return nil, &TempError{Source: c.Name(), Err: fmt.Errorf("%s accepted %s but the reporter said %q: %v", c.Argv[0], name, out.String(), err)}
	}
	return a, nil
}

// parseIdentity reads ReportIdentity's line.
func parseIdentity(name, line string) (*Account, error) {
	f := strings.SplitN(strings.TrimSuffix(line, "\n"), " ", 3)
	if len(f) != 3 || strings.Contains(f[2], "\n") {
		return nil, errors.New("not one line of uid gid home")
	}
	uid, err1 := strconv.Atoi(f[0])
	gid, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || uid < 0 || gid < 0 {
		return nil, errors.New("bad uid or gid")
	}
	a := &Account{Name: name, UID: uid, GID: gid, Home: f[2]}
	// The shell, for the record, from the system where it knows the user.
	if sys, err := LookupSystem(name); err == nil && sys.UID == uid {
		a.Shell = sys.Shell
	}
	return a, nil
}

// Lookup asks the system: a checkpassword program cannot be asked about
// a user without a password.
func (c *Checkpassword) Lookup(name string) (*Account, error) { return LookupSystem(name) }

// Problems reports a program that is missing, not an absolute path, or
// writable by anyone but root (it runs as root).
func (c *Checkpassword) Problems() []error {
	if len(c.Argv) == 0 {
		return []error{errors.New("checkpassword: auth-source is checkpassword but no checkpassword program is set")}
	}
	p := c.Argv[0]
	if !filepath.IsAbs(p) {
		return []error{fmt.Errorf("checkpassword: %s is not an absolute path", p)}
	}
	f, err := openAdminFile(p)
	if err != nil {
		return []error{fmt.Errorf("checkpassword: %v", err)}
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&0o111 == 0 {
		return []error{fmt.Errorf("checkpassword: %s is not executable", p)}
	}
	return nil
}
