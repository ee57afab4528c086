package pop3

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/popperd/popper/compat"
)

// Logger receives the session's log records (platform.Logger satisfies it).
type Logger interface {
	Notice(msg string)
	Info(msg string)
	Debug(msg string)
}

// Config is what a session needs to know besides its backend.
type Config struct {
	Hostname      string        // for the banner, sign-off and abort replies
	Banner        string        // whole greeting after "+OK "; "" = qpopper's
	Version       string        // e.g. "4.0.5"
	Shy           bool          // "+OK ready  <ts>", no IMPLEMENTATION before login
	APOPTimestamp string        // "<pid.time@host>"; "" = generated
	Timeout       time.Duration // idle timeout per command; 0 = 120 s
	LoginDelay    int           // CAPA LOGIN-DELAY; -1 = not announced
	Expire        int           // CAPA EXPIRE; -1 = NEVER
	// NoAPOP leaves APOP out, as a qpopper built without it: the greeting
	// has an empty timestamp and APOP is an unknown command. Clients
	// such as curl use APOP whenever the greeting has a <...> timestamp.
	NoAPOP bool
	// ClearText is qpopper's clear-text-password policy for USER/PASS
	// and AUTH PLAIN: "" or "default" or "always" allow it, "never"
	// refuses it, "TLS" allows it only over TLS, "local" only from 127.*
	// addresses.
	ClearText      string
	TLS            *tls.Config // enables STLS
	UpdateOnAbort  bool        // a lost session still commits its deletions
	AutoDelete     bool        // at update, RETR'd messages are deleted too
	Log            Logger
	ClientHost     string
	ClientIP       string
	Implementation string // CAPA IMPLEMENTATION; "" = not announced
	ImplicitTLS    bool   // conn is already a TLS connection (port 995)
	// ChunkyWrites is qpopper's chunky-writes: "always" (or "") pools a
	// response and sends it in one go; "never" sends every line as soon
	// as it is made; "TLS" pools only inside TLS.
	ChunkyWrites string
	// Timing logs qpopper's timing record at the end of the session.
	Timing bool
	// Hangup, when closed, ends the session as if the client had gone
	// (qpopper's SIGHUP handling): "-ERR POP hangup", then update or
	// restore as for a lost client. An update already running finishes.
	Hangup <-chan struct{}
	// MaxBadCommands is how many bad commands in a row end the session
	// (see badf); 0 = 20, as Dovecot; negative = no limit.
	MaxBadCommands int
}

// maxLine is the longest command line accepted, CRLF included: qpopper
// truncated at 1023 octets; RFC 2449 requires at least 255.
const maxLine = 1024

// outBufSize is the size of the output buffer, and the most one write
// to the connection carries (see deadlineWriter). Most messages (the
// median is a few KB) fit whole, with their +OK line and the final dot,
// so a RETR is one write; pipelined replies share writes.
const outBufSize = 64 << 10

// defaultMaxBad is Config.MaxBadCommands when it is 0.
const defaultMaxBad = 20

type state int

const (
	stateAuth1 state = iota // AUTHORIZATION, no USER yet
	stateAuth2              // AUTHORIZATION after USER
	stateTrans              // TRANSACTION
	stateDone
)

// session is one POP3 conversation.
type session struct {
	cfg   *Config
	b     Backend
	conn  net.Conn
	r     *bufio.Reader
	w     *bufio.Writer
	out   *deadlineWriter // under w: the connection, with write deadlines
	state state
	// user is the name qpopper keeps in p->user: the USER (APOP, AUTH
	// PLAIN) argument as the backend stores it, from then on even when
	// the login is refused; every log record names it. userArg is that
	// argument as the client sent it, for PASS.
	user, userArg string
	mbox          Mailbox
	deleted       []bool
	retr          []bool
	last          int // LAST: highest message number touched
	ts            string
	tlsOn         bool
	timeout       time.Duration
	lost          error // the client went away: the session ends with abort

	// textOnly mangles every message as X-MANGLE(TEXT=PLAIN) (the
	// "-no-mime" login); mangled caches what mangling found of each.
	textOnly bool
	mangled  mangleCache

	// timing record: when the session began, when it authenticated, how
	// long opening the maildrop and the update took, and whether it ended
	// with a clean QUIT.
	start, authAt time.Time
	initTime      time.Duration
	cleanTime     time.Duration
	normalEnd     bool

	hangup  atomic.Bool // Config.Hangup was closed
	closing bool        // a refusal asked to end the session (Error.Close)

	// badCmd marks the command being run as bad (badf); badRun counts
	// bad commands in a row, up to maxBad (0: no limit).
	badCmd bool
	badRun int
	maxBad int
}

