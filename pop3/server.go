package pop3

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
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
	UserCapa      bool          // announce USER
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
// to the connection carries (see deadlineWriter).
const outBufSize = 4096

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
	cfg     *Config
	b       Backend
	conn    net.Conn
	r       *bufio.Reader
	w       *bufio.Writer
	out     *deadlineWriter // under w: the connection, with write deadlines
	state   state
	user    string // USER argument, then the authenticated name
	mbox    Mailbox
	deleted []bool
	retr    []bool
	last    int // LAST: highest message number touched
	ts      string
	tlsOn   bool
	timeout time.Duration
	lost    error // the client went away: the session ends with abort

	// textOnly mangles every message as X-MANGLE(TEXT=PLAIN) (the
	// "-no-mime" login); mangled caches what mangling found of each.
	textOnly bool
	mangled  map[int]mangleInfo

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
	end := "error"
	if s.normalEnd {
		end = "normal"
	}
	auth := time.Since(s.start)
	if !s.authAt.IsZero() {
		auth = s.authAt.Sub(s.start)
	}
	if s.cfg.Log != nil {
		s.cfg.Log.Info(fmt.Sprintf("(v%s) Timing for %s@%s (%s) auth=%d init=%d clean=%d", s.cfg.Version, userOrNull(s.user), s.cfg.ClientHost, end,
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
// a client that stops reading (or takes less than 4 KB per timeout)
// loses the session, and its mailbox lock, within about one timeout, as
// an idle client does on the read side. net/http sets one WriteTimeout
// per response; a deadline per write instead bounds each stall without
// cutting a long RETR to a slow reader that keeps up: a response of n
// octets may take at most ceil(n/4096) timeouts.
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
		s.reply("+OK ready  " + s.ts)
	default:
		s.reply(fmt.Sprintf("+OK Qpopper (version %s) at %s starting.  %s", s.cfg.Version, s.cfg.Hostname, s.ts))
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
	if strings.HasPrefix(line, "-ERR") {
		user := s.user
		if user == "" {
			user = "(null)"
		}
		s.logNotice(fmt.Sprintf("%s at %s (%s): %s", user, s.cfg.ClientHost, s.cfg.ClientIP, line))
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
		s.logNotice(fmt.Sprintf("Excessive input from %s %s (%s); discarded %d bytes", userOrNull(s.user), s.cfg.ClientHost, s.cfg.ClientIP, discarded))
		s.badf("Command line too long")
		return "", false
	case err != nil:
		s.lost, s.state = err, stateDone
		return "", false
	}
	return line, true
}

func userOrNull(u string) string {
	if u == "" {
		return "(null)"
	}
	return u
}

// abort ends a session that lost its client: qpopper tells the client
// (if it still listens) and, past login, commits or restores the drop.
func (s *session) abort(err error) error {
	var ne net.Error
	var we *writeError
	var me *messageError
	switch {
	case errors.As(err, &me):
		// Mid-response: any text now would be taken for message lines.
	case s.hangup.Load():
		err = errHangup
		s.errf("POP hangup from %s", s.cfg.Hostname)
	case err == errTooManyBad:
		s.errf("Too many errors; closing the connection.")
	case errors.As(err, &we) && errors.As(err, &ne) && ne.Timeout():
		// qpopper has no write timeout; this is its read record's twin.
		s.logNotice(fmt.Sprintf("(v%s) Timeout (%d secs) during nw write to %s at %s (%s)", s.cfg.Version, int(s.timeout/time.Second), userOrNull(s.user), s.cfg.ClientHost, s.cfg.ClientIP))
		s.errf("POP timeout from %s", s.cfg.Hostname)
	case errors.As(err, &ne) && ne.Timeout():
		s.logNotice(fmt.Sprintf("(v%s) Timeout (%d secs) during nw read from %s at %s (%s)", s.cfg.Version, int(s.timeout/time.Second), userOrNull(s.user), s.cfg.ClientHost, s.cfg.ClientIP))
		s.errf("POP timeout from %s", s.cfg.Hostname)
	default:
		s.errf("POP EOF or I/O Error")
	}
	if s.mbox != nil {
		var uerr error
		if s.cfg.UpdateOnAbort {
			uerr = s.mbox.Update(s.changes())
			if uerr != nil {
				s.errf("POP mailbox update for %s failed!", s.user)
			}
		} else {
			uerr = s.mbox.Restore()
			if uerr != nil {
				s.errf("POP mailbox restoration for %s failed!", s.user)
			}
		}
		s.mbox = nil
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

func (s *session) changes() Changes {
	del := append([]bool(nil), s.deleted...)
	if s.cfg.AutoDelete && !s.cfg.UpdateOnAbort {
		for i := range del {
			del[i] = del[i] || s.retr[i]
		}
	}
	return Changes{Deleted: del, Retrieved: append([]bool(nil), s.retr...)}
}

// command runs one command line.
func (s *session) command(line string) {
	if strings.IndexFunc(line, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }) >= 0 {
		s.badf("Invalid characters in command")
		return
	}
	verb, rest, _ := strings.Cut(line, " ")
	verb = strings.ToUpper(verb)
	if verb == "" {
		s.badf("Null command")
		return
	}
	// PASS takes the whole rest of the line, spaces included (RFC 1939).
	if verb == "PASS" {
		s.pass(rest, line)
		return
	}
	args := strings.Fields(rest)
	if len(args) > 4 {
		s.badf("Too many arguments supplied.")
		return
	}
	switch s.state {
	case stateAuth1, stateAuth2:
		s.authCommand(verb, args)
	case stateTrans:
		s.transCommand(verb, args)
	}
}

func (s *session) wantArgs(verb string, args []string, min, max int) bool {
	switch {
	case len(args) < min:
		s.badf("Too few arguments for the %s command.", strings.ToLower(verb))
		return false
	case len(args) > max:
		s.badf("Too many arguments for the %s command.", strings.ToLower(verb))
		return false
	}
	return true
}

func (s *session) authCommand(verb string, args []string) {
	switch verb {
	case "USER":
		if !s.wantArgs(verb, args, 1, 1) {
			return
		}
		if msg := s.clearTextRefusal(); msg != "" {
			s.errf("[AUTH] %s", msg)
			return
		}
		if err := s.b.User(args[0]); err != nil {
			s.refuse(err)
			return
		}
		s.user = args[0]
		s.state = stateAuth2
		s.ok("Password required for %.64s.", args[0]) // qpopper truncates names to 64
	case "APOP":
		if s.state != stateAuth1 || s.cfg.NoAPOP {
			s.unknown(verb)
			return
		}
		if !s.wantArgs(verb, args, 2, 2) {
			return
		}
		s.user = args[0]
		s.login(func() (Mailbox, error) { return s.b.APOP(args[0], s.ts, args[1]) })
	case "CAPA":
		if s.wantArgs(verb, args, 0, 0) {
			s.capa()
		}
	case "STLS":
		s.stls(args)
	case "AUTH":
		s.auth(args)
	case "QUIT":
		s.ok("Pop server at %s signing off.", s.cfg.Hostname)
		s.state = stateDone
	default:
		s.unknown(verb)
	}
}

// clearTextRefusal applies the clear-text-password policy, with qpopper's
// texts; "" allows USER and AUTH PLAIN.
func (s *session) clearTextRefusal() string {
	switch s.cfg.ClearText {
	case "never":
		return "You must use stronger authentication such as APOP to connect to this server"
	case "TLS":
		if !s.tlsOn {
			return "You must use TLS/SSL or stronger authentication such as APOP to connect to this server"
		}
	case "local":
		if !strings.HasPrefix(s.cfg.ClientIP, "127.") {
			return "You must use stronger authentication such as APOP to connect to this server"
		}
	}
	return ""
}

// auth answers AUTH (RFC 5034). Bare, it is the RFC 1734-era probe and
// lists the mechanisms usable now.
func (s *session) auth(args []string) {
	if len(args) == 0 {
		s.ok("Supported authentication mechanisms:")
		if s.clearTextRefusal() == "" {
			s.writeLine("PLAIN")
		}
		s.writeLine(".")
		return
	}
	if !strings.EqualFold(args[0], "PLAIN") {
		s.errf("Unknown authentication mechanism: %.40s", args[0])
		return
	}
	if s.wantArgs("AUTH", args, 1, 2) {
		s.authPlain(args[1:])
	}
}

// authPlain runs SASL PLAIN (RFC 4616), which is USER and PASS in other
// framing: the same policy, the same Backend calls, the same replies.
// It starts a new login, so a USER before it is forgotten.
func (s *session) authPlain(initial []string) {
	s.state = stateAuth1
	// Refused before the challenge: the password is never sent.
	if msg := s.clearTextRefusal(); msg != "" {
		s.errf("[AUTH] %s", msg)
		return
	}
	resp, ok := s.saslResponse(initial)
	if !ok {
		return
	}
	authcid, passwd, err := parsePlain(resp)
	if err != nil {
		s.badf("[AUTH] AUTH PLAIN %v.", err)
		return
	}
	s.user = authcid
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
			s.errf("[AUTH] AUTH PLAIN cancelled.")
			return nil, false
		}
	}
	b, err := base64.StdEncoding.DecodeString(line)
	if err != nil {
		s.badf("[AUTH] AUTH PLAIN response is not valid base64.")
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

func (s *session) unknown(verb string) {
	s.badf("Unknown command: \"%.40s\".", strings.ToLower(verb))
}

func (s *session) pass(rest, line string) {
	if s.state != stateAuth2 {
		if s.state == stateTrans {
			s.unknown("PASS")
		} else {
			s.badf("Unknown command: \"pass\".")
		}
		return
	}
	if rest == "" {
		s.badf("Too few arguments for the pass command.")
		return
	}
	s.login(func() (Mailbox, error) { return s.b.Pass(s.user, rest) })
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
		s.user = ""
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
	s.ok("%s has %d visible message%s (%d hidden) in %d octets.", s.user, n, plural, mb.Hidden(), octets)
}

// refuse sends a backend's refusal of a login step and goes back to the
// AUTHORIZATION state, or ends the session when the backend says so.
func (s *session) refuse(err error) {
	s.state = stateAuth1
	var pe *Error
	if !errors.As(err, &pe) {
		s.errf("[SYS/TEMP] %v", err)
		return
	}
	s.errf("%s", pe.Error())
	if pe.Close {
		s.state, s.closing = stateDone, true
	}
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

func (s *session) capa() {
	s.ok("Capability list follows")
	lines := []string{"TOP"}
	if s.cfg.UserCapa && s.cfg.ClearText != "never" && (s.cfg.ClearText != "TLS" || s.tlsOn) {
		lines = append(lines, "USER")
	}
	if s.cfg.LoginDelay >= 0 {
		lines = append(lines, fmt.Sprintf("LOGIN-DELAY %d", s.cfg.LoginDelay))
	}
	if s.cfg.Expire < 0 {
		lines = append(lines, "EXPIRE NEVER")
	} else {
		lines = append(lines, fmt.Sprintf("EXPIRE %d", s.cfg.Expire))
	}
	lines = append(lines, "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "X-MANGLE", "PIPELINING")
	if s.cfg.TLS != nil && !s.tlsOn && s.state != stateTrans {
		lines = append(lines, "STLS")
	}
	if s.state != stateTrans && s.clearTextRefusal() == "" {
		lines = append(lines, "SASL PLAIN")
	}
	if s.cfg.Implementation != "" && !(s.cfg.Shy && s.state != stateTrans) {
		lines = append(lines, "IMPLEMENTATION "+s.cfg.Implementation)
	}
	for _, l := range lines {
		s.writeLine(l)
	}
	s.writeLine(".")
}

func (s *session) stls(args []string) {
	switch {
	case s.cfg.TLS == nil:
		s.badf("Command not enabled")
		return
	case s.tlsOn:
		s.badf("TLS in progress")
		return
	case !s.wantArgs("STLS", args, 0, 0):
		return
	}
	s.ok("Begin TLS negotiation")
	if err := s.flush(); err != nil {
		return
	}
	// Anything the client pipelined after STLS was sent in the clear and
	// must not be executed inside TLS (CVE-2011-0411): it sits in the
	// plain-text reader, which setConn below replaces, so it is dropped.
	tc := tls.Server(s.conn, s.cfg.TLS)
	tc.SetDeadline(time.Now().Add(s.timeout))
	if err := tc.Handshake(); err != nil {
		s.logNotice(fmt.Sprintf("TLS/SSL Handshake failed: %v", err))
		s.state = stateDone
		return
	}
	tc.SetDeadline(time.Time{})
	s.setConn(tc)
	s.tlsOn = true
	s.user = ""
	s.state = stateAuth1
}

// msgArg parses a message number: decimal digits only, 1..Len. It
// replies -ERR itself and returns -1 when the argument is no good.
func (s *session) msgArg(arg string, allowDeleted bool) int {
	n, err := strconv.Atoi(arg)
	if err != nil || arg == "" || arg[0] < '0' || arg[0] > '9' {
		s.badf("Unknown message number: %.40s", arg)
		return -1
	}
	if n < 1 || n > s.mbox.Len() {
		s.errf("Message %d does not exist.", n)
		return -1
	}
	if !allowDeleted && s.deleted[n-1] {
		s.errf("Message %d has been deleted.", n)
		return -1
	}
	return n - 1
}

// undeleted counts the messages not marked deleted and their octets.
func (s *session) undeleted() (count int, octets int64) {
	for i := range s.deleted {
		if !s.deleted[i] {
			count++
			octets += s.size(i, s.textOnly)
		}
	}
	return count, octets
}

// listing answers LIST and UIDL: "n value" for one message when an
// argument names it, else a multi-line list of every undeleted message.
func (s *session) listing(verb string, args []string, header func() string, value func(i int) string) {
	if !s.wantArgs(verb, args, 0, 1) {
		return
	}
	if len(args) == 1 {
		if i := s.msgArg(args[0], false); i >= 0 {
			s.ok("%d %s", i+1, value(i))
		}
		return
	}
	s.ok("%s", header())
	for i := range s.deleted {
		if !s.deleted[i] {
			s.writeLine(fmt.Sprintf("%d %s", i+1, value(i)))
		}
	}
	s.writeLine(".")
}

func (s *session) transCommand(verb string, args []string) {
	switch verb {
	case "STAT":
		if !s.wantArgs(verb, args, 0, 0) {
			return
		}
		count, octets := s.undeleted()
		s.ok("%d %d", count, octets)
	case "LIST":
		mangle, ok := s.mangleArg(&args, "Syntax error in x-mangle")
		if !ok {
			return
		}
		s.listing(verb, args, func() string {
			count, octets := s.undeleted()
			return fmt.Sprintf("%d visible messages (%d octets)", count, octets)
		}, func(i int) string { return strconv.FormatInt(s.size(i, mangle), 10) })
	case "UIDL":
		s.listing(verb, args, func() string { return "uidl command accepted." }, s.mbox.UID)
	case "RETR":
		mangle, ok := s.mangleArg(&args, "Syntax error in Mangle")
		if !ok || !s.wantArgs(verb, args, 1, 1) {
			return
		}
		if i := s.msgArg(args[0], false); i >= 0 {
			if mangle {
				s.ok("Message follows")
			} else {
				s.ok("%d octets", s.mbox.Size(i))
			}
			if s.send(i, -1, mangle) {
				s.retr[i] = true
			}
		}
	case "TOP":
		mangle, ok := s.mangleArg(&args, "Syntax error in Mangle")
		if !ok || !s.wantArgs(verb, args, 2, 2) {
			return
		}
		i := s.msgArg(args[0], false)
		if i < 0 {
			return
		}
		lines, err := strconv.Atoi(args[1])
		if err != nil || args[1][0] < '0' || args[1][0] > '9' {
			s.badf("Bad number of lines: %.40s", args[1])
			return
		}
		s.ok("Message follows")
		s.send(i, lines, mangle)
	case "DELE":
		if !s.wantArgs(verb, args, 1, 1) {
			return
		}
		// qpopper answers +OK for a message already deleted; RFC 1939
		// says -ERR, which is what clients expect: we follow the RFC.
		if i := s.msgArg(args[0], false); i >= 0 {
			s.deleted[i] = true
			if i+1 > s.last {
				s.last = i + 1
			}
			s.ok("Message %d has been deleted.", i+1)
		}
	case "NOOP":
		if s.wantArgs(verb, args, 0, 0) {
			s.ok("no big woop")
		}
	case "RSET":
		if !s.wantArgs(verb, args, 0, 0) {
			return
		}
		for i := range s.deleted {
			s.deleted[i] = false
		}
		s.last = 0
		var octets int64
		for i := range s.deleted {
			octets += s.size(i, s.textOnly)
		}
		s.ok("Maildrop has %d messages (%d octets)", len(s.deleted), octets)
	case "LAST":
		if s.wantArgs(verb, args, 0, 0) {
			s.ok("%d is the last read message.", s.last)
		}
	case "CAPA":
		if s.wantArgs(verb, args, 0, 0) {
			s.capa()
		}
	case "XTND", "MDEF":
		if verb == "XTND" && len(args) > 0 && strings.EqualFold(args[0], "XLST") {
			s.xlst(args[1:])
			return
		}
		// qpopper's XTND XMIT (send mail through sendmail) and MDEF
		// macros are not offered: say so plainly.
		s.badf("%.40s is not supported by this server", strings.TrimSpace(verb+" "+strings.ToUpper(strings.Join(args, " "))))
	case "QUIT":
		if !s.wantArgs(verb, args, 0, 0) {
			return
		}
		mb := s.mbox
		s.mbox = nil
		began := time.Now()
		err := mb.Update(s.changes())
		s.cleanTime = time.Since(began)
		if err != nil {
			s.errf("POP mailbox update for %s failed!", s.user)
			s.state = stateDone
			return
		}
		s.ok("Pop server at %s signing off.", s.cfg.Hostname)
		s.state = stateDone
		s.normalEnd = true
	default:
		s.unknown(verb)
	}
}

// xlst answers qpopper's XTND XLST header [n]: the named header field of
// one message, or of every undeleted one, as "n Field: value" lines with
// their continuation lines.
func (s *session) xlst(args []string) {
	if !s.wantArgs("XLST", args, 1, 2) {
		return
	}
	from, to := 0, len(s.deleted)
	if len(args) == 2 {
		i := s.msgArg(args[1], false)
		if i < 0 {
			return
		}
		from, to = i, i+1
	}
	name := strings.TrimSuffix(args[0], ":")
	s.ok("xlst command accepted; headers coming.")
	for i := from; i < to; i++ {
		if s.deleted[i] {
			continue
		}
		if s.out.err != nil {
			break // the client is gone
		}
		if err := s.xlstFields(i, name); err != nil {
			s.logNotice(fmt.Sprintf("Error reading message %d of %s: %v", i+1, s.user, err))
			break
		}
	}
	s.writeLine(".")
}

// xlstFields lists the header fields of message i named name, a line at
// a time as the header is read: "n " before a field's first line, the
// line ends taken off (the field's last line loses all its trailing CRs
// and LFs). A header line over maxHeader ends the header there.
func (s *session) xlstFields(i int, name string) error {
	src := openMessage(func(w io.Writer) error { return s.mbox.WriteMessage(w, i, 0) })
	defer src.Close()
	br := bufio.NewReaderSize(src, 4096)
	var buf, held []byte // held: the matching field's line not yet sent
	match, first, fields := false, false, 0
	send := func(last bool) {
		l := string(held)
		if last {
			l = strings.TrimRight(l, "\r\n")
		} else {
			l = strings.TrimSuffix(strings.TrimSuffix(l, "\n"), "\r")
		}
		if first {
			l, first = fmt.Sprintf("%d %s", i+1, l), false
		}
		s.writeLine(l)
	}
	for {
		line, err := readHeaderLine(br, &buf)
		if err == io.EOF || err == errHeaderTooLong || err == nil && line[len(line)-1] == '\n' && len(bytes.TrimRight(line, "\r\n")) == 0 {
			break
		}
		if err != nil {
			return err
		}
		if (line[0] == ' ' || line[0] == '\t') && fields > 0 {
			if match {
				send(false)
				held = append(held[:0], line...)
			}
			continue
		}
		if match {
			send(true)
		}
		fields++
		n, _, _ := strings.Cut(string(line), ":")
		if match = strings.EqualFold(strings.TrimSpace(n), name); match {
			held, first = append(held[:0], line...), true
		}
	}
	if match {
		send(true)
	}
	return src.err
}

// mangleArg removes a trailing X-MANGLE argument from args. It reports
// whether the message is to be mangled (asked for, or a "-no-mime"
// session) and false in ok after replying syntaxErr to a bad request.
func (s *session) mangleArg(args *[]string, syntaxErr string) (mangle, ok bool) {
	a := *args
	if len(a) == 0 || !isMangleArg(a[len(a)-1]) {
		return s.textOnly, true
	}
	if !parseMangle(a[len(a)-1]) {
		s.badf("%s", syntaxErr)
		return false, false
	}
	*args = a[:len(a)-1]
	return true, true
}

// size is message i's size as LIST reports it, mangled or not.
func (s *session) size(i int, mangle bool) int64 {
	if !mangle {
		return s.mbox.Size(i)
	}
	if mi, ok := s.mangled[i]; ok {
		return mi.size
	}
	_, mi, _ := s.planMangle(i)
	return mi.size
}

// mangleInfo is what mangling message i found: its size as sent, and
// whether it is sent as it is.
type mangleInfo struct {
	size int64
	asIs bool
}

// planMangle runs the mangler's first pass over message i and caches
// the size (the message's own when it is sent as it is, or unreadable:
// the error is then reported when it is sent).
func (s *session) planMangle(i int) (*manglePlan, mangleInfo, error) {
	p, n, err := planMangle(s.writer(i))
	mi := mangleInfo{size: n}
	if err != nil {
		mi = mangleInfo{size: s.mbox.Size(i), asIs: err == errNotMangled}
	}
	if s.mangled == nil {
		s.mangled = map[int]mangleInfo{}
	}
	s.mangled[i] = mi
	return p, mi, err
}

// writer writes message i whole, for the mangler to read.
func (s *session) writer(i int) func(io.Writer) error {
	return func(w io.Writer) error { return s.mbox.WriteMessage(w, i, -1) }
}

// send writes message i (bodyLines < 0: all of it) as a multi-line
// response: CRLF line ends and byte-stuffing by textproto's DotWriter,
// which also ends an unterminated last line before the final dot.
func (s *session) send(i, bodyLines int, mangle bool) bool {
	dw := textproto.NewWriter(s.w).DotWriter()
	var out io.Writer = dw
	if !s.chunky() {
		out = &lineFlusher{w: dw, flush: s.w.Flush}
	}
	var err error
	asIs := !mangle || s.mangled[i].asIs
	if !asIs {
		var p *manglePlan
		switch p, _, err = s.planMangle(i); err {
		case nil:
			if bodyLines >= 0 {
				out = newTopWriter(out, bodyLines)
			}
			if err = writeMangled(out, s.writer(i), p); err == errTopDone {
				err = nil
			}
		case errNotMangled:
			asIs, err = true, nil
		}
	}
	if asIs {
		err = s.mbox.WriteMessage(out, i, bodyLines)
	}
	var we *writeError
	if err != nil && !errors.As(err, &we) {
		// The message could not be read after its +OK. A closing dot now
		// would make the client keep a truncated copy, and maybe DELE the
		// whole: the connection ends without it, so the client sees a
		// broken response, not a short message.
		s.logNotice(fmt.Sprintf("Error sending message %d to %s: %v; connection closed before the end of the message", i+1, s.user, err))
		s.lost, s.state = &messageError{err}, stateDone
		return false
	}
	if err == nil {
		err = dw.Close()
	}
	s.lineDone()
	if err != nil {
		s.logNotice(fmt.Sprintf("Error sending message %d to %s: %v", i+1, s.user, err))
		return false
	}
	return true
}

// messageError is a message that could not be read while it was being
// sent: the session ends without another byte to the client.
type messageError struct{ err error }

func (e *messageError) Error() string { return "reading the message: " + e.err.Error() }
func (e *messageError) Unwrap() error { return e.err }

// lineFlusher passes output on and flushes the connection after every
// complete line (chunky-writes never).
type lineFlusher struct {
	w     io.Writer
	flush func() error
}

func (l *lineFlusher) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		end := bytes.IndexByte(p, '\n')
		chunk := p
		if end >= 0 {
			chunk = p[:end+1]
		}
		n, err := l.w.Write(chunk)
		written += n
		if err != nil {
			return written, err
		}
		if end >= 0 {
			if err := l.flush(); err != nil {
				return written, err
			}
		}
		p = p[len(chunk):]
	}
	return written, nil
}
