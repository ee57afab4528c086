package pop3

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/popperd/popper/compat"
)

// states is a set of states a command may run in.
type states uint8

const (
	inAuth1 states = 1 << stateAuth1
	inAuth2 states = 1 << stateAuth2
	inTrans states = 1 << stateTrans
	inAuth         = inAuth1 | inAuth2
	inAny          = inAuth | inTrans
)

// A command is one POP3 verb: where it is known, how many arguments it
// takes, and the method that runs it. Arguments are counted before the
// method runs, so every method gets a slice it may index; LIST, RETR and
// TOP count one more for an X-MANGLE argument and check again once it is
// taken off.
type command struct {
	in       states
	min, max int
	run      func(s *session, args []string)
}

// commands is the state table (qpopper's pop_get_command.c is not at
// hand; the verbs and states are popper.h's and RFC 1939's).
var commands = map[string]command{
	"USER": {inAuth, 1, 1, (*session).cmdUser},
	"PASS": {inAuth2, 1, 1, (*session).cmdPass},
	"APOP": {inAuth1, 2, 2, (*session).cmdAPOP},
	"AUTH": {inAuth, 0, 2, (*session).cmdAuth},
	"STLS": {inAuth, 0, 0, (*session).cmdSTLS},
	"CAPA": {inAny, 0, 0, (*session).cmdCapa},
	"QUIT": {inAny, 0, 0, (*session).cmdQuit},
	"STAT": {inTrans, 0, 0, (*session).cmdStat},
	"LIST": {inTrans, 0, 2, (*session).cmdList},
	"UIDL": {inTrans, 0, 1, (*session).cmdUIDL},
	"RETR": {inTrans, 1, 2, (*session).cmdRetr},
	"TOP":  {inTrans, 2, 3, (*session).cmdTop},
	"DELE": {inTrans, 1, 1, (*session).cmdDele},
	"NOOP": {inTrans, 0, 0, (*session).cmdNoop},
	"RSET": {inTrans, 0, 0, (*session).cmdRset},
	"LAST": {inTrans, 0, 0, (*session).cmdLast},
	"XTND": {inTrans, 1, 4, (*session).cmdXtnd},
	"MDEF": {inTrans, 0, 4, notSupported("MDEF")},
}

// command runs one command line.
func (s *session) command(line string) {
	if strings.IndexFunc(line, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }) >= 0 {
		s.badf(compat.ReplyBadCharacter)
		return
	}
	verb, rest, _ := strings.Cut(line, " ")
	verb = strings.ToUpper(verb)
	if verb == "" {
		s.badf(compat.ReplyNullCommand)
		return
	}
	var args []string
	if verb == "PASS" {
		// The whole rest of the line, spaces included (RFC 1939).
		if rest != "" {
			args = []string{rest}
		}
	} else if args = strings.Fields(rest); len(args) > 4 {
		s.badf(compat.ReplyTooManyArgsAtAll)
		return
	}
	c, ok := commands[verb]
	if !ok || c.in&(1<<s.state) == 0 || verb == "APOP" && s.cfg.NoAPOP {
		s.badf(compat.ReplyUnknownCommand, strings.ToLower(verb))
		return
	}
	if s.wantArgs(verb, args, c.min, c.max) {
		c.run(s, args)
	}
}

// wantArgs refuses a wrong number of arguments.
func (s *session) wantArgs(verb string, args []string, min, max int) bool {
	switch {
	case len(args) < min:
		s.badf(compat.ReplyTooFewArgs, strings.ToLower(verb))
		return false
	case len(args) > max:
		s.badf(compat.ReplyTooManyArgs, strings.ToLower(verb))
		return false
	}
	return true
}

