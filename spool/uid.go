package spool

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"hash/maphash"
	"slices"
	"strconv"
)

// X-UIDL values are accepted by length the way qpopper measures them: the
// value after "X-UIDL:" and any spaces or tabs, counted with the newline
// that ends the line (qpopper keeps the '\n' in the string it measures).
// do_drop_copy (reading the spool in normal mode) accepts 13..32, so a
// 20-char UID (21) passes and a 32-hex-digit old-style UID (33) does not;
// init_dropinfo (temp drop, server-mode spool) accepts 12..33.
//
// Two sane deviations, both invisible for the X-UIDL lines qpopper itself
// writes: a CR before the newline and trailing spaces or tabs are not part
// of the value (qpopper would put them in the UID, and a UIDL line with a
// CR or a space in the unique-id is broken), and a value with any byte
// outside '!'..'~' is not accepted (RFC 1939 §7 allows only those).
const (
	minUIDLenSpool = 13
	maxUIDLenSpool = 32
	minUIDLenDrop  = 12
	maxUIDLenDrop  = 33
)

// acceptedUID returns the UID an X-UIDL header line carries, if qpopper
// would reuse it. head is the line (at most its first 1023 bytes, as
// qpopper reads it); whole reports that head is the entire line.
func acceptedUID(head []byte, whole, fromSpool bool) (string, bool) {
	if !whole || !hasPrefixFold(head, "X-UIDL:") {
		return "", false
	}
	v := head[len("X-UIDL:"):]
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 {
		c := v[len(v)-1]
		if c != '\n' && c != '\r' && c != ' ' && c != '\t' {
			break
		}
		v = v[:len(v)-1]
	}
	n := len(v) + 1 // qpopper counts the newline
	lo, hi := minUIDLenDrop, maxUIDLenDrop
	if fromSpool {
		lo, hi = minUIDLenSpool, maxUIDLenSpool
	}
	if n < lo || n > hi {
		return "", false
	}
	for _, c := range v {
		if c < '!' || c > '~' {
			return "", false
		}
	}
	return string(v), true
}

// altUID is what a message's UID would be without its X-UIDL header: the
// UID generated from its lines, and the octets its accepted X-UIDL line
// was counted at (0 when it has none).
type altUID struct {
	uid     string
	counted int64
}

// uidLineSize is the octets the X-UIDL line popper sends for uid counts in
// a message's size: "X-UIDL: " + uid + CRLF. For the lines qpopper writes
// this is also what qpopper counts for an accepted header.
func uidLineSize(uid string) int64 { return int64(len("X-UIDL: ") + len(uid) + 2) }

// uidHash accumulates qpopper's UID digest for one message:
//
//  1. the separator line, with its newline;
//  2. when update-status-headers is on and old-style-uid off, the per-drop
//     counter, incremented before use, as the bytes of a C long: 8 bytes
//     little-endian on every platform popper builds for (all LP64 and
//     little-endian), which is what qpopper hashes there;
//  3. every Content-Length: header line (only when Content-Length is
//     honoured: qpopper has that branch only with CONTENT_LENGTH), and,
//     until an accepted X-UIDL is seen, header lines starting (any case)
//     with Received:, Date:, Message-Id: or Subject: (only their first
//     1023 bytes, the fragment qpopper reads; continuation lines never,
//     qpopper's continuation flag is never set);
//  4. unless old-style, the separator line again.
//
// For MMDF qpopper hashes an uninitialised buffer in step 4 (frombuf is
// only filled for mbox); popper hashes the separator line there too.
// Lines are hashed with NUL bytes turned into spaces, as qpopper's reader
// turned them before hashing.
type uidHash struct {
	h   hash.Hash
	sep []byte
	buf [8]byte
}

func (u *uidHash) start(sep []byte, opt ParseOptions, counter int64) {
	if u.h == nil {
		u.h = md5.New()
	}
	u.h.Reset()
	u.sep = append(u.sep[:0], sep...)
	u.h.Write(u.sep)
	if opt.UpdateStatusHeaders && !opt.OldStyleUID {
		binary.LittleEndian.PutUint64(u.buf[:], uint64(counter))
		u.h.Write(u.buf[:])
	}
}

func (u *uidHash) add(line []byte) { u.h.Write(line) }

// addLine hashes a header line as qpopper read it (its first fragment). A
// last line of the file without a newline is hashed with one: write-back
// supplies it, and the UID must not change then (qpopper hashed it
// without).
func (u *uidHash) addLine(l *line) {
	u.h.Write(l.head)
	if !l.nl && l.whole() {
		u.h.Write([]byte{'\n'})
	}
}

func (u *uidHash) finish(opt ParseOptions) string {
	if !opt.OldStyleUID {
		u.h.Write(u.sep)
	}
	var d [md5.Size]byte
	u.h.Sum(d[:0])
	return encodeUID(d, opt.OldStyleUID)
}

