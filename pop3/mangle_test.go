package pop3

import (
	"bufio"
	"fmt"
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

// FuzzMangle: any message is either sent as it is or mangled into a
// header, a blank line and a body of whole lines.
func FuzzMangle(f *testing.F) {
	f.Add([]byte(alternativeMsg))
	f.Add([]byte(mixedMsg))
	f.Add([]byte("Content-Type: multipart/mixed; boundary=x\n\n--x\n\n--x--\n"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		got, err := mangleTextPlain(msg)
		if err != nil {
			if err != errNotMangled {
				t.Fatalf("error %v", err)
			}
			return
		}
		if len(got) == 0 || got[len(got)-1] != '\n' || !strings.Contains(string(got), "\nContent-Type: text/plain") {
			t.Fatalf("mangled to %q", got)
		}
	})
}
