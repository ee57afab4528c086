package spool

import (
	"bufio"
	"bytes"
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
	add(40, 500, 2000, 0, 2600, uid(35))
	tab := tableOf(msgs).done()
	checkTable(t, "large", tab, msgs)
	if len(tab.highs) != 2 || len(tab.wide) != 7 {
		t.Errorf("%d changes of Start's high bits and %d wide messages, want 2 and 7", len(tab.highs), len(tab.wide))
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

// TestMsgTableRecordSize: a record is 24 bytes, most of what a session
// keeps per message (issue 12's memory row).
func TestMsgTableRecordSize(t *testing.T) {
	if n := unsafe.Sizeof(msgRec{}); n != 24 {
		t.Errorf("a msgRec is %d bytes, want 24", n)
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
