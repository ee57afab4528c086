//go:build pam && cgo

package auth

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/msteinert/pam/v2"
)

// NewPAM returns a Source that checks passwords through the PAM stack
// named service, as qpopper built with --with-pam did: for hosts whose
// accounts live in LDAP, Kerberos or NIS, where popper cannot read the
// hashes itself. client is passed to the modules as PAM_RHOST (the host
// name) and PAM_TTY (the address), as qpopper set them. lookup finds the
// account (uid, gid, home, shell) once PAM has said yes, and serves
// Lookup; the caller passes the system passwd lookup.
//
// This file is built only with -tags pam and cgo; it links -lpam.
func NewPAM(service string, client Client, lookup func(name string) (*Account, error)) (Source, error) {
	switch {
	case service == "":
		return nil, errors.New("auth: PAM service name is empty")
	case strings.ContainsAny(service, "/\x00"):
		// Linux-PAM would silently use only what follows the last slash.
		return nil, fmt.Errorf("auth: PAM service name %q is not a plain name", service)
	case lookup == nil:
		return nil, errors.New("auth: PAM source needs an account lookup")
	}
	return &pamSource{service: service, client: client, lookup: lookup}, nil
}

type pamSource struct {
	service string
	client  Client
	lookup  func(name string) (*Account, error)
}

func (s *pamSource) Name() string { return "pam" }

func (s *pamSource) Lookup(name string) (*Account, error) { return s.lookup(name) }

// pamMu keeps PAM transactions one at a time in the process: modules are
// not reentrant (getpwnam and getspnam buffers, static state), and a
// session process has only one login to check anyway.
var pamMu sync.Mutex

// Authenticate runs one PAM transaction: pam_start, PAM_RHOST and PAM_TTY,
// pam_authenticate, pam_acct_mgmt, pam_setcred(PAM_ESTABLISH_CRED) and
// pam_end, as qpopper did (no session: the process drops root right
// after). The errors name the PAM step and PAM's text for the log; the
// client must only ever see the generic refusal, since PAM's "User not
// known" and "Authentication failure" would tell which names exist.
func (s *pamSource) Authenticate(name, password string) (*Account, error) {
	switch {
	case password == "":
		// qpopper refuses null passwords; PAM is not asked.
		return nil, fmt.Errorf("%w: empty password", ErrWrongPassword)
	case strings.IndexByte(password, 0) >= 0:
		return nil, fmt.Errorf("%w: password contains a NUL byte", ErrWrongPassword)
	case name == "" || strings.IndexByte(name, 0) >= 0:
		// PAM would prompt for a name or see only the part before the NUL.
		return nil, fmt.Errorf("%w: %q is not a user name PAM can be given", ErrUnknownUser, name)
	}
	// The transaction runs on a goroutine of its own, wired to one OS
	// thread from pam_start to pam_end, so that the modules' thread-local
	// state and the conversation callback (which cgo runs on the calling
	// thread) all see one thread. The thread is never unlocked: it ends
	// with the goroutine, and whatever a module left on it goes too.
	type result struct {
		acct *Account
		err  error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		acct, err := s.transaction(name, password)
		done <- result{acct, err}
	}()
	r := <-done
	return r.acct, r.err
}

