package pop3

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const alternativeMsg = `From: a@example.org
Subject: both kinds
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="b1"

preamble
--b1
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

Gr=FC=DFe aus M=FCnchen,
ein sehr langer Satz, der umgebrochen wurde und wieder zusammengef=
=FCgt wird.
--b1
Content-Type: text/html

<p>Gr&uuml;&szlig;e</p>
--b1--
`

const mixedMsg = `From: a@example.org
Subject: with attachment
Mime-Version: 1.0
Content-Type: multipart/mixed;
	boundary=outer

--outer
Content-Type: text/plain

See the report.
--outer
Content-Type: application/pdf
Content-Disposition: attachment; filename="report.pdf"
Content-Transfer-Encoding: base64

JVBERi0xLjQKJcfs
--outer
Content-Type: message/rfc822

From: b@example.org
Subject: inner
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: base64

aW5uZXIgdGV4dAo=
--outer--
`

func TestMangleTextPlain(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"alternative picks the decoded plain part", alternativeMsg, "From: a@example.org\nSubject: both kinds\n" +
			"MIME-Version: 1.0\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n\n" +
			"Gr\xfc\xdfe aus M\xfcnchen,\nein sehr langer Satz, der umgebrochen wurde und wieder zusammengef\xfcgt wird.\n"},
		{"mixed keeps text, notes attachments, opens enclosed mail", mixedMsg, "From: a@example.org\nSubject: with attachment\n" +
			"MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: 8bit\n\n" +
			"See the report.\n\n[application/pdf \"report.pdf\" part not shown: 12 octets]\n\n" +
			"From: b@example.org\nSubject: inner\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\ninner text\n"},
		{"base64 text part", "Subject: b\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\naMOkbGxvDQp3b3JsZA==\n",
			"Subject: b\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nh\xc3\xa4llo\nworld\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := mangleTextPlain([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("got\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
	for _, in := range []string{
		"Subject: plain\n\nalready plain text\n",
		"Subject: no boundary\nContent-Type: multipart/mixed\n\nbody\n",
		"Subject: bad type\nContent-Type: ;;;\n\nbody\n",
		"Subject: torn\nContent-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: text/plain\n\nno end\n",
	} {
		if got, err := mangleTextPlain([]byte(in)); err != errNotMangled {
			t.Errorf("%q: mangled to %q, %v; want it sent as it is", in, got, err)
		}
	}
}

// Enclosed messages nest no deeper than maxMIMEDepth, however deep the
// message goes.
func TestMangleDepthBound(t *testing.T) {
	inner := "Subject: core\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\naGk=\n"
	for i := 0; i < 100; i++ {
		inner = fmt.Sprintf("Subject: level %d\nContent-Type: message/rfc822\n\n%s", i, inner)
	}
	got, err := mangleTextPlain([]byte(inner))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(got), "Subject: level"); n > maxMIMEDepth+2 {
		t.Fatalf("%d levels opened", n)
	}
	if !strings.Contains(string(got), "nested too deeply") {
		t.Fatalf("no note where nesting stopped:\n%s", got)
	}
}

func TestParseMangle(t *testing.T) {
	for arg, want := range map[string]bool{
		"X-MANGLE(TEXT=PLAIN)": true, "x-mangle(text=plain)": true,
		"X-MANGLE(TEXT=HTML)": false, "X-MANGLE()": false, "X-MANGLE(TEXT=PLAIN": false, "X-MANGLE": false,
	} {
		if got := parseMangle(arg); got != want {
			t.Errorf("parseMangle(%q) = %v", arg, got)
		}
	}
}

// textOnlyMailbox is a fakeMailbox of a "-no-mime" login.
type textOnlyMailbox struct{ *fakeMailbox }

func (textOnlyMailbox) TextOnly() bool { return true }

type textOnlyBackend struct{ fakeBackend }

func (b *textOnlyBackend) Pass(name, pw string) (Mailbox, error) {
	mb, err := b.fakeBackend.Pass(name, pw)
	if err != nil {
		return nil, err
	}
	return textOnlyMailbox{mb.(*fakeMailbox)}, nil
}

func mimeMailbox() *fakeMailbox {
	return &fakeMailbox{msgs: []string{alternativeMsg, "Subject: plain\n\n.starts with a dot\n"}}
}

