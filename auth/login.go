package auth

import (
	"crypto/md5"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"syscall"
	"time"

	"github.com/popperd/popper/compat"
)

// BlockUID is qpopper's BLOCK_UID: accounts with a uid up to and
// including it (root, daemons) may not log in.
const BlockUID = 10

// Secrets is the APOP database as the login policy reads it.
type Secrets interface {
	Secret(name string) (string, bool)
}

// Refusal is a login refused with one of qpopper's replies. Close asks
// the caller to end the connection after sending it (too many failures).
// Log holds the notices the caller writes once the reply is sent: qpopper
// logs "Failed attempted login" after its -ERR (pop_pass.c).
type Refusal struct {
	Code  string // compat.RespAuth, RespTemp or RespPerm
	Text  string
	Close bool
	Log   []string
}

func (r *Refusal) Error() string { return "[" + r.Code + "] " + r.Text }

func refusal(code, format string, args ...any) *Refusal {
	return &Refusal{Code: code, Text: fmt.Sprintf(format, args...)}
}

// Policy is qpopper's login policy around a Source for one connection:
// the access files, BLOCK_UID, the clear-text rule for APOP users, and
// the delay after a failed attempt. Every refusal of an attempt is sent
// Delay after the attempt began, whatever its cause and however long the
// check took, so neither the text nor the time tells an unknown user
// from a wrong password, a locked account or a blocked uid.
type Policy struct {
	Source Source
	// OpenAPOP opens the APOP database; nil when none is configured. A
	// database that does not exist is fs.ErrNotExist.
	OpenAPOP func() (Secrets, error)
	// ClearText is clear-text-password; anything but "always" refuses
	// USER and AUTH PLAIN for users who have an APOP secret (pop_user.c).
	ClearText   string
	AuthFile    string // only the users listed may log in
	NonauthFile string // the users listed may not log in
	Delay       time.Duration
	MaxFailures int // 0 = no limit
	Client      Client
	// Log records at qpopper's levels; nil = not logged.
	Notice, Info, Debug func(string)

	// Clock and sleep, replaced by tests.
	Now   func() time.Time
	Sleep func(time.Duration)

	failures int
}

func (p *Policy) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func (p *Policy) notice(format string, args ...any) {
	if p.Notice != nil {
		p.Notice(fmt.Sprintf(format, args...))
	}
}

func (p *Policy) info(format string, args ...any) {
	if p.Info != nil {
		p.Info(fmt.Sprintf(format, args...))
	}
}

func (p *Policy) debug(format string, args ...any) {
	if p.Debug != nil {
		p.Debug(fmt.Sprintf(format, args...))
	}
}

// refuse waits until Delay after began, counts the failure (unless the
// source could not answer) and closes the connection after MaxFailures.
func (p *Policy) refuse(began time.Time, user string, r *Refusal, counts bool) *Refusal {
	if wait := began.Add(p.Delay).Sub(p.now()); wait > 0 {
		if p.Sleep != nil {
			p.Sleep(wait)
		} else {
			time.Sleep(wait)
		}
	}
	if counts {
		p.failures++
		if p.MaxFailures > 0 && p.failures >= p.MaxFailures {
			r.Close = true
			r.Log = append(r.Log, fmt.Sprintf(compat.LogTooManyFailures, p.failures, user, p.Client.Host, p.Client.IP))
		}
	}
	return r
}

// User applies the clear-text rule qpopper checked at USER: unless
// clear-text passwords are always allowed, a user with an APOP secret
// must use APOP.
func (p *Policy) User(name string) error {
	if p.ClearText == "always" || p.OpenAPOP == nil {
		return nil
	}
	db, err := p.OpenAPOP()
	var me modeError
	switch {
	case errors.As(err, &me):
		return refusal(compat.RespPerm, compat.ReplyAPOPDBModeUser, me.Mode())
	case err != nil:
		if !errors.Is(err, fs.ErrNotExist) {
			// qpopper ignored a database it could not open; say why.
			p.notice(compat.LogAPOPDatabase, err)
		}
		return nil
	}
	if _, ok := db.Secret(name); ok {
		return refusal(compat.RespAuth, compat.ReplyUseStrongerAuth)
	}
	return nil
}

// modeError is an APOP database refused for its mode.
type modeError interface{ Mode() fs.FileMode }

// listed applies nonauth-file, then auth-file: one user name per line,
// compared exactly.
func (p *Policy) listed(name string) bool {
	if p.NonauthFile != "" && fileListsUser(p.NonauthFile, name) {
		return false
	}
	if p.AuthFile != "" && !fileListsUser(p.AuthFile, name) {
		return false
	}
	return true
}