// encodeUID is qpopper's encode_uid_hash. Old style: 32 lowercase hex
// digits. New style (base80): each group of 4 digest bytes d0..d3 is
// folded as ((d0<<4 + d1)<<4 + d2)<<4 + d3 (qpopper shifts by 4 bits, not
// 8, so groups overlap; kept byte-exact because with
// update-status-headers off these UIDs are recomputed every session and
// clients hold them), then written as 5 base-80 digits, least significant
// first, each as '!'+digit with '.' replaced by '~'.
func encodeUID(d [md5.Size]byte, oldStyle bool) string {
	if oldStyle {
		return hex.EncodeToString(d[:])
	}
	out := make([]byte, 0, 20)
	for i := 0; i < len(d); i += 4 {
		var v uint64
		for j := 0; j < 4; j++ {
			v = v<<4 + uint64(d[i+j])
		}
		for k := 0; k < 5; k++ {
			c := byte('!' + v%80)
			v /= 80
			if c == '.' {
				c = '~'
			}
			out = append(out, c)
		}
	}
	return string(out)
}

// GenerateUID is the UID qpopper generates for a message whose digest
// inputs (see uidHash) are the separator line sep, the counter value and
// the hashed header lines, each with its newline. Exported for tests and
// tools that check UIDs outside a parse.
func GenerateUID(sep []byte, counter int64, headers [][]byte, opt ParseOptions) string {
	var u uidHash
	u.start(sep, opt, counter)
	for _, h := range headers {
		u.add(h)
	}
	return u.finish(opt)
}

// uniqueUIDs makes the UIDs of a drop unique (RFC 1939: unique within the
// maildrop). alt.at(i) is the UID generated for message i, used when its
// X-UIDL value is a duplicate. Persisted UIDs win: the first message
// carrying an X-UIDL value keeps it; a later message with the same value
// (a forged or copied header) gets its generated UID instead, and will
// get it written back. A generated UID that is already taken (identical
// messages with update-status-headers off, where no counter tells them
// apart) is replaced by the encoding of MD5(uid, "#", n) for the smallest
// n = 1, 2, ... giving a new value: deterministic for a given drop.
func uniqueUIDs(msgs []Msg, alt *altList, opt ParseOptions) {
	uniqueIn(msgSlice(msgs), alt, opt)
}

// msgList is a drop's messages, in a []Msg or a msgTable.
type msgList interface {
	len() int
	at(i int) Msg
	set(i int, m *Msg)
	appendUID(dst []byte, i int) []byte
}

type msgSlice []Msg

func (s msgSlice) len() int                           { return len(s) }
func (s msgSlice) at(i int) Msg                       { return s[i] }
func (s msgSlice) set(i int, m *Msg)                  { s[i] = *m }
func (s msgSlice) appendUID(dst []byte, i int) []byte { return append(dst, s[i].UID...) }

// distinctUIDs reports whether no two of msgs' UIDs are equal, as they
// are in nearly every drop. It sorts a 64-bit hash of each, 8 bytes a
// message, where the set uniqueIn builds allocated 230 bytes a message
// at 200,000 (a string, its map entry and the map's growth). Two equal
// hashes answer false even where the UIDs differ, and uniqueIn then
// compares them exactly.
func distinctUIDs(msgs msgList) bool {
	seed := maphash.MakeSeed()
	sums := make([]uint64, msgs.len())
	var buf [maxUIDLenDrop]byte
	for i := range sums {
		sums[i] = maphash.Bytes(seed, msgs.appendUID(buf[:0], i))
	}
	slices.Sort(sums)
	for i := 1; i < len(sums); i++ {
		if sums[i] == sums[i-1] {
			return false
		}
	}
	return true
}

// uniqueIn is uniqueUIDs for msgs, whose last len(alt) messages alt
// describes (the messages before have no duplicate X-UIDL value: they
// went through it unchanged when they were indexed). It reports whether
// it changed a message.
func uniqueIn(msgs msgList, alt *altList, opt ParseOptions) (changed bool) {
	if distinctUIDs(msgs) {
		// Then neither loop below changes a message: no X-UIDL value
		// is taken twice, and no generated UID is taken at all.
		return false
	}
	n := msgs.len()
	altOf := func(i int) altUID {
		if k := i - (n - alt.len()); k >= 0 {
			return alt.at(k)
		}
		return altUID{}
	}
	// A set, not a map to bool: at 200,000 messages a map's value bytes
	// with their padding are 1.5 MB more.
	seen := make(map[string]struct{}, n)
	taken := func(uid string) bool { _, ok := seen[uid]; return ok }
	for i := range n {
		m := msgs.at(i)
		if !m.UIDFound {
			continue
		}
		if !taken(m.UID) {
			seen[m.UID] = struct{}{}
			continue
		}
		a := altOf(i)
		m.Size += uidLineSize(a.uid) - a.counted
		m.UID, m.UIDFound, m.Canonical = a.uid, false, false
		msgs.set(i, &m)
		changed = true
	}
	for i := range n {
		m := msgs.at(i)
		if m.UIDFound {
			continue
		}
		uid := m.UID
		for n := 1; taken(uid); n++ {
			d := md5.Sum([]byte(m.UID + "#" + strconv.Itoa(n)))
			uid = encodeUID(d, opt.OldStyleUID)
		}
		if uid != m.UID {
			m.Size += uidLineSize(uid) - uidLineSize(m.UID)
			m.UID = uid
			msgs.set(i, &m)
			changed = true
		}
		seen[uid] = struct{}{}
	}
	return changed
}

// hasPrefixFold reports whether b starts with the ASCII string p, ignoring
// case (strncasecmp).
func hasPrefixFold(b []byte, p string) bool {
	if len(b) < len(p) {
		return false
	}
	for i := 0; i < len(p); i++ {
		c, d := b[i], p[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}
