package spool

import "sort"

// msgTable holds a drop's messages for the length of a session: 24 bytes
// a message, and its UID in a string shared with thousands of others,
// where a []Msg takes 80 bytes and a string of its own per message. A
// session of 200,000 messages (1 GiB) keeps it from login to QUIT, so
// its size is most of the session's memory; and nothing in a record is
// a pointer, so the garbage collector never scans the records.
//
// A record keeps Start's low 32 bits and the other offsets as distances;
// where Start's high bits change is kept in highs (once every 4 GiB of
// spool). The fields are as wide as most mail needs; a message a record
// cannot hold exactly (a separator line or trailer of 256 bytes or more,
// a header of 64 KiB or more, a body of 4 GiB or more or of more than
// 65,535 lines, a UID longer than 255 bytes) is kept whole in wide
// instead, so every Msg is stored as it is, the rare large one at the
// cost of a Msg.
type msgTable struct {
	recs  []msgRec
	highs []startHigh
	uids  []string // the UIDs, one after another, uidChunk bytes a string at most
	chunk []byte   // the UIDs not yet in uids
	wide  []Msg
}

// msgRec is one message of a msgTable.
type msgRec struct {
	start     uint32 // Start's low 32 bits
	body      uint32 // End - BodyStart
	size      uint32
	uid       uint32 // where the UID is: its string in uids << 16 | its offset there; wide: the index in wide
	header    uint16 // BodyStart - HdrStart
	bodyLines uint16
	sep       uint8 // HdrStart - Start: the separator line
	trailer   uint8 // Next - End: the MMDF trailer
	uidLen    uint8
	flags     uint8 // the index's flag bits (msgFlagBits), and recWide
}

// recWide marks a record whose message is in msgTable.wide.
const recWide = 1 << 7

// startHigh says that from message from on, Start's high 32 bits are high.
type startHigh struct {
	from int
	high uint32
}

// uidChunk is the most UID bytes in one string of msgTable.uids: a
// record addresses a UID by 16 bits of offset.
const uidChunk = 64 << 10

func newMsgTable(n int) *msgTable { return &msgTable{recs: make([]msgRec, 0, n)} }

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
	return len(t.recs)
}

// add appends m.
func (t *msgTable) add(m *Msg) { putMsg(t, len(t.recs), m, m.UID) }

// set replaces message i with m.
func (t *msgTable) set(i int, m *Msg) { putMsg(t, i, m, m.UID) }

// putMsg stores m, with uid for its UID, as message i (i = t.len()
// appends). The index's decoder passes the UID as the bytes it read:
// a string per message is what the table is there to avoid.
func putMsg[S ~string | ~[]byte](t *msgTable, i int, m *Msg, uid S) {
	r, ok := t.record(i, m, len(uid))
	if ok {
		if len(t.chunk)+len(uid) > uidChunk {
			t.seal()
		}
		r.uid = uint32(len(t.uids))<<16 | uint32(len(t.chunk))
		t.chunk = append(t.chunk, uid...)
		if h := uint32(m.Start >> 32); h != t.high(i) {
			t.highs = append(t.highs, startHigh{from: i, high: h})
		}
	} else {
		w := *m
		w.UID = string(uid)
		r = msgRec{flags: recWide, uid: uint32(len(t.wide))}
		t.wide = append(t.wide, w)
	}
	if i == len(t.recs) {
		t.recs = append(t.recs, r)
	} else {
		t.recs[i] = r
	}
}

// record is m as a record at position i, the UID's place still to fill,
// or false when m needs a wide entry.
func (t *msgTable) record(i int, m *Msg, uidLen int) (msgRec, bool) {
	fits := func(v int64, max int64) bool { return v >= 0 && v <= max }
	const u8, u16, u32 = 1<<8 - 1, 1<<16 - 1, 1<<32 - 1
	// A message set in place must keep the high bits the table has
	// there for it (highs are only ever added at the end).
	ok := m.Start >= 0 && (i == len(t.recs) || uint32(m.Start>>32) == t.high(i)) &&
		fits(m.HdrStart-m.Start, u8) && fits(m.Next-m.End, u8) &&
		fits(m.BodyStart-m.HdrStart, u16) && fits(m.End-m.BodyStart, u32) &&
		fits(m.Size, u32) && fits(int64(m.BodyLines), u16) &&
		uidLen <= u8 && len(t.uids) < 1<<16-1
	if !ok {
		return msgRec{}, false
	}
	return msgRec{
		start:     uint32(m.Start),
		sep:       uint8(m.HdrStart - m.Start),
		trailer:   uint8(m.Next - m.End),
		header:    uint16(m.BodyStart - m.HdrStart),
		body:      uint32(m.End - m.BodyStart),
		size:      uint32(m.Size),
		bodyLines: uint16(m.BodyLines),
		uidLen:    uint8(uidLen),
		flags:     uint8(msgFlagBits(m)),
	}, true
}

