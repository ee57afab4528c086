package spool

import (
	"bufio"
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// checkTable compares t with msgs, through every accessor a session uses.
func checkTable(t *testing.T, name string, tab *msgTable, msgs []Msg) {
	t.Helper()
	if tab.len() != len(msgs) {
		t.Fatalf("%s: %d messages, want %d", name, tab.len(), len(msgs))
	}
	for i := range msgs {
		m := &msgs[i]
		if got := tab.at(i); got != *m {
			t.Fatalf("%s: message %d\n got %+v\nwant %+v", name, i, got, *m)
		}
		if tab.start(i) != m.Start || tab.size(i) != m.Size || tab.uidOf(i) != m.UID || tab.flagsOf(i) != msgFlagBits(m) {
			t.Fatalf("%s: message %d: start %d size %d uid %q flags %b, want %+v",
				name, i, tab.start(i), tab.size(i), tab.uidOf(i), tab.flagsOf(i), *m)
		}
	}
	if got := tab.msgs(); len(msgs) > 0 && !reflect.DeepEqual(got, msgs) {
		t.Fatalf("%s: msgs() differs", name)
	}
}

// fuzzCorpus is the inputs of testdata/fuzz/FuzzParse.
func fuzzCorpus(t *testing.T) []string {
	files, err := filepath.Glob("testdata/fuzz/FuzzParse/*")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fuzz corpus: %v", err)
	}
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if q, ok := strings.CutPrefix(l, "[]byte("); ok {
				s, err := strconv.Unquote(strings.TrimSuffix(q, ")"))
				if err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				out = append(out, s)
			}
		}
	}
	return out
}

// TestMsgTableParsed: the parser's messages, for the section corpus and
// the fuzz corpus in every option, come back from a table as they went
// in, and uniqueUIDs does to a table what it does to a []Msg.
func TestMsgTableParsed(t *testing.T) {
	for k, data := range append(sectionCorpus(), fuzzCorpus(t)...) {
		for flags := 0; flags < 32; flags++ {
			opt := ParseOptions{ContentLength: flags&1 != 0, UWKluge: flags&2 != 0, UpdateStatusHeaders: flags&4 != 0,
				OldStyleUID: flags&8 != 0, FromSpool: flags&16 != 0, UIDCounter: 77}
			p, err := parseSection(bufio.NewReader(strings.NewReader(data)), section{}, opt)
			if err != nil {
				t.Fatal(err)
			}
			name := "input " + strconv.Itoa(k) + " flags " + strconv.Itoa(flags)
			msgs := p.msgs.msgs()
			checkTable(t, name+" (unsealed)", p.msgs, msgs)
			tab := tableOf(msgs)
			checkTable(t, name+" (unsealed copy)", tab, msgs)
			checkTable(t, name, tab.done(), msgs)
			want := append([]Msg(nil), msgs...)
			uniqueUIDs(want, p.alt, opt)
			changed := uniqueIn(tab, p.alt, opt)
			checkTable(t, name+" unique", tab.done(), want)
			if changed != !reflect.DeepEqual(want, msgs) {
				t.Fatalf("%s: uniqueIn reports changed=%v", name, changed)
			}
		}
	}
}