func fileListsUser(path, name string) bool {
	f, err := openAdminFile(path)
	if err != nil {
		return false
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.TrimRight(line, "\r") == name {
			return true
		}
	}
	return false
}

// Pass checks a clear-text password (PASS, and AUTH PLAIN).
func (p *Policy) Pass(name, password string) (*Account, error) {
	began := p.now()
	if !p.listed(name) {
		return nil, p.refuse(began, name, refusal(compat.RespAuth, compat.ReplyAccessDenied, name), true)
	}
	a, err := p.Source.Authenticate(name, password)
	return p.decide(began, name, a, err, compat.LogFailedLogin)
}

// Unknown refuses a name that cannot name an account (one unsafe in a
// file name) exactly as an unknown user is refused.
func (p *Policy) Unknown(name string) error {
	_, err := p.decide(p.now(), name, nil, ErrUnknownUser, compat.LogFailedLogin)
	return err
}

// decide turns a source's answer into the session's account or refusal.
// failedLog is the record written for a failed check ("" = none).
func (p *Policy) decide(began time.Time, name string, a *Account, err error, failedLog string) (*Account, error) {
	var te *TempError
	switch {
	case errors.As(err, &te):
		p.notice(compat.LogLoginDetail, name, err)
		return nil, p.refuse(began, name, refusal(compat.RespTemp, compat.ReplyAuthUnavailable), false)
	case errors.Is(err, ErrAccountExpired):
		p.debug(compat.LogLoginDetail, name, err)
		return nil, p.refuse(began, name, refusal(compat.RespAuth, compat.ReplyAccountExpired, name), true)
	case errors.Is(err, ErrPasswordExpired):
		p.debug(compat.LogLoginDetail, name, err)
		return nil, p.refuse(began, name, refusal(compat.RespAuth, compat.ReplyPasswordExpired, name), true)
	case err != nil:
		if errors.Is(err, ErrUnknownHash) {
			p.notice(compat.LogLoginDetail, name, err) // the admin must hear of this one
		} else {
			p.debug(compat.LogLoginDetail, name, err)
		}
		r := refusal(compat.RespAuth, compat.ReplyBadPassword, name)
		if failedLog != "" {
			r.Log = []string{fmt.Sprintf(failedLog, name, p.Client.Host, p.Client.IP)}
		}
		return nil, p.refuse(began, name, r, true)
	case a.UID <= BlockUID:
		return nil, p.refuse(began, name, refusal(compat.RespAuth, compat.ReplyBlockedUID, BlockUID), true)
	}
	return a, nil
}

// APOP checks a digest over the greeting's timestamp and the user's
// secret from the APOP database (qpopper's pop_apop.c, with PASS's delay
// added and BLOCK_UID applied as for PASS).
func (p *Policy) APOP(name, timestamp, digest string) (*Account, error) {
	began := p.now()
	p.info(compat.LogAPOP, name)
	if !p.listed(name) {
		return nil, p.refuse(began, name, refusal(compat.RespAuth, compat.ReplyPermissionDenied), true)
	}
	if p.OpenAPOP == nil {
		return nil, p.refuse(began, name, unavailable(name, fs.ErrNotExist), false)
	}
	db, err := p.OpenAPOP()
	var me modeError
	switch {
	case errors.As(err, &me):
		return nil, p.refuse(began, name, refusal(compat.RespPerm, compat.ReplyAPOPDBModeAPOP, me.Mode()), false)
	case err != nil:
		p.notice(compat.LogAPOPDatabase, err)
		return nil, p.refuse(began, name, unavailable(name, err), false)
	}
	secret, ok := db.Secret(name)
	if !ok {
		return nil, p.refuse(began, name, refusal(compat.RespAuth, compat.ReplyNotAuthenticated), true)
	}
	sum := md5.Sum([]byte(timestamp + secret))
	want := hex.EncodeToString(sum[:])
	// qpopper compares the lowercase hex digest exactly.
	if subtle.ConstantTimeCompare([]byte(want), []byte(digest)) != 1 {
		return nil, p.refuse(began, name, refusal(compat.RespAuth, compat.ReplyAuthFailure), true)
	}
	a, err := p.Source.Lookup(name)
	return p.decide(began, name, a, err, "")
}

// unavailable is qpopper's reply for a database it could not open; a
// database that is not there is ENOENT, as the C open said.
func unavailable(name string, err error) *Refusal {
	var en syscall.Errno
	if !errors.As(err, &en) && errors.Is(err, fs.ErrNotExist) {
		err = syscall.ENOENT
	}
	text, errno := compat.Strerror(err)
	return refusal(compat.RespTemp, compat.ReplyAPOPDBUnavailable, name, text, errno)
}
