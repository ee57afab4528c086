package spool

import (
	"encoding/binary"
	"slices"
	"sort"
)

// msgTable holds a drop's messages for the length of a session: 28 bytes
// a message, its UID included when it is one qpopper generates, where a
// []Msg takes 80 bytes and a string of its own per message. A session of
// 200,000 messages (1 GiB) keeps it from login to QUIT, so its size is
// most of the session's memory; and nothing in a record is a pointer, so
// the garbage collector never scans the records.
//
// A message starts where the one before it ends (Next; the first at 0),
// so a record keeps Next's low 32 bits, and the other offsets as
// distances from Start or Next; where Next's high bits change is kept in
// highs (once every 4 GiB of spool). The fields are as wide as most mail
// needs; a message a record cannot hold exactly (one after a gap, a
// separator line or trailer of 256 bytes or more, a header of 64 KiB or
// more, a size of 4 GiB or more, a body of more than 65,535 lines, a UID
// longer than 255 bytes) is kept whole in wide instead, so every Msg is
// stored as it is, the rare large one at the cost of a Msg.
//
// A UID of qpopper's base-80 form (what it and popper generate and write
// as X-UIDL) is kept in the record, packed into 12 bytes (packUID); any
// other is kept in uids, a string shared with thousands of others.
type msgTable struct {
	recs  chunked[msgRec]
	highs []nextHigh
	uids  uidArena
	wide  []Msg
}

// msgRec is one message of a msgTable.
type msgRec struct {
	next      uint32 // Next's low 32 bits
	size      uint32
	header    uint16 // BodyStart - HdrStart
	bodyLines uint16
	sep       uint8 // HdrStart - Start: the separator line
	trailer   uint8 // Next - End: the MMDF trailer
	uidLen    uint8
	flags     uint8   // the index's flag bits (msgFlagBits), recPacked and recWide
	uid       uidSlot // recPacked: the UID packed; else its address in uids; recWide: the index in wide
}

const (
	recPacked = 1 << 6 // the UID is packed in the record
	recWide   = 1 << 7 // the message is in msgTable.wide
)

// uidSlot is a record's UID: packed (packUID), or a 32-bit number in its
// first 4 bytes (the UID's address in an arena, or the record's index in
// a wide list).
type uidSlot [12]byte

func (s *uidSlot) ref() uint32 { return binary.LittleEndian.Uint32(s[:4]) }

func (s *uidSlot) setRef(v uint32) { binary.LittleEndian.PutUint32(s[:4], v) }

// packUID packs a UID of qpopper's base-80 form: 20 characters, four
// groups of five base-80 digits ('!' + digit, least significant first,
// '~' for the digit that would be '.'), each group's value under 2^24
// (qpopper's folding of 4 digest bytes gives at most 1,114,095). Any
// other UID, one with a '.' included, returns false: unpackUID must give
// back the very bytes.
func packUID[S ~string | ~[]byte](uid S) (p uidSlot, ok bool) {
	if len(uid) != 20 {
		return p, false
	}
	for g := range 4 {
		var v uint32
		for k := 4; k >= 0; k-- {
			c := uid[g*5+k]
			var d uint32
			switch {
			case c == '~':
				d = '.' - '!'
			case c >= '!' && c < '!'+80 && c != '.':
				d = uint32(c - '!')
			default:
				return p, false
			}
			v = v*80 + d
		}
		if v >= 1<<24 {
			return p, false
		}
		p[g*3], p[g*3+1], p[g*3+2] = byte(v), byte(v>>8), byte(v>>16)
	}
	return p, true
}

// unpackUID appends the UID p packs.
func unpackUID(dst []byte, p *uidSlot) []byte {
	for g := range 4 {
		v := uint32(p[g*3]) | uint32(p[g*3+1])<<8 | uint32(p[g*3+2])<<16
		for range 5 {
			c := byte('!' + v%80)
			if c == '.' {
				c = '~'
			}
			dst = append(dst, c)
			v /= 80
		}
	}
	return dst
}

// nextHigh says that from message from on, Next's high 32 bits are high.
type nextHigh struct {
	from int
	high uint32
}

