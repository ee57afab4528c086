package pop3

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/textproto"
)

// mimeParts reads the parts of a multipart body as mime/multipart's
// Reader.NextRawPart does, which the in-memory mangler used: the same
// framing, byte for byte (a 4 KB buffer, LF line ends accepted, a header
// cut short by the end of the body ends the parts), the same header
// parsing, at most 10,000 header fields. The one difference is the bound
// on a part's header: maxHeader octets here, where mime/multipart holds up
// to 10 MB, at every level of nesting.
type mimeParts struct {
	br        *bufio.Reader
	cur       *mimePart
	partsRead int
	hdr       *[]byte // for the part header being read

	nl               []byte // "\r\n" or "\n", as the first delimiter line ends
	nlDashBoundary   []byte // nl + "--boundary"
	dashBoundaryDash []byte // "--boundary--"
	dashBoundary     []byte // "--boundary"
}

// mimePart is one part: its type, parameters and transfer encoding, and
// its body to read.
type mimePart struct {
	mr  *mimeParts
	t   mediaType
	cte string

	n       int   // body octets buffered and known not to be a boundary
	total   int64 // body octets read so far
	err     error // the error once n octets are read: io.EOF at the boundary
	readErr error // the error reading more after what is buffered
}

// maxPartFields is mime/multipart's limit on a part's header fields.
const maxPartFields = 10000

// newMIMEParts reads the parts of r; hdr is where part headers are read,
// shared by the levels of nesting: one header is read at a time.
func newMIMEParts(r io.Reader, boundary string, hdr *[]byte) *mimeParts {
	b := []byte("\r\n--" + boundary + "--")
	return &mimeParts{
		br:               bufio.NewReaderSize(&stickyReader{r: r}, 4096),
		hdr:              hdr,
		nl:               b[:2],
		nlDashBoundary:   b[:len(b)-2],
		dashBoundaryDash: b[2:],
		dashBoundary:     b[2 : len(b)-2],
	}
}

// next skips the rest of the current part and returns the next one, or
// io.EOF after the last.
func (r *mimeParts) next() (*mimePart, error) {
	if r.cur != nil {
		io.Copy(io.Discard, r.cur)
		r.cur = nil
	}
	expectNewPart := false
	for {
		line, err := r.br.ReadSlice('\n')
		if err == io.EOF && r.isFinalBoundary(line) {
			return nil, io.EOF // "--boundary--" without its line end
		}
		if err != nil {
			// Not the end of the parts, even at the end of the input.
			return nil, fmt.Errorf("multipart: %w", err)
		}
		if r.isBoundaryDelimiterLine(line) {
			r.partsRead++
			p, err := r.newPart()
			if err != nil {
				return nil, err
			}
			r.cur = p
			return p, nil
		}
		if r.isFinalBoundary(line) {
			return nil, io.EOF
		}
		if expectNewPart {
			return nil, errors.New("multipart: expecting a new part")
		}
		if r.partsRead == 0 {
			continue // the preamble
		}
		// The line end before the delimiter, after a part's body.
		if bytes.Equal(line, r.nl) {
			expectNewPart = true
			continue
		}
		return nil, errors.New("multipart: unexpected line")
	}
}

// newPart reads a part's header, up to and with the blank line, then
// parses it as textproto does.
func (r *mimeParts) newPart() (*mimePart, error) {
	hdr := (*r.hdr)[:0]
	for start := 0; ; {
		frag, err := r.br.ReadSlice('\n')
		if hdr = append(hdr, frag...); len(hdr) > maxHeader {
			return nil, errHeaderTooLong
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			break // the header is cut short: textproto says so below
		}
		if err != nil {
			return nil, err
		}
		if line := hdr[start:]; string(line) == "\n" || string(line) == "\r\n" {
			break
		}
		start = len(hdr)
	}
	*r.hdr = hdr
	h, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(hdr))).ReadMIMEHeader()
	fields := 0
	for _, v := range h {
		fields += len(v)
	}
	if fields > maxPartFields {
		return nil, errors.New("multipart: too many header fields")
	}
	if err != nil {
		return nil, err // io.EOF for a header cut short: the parts end
	}
	p := &mimePart{mr: r, cte: h.Get("Content-Transfer-Encoding")}
	var perr error
	if p.t, perr = parseType(h.Get("Content-Type")); perr != nil {
		// An unreadable part type is shown as an attachment note.
		p.t = mediaType{mt: "application/octet-stream"}
	}
	if p.t.name == "" {
		if _, dp, err := mime.ParseMediaType(h.Get("Content-Disposition")); err == nil {
			p.t.name = dp["filename"]
		}
	}
	return p, nil
}