func (s *pamSource) transaction(name, password string) (*Account, error) {
	pamMu.Lock()
	defer pamMu.Unlock()

	// The conversation qpopper had: the name for echo-on prompts, the
	// password for echo-off ones, an empty reply to messages, and a
	// failure for anything else. Messages are kept for the log.
	var said []string
	conv := pam.ConversationFunc(func(style pam.Style, msg string) (string, error) {
		switch style {
		case pam.PromptEchoOn:
			return name, nil
		case pam.PromptEchoOff:
			return password, nil
		case pam.ErrorMsg, pam.TextInfo:
			if msg = strings.TrimSpace(msg); msg != "" {
				said = append(said, msg)
			}
			return "", nil
		}
		return "", fmt.Errorf("PAM conversation: message style %d not supported", style)
	})

	tx, err := pam.Start(s.service, name, conv)
	if err != nil {
		return nil, s.tempError("pam_start", err, nil)
	}
	defer tx.End()

	// Before pam_authenticate, so that the modules can log and check
	// them (qpopper set them only afterwards).
	if s.client.Host != "" {
		if err := tx.SetItem(pam.Rhost, s.client.Host); err != nil {
			return nil, s.tempError("pam_set_item(PAM_RHOST)", err, nil)
		}
	}
	if s.client.IP != "" {
		if err := tx.SetItem(pam.Tty, s.client.IP); err != nil {
			return nil, s.tempError("pam_set_item(PAM_TTY)", err, nil)
		}
	}

	// PAM_DISALLOW_NULL_AUTHTOK: an account with an empty password must
	// not let any password in, even where the stack says nullok.
	if err := tx.Authenticate(pam.DisallowNullAuthtok); err != nil {
		return nil, s.refusal("pam_authenticate", err, said)
	}
	// A module may have changed PAM_USER (a directory's canonical
	// spelling, a mapping). popper's policy (auth-file, nonauth-file,
	// BLOCK_UID) and the mailbox go by the name the client gave, so a
	// login PAM accepted as someone else is refused rather than guessed.
	if u, err := tx.GetItem(pam.User); err == nil && u != name {
		return nil, fmt.Errorf("%w: PAM authenticated %q as %q; popper does not follow a renamed PAM_USER", ErrWrongPassword, name, u)
	}
	if err := tx.AcctMgmt(pam.DisallowNullAuthtok); err != nil {
		code, _ := pamCode(err)
		switch code {
		case pam.ErrAcctExpired:
			return s.matched(name, fmt.Errorf("%w: %s", ErrAccountExpired, pamText("pam_acct_mgmt", err, said)))
		case pam.ErrNewAuthtokReqd:
			return s.matched(name, fmt.Errorf("%w: %s", ErrPasswordExpired, pamText("pam_acct_mgmt", err, said)))
		}
		return nil, s.refusal("pam_acct_mgmt", err, said)
	}
	if err := tx.SetCred(pam.EstablishCred); err != nil {
		return nil, s.refusal("pam_setcred", err, said)
	}
	return s.matched(name, nil)
}

// matched looks up the account PAM accepted (or accepted the password of,
// with refusal ErrAccountExpired or ErrPasswordExpired).
func (s *pamSource) matched(name string, refusal error) (*Account, error) {
	acct, err := s.lookup(name)
	var temp *TempError
	switch {
	case err == nil && acct != nil:
		return acct, refusal
	case errors.As(err, &temp):
		return nil, err
	case acct != nil && (errors.Is(err, ErrAccountExpired) || errors.Is(err, ErrPasswordExpired)):
		// The system's own files close the account (LookupSystem does
		// so for an expired shadow entry); PAM has matched the password.
		if refusal != nil {
			return acct, refusal
		}
		return acct, err
	case err == nil:
		return nil, fmt.Errorf("%w: PAM service %q accepted %q but the system has no such account", ErrUnknownUser, s.service, name)
	}
	return nil, fmt.Errorf("%w: PAM service %q accepted %q but the system has no such account: %v", ErrUnknownUser, s.service, name, err)
}

// refusal maps a failed pam_authenticate, pam_acct_mgmt or pam_setcred to
// the auth errors: PAM_USER_UNKNOWN to ErrUnknownUser, PAM's "could not
// answer" and "broken stack" codes to a *TempError, and everything else (PAM_AUTH_ERR,
// PAM_MAXTRIES, PAM_PERM_DENIED, PAM_CRED_INSUFFICIENT, codes popper does
// not know) to ErrWrongPassword.
func (s *pamSource) refusal(step string, err error, said []string) error {
	code, _ := pamCode(err)
	switch {
	case code == pam.ErrUserUnknown:
		return fmt.Errorf("%w: %s", ErrUnknownUser, pamText(step, err, said))
	case pamTemporary(code):
		return s.tempError(step, err, said)
	}
	return fmt.Errorf("%w: %s", ErrWrongPassword, pamText(step, err, said))
}

