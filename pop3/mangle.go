package pop3

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/textproto"
	"strings"
	"sync"
)

// qpopper's X-MANGLE extension lets a client that cannot read MIME ask for
// a message as plain text: "RETR n X-MANGLE(TEXT=PLAIN)", the same on TOP
// and LIST, or for a whole session by logging in as "user-no-mime". The
// mangled message keeps every header except the MIME ones, says it is
// text/plain, and its body is the decoded text/plain parts; every other
// part is replaced by a one-line note so the reader knows it was there.
// The spool is never changed: mangling happens on the way out.

// isMangleArg reports whether a command argument is an X-MANGLE request.
func isMangleArg(arg string) bool {
	return len(arg) >= 8 && strings.EqualFold(arg[:8], "X-MANGLE")
}

// parseMangle accepts "X-MANGLE(TEXT=PLAIN)", case-insensitively; that is
// the only conversion offered.
func parseMangle(arg string) bool {
	a := strings.ToUpper(arg)
	if !strings.HasPrefix(a, "X-MANGLE(") || !strings.HasSuffix(a, ")") {
		return false
	}
	params := strings.Split(a[len("X-MANGLE("):len(a)-1], ",")
	text := false
	for _, p := range params {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if k != "TEXT" || v != "PLAIN" {
			return false
		}
		text = true
	}
	return text
}

// maxMIMEDepth bounds nesting so a hostile message cannot recurse deeply.
const maxMIMEDepth = 16

// The mangler streams: memory does not grow with the message, whose
// text parts flow through decoders in small buffers. It reads the message
// twice. The first pass (planMangle) works out everything that depends on
// what comes later: whether the message can be mangled at all (a torn
// multipart anywhere sends it as it is), which part of an alternative is
// shown, whether an enclosed message is mangled or shown as it is, and
// each message's charset, which its header announces before the text that
// sets it. It also counts the mangled size, for LIST and the PASS reply.
// The second pass (writeMangled) follows that plan and sends the bytes.
// Both run the same code, so the size counted is the size sent.
//
// What the old in-memory mangler did is kept exactly (mangle_ref_test.go
// holds it, FuzzMangle compares), with bounds where it held unbounded
// data: a header line, an unfolded Content-Type or Content-Transfer-
// Encoding, and a part's whole header are at most maxHeader octets, and a
// message's plan at most maxPlan. Past a bound the entity is taken for
// unparseable MIME, as a torn one is: a message is sent as it is, an
// enclosed message is shown as its raw text.

// maxHeader bounds a header line, an unfolded MIME field and a part's
// header (RFC 5322 lines are at most 998 octets).
const maxHeader = 64 << 10

// maxPlan bounds the decisions one message needs (about 32 octets each,
// one per alternative and enclosed message shown, plus charsets).
const maxPlan = 1 << 20

// errNotMangled means the message needs no conversion or could not be
// parsed as MIME; it is then sent as it is, which loses nothing.
var errNotMangled = errors.New("message not mangled")

var (
	errHeaderTooLong = errors.New("mangle: header over the limit")
	errPlanTooLong   = errors.New("mangle: plan over the limit")
	errPlanMismatch  = errors.New("mangle: the plan does not fit the message")
	errTopDone       = errors.New("mangle: TOP has its lines")
)

// manglePlan is what the first pass learnt about one message.
type manglePlan struct{ steps []planStep }

// planStep is one decision, in the order the second pass meets them: for
// a message (the whole one, or an enclosed one shown mangled) its
// charset; for an alternative the part shown; for an enclosed message
// whether it is mangled (pick 1) or shown as it is (0).
type planStep struct {
	pick        int
	contentType string // the charset, as the Content-Type line says it
}

// planMangle reads message (write is Mailbox.WriteMessage for it) and
// returns its plan and mangled size, errNotMangled when it is to be sent
// as it is, or the error reading it.
func planMangle(write func(io.Writer) error) (*manglePlan, int64, error) {
	src := openMessage(write)
	defer src.Close()
	p, n, err := firstPass(src)
	if src.err != nil {
		return nil, 0, src.err
	}
	return p, n, err
}