// isFinalBoundary reports whether line is "--boundary--", then blanks,
// then the line end or nothing.
func (r *mimeParts) isFinalBoundary(line []byte) bool {
	rest, ok := bytes.CutPrefix(line, r.dashBoundaryDash)
	if !ok {
		return false
	}
	rest = skipBlanks(rest)
	return len(rest) == 0 || bytes.Equal(rest, r.nl)
}

// isBoundaryDelimiterLine reports whether line is "--boundary", then
// blanks, then the line end (RFC 2046 §5.1). The first one sets whether
// lines end in CRLF or LF.
func (r *mimeParts) isBoundaryDelimiterLine(line []byte) bool {
	rest, ok := bytes.CutPrefix(line, r.dashBoundary)
	if !ok {
		return false
	}
	rest = skipBlanks(rest)
	if r.partsRead == 0 && len(rest) == 1 && rest[0] == '\n' {
		r.nl = r.nl[1:]
		r.nlDashBoundary = r.nlDashBoundary[1:]
	}
	return bytes.Equal(rest, r.nl)
}

func skipBlanks(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

// Read reads the part's body, up to the line end before the next
// delimiter.
func (p *mimePart) Read(d []byte) (int, error) {
	br := p.mr.br
	for p.n == 0 && p.err == nil {
		peek, _ := br.Peek(br.Buffered())
		p.n, p.err = scanUntilBoundary(peek, p.mr.dashBoundary, p.mr.nlDashBoundary, p.total, p.readErr)
		if p.n == 0 && p.err == nil {
			_, p.readErr = br.Peek(len(peek) + 1) // read more
			if p.readErr == io.EOF {
				p.readErr = io.ErrUnexpectedEOF
			}
		}
	}
	if p.n == 0 {
		return 0, p.err
	}
	n, _ := br.Read(d[:min(len(d), p.n)])
	p.total += int64(n)
	p.n -= n
	if p.n == 0 {
		return n, p.err
	}
	return n, nil
}

// scanUntilBoundary returns how much of buf is body for certain, and the
// error to give once it is read: io.EOF when a delimiter follows, readErr
// when buf is all there is. total is the body read so far: at its start
// the delimiter needs no line end before it.
func scanUntilBoundary(buf, dashBoundary, nlDashBoundary []byte, total int64, readErr error) (int, error) {
	if total == 0 {
		if bytes.HasPrefix(buf, dashBoundary) {
			switch matchAfterPrefix(buf, dashBoundary, readErr) {
			case -1:
				return len(dashBoundary), nil
			case 0:
				return 0, nil
			case +1:
				return 0, io.EOF
			}
		}
		if bytes.HasPrefix(dashBoundary, buf) {
			return 0, readErr
		}
	}
	if i := bytes.Index(buf, nlDashBoundary); i >= 0 {
		switch matchAfterPrefix(buf[i:], nlDashBoundary, readErr) {
		case -1:
			return i + len(nlDashBoundary), nil
		case 0:
			return i, nil
		case +1:
			return i, io.EOF
		}
	}
	if bytes.HasPrefix(nlDashBoundary, buf) {
		return 0, readErr
	}
	// All up to the last line end is body; from there on too, unless it
	// may be the start of a delimiter.
	i := bytes.LastIndexByte(buf, nlDashBoundary[0])
	if i >= 0 && bytes.HasPrefix(nlDashBoundary, buf[i:]) {
		return i, nil
	}
	return len(buf), readErr
}

// matchAfterPrefix tells, for buf beginning with a delimiter prefix,
// whether it is a delimiter (+1: a blank, a line end, "--" or the end of
// the input follows), is not (-1), or more input is needed (0).
func matchAfterPrefix(buf, prefix []byte, readErr error) int {
	if len(buf) == len(prefix) {
		if readErr != nil {
			return +1
		}
		return 0
	}
	c := buf[len(prefix)]
	if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
		return +1
	}
	if c == '-' {
		if len(buf) == len(prefix)+1 {
			if readErr != nil {
				return -1 // prefix + "-" at the end does not match
			}
			return 0
		}
		if buf[len(prefix)+1] == '-' {
			return +1
		}
	}
	return -1
}