func (s *pamSource) tempError(step string, err error, said []string) error {
	return &TempError{Source: "pam", Err: errors.New(pamText(step, err, said))}
}

// pamTemporary reports the codes that say PAM could not answer rather
// than that it said no: an unreachable directory or KDC, a system or
// memory error, a failed conversation (ours), an aborted stack, and a
// broken stack (a module that cannot be loaded or run), which the admin
// must hear of rather than see as failed logins.
func pamTemporary(code pam.Error) bool {
	switch code {
	case pam.ErrAuthinfoUnavail, pam.ErrSystem, pam.ErrBuf, pam.ErrConv, pam.ErrAbort,
		pam.ErrOpen, pam.ErrSymbol, pam.ErrService, pam.ErrModuleUnknown:
		return true
	}
	return false
}

func pamCode(err error) (pam.Error, bool) {
	var code pam.Error
	ok := errors.As(err, &code)
	return code, ok
}

// pamText is what a log line needs: the step, PAM's text and code, and
// what the modules said through the conversation.
func pamText(step string, err error, said []string) string {
	var b strings.Builder
	b.WriteString(step)
	b.WriteString(": ")
	b.WriteString(err.Error())
	if code, ok := pamCode(err); ok {
		fmt.Fprintf(&b, " (PAM code %d)", int(code))
	}
	for _, m := range said {
		fmt.Fprintf(&b, "; module said %q", m)
	}
	return b.String()
}

// Problems reports a service PAM has no configuration for: Linux-PAM then
// uses the "other" service without a word, and OpenPAM and Solaris do
// the same, which is rarely what an administrator meant.
func (s *pamSource) Problems() []error {
	return pamConfigProblems(s.service, runtime.GOOS, "/")
}

// pamConfigProblems looks for service's configuration the way the PAM
// library of goos does, under root (a test's stand-in for "/").
func pamConfigProblems(service, goos, root string) []error {
	at := func(p string) string { return filepath.Join(root, p) }
	dirs := []string{"/etc/pam.d"}
	confs := []string{"/etc/pam.conf"}
	name := service
	switch goos {
	case "linux":
		// Linux-PAM lowercases the service name and also reads the
		// vendor directory; it reads pam.conf only when neither
		// directory exists.
		name = strings.ToLower(service)
		dirs = append(dirs, "/usr/lib/pam.d")
		for _, d := range dirs {
			if fi, err := os.Stat(at(d)); err == nil && fi.IsDir() {
				confs = nil
				break
			}
		}
	case "freebsd", "netbsd", "dragonfly", "darwin":
		// OpenPAM's policy path.
		dirs = append(dirs, "/usr/local/etc/pam.d")
		confs = append(confs, "/usr/local/etc/pam.conf")
	}
	var problems []error
	for _, d := range dirs {
		p := filepath.Join(d, name)
		_, err := os.Stat(at(p))
		if err == nil {
			return nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			problems = append(problems, fmt.Errorf("PAM service %s: %v", service, err))
		}
	}
	for _, c := range confs {
		found, err := pamConfHasService(at(c), service)
		if found {
			return nil
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			problems = append(problems, fmt.Errorf("PAM service %s: %v", service, err))
		}
	}
	problems = append(problems, fmt.Errorf("PAM service %s has no /etc/pam.d/%s; PAM will use 'other'", service, name))
	return problems
}

// pamConfHasService reports whether a pam.conf file has a line for
// service (the first field; PAM compares it without regard to case).
func pamConfHasService(path, service string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		if fields := strings.Fields(line); len(fields) > 0 && strings.EqualFold(fields[0], service) {
			return true, nil
		}
	}
	return false, sc.Err()
}