// uidArena keeps UIDs one after another in strings of at most uidChunk
// bytes, a UID addressed in 32 bits as its string's index << 16 | its
// offset there: thousands of UIDs share a string, and the address holds
// no pointer.
type uidArena struct {
	strs  []string
	chunk []byte // the UIDs not yet in strs
}

const uidChunk = 64 << 10

// putUID appends uid and returns its address, or false when the arena
// has no address left for it (after 4 GiB of UIDs).
func putUID[S ~string | ~[]byte](a *uidArena, uid S) (uint32, bool) {
	if len(a.chunk)+len(uid) > uidChunk {
		a.seal()
	}
	if len(a.strs) >= 1<<16 || len(uid) > uidChunk {
		return 0, false
	}
	addr := uint32(len(a.strs))<<16 | uint32(len(a.chunk))
	a.chunk = append(a.chunk, uid...)
	return addr, true
}

// get is the n-byte UID at addr.
func (a *uidArena) get(addr uint32, n int) string {
	s, off := int(addr>>16), int(addr&(1<<16-1))
	if s == len(a.strs) {
		return string(a.chunk[off : off+n]) // not sealed yet
	}
	return a.strs[s][off : off+n]
}

// seal moves the pending UIDs into a string of their own.
func (a *uidArena) seal() {
	if len(a.chunk) > 0 {
		a.strs = append(a.strs, string(a.chunk))
		a.chunk = a.chunk[:0]
	}
}

func newMsgTable(n int) *msgTable { return &msgTable{recs: chunked[msgRec]{hint: n}} }

// tableOf is msgs as a msgTable.
func tableOf(msgs []Msg) *msgTable {
	t := newMsgTable(len(msgs))
	for i := range msgs {
		t.add(&msgs[i])
	}
	return t
}

func (t *msgTable) len() int {
	if t == nil {
		return 0
	}
	return t.recs.len()
}

// add appends m.
func (t *msgTable) add(m *Msg) { putMsg(t, t.recs.len(), m, m.UID) }

// set replaces message i with m, which must end where it did: the next
// message starts there.
func (t *msgTable) set(i int, m *Msg) {
	if i+1 < t.recs.len() && m.Next != t.next(i) {
		panic("spool: msgTable.set moves a message's end")
	}
	putMsg(t, i, m, m.UID)
}

// putMsg stores m, with uid for its UID, as message i (i = t.len()
// appends). The index's decoder passes the UID as the bytes it read:
// a string per message is what the table is there to avoid.
func putMsg[S ~string | ~[]byte](t *msgTable, i int, m *Msg, uid S) {
	r, ok := t.record(i, m, len(uid))
	if ok {
		if p, packed := packUID(uid); packed {
			r.uid, r.flags = p, r.flags|recPacked
		} else {
			var addr uint32
			addr, ok = putUID(&t.uids, uid)
			r.uid.setRef(addr)
		}
	}
	if ok {
		if h := uint32(m.Next >> 32); h != t.high(i) {
			t.highs = append(t.highs, nextHigh{from: i, high: h})
		}
	} else {
		w := *m
		w.UID = string(uid)
		r = msgRec{flags: recWide}
		r.uid.setRef(uint32(len(t.wide)))
		t.wide = append(t.wide, w)
	}
	if i == t.recs.len() {
		t.recs.add(r)
	} else {
		*t.recs.at(i) = r
	}
}

// record is m as a record at position i, the UID's place still to fill,
// or false when m needs a wide entry.
func (t *msgTable) record(i int, m *Msg, uidLen int) (msgRec, bool) {
	fits := func(v int64, max int64) bool { return v >= 0 && v <= max }
	const u8, u16, u32 = 1<<8 - 1, 1<<16 - 1, 1<<32 - 1
	prev := int64(0)
	if i > 0 {
		prev = t.next(i - 1)
	}
	// A message set in place must keep the high bits the table has
	// there for it (highs are only ever added at the end).
	ok := m.Start == prev && m.Next >= 0 && (i == t.recs.len() || uint32(m.Next>>32) == t.high(i)) &&
		fits(m.HdrStart-m.Start, u8) && fits(m.Next-m.End, u8) && fits(m.BodyStart-m.HdrStart, u16) &&
		fits(m.Size, u32) && fits(int64(m.BodyLines), u16) &&
		uidLen <= u8
	if !ok {
		return msgRec{}, false
	}
	return msgRec{
		next:      uint32(m.Next),
		sep:       uint8(m.HdrStart - m.Start),
		trailer:   uint8(m.Next - m.End),
		header:    uint16(m.BodyStart - m.HdrStart),
		size:      uint32(m.Size),
		bodyLines: uint16(m.BodyLines),
		uidLen:    uint8(uidLen),
		flags:     uint8(msgFlagBits(m)),
	}, true
}

