// Package pop3 implements the POP3 protocol (RFC 1939, RFC 2449, RFC 3206)
// as qpopper 4 speaks it. It knows nothing of files: storage is reached
// through the Backend and Mailbox interfaces.
package pop3

import (
	"fmt"
	"io"
)

// Mailbox is one user's maildrop for the length of a session. Message
// indexes are 0-based; the protocol numbers them from 1. The set of
// messages is fixed for the session (RFC 1939: mail that arrives during
// the session is not seen).
type Mailbox interface {
	// Len is the number of visible messages.
	Len() int
	// Hidden is the number of messages kept out of sight (qpopper's UW
	// kluge), reported in the PASS reply only.
	Hidden() int
	// Size is the message size in octets as reported by STAT, LIST and
	// RETR (qpopper's counting: LF counted as CRLF, separator excluded).
	Size(i int) int64
	// UID is the unique-id listing value (UIDL).
	UID(i int) string
	// WriteMessage writes message i in wire form before line-end
	// conversion and byte-stuffing: header lines (X-UIDL inserted,
	// Content-Length removed), the blank line, then at most bodyLines body
	// lines (all of them when bodyLines < 0). Lines end in LF (or CRLF
	// where stored so).
	WriteMessage(w io.Writer, i int, bodyLines int) error
	// Update commits the session at QUIT (and on an aborted session when
	// update-on-abort is on). It must return only once the result is
	// durable: the +OK to QUIT follows it.
	Update(c Changes) error
	// Restore ends a session without committing deletions (abort with
	// update-on-abort off). Mail is left as it was.
	Restore() error
}

// UIDAppender is a Mailbox that can append message i's UID to a buffer
// without making a string of it: a UIDL listing every message then
// allocates nothing for them (a session of 1 GiB lists 200,000).
type UIDAppender interface {
	AppendUID(dst []byte, i int) []byte
}

// Changes are what a session did to its mailbox, indexed like Mailbox.
type Changes struct {
	Deleted   []bool
	Retrieved []bool // RETR'd in this session (TOP does not count)
}

// Backend authenticates users and opens their mailboxes. It owns
// privileges, names and locks; the protocol only relays its answers.
type Backend interface {
	// Name is the name a USER, APOP or AUTH PLAIN argument stands for, as
	// qpopper keeps it for the replies ("Password required for NAME.")
	// and every log record of the session: with the user-name options
	// applied. It refuses nothing.
	Name(arg string) string
	// User is called for USER, and for AUTH PLAIN with its authcid; a
	// non-nil error refuses the name (policy, not password: e.g.
	// clear-text refused).
	User(name string) error
	// Pass authenticates name with a clear-text password, from PASS or
	// AUTH PLAIN, and opens the maildrop.
	Pass(name, password string) (Mailbox, error)
	// APOP authenticates name with an APOP digest over the greeting's
	// timestamp and opens the maildrop.
	APOP(name, timestamp, digest string) (Mailbox, error)
}

// Error is a -ERR reply with an optional RFC 2449/3206 response code.
// Backends return it to control the exact text a client sees; any other
// error is reported as [SYS/TEMP].
type Error struct {
	Code string // "IN-USE", "SYS/TEMP", "SYS/PERM", "AUTH", or ""
	Text string
	// Close ends the session once this refusal of USER, PASS, APOP or
	// AUTH is sent, without reading another command: for a client that
	// must not try again on this connection (too many failed logins).
	// No mailbox is open then, so there is nothing to update.
	Close bool
	// Log holds records for the session to log once the reply is sent
	// (qpopper logs a failed PASS after its -ERR).
	Log []string
}

func (e *Error) Error() string {
	if e.Code == "" {
		return e.Text
	}
	return fmt.Sprintf("[%s] %s", e.Code, e.Text)
}

// Errorf builds an *Error.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Text: fmt.Sprintf(format, args...)}
}