// plainHeader reports whether a message's header, as header writes it
// (Mailbox.WriteMessage with no body lines: the header and its blank
// line, the same bytes as the whole message's), makes the first pass
// end at once with errNotMangled: no Content-Type or text/plain, in an
// identity encoding, or a Content-Type that does not parse. Most mail is
// such, and a "-no-mime" login sizes every message: this decides it from
// the header held in memory, without the first pass's pipe, goroutine
// and read of the whole message. Anything else (a MIME message, a
// header over maxHeader, an error) is left to planMangle.
func plainHeader(header func(io.Writer) error) bool {
	lb := headerBufs.Get().(*limitedBuffer)
	defer func() {
		lb.b.Reset()
		headerBufs.Put(lb)
	}()
	if header(lb) != nil {
		return false
	}
	b := &lb.b
	if !containsFold(b.Bytes(), "content-type") && !containsFold(b.Bytes(), "content-transfer-encoding") {
		// No field can be either (their names hold these letters,
		// whatever the case and the spacing around them): the header
		// reads as no Content-Type, which is text/plain in 7bit.
		return true
	}
	if plain, ok := plainHeaderFast(b.Bytes()); ok {
		return plain
	}
	return plainHeaderParsed(b.Bytes())
}

// plainHeaderParsed is plainHeader's decision by the mangler's own parse
// of header h.
func plainHeaderParsed(h []byte) bool {
	br := headerReaders.Get().(*bufio.Reader)
	br.Reset(bytes.NewReader(h))
	defer func() {
		br.Reset(nil)
		headerReaders.Put(br)
	}()
	m := &mangler{st: &outState{}}
	ct, cte, err := m.header(br, 0)
	if err != nil {
		return false
	}
	t, err := parseType(ct)
	return err != nil || t.mt == "text/plain" && isIdentityEncoding(cte)
}

// plainHeaderFast decides plainHeader, without allocating, for the header
// most MIME mail has: one Content-Type of text/plain, unfolded, and at
// most one Content-Transfer-Encoding, unfolded, of an identity encoding.
// Anything else (ok false) is left to the full parse of the header: a
// -no-mime login sizes every message, and that parse's 1.5 KB of garbage
// a message let the heap of a 1 GiB session grow by 3 MB.
func plainHeaderFast(h []byte) (plain, ok bool) {
	var ct, cte []byte
	var seenCT, seenCTE, inCTE, first = false, false, false, true
	for len(h) > 0 {
		line := h
		if i := bytes.IndexByte(h, '\n'); i >= 0 {
			line, h = h[:i+1], h[i+1:]
		} else {
			h = nil
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 && line[len(line)-1] == '\n' {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if first || inCTE {
				return false, false // folded: the full parse unfolds it
			}
			continue
		}
		first, inCTE = false, false
		name, val, found := bytes.Cut(line, []byte(":"))
		if !found {
			return false, false
		}
		name = bytes.TrimSpace(name)
		switch {
		case asciiEqualFold(name, "content-type"):
			if seenCT {
				return false, false
			}
			seenCT, inCTE, ct = true, true, bytes.TrimSpace(val)
		case asciiEqualFold(name, "content-transfer-encoding"):
			if seenCTE {
				return false, false
			}
			seenCTE, inCTE, cte = true, true, bytes.TrimSpace(val)
		}
	}
	identity := len(cte) == 0 || asciiEqualFold(cte, "7bit") || asciiEqualFold(cte, "8bit") || asciiEqualFold(cte, "binary")
	if !identity {
		return false, false
	}
	if len(ct) == 0 {
		return true, true // no type: text/plain
	}
	if i := bytes.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	// A type of text/plain parses as text/plain, or not at all, which
	// plainHeader also takes as plain.
	return true, asciiEqualFold(bytes.TrimSpace(ct), "text/plain")
}

// asciiEqualFold reports whether b is s (lower-case ASCII) in any case of
// ASCII letters only, as header names and tokens are compared.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// headerBufs holds the buffers plainHeader reads a header into: a
// "-no-mime" login reads every message's, and a writer made for each was
// garbage enough to grow the session's heap by a quarter at 200,000
// messages.
var headerBufs = sync.Pool{New: func() any { return &limitedBuffer{max: maxHeader} }}

// containsFold reports whether b holds s (lower case ASCII) in any case.
func containsFold(b []byte, s string) bool {
	first, upper := s[0], s[0]-'a'+'A'
	for i := 0; i+len(s) <= len(b); i++ {
		if (b[i] == first || b[i] == upper) && bytes.EqualFold(b[i:i+len(s)], []byte(s)) {
			return true
		}
	}
	return false
}

// limitedBuffer is a bytes.Buffer that refuses to grow past max.
type limitedBuffer struct {
	b   bytes.Buffer
	max int
}

var errOverLimit = errors.New("mangle: header over the limit")

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if l.b.Len()+len(p) > l.max {
		return 0, errOverLimit
	}
	return l.b.Write(p)
}