// Serve runs one session on conn to its end. It returns nil after QUIT.
func Serve(conn net.Conn, b Backend, cfg *Config) error {
	s := &session{cfg: cfg, b: b, conn: conn}
	s.timeout = cfg.Timeout
	if s.timeout <= 0 {
		s.timeout = 120 * time.Second
	}
	switch s.maxBad = cfg.MaxBadCommands; {
	case s.maxBad == 0:
		s.maxBad = defaultMaxBad
	case s.maxBad < 0:
		s.maxBad = 0
	}
	s.setConn(conn)
	s.tlsOn = cfg.ImplicitTLS
	switch {
	case cfg.NoAPOP:
		s.ts = "" // qpopper without APOP: "starting.  " with nothing after
	case cfg.APOPTimestamp != "":
		s.ts = cfg.APOPTimestamp
	default:
		s.ts = fmt.Sprintf("<%d.%d@%s>", os.Getpid(), time.Now().Unix(), cfg.Hostname)
	}
	s.start = time.Now()
	if cfg.Hangup != nil {
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			select {
			case <-cfg.Hangup:
				// The flag first: readLine checks it after setting its
				// own deadline, so one of the two always sees the other.
				s.hangup.Store(true)
				conn.SetReadDeadline(time.Now())
			case <-stop:
			}
		}()
	}
	s.greet()
	err := s.loop()
	if cfg.Timing {
		s.logTiming()
	}
	return err
}

// logTiming writes qpopper's timing record; the three values are whole
// seconds: until authentication, opening the maildrop, and the update.
func (s *session) logTiming() {
	auth := time.Since(s.start)
	if !s.authAt.IsZero() {
		auth = s.authAt.Sub(s.start)
	}
	if s.cfg.Log != nil {
		s.cfg.Log.Info(compat.TimingLine(s.cfg.Version, s.user, s.cfg.ClientHost, s.normalEnd,
			int64(auth/time.Second), int64(s.initTime/time.Second), int64(s.cleanTime/time.Second)))
	}
}

func (s *session) setConn(c net.Conn) {
	s.conn = c
	s.r = bufio.NewReaderSize(c, 4096)
	s.out = &deadlineWriter{conn: c, timeout: s.timeout}
	s.w = bufio.NewWriterSize(s.out, outBufSize)
}

// deadlineWriter gives every write to the client a deadline of the
// session's timeout, set afresh for each write of at most outBufSize
// octets. No write can block the session for longer than the timeout, so
// a client that stops reading (or takes less than 64 KB per timeout:
// about 550 octets/s at the default 120 s) loses the session, and its
// mailbox lock, within about one timeout, as an idle client does on the
// read side. net/http sets one WriteTimeout per response; a deadline per
// write instead bounds each stall without cutting a long RETR to a slow
// reader that keeps up: a response of n octets may take at most
// ceil(n/65536) timeouts.
type deadlineWriter struct {
	conn    net.Conn
	timeout time.Duration
	err     error // the first write error: nothing more is sent
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	written := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), outBufSize)]
		d.conn.SetWriteDeadline(time.Now().Add(d.timeout))
		n, err := d.conn.Write(chunk)
		written += n
		if err != nil {
			d.err = &writeError{err}
			return written, d.err
		}
		p = p[n:]
	}
	return written, nil
}

// writeError is a failed write to the client: the session is lost, as
// on a failed read, but a timeout is logged as one during a write.
type writeError struct{ err error }

