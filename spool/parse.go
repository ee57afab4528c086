package spool

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
)

// maxFrag is the longest piece qpopper reads as one line (mfgets into a
// MAXMSGLINELEN buffer: 1023 bytes). qpopper treats every such fragment
// of a longer line as a line of its own; popper reads whole lines and
// keeps only this much of each for the tests qpopper makes on a line
// (separator, header names, X-UIDL value, UID digest). Consequences:
//   - a separator ("From " line or MMDF separator) is at most 1023 bytes
//     with its newline, as in qpopper;
//   - the fragment after an over-long line can never pass for a blank
//     line or a separator (qpopper needed its isOflow/wasOflow flags for
//     that), and size counts one CRLF per real line, not per fragment.
const maxFrag = 1023

// contLenFuzz is qpopper's CONTLEN_FUZZ: a separator is accepted once the
// body is at most this many bytes shorter than its Content-Length.
const contLenFuzz = 25

// maxShadowDepth bounds the nested speculative parses a chain of lying
// Content-Length headers can start (each costs a pass over later lines).
const maxShadowDepth = 4

// A line is one line of a drop file as the parser sees it.
type line struct {
	off   int64
	n     int64  // bytes, with the newline
	head  []byte // the first maxFrag bytes, NUL bytes turned into spaces
	nl    bool   // ends with '\n'
	nul   bool   // head had NUL bytes
	crOdd bool   // an odd run of CRs precedes the newline (or the end)
}

func (l *line) whole() bool { return l.n <= maxFrag }

// text is the line without "\n" or "\r\n"; only meaningful when whole.
func (l *line) text() []byte {
	t := l.head
	if l.nl {
		t = t[:len(t)-1]
		if len(t) > 0 && t[len(t)-1] == '\r' {
			t = t[:len(t)-1]
		}
	}
	return t
}

// blank reports an empty line: "\n", or "\r\n" (qpopper knows only "\n";
// popper also ends a header and allows a separator after "\r\n" so a
// mailbox stored with CRLF line ends is split into its messages).
func (l *line) blank() bool {
	return l.nl && (l.n == 1 || (l.n == 2 && l.head[0] == '\r'))
}

// wireSize is the octets the line takes on the wire: a missing final
// newline is supplied and every newline becomes CRLF, except that a CR
// already before it is not doubled. The protocol layer's dotWriter (the
// rule of net/textproto's DotWriter, kept byte for byte) leaves "\r\n"
// alone only when the CR run before the LF has odd length (its CR state
// toggles), so that is the test.
func (l *line) wireSize() int64 {
	s := l.n
	if !l.nl {
		s++
	}
	if !l.crOdd {
		s++
	}
	return s
}

// lineReader yields the lines of r in bounded memory: lines longer than
// the bufio buffer are consumed in chunks and only their head is kept.
type lineReader struct {
	br  *bufio.Reader
	off int64
	l   line
}