// writeMangled writes the message mangled to w, as p says. Lines end in
// LF (or CRLF where the text has them), before dot-stuffing.
func writeMangled(w io.Writer, write func(io.Writer) error, p *manglePlan) error {
	src := openMessage(write)
	defer src.Close()
	err := secondPass(w, src, p)
	if err == errPlanMismatch && src.err != nil {
		return src.err
	}
	return err
}

// A "-no-mime" login reads every message through the mangler, so its
// buffers (a pipe's writer, a header reader per message level, the copy
// buffer) are kept for the next message instead of made anew.
var (
	sourceWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 32<<10) }}
	headerReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}
	copyBuffers   = sync.Pool{New: func() any { return new([16 << 10]byte) }}
)

func firstPass(msg io.Reader) (*manglePlan, int64, error) {
	m := &mangler{st: &outState{}}
	defer m.release()
	if err := m.message(msg, 0, 0); err != nil || m.overPlan {
		return nil, 0, errNotMangled
	}
	return &manglePlan{steps: m.plan}, m.st.size, nil
}

func secondPass(w io.Writer, msg io.Reader, p *manglePlan) error {
	m := &mangler{emit: true, w: w, st: &outState{}, plan: p.steps}
	defer m.release()
	err := m.message(msg, 0, 0)
	switch {
	case m.err != nil:
		return m.err
	case err != nil || m.next != len(m.plan):
		return errPlanMismatch
	}
	return nil
}