// message finds the message an argument names as qpopper does: the
// number is C's atoi of it (so "x" is message 0), and a deleted message
// is refused. It replies -ERR itself when there is no such message.
func (s *session) message(arg string) (int, bool) {
	n := compat.Atoi(arg)
	switch {
	case n < 1 || n > s.mbox.Len():
		s.errf(compat.ReplyNoSuchMessage, n)
		return 0, false
	case s.deleted[n-1]:
		s.errf(compat.ReplyDeleted, n)
		return 0, false
	}
	return n - 1, true
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

func (s *session) cmdStat(args []string) {
	count, octets := s.undeleted()
	s.ok(compat.ReplyStat, count, octets)
}

// cmdList answers LIST [n] [X-MANGLE...].
func (s *session) cmdList(args []string) {
	mangle, ok := s.mangleArg(&args, compat.ReplyBadListMangle)
	if !ok || !s.wantArgs("LIST", args, 0, 1) {
		return
	}
	if len(args) == 1 {
		if i, ok := s.message(args[0]); ok {
			s.ok(compat.ReplyListOne, i+1, strconv.FormatInt(s.size(i, mangle), 10))
		}
		return
	}
	count, octets := s.undeleted()
	s.ok(compat.ReplyList, count, octets)
	s.listUndeleted(func(b []byte, i int) []byte { return strconv.AppendInt(b, s.size(i, mangle), 10) })
}

// cmdUIDL answers UIDL [n] with pop_uidl.c's own refusals: a non-number
// or 0, a number past the end, a deleted message.
func (s *session) cmdUIDL(args []string) {
	if len(args) == 0 {
		s.ok(compat.ReplyUIDL)
		if a, ok := s.mbox.(UIDAppender); ok {
			s.listUndeleted(a.AppendUID)
		} else {
			s.listUndeleted(func(b []byte, i int) []byte { return append(b, s.mbox.UID(i)...) })
		}
		return
	}
	switch n := compat.Atoi(args[0]); {
	case n == 0:
		// qpopper's msg_count counts the hidden messages too.
		s.errf(compat.ReplyUIDLNotNumber, s.mbox.Len()+s.mbox.Hidden())
	case n < 1 || n > s.mbox.Len():
		s.errf(compat.ReplyUIDLOutOfRange, n)
	case s.deleted[n-1]:
		s.errf(compat.ReplyUIDLDeleted, n)
	default:
		s.ok(compat.ReplyListOne, n, s.mbox.UID(n-1))
	}
}

// listUndeleted writes "n value" for every message not deleted, and the
// terminating line. The lines are made in the output buffer itself: a
// listing of a large mailbox leaves no garbage per message.
func (s *session) listUndeleted(value func(b []byte, i int) []byte) {
	for i := range s.deleted {
		if !s.deleted[i] {
			b := strconv.AppendInt(s.w.AvailableBuffer(), int64(i+1), 10)
			b = append(value(append(b, ' '), i), "\r\n"...)
			s.w.Write(b)
			s.lineDone()
		}
	}
	s.writeLine(".")
}

// cmdRetr answers RETR n [X-MANGLE...].
func (s *session) cmdRetr(args []string) {
	i, mangle, ok := s.messageToSend("RETR", args, 1)
	if !ok {
		return
	}
	if mangle {
		s.ok(compat.ReplyMessageFollows)
	} else {
		s.ok(compat.ReplyRetr, s.mbox.Size(i))
	}
	if s.send(i, -1, mangle) {
		s.retr[i] = true
	}
}

// cmdTop answers TOP n lines [X-MANGLE...]. The line count is atoi's, so
// a negative one sends the whole message, as qpopper's countdown never
// reaches zero.
func (s *session) cmdTop(args []string) {
	i, mangle, ok := s.messageToSend("TOP", args, 2)
	if !ok {
		return
	}
	s.ok(compat.ReplyMessageFollows)
	s.send(i, compat.Atoi(args[1]), mangle)
}

// messageToSend reads the arguments of RETR and TOP: want of them once
// an X-MANGLE argument is taken off, the first naming the message.
func (s *session) messageToSend(verb string, args []string, want int) (i int, mangle, ok bool) {
	if mangle, ok = s.mangleArg(&args, compat.ReplyBadMangle); !ok || !s.wantArgs(verb, args, want, want) {
		return 0, false, false
	}
	i, ok = s.message(args[0])
	return i, mangle, ok
}

// cmdDele marks a message deleted; one deleted already is answered +OK
// again, as qpopper does (RFC 1939 says -ERR).
func (s *session) cmdDele(args []string) {
	n := compat.Atoi(args[0])
	if n < 1 || n > s.mbox.Len() {
		s.errf(compat.ReplyNoSuchMessage, n)
		return
	}
	if !s.deleted[n-1] {
		s.deleted[n-1] = true
		s.last = max(s.last, n)
	}
	s.ok(compat.ReplyDeleted, n)
}

func (s *session) cmdNoop(args []string) { s.ok(compat.ReplyNoop) }

func (s *session) cmdRset(args []string) {
	clear(s.deleted)
	s.last = 0
	var octets int64
	for i := range s.deleted {
		octets += s.size(i, s.textOnly)
	}
	s.ok(compat.ReplyRset, len(s.deleted), octets)
}

func (s *session) cmdLast(args []string) { s.ok(compat.ReplyLast, s.last) }

// cmdXtnd answers XTND XLST; qpopper's XTND XMIT (send mail through
// sendmail) is not offered.
func (s *session) cmdXtnd(args []string) {
	if strings.EqualFold(args[0], "XLST") {
		s.xlst(args[1:])
		return
	}
	notSupported("XTND")(s, args)
}

// notSupported refuses a qpopper command popper does not offer (MDEF
// macros, XTND XMIT), saying so plainly.
func notSupported(verb string) func(*session, []string) {
	return func(s *session, args []string) {
		s.badf(compat.ReplyNotSupported, strings.TrimSpace(verb+" "+strings.ToUpper(strings.Join(args, " "))))
	}
}

// cmdQuit ends the session; in the TRANSACTION state it commits the
// session first, and the +OK means the result is durable.
func (s *session) cmdQuit(args []string) {
	defer func() { s.state = stateDone }()
	if s.mbox != nil {
		mb := s.mbox
		s.mbox = nil
		began := time.Now()
		err := mb.Update(s.changes())
		s.cleanTime = time.Since(began)
		if err != nil {
			s.errf(compat.ReplyUpdateFailed, s.user)
			return
		}
		s.normalEnd = true
	}
	s.ok(compat.ReplySignOff, s.cfg.Hostname)
}

// cmdCapa lists qpopper's capabilities in pop_extend.c's order, then
// popper's own (PIPELINING, SASL PLAIN) before IMPLEMENTATION. X-MACRO
// is left out: MDEF is refused.
func (s *session) cmdCapa(args []string) {
	s.ok(compat.ReplyCapa)
	lines := []string{"TOP"}
	if s.cfg.ClearText != "never" {
		lines = append(lines, "USER")
	}
	if s.cfg.LoginDelay != -1 {
		lines = append(lines, fmt.Sprintf("LOGIN-DELAY %d", s.cfg.LoginDelay))
	}
	if s.cfg.Expire == -1 {
		lines = append(lines, "EXPIRE NEVER")
	} else {
		lines = append(lines, fmt.Sprintf("EXPIRE %d", s.cfg.Expire))
	}
	lines = append(lines, "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "X-MANGLE",
		"X-LOCALTIME "+time.Now().Format(compat.LocalTimeFormat))
	if s.cfg.TLS != nil {
		lines = append(lines, "STLS")
	}
	lines = append(lines, "PIPELINING")
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
