package spool

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"syscall"
	"time"

	"github.com/popperd/popper/platform"
)

// The index beside the spool (qpopper's cache-dir/cache-name, by default
// /var/mail/.USER.cache) holds what a parse of the spool found, so that a
// login on an unchanged spool costs a stat and an index read, and one on
// a spool an MDA appended to parses only the new mail. Its layout is
// popper's own (doc/index.md), not qpopper's struct dump.
//
// It is a cache, and a wrong UID is mail lost to the user (the client
// skips a message it believes it has), so it is believed only as far as
// it proves itself:
//
//   - the file is the session user's (or root's) regular file with one
//     link, opened without following a symbolic link, written by nobody
//     else, and its CRC-32 trailer holds;
//   - it describes this spool (device and inode) parsed with these
//     options;
//   - when the spool's size, mtime and ctime are those it recorded, and
//     the index was written well after that ctime (see racyWindow), the
//     spool is what was parsed: the messages are used as they are;
//   - otherwise the spool's bytes are read and checked against the
//     index's checksums, one every sumBlock bytes; the messages before
//     the first block that differs are kept, and the spool is parsed from
//     the last message starting before it (at least the last indexed
//     message is parsed again: what follows it decides where it ends).
//
// Only a drop the index can describe exactly is saved: no junk (bytes in
// no message), no UID made unique by uniqueUIDs, no Content-Length found
// lying (its messages end where a later line decides), and no UID that
// depends on the session (with update-status-headers, a generated UID
// hashes the login's counter: the index stops before the first message
// without an X-UIDL, which the update then writes back).

// indexMagic starts an index file; indexVersion changes with the layout
// (2: its checksums became CRC-32 from CRC-32C; a version-1 index is
// refused, and the next login parses and writes a new one).
const (
	indexMagic   = "popper index\n"
	indexVersion = 2
)

// racyWindow: the index is believed on stat alone only when it was
// written at least this long after the spool last changed. A spool
// changed again within the same timestamp tick as the change the index
// recorded, with the same size, would otherwise look unchanged. The
// index is written under the spool lock, so whoever changes the spool
// next does so after the index file's mtime; that mtime comes from the
// same clock as the spool's ctime when both are on one file system (the
// default: the cache is in the spool directory). Within the window the
// spool is checked against the checksums instead. A file system whose
// ctimes have a fraction of a second ticks at most every few
// milliseconds (a jiffy on Linux): fineRacyWindow; one that records whole
// seconds (ext3, some NFS servers) gets racyWindow.
var (
	racyWindow     = 2 * time.Second
	fineRacyWindow = 100 * time.Millisecond
)

// indexTrace, when set (tests), is told how each login was served:
// "stat" (the index alone), "section" or "verify+section" (messages kept
// from it, the rest parsed, after checking the spool's bytes or not),
// "parse" (all parsed).
var indexTrace func(how string)

func trace(how string) {
	if indexTrace != nil {
		indexTrace(how)
	}
}

// maxIndexSize bounds what is read of an index file (a 1 GiB spool of
// 200,000 messages makes one of about 8 MB).
const maxIndexSize = 256 << 20

// spoolStat is what the index records of the spool's inode.
type spoolStat struct {
	dev, ino           uint64
	size, mtime, ctime int64 // bytes; nanoseconds since 1970
}

func statOfSpool(fi os.FileInfo) spoolStat {
	id := platform.IDOf(fi)
	return spoolStat{dev: id.Dev, ino: id.Ino, size: fi.Size(), mtime: fi.ModTime().UnixNano(), ctime: platform.ChangeTime(fi)}
}

// index is an index file's content.
type spoolIndex struct {
	spool  spoolStat
	opts   uint64 // optionBits of the parse it holds
	format Format
	sep    string
	end    int64    // Next of the last message: the bytes it describes
	marks  []uint32 // CRC-32 of the spool's [0, (i+1)*sumBlock), up to end
	endSum uint32   // CRC-32 of [0, end)
	msgs   *msgTable

	written time.Time // the file's mtime (read only)
	size    int64     // the file's size (read only)
	sum     uint32    // the file's trailer (read only)
}