// mangleTextPlain mangles a whole message held in memory (for tests):
// the result, or errNotMangled.
func mangleTextPlain(msg []byte) ([]byte, error) {
	write := func(w io.Writer) error { _, err := w.Write(msg); return err }
	p, _, err := planMangle(write)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := writeMangled(&out, write, p); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// mangler is one pass over one message.
type mangler struct {
	emit bool      // second pass: follow the plan, write to w
	w    io.Writer // emit: where the output goes
	err  error     // emit: the first error writing to w
	st   *outState // the output so far (first pass: of the branch tried)
	buf  []byte    // for copying text; leaf copies never nest

	hdr      []byte // for part headers, read one at a time
	plan     []planStep
	next     int  // emit: the next step of plan
	planSize int  // first pass: octets the plan has cost
	overPlan bool // first pass: the plan went over maxPlan
}

// outState follows the output as it is made: what separators, final
// newlines and the CRLF collapsing of enclosed messages depend on, and
// the size as RETR counts it (every LF as CRLF). It is a plain value, so
// the first pass tries a branch on a copy and keeps the copy it chooses.
type outState struct {
	size   int64
	lastCR bool // the last octet out was a CR (an LF after it is not counted twice)
	lv     [maxMIMEDepth + 2]textState
}

// textState is one level of output: level 0 the message, level k a
// message enclosed k deep, whose whole output is text of level k-1.
type textState struct {
	n       int     // octets of body text so far, counted up to 2
	last    [2]byte // its last two octets
	cr      bool    // a CR of the level's output is held: enclosed, CRLF becomes LF
	partCR  bool    // likewise for the text part being copied
	charset string  // the first charset a text/plain part named
}

var (
	lf   = []byte("\n")
	cr   = []byte("\r")
	crlf = []byte("\r\n")
)

// out passes p on as output of level l.
func (m *mangler) out(st *outState, l int, p []byte) {
	if len(p) == 0 {
		return
	}
	if l > 0 {
		m.unCRLF(st, &st.lv[l].cr, p, l-1)
		return
	}
	st.size += int64(len(p) + bytes.Count(p, lf) - bytes.Count(p, crlf))
	if st.lastCR && p[0] == '\n' {
		st.size--
	}
	st.lastCR = p[len(p)-1] == '\r'
	if m.emit && m.err == nil {
		_, m.err = m.w.Write(p)
	}
}

// text passes p on as body text of level l.
func (m *mangler) text(st *outState, l int, p []byte) {
	if len(p) == 0 {
		return
	}
	t := &st.lv[l]
	switch {
	case len(p) >= 2:
		t.last = [2]byte{p[len(p)-2], p[len(p)-1]}
	default:
		t.last = [2]byte{t.last[1], p[0]}
	}
	t.n = min(t.n+len(p), 2)
	m.out(st, l, p)
}

// unCRLF passes p on as text of level to with every CRLF made LF, as
// bytes.ReplaceAll did; *held keeps a final CR until the next octet is
// known (endCRLF lets it go).
func (m *mangler) unCRLF(st *outState, held *bool, p []byte, to int) {
	if *held {
		*held = false
		if p[0] != '\n' {
			m.text(st, to, cr)
		}
	}
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\r')
		switch {
		case i < 0:
			m.text(st, to, p)
			return
		case i == len(p)-1:
			m.text(st, to, p[:i])
			*held = true
			return
		case p[i+1] == '\n':
			m.text(st, to, p[:i])
			p = p[i+1:]
		default:
			m.text(st, to, p[:i+1])
			p = p[i+1:]
		}
	}
}

func (m *mangler) endCRLF(st *outState, held *bool, to int) {
	if *held {
		*held = false
		m.text(st, to, cr)
	}
}

// reserve adds a step to the plan (first pass), to be filled in later.
func (m *mangler) reserve() (int, error) {
	if m.planSize += 32; m.planSize > maxPlan {
		m.overPlan = true
		return 0, errPlanTooLong
	}
	m.plan = append(m.plan, planStep{})
	return len(m.plan) - 1, nil
}

// step takes the next step of the plan (second pass).
func (m *mangler) step() (planStep, error) {
	if m.next >= len(m.plan) {
		return planStep{}, errPlanMismatch
	}
	m.next++
	return m.plan[m.next-1], nil
}

// message mangles a message (the whole one, or an enclosed one) read from
// r, at MIME nesting depth and output level l.
func (m *mangler) message(r io.Reader, depth, l int) error {
	st := m.st
	var idx int // the first pass's step for this message, before its parts'
	if !m.emit {
		var err error
		if idx, err = m.reserve(); err != nil {
			return err
		}
	}
	br := headerReaders.Get().(*bufio.Reader)
	br.Reset(r)
	defer func() {
		br.Reset(nil)
		headerReaders.Put(br)
	}()
	ct, cte, err := m.header(br, l)
	if err != nil {
		return err
	}
	t, err := parseType(ct)
	if err != nil {
		return errNotMangled
	}
	if t.mt == "text/plain" && isIdentityEncoding(cte) {
		return errNotMangled
	}
	// The header announces the charset that the body sets. The first pass
	// writes the block without it and adds its length when it is known:
	// the block has no CR, so only the size can differ.
	block := "MIME-Version: 1.0\nContent-Type: %s\nContent-Transfer-Encoding: 8bit\n\n"
	var ct0 string
	if m.emit {
		s, err := m.step()
		if err != nil {
			return err
		}
		ct0 = s.contentType
	}
	m.out(st, l, []byte(fmt.Sprintf(block, ct0)))
	if err := m.entity(l, depth, t, cte, br); err != nil {
		return err
	}
	if t := &st.lv[l]; t.n > 0 && t.last[1] != '\n' {
		m.out(st, l, lf)
	}
	if !m.emit {
		charset := st.lv[l].charset
		if charset == "" {
			charset = "us-ascii"
		}
		ct := mime.FormatMediaType("text/plain", map[string]string{"charset": charset})
		if ct == "" {
			ct = "text/plain; charset=unknown-8bit" // a charset name that is no token
		}
		if strings.ContainsAny(ct, "\r\n") { // FormatMediaType encodes them; never
			return errNotMangled
		}
		if m.planSize += len(ct); m.planSize > maxPlan {
			m.overPlan = true
			return errPlanTooLong
		}
		st.size += int64(len(ct))
		m.plan[idx].contentType = ct
	}
	return nil
}

