package spool

import (
	"bufio"
	"hash/crc32"
	"io"
)

// The index's two helpers around the parser: parsing a drop from a
// message boundary instead of its first byte, and the running checksum of
// the spool's bytes that lets a later login prove a prefix unchanged.

// section says where a parse starts: at offset start, the separator of
// message number msgs (counting from 0) of a drop whose format is
// already known (format, sep) unless msgs is 0.
type section struct {
	start  int64
	msgs   int
	format Format
	sep    string
}

// parsed is a parse before uniqueUIDs: the raw messages, each message's
// generated UID, and the bytes that belong to no message.
type parsed struct {
	format Format
	sep    string
	msgs   *msgTable
	alt    *altList
	junk   []Range
	end    int64
}

// parseSection runs the parser over r, which holds the drop's bytes from
// s.start to its end, and returns what Parse would have found for those
// messages had it read the drop from its first byte: offsets are the
// drop's, qpopper's per-message counter goes on from s.msgs, and the UW
// kluge, which looks at the drop's first message only, stays off after
// it. Parse is parseSection from the first byte; the parser state at a
// boundary where a message starts in the main parser (no speculative
// parse running, as after every message end when no Content-Length
// lied, see parser) is the state of a fresh parser, which is what makes
// this equal to a full parse.
func parseSection(r io.Reader, s section, opt ParseOptions) (*parsed, error) {
	lr := newLineReader(r)
	lr.off = s.start
	p := &parser{opt: opt, counter: opt.UIDCounter + int64(s.msgs), prevBlank: true, notFirst: s.msgs > 0}
	detect := s.msgs == 0
	if !detect && s.format == MMDF {
		p.mmdf = true
		p.sep = []byte(s.sep)
	}
	for {
		l, err := lr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if detect {
			detect = false
			if len(l.head) > 0 && l.head[0] == 0x01 && l.nl && l.whole() {
				p.mmdf = true
				p.sep = append([]byte(nil), l.head...)
			}
		}
		p.feed(l)
	}
	p.eof(lr.off)
	// Copies of the parser's fields, so that the table a session keeps
	// does not keep the parser, and its altList, alive with it.
	msgs, alt := p.msgs, p.alt
	out := &parsed{msgs: &msgs, alt: &alt, junk: p.junk, end: lr.off}
	if p.mmdf {
		out.format, out.sep = MMDF, string(p.sep)
	}
	return out, nil
}

// sumBlock is the spacing of the checkpoints of spoolSum: a change in the
// spool costs a parse from the last message starting before the block it
// falls in.
const sumBlock = 64 << 10

// indexCRC extends crc, a CRC-32 (IEEE), by p. It is the index's checksum,
// of the spool's bytes and of its own: the cheapest the standard library
// has in hardware (about 25 GB/s here), so proving a 1 GiB prefix
// unchanged costs its read, not a parse. Not CRC-32C, as fast: Go builds
// its tables on first use, 0.25 ms, a fifth of a session's own work.
// It guards against accidents (a mail reader that rewrote the spool), not
// against the spool's owner, who may write the spool and the index alike.
func indexCRC(crc uint32, p []byte) uint32 { return crc32.Update(crc, crc32.IEEETable, p) }

// spoolSum is the indexCRC of the spool's bytes [0, off), with a
// checkpoint every sumBlock bytes: marks[i] is the CRC of
// [0, (i+1)*sumBlock).
type spoolSum struct {
	crc   uint32
	off   int64
	marks []uint32
}

// add hashes p, the spool's bytes from offset at. Bytes before s.off are
// already hashed and skipped; a gap after it is a bug of the caller.
func (s *spoolSum) add(p []byte, at int64) {
	if at < s.off {
		skip := s.off - at
		if skip >= int64(len(p)) {
			return
		}
		p, at = p[skip:], s.off
	}
	if at != s.off {
		panic("spool: checksum gap")
	}
	for len(p) > 0 {
		room := sumBlock - s.off%sumBlock
		n := int64(len(p))
		if n > room {
			n = room
		}
		s.crc = indexCRC(s.crc, p[:n])
		s.off += n
		p = p[n:]
		if s.off%sumBlock == 0 {
			s.marks = append(s.marks, s.crc)
		}
	}
}

// at returns the CRC of [0, end) for end ≤ s.off, reading at most one
// block from f.
func (s *spoolSum) at(f io.ReaderAt, end int64) (uint32, error) {
	if end == s.off {
		return s.crc, nil
	}
	base := end - end%sumBlock
	var crc uint32
	if base > 0 {
		crc = s.marks[base/sumBlock-1]
	}
	buf := make([]byte, end-base)
	if _, err := f.ReadAt(buf, base); err != nil {
		return 0, err
	}
	return indexCRC(crc, buf), nil
}

// summingReader feeds what it reads, from offset off of the spool on, to
// sum.
type summingReader struct {
	r   io.Reader
	off int64
	sum *spoolSum
}

func (r *summingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.sum.add(p[:n], r.off)
		r.off += int64(n)
	}
	return n, err
}

// parseSpool parses the spool f of size bytes from section s, feeding
// the bytes it reads to sum.
func parseSpool(f io.ReaderAt, size int64, s section, opt ParseOptions, sum *spoolSum) (*parsed, error) {
	r := &summingReader{r: io.NewSectionReader(f, s.start, size-s.start), off: s.start, sum: sum}
	return parseSection(bufio.NewReaderSize(r, 64<<10), s, opt)
}