func TestRetrTopListWithMangle(t *testing.T) {
	c, r, _ := start(t, nil, mimeMailbox())
	loginAny(t, c, r)
	want, _ := mangleTextPlain([]byte(alternativeMsg))
	wantLines := strings.Split(strings.TrimSuffix(string(want), "\n"), "\n")

	fmt.Fprint(c, "RETR 1 X-MANGLE(TEXT=PLAIN)\r\n")
	if l := readLine(t, r); l != "+OK Message follows" {
		t.Fatalf("RETR mangle: %q", l)
	}
	if got := readMulti(t, r); strings.Join(got, "\n") != strings.Join(wantLines, "\n") {
		t.Fatalf("mangled RETR:\n%q\nwant\n%q", got, wantLines)
	}
	fmt.Fprint(c, "LIST 1 x-mangle(text=plain)\r\n")
	if l := readLine(t, r); l != fmt.Sprintf("+OK 1 %d", len(want)+len(wantLines)) {
		t.Fatalf("LIST mangle: %q, want size %d", l, len(want)+len(wantLines))
	}
	fmt.Fprint(c, "TOP 1 1 X-MANGLE(TEXT=PLAIN)\r\n")
	readLine(t, r)
	top := readMulti(t, r)
	if top[len(top)-1] != "Gr\xfc\xdfe aus M\xfcnchen," || top[len(top)-2] != "" {
		t.Fatalf("mangled TOP 1 1: %q", top)
	}
	// A plain message is sent as it is, dot-stuffed as ever.
	fmt.Fprint(c, "RETR 2 X-MANGLE(TEXT=PLAIN)\r\n")
	readLine(t, r)
	if got := readMulti(t, r); got[len(got)-1] != "..starts with a dot" {
		t.Fatalf("plain message under mangle: %q", got)
	}
	for cmd, want := range map[string]string{
		"RETR 1 X-MANGLE(TEXT=HTML)":   "-ERR Syntax error in Mangle",
		"TOP 1 2 X-MANGLE(FOO)":        "-ERR Syntax error in Mangle",
		"LIST X-MANGLE(TEXT=RICH)":     "-ERR Syntax error in x-mangle",
		"RETR X-MANGLE(TEXT=PLAIN)":    "-ERR Too few arguments for the retr command.",
		"RETR 1":                       "+OK " + fmt.Sprint(len(strings.ReplaceAll(alternativeMsg, "\n", "\r\n"))) + " octets",
		"UIDL 1 X-MANGLE(TEXT=PLAIN)":  "-ERR Too many arguments for the uidl command.",
		"LIST 3 X-MANGLE(TEXT=PLAIN)":  "-ERR Message 3 does not exist.",
		"RETR 1 X-MANGLE(TEXT=PLAIN) ": "+OK Message follows",
	} {
		fmt.Fprintf(c, "%s\r\n", cmd)
		if l := readLine(t, r); l != want {
			t.Errorf("%s: %q, want %q", cmd, l, want)
		}
		if strings.HasPrefix(want, "+OK") {
			readMulti(t, r)
		}
	}
}

func TestNoMIMESessionManglesEverything(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	c, _ := net.Dial("tcp", ln.Addr().String())
	server, _ := ln.Accept()
	defer c.Close()
	b := &textOnlyBackend{fakeBackend{mb: mimeMailbox()}}
	go Serve(server, b, &Config{Hostname: "h", Version: "4.0.5", Expire: -1, LoginDelay: -1})
	r := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	readLine(t, r)
	loginAny(t, c, r)
	want, _ := mangleTextPlain([]byte(alternativeMsg))
	size := len(want) + strings.Count(string(want), "\n")
	plain := len("Subject: plain\r\n\r\n.starts with a dot\r\n")
	fmt.Fprint(c, "LIST\r\n")
	if l := readLine(t, r); l != fmt.Sprintf("+OK 2 visible messages (%d octets)", size+plain) {
		t.Fatalf("LIST: %q", l)
	}
	if got := readMulti(t, r); got[0] != fmt.Sprintf("1 %d", size) {
		t.Fatalf("LIST lines: %q", got)
	}
	fmt.Fprint(c, "RETR 1\r\n")
	if l := readLine(t, r); l != "+OK Message follows" {
		t.Fatalf("RETR: %q", l)
	}
	if got := readMulti(t, r); !strings.Contains(strings.Join(got, "\n"), "Content-Type: text/plain; charset=iso-8859-1") {
		t.Fatalf("RETR not mangled: %q", got)
	}
}