// header reads a message header up to the blank line that ends it (or
// the end of the message), writes every field but the MIME ones to level
// l, and returns the first non-empty Content-Type and
// Content-Transfer-Encoding. A field is a line and the lines after it
// that begin with a blank; a line is blank when it has only CRs before
// its LF.
func (m *mangler) header(br *bufio.Reader, l int) (ct, cte string, err error) {
	var (
		buf    []byte
		fields int
		keep   bool    // the field is written out
		value  *string // the field's unfolded value is wanted there
		v      string
	)
	endField := func() {
		if value != nil && *value == "" {
			*value = v
		}
		value = nil
	}
	for {
		line, err := readHeaderLine(br, &buf)
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", "", err
		}
		if line[len(line)-1] == '\n' && len(bytes.TrimRight(line, "\r\n")) == 0 {
			break
		}
		if (line[0] == ' ' || line[0] == '\t') && fields > 0 {
			if keep {
				m.out(m.st, l, line)
			}
			if value != nil {
				if v += " " + strings.TrimSpace(string(line)); len(v) > maxHeader {
					return "", "", errHeaderTooLong
				}
			}
			continue
		}
		endField()
		fields++
		name, val, _ := strings.Cut(string(line), ":")
		name = strings.TrimSpace(name)
		switch strings.ToLower(name) {
		case "content-type", "content-transfer-encoding", "mime-version":
			keep = false
		default:
			keep = true
			m.out(m.st, l, line)
		}
		switch textproto.CanonicalMIMEHeaderKey(name) {
		case "Content-Type":
			value = &ct
		case "Content-Transfer-Encoding":
			value = &cte
		}
		if value != nil && *value == "" {
			v = strings.TrimSpace(val)
		} else {
			value = nil
		}
	}
	endField()
	return ct, cte, nil
}

// readHeaderLine reads one line with its LF, or the last one without; a line
// over maxHeader is errHeaderTooLong. buf holds a line longer than br's
// buffer.
func readHeaderLine(br *bufio.Reader, buf *[]byte) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err != bufio.ErrBufferFull {
		if err == io.EOF && len(line) > 0 {
			err = nil
		}
		return line, err
	}
	b := append((*buf)[:0], line...)
	for err == bufio.ErrBufferFull {
		line, err = br.ReadSlice('\n')
		if len(b)+len(line) > maxHeader {
			return nil, errHeaderTooLong
		}
		b = append(b, line...)
	}
	*buf = b
	if err != nil && err != io.EOF {
		return nil, err
	}
	return b, nil
}

