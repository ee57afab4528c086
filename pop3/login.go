package pop3

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"github.com/popperd/popper/compat"
)

// setUser records the name a login command gives, as qpopper stores it
// in p->user before any check: the records of the refusals name it.
func (s *session) setUser(arg string) {
	s.user, s.userArg = s.b.Name(arg), arg
}

// cmdUser answers USER with pop_user.c's checks in its order: the
// backend's (a user with an APOP secret must use APOP), then the
// clear-text-password policy.
func (s *session) cmdUser(args []string) {
	s.setUser(args[0])
	if err := s.b.User(args[0]); err != nil {
		s.refuse(err)
		return
	}
	if msg := s.clearTextRefusal(); msg != "" {
		s.state = stateAuth1
		s.errf("[%s] %s", compat.RespAuth, msg)
		return
	}
	s.state = stateAuth2
	s.ok(compat.ReplyPasswordRequired, s.user)
}

func (s *session) cmdPass(args []string) {
	s.login(func() (Mailbox, error) { return s.b.Pass(s.userArg, args[0]) })
}

func (s *session) cmdAPOP(args []string) {
	s.setUser(args[0])
	s.login(func() (Mailbox, error) { return s.b.APOP(args[0], s.ts, args[1]) })
}

// clearTextRefusal applies the clear-text-password policy, with qpopper's
// texts; "" allows USER and AUTH PLAIN.
func (s *session) clearTextRefusal() string {
	switch s.cfg.ClearText {
	case "never":
		return compat.ReplyUseAPOP
	case "TLS":
		if !s.tlsOn {
			return compat.ReplyUseTLS
		}
	case "local":
		if !strings.HasPrefix(s.cfg.ClientIP, "127.") {
			return compat.ReplyUseAPOP
		}
	}
	return ""
}

// cmdAuth answers AUTH (RFC 5034). Bare, it is the RFC 1734-era probe and
// lists the mechanisms usable now.
func (s *session) cmdAuth(args []string) {
	if len(args) == 0 {
		s.ok(compat.ReplyAuthMechanisms)
		if s.clearTextRefusal() == "" {
			s.writeLine("PLAIN")
		}
		s.writeLine(".")
		return
	}
	if !strings.EqualFold(args[0], "PLAIN") {
		s.errf(compat.ReplyUnknownMech, args[0])
		return
	}
	s.authPlain(args[1:])
}

// authPlain runs SASL PLAIN (RFC 4616), which is USER and PASS in other
// framing: the same policy, the same Backend calls, the same replies.
// It starts a new login, so a USER before it is forgotten.
func (s *session) authPlain(initial []string) {
	s.state = stateAuth1
	// Refused before the challenge: the password is never sent.
	if msg := s.clearTextRefusal(); msg != "" {
		s.errf("[%s] %s", compat.RespAuth, msg)
		return
	}
	resp, ok := s.saslResponse(initial)
	if !ok {
		return
	}
	authcid, passwd, err := parsePlain(resp)
	if err != nil {
		s.badf("[%s] "+compat.ReplyPlainBad, compat.RespAuth, err)
		return
	}
	s.setUser(authcid)
	if err := s.b.User(authcid); err != nil {
		s.refuse(err)
		return
	}
	s.login(func() (Mailbox, error) { return s.b.Pass(authcid, passwd) })
}

// saslResponse returns the client's decoded response: the initial
// response when there is one ("=" is an empty one), else the line that
// answers an empty challenge. It replies -ERR itself when there is none.
func (s *session) saslResponse(initial []string) ([]byte, bool) {
	var line string
	if len(initial) == 1 {
		if initial[0] == "=" {
			return nil, true
		}
		line = initial[0]
	} else {
		s.writeLine("+ ")
		var ok bool
		if line, ok = s.next(); !ok {
			return nil, false
		}
		if line == "*" {
			s.errf("[%s] %s", compat.RespAuth, compat.ReplyPlainCancelled)
			return nil, false
		}
	}
	b, err := base64.StdEncoding.DecodeString(line)
	if err != nil {
		s.badf("[%s] %s", compat.RespAuth, compat.ReplyPlainBase64)
		return nil, false
	}
	return b, true
}