// loginAny logs alice in whatever her mailbox holds.
func loginAny(t *testing.T, c net.Conn, r *bufio.Reader) {
	t.Helper()
	fmt.Fprint(c, "USER alice\r\nPASS secret word \r\n")
	readLine(t, r)
	if l := readLine(t, r); !strings.HasPrefix(l, "+OK alice has") {
		t.Fatalf("login: %q", l)
	}
}

// countingConn counts the writes a session makes to its connection.
type countingConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

func TestChunkyWrites(t *testing.T) {
	writesForRetr := func(chunky string) int64 {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		defer ln.Close()
		c, _ := net.Dial("tcp", ln.Addr().String())
		defer c.Close()
		server, _ := ln.Accept()
		cc := &countingConn{Conn: server}
		go Serve(cc, &fakeBackend{mb: newMailbox()}, &Config{Hostname: "h", Version: "4.0.5", Expire: -1, ChunkyWrites: chunky})
		r := bufio.NewReader(c)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		readLine(t, r)
		loginAny(t, c, r)
		before := cc.writes.Load()
		fmt.Fprint(c, "RETR 2\r\n")
		readLine(t, r)
		if got := readMulti(t, r); len(got) != 5 {
			t.Fatalf("RETR 2: %q", got)
		}
		return cc.writes.Load() - before
	}
	// "+OK", five message lines, "." : one write pooled, seven unpooled.
	for chunky, want := range map[string]int64{"": 1, "always": 1, "TLS": 7, "never": 7} {
		if got := writesForRetr(chunky); got != want {
			t.Errorf("chunky-writes %q: RETR took %d writes, want %d", chunky, got, want)
		}
	}
}

// lines is a Logger that keeps what it is given.
type lines struct {
	mu  sync.Mutex
	all []string
}

func (l *lines) Notice(m string) { l.mu.Lock(); l.all = append(l.all, m); l.mu.Unlock() }
func (l *lines) Info(m string)   { l.Notice(m) }
func (l *lines) Debug(m string)  { l.Notice(m) }

func TestTimingRecord(t *testing.T) {
	for _, quit := range []bool{true, false} {
		log := &lines{}
		cfg := &Config{Hostname: "h", Version: "4.0.5", Expire: -1, Timing: true, Log: log, ClientHost: "client.example.org"}
		c, r, done := start(t, cfg, newMailbox())
		loginAny(t, c, r)
		if quit {
			fmt.Fprint(c, "QUIT\r\n")
			readLine(t, r)
		} else {
			c.Close()
		}
		<-done
		want := "(v4.0.5) Timing for alice@client.example.org (error) auth=0 init=0 clean=0"
		if quit {
			want = "(v4.0.5) Timing for alice@client.example.org (normal) auth=0 init=0 clean=0"
		}
		log.mu.Lock()
		got := log.all[len(log.all)-1]
		log.mu.Unlock()
		if got != want {
			t.Errorf("timing record %q, want %q", got, want)
		}
	}
	log := &lines{}
	c, r, done := start(t, &Config{Hostname: "h", Version: "4.0.5", Expire: -1, Log: log}, newMailbox())
	loginAny(t, c, r)
	c.Close()
	<-done
	for _, l := range log.all {
		if strings.Contains(l, "Timing") {
			t.Fatalf("timing record without the option: %q", l)
		}
	}
}