// entity writes the text of one MIME entity, read from body, as text of
// level l.
func (m *mangler) entity(l, depth int, t mediaType, cte string, body io.Reader) error {
	if depth > maxMIMEDepth {
		m.text(m.st, l, []byte(fmt.Sprintf("[%s part not shown: nested too deeply]\n", t.mt)))
		return nil
	}
	switch {
	case strings.HasPrefix(t.mt, "multipart/"):
		if t.boundary == "" {
			return errors.New("multipart without boundary")
		}
		parts := newMIMEParts(body, t.boundary, &m.hdr)
		if t.mt == "multipart/alternative" {
			return m.alternative(l, depth, parts)
		}
		for i := 0; ; i++ {
			p, err := parts.next()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			if t := &m.st.lv[l]; i > 0 && t.n > 0 && !(t.n == 2 && t.last == [2]byte{'\n', '\n'}) {
				m.text(m.st, l, lf)
			}
			if err := m.entity(l, depth+1, p.t, p.cte, p); err != nil {
				return err
			}
			if m.err != nil {
				return m.err // the client is gone
			}
		}
	case t.mt == "text/plain":
		return m.textPart(l, t.charset, cte, body)
	case t.mt == "message/rfc822":
		return m.enclosed(l, depth, cte, body)
	default:
		note := t.mt
		if t.name != "" {
			note += fmt.Sprintf(" %q", t.name)
		}
		n, err := m.decodedLen(cte, body)
		if err != nil {
			return err
		}
		m.text(m.st, l, []byte(fmt.Sprintf("[%s part not shown: %d octets]\n", note, n)))
		return nil
	}
}

// alternative writes the plain part of a multipart/alternative if it has
// one, else its first part. The first pass cannot know which until the
// end: it writes the first part, and when a plain part comes it goes back
// to the output as it was before the first and writes that instead.
func (m *mangler) alternative(l, depth int, parts *mimeParts) error {
	if m.emit {
		s, err := m.step()
		if err != nil {
			return err
		}
		for i := 0; ; i++ {
			p, err := parts.next()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			if i == s.pick {
				if err := m.entity(l, depth+1, p.t, p.cte, p); err != nil {
					return err
				}
			}
		}
	}
	idx, err := m.reserve()
	if err != nil {
		return err
	}
	base, before := len(m.plan), *m.st
	pick := -1
	var pickErr, firstErr error
	for i := 0; ; i++ {
		p, err := parts.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err // the parts themselves are torn: whichever is shown
		}
		switch {
		case i == 0:
			err := m.entity(l, depth+1, p.t, p.cte, p)
			if p.t.mt == "text/plain" {
				pick, pickErr = 0, err
			} else {
				firstErr = err // shown unless a plain part comes
			}
		case pick < 0 && p.t.mt == "text/plain":
			*m.st, m.plan = before, m.plan[:base]
			pick, pickErr = i, m.entity(l, depth+1, p.t, p.cte, p)
		}
	}
	if pick < 0 {
		pick, pickErr = 0, firstErr
	}
	m.plan[idx].pick = pick
	return pickErr
}

// textPart writes a text/plain part decoded, CRLF made LF, ending in a
// newline; the first charset named is the message's.
func (m *mangler) textPart(l int, charset, cte string, body io.Reader) error {
	st := m.st
	dec := decoder(cte, body)
	var last byte
	seen := false
	for {
		n, err := dec.Read(m.buffer())
		if n > 0 {
			m.unCRLF(st, &st.lv[l].partCR, m.buf[:n], l)
			last, seen = m.buf[n-1], true
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if m.err != nil {
			return m.err
		}
	}
	m.endCRLF(st, &st.lv[l].partCR, l)
	if seen && last != '\n' {
		m.text(st, l, lf)
	}
	if st.lv[l].charset == "" {
		st.lv[l].charset = charset
	}
	return nil
}

func (m *mangler) buffer() []byte {
	if m.buf == nil {
		m.buf = copyBuffers.Get().(*[16 << 10]byte)[:]
	}
	return m.buf
}

// release gives the pass's copy buffer back.
func (m *mangler) release() {
	if m.buf != nil {
		copyBuffers.Put((*[16 << 10]byte)(m.buf))
		m.buf = nil
	}
}

// decodedLen is the length of a part decoded, or as it is when it does
// not decode.
func (m *mangler) decodedLen(cte string, body io.Reader) (int64, error) {
	raw := &countingReader{r: body}
	dec := decoder(cte, raw)
	var n int64
	for {
		k, err := dec.Read(m.buffer())
		n += int64(k)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			break
		}
	}
	for raw.err == nil {
		raw.Read(m.buf)
	}
	if raw.err != io.EOF {
		return 0, raw.err
	}
	return raw.n, nil
}