func newLineReader(r io.Reader) *lineReader {
	br, ok := r.(*bufio.Reader)
	if !ok || br.Size() < 4096 {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	return &lineReader{br: br, l: line{head: make([]byte, 0, maxFrag)}}
}

// next returns the next line, valid until the following call, or io.EOF.
func (lr *lineReader) next() (*line, error) {
	l := &lr.l
	l.off, l.n, l.head, l.nl, l.nul = lr.off, 0, l.head[:0], false, false
	cr := 0
	for {
		chunk, err := lr.br.ReadSlice('\n')
		if len(chunk) > 0 {
			if room := maxFrag - len(l.head); room > 0 {
				take := chunk
				if len(take) > room {
					take = take[:room]
				}
				n := len(l.head)
				l.head = append(l.head, take...)
				for i := bytes.IndexByte(l.head[n:], 0); i >= 0; i = bytes.IndexByte(l.head[n:], 0) {
					l.head[n+i] = ' '
					l.nul = true
				}
			}
			l.n += int64(len(chunk))
			data := chunk
			if err == nil {
				data = chunk[:len(chunk)-1]
			}
			k := 0
			for k < len(data) && data[len(data)-1-k] == '\r' {
				k++
			}
			if k == len(data) {
				cr += k
			} else {
				cr = k
			}
		}
		switch {
		case err == nil:
			l.nl = true
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF:
			if l.n == 0 {
				return nil, io.EOF
			}
		default:
			return nil, err
		}
		break
	}
	l.crOdd = cr%2 == 1
	lr.off += l.n
	return l, nil
}

// Parse reads a drop file from its first byte and returns its messages
// (qpopper's init_dropinfo and do_drop_copy). It streams: only offsets and
// per-message counters are kept, never message text.
//
// The first line decides the format: a line starting with ^A (at most 1023
// bytes, ending in a newline) makes the drop MMDF with that line as the
// separator; otherwise it is mbox, and a message starts at a "From " line
// that passes c-client's date test and follows a blank line or the start
// of the file. Bytes before the first message, and in MMDF bytes between
// a message's trailer and the next separator, belong to no message and
// are reported in Drop.Junk (qpopper refused a drop not starting with a
// separator; popper serves the rest). While no message has been found
// yet, a valid "From " line starts one even without a blank line before
// it, to save as much of a damaged drop as can be saved.
//
// The only errors are read errors.
func Parse(r io.Reader, opt ParseOptions) (*Drop, error) {
	d, t, err := parseTable(r, opt)
	if err != nil {
		return nil, err
	}
	d.Msgs = t.msgs()
	return d, nil
}

// parseTable is Parse with the messages in a table, not in the Drop.
func parseTable(r io.Reader, opt ParseOptions) (*Drop, *msgTable, error) {
	ps, err := parseSection(r, section{}, opt)
	if err != nil {
		return nil, nil, err
	}
	d := &Drop{Format: ps.format, Sep: ps.sep, Junk: ps.junk, End: ps.end}
	t := ps.msgs.done()
	uniqueIn(t, ps.alt, opt)
	return d, t.done(), nil
}

// parser holds the state of one parse. With Content-Length honoured, a
// separator inside a body the header says is longer is not taken (as
// qpopper), but a speculative parser (shadow) starts there. When the
// message then really ends where its Content-Length says (within
// CONTLEN_FUZZ), the shadow is dropped; when it does not (the header
// lied, or the file ends early), the message is cut at the shadow's first
// separator and the shadow's messages replace what followed: popper falls
// back to From-scanning for that message instead of letting a lying
// header swallow the mail after it.
type parser struct {
	opt       ParseOptions
	mmdf      bool
	sep       []byte // MMDF separator line
	msgs      msgTable
	alt       altList // per message, for duplicate X-UIDLs (see add)
	junk      []Range
	counter   int64 // qpopper's unique_num
	prevBlank bool  // the previous line was blank (or start of file)
	prevLF    bool  // the previous line was "\n" alone
	atEOF     bool  // eof is closing the last messages
	notFirst  bool  // a shadow: none of its messages is the drop's first
	depth     int

	cur    *msgState
	spare  *msgState // a closed msgState to reuse (its MD5 state)
	shadow *parser
	cut    Msg // cur as it would be if it ended at the shadow's start
}

// msgState is the state of the message being read.
type msgState struct {
	m          Msg
	inHeader   bool
	uid        uidHash
	alt        altUID
	contLenHdr int64 // last Content-Length: value in the header (qpopper's cont_len)
	contLen    int64 // body length the header claims, once the header ended
	bodyBytes  int64 // qpopper's content_nchar
	uwHints    int
	first      bool
	// what WriteUpdated would change in the header (Msg.Canonical)
	hdrLines    int  // header lines so far
	uidlLines   int  // X-UIDL lines
	uidlFirst   bool // the first header line is "X-UIDL: " + the UID
	statusLines int  // Status lines
	statusOther bool // a Status line other than "Status: RO"
	lastNL      bool // the last header line ended in a newline
}

func (p *parser) feed(l *line) {
	if p.shadow != nil {
		p.shadow.feed(l)
	}
	p.line(l)
	p.prevBlank = l.blank()
	p.prevLF = l.nl && l.n == 1
}

// line handles one line of an mbox drop (MMDF: mmdfLine).
//
// qpopper "restarts" a message when a separator comes while it is still
// in its header ("Msg %d corrupted; ignoring previous header
// information."). In mbox that cannot happen: a separator must follow a
// blank line, and the blank line ends the header (qpopper's own flags
// agree). In MMDF it happens after a header-only message's trailer, where
// the restart would drop that message from the list; popper keeps it (see
// mmdfLine). So Parse never restarts and never logs.
func (p *parser) line(l *line) {
	if p.mmdf {
		p.mmdfLine(l)
		return
	}
	isSep := l.whole() && l.nl && (p.prevBlank || (p.cur == nil && p.msgs.len() == 0)) &&
		validFromLine(l.text())
	if p.cur == nil {
		if isSep {
			p.start(l)
		} else {
			p.addJunk(l)
		}
		return
	}
	if isSep {
		c := p.cur
		switch {
		case !p.opt.ContentLength || c.inHeader || c.contLen <= 0 ||
			c.bodyBytes >= c.contLen-contLenFuzz:
			p.endAt(l.off, l.off)
			p.start(l)
			return
		case p.shadow == nil && p.depth < maxShadowDepth:
			p.cut = c.m
			p.cut.End, p.cut.Next = l.off, l.off
			p.shadow = &parser{opt: p.opt, counter: p.counter, notFirst: true, depth: p.depth + 1}
			p.shadow.start(l)
		}
	}
	p.content(l)
	if c := p.cur; p.shadow != nil && !c.inHeader && c.contLen > 0 && c.bodyBytes > c.contLen+contLenFuzz {
		// The body ran past its Content-Length without a separator
		// there: the header is not to be trusted.
		p.adoptShadow()
	}
}

// mmdfLine handles a line of an MMDF drop: separator lines are exact
// copies of the first line; the first after a message start closes it
// (the trailer), the next starts a message. Content-Length plays no part
// (qpopper applied it to MMDF too, where it can only push the trailer
// out of step).
func (p *parser) mmdfLine(l *line) {
	isSep := l.whole() && bytes.Equal(l.head, p.sep)
	if !l.nl && p.cur != nil && bytes.Equal(l.head, p.sep[:len(p.sep)-1]) {
		// The file ends in a trailer without its newline: a trailer
		// cut short, not a line of the message (which, completed on
		// write-back, would turn into a separator).
		isSep = true
	}
	switch {
	case isSep && p.cur != nil:
		// The trailer. qpopper would "restart" a message still in its
		// header at the next separator and so lose a header-only
		// message; popper closes the message here in every case.
		p.endAt(l.off, l.off+l.n)
	case isSep:
		p.start(l)
	case p.cur != nil:
		p.content(l)
	default:
		p.addJunk(l)
	}
}

func (p *parser) addJunk(l *line) {
	if n := len(p.junk); n > 0 && p.junk[n-1].Off+p.junk[n-1].Len == l.off {
		p.junk[n-1].Len += l.n
		return
	}
	p.junk = append(p.junk, Range{Off: l.off, Len: l.n})
}

// start begins a message at separator line l.
func (p *parser) start(l *line) {
	p.counter++
	c := p.spare
	if c == nil {
		c = &msgState{}
	}
	p.cur, p.spare = c, nil
	uid := c.uid
	*c = msgState{inHeader: true, uid: uid, first: !p.notFirst && p.msgs.len() == 0}
	c.m = Msg{Start: l.off, HdrStart: l.off + l.n}
	c.uid.start(l.head, p.opt, p.counter)
}

// content handles a header or body line of the current message.
func (p *parser) content(l *line) {
	c := p.cur
	m := &c.m
	if !c.inHeader {
		c.bodyBytes += l.n
		m.BodyLines++
		m.Size += l.wireSize()
		return
	}
	h := l.head
	if !l.blank() {
		c.hdrLines++
		c.lastNL = l.nl
	}
	switch {
	case l.blank():
		p.endHeader(l.off + l.n)
	case p.opt.ContentLength && bytes.HasPrefix(h, []byte("Content-Length:")):
		c.contLenHdr = atoi(h[len("Content-Length:"):])
		c.uid.addLine(l)
		return // not part of the size
	case !m.UIDFound && (hasPrefixFold(h, "Received:") || hasPrefixFold(h, "Date:") ||
		hasPrefixFold(h, "Message-Id:") || hasPrefixFold(h, "Subject:")):
		c.uid.addLine(l)
	case hasPrefixFold(h, "X-UIDL:"):
		c.uidlLines++
		if !m.UIDFound {
			if uid, ok := acceptedUID(h, l.whole(), p.opt.FromSpool); ok {
				// Counted as qpopper counts it, at the length it has here
				// (strlen + 1), however it is spaced; it is sent as
				// "X-UIDL: uid".
				m.UID, m.UIDFound = uid, true
				m.Size += l.n + 1
				c.alt.counted = l.n + 1
				c.uidlFirst = c.hdrLines == 1 && l.nl && !l.nul && isUIDLLine(h, uid)
			}
		}
		return // the other X-UIDL lines are not sent, and not counted
	case hasPrefixFold(h, "Status:"):
		c.statusLines++
		c.statusOther = c.statusOther || !l.nl || l.nul || string(h) != "Status: RO\n"
		if bytes.IndexByte(h, 'R') >= 0 {
			m.Retrieved = true
		}
	}
	if p.opt.UWKluge && c.first {
		switch {
		case hasPrefixFold(h, "Subject: ") && (bytes.Contains(h, []byte("DO NOT DELETE")) ||
			bytes.Contains(h, []byte("DON'T DELETE THIS MESSAGE")) ||
			bytes.Contains(h, []byte("FOLDER INTERNAL DATA"))):
			c.uwHints++
		case hasPrefixFold(h, "X-IMAP: "):
			c.uwHints++
		case hasPrefixFold(h, "From: Mail System Internal Data"):
			c.uwHints++
		}
		if c.uwHints >= 2 {
			m.Hidden = true
		}
	}
	m.Size += l.wireSize()
}

// endHeader ends the header at a blank line ending at bodyStart (or at the
// end of a message without one, bodyStart = End) and settles the UID.
func (p *parser) endHeader(bodyStart int64) {
	c := p.cur
	c.inHeader = false
	c.m.BodyStart = bodyStart
	c.contLen = c.contLenHdr
	c.alt.uid = c.uid.finish(p.opt)
	if !c.m.UIDFound {
		c.m.UID = c.alt.uid
		c.m.Size += uidLineSize(c.alt.uid)
	}
}

// endAt closes the current message at end, the next message (or whatever
// follows) starting at next.
func (p *parser) endAt(end, next int64) {
	c := p.cur
	headerOnly := c.inHeader
	if c.inHeader {
		// No blank line: qpopper never generated a UID for such a
		// message; popper does, and sends a blank line after the
		// header (RFC 1939 TOP, clients that wait for it), counted here.
		p.endHeader(end)
		c.m.Size += 2
	}
	c.m.End, c.m.Next = end, next
	c.m.Canonical = (!headerOnly || c.lastNL) && p.canonical(c)
	// A separator is only taken within CONTLEN_FUZZ of the length the
	// header claims (line checks that the body did not run past it), so
	// here the Content-Length held and the speculation is void.
	p.shadow = nil
	p.add(&c.m, c.alt)
	p.cur, p.spare = nil, c
}

// add appends a closed message, and what its UID would be without its
// X-UIDL header. uniqueUIDs asks that only of a message with one: the
// others' generated UID is their UID, and is not kept twice.
func (p *parser) add(m *Msg, alt altUID) {
	p.msgs.add(m)
	if !m.UIDFound {
		alt = altUID{}
	}
	p.alt.add(alt)
}

// isUIDLLine reports whether line is exactly "X-UIDL: " + uid + "\n", the
// line WriteUpdated writes (compared in place: this runs per message).
func isUIDLLine(line []byte, uid string) bool {
	const prefix = "X-UIDL: "
	return len(line) == len(prefix)+len(uid)+1 && string(line[:len(prefix)]) == prefix &&
		string(line[len(prefix):len(line)-1]) == uid && line[len(line)-1] == '\n'
}

// canonical reports whether the message c closes is stored as
// WriteUpdated writes it back (Msg.Canonical); endAt rules out a
// header-only message whose last line has no newline (one is added).
func (p *parser) canonical(c *msgState) bool {
	m := &c.m
	if !m.UIDFound || !c.uidlFirst || c.uidlLines != 1 || m.BadContentLength {
		return false
	}
	if p.mmdf && m.Next-m.End != int64(len(p.sep)) {
		return false // the trailer is written anew
	}
	if !p.mmdf && !p.atEOF && !p.prevLF {
		// A message followed by another must end in "\n\n", or the
		// write-back puts a newline between them (boundaryWriter).
		return false
	}
	if m.Retrieved {
		return !c.statusOther
	}
	return c.statusLines > 0 || !p.opt.UpdateStatusHeaders
}

// adoptShadow cuts the current message where the shadow began and
// continues with the shadow's view of everything after.
func (p *parser) adoptShadow() {
	s := p.shadow
	p.cut.BadContentLength, p.cut.Canonical = true, false
	p.add(&p.cut, p.cur.alt)
	for i := range s.msgs.len() {
		m := s.msgs.at(i)
		p.msgs.add(&m)
		p.alt.add(s.alt.at(i))
	}
	p.junk = append(p.junk, s.junk...)
	p.counter = s.counter
	p.cur, p.shadow, p.cut = s.cur, s.shadow, s.cut
	for t := p.shadow; t != nil; t = t.shadow {
		t.depth--
	}
}

// eof closes the last message at the end of the file. A message shorter
// than its Content-Length with a shadow running gives way to the shadow.
func (p *parser) eof(end int64) {
	p.atEOF = true
	for p.cur != nil {
		c := p.cur
		if p.shadow != nil && !c.inHeader && c.contLen > 0 && c.bodyBytes < c.contLen-contLenFuzz {
			p.adoptShadow()
			continue
		}
		p.endAt(end, end)
	}
}

// atoi is C's atoi as qpopper applies it to a Content-Length value:
// leading white space, an optional sign, digits; anything else ends it.
// Values beyond int64 saturate.
func atoi(b []byte) int64 {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r' || b[i] == '\v' || b[i] == '\f') {
		i++
	}
	neg := false
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		neg = b[i] == '-'
		i++
	}
	j := i
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		j++
	}
	n, err := strconv.ParseInt(string(b[i:j]), 10, 64)
	if err != nil && j > i {
		n = 1<<63 - 1
	}
	if neg {
		n = -n
	}
	return n
}