// mangleSeeds are messages for FuzzMangle and TestMangleMatchesReference:
// the shapes mangling has to get right, torn and odd ones included.
var mangleSeeds = []string{
	alternativeMsg,
	mixedMsg,
	"Content-Type: multipart/mixed; boundary=x\n\n--x\n\n--x--\n",
	"Subject: plain\n\nalready plain text\n",
	"Subject: no boundary\nContent-Type: multipart/mixed\n\nbody\n",
	"Subject: torn\nContent-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: text/plain\n\nno end\n",
	"Subject: cut header\nContent-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: text/plain\n\nfirst\n--x\nContent-Type: text/plain",
	"Subject: b\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\naMOkbGxvDQp3b3JsZA==\n",
	"Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\naGk=aGk=\n",
	"Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\naG k\tgd 29y\r\nbGQ\n",
	"Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\naGk\n",
	"Content-Type: text/html\nContent-Transfer-Encoding: base64\n\n!!!!\n",
	"Content-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\nbad =ZZ escape\n",
	"Content-Type: text/plain; charset=\"a b\"\nContent-Transfer-Encoding: quoted-printable\n\nsoft=\nbreak\r\nx=0D\n",
	"Content-Type: text/plain; charset=\"\xe4\"\nContent-Transfer-Encoding: 8bit\r\nMIME-Version: 1.0\r\nX-A: b\r\n\r\nb\xe4dy\r\n",
	"Subject: folded\nContent-Type: multipart/alternative;\n\tboundary=\"q\"\nContent-Type: text/plain\n\n--q\nContent-Type: text/html\n\n<b>x</b>\n--q\nContent-Type: multipart/related; boundary=r\n\n--r\nContent-Type: text/plain; charset=koi8-r\n\nin related\n--r--\n--q--\n",
	"Content-Type: multipart/alternative; boundary=q\n\n--q\nContent-Type: image/png\nContent-Transfer-Encoding: base64\n\niVBO\n--q\nContent-Type: text/html\n\nhtml\n--q--\n",
	"Content-Type: multipart/alternative; boundary=q\n\n--q\nContent-Type: text/html\n\nhtml\n--q\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\n!!\n--q--\n",
	"Content-Type: multipart/alternative; boundary=q\n\n--q\nContent-Type: multipart/mixed; boundary=m\n\n--m\nContent-Type: text/plain; charset=a\n\nin mixed\n--m--\n--q\nContent-Type: text/html\n\nhtml\n--q--\n",
	"Content-Type: multipart/mixed; boundary=m\r\n\r\npreamble\r\n--m\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner plain\r\n\r\ninner body\r\n--m\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\nQ29udGVudC1UeXBlOiB0ZXh0L2h0bWwNCg0KPGk+\r\n--m\r\nContent-Type: application/pdf; name=\"r.pdf\"\r\n\r\n%PDF\r\n--m--\r\nepilogue\r\n",
	"Content-Type: message/rfc822\n\nContent-Type: multipart/mixed; boundary=z\n\n--z\nContent-Type: text/plain\n\ntorn inner\n",
	"Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\nU3ViamVjdDogeA0KDQpib2R5\n!!\n",
	"Content-Type: multipart/mixed; boundary=m\n\n--m\nContent-Type: text/plain\n\nends in CR\r\n--m\nContent-Type: message/rfc822\n\nSubject: x\n\ny\r\n--m\nContent-Type: text/plain\n\n\n--m--\n",
	"Content-Type: multipart/mixed; boundary=m\n\n--m\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\nYWINCg0=\n--m\n\nimplicit plain\n--m\nContent-Type: ;;bad\n\nnote\n--m\nContent-Disposition: attachment; filename=\"f.txt\"\nContent-Type: application/x\n\nxx\n--m--",
	"Content-Type: multipart/mixed; boundary=m\n\n--m\n bad initial line\n\nx\n--m--\n",
	"Content-Type: multipart/mixed; boundary=m\n\n--m\nno colon\n\nx\n--m--\n",
	"Content-Type: multipart/mixed; boundary=m\n\n--m\nContent-Type: text/plain\n\nx\n--mm\n--m -- \n--m--\n",
	"Content-Type: multipart/mixed; boundary=m\n\n--m\nContent-Type: text/plain\n\nx\n\n--m\njunk\n--m--\n",
	"Subject: no body\nContent-Type: text/html",
	"Subject: no body\nContent-Type: text/html\n\r",
	" leading blank\nContent-Type: text/html\n\nx",
	"Content-Type:\nContent-Type: text/html\nContent-Transfer-Encoding:\ncontent-transfer-encoding: base64\n\naGk=\n",
	"Content-Type: text/plain\r\r\nContent-Transfer-Encoding: base64\r\n\r\naGk=\r\n",
	"Content-Type: multipart/mixed; boundary=m\n\n--m\nContent-Type: text/plain\n\n\x00\n--m\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\nAA==\n--m--\n",
}