// enclosed writes an enclosed message (message/rfc822) mangled, or as it
// is when it cannot be, CRLF made LF either way. The first pass cannot
// know which until its end, so it writes both as it reads.
func (m *mangler) enclosed(l, depth int, cte string, body io.Reader) error {
	in := l + 1
	dec := decoder(cte, body)
	if m.emit {
		s, err := m.step()
		if err != nil {
			return err
		}
		m.st.lv[in] = textState{}
		if s.pick == 1 {
			if err := m.message(dec, depth+1, in); err != nil {
				return err
			}
		} else if err := m.copyOut(in, dec); err != nil {
			return err
		}
		m.endCRLF(m.st, &m.st.lv[in].cr, l)
		return nil
	}
	idx, err := m.reserve()
	if err != nil {
		return err
	}
	asIs := *m.st
	asIs.lv[in] = textState{}
	m.st.lv[in] = textState{}
	tee := &teeReader{r: dec, m: m, st: &asIs, l: in}
	merr := m.message(tee, depth+1, in)
	for tee.err == nil {
		tee.Read(m.buffer())
	}
	if tee.err != io.EOF {
		return tee.err // the part does not decode or cannot be read
	}
	if merr != nil {
		*m.st, m.plan = asIs, m.plan[:idx+1]
	} else {
		m.plan[idx].pick = 1
	}
	m.endCRLF(m.st, &m.st.lv[in].cr, l)
	return nil
}

// copyOut writes r as it is as output of level l.
func (m *mangler) copyOut(l int, r io.Reader) error {
	for {
		n, err := r.Read(m.buffer())
		m.out(m.st, l, m.buf[:n])
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if m.err != nil {
			return m.err
		}
	}
}

// teeReader writes what it reads as output of level l of st: an enclosed
// message as it is, while the first pass also tries to mangle it.
type teeReader struct {
	r   io.Reader
	m   *mangler
	st  *outState
	l   int
	err error
}

func (t *teeReader) Read(p []byte) (int, error) {
	if t.err != nil {
		return 0, t.err
	}
	n, err := t.r.Read(p)
	t.m.out(t.st, t.l, p[:n])
	t.err = err
	return n, err
}

// countingReader counts what it reads and keeps its error.
type countingReader struct {
	r   io.Reader
	n   int64
	err error
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.err = err
	return n, err
}

// mediaType is a Content-Type with the parameters mangling uses.
type mediaType struct{ mt, boundary, charset, name string }

// parseType parses a Content-Type value; an absent one is text/plain
// (RFC 2045 §5.2).
func parseType(v string) (mediaType, error) {
	if strings.TrimSpace(v) == "" {
		return mediaType{mt: "text/plain"}, nil
	}
	mt, params, err := mime.ParseMediaType(v)
	if err != nil {
		return mediaType{}, err
	}
	return mediaType{mt: mt, boundary: params["boundary"], charset: params["charset"], name: params["name"]}, nil
}

func isIdentityEncoding(cte string) bool {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "", "7bit", "8bit", "binary":
		return true
	}
	return false
}

// decoder decodes a body by its transfer encoding; its errors stick.
func decoder(cte string, body io.Reader) io.Reader {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "base64":
		return &base64Reader{r: body}
	case "quoted-printable":
		return &stickyReader{r: quotedprintable.NewReader(body)}
	}
	return &stickyReader{r: body}
}

// stickyReader returns its first error for good.
type stickyReader struct {
	r   io.Reader
	err error
}

func (s *stickyReader) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.r.Read(p)
	s.err = err
	return n, err
}

