package pop3

import (
	"bufio"
	"bytes"
)

// dotWriter writes the body of a multi-line response (RFC 1939 §3): LF
// becomes CRLF and a line starting with "." gets another. It produces
// the bytes net/textproto's DotWriter does, which qpopper's sizes are
// counted against (doc/qpopper.md, "Sizes"), but a segment at a time:
// it finds line ends with bytes.IndexByte and copies what lies between
// into the session's output buffer, instead of one WriteByte per byte.
//
// textproto's rule for a CR is kept exactly: a CR run before an LF
// leaves the LF alone when it has odd length (its CR state toggles);
// after an even run, or none, the LF gets a CR of its own.
type dotWriter struct {
	w     *bufio.Writer
	state dotState
}

type dotState uint8

const (
	dotBegin     dotState = iota // nothing written yet
	dotBeginLine                 // at the start of a line
	dotData                      // inside a line
	dotCR                        // inside a line, after an odd run of CRs
)

func newDotWriter(w *bufio.Writer) *dotWriter { return &dotWriter{w: w} }

func (d *dotWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if d.state == dotBegin || d.state == dotBeginLine {
			if p[0] == '.' {
				d.w.WriteByte('.')
			}
			d.state = dotData
		}
		seg := p
		i := bytes.IndexByte(p, '\n')
		if i >= 0 {
			seg = p[:i]
		}
		d.state = afterCRs(d.state, seg)
		if _, err := d.w.Write(seg); err != nil {
			return n, err
		}
		if i >= 0 {
			end := "\r\n"
			if d.state == dotCR {
				end = "\n"
			}
			if _, err := d.w.WriteString(end); err != nil {
				return n, err
			}
			d.state = dotBeginLine
			seg = p[:i+1]
		}
		n += len(seg)
		p = p[len(seg):]
	}
	return n, nil
}

// afterCRs is the state after seg, a part of a line without its LF, is
// written in state s (dotData or dotCR): any other byte ends a CR run,
// and each CR toggles.
func afterCRs(s dotState, seg []byte) dotState {
	k := 0
	for k < len(seg) && seg[len(seg)-1-k] == '\r' {
		k++
	}
	if k < len(seg) {
		s = dotData
	}
	if k%2 == 1 {
		if s == dotCR {
			return dotData
		}
		return dotCR
	}
	return s
}

// Close ends the response: an unterminated last line is ended, then the
// terminating ".". Nothing is flushed: the reply goes out with whatever
// follows it in the buffer, or when the session next waits for the
// client.
func (d *dotWriter) Close() error {
	end := ".\r\n"
	switch d.state {
	case dotBegin, dotData:
		end = "\r\n.\r\n"
	case dotCR:
		end = "\n.\r\n"
	}
	_, err := d.w.WriteString(end)
	return err
}