// FuzzMangle: the streaming mangler makes what the in-memory one made,
// byte for byte, however its input is chunked; the size its first pass
// counts is the size RETR sends; TOP cuts it as before. And any message
// is either sent as it is or mangled into a header, a blank line and a
// body of whole lines.
func FuzzMangle(f *testing.F) {
	for _, s := range mangleSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) { checkMangle(t, msg) })
}

func TestMangleMatchesReference(t *testing.T) {
	for _, s := range mangleSeeds {
		checkMangle(t, []byte(s))
	}
	deep := "Subject: core\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\naGk=\n"
	for i := 0; i < 30; i++ {
		deep = fmt.Sprintf("Subject: level %d\nContent-Type: message/rfc822\n\n%s", i, deep)
		checkMangle(t, []byte(deep))
	}
	mp := "Subject: core\n\ncore\n"
	for i := 0; i < 30; i++ {
		mp = fmt.Sprintf("Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n%s\n--b%d\nContent-Type: text/plain\n\nafter %d\n--b%d--\n", i, i, mp, i, i, i)
		checkMangle(t, []byte(mp))
	}
}

func checkMangle(t *testing.T, msg []byte) {
	t.Helper()
	// plainHeader decides from the header alone what the first pass
	// would: whenever it says "as it is", so must the mangler.
	if plainHeader(func(w io.Writer) error { _, err := w.Write(headerOf(msg)); return err }) {
		if _, err := mangleTextPlain(msg); err != errNotMangled {
			t.Fatalf("%q: plainHeader says as it is, the mangler %v", msg, err)
		}
	}
	want, wantErr := refMangleTextPlain(msg)
	got, err := mangleTextPlain(msg)
	if err != nil && err != errNotMangled {
		t.Fatalf("%q: error %v", msg, err)
	}
	if (err == nil) != (wantErr == nil) || !bytes.Equal(got, want) {
		t.Fatalf("%q:\nmangled to %q, %v\nwas %q, %v", msg, got, err, want, wantErr)
	}
	for chunk := 1; chunk <= 7; chunk += 3 {
		p, n, err := firstPass(&chunkReader{msg, chunk})
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("%q in %d-octet reads: %v, want %v", msg, chunk, err, wantErr)
		}
		if err != nil {
			continue
		}
		if want := refMangledSize(want); n != want {
			t.Fatalf("%q: size %d counted, %d sent", msg, n, want)
		}
		var out bytes.Buffer
		if err := secondPass(&out, &chunkReader{msg, chunk + 1}, p); err != nil || !bytes.Equal(out.Bytes(), want) {
			t.Fatalf("%q in %d-octet reads: %q, %v; want %q", msg, chunk+1, out.Bytes(), err, want)
		}
		for _, lines := range []int{0, 1, 2, 5} {
			var top, refTop bytes.Buffer
			refWriteTop(&refTop, want, lines)
			if err := secondPass(newTopWriter(&top, lines), &chunkReader{msg, chunk}, p); err != nil && err != errTopDone {
				t.Fatalf("%q: TOP %d: %v", msg, lines, err)
			}
			if !bytes.Equal(top.Bytes(), refTop.Bytes()) {
				t.Fatalf("%q: TOP %d: %q, want %q", msg, lines, top.Bytes(), refTop.Bytes())
			}
		}
	}
	for _, name := range []string{"subject", "content-type", "x-a"} {
		if got, want := xlstOf(msg, name), refXlstOf(msg, name); got != want {
			t.Fatalf("%q: XTND XLST %s: %q, was %q", msg, name, got, want)
		}
	}
	if err != nil {
		return
	}
	if len(got) == 0 || got[len(got)-1] != '\n' || !strings.Contains(string(got), "\nContent-Type: text/plain") {
		t.Fatalf("mangled to %q", got)
	}
}

// xlstOf is what XTND XLST name lists of msg, its lines joined by "|".
func xlstOf(msg []byte, name string) string {
	var out bytes.Buffer
	s := &session{cfg: &Config{}, mbox: &fakeMailbox{msgs: []string{string(msg)}}, w: bufio.NewWriter(&out), out: &deadlineWriter{}}
	if err := s.xlstFields(0, name); err != nil {
		return err.Error()
	}
	s.w.Flush()
	return strings.Join(strings.SplitAfter(strings.TrimSuffix(out.String(), "\r\n"), "\r\n"), "|")
}