// done seals the table once it is filled: reading a UID then never
// allocates.
func (t *msgTable) done() *msgTable {
	t.uids.seal()
	t.uids.chunk = nil
	return t
}

// high is Next's high 32 bits for message i.
func (t *msgTable) high(i int) uint32 {
	k := sort.Search(len(t.highs), func(k int) bool { return t.highs[k].from > i })
	if k == 0 {
		return 0
	}
	return t.highs[k-1].high
}

// at is message i.
func (t *msgTable) at(i int) Msg {
	m := t.fields(i)
	if t.recs.at(i).flags&recWide == 0 {
		m.UID = t.uidOf(i)
	}
	return m
}

// fields is message i without its UID, unless it is a wide one.
func (t *msgTable) fields(i int) Msg {
	r := t.recs.at(i)
	if r.flags&recWide != 0 {
		return t.wide[r.uid.ref()]
	}
	var m Msg
	m.Start = t.start(i)
	m.HdrStart = m.Start + int64(r.sep)
	m.BodyStart = m.HdrStart + int64(r.header)
	m.Next = t.next(i)
	m.End = m.Next - int64(r.trailer)
	m.Size = int64(r.size)
	m.BodyLines = int(r.bodyLines)
	m.UIDFound = r.flags&flagUIDFound != 0
	m.Retrieved = r.flags&flagRetrieved != 0
	m.Hidden = r.flags&flagHidden != 0
	m.BadContentLength = r.flags&flagBadContentLength != 0
	m.Canonical = r.flags&flagCanonical != 0
	return m
}

// start, size, uidOf and flagsOf are the fields of message i a session
// reads for every message, without making its Msg.
func (t *msgTable) start(i int) int64 {
	r := t.recs.at(i)
	switch {
	case r.flags&recWide != 0:
		return t.wide[r.uid.ref()].Start
	case i == 0:
		return 0
	}
	return t.next(i - 1)
}

// next is message i's Next.
func (t *msgTable) next(i int) int64 {
	r := t.recs.at(i)
	switch {
	case r.flags&recWide != 0:
		return t.wide[r.uid.ref()].Next
	case len(t.highs) == 0:
		return int64(r.next)
	}
	return int64(r.next) | int64(t.high(i))<<32
}

func (t *msgTable) size(i int) int64 {
	r := t.recs.at(i)
	if r.flags&recWide != 0 {
		return t.wide[r.uid.ref()].Size
	}
	return int64(r.size)
}

// uidOf is message i's UID; a packed one is made into a string, 20
// bytes allocated: a listing of every UID uses appendUID.
func (t *msgTable) uidOf(i int) string {
	r := t.recs.at(i)
	switch {
	case r.flags&recWide != 0:
		return t.wide[r.uid.ref()].UID
	case r.flags&recPacked != 0:
		return string(unpackUID(make([]byte, 0, 20), &r.uid))
	}
	return t.uids.get(r.uid.ref(), int(r.uidLen))
}

// appendUID appends message i's UID to dst.
func (t *msgTable) appendUID(dst []byte, i int) []byte {
	r := t.recs.at(i)
	if r.flags&recPacked != 0 {
		return unpackUID(dst, &r.uid)
	}
	return append(dst, t.uidOf(i)...)
}

func (t *msgTable) flagsOf(i int) uint64 {
	r := t.recs.at(i)
	if r.flags&recWide != 0 {
		return msgFlagBits(&t.wide[r.uid.ref()])
	}
	return uint64(r.flags & msgFlags)
}

// truncate keeps the first n messages.
func (t *msgTable) truncate(n int) {
	t.recs.truncate(n)
	for len(t.highs) > 0 && t.highs[len(t.highs)-1].from >= n {
		t.highs = t.highs[:len(t.highs)-1]
	}
}