// parsePlain splits a PLAIN message, authzid NUL authcid NUL passwd. It
// refuses to log in as another user (there is no proxy login) and user
// names that USER could not have carried.
func parsePlain(msg []byte) (authcid, passwd string, err error) {
	f := strings.Split(string(msg), "\x00")
	switch {
	case len(f) != 3 || f[1] == "" || f[2] == "":
		return "", "", errors.New("response must be authzid NUL authcid NUL password")
	case f[0] != "" && f[0] != f[1]:
		return "", "", errors.New("authorization identity must be empty or the user name")
	case strings.ContainsFunc(f[1], func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return "", "", errors.New("user name has invalid characters")
	}
	return f[1], f[2], nil
}

// TextOnly is implemented by a Mailbox whose user logged in asking for
// MIME-less mail (qpopper's "-no-mime" suffix on the user name): every
// message of the session is then sent as with X-MANGLE(TEXT=PLAIN).
type TextOnly interface {
	TextOnly() bool
}

// login runs an authentication that opens the maildrop and enters the
// TRANSACTION state when it succeeds.
func (s *session) login(open func() (Mailbox, error)) {
	began := time.Now()
	mb, err := open()
	if err != nil {
		s.refuse(err)
		return
	}
	s.authAt, s.initTime = began, time.Since(began)
	s.mbox = mb
	if t, ok := mb.(TextOnly); ok && t.TextOnly() {
		s.textOnly = true
	}
	n := mb.Len()
	s.deleted = make([]bool, n)
	s.retr = make([]bool, n)
	var octets int64
	for i := 0; i < n; i++ {
		octets += s.size(i, s.textOnly)
	}
	plural := "s"
	if n == 1 {
		plural = ""
	}
	s.state = stateTrans
	s.ok(compat.ReplyLoggedIn, s.user, n, plural, mb.Hidden(), octets)
}

// refuse sends a backend's refusal of a login step and goes back to the
// AUTHORIZATION state, or ends the session when the backend says so. The
// refusal's records follow its reply, as qpopper's "Failed attempted
// login" follows its -ERR.
func (s *session) refuse(err error) {
	s.state = stateAuth1
	var pe *Error
	if !errors.As(err, &pe) {
		s.errf("[%s] %v", compat.RespTemp, err)
		return
	}
	s.errf("%s", pe.Error())
	if len(pe.Log) > 0 {
		s.flush()
		for _, l := range pe.Log {
			s.logNotice(l)
		}
	}
	if pe.Close {
		s.state, s.closing = stateDone, true
	}
}

func (s *session) cmdSTLS(args []string) {
	switch {
	case s.cfg.TLS == nil:
		s.badf(compat.ReplySTLSNotEnabled)
		return
	case s.tlsOn:
		s.badf(compat.ReplySTLSInProgress)
		return
	}
	s.ok(compat.ReplySTLS)
	if err := s.flush(); err != nil {
		return
	}
	// Anything the client pipelined after STLS was sent in the clear and
	// must not be executed inside TLS (CVE-2011-0411): it sits in the
	// plain-text reader, which setConn below replaces, so it is dropped.
	tc := tls.Server(s.conn, s.cfg.TLS)
	tc.SetDeadline(time.Now().Add(s.timeout))
	if err := tc.Handshake(); err != nil {
		// qpopper went on in the clear; a client that asked for TLS and
		// did not get it must not send its password next.
		s.logNotice(compat.TLSHandshakeFailed(err))
		s.state = stateDone
		return
	}
	tc.SetDeadline(time.Time{})
	s.setConn(tc)
	s.tlsOn = true
	s.user, s.userArg = "", ""
	s.state = stateAuth1
}