// refXlstOf is xlstOf as XTND XLST was before it streamed.
func refXlstOf(msg []byte, name string) string {
	var head bytes.Buffer
	(&fakeMailbox{msgs: []string{string(msg)}}).WriteMessage(&head, 0, 0)
	h, _ := refSplitHeader(head.Bytes())
	var lines []string
	for _, f := range refReadFields(h) {
		if !strings.EqualFold(f.name, name) {
			continue
		}
		for j, l := range strings.Split(strings.TrimRight(string(f.raw), "\r\n"), "\n") {
			l = strings.TrimSuffix(l, "\r")
			if j == 0 {
				l = fmt.Sprintf("%d %s", 1, l)
			}
			lines = append(lines, l+"\r\n")
		}
	}
	return strings.TrimSuffix(strings.Join(lines, "|"), "\r\n")
}

// chunkReader reads msg at most n octets at a time.
type chunkReader struct {
	msg []byte
	n   int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.msg) == 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), c.n)], c.msg)
	c.msg = c.msg[k:]
	return k, nil
}

// Past its bounds, an entity counts as unparseable, as any broken MIME:
// the message is sent as it is, an enclosed message shown as it is.
func TestMangleBounds(t *testing.T) {
	long := strings.Repeat("x", maxHeader)
	b64 := "Content-Transfer-Encoding: base64\n\naGk=\n"
	alternatives := func(n int) string {
		var b strings.Builder
		b.WriteString("Content-Type: multipart/mixed; boundary=m\n\n")
		for i := 0; i < n; i++ {
			b.WriteString("--m\nContent-Type: multipart/alternative; boundary=a\n\n--a\n\nx\n--a--\n")
		}
		b.WriteString("--m--\n")
		return b.String()
	}
	for _, tc := range []struct {
		name, msg string
		asIs      bool   // sent as it is
		contains  string // else: the mangled text has this
	}{
		{"header line", "X-Long: " + long + "\nContent-Type: text/plain\n" + b64, true, ""},
		{"header line at the limit", "X-Long: " + long[:maxHeader-9] + "\nContent-Type: text/plain\n" + b64, false, "\nhi\n"},
		{"folded Content-Type", "Content-Type: text/plain;\n\tx=\"" + long[:maxHeader/2] + "\";\n\ty=\"" + long[:maxHeader/2] + "\"\n" + b64, true, ""},
		{"part header", "Content-Type: multipart/mixed; boundary=m\n\n--m\nX-Long: " + long[:maxHeader/2] + "\nX-Long: " + long[:maxHeader/2] + "\n" + b64 + "--m--\n", true, ""},
		{"part header at the limit", "Content-Type: multipart/mixed; boundary=m\n\n--m\nX-Long: " + long[:maxHeader-70] + "\n" + b64 + "--m--\n", false, "\nhi\n"},
		{"enclosed header line", "Content-Type: message/rfc822\n\nX-Long: " + long + "\nContent-Type: text/plain\n" + b64, false, "\naGk=\n"},
		{"plan", alternatives(maxPlan/32 + 1), true, ""},
		{"plan at the limit", alternatives(maxPlan/32 - 2), false, "x\n\nx\n"},
	} {
		want, err := refMangleTextPlain([]byte(tc.msg))
		if err != nil {
			t.Fatalf("%s: the old mangler did not mangle it: %v", tc.name, err)
		}
		got, err := mangleTextPlain([]byte(tc.msg))
		switch {
		case tc.asIs && err != errNotMangled:
			t.Errorf("%s: %v, want it sent as it is", tc.name, err)
		case tc.asIs:
		case err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case !strings.Contains(string(got), tc.contains):
			t.Errorf("%s: %.200q lacks %q", tc.name, got, tc.contains)
		case strings.Contains(tc.name, "limit") && !bytes.Equal(got, want):
			t.Errorf("%s: mangled differently from the old mangler", tc.name)
		}
	}
}