// optionBits packs the ParseOptions that change what a parse finds (all
// but UIDCounter, whose UIDs an index never holds).
func optionBits(o ParseOptions) uint64 {
	var b uint64
	for i, on := range []bool{o.ContentLength, o.UWKluge, o.UpdateStatusHeaders, o.OldStyleUID, o.FromSpool} {
		if on {
			b |= 1 << i
		}
	}
	return b
}

// The flags of a message in the index.
const (
	flagUIDFound = 1 << iota
	flagRetrieved
	flagHidden
	flagBadContentLength
	flagCanonical
	msgFlags = flagUIDFound | flagRetrieved | flagHidden | flagBadContentLength | flagCanonical
)

func msgFlagBits(m *Msg) uint64 {
	var b uint64
	for i, on := range []bool{m.UIDFound, m.Retrieved, m.Hidden, m.BadContentLength, m.Canonical} {
		if on {
			b |= 1 << i
		}
	}
	return b
}

// encodeTo writes the index to w as doc/index.md lays it out: magic,
// version, then varints, the checkpoints as 4-byte words, and a CRC-32
// of everything before it as the last 4 bytes. It returns the size and
// that trailer. It streams, a record at a time: at 200,000 messages the
// index is 7 MB, which a login that parses need not hold besides its
// table.
func (ix *spoolIndex) encodeTo(w io.Writer) (size int64, sum uint32, err error) {
	cw := &crcWriter{w: w}
	bw := bufio.NewWriterSize(cw, 64<<10)
	b := make([]byte, 0, 256)
	b = append(b, indexMagic...)
	b = binary.LittleEndian.AppendUint32(b, indexVersion)
	b = binary.AppendUvarint(b, ix.spool.dev)
	b = binary.AppendUvarint(b, ix.spool.ino)
	b = binary.AppendVarint(b, ix.spool.size)
	b = binary.AppendVarint(b, ix.spool.mtime)
	b = binary.AppendVarint(b, ix.spool.ctime)
	b = binary.AppendUvarint(b, ix.opts)
	b = binary.AppendUvarint(b, uint64(ix.format))
	b = binary.AppendUvarint(b, uint64(len(ix.sep)))
	b = append(b, ix.sep...)
	b = binary.AppendVarint(b, ix.end)
	b = binary.AppendUvarint(b, sumBlock)
	b = binary.AppendUvarint(b, uint64(len(ix.marks)))
	bw.Write(b)
	for _, s := range ix.marks {
		bw.Write(binary.LittleEndian.AppendUint32(b[:0], s))
	}
	b = binary.LittleEndian.AppendUint32(b[:0], ix.endSum)
	b = binary.AppendUvarint(b, uint64(ix.msgs.len()))
	bw.Write(b)
	prev := int64(0)
	var uid []byte
	for i := range ix.msgs.len() {
		m := ix.msgs.fields(i)
		b = b[:0]
		// Each offset as the distance from the one before: small, and
		// never negative in a parse's result (decode checks it).
		for _, v := range [...]int64{m.Start - prev, m.HdrStart - m.Start, m.BodyStart - m.HdrStart,
			m.End - m.BodyStart, m.Next - m.End, m.Size, int64(m.BodyLines)} {
			b = binary.AppendUvarint(b, uint64(v))
		}
		b = binary.AppendUvarint(b, msgFlagBits(&m))
		uid = ix.msgs.appendUID(uid[:0], i)
		b = binary.AppendUvarint(b, uint64(len(uid)))
		b = append(b, uid...)
		bw.Write(b)
		prev = m.Next
	}
	if err := bw.Flush(); err != nil {
		return 0, 0, err
	}
	if _, err := w.Write(binary.LittleEndian.AppendUint32(b[:0], cw.crc)); err != nil {
		return 0, 0, err
	}
	return cw.n + 4, cw.crc, nil
}

