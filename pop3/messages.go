package pop3

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/popperd/popper/compat"
)

// xlst answers qpopper's XTND XLST header [n]: the named header field of
// one message, or of every undeleted one, as "n Field: value" lines with
// their continuation lines.
func (s *session) xlst(args []string) {
	if !s.wantArgs("xlst", args, 1, 2) {
		return
	}
	from, to := 0, len(s.deleted)
	if len(args) == 2 {
		i, ok := s.message(args[1])
		if !ok {
			return
		}
		from, to = i, i+1
	}
	name := strings.TrimSuffix(args[0], ":")
	s.ok(compat.ReplyXLST)
	for i := from; i < to; i++ {
		if s.deleted[i] {
			continue
		}
		if s.out.err != nil {
			break // the client is gone
		}
		if err := s.xlstFields(i, name); err != nil {
			s.logNotice(compat.ReadMessageFailed(i+1, s.user, err))
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
	if mi, ok := s.mangled.get(i); ok {
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

// mangleCache holds a mangleInfo per message in 4 octets (a "-no-mime"
// login sizes every message, and keeps the sizes for the session): 0 for
// none yet, else size+1, with asIsBit set for a message sent as it is.
// The rare size that does not fit is kept in big.
type mangleCache struct {
	v   []uint32
	big map[int]mangleInfo
}

const asIsBit = 1 << 31

func (c *mangleCache) get(i int) (mangleInfo, bool) {
	if i >= len(c.v) || c.v[i] == 0 {
		return mangleInfo{}, false
	}
	v := c.v[i]
	if v == asIsBit-1 {
		return c.big[i], true
	}
	return mangleInfo{size: int64(v&^asIsBit) - 1, asIs: v&asIsBit != 0}, true
}

func (c *mangleCache) set(i, n int, mi mangleInfo) {
	if c.v == nil {
		c.v = make([]uint32, n)
	}
	if mi.size < 0 || mi.size >= asIsBit-2 {
		if c.big == nil {
			c.big = map[int]mangleInfo{}
		}
		c.big[i] = mi
		c.v[i] = asIsBit - 1
		return
	}
	v := uint32(mi.size + 1)
	if mi.asIs {
		v |= asIsBit
	}
	c.v[i] = v
}

// planMangle runs the mangler's first pass over message i and caches
// the size (the message's own when it is sent as it is, or unreadable:
// the error is then reported when it is sent).
func (s *session) planMangle(i int) (*manglePlan, mangleInfo, error) {
	var p *manglePlan
	var n int64
	err := errNotMangled
	if !plainHeader(func(w io.Writer) error { return s.mbox.WriteMessage(w, i, 0) }) {
		p, n, err = planMangle(s.writer(i))
	}
	mi := mangleInfo{size: n}
	if err != nil {
		mi = mangleInfo{size: s.mbox.Size(i), asIs: err == errNotMangled}
	}
	s.mangled.set(i, s.mbox.Len(), mi)
	return p, mi, err
}

// writer writes message i whole, for the mangler to read.
func (s *session) writer(i int) func(io.Writer) error {
	return func(w io.Writer) error { return s.mbox.WriteMessage(w, i, -1) }
}

// send writes message i (bodyLines < 0: all of it) as a multi-line
// response: CRLF line ends and byte-stuffing by dotWriter, which also
// ends an unterminated last line before the final dot. The reply shares
// the output buffer with the +OK line before it and, when commands are
// pipelined, with the replies after it.
func (s *session) send(i, bodyLines int, mangle bool) bool {
	dw := newDotWriter(s.w)
	var out io.Writer = dw
	if !s.chunky() {
		out = &lineFlusher{w: dw, flush: s.w.Flush}
	}
	var err error
	mi, _ := s.mangled.get(i)
	asIs := !mangle || mi.asIs
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
		s.logNotice(compat.SendMessageFailed(i+1, s.user, err, true))
		s.lost, s.state = &messageError{err}, stateDone
		return false
	}
	if err == nil {
		err = dw.Close()
	}
	if err == nil && s.r.Buffered() == 0 {
		// The client waits for this reply (next would flush it at
		// once): flush here, so that a failed write is logged as this
		// message's.
		err = s.flush()
	}
	s.lineDone()
	if err != nil {
		s.logNotice(compat.SendMessageFailed(i+1, s.user, err, false))
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