// seal moves the pending UIDs into a string of uids.
func (t *msgTable) seal() {
	t.uids = append(t.uids, string(t.chunk))
	t.chunk = t.chunk[:0]
}

// done seals the table once it is filled: reading a UID then never
// allocates.
func (t *msgTable) done() *msgTable {
	if len(t.chunk) > 0 {
		t.seal()
	}
	t.chunk = nil
	return t
}

// high is Start's high 32 bits for message i.
func (t *msgTable) high(i int) uint32 {
	k := sort.Search(len(t.highs), func(k int) bool { return t.highs[k].from > i })
	if k == 0 {
		return 0
	}
	return t.highs[k-1].high
}

// at is message i.
func (t *msgTable) at(i int) Msg {
	r := &t.recs[i]
	if r.flags&recWide != 0 {
		return t.wide[r.uid]
	}
	var m Msg
	m.Start = int64(r.start)
	if len(t.highs) > 0 {
		m.Start |= int64(t.high(i)) << 32
	}
	m.HdrStart = m.Start + int64(r.sep)
	m.BodyStart = m.HdrStart + int64(r.header)
	m.End = m.BodyStart + int64(r.body)
	m.Next = m.End + int64(r.trailer)
	m.Size = int64(r.size)
	m.BodyLines = int(r.bodyLines)
	m.UID = t.uid(r)
	m.UIDFound = r.flags&flagUIDFound != 0
	m.Retrieved = r.flags&flagRetrieved != 0
	m.Hidden = r.flags&flagHidden != 0
	m.BadContentLength = r.flags&flagBadContentLength != 0
	m.Canonical = r.flags&flagCanonical != 0
	return m
}

func (t *msgTable) uid(r *msgRec) string {
	s, off := int(r.uid>>16), int(r.uid&(1<<16-1))
	if s == len(t.uids) {
		return string(t.chunk[off : off+int(r.uidLen)]) // not sealed yet
	}
	return t.uids[s][off : off+int(r.uidLen)]
}

// start, size, uidOf and flagsOf are the fields of message i a session
// reads for every message, without making its Msg.
func (t *msgTable) start(i int) int64 {
	r := &t.recs[i]
	if r.flags&recWide != 0 {
		return t.wide[r.uid].Start
	}
	if len(t.highs) == 0 {
		return int64(r.start)
	}
	return int64(r.start) | int64(t.high(i))<<32
}

func (t *msgTable) size(i int) int64 {
	r := &t.recs[i]
	if r.flags&recWide != 0 {
		return t.wide[r.uid].Size
	}
	return int64(r.size)
}

func (t *msgTable) uidOf(i int) string {
	r := &t.recs[i]
	if r.flags&recWide != 0 {
		return t.wide[r.uid].UID
	}
	return t.uid(r)
}

func (t *msgTable) flagsOf(i int) uint64 {
	r := &t.recs[i]
	if r.flags&recWide != 0 {
		return msgFlagBits(&t.wide[r.uid])
	}
	return uint64(r.flags)
}

// truncate keeps the first n messages.
func (t *msgTable) truncate(n int) {
	t.recs = t.recs[:n]
	for len(t.highs) > 0 && t.highs[len(t.highs)-1].from >= n {
		t.highs = t.highs[:len(t.highs)-1]
	}
}

// prefix is the first n messages, sharing t's storage: neither may be
// changed after.
func (t *msgTable) prefix(n int) *msgTable {
	p := *t
	p.recs = t.recs[:n:n]
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
