package spool

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// dropFile writes content to a file in a temp dir and returns it open.
func dropFile(t testing.TB, content string) *os.File {
	t.Helper()
	p := filepath.Join(t.TempDir(), "drop")
	if err := os.WriteFile(p, []byte(content), 0600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// parseFile parses a drop file the way maildrop.go does.
func parseFile(t testing.TB, f *os.File, opt ParseOptions) *Drop {
	t.Helper()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	d, err := Parse(bufio.NewReaderSize(io.NewSectionReader(f, 0, fi.Size()), 64<<10), opt)
	if err != nil {
		t.Fatal(err)
	}
	checkDrop(t, d, fi.Size())
	return d
}

func parseString(t testing.TB, content string, opt ParseOptions) (*Drop, *os.File) {
	t.Helper()
	f := dropFile(t, content)
	return parseFile(t, f, opt), f
}

// checkDrop checks the invariants every parse must keep: messages and junk
// in order, inside the file, not overlapping, covering the file exactly.
func checkDrop(t testing.TB, d *Drop, size int64) {
	t.Helper()
	if d.End != size {
		t.Fatalf("End = %d, file has %d bytes", d.End, size)
	}
	type span struct{ a, b int64 }
	var spans []span
	for _, r := range d.Junk {
		if r.Len <= 0 {
			t.Fatalf("empty junk range %+v", r)
		}
		spans = append(spans, span{r.Off, r.Off + r.Len})
	}
	uids := map[string]bool{}
	for i, m := range d.Msgs {
		if err := checkOffsets(&m); err != nil {
			t.Fatalf("msg %d: %v", i, err)
		}
		if m.Start == m.HdrStart {
			t.Fatalf("msg %d: empty separator", i)
		}
		if m.UID == "" || uids[m.UID] {
			t.Fatalf("msg %d: UID %q empty or duplicate", i, m.UID)
		}
		uids[m.UID] = true
		for _, c := range m.UID {
			if c < '!' || c > '~' {
				t.Fatalf("msg %d: UID %q has byte %q", i, m.UID, c)
			}
		}
		spans = append(spans, span{m.Start, m.Next})
	}
	// Sort by start (insertion sort: small).
	for i := 1; i < len(spans); i++ {
		for j := i; j > 0 && spans[j].a < spans[j-1].a; j-- {
			spans[j], spans[j-1] = spans[j-1], spans[j]
		}
	}
	var at int64
	for _, s := range spans {
		if s.a != at {
			t.Fatalf("gap or overlap at %d (next span starts at %d)", at, s.a)
		}
		at = s.b
	}
	if at != size {
		t.Fatalf("spans end at %d, file has %d bytes", at, size)
	}
}

const (
	from1 = "From alice@example.com Wed Dec  2 05:53:22 1992\n"
	from2 = "From bob@example.com Thu Jan  7 11:02:00 2021 -0700\n"
	from3 = "From carol Fri Feb 12 09:00 PST 2021\n"
)

func TestValidFromLine(t *testing.T) {
	good := []string{
		"From user Wed Dec  2 05:53 1992",
		"From user Wed Dec  2 05:53:22 1992",
		"From user Wed Dec  2 05:53 PST 1992",
		"From user Wed Dec  2 05:53:22 PST 1992",
		"From user Wed Dec  2 05:53 -0700 1992",
		"From user Wed Dec  2 05:53:22 -0700 1992",
		"From user Wed Dec  2 05:53 1992 PST",
		"From user Wed Dec  2 05:53:22 1992 PST",
		"From user Wed Dec  2 05:53 1992 -0700",
		"From user Wed Dec  2 05:53:22 1992 -0700",
		"From user Wed Dec  2 05:53:22 1992 remote from uunet",
		"From user Wed Dec  2 05:53:22 1992 -0700 remote from uunet",
		"From user@example.com Wed Dec 12 05:53:22 1992",
		"From MAILER-DAEMON Sat Nov 28 21:00:00 2026",
		"From  Wed Dec  2 05:53:22 1992", // empty address, still long enough
		"From a Wed Dec  2 05:53 1992",   // exactly 27 bytes
	}
	bad := []string{
		"",
		"From",
		"From user",
		"from user Wed Dec  2 05:53:22 1992",  // lower case
		">From user Wed Dec  2 05:53:22 1992", // quoted
		"From: user Wed Dec  2 05:53:22 1992", // a header
		"From user Wed Dec  2 05-53-22 1992",  // no colons
		"From user Wed Dec 2 05:53:22 1992",   // day not two wide
		"From user Wed Dec  2 05:53:22 92",    // two-digit year
		"From user Wed Dec  2 05:53:22 1992 remote",
		"From user Wed Dec  2 05:53:22 1992 *0700",
		"From a Wed Dec  2 05:53 199",    // 26 bytes
		"From user Wed Dec  2 0553 1992", // no colon
		"From user Wed Dec  2 05:53:22 1992 PSTX",
		"From someone who is writing about 1992 in the body",
		"From user Wed Dec  2 05:53:22 1992\r",  // CR is not stripped here
		"From x                     1992 -0700", // spaces only
	}
	for _, s := range good {
		if !validFromLine([]byte(s)) {
			t.Errorf("rejected %q", s)
		}
	}
	for _, s := range bad {
		if validFromLine([]byte(s)) {
			t.Errorf("accepted %q", s)
		}
	}
	// Lines short enough that the C macro reads before the buffer must
	// simply be rejected, never panic.
	for n := 0; n < 60; n++ {
		s := "From " + strings.Repeat(" ", n) + "1992"
		validFromLine([]byte(s))
		s = "From " + strings.Repeat(":", n)
		validFromLine([]byte(s))
	}
}

func TestParseSizes(t *testing.T) {
	content := from1 +
		"Subject: hi\n" + // 13
		"Status: RO\n" + // 12
		"X-UIDL: abcdefghijklmnopqrst\n" + // 30
		"\n" + // 2
		"body line\n" + // 11
		"\n" + // 2
		from2 +
		"Received: by x\n" + // 16
		"X-UIDL: short\n" + // rejected (6 chars): not counted
		"Content-Length: 5\n" + // counted: Content-Length off
		"\n" + // 2
		".dot\r\n" + // CRLF kept: 6
		"x\r\r\n" + // even CR run: DotWriter adds a CR: 5
		"last" // no newline: 4 + 2
	d, _ := parseString(t, content, ParseOptions{FromSpool: true})
	if len(d.Msgs) != 2 || len(d.Junk) != 0 || d.Format != MBox {
		t.Fatalf("got %d msgs, junk %v, format %v", len(d.Msgs), d.Junk, d.Format)
	}
	m := d.Msgs[0]
	if m.Size != 70 || m.BodyLines != 2 || !m.UIDFound || m.UID != "abcdefghijklmnopqrst" || !m.Retrieved {
		t.Errorf("msg 1: %+v", m)
	}
	if m.Start != 0 || m.HdrStart != int64(len(from1)) || m.End != int64(strings.Index(content, from2)) || m.Next != m.End {
		t.Errorf("msg 1 offsets: %+v", m)
	}
	if got := content[m.BodyStart:m.End]; got != "body line\n\n" {
		t.Errorf("msg 1 body %q", got)
	}
	m = d.Msgs[1]
	want := int64(16 + 30 + 19 + 2 + 6 + 5 + 6)
	if m.Size != want || m.BodyLines != 3 || m.UIDFound || m.Retrieved || len(m.UID) != 20 {
		t.Errorf("msg 2: size %d want %d; %+v", m.Size, want, m)
	}
	if m.Next != int64(len(content)) {
		t.Errorf("msg 2 Next %d", m.Next)
	}
}

// TestSizeMatchesWire checks Size against the bytes a client receives:
// WriteWire through net/textproto's DotWriter, minus dot-stuffing and the
// terminating ".\r\n".
func TestSizeMatchesWire(t *testing.T) {
	content := from1 + "Subject: a\nStatus: O\n\n.line\n..\n.\n" +
		"\n" + from2 + "X-UIDL: abcdefghijklmnopqrst\nDate: x\n\nCRLF\r\nlone\rcr\n\r\r\n\r\r\r\nend" +
		"\n\n" + from3 + "Subject: headers only\n" +
		"\n" + from1 + "Subject: nul\x00byte\n\nbody\x00\n" +
		"\n" + from2 + "Subject: no newline at all"
	d, f := parseString(t, content, ParseOptions{UpdateStatusHeaders: true})
	if len(d.Msgs) != 5 {
		t.Fatalf("%d msgs", len(d.Msgs))
	}
	for i := range d.Msgs {
		got, stuffed := wireBytes(t, f, &d.Msgs[i], -1)
		if n := int64(len(got) - stuffed - 3); n != d.Msgs[i].Size {
			t.Errorf("msg %d: Size %d, wire %d: %q", i+1, d.Msgs[i].Size, n, got)
		}
	}
}

func TestParseMMDF(t *testing.T) {
	sep := "\x01\x01\x01\x01\n"
	content := sep + "Subject: one\n\nbody 1\n" + sep +
		sep + "Subject: headers only\n" + sep +
		"stray line\n" +
		sep + "From: x\n\nFrom not a separator here\n" // no trailer at the end
	d, _ := parseString(t, content, ParseOptions{})
	if d.Format != MMDF || d.Sep != sep {
		t.Fatalf("format %v sep %q", d.Format, d.Sep)
	}
	if len(d.Msgs) != 3 {
		t.Fatalf("%d msgs: %+v", len(d.Msgs), d.Msgs)
	}
	m := d.Msgs[0]
	if content[m.HdrStart:m.End] != "Subject: one\n\nbody 1\n" || m.Next != m.End+int64(len(sep)) {
		t.Errorf("msg 1 %+v", m)
	}
	if m.Size != 14+2+8+30 {
		t.Errorf("msg 1 size %d", m.Size)
	}
	m = d.Msgs[1]
	if content[m.HdrStart:m.End] != "Subject: headers only\n" || m.BodyStart != m.End {
		t.Errorf("msg 2 %+v", m)
	}
	if len(d.Junk) != 1 || content[d.Junk[0].Off:d.Junk[0].Off+d.Junk[0].Len] != "stray line\n" {
		t.Errorf("junk %+v", d.Junk)
	}
	m = d.Msgs[2]
	if m.End != int64(len(content)) || m.Next != m.End || m.BodyLines != 1 {
		t.Errorf("msg 3 %+v", m)
	}
}

func TestParseJunkBeforeFirstMessage(t *testing.T) {
	content := "garbage\nmore\n" + from1 + "Subject: a\n\nb\n"
	d, _ := parseString(t, content, ParseOptions{})
	if len(d.Msgs) != 1 || len(d.Junk) != 1 || d.Junk[0] != (Range{0, 13}) {
		t.Fatalf("msgs %+v junk %+v", d.Msgs, d.Junk)
	}
	// Nothing but junk, and an empty file.
	d, _ = parseString(t, "no separator\nat all", ParseOptions{})
	if len(d.Msgs) != 0 || len(d.Junk) != 1 {
		t.Fatalf("msgs %+v junk %+v", d.Msgs, d.Junk)
	}
	d, _ = parseString(t, "", ParseOptions{})
	if len(d.Msgs) != 0 || len(d.Junk) != 0 || d.End != 0 {
		t.Fatalf("empty: %+v", d)
	}
}

func TestParseSeparatorRules(t *testing.T) {
	content := from1 + "Subject: a\n\n" +
		"text\n" + from2 + // not after a blank line: body
		"\n" + ">" + from2 + // quoted
		"\n" + "From the desk of nobody\n" + // no valid date
		"\n" + strings.Repeat("x", 2000) + "\n" + from2 + // after an over-long line
		"\n" + "From x Wed Dec  2 05:53:22 1992\r\n" + "Subject: crlf\r\n\r\nbody\r\n" + // CRLF separator
		"\r\n" + from3 + "\n" // CRLF blank line before it; headers-only last message
	d, _ := parseString(t, content, ParseOptions{})
	if len(d.Msgs) != 3 {
		t.Fatalf("%d msgs: %+v", len(d.Msgs), d.Msgs)
	}
	if d.Msgs[0].BodyLines != 10 {
		t.Errorf("msg 1 body lines %d", d.Msgs[0].BodyLines)
	}
	m := d.Msgs[1]
	if got := content[m.BodyStart:m.End]; got != "body\r\n\r\n" {
		t.Errorf("msg 2 body %q", got)
	}
	if m := d.Msgs[2]; m.BodyStart != m.End || m.HdrStart != m.End-1 || m.BodyLines != 0 {
		t.Errorf("msg 3 %+v", m)
	}
}

func TestParseFinalLineWithoutNewline(t *testing.T) {
	content := from1 + "Subject: a\n\nlast line"
	d, f := parseString(t, content, ParseOptions{})
	m := d.Msgs[0]
	if m.End != int64(len(content)) || m.BodyLines != 1 || m.Size != 12+2+11+30 {
		t.Errorf("%+v", m)
	}
	var b bytes.Buffer
	if err := WriteWire(&b, f, &m, -1); err != nil {
		t.Fatal(err)
	}
	if want := "Subject: a\nX-UIDL: " + m.UID + "\n\nlast line\n"; b.String() != want {
		t.Errorf("wire %q want %q", b.String(), want)
	}
	// A "From " line at the end of the file without its newline is no
	// separator (qpopper: the fragment overflows).
	d, _ = parseString(t, content+"\n\n"+strings.TrimSuffix(from2, "\n"), ParseOptions{})
	if len(d.Msgs) != 1 {
		t.Errorf("%d msgs", len(d.Msgs))
	}
}

func TestParseNULBytes(t *testing.T) {
	content := from1 + "Subject: a\x00b\nX-UIDL: abc\x00defghijklmno\n\nbo\x00dy\n\n" +
		"From alice\x00example Wed Dec  2 05:53:22 1992\n" + "Subject: b\n\n\x00\x00\n"
	d, _ := parseString(t, content, ParseOptions{})
	if len(d.Msgs) != 2 {
		t.Fatalf("%d msgs", len(d.Msgs))
	}
	// The NUL in the X-UIDL value reads as a space, so the value is not
	// a valid UID: a UID is generated.
	if d.Msgs[0].UIDFound || d.Msgs[0].BodyLines != 2 || d.Msgs[1].BodyLines != 1 {
		t.Errorf("%+v", d.Msgs)
	}
}

func TestParseStatusAndUWKluge(t *testing.T) {
	uw := from1 + "Date: x\nFrom: Mail System Internal Data <MAILER-DAEMON@x>\n" +
		"Subject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA\nX-IMAP: 1 2\nStatus: RO\n\nbody\n\n"
	second := from2 + "Subject: DO NOT DELETE\nX-IMAP: 1\nStatus: O\n\nx\n"
	d, _ := parseString(t, uw+second, ParseOptions{UWKluge: true})
	if !d.Msgs[0].Hidden || d.Msgs[1].Hidden || !d.Msgs[0].Retrieved || d.Msgs[1].Retrieved {
		t.Errorf("%+v", d.Msgs)
	}
	d, _ = parseString(t, uw+second, ParseOptions{})
	if d.Msgs[0].Hidden {
		t.Errorf("hidden without the kluge")
	}
	// One hint is not enough.
	d, _ = parseString(t, from1+"X-IMAP: 1\n\nx\n", ParseOptions{UWKluge: true})
	if d.Msgs[0].Hidden {
		t.Errorf("hidden on one hint")
	}
}

func TestUIDLReuseWindows(t *testing.T) {
	for _, tc := range []struct {
		value       string
		spool, drop bool // accepted when reading the spool / a temp drop
		want        string
	}{
		{"12345678901", false, true, "12345678901"},  // 11 (+1 = 12)
		{"1234567890", false, false, ""},             // 10 (+1 = 11)
		{"123456789012", true, true, "123456789012"}, // 12 (+1 = 13)
		{strings.Repeat("a", 31), true, true, strings.Repeat("a", 31)},
		{strings.Repeat("a", 32), false, true, strings.Repeat("a", 32)}, // old-style hex
		{strings.Repeat("a", 33), false, false, ""},
		{"abcdefghijklmnopqrst  \t", true, true, "abcdefghijklmnopqrst"}, // trailing blanks
		{"abcdefghij klmnopqrst", false, false, ""},                      // inner space
		{"abcdefghijklmnopqrs\x7f", false, false, ""},
	} {
		for _, fromSpool := range []bool{true, false} {
			content := from1 + "x-uidl:\t" + tc.value + "\r\nX-UIDL: second-accepted-uid-value\n\nb\n"
			d, _ := parseString(t, content, ParseOptions{FromSpool: fromSpool})
			m := d.Msgs[0]
			want := tc.drop
			if fromSpool {
				want = tc.spool
			}
			switch {
			case want && (!m.UIDFound || m.UID != tc.want):
				t.Errorf("%q fromSpool=%v: got %q found=%v", tc.value, fromSpool, m.UID, m.UIDFound)
			case !want && m.UID != "second-accepted-uid-value":
				t.Errorf("%q fromSpool=%v: got %q, want the second header", tc.value, fromSpool, m.UID)
			}
			// The accepted line counts at its own length + 1 (qpopper's
			// strlen + 1): the first, spaced and ended as it is, or the
			// second, canonical one.
			uidLine := int64(len("X-UIDL: second-accepted-uid-value\n") + 1)
			if m.UID == tc.want && want {
				uidLine = int64(len("x-uidl:\t"+tc.value+"\r\n") + 1)
			}
			if m.Size != uidLine+2+3 {
				t.Errorf("%q: size %d, want %d", tc.value, m.Size, uidLine+5)
			}
		}
	}
}

func TestGeneratedUIDs(t *testing.T) {
	// Known answers computed independently from qpopper's C (MD5 and
	// base80 with its 4-bit shift).
	var seq [16]byte
	for i := range seq {
		seq[i] = byte(i)
	}
	if got := encodeUID(seq, false); got != `T$!!!(_#!!LI&!!p3)!!` {
		t.Errorf("base80 %q", got)
	}
	var ff [16]byte
	for i := range ff {
		ff[i] = 0xff
	}
	if got := encodeUID(ff, false); got != `0'/#!0'/#!0'/#!0'/#!` {
		t.Errorf("base80 %q", got)
	}
	sep := "From a@b Wed Dec  2 05:53:22 1992\n"
	content := sep + "Subject: hi\nX-Other: not hashed\n\nbody\n"
	for _, tc := range []struct {
		opt  ParseOptions
		want string
	}{
		{ParseOptions{}, `g'["!/lP!!~` + "`" + `^"!/K4"!`},
		{ParseOptions{UpdateStatusHeaders: true, UIDCounter: 1000}, `m%Y"!~F!"!QRF"!2']"!`},
		{ParseOptions{OldStyleUID: true}, "72cb07594c7c5034b6ae977ec733db97"},
		{ParseOptions{OldStyleUID: true, UpdateStatusHeaders: true, UIDCounter: 1000}, "72cb07594c7c5034b6ae977ec733db97"},
	} {
		d, _ := parseString(t, content, tc.opt)
		if got := d.Msgs[0].UID; got != tc.want || d.Msgs[0].UIDFound {
			t.Errorf("%+v: UID %q want %q", tc.opt, got, tc.want)
		}
		if got := GenerateUID([]byte(sep), tc.opt.UIDCounter+1, [][]byte{[]byte("Subject: hi\n")}, tc.opt); got != tc.want {
			t.Errorf("GenerateUID %+v: %q want %q", tc.opt, got, tc.want)
		}
	}
	// Hashing stops at the accepted X-UIDL; Content-Length is hashed
	// only when honoured.
	opt := ParseOptions{ContentLength: true}
	a, _ := parseString(t, sep+"Content-Length: 5\nSubject: hi\n\nbody\n", opt)
	b := GenerateUID([]byte(sep), 1, [][]byte{[]byte("Content-Length: 5\n"), []byte("Subject: hi\n")}, opt)
	if a.Msgs[0].UID != b {
		t.Errorf("Content-Length hashing: %q vs %q", a.Msgs[0].UID, b)
	}
}

func TestUIDsUnique(t *testing.T) {
	msg := from1 + "Subject: same\n\nsame body\n\n"
	// Byte-identical messages: the counter separates them when
	// update-status-headers is on, the deterministic suffix when off.
	for _, opt := range []ParseOptions{{}, {UpdateStatusHeaders: true, UIDCounter: 7}, {OldStyleUID: true}} {
		d, _ := parseString(t, msg+msg+msg, opt) // checkDrop asserts uniqueness
		d2, _ := parseString(t, msg+msg+msg, opt)
		for i := range d.Msgs {
			if d.Msgs[i].UID != d2.Msgs[i].UID {
				t.Errorf("%+v: UIDs not deterministic", opt)
			}
			if d.Msgs[i].Size != uidLineSize(d.Msgs[i].UID)+15+2+11+2 {
				t.Errorf("%+v: size %d", opt, d.Msgs[i].Size)
			}
		}
	}
	// A forged X-UIDL copying another message's: the first keeps it.
	forged := from1 + "X-UIDL: abcdefghijklmnopqrst\n\nx\n\n"
	d, _ := parseString(t, forged+forged, ParseOptions{})
	if !d.Msgs[0].UIDFound || d.Msgs[0].UID != "abcdefghijklmnopqrst" || d.Msgs[1].UIDFound {
		t.Errorf("%+v", d.Msgs)
	}
	// The copy gets the UID it would have without the header, in
	// qpopper's form (packed while parsing) and old-style (not).
	for _, opt := range []ParseOptions{{}, {OldStyleUID: true}} {
		d, _ := parseString(t, forged+forged, opt)
		plain, _ := parseString(t, forged+from1+"\nx\n\n", opt)
		if d.Msgs[1].UID != plain.Msgs[1].UID || len(d.Msgs[1].UID) != map[bool]int{false: 20, true: 32}[opt.OldStyleUID] {
			t.Errorf("%+v: the copy's UID is %q, without its X-UIDL %q", opt, d.Msgs[1].UID, plain.Msgs[1].UID)
		}
	}
	// Spaced as no qpopper wrote it: the first counts the line as it is
	// (qpopper's strlen + 1), the second what it is sent with instead.
	spaced := from1 + "x-uidl:\t  abcdefghijklmnopqrst\n\nx\n\n"
	d, _ = parseString(t, spaced+spaced, ParseOptions{})
	rest := int64(2 + 3 + 2) // blank line, "x", the blank line before the next From
	if got, want := d.Msgs[0].Size, int64(len("x-uidl:\t  abcdefghijklmnopqrst\n")+1)+rest; got != want {
		t.Errorf("spaced X-UIDL: size %d, want %d", got, want)
	}
	if got, want := d.Msgs[1].Size, uidLineSize(d.Msgs[1].UID)+rest; d.Msgs[1].UIDFound || got != want {
		t.Errorf("its duplicate: %+v, size %d, want %d", d.Msgs[1], got, want)
	}
}

// TestDistinctUIDs: the check that lets uniqueIn skip its set says no
// for a drop with any two UIDs equal, packed ones in a table too.
func TestDistinctUIDs(t *testing.T) {
	var msgs []Msg
	for i := range 5000 {
		var d [16]byte
		binary.LittleEndian.PutUint64(d[:], uint64(i))
		uid := encodeUID(d, false)
		if i%2 == 1 {
			uid = "other-form-" + strconv.Itoa(i) // kept in the arena
		}
		msgs = append(msgs, Msg{Start: int64(i) * 10, Next: int64(i+1) * 10, End: int64(i+1) * 10, UID: uid})
	}
	if !distinctUIDs(msgSlice(msgs)) || !distinctUIDs(tableOf(msgs).done()) {
		t.Fatal("distinct UIDs reported equal")
	}
	for _, pair := range [][2]int{{0, 4998}, {1, 4999}, {2500, 2501}} {
		dup := slices.Clone(msgs)
		dup[pair[1]].UID = dup[pair[0]].UID
		if distinctUIDs(msgSlice(dup)) || distinctUIDs(tableOf(dup).done()) {
			t.Errorf("messages %d and %d have one UID, reported distinct", pair[0], pair[1])
		}
	}
}

// lyingCL builds a drop where message 1 claims a Content-Length.
func TestContentLength(t *testing.T) {
	body := "line one\n\n" + from2 + "inside\n" // a From line inside the body
	honest := from1 + "Content-Length: " + itoa(len(body)) + "\n\n" + body +
		"\n" + from3 + "Subject: next\n\nz\n"
	lying := from1 + "Content-Length: 100000\n\n" + body +
		"\n" + from3 + "Subject: next\n\nz\n" + "\n" + from1 + "Subject: last\n\nq\n"
	short := from1 + "Content-Length: 3\n\n" + body + "\n" + from3 + "\nz\n"

	d, _ := parseString(t, honest, ParseOptions{ContentLength: true})
	if len(d.Msgs) != 2 {
		t.Fatalf("honest: %d msgs", len(d.Msgs))
	}
	if m := d.Msgs[0]; m.BodyLines != 5 || m.Size != 2+10+2+int64(len(from2))+1+8+2+30 {
		t.Errorf("honest msg 1: %+v", m)
	}
	d, _ = parseString(t, honest, ParseOptions{})
	if len(d.Msgs) != 3 {
		t.Errorf("Content-Length off: %d msgs", len(d.Msgs))
	}
	if m := d.Msgs[0]; m.Size != int64(len("Content-Length: 17\n")+1)+2+10+2+30 {
		t.Errorf("Content-Length off: size %d", m.Size)
	}

	// A lying Content-Length would swallow the rest in qpopper; popper
	// falls back to From-scanning for that message.
	d, _ = parseString(t, lying, ParseOptions{ContentLength: true})
	if len(d.Msgs) != 4 {
		t.Fatalf("lying: %d msgs", len(d.Msgs))
	}
	if got := lying[d.Msgs[1].Start:d.Msgs[1].HdrStart]; got != from2 {
		t.Errorf("lying: msg 2 starts with %q", got)
	}
	// Too small is harmless: From-scanning resumes after it.
	d, _ = parseString(t, short, ParseOptions{ContentLength: true})
	if len(d.Msgs) != 3 {
		t.Errorf("short: %d msgs", len(d.Msgs))
	}
	// Within CONTLEN_FUZZ of the truth the header is trusted.
	fuzzy := from1 + "Content-Length: " + itoa(len(body)+20) + "\n\n" + body + "\n" + from3 + "\nz\n"
	d, _ = parseString(t, fuzzy, ParseOptions{ContentLength: true})
	if len(d.Msgs) != 2 {
		t.Errorf("fuzzy: %d msgs", len(d.Msgs))
	}
	// Nested lies: the fallback message lies too.
	nested := from1 + "Content-Length: 99999\n\nx\n\n" +
		from2 + "Content-Length: 88888\n\ny\n\n" +
		from3 + "Subject: c\n\nz\n"
	d, _ = parseString(t, nested, ParseOptions{ContentLength: true})
	if len(d.Msgs) != 3 {
		t.Errorf("nested: %d msgs", len(d.Msgs))
	}
}

func itoa(n int) string {
	var b []byte
	for {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
		if n == 0 {
			return string(b)
		}
	}
}

func TestWriteWire(t *testing.T) {
	content := from1 +
		"Received: r\nX-UIDL: old-old-old-old-old\ncontent-length: 4\nStatus: O\nSubject: s\n\nb1\nb2\nb3\n" +
		"\n" + from2 + "Subject: headers only"
	d, f := parseString(t, content, ParseOptions{FromSpool: true})
	m := &d.Msgs[0]
	for _, tc := range []struct {
		n    int
		want string
	}{
		{-1, "Received: r\nX-UIDL: old-old-old-old-old\nStatus: O\nSubject: s\n\nb1\nb2\nb3\n\n"},
		{0, "Received: r\nX-UIDL: old-old-old-old-old\nStatus: O\nSubject: s\n\n"},
		{2, "Received: r\nX-UIDL: old-old-old-old-old\nStatus: O\nSubject: s\n\nb1\nb2\n"},
		{99999999, "Received: r\nX-UIDL: old-old-old-old-old\nStatus: O\nSubject: s\n\nb1\nb2\nb3\n\n"},
	} {
		var b bytes.Buffer
		if err := WriteWire(&b, f, m, tc.n); err != nil {
			t.Fatal(err)
		}
		if b.String() != tc.want {
			t.Errorf("TOP %d: %q\nwant %q", tc.n, b.String(), tc.want)
		}
	}
	m = &d.Msgs[1]
	for _, n := range []int{-1, 0, 5} {
		var b bytes.Buffer
		if err := WriteWire(&b, f, m, n); err != nil {
			t.Fatal(err)
		}
		if want := "Subject: headers only\nX-UIDL: " + m.UID + "\n\n"; b.String() != want {
			t.Errorf("headers only, %d: %q", n, b.String())
		}
	}
	bad := *m
	bad.End = bad.Start - 1
	if err := WriteWire(io.Discard, f, &bad, -1); err == nil {
		t.Errorf("bad offsets accepted")
	}
	// A file that shrank under the message is an error, not a short
	// message.
	bad = d.Msgs[0]
	bad.End, bad.Next = int64(len(content))+10, int64(len(content))+10
	bad.BodyStart = bad.End
	if err := WriteWire(io.Discard, f, &bad, -1); err != io.ErrUnexpectedEOF {
		t.Errorf("WriteWire past the end: %v", err)
	}
	if _, err := WriteUpdated(io.Discard, f, &bad, false, ParseOptions{}); err != io.ErrUnexpectedEOF {
		t.Errorf("WriteUpdated past the end: %v", err)
	}
	bad = d.Msgs[0]
	bad.End, bad.Next = int64(len(content))+10, int64(len(content))+10
	if _, err := WriteUpdated(io.Discard, f, &bad, false, ParseOptions{}); err != io.ErrUnexpectedEOF {
		t.Errorf("WriteUpdated body past the end: %v", err)
	}
}

// updateAll writes every message of d through WriteUpdated into a new file.
func updateAll(t testing.TB, d *Drop, src *os.File, opt ParseOptions, retr func(i int) bool) string {
	t.Helper()
	var b bytes.Buffer
	for i := range d.Msgs {
		n, err := WriteUpdated(&b, src, &d.Msgs[i], retr(i), opt)
		if err != nil {
			t.Fatal(err)
		}
		if n <= 0 {
			t.Fatalf("msg %d: %d bytes", i, n)
		}
	}
	return b.String()
}

func TestWriteUpdated(t *testing.T) {
	content := from1 + "X-UIDL: zzzzzzzzzzzzzzzzzzzz\nStatus: O\nSubject: a\nX-UIDL: second-second-second\nContent-Length: 6\n\nbody\n\n\n" +
		from2 + "Subject: b\nstatus: RO\n\nFrom inside body\n\n" +
		from3 + "Subject: headers only"
	opt := ParseOptions{UpdateStatusHeaders: true, UIDCounter: 42}
	d, f := parseString(t, content, opt)
	var b bytes.Buffer
	for i, retr := range []bool{true, false, false} {
		if _, err := WriteUpdated(&b, f, &d.Msgs[i], retr, opt); err != nil {
			t.Fatal(err)
		}
	}
	want := from1 + "X-UIDL: zzzzzzzzzzzzzzzzzzzz\nStatus: RO\nSubject: a\nContent-Length: 6\n\nbody\n\n\n" +
		from2 + "X-UIDL: " + d.Msgs[1].UID + "\nSubject: b\nstatus: RO\n\nFrom inside body\n\n" +
		from3 + "X-UIDL: " + d.Msgs[2].UID + "\nSubject: headers only\nStatus: U\n"
	if b.String() != want {
		t.Errorf("got\n%q\nwant\n%q", b.String(), want)
	}
	raw := new(bytes.Buffer)
	for i := range d.Msgs {
		if _, err := WriteRaw(raw, f, &d.Msgs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if raw.String() != content {
		t.Errorf("WriteRaw changed bytes")
	}
}

// TestWriteUpdatedIdempotent: parsing the written-back drop gives the same
// messages with their UIDs found, the same sizes (plus any Status line
// added), and writing it back again changes nothing.
func TestWriteUpdatedIdempotent(t *testing.T) {
	sep := "\x01\x01\x01\x01\n"
	drops := map[string]string{
		"mbox": from1 + "Subject: a\n\nbody\n\n" +
			from2 + "X-UIDL: keep-me-please-1\nStatus: O\nReceived: x\n\nb\r\nc\n\n" +
			from3 + "Subject: dup\n\nsame\n\n" + from3 + "Subject: dup\n\nsame\n\n" +
			from1 + "Subject: headers only\n\n" +
			from2 + "Subject: last\n\nno newline",
		"mmdf": sep + "Subject: one\n\nbody\n" + sep + sep + "Subject: two\nStatus: RO\n" + sep +
			sep + "Subject: three\n\nno newline",
	}
	for name, content := range drops {
		for _, opt := range []ParseOptions{
			{UpdateStatusHeaders: true, UIDCounter: 5},
			{},
			{UpdateStatusHeaders: true, OldStyleUID: true},
			{UpdateStatusHeaders: true, ContentLength: true, UIDCounter: 9},
		} {
			d1, f1 := parseString(t, content, opt)
			retr := func(i int) bool { return i%2 == 0 }
			out1 := updateAll(t, d1, f1, opt, retr)
			opt2 := opt
			opt2.UIDCounter += 1000 // another session
			d2, f2 := parseString(t, out1, opt2)
			if len(d2.Msgs) != len(d1.Msgs) || d2.Format != d1.Format {
				t.Fatalf("%s %+v: %d msgs, then %d", name, opt, len(d1.Msgs), len(d2.Msgs))
			}
			for i := range d1.Msgs {
				m1, m2 := d1.Msgs[i], d2.Msgs[i]
				if m1.UID != m2.UID || !m2.UIDFound {
					t.Errorf("%s %+v msg %d: UID %q then %q (found %v)", name, opt, i, m1.UID, m2.UID, m2.UIDFound)
				}
				want := m1.Size
				if !hasStatusLine(content[m1.HdrStart:m1.BodyStart]) && opt.UpdateStatusHeaders {
					want += int64(len("Status: U\n") + 1)
					if retr(i) {
						want++
					}
				}
				if m2.Size != want || m2.BodyLines != m1.BodyLines {
					t.Errorf("%s %+v msg %d: size %d then %d (want %d), lines %d then %d",
						name, opt, i, m1.Size, m2.Size, want, m1.BodyLines, m2.BodyLines)
				}
				if m2.Retrieved != (m1.Retrieved || (retr(i) && opt.UpdateStatusHeaders) ||
					(retr(i) && hasStatusLine(content[m1.HdrStart:m1.BodyStart]))) {
					t.Errorf("%s %+v msg %d: retrieved %v", name, opt, i, m2.Retrieved)
				}
			}
			out2 := updateAll(t, d2, f2, opt2, retr)
			if out2 != out1 {
				t.Errorf("%s %+v: second write-back differs:\n%q\n%q", name, opt, out1, out2)
			}
		}
	}
}

func hasStatusLine(hdr string) bool {
	for _, l := range strings.SplitAfter(hdr, "\n") {
		if hasPrefixFold([]byte(l), "Status:") {
			return true
		}
	}
	return false
}

// TestContentLengthDepthBound: a chain of lying headers is unwound to
// maxShadowDepth levels; beyond, the header is trusted as qpopper does.
func TestContentLengthDepthBound(t *testing.T) {
	var b strings.Builder
	for i := 0; i < maxShadowDepth+2; i++ {
		b.WriteString(from1 + "Content-Length: 99999\n\nx\n\n")
	}
	b.WriteString(from2 + "Subject: honest\n\nz\n")
	d, _ := parseString(t, b.String(), ParseOptions{ContentLength: true})
	if len(d.Msgs) != maxShadowDepth+1 {
		t.Fatalf("%d msgs", len(d.Msgs))
	}
	for i, m := range d.Msgs {
		if m.BadContentLength != (i < maxShadowDepth) {
			t.Errorf("msg %d: BadContentLength %v", i, m.BadContentLength)
		}
	}
}