// prefix is the first n messages, sharing t's storage: neither may be
// changed after.
func (t *msgTable) prefix(n int) *msgTable {
	p := *t
	p.recs = t.recs.prefix(n)
	return &p
}

// msgs is the table as a []Msg.
func (t *msgTable) msgs() []Msg {
	if t.len() == 0 {
		return nil
	}
	out := make([]Msg, t.len())
	for i := range out {
		out[i] = t.at(i)
	}
	return out
}

// altList is the altUID of each message of a parse in 16 bytes, its UID
// packed there when it is of qpopper's form (as the UIDs popper
// generates are, but for old-style ones, kept in an arena), where a
// []altUID takes 24 bytes and a string per message: a parse keeps one
// for every message until uniqueUIDs.
type altList struct {
	recs chunked[altRec]
	uids uidArena
	wide []altUID // those a record cannot hold
}

type altRec struct {
	uid     uidSlot // recPacked: packed; else its address in uids; recWide: the index in wide
	counted uint16
	n       uint8 // the UID's length
	flags   uint8 // recPacked, recWide
}

func (l *altList) len() int {
	if l == nil {
		return 0
	}
	return l.recs.len()
}

func (l *altList) add(a altUID) {
	r := altRec{counted: uint16(a.counted), n: uint8(len(a.uid))}
	ok := a.counted >= 0 && a.counted <= 1<<16-1 && len(a.uid) <= 255
	if p, packed := packUID(a.uid); ok && packed {
		r.uid, r.flags = p, recPacked
	} else if ok {
		var addr uint32
		addr, ok = putUID(&l.uids, a.uid)
		r.uid.setRef(addr)
	}
	if !ok {
		r = altRec{flags: recWide}
		r.uid.setRef(uint32(len(l.wide)))
		l.wide = append(l.wide, a)
	}
	l.recs.add(r)
}

func (l *altList) at(i int) altUID {
	r := l.recs.at(i)
	switch {
	case r.flags&recWide != 0:
		return l.wide[r.uid.ref()]
	case r.flags&recPacked != 0:
		return altUID{uid: string(unpackUID(make([]byte, 0, 20), &r.uid)), counted: int64(r.counted)}
	}
	return altUID{uid: l.uids.get(r.uid.ref(), int(r.n)), counted: int64(r.counted)}
}

// chunked is a list of records kept in chunks of chunkRecs, so that it
// grows without copying: a parse of 200,000 messages allocates its
// records once, where append's growth allocated them five times over in
// all, garbage that doubled the heap a first login peaked at. A chunk is
// made only as large as the table's hint says it needs (the first from
// 16 records), and grows by append past that, so a small drop takes no
// whole chunk.
type chunked[R any] struct {
	chunks [][]R
	n      int
	hint   int // the number of records expected, for the first chunk
}

const chunkRecs = 4096 // 112 KiB of msgRec

func (c *chunked[R]) len() int { return c.n }

func (c *chunked[R]) at(i int) *R { return &c.chunks[i/chunkRecs][i%chunkRecs] }

func (c *chunked[R]) add(r R) {
	k := c.n / chunkRecs
	if k == len(c.chunks) {
		size := chunkRecs
		if left := c.hint - c.n; k == 0 || (left > 0 && left < chunkRecs) {
			size = min(max(left, 16), chunkRecs)
		}
		c.chunks = append(c.chunks, make([]R, 0, size))
	}
	c.chunks[k] = append(c.chunks[k], r)
	c.n++
}

// truncate keeps the first n records.
func (c *chunked[R]) truncate(n int) {
	c.chunks = c.chunks[:(n+chunkRecs-1)/chunkRecs]
	if n%chunkRecs != 0 {
		k := len(c.chunks) - 1
		c.chunks[k] = c.chunks[k][:n%chunkRecs]
	}
	c.n = n
}

// prefix is the first n records, sharing c's chunks: neither may be
// changed after.
func (c *chunked[R]) prefix(n int) chunked[R] {
	p := chunked[R]{chunks: slices.Clone(c.chunks[:(n+chunkRecs-1)/chunkRecs]), n: n}
	if n%chunkRecs != 0 {
		k := len(p.chunks) - 1
		p.chunks[k] = p.chunks[k][: n%chunkRecs : n%chunkRecs]
	}
	return p
}