// TestMsgTableLarge: offsets past 4 GiB and 8 GiB, and fields a record
// cannot hold (kept whole), come back exact, through the index too.
func TestMsgTableLarge(t *testing.T) {
	const gib = int64(1) << 30
	var msgs []Msg
	off := int64(0)
	add := func(sep, hdr, body, trailer, size int64, uid string) {
		m := Msg{Start: off, HdrStart: off + sep, BodyStart: off + sep + hdr, Size: size,
			BodyLines: int(body / 60), UID: uid, UIDFound: len(msgs)%2 == 0, Canonical: len(msgs)%3 == 0}
		m.End = m.BodyStart + body
		m.Next = m.End + trailer
		msgs = append(msgs, m)
		off = m.Next
	}
	uid := func(i int) string { return "uid-" + strconv.Itoa(i) + strings.Repeat("x", i%50) }
	for i := 0; i < 10; i++ {
		add(40, 500, 2000, 0, 2600, uid(i))
	}
	add(40, 500, 4*gib-off-100, 0, 4*gib, uid(10)) // crosses 4 GiB; its size does not fit
	for i := 11; i < 20; i++ {
		add(40, 500, 2000, 0, 2600, uid(i)) // past 4 GiB
	}
	add(40, 500, 5*gib, 0, 5*gib+1000, uid(20)) // a body of 5 GiB
	for i := 21; i < 30; i++ {
		add(40, 500, 2000, 0, 2600, uid(i)) // past 9 GiB
	}
	add(300, 500, 2000, 0, 2600, uid(30))                 // a separator line of 300 bytes
	add(40, 500, 2000, 300, 2600, uid(31))                // a trailer of 300 bytes
	add(40, 70000, 2000, 0, 72000, uid(32))               // a header of 70,000 bytes
	add(40, 500, 6000000, 0, 6100000, uid(33))            // 100,000 lines
	add(40, 500, 2000, 0, 2600, strings.Repeat("u", 300)) // a UID of 300 bytes
	off += 7
	add(40, 500, 2000, 0, 2600, uid(35)) // after 7 bytes of no message
	add(40, 500, 2000, 0, 2600, uid(36))
	tab := tableOf(msgs).done()
	checkTable(t, "large", tab, msgs)
	if len(tab.highs) != 2 || len(tab.wide) != 8 {
		t.Errorf("%d changes of Next's high bits and %d wide messages, want 2 and 8", len(tab.highs), len(tab.wide))
	}
	tail := tableOf(msgs[1:]).done()
	checkTable(t, "from the second", tail, msgs[1:])
	if len(tail.wide) != 9 {
		t.Errorf("a table whose first message is not at 0: %d wide messages, want 9", len(tail.wide))
	}

	// Changed in place, to a message that needs a wide entry and back.
	m := msgs[15]
	m.Size = 8 * gib
	tab.set(15, &m)
	msgs[15] = m
	checkTable(t, "set wide", tab, msgs)
	m.Size, m.UID = 2700, "another-uid"
	tab.set(15, &m)
	msgs[15] = m
	checkTable(t, "set back", tab.done(), msgs)

	// Cut before the second change of the high bits, and grown again.
	tab.truncate(25)
	msgs = msgs[:25]
	off = msgs[24].Next
	checkTable(t, "truncated", tab, msgs)
	for i := 25; i < 30; i++ {
		add(40, 500, 2000, 0, 2600, uid(i))
		tab.add(&msgs[i])
	}
	checkTable(t, "grown", tab.done(), msgs)
	checkTable(t, "prefix", tab.prefix(12), msgs[:12])

	// And through the index, which holds every offset as a distance.
	ix := &spoolIndex{spool: spoolStat{size: off}, end: off, marks: make([]uint32, off/sumBlock), msgs: tab}
	data := ix.encode()
	got, err := decodeIndex(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	checkTable(t, "index", got.msgs, msgs)
}

// TestMsgTableChunks: a table of more messages than a chunk holds keeps
// them across the chunks' edges when grown, cut (at an edge and inside a
// chunk) and grown again, and its prefixes end where they say.
func TestMsgTableChunks(t *testing.T) {
	var msgs []Msg
	add := func(i int) {
		off := int64(0)
		if len(msgs) > 0 {
			off = msgs[len(msgs)-1].Next
		}
		m := Msg{Start: off, HdrStart: off + 40, BodyStart: off + 540, Size: int64(600 + i%7),
			BodyLines: i % 30, UID: "uid-" + strconv.Itoa(i), UIDFound: i%2 == 0}
		m.End = m.BodyStart + int64(100+i%500)
		m.Next = m.End
		msgs = append(msgs, m)
	}
	for i := range 4*chunkRecs + 5 {
		add(i)
	}
	for _, hint := range []int{0, 10, chunkRecs + 1, len(msgs)} {
		tab := newMsgTable(hint)
		for i := range msgs {
			tab.add(&msgs[i])
		}
		name := "hint " + strconv.Itoa(hint)
		checkTable(t, name, tab.done(), msgs)
		for _, n := range []int{2*chunkRecs + 7, chunkRecs, len(msgs)} {
			checkTable(t, name+" prefix "+strconv.Itoa(n), tab.prefix(n), msgs[:n])
		}
	}
	tab := tableOf(msgs)
	for _, n := range []int{3 * chunkRecs, 2*chunkRecs + 1, chunkRecs - 1} {
		tab.truncate(n)
		checkTable(t, "truncated to "+strconv.Itoa(n), tab, msgs[:n])
		grown := msgs[:n:n]
		for i := n; i < n+chunkRecs+3; i++ {
			m := msgs[i]
			m.UID, m.Size = "new-"+strconv.Itoa(i), m.Size+1 // not what was cut
			grown = append(grown, m)
			tab.add(&m)
		}
		checkTable(t, "grown from "+strconv.Itoa(n), tab, grown)
		tab.truncate(n)
	}
}

// TestMsgTableRecordSize: a record is 28 bytes, a generated UID
// included: most of what a session keeps per message (issue 12's memory
// row).
func TestMsgTableRecordSize(t *testing.T) {
	if n := unsafe.Sizeof(msgRec{}); n != 28 {
		t.Errorf("a msgRec is %d bytes, want 28", n)
	}
}

// TestPackUID: every UID qpopper's encoding makes is packed and comes
// back as it was, in a table too; a UID of any other form is not packed
// and is kept as it is.
func TestPackUID(t *testing.T) {
	rng := rand.New(rand.NewPCG(80, 12))
	tab := newMsgTable(0)
	var msgs []Msg
	add := func(uid string) {
		m := Msg{Start: int64(len(msgs)) * 100, HdrStart: int64(len(msgs))*100 + 10, BodyStart: int64(len(msgs))*100 + 50,
			End: int64(len(msgs))*100 + 99, Next: int64(len(msgs)+1) * 100, Size: 90, BodyLines: 2, UID: uid}
		msgs = append(msgs, m)
		tab.add(&msgs[len(msgs)-1])
	}
	for range 2000 {
		var d [16]byte
		for i := range d {
			d[i] = byte(rng.Uint32())
		}
		if rng.IntN(50) == 0 {
			d = [16]byte{} // all zeros, and all ones: the smallest and largest groups
			if rng.IntN(2) == 0 {
				d = [16]byte{255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255}
			}
		}
		uid := encodeUID(d, false)
		p, ok := packUID(uid)
		if !ok {
			t.Fatalf("generated UID %q not packed", uid)
		}
		if got := string(unpackUID(nil, &p)); got != uid {
			t.Fatalf("packed %q came back as %q", uid, got)
		}
		add(uid)
	}
	for _, uid := range []string{
		"", "x", strings.Repeat("!", 19), strings.Repeat("!", 21),
		"!!!!.!!!!!!!!!!!!!!!",             // '.' is written '~'
		"!!!!q!!!!!!!!!!!!!!!",             // 'q' is no digit
		"ppppp!!!!!!!!!!!!!!!",             // a group of 80^5 - 1: over 2^24
		"!!!! !!!!!!!!!!!!!!!",             // a space
		"0123456789abcdef0123456789abcdef", // old style: hex, kept as it is
	} {
		if _, ok := packUID(uid); ok {
			t.Errorf("%q packed", uid)
		}
		add(uid)
	}
	checkTable(t, "mixed", tab.done(), msgs)
	var b []byte
	for i := range msgs {
		if b = tab.appendUID(b[:0], i); string(b) != msgs[i].UID {
			t.Fatalf("appendUID(%d) = %q, want %q", i, b, msgs[i].UID)
		}
	}
}

// TestAltList: what the parser keeps for uniqueUIDs comes back as it
// went in, the values a record cannot hold too.
func TestAltList(t *testing.T) {
	want := []altUID{{uid: "abcdefghijklmnopqrst", counted: 30}, {}, {uid: strings.Repeat("v", 300), counted: 1},
		{uid: "x", counted: 70000}, {uid: "0123456789abcdef0123456789abcdef", counted: 1024}}
	var l altList
	for _, a := range want {
		l.add(a)
	}
	if l.len() != len(want) {
		t.Fatalf("%d entries, want %d", l.len(), len(want))
	}
	for i, a := range want {
		if got := l.at(i); got != a {
			t.Errorf("entry %d: got %+v, want %+v", i, got, a)
		}
	}
	if len(l.wide) != 2 {
		t.Errorf("%d entries kept whole, want 2", len(l.wide))
	}
}

// TestSessionPast4GiB: a session on a spool of more than 4 GiB, its
// messages read from the index, serves the message past 4 GiB from its
// own offsets. The spool is sparse: the first message's body is a 5 GiB
// hole that nothing reads.
func TestSessionPast4GiB(t *testing.T) {
	if testing.Short() {
		t.Skip("makes a sparse 5 GiB spool")
	}
	trustStat(t)
	c := indexConfig(t)
	const far = 5 << 30
	head := "From a@example.org Sat Jan  1 00:00:00 2000\nX-UIDL: near-uid-0123456789\nStatus: RO\n\n"
	second := "From b@example.org Sat Jan  1 00:00:00 2000\nX-UIDL: far-uid-01234567890\nSubject: far\n\nfar away\n"
	f, err := os.Create(c.Spool)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteAt([]byte(head), 0)
	if err == nil {
		_, err = f.WriteAt([]byte("\n\n"), far-2)
	}
	if err == nil {
		_, err = f.WriteAt([]byte(second), far)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Skipf("no sparse file of 5 GiB here: %v", err)
	}
	want, err := Parse(strings.NewReader(second), ParseOptions{UpdateStatusHeaders: true})
	if err != nil || len(want.Msgs) != 1 {
		t.Fatalf("%v, %d messages", err, len(want.Msgs))
	}
	m2 := want.Msgs[0]
	for _, p := range []*int64{&m2.Start, &m2.HdrStart, &m2.BodyStart, &m2.End, &m2.Next} {
		*p += far
	}
	m1 := Msg{HdrStart: int64(strings.Index(head, "\n") + 1), BodyStart: int64(len(head)), End: far, Next: far,
		Size: far + 100, UID: "near-uid-0123456789", UIDFound: true, Canonical: true}
	fi, err := os.Stat(c.Spool)
	if err != nil {
		t.Fatal(err)
	}
	ix := &spoolIndex{spool: statOfSpool(fi), opts: optionBits(c.Parse), end: m2.Next,
		marks: make([]uint32, m2.Next/sumBlock), msgs: tableOf([]Msg{m1, m2}).done()}
	if err := writeIndex(c.Cache, ix); err != nil {
		t.Fatal(err)
	}
	var how []string
	indexTrace = func(h string) { how = append(how, h) }
	defer func() { indexTrace = nil }()
	md, err := Open(c)
	if err != nil {
		t.Fatal(err)
	}
	defer md.Rollback()
	if len(how) != 1 || how[0] != "stat" {
		t.Fatalf("the login was served by %q, want the index alone (stat)", how)
	}
	if md.Len() != 2 || md.Size(0) != m1.Size || md.UID(0) != m1.UID || md.Size(1) != m2.Size || md.UID(1) != m2.UID {
		t.Fatalf("%d messages: sizes %d, %d, UIDs %q, %q", md.Len(), md.Size(0), md.Size(1), md.UID(0), md.UID(1))
	}
	var got, wire strings.Builder
	if err := md.WriteMessage(&got, 1, -1); err != nil {
		t.Fatal(err)
	}
	if err := WriteWire(&wire, strings.NewReader(second), &want.Msgs[0], -1); err != nil {
		t.Fatal(err)
	}
	if got.String() != wire.String() {
		t.Fatalf("the message past 5 GiB reads\n%q\nwant\n%q", got.String(), wire.String())
	}
}

// TestMsgTableFields: every field of Msg, set alone, comes back from a
// table; a field added to Msg fails here until the table keeps it.
func TestMsgTableFields(t *testing.T) {
	typ := reflect.TypeOf(Msg{})
	for i := range typ.NumField() {
		var m Msg
		f := reflect.ValueOf(&m).Elem().Field(i)
		switch f.Kind() {
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Int, reflect.Int64:
			f.SetInt(7)
		case reflect.String:
			f.SetString("uid")
		default:
			t.Fatalf("field %s: a %s, which this test does not know", typ.Field(i).Name, f.Kind())
		}
		m.Next = max(m.Next, m.End, m.BodyStart, m.HdrStart, m.Start)
		tab := tableOf([]Msg{m}).done()
		if got := tab.at(0); got != m {
			t.Errorf("field %s: got %+v, want %+v", typ.Field(i).Name, got, m)
		}
	}
}