// encode is the index as encodeTo writes it.
func (ix *spoolIndex) encode() []byte {
	var b bytes.Buffer
	ix.encodeTo(&b)
	return b.Bytes()
}

// crcWriter computes the CRC-32 and the length of what is written
// through it.
type crcWriter struct {
	w   io.Writer
	crc uint32
	n   int64
}

func (c *crcWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.crc = indexCRC(c.crc, p[:n])
	c.n += int64(n)
	return n, err
}

// errIndex is a file that is no index of popper's, or a damaged one.
var errIndex = errors.New("not a valid index")

// indexReader decodes the varints of an index, remembering the first
// failure.
type indexReader struct {
	b   []byte
	bad bool
}

func (r *indexReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad, r.b = true, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

// uvarintAt decodes the varint at b[i:] and returns it and the offset
// after it; the offset is -1, and stays so, when b holds no varint there.
// One-byte varints, most of an index, take the inlined path.
func uvarintAt(b []byte, i int) (uint64, int) {
	if i >= 0 && i+1 < len(b) {
		if b[i] < 0x80 {
			return uint64(b[i]), i + 1
		}
		if b[i+1] < 0x80 {
			return uint64(b[i]&0x7f) | uint64(b[i+1])<<7, i + 2
		}
	}
	return uvarintSlow(b, i)
}

func uvarintSlow(b []byte, i int) (uint64, int) {
	if i < 0 || i > len(b) {
		return 0, -1
	}
	v, n := binary.Uvarint(b[i:])
	if n <= 0 {
		return 0, -1
	}
	return v, i + n
}

func (r *indexReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.bad, r.b = true, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

// offset is a non-negative distance small enough that sums of them stay
// far from overflowing.
func (r *indexReader) offset() int64 {
	v := r.uvarint()
	if v > 1<<50 {
		r.bad = true
		return 0
	}
	return int64(v)
}

func (r *indexReader) bytes(n uint64) []byte {
	if n > uint64(len(r.b)) {
		r.bad, r.b = true, nil
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// maxRecord bounds a message's record in the index: nine varints and a
// UID of at most 70 bytes.
const maxRecord = 9*binary.MaxVarintLen64 + 70

// crcReader computes the CRC-32 of what is read through it.
type crcReader struct {
	r   io.Reader
	crc uint32
	n   int64
}

func (c *crcReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.crc = indexCRC(c.crc, p[:n])
	c.n += int64(n)
	return n, err
}

// decodeIndex reads an index file of size bytes from r and checks that it
// is a consistent description of a drop: offsets in order from 0 with no
// gap, the last message ending at end, a checkpoint for each block
// before it, printable UIDs; and that its trailer is the CRC-32 of the
// rest. It does not look at the spool. It streams: what it keeps is the
// messages and their UIDs, never the file.
func decodeIndex(r io.Reader, size int64) (*spoolIndex, error) {
	if size < int64(len(indexMagic))+8 || size > maxIndexSize {
		return nil, fmt.Errorf("%w: no index header", errIndex)
	}
	body := &crcReader{r: io.LimitReader(r, size-4)}
	br := bufio.NewReaderSize(body, 64<<10)
	// The header, with the MMDF separator, is far below 4 KiB.
	head, _ := br.Peek(4096)
	if len(head) < len(indexMagic)+4 || string(head[:len(indexMagic)]) != indexMagic {
		return nil, fmt.Errorf("%w: no index header", errIndex)
	}
	if v := binary.LittleEndian.Uint32(head[len(indexMagic):]); v != indexVersion {
		return nil, fmt.Errorf("%w: version %d, not %d", errIndex, v, indexVersion)
	}
	hr := &indexReader{b: head[len(indexMagic)+4:]}
	ix := &spoolIndex{size: size}
	ix.spool.dev = hr.uvarint()
	ix.spool.ino = hr.uvarint()
	ix.spool.size = hr.varint()
	ix.spool.mtime = hr.varint()
	ix.spool.ctime = hr.varint()
	ix.opts = hr.uvarint()
	ix.format = Format(hr.uvarint())
	ix.sep = string(hr.bytes(hr.uvarint()))
	ix.end = hr.varint()
	block := hr.uvarint()
	nmarks := hr.uvarint()
	if hr.bad || block != sumBlock || ix.end <= 0 || ix.end > ix.spool.size ||
		nmarks != uint64(ix.end/sumBlock) || nmarks > uint64(size)/4 {
		return nil, fmt.Errorf("%w: bad header", errIndex)
	}
	switch {
	case ix.format == MBox && ix.sep == "":
	case ix.format == MMDF && len(ix.sep) > 1 && ix.sep[0] == 0x01 && ix.sep[len(ix.sep)-1] == '\n':
	default:
		return nil, fmt.Errorf("%w: bad format", errIndex)
	}
	br.Discard(len(head) - len(hr.b))
	words := make([]byte, 4*nmarks+4)
	if _, err := io.ReadFull(br, words); err != nil {
		return nil, fmt.Errorf("%w: bad checkpoints", errIndex)
	}
	ix.marks = make([]uint32, nmarks)
	for i := range ix.marks {
		ix.marks[i] = binary.LittleEndian.Uint32(words[4*i:])
	}
	ix.endSum = binary.LittleEndian.Uint32(words[4*nmarks:])
	w, _ := br.Peek(binary.MaxVarintLen64)
	n, k := uvarintAt(w, 0)
	// A message takes at least 9 bytes here.
	if k < 0 || n == 0 || n > uint64(size)/9 {
		return nil, fmt.Errorf("%w: bad message count", errIndex)
	}
	br.Discard(k)
	// The records are decoded in the reader's buffer (Peek), which is
	// refilled when what is left there could be less than a record, and
	// go straight into the table, UIDs and all: this runs once per
	// message of every login, and the table is what the session keeps.
	ix.msgs = newMsgTable(int(n))
	prev := int64(0)
	var b []byte // the reader's buffer, records decoded from b[i:]
	i := 0
	for j := range int(n) {
		if len(b)-i < maxRecord {
			br.Discard(i)
			b, _ = br.Peek(br.Size())
			i = 0
		}
		var d [7]uint64
		bad := false
		for k := range d {
			d[k], i = uvarintAt(b, i)
			bad = bad || d[k] > 1<<50
		}
		var flags, n uint64
		flags, i = uvarintAt(b, i)
		n, i = uvarintAt(b, i)
		if bad || i < 0 || n > uint64(len(b)-i) {
			return nil, fmt.Errorf("%w: bad message %d", errIndex, j+1)
		}
		uid := b[i : i+int(n)]
		var m Msg
		m.Start = prev + int64(d[0])
		m.HdrStart = m.Start + int64(d[1])
		m.BodyStart = m.HdrStart + int64(d[2])
		m.End = m.BodyStart + int64(d[3])
		m.Next = m.End + int64(d[4])
		m.Size = int64(d[5])
		m.BodyLines = int(d[6])
		if m.Start != prev || m.Next > ix.end || flags&^msgFlags != 0 || !printableUID(uid) ||
			(flags&flagHidden != 0 && j > 0) || (ix.format == MBox && m.Next != m.End) {
			return nil, fmt.Errorf("%w: bad message %d", errIndex, j+1)
		}
		m.UIDFound = flags&flagUIDFound != 0
		m.Retrieved = flags&flagRetrieved != 0
		m.Hidden = flags&flagHidden != 0
		m.BadContentLength = flags&flagBadContentLength != 0
		m.Canonical = flags&flagCanonical != 0
		putMsg(ix.msgs, j, &m, uid)
		i += len(uid)
		prev = m.Next
	}
	br.Discard(i)
	if rest, _ := br.Peek(1); len(rest) != 0 || prev != ix.end || body.n != size-4 {
		return nil, fmt.Errorf("%w: bad length", errIndex)
	}
	var trailer [4]byte
	if _, err := io.ReadFull(r, trailer[:]); err != nil || body.crc != binary.LittleEndian.Uint32(trailer[:]) {
		return nil, fmt.Errorf("%w: checksum mismatch (torn or damaged)", errIndex)
	}
	ix.sum = body.crc
	ix.msgs.done()
	return ix, nil
}

// printableUID: what a UIDL line can carry (RFC 1939: 0x21..0x7E, at most
// 70 characters).
func printableUID(b []byte) bool {
	if len(b) == 0 || len(b) > 70 {
		return false
	}
	for ; len(b) >= 8; b = b[8:] {
		// Eight at a time: a byte of x is outside '!'..'~' iff it has
		// its high bit set, or gets it from +1 (0x7f) or from -0x21
		// (below 0x21); a carry or borrow between bytes needs such a
		// byte first.
		x := binary.LittleEndian.Uint64(b)
		if (x|(x+0x0101010101010101)|(x-0x2121212121212121))&0x8080808080808080 != 0 {
			return false
		}
	}
	for _, c := range b {
		if c < '!' || c > '~' {
			return false
		}
	}
	return true
}

// untrustedIndex says why an index file may not be believed, or "": it
// must be the session user's (or root's) regular file with one link that
// no one else may write. In a 1777 spool directory anyone can create the
// name before the user has one.
func untrustedIndex(fi os.FileInfo) string {
	id := platform.IDOf(fi)
	switch {
	case !fi.Mode().IsRegular():
		return "not a regular file (" + fi.Mode().Type().String() + ")"
	case int(id.Uid) != os.Geteuid() && id.Uid != 0:
		return fmt.Sprintf("owned by uid %d, not the user's", id.Uid)
	case id.Nlink != 1:
		return fmt.Sprintf("%d links", id.Nlink)
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Sprintf("mode %04o: others may write it", fi.Mode().Perm())
	case fi.Size() > maxIndexSize:
		return fmt.Sprintf("%d bytes", fi.Size())
	}
	return ""
}

// readIndex reads the index at path. A missing file is (nil, nil); a
// file that is refused is (nil, the reason).
func readIndex(path string) (*spoolIndex, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		if li, lerr := os.Lstat(path); lerr == nil && li.Mode()&fs.ModeSymlink != 0 {
			return nil, errors.New("a symbolic link")
		}
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if why := untrustedIndex(fi); why != "" {
		return nil, errors.New(why)
	}
	ix, err := decodeIndex(f, fi.Size())
	if err != nil {
		return nil, err
	}
	ix.written = fi.ModTime()
	return ix, nil
}

// writeIndex replaces the index at path with ix: written under a
// temporary name beside it and renamed over it, so a reader sees the old
// index or the new one. Not synced: after a power cut a torn or lost
// index is refused or missing, and the next login parses. The caller
// holds the spool lock, which serialises a user's logins, so the
// temporary name is fixed; one left by a killed session is removed.
func writeIndex(path string, ix *spoolIndex) error {
	tmp := path + ".tmp"
	f, err := platform.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		if err := platform.Remove(tmp); err != nil {
			return err
		}
		f, err = platform.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	}
	if err != nil {
		return err
	}
	_, _, err = ix.encodeTo(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = platform.Rename(tmp, path)
	}
	if err != nil {
		platform.Remove(tmp)
	}
	return err
}

// unchanged reports whether the spool is, by its inode alone, the bytes
// the index was made from (see racyWindow).
func (ix *spoolIndex) unchanged(st spoolStat) bool {
	if st != ix.spool || st.ctime == 0 {
		return false
	}
	window := racyWindow
	if st.ctime%int64(time.Second) != 0 {
		window = fineRacyWindow
	}
	w := ix.written.UnixNano()
	if w-st.ctime < int64(window) || w-st.mtime < int64(window) {
		return false
	}
	// An index from before this boot may describe page-cache state a
	// power cut then lost.
	if b := platform.BootTime(); !b.IsZero() && ix.written.Before(b) {
		return false
	}
	return true
}

// verify reads the spool's first min(ix.end, size) bytes and returns the
// end of the longest prefix the index's checksums vouch for, with the
// running checksum there.
func (ix *spoolIndex) verify(f io.ReaderAt, size int64) (int64, *spoolSum, error) {
	limit := min(ix.end, size)
	sum := &spoolSum{}
	buf := make([]byte, 16*sumBlock)
	for sum.off < limit {
		n := min(int64(len(buf)), limit-sum.off)
		if _, err := f.ReadAt(buf[:n], sum.off); err != nil {
			return 0, nil, err
		}
		for p := buf[:n]; len(p) > 0; {
			k := min(int64(len(p)), sumBlock-sum.off%sumBlock)
			crc := indexCRC(sum.crc, p[:k])
			end := sum.off + k
			switch {
			case end%sumBlock == 0:
				if crc != ix.marks[end/sumBlock-1] {
					return sum.off, sum, nil
				}
				sum.marks = append(sum.marks, crc)
			case end == ix.end:
				if crc != ix.endSum {
					return sum.off, sum, nil
				}
			default:
				// The spool is shorter than the index: the last part
				// of a block cannot be checked.
				return sum.off, sum, nil
			}
			sum.crc, sum.off = crc, end
			p = p[k:]
		}
	}
	return sum.off, sum, nil
}

// sameFile reports whether next, encoded, is the file ix was read from,
// by its length and trailer. A false "same" (a CRC collision) would only
// keep the older index, which is checked as any other.
func (ix *spoolIndex) sameFile(next *spoolIndex) bool {
	size, sum, _ := next.encodeTo(io.Discard)
	return size == ix.size && sum == ix.sum
}

// drop is the index's messages as Parse would return them for a spool of
// exactly ix.end bytes: the Drop without its Msgs, and the table.
func (ix *spoolIndex) drop() (*Drop, *msgTable) {
	return &Drop{Format: ix.format, Sep: ix.sep, End: ix.end}, ix.msgs
}

// loadDrop returns the messages of the spool f, which fi describes, as
// Parse would (with opt), but in a msgTable and not in the Drop's Msgs:
// from the index at c.Cache as far as it proves itself, parsing the
// rest, and saves the index when it changed. Only a read error of the
// spool is an error; whatever is wrong with the index is logged and the
// spool parsed. The caller holds the spool lock.
func loadDrop(c *Config, f *os.File, fi os.FileInfo, opt ParseOptions) (*Drop, *msgTable, error) {
	if c.Cache == "" {
		return parseTable(bufio.NewReaderSize(io.NewSectionReader(f, 0, fi.Size()), 64<<10), opt)
	}
	switch c.Cache {
	case c.Spool, c.Spool + ".lock", c.TempDrop, c.newPath(), c.tmpPath(), c.mergePath():
		// A configuration that names the index after a maildrop file
		// would have the save rename over it.
		c.logf("Index %s not used: it is a name of the maildrop", c.Cache)
		return parseTable(bufio.NewReaderSize(io.NewSectionReader(f, 0, fi.Size()), 64<<10), opt)
	}
	st := statOfSpool(fi)
	ix, err := readIndex(c.Cache)
	if err != nil {
		c.logf("Index %s not used: %v", c.Cache, err)
	}
	if ix != nil && (ix.spool.dev != st.dev || ix.spool.ino != st.ino || ix.opts != optionBits(opt)) {
		ix = nil // another spool's (replaced, or copied here), or other options
	}
	if ix != nil && ix.end == st.size && ix.unchanged(st) {
		trace("stat")
		d, t := ix.drop()
		return d, t, nil
	}
	d, t, next, err := parseWithIndex(f, st, ix, opt)
	if err != nil {
		return nil, nil, err
	}
	if next != nil {
		// An index read again as it was is not written again, unless it
		// was too young to believe on stat: written now, it no longer is.
		if ix == nil || !ix.unchanged(st) || !ix.sameFile(next) {
			if err := writeIndex(c.Cache, next); err != nil {
				c.logf("Index %s not saved: %v", c.Cache, err)
			}
		}
	}
	return d, t, nil
}

// parseWithIndex parses what of the spool the index ix (nil for none)
// does not vouch for, and returns the drop and its messages, and the
// index to save for it (nil when none can describe it). It takes ix's
// table for the messages it keeps.
func parseWithIndex(f io.ReaderAt, st spoolStat, ix *spoolIndex, opt ParseOptions) (*Drop, *msgTable, *spoolIndex, error) {
	sum := &spoolSum{}
	var keep *msgTable
	var s section
	how := "parse"
	if ix != nil {
		v := ix.end
		how = "section"
		if ix.unchanged(st) {
			// Only a cut index (ending before a message with a session
			// UID) gets here: its bytes are as they were.
			sum = &spoolSum{crc: ix.endSum, off: ix.end, marks: ix.marks[:len(ix.marks):len(ix.marks)]}
		} else {
			var err error
			if v, sum, err = ix.verify(f, st.size); err != nil {
				return nil, nil, nil, err
			}
			how = "verify+section"
		}
		// Parse from the last message that starts in the proven prefix:
		// how it ends depends on what follows.
		k := sort.Search(ix.msgs.len(), func(i int) bool { return ix.msgs.start(i) > v }) - 1
		if k > 0 {
			s = section{start: ix.msgs.start(k), msgs: k, format: ix.format, sep: ix.sep}
			keep = ix.msgs
			keep.truncate(k)
		} else {
			how = "parse"
		}
	}
	p, err := parseSpool(f, st.size, s, opt, sum)
	if err != nil {
		return nil, nil, nil, err
	}
	if len(p.junk) > 0 && s.msgs > 0 {
		// What was a message boundary is not one now (the spool was
		// rewritten there): the full parse says what the bytes are.
		trace("parse")
		d, t, err := parseTable(bufio.NewReaderSize(io.NewSectionReader(f, 0, st.size), 64<<10), opt)
		return d, t, nil, err
	}
	msgs := p.msgs
	if keep != nil {
		msgs = keep
		for i := range p.msgs.len() {
			m := p.msgs.at(i)
			msgs.add(&m)
		}
		p.msgs = nil
	}
	msgs.done()
	format, sep := p.format, p.sep
	if s.msgs > 0 {
		format, sep = s.format, s.sep
	}
	trace(how)
	// The kept messages' UIDs went through uniqueUIDs unchanged when
	// they were indexed, so their own UIDs are their raw ones, and their
	// generated UIDs are never needed: only a later duplicate is
	// replaced by its generated UID.
	changed := uniqueIn(msgs, p.alt, opt)
	msgs.done()
	d := &Drop{Format: format, Sep: sep, Junk: p.junk, End: p.end}

	if len(p.junk) > 0 || changed {
		return d, msgs, nil, nil
	}
	n := msgs.len()
	for i := range msgs.len() {
		fl := msgs.flagsOf(i)
		switch {
		case fl&flagBadContentLength != 0:
			return d, msgs, nil, nil
		case fl&flagUIDFound == 0 && opt.UpdateStatusHeaders && !opt.OldStyleUID && i < n:
			n = i // a UID of this session's counter
		}
	}
	if n == 0 {
		return d, msgs, nil, nil
	}
	end := msgs.at(n - 1).Next
	endSum, err := sum.at(f, end)
	if err != nil {
		return d, msgs, nil, nil
	}
	next := &spoolIndex{
		spool: st, opts: optionBits(opt), format: format, sep: sep, end: end,
		marks: sum.marks[:end/sumBlock], endSum: endSum, msgs: msgs.prefix(n),
	}
	return d, msgs, next, nil
}
