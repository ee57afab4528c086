package spool

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
)

// checkOffsets rejects a Msg whose offsets are not in order.
func checkOffsets(m *Msg) error {
	if m.Start < 0 || m.Start > m.HdrStart || m.HdrStart > m.BodyStart ||
		m.BodyStart > m.End || m.End > m.Next {
		return fmt.Errorf("spool: message offsets out of order (start %d, header %d, body %d, end %d, next %d)",
			m.Start, m.HdrStart, m.BodyStart, m.End, m.Next)
	}
	return nil
}

// lastByteWriter counts what passes through and remembers the last byte.
type lastByteWriter struct {
	w    io.Writer
	n    int64
	last byte
}

func (c *lastByteWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	if n > 0 {
		c.last = p[n-1]
	}
	c.n += int64(n)
	return n, err
}

func (c *lastByteWriter) WriteString(s string) (int, error) { return c.Write([]byte(s)) }

// msgLines reads the lines of a byte range in bounded memory.
type msgLines struct {
	r    *bufio.Reader
	sec  io.SectionReader
	src  countReader
	want int64
	nl   bool // the last chunk read ended in '\n'
}

// A session renders thousands of messages, and a new 32 KB buffer for
// each was most of the default mode's CPU (allocating and clearing it,
// then collecting it): the readers and writers are kept for the next
// message instead.
var (
	msgLinesPool = sync.Pool{New: func() any {
		ml := &msgLines{}
		ml.r = bufio.NewReaderSize(&ml.src, 32<<10)
		return ml
	}}
	wirePool    = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4096) }}
	updatedPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 32<<10) }}
)

// getWriter returns a writer of pool writing to w; putWriter gives it
// back, holding no reference to w.
func getWriter(pool *sync.Pool, w io.Writer) *bufio.Writer {
	bw := pool.Get().(*bufio.Writer)
	bw.Reset(w)
	return bw
}

func putWriter(pool *sync.Pool, bw *bufio.Writer) {
	bw.Reset(nil)
	pool.Put(bw)
}

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// short reports a range that ended before its length: the file shrank
// under the message.
func (ml *msgLines) short() error {
	if ml.src.n < ml.want {
		return io.ErrUnexpectedEOF
	}
	return nil
}

func (ml *msgLines) read() ([]byte, error) {
	chunk, err := ml.r.ReadSlice('\n')
	if len(chunk) > 0 {
		ml.nl = chunk[len(chunk)-1] == '\n'
	}
	return chunk, err
}

// newMsgLines reads n bytes of src from off; release gives its buffer
// back once the range has been read.
func newMsgLines(src io.ReaderAt, off, n int64) *msgLines {
	ml := msgLinesPool.Get().(*msgLines)
	ml.sec = *io.NewSectionReader(src, off, n)
	ml.src = countReader{r: &ml.sec}
	ml.want, ml.nl = n, false
	ml.r.Reset(&ml.src)
	return ml
}

func (ml *msgLines) release() {
	ml.sec = io.SectionReader{}
	ml.src = countReader{}
	ml.r.Reset(&ml.src)
	msgLinesPool.Put(ml)
}

// first returns the first chunk of the next line (the whole line unless it
// is longer than the buffer), whether the line ended in it, and io.EOF
// when no line is left.
func (ml *msgLines) first() (chunk []byte, ended bool, err error) {
	chunk, err = ml.read()
	switch {
	case err == nil:
		return chunk, true, nil
	case errors.Is(err, bufio.ErrBufferFull):
		return chunk, false, nil
	case err == io.EOF:
		if err := ml.short(); err != nil {
			return nil, true, err
		}
		if len(chunk) == 0 {
			return nil, true, io.EOF
		}
		return chunk, true, nil
	}
	return nil, true, err
}

// rest passes the remainder of a line whose first chunk did not end it to
// w (nil: skip it).
func (ml *msgLines) rest(w io.Writer) error {
	for {
		chunk, err := ml.read()
		if w != nil && len(chunk) > 0 {
			if _, werr := w.Write(chunk); werr != nil {
				return werr
			}
		}
		switch {
		case err == nil:
			return nil
		case err == io.EOF:
			return ml.short()
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		}
		return err
	}
}