func (e *writeError) Error() string { return "write: " + e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

func (s *session) greet() {
	switch {
	case s.cfg.Banner != "":
		s.reply("+OK " + s.cfg.Banner)
	case s.cfg.Shy:
		s.ok(compat.ReplyGreetingShy, s.ts)
	default:
		s.ok(compat.ReplyGreeting, s.cfg.Version, s.cfg.Hostname, s.ts)
	}
	s.flush()
}

func (s *session) logNotice(msg string) {
	if s.cfg.Log != nil {
		s.cfg.Log.Notice(msg)
	}
}

// reply writes one status line. Every -ERR is logged as qpopper does:
// "<user> at <host> (<ip>): -ERR <text>".
func (s *session) reply(line string) {
	s.writeLine(line)
	if text, ok := strings.CutPrefix(line, "-ERR "); ok {
		s.logNotice(compat.ErrLine(s.user, s.cfg.ClientHost, s.cfg.ClientIP, text))
	}
}

func (s *session) ok(format string, args ...any) { s.reply("+OK " + fmt.Sprintf(format, args...)) }

func (s *session) errf(format string, args ...any) {
	s.reply("-ERR " + fmt.Sprintf(format, args...))
}

// badf refuses a bad command: one that is not a command of this state
// (unknown, out of state, not offered), or is malformed (invalid
// characters, empty, over-long, wrong number of arguments, an argument
// that does not parse: a message number, a line count, X-MANGLE, an AUTH
// PLAIN response). A well-formed command refused for what it asks (no
// such message, wrong password, mailbox in use, unknown SASL mechanism)
// is not bad. A client that sends maxBad bad commands in a row is not
// speaking POP3 and is cut off (endCommand); any other command resets
// the count.
func (s *session) badf(format string, args ...any) {
	s.badCmd = true
	s.errf(format, args...)
}

// flush sends buffered replies; pipelined commands are answered in one
// write when the client sent them in one.
func (s *session) flush() error { return s.w.Flush() }

// chunky tells whether responses are pooled (chunky-writes).
func (s *session) chunky() bool {
	switch s.cfg.ChunkyWrites {
	case "never":
		return false
	case "TLS":
		return s.tlsOn
	}
	return true
}

// lineDone is called after each complete line of output: without chunky
// writes the line goes to the client at once.
func (s *session) lineDone() {
	if !s.chunky() {
		s.w.Flush()
	}
}

// writeLine writes one line of a multi-line response.
func (s *session) writeLine(line string) {
	s.w.WriteString(line)
	s.w.WriteString("\r\n")
	s.lineDone()
}

// errLong is returned for an over-long command line.
var errLong = errors.New("line too long")

// errHangup ends a session told to hang up.
var errHangup = errors.New("hangup")

// errTooManyBad ends a session after too many bad commands in a row.
var errTooManyBad = errors.New("too many bad commands")

// readLine reads one command line without its line end. An over-long
// line is discarded through its LF and reported as errLong.
func (s *session) readLine() (string, int, error) {
	s.conn.SetReadDeadline(time.Now().Add(s.timeout))
	if s.hangup.Load() {
		return "", 0, errHangup
	}
	var line []byte
	discarded := 0
	for {
		frag, err := s.r.ReadSlice('\n')
		if len(line)+len(frag) > maxLine || discarded > 0 {
			discarded += len(frag)
			line = line[:0]
		} else {
			line = append(line, frag...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return "", 0, err
		}
		break
	}
	if discarded > 0 {
		return "", discarded, errLong
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	return string(line), 0, nil
}

func (s *session) loop() error {
	for s.state != stateDone {
		if line, ok := s.next(); ok {
			s.command(line)
		}
		s.endCommand()
	}
	if s.lost != nil {
		return s.abort(s.lost)
	}
	err := s.flush()
	if s.closing && err == nil {
		s.hangUp()
	}
	return err
}

// endCommand runs after each command line: a failed write loses the
// client at once (a client that does not read may keep sending, and the
// commands are not to run unanswered), and bad commands are counted.
func (s *session) endCommand() {
	bad := s.badCmd
	s.badCmd = false
	switch {
	case s.state == stateDone: // lost, or QUIT: the loop ends either way
	case s.out.err != nil:
		s.lost, s.state = s.out.err, stateDone
	case !bad:
		s.badRun = 0
	default:
		s.badRun++
		if s.maxBad > 0 && s.badRun >= s.maxBad {
			s.lost, s.state = errTooManyBad, stateDone
		}
	}
}

// next reads the client's next line, a command or a SASL response,
// sending the replies so far first unless the client has pipelined more.
// ok is false when there is no line to act on: it was too long (and is
// answered), or the client is lost (s.lost is set, the session done).
func (s *session) next() (line string, ok bool) {
	if s.r.Buffered() == 0 {
		if err := s.flush(); err != nil {
			s.lost, s.state = err, stateDone
			return "", false
		}
	}
	line, discarded, err := s.readLine()
	switch {
	case err == errLong:
		s.logNotice(compat.ExcessiveInput(s.user, s.cfg.ClientHost, s.cfg.ClientIP, discarded))
		s.badf(compat.ReplyLineTooLong)
		return "", false
	case err != nil:
		s.lost, s.state = err, stateDone
		return "", false
	}
	return line, true
}

// abort ends a session that lost its client: qpopper tells the client
// (if it still listens) and, past login, commits or restores the drop.
// After a read timeout or a hangup qpopper's state loop ends as after
// QUIT, so its sign-off follows (popper.c).
func (s *session) abort(err error) error {
	var ne net.Error
	var we *writeError
	var me *messageError
	signOff := false
	switch {
	case errors.As(err, &me):
		// Mid-response: any text now would be taken for message lines.
	case s.hangup.Load():
		err = errHangup
		s.errf(compat.ReplyHangup, s.cfg.Hostname)
		signOff = true
	case err == errTooManyBad:
		s.errf(compat.ReplyTooManyErrors)
	case errors.As(err, &we) && errors.As(err, &ne) && ne.Timeout():
		s.logNotice(compat.TimeoutLine(s.cfg.Version, s.timeout, true, s.user, s.cfg.ClientHost, s.cfg.ClientIP))
		s.errf(compat.ReplyTimeout, s.cfg.Hostname)
	case errors.As(err, &ne) && ne.Timeout():
		s.logNotice(compat.TimeoutLine(s.cfg.Version, s.timeout, false, s.user, s.cfg.ClientHost, s.cfg.ClientIP))
		s.errf(compat.ReplyTimeout, s.cfg.Hostname)
		signOff = true
	default:
		s.errf(compat.ReplyEOF)
	}
	if s.mbox != nil {
		if s.cfg.UpdateOnAbort {
			if s.mbox.Update(s.changes()) != nil {
				s.errf(compat.ReplyUpdateFailed, s.user)
			}
		} else if s.mbox.Restore() != nil {
			s.errf(compat.ReplyRestoreFailed, s.user)
		}
		s.mbox = nil
	}
	if signOff {
		s.ok(compat.ReplySignOff, s.cfg.Hostname)
	}
	// Last words to a client that may not be listening: a short bound.
	// After a failed write the buffer holds its error and sends nothing.
	// A client cut off for bad commands has likely pipelined more, which
	// hangUp reads away so that the close does not reset the reply.
	s.out.timeout = min(s.out.timeout, 5*time.Second)
	if s.flush() == nil && err == errTooManyBad {
		s.hangUp()
	}
	return err
}

// changes is what the session did, for the Update that ends it. It hands
// over the session's own marks, which it no longer needs, and does not
// copy them: at 200,000 messages the copies were 400 KB more at QUIT.
func (s *session) changes() Changes {
	if s.cfg.AutoDelete && !s.cfg.UpdateOnAbort {
		for i := range s.deleted {
			s.deleted[i] = s.deleted[i] || s.retr[i]
		}
	}
	return Changes{Deleted: s.deleted, Retrieved: s.retr}
}

// hangUp ends a connection the server closes first: with the reply sent,
// it shuts the sending side and reads away what the client had already
// sent, so that the kernel does not answer unread data with a reset,
// which can destroy the reply in flight (net/http's closeWriteAndWait
// does the same).
func (s *session) hangUp() {
	if cw, ok := s.conn.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	s.conn.SetReadDeadline(time.Now().Add(time.Second))
	io.Copy(io.Discard, io.LimitReader(s.r, 64<<10))
}