// Random MIME trees, valid and broken in the ways mail is, mangle exactly
// as the old mangler did them: the byte fuzzer seldom builds deep ones.
func TestMangleRandomTrees(t *testing.T) {
	n := 3000
	if testing.Short() || raceEnabled {
		n = 300
	}
	rng := rand.New(rand.NewPCG(7, 11))
	for i := 0; i < n; i++ {
		nl := []string{"\n", "\r\n"}[rng.IntN(2)]
		msg := "From: a@example.org" + nl + randomEntity(rng, nl, 0)
		checkMangle(t, []byte(msg))
	}
}

// randomEntity is a header (with its blank line) and a body.
func randomEntity(rng *rand.Rand, nl string, depth int) string {
	pick := func(s ...string) string { return s[rng.IntN(len(s))] }
	maybe := func(p float64) bool { return rng.Float64() < p }
	var h, body strings.Builder
	if maybe(0.3) {
		h.WriteString("Subject: s" + pick("", " folded"+nl+"\tmore") + nl)
	}
	kinds := []string{"text/plain", "text/html", "application/pdf", "multipart/mixed", "multipart/alternative", "multipart/related", "message/rfc822"}
	if depth > 4 {
		kinds = kinds[:3]
	}
	kind := pick(kinds...)
	ct := kind
	switch {
	case strings.HasPrefix(kind, "multipart/"):
		ct += fmt.Sprintf("; boundary=%q", fmt.Sprintf("b%d", depth))
	case kind == "text/plain" && maybe(0.6):
		ct += "; charset=" + pick("utf-8", "iso-8859-1", "\"x y\"", "")
	case kind == "application/pdf" && maybe(0.5):
		ct += "; name=\"f.pdf\""
	}
	if !(kind == "text/plain" && maybe(0.3)) { // absent: text/plain
		h.WriteString(pick("Content-Type", "content-type", "CONTENT-TYPE") + ": " + ct + nl)
	}
	if maybe(0.2) {
		h.WriteString("Content-Disposition: attachment; filename=\"d.bin\"" + nl)
	}
	if maybe(0.2) {
		h.WriteString("MIME-Version: 1.0" + nl)
	}
	switch {
	case strings.HasPrefix(kind, "multipart/"):
		b := fmt.Sprintf("b%d", depth)
		if maybe(0.3) {
			body.WriteString("preamble" + nl)
		}
		for p, parts := 0, rng.IntN(4); p < parts; p++ {
			body.WriteString("--" + b + pick("", " ") + nl + randomEntity(rng, nl, depth+1) + nl)
		}
		if !maybe(0.1) { // torn
			body.WriteString("--" + b + "--" + pick("", nl, nl+"epilogue"+nl))
		}
	case kind == "message/rfc822":
		body.WriteString(randomEntity(rng, nl, depth+1))
	default:
		text := pick("hello", "gr\xfc\xdfe", ".dot", "", "x\r", "line one"+nl+"line two"+nl, "a\x00b") + pick("", nl)
		switch cte := pick("", "", "7bit", "base64", "quoted-printable", "8bit"); cte {
		case "base64":
			enc := base64.StdEncoding.EncodeToString([]byte(text))
			if len(enc) > 8 && maybe(0.5) {
				enc = enc[:8] + pick(nl, " ", "\t") + enc[8:]
			}
			if maybe(0.1) {
				enc += pick("!", "=", "aGk=")
			}
			h.WriteString("Content-Transfer-Encoding: " + pick("base64", "BASE64", " base64 ") + nl)
			body.WriteString(enc + nl)
		case "quoted-printable":
			h.WriteString("Content-Transfer-Encoding: quoted-printable" + nl)
			body.WriteString(strings.ReplaceAll(text, "\xfc", "=FC") + pick("", "=", "=ZZ", "soft="+nl+"break") + nl)
		default:
			if cte != "" {
				h.WriteString("Content-Transfer-Encoding: " + cte + nl)
			}
			body.WriteString(text)
		}
	}
	return h.String() + nl + body.String()
}

// headerOf is msg through its first blank line (all of it without one):
// what WriteMessage writes for TOP n 0.
func headerOf(msg []byte) []byte {
	for i := 0; i < len(msg); {
		j := bytes.IndexByte(msg[i:], '\n')
		if j < 0 {
			break
		}
		if len(bytes.TrimRight(msg[i:i+j+1], "\r\n")) == 0 {
			return msg[:i+j+1]
		}
		i += j + 1
	}
	return msg
}
