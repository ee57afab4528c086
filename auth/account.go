// Package auth owns accounts and credentials: who a mail user is on the
// system (passwd, shadow, master.passwd, a PAM stack, a checkpassword
// program or popper's own user database), whether a password or an APOP
// digest proves it, and qpopper's login policy around that (auth-file and
// nonauth-file, BLOCK_UID, password expiry, the clear-text rules for APOP
// users, the delay after a failed attempt).
//
// It runs before the privilege drop: the session process is still root
// when it reads /etc/shadow or the APOP database. It knows nothing of the
// protocol; its refusals carry qpopper's reply texts, which compat holds.
package auth

import (
	"errors"
	"fmt"
	"os/user"
	"slices"
	"strconv"
)

// Account is a mail user: the identity a session takes and where the
// user's files are.
type Account struct {
	Name  string
	UID   int
	GID   int
	Home  string
	Shell string
	// Mailbox is an explicit spool path (popper's user database only);
	// "" means the configured spool directory.
	Mailbox string
}

// Source is one place accounts and passwords come from.
type Source interface {
	// Name names the source in log lines and --check-config: "system",
	// "pam", "checkpassword" or "userdb".
	Name() string
	// Authenticate checks a clear-text password. It returns the account
	// and nil, or an error wrapping one of the Err values below or a
	// *TempError. ErrAccountExpired and ErrPasswordExpired come only
	// after the password matched, with the account.
	Authenticate(name, password string) (*Account, error)
	// Lookup returns an account without a password check (APOP, whose
	// secret lives elsewhere; the boot-time sweep). ErrUnknownUser when
	// there is none.
	Lookup(name string) (*Account, error)
	// Problems lists what would make every login through this source
	// fail (an unreadable shadow file, a missing program), for
	// --check-config; nil when it looks usable.
	Problems() []error
}

// The refusals a Source reports. Callers tell the client only "wrong
// password" for the first four, so that an unknown name, a locked account
// and a hash popper cannot check all look the same from outside.
var (
	ErrUnknownUser     = errors.New("no such user")
	ErrWrongPassword   = errors.New("wrong password")
	ErrLocked          = errors.New("account locked or without a password")
	ErrUnknownHash     = errors.New("password hash in a format popper cannot check")
	ErrAccountExpired  = errors.New("account expired")
	ErrPasswordExpired = errors.New("password expired")
)

// TempError is a source that could not answer: an unreadable shadow file,
// a checkpassword program that exited 111, a PAM system error. The client
// is told to try again later; nothing about the account is revealed.
type TempError struct {
	Source string
	Err    error
}

func (e *TempError) Error() string { return fmt.Sprintf("%s: %v", e.Source, e.Err) }
func (e *TempError) Unwrap() error { return e.Err }

// Client is the peer a login comes from, for the sources that pass it on
// (PAM's PAM_RHOST and PAM_TTY, as qpopper set them).
type Client struct {
	Host string // reverse-looked-up name, or the address
	IP   string
}

// InGroup reports whether the account's primary group is the named group
// or the group lists the account as a member (qpopper's check_group, for
// group-server-mode and group bulletins).
func (a *Account) InGroup(group string) bool {
	g, err := user.LookupGroup(group)
	if err != nil {
		return false
	}
	if g.Gid == strconv.Itoa(a.GID) {
		return true
	}
	u, err := user.Lookup(a.Name)
	if err != nil {
		return false
	}
	ids, err := u.GroupIds()
	if err != nil {
		return false
	}
	return slices.Contains(ids, g.Gid)
}