// base64Reader decodes base64 as base64.StdEncoding.Decode does the whole
// body once CR, LF, space and tab are removed: padding ends the data,
// and an incomplete last quantum is an error. (base64.NewDecoder skips
// only CR and LF, and accepts data after padding across its reads.)
type base64Reader struct {
	r    io.Reader
	in   []byte // input awaiting decoding: whole quanta go, the rest waits
	out  []byte // decoded, not yet read
	dst  []byte
	read []byte
	end  bool // padding was decoded: nothing but blanks may follow
	err  error
}

func (b *base64Reader) Read(p []byte) (int, error) {
	for len(b.out) == 0 {
		if b.err != nil {
			return 0, b.err
		}
		if b.read == nil {
			b.read, b.dst = make([]byte, 4096), make([]byte, 3*4096/4+3)
			b.in = make([]byte, 0, 4096+3)
		}
		n, err := b.r.Read(b.read)
		for _, c := range b.read[:n] {
			switch {
			case c == '\r' || c == '\n' || c == ' ' || c == '\t':
			case b.end:
				b.err = base64.CorruptInputError(0)
			default:
				b.in = append(b.in, c)
			}
		}
		if q := len(b.in) / 4 * 4; q > 0 && b.err == nil {
			k, derr := base64.StdEncoding.Decode(b.dst, b.in[:q])
			b.out = b.dst[:k]
			b.end = b.in[q-1] == '='
			b.in = b.in[:copy(b.in, b.in[q:])]
			if derr != nil {
				b.err = derr
			}
		}
		switch {
		case b.err != nil:
		case err == io.EOF && len(b.in) > 0:
			b.err = base64.CorruptInputError(0) // an incomplete quantum
		case err != nil:
			b.err = err
		}
	}
	n := copy(p, b.out)
	b.out = b.out[n:]
	return n, nil
}

// msgSource is a message as Mailbox.WriteMessage writes it, to read: the
// writer runs in a goroutine of its own, ahead of the reader by a pipe
// and a small buffer.
type msgSource struct {
	pr   *io.PipeReader
	done chan struct{}
	err  error // the writer's error, if it failed
}

var errStopped = errors.New("mangle: stopped reading")

func openMessage(write func(io.Writer) error) *msgSource {
	pr, pw := io.Pipe()
	s := &msgSource{pr: pr, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		bw := sourceWriters.Get().(*bufio.Writer)
		bw.Reset(pw)
		err := write(bw)
		if err == nil {
			err = bw.Flush()
		}
		pw.CloseWithError(err) // nil: the reader gets io.EOF
		bw.Reset(nil)
		sourceWriters.Put(bw)
	}()
	return s
}

func (s *msgSource) Read(p []byte) (int, error) {
	n, err := s.pr.Read(p)
	if err != nil && err != io.EOF && s.err == nil {
		s.err = err
	}
	return n, err
}

// Close stops the writer and waits for it: the mailbox is the session's
// again.
func (s *msgSource) Close() {
	s.pr.CloseWithError(errStopped)
	<-s.done
}

// topWriter passes on a message's header, its blank line and the first
// lines of its body (TOP), then fails with errTopDone.
type topWriter struct {
	w      io.Writer
	lines  int  // body lines still to pass
	inBody bool // the blank line has passed
	blank  bool // the line so far has only CRs
}

func newTopWriter(w io.Writer, lines int) *topWriter {
	return &topWriter{w: w, lines: lines, blank: true}
}

func (t *topWriter) Write(p []byte) (int, error) {
	end, done := 0, false
	for end < len(p) && !done {
		switch {
		case !t.inBody:
			c := p[end]
			end++
			switch {
			case c == '\n' && t.blank:
				t.inBody = true
			case c == '\n':
				t.blank = true
			case c != '\r':
				t.blank = false
			}
		case t.lines == 0:
			done = true
		default:
			if i := bytes.IndexByte(p[end:], '\n'); i >= 0 {
				end += i + 1
				t.lines--
			} else {
				end = len(p)
			}
		}
	}
	if t.inBody && t.lines == 0 {
		done = true
	}
	if _, err := t.w.Write(p[:end]); err != nil {
		return 0, err
	}
	if done {
		return end, errTopDone
	}
	return end, nil
}