// copyLine writes a line (its first chunk already read) to w, or skips it
// when w is nil.
func (ml *msgLines) copyLine(w io.Writer, chunk []byte, ended bool) error {
	if w != nil {
		if _, err := w.Write(chunk); err != nil {
			return err
		}
	}
	if ended {
		return nil
	}
	return ml.rest(w)
}

func isBlank(chunk []byte, ended bool) bool {
	return ended && (string(chunk) == "\n" || string(chunk) == "\r\n")
}

// WriteWire writes message m of drop src as RETR (bodyLines < 0) or
// TOP m bodyLines sends it, before dot-stuffing and CRLF (qpopper's
// pop_send): the separator is not sent; header lines go in order except
// X-UIDL and Content-Length lines (any case), which are dropped;
// "X-UIDL: <uid>" is inserted before the first Status: header, or else
// before the blank line; then the blank line and at most bodyLines body
// lines. Line ends stay as stored; a missing final newline is supplied,
// and a message without a blank line gets one after its header, as its
// Size counts. Memory use does not depend on line or message length.
func WriteWire(w io.Writer, src io.ReaderAt, m *Msg, bodyLines int) error {
	return writeWire(w, src, m, m.UID, bodyLines)
}

// writeWire is WriteWire with m's UID given apart, so that a session can
// send a message whose UID its table keeps packed without making a
// string of it (200,000 of them at a -no-mime login, which sizes every
// message).
func writeWire[S ~string | ~[]byte](w io.Writer, src io.ReaderAt, m *Msg, uid S, bodyLines int) error {
	if err := checkOffsets(m); err != nil {
		return err
	}
	bw := getWriter(&wirePool, w)
	defer putWriter(&wirePool, bw)
	ml := newMsgLines(src, m.HdrStart, m.End-m.HdrStart)
	defer ml.release()
	inserted, body := false, false
	for {
		chunk, ended, err := ml.first()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if isBlank(chunk, ended) {
			if !inserted {
				writeUIDLine(bw, uid)
				inserted = true
			}
			bw.Write(chunk)
			body = true
			break
		}
		drop := hasPrefixFold(chunk, "X-UIDL:") || hasPrefixFold(chunk, "Content-Length:")
		if !drop && !inserted && hasPrefixFold(chunk, "Status:") {
			writeUIDLine(bw, uid)
			inserted = true
		}
		if drop {
			err = ml.copyLine(nil, chunk, ended)
		} else {
			err = writeWholeLine(bw, ml, chunk, ended)
		}
		if err != nil {
			return err
		}
	}
	if !body {
		if !inserted {
			writeUIDLine(bw, uid)
		}
		bw.WriteString("\n")
		return bw.Flush()
	}
	for n := 0; bodyLines < 0 || n < bodyLines; n++ {
		chunk, ended, err := ml.first()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if err := writeWholeLine(bw, ml, chunk, ended); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// writeUIDLine writes "X-UIDL: uid" and a newline.
func writeUIDLine[S ~string | ~[]byte](bw *bufio.Writer, uid S) {
	bw.WriteString("X-UIDL: ")
	for i := range len(uid) {
		bw.WriteByte(uid[i]) // not Write: the bytes would escape to the heap
	}
	bw.WriteByte('\n')
}

// writeWholeLine copies a line and supplies its newline when the range
// ends without one.
func writeWholeLine(bw *bufio.Writer, ml *msgLines, chunk []byte, ended bool) error {
	if err := ml.copyLine(bw, chunk, ended); err != nil {
		return err
	}
	if !ml.nl {
		_, err := bw.WriteString("\n")
		return err
	}
	return nil
}

// WriteUpdated writes message m of drop src as qpopper's update writes it
// back to the spool (pop_updt), and returns the bytes written:
//
//   - the separator line as stored;
//   - "X-UIDL: <uid>" right after it; every X-UIDL line of the header is
//     dropped;
//   - the header lines, a Status: line replaced by "Status: RO" when
//     retrieved (left as it is otherwise); with opt.UpdateStatusHeaders
//     and no Status: line, "Status: RO" or "Status: U" is added before the
//     blank line (before the end of a message without one, where qpopper
//     added nothing); Content-Length lines are kept, except when Parse
//     found them false (Msg.BadContentLength): then they are dropped, so
//     that the message keeps the end Parse gave it;
//   - the blank line and the body exactly as stored;
//   - for MMDF, the separator line again as the trailer. The format is
//     known from the separator itself: an MMDF separator starts with ^A,
//     an mbox one with "From ". A missing newline is supplied before the
//     trailer, so the trailer stays a line of its own.
//
// Parsing the result again gives the same UID, now found (UIDFound), and
// the same Size, plus the Status line when one was added.
func WriteUpdated(w io.Writer, src io.ReaderAt, m *Msg, retrieved bool, opt ParseOptions) (int64, error) {
	if err := checkOffsets(m); err != nil {
		return 0, err
	}
	cw := &lastByteWriter{w: w}
	sep, err := readSeparator(src, m)
	if err != nil {
		return 0, err
	}
	bw := getWriter(&updatedPool, cw)
	defer putWriter(&updatedPool, bw)
	bw.Write(sep)
	writeUIDLine(bw, m.UID)
	status := "Status: U\n"
	if retrieved {
		status = "Status: RO\n"
	}
	ml := newMsgLines(src, m.HdrStart, m.End-m.HdrStart)
	defer ml.release()
	hasStatus, body := false, false
	lastNL := true
	for {
		chunk, ended, err := ml.first()
		if err == io.EOF {
			break
		}
		if err != nil {
			return cw.n, err
		}
		if isBlank(chunk, ended) {
			if !hasStatus && opt.UpdateStatusHeaders {
				bw.WriteString(status)
			}
			bw.Write(chunk)
			body = true
			break
		}
		switch {
		case hasPrefixFold(chunk, "X-UIDL:"),
			m.BadContentLength && bytes.HasPrefix(chunk, []byte("Content-Length:")):
			err = ml.copyLine(nil, chunk, ended)
		case hasPrefixFold(chunk, "Status:"):
			hasStatus = true
			if retrieved {
				err = ml.copyLine(nil, chunk, ended)
				bw.WriteString("Status: RO\n")
				lastNL = true
				break
			}
			fallthrough
		default:
			err = ml.copyLine(bw, chunk, ended)
			lastNL = ml.nl
		}
		if err != nil {
			return cw.n, err
		}
	}
	if body {
		if _, err := io.Copy(bw, ml.r); err != nil {
			return cw.n, err
		}
		if err := ml.short(); err != nil {
			return cw.n, err
		}
	} else {
		if !lastNL {
			bw.WriteString("\n")
		}
		if !hasStatus && opt.UpdateStatusHeaders {
			bw.WriteString(status)
		}
	}
	if err := bw.Flush(); err != nil {
		return cw.n, err
	}
	if sep[0] == 0x01 {
		if cw.last != '\n' {
			if _, err := cw.Write([]byte("\n")); err != nil {
				return cw.n, err
			}
		}
		if _, err := cw.Write(sep); err != nil {
			return cw.n, err
		}
	}
	return cw.n, nil
}

// readSeparator returns message m's separator line, newline-terminated.
func readSeparator(src io.ReaderAt, m *Msg) ([]byte, error) {
	sep := make([]byte, m.HdrStart-m.Start)
	if len(sep) == 0 || len(sep) > maxFrag {
		return nil, fmt.Errorf("spool: separator of %d bytes at offset %d", len(sep), m.Start)
	}
	if n, err := src.ReadAt(sep, m.Start); n < len(sep) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if sep[len(sep)-1] != '\n' {
		sep = append(sep, '\n')
	}
	return sep, nil
}

// WriteRaw copies message m's bytes [Start, Next) unchanged and returns
// the bytes written. An MMDF message gets its trailer written anew from
// its separator: one torn at the end of a file, or missing, would
// otherwise join the next message's separator when messages of several
// files are put together (crash recovery).
func WriteRaw(w io.Writer, src io.ReaderAt, m *Msg) (int64, error) {
	if err := checkOffsets(m); err != nil {
		return 0, err
	}
	sep, err := readSeparator(src, m)
	if err != nil {
		return 0, err
	}
	if sep[0] != 0x01 {
		return io.Copy(w, io.NewSectionReader(src, m.Start, m.Next-m.Start))
	}
	cw := &lastByteWriter{w: w}
	if _, err := io.Copy(cw, io.NewSectionReader(src, m.Start, m.End-m.Start)); err != nil {
		return cw.n, err
	}
	if cw.last != '\n' {
		if _, err := cw.Write([]byte("\n")); err != nil {
			return cw.n, err
		}
	}
	_, err = cw.Write(sep)
	return cw.n, err
}
