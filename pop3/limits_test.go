package pop3

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
)

// genMailbox holds one message that is generated as it is written, never
// held in memory: gen's, or a small header and n octets of body lines.
type genMailbox struct {
	fakeMailbox
	n    int64
	gen  func(w io.Writer) error
	size int64
}

func (m *genMailbox) Len() int { return 1 }
func (m *genMailbox) Size(int) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.size == 0 {
		c := &countWriter{}
		m.WriteMessage(c, 0, -1)
		m.size = c.n + c.lf
	}
	return m.size
}
func (m *genMailbox) WriteMessage(w io.Writer, i, bodyLines int) error {
	if m.gen != nil {
		return m.gen(w)
	}
	if _, err := io.WriteString(w, "Subject: big\n\n"); err != nil {
		return err
	}
	line := []byte(strings.Repeat("x", 75) + "\n")
	for n := int64(0); n < m.n && bodyLines != 0; n += int64(len(line)) {
		if _, err := w.Write(line); err != nil {
			return err
		}
		bodyLines--
	}
	return nil
}

// countWriter counts what it is given, and its LFs.
type countWriter struct{ n, lf int64 }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	c.lf += int64(bytes.Count(p, lf))
	return len(p), nil
}

// mailboxBackend is fakeBackend opening a mailbox of the test's own.
type mailboxBackend struct {
	fakeBackend
	mbox Mailbox
}

func (b *mailboxBackend) Pass(name, pw string) (Mailbox, error) {
	if _, err := b.fakeBackend.Pass(name, pw); err != nil {
		return nil, err
	}
	return b.mbox, nil
}

// state reports what the session did to mb at its end.
func (m *genMailbox) state() (updated, restored bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.updated != nil, m.restored
}

func logged(log *lines, want string) bool {
	log.mu.Lock()
	defer log.mu.Unlock()
	for _, l := range log.all {
		if l == want {
			return true
		}
	}
	return false
}

// A client that sends commands and never reads what comes back, or
// reads a byte now and then, loses the session within about the
// timeout, and the mailbox is updated or restored as for any lost
// client.
func TestWriteDeadline(t *testing.T) {
	const timeout = time.Second
	for _, tc := range []struct {
		name   string
		client func(c net.Conn) // runs after login, in the background
	}{
		{"RETR never read", func(c net.Conn) { io.WriteString(c, "RETR 1\r\n") }},
		{"pipelined flood never read", func(c net.Conn) {
			flood := []byte(strings.Repeat("LIST\r\nUIDL\r\nNOOP\r\n", 1000))
			for {
				if _, err := c.Write(flood); err != nil {
					return
				}
			}
		}},
		{"RETR read a byte at a time", func(c net.Conn) {
			io.WriteString(c, "RETR 1\r\n")
			var b [1]byte
			for {
				time.Sleep(20 * time.Millisecond)
				if _, err := c.Read(b[:]); err != nil {
					return
				}
			}
		}},
	} {
		for _, updateOnAbort := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/update-on-abort=%v", tc.name, updateOnAbort), func(t *testing.T) {
				t.Parallel()
				mb := &genMailbox{n: 64 << 20}
				log := &lines{}
				cfg := &Config{Hostname: "h", Version: "4.0.5", Timeout: timeout, UpdateOnAbort: updateOnAbort,
					Expire: -1, LoginDelay: -1, Log: log, ClientHost: "c", ClientIP: "192.0.2.1"}
				// Small socket buffers, so that filling them takes no time
				// even under the race detector: the bound is what follows.
				c, r, done := dialTuned(t, cfg, &mailboxBackend{mbox: mb}, func(client, server *net.TCPConn) {
					client.SetReadBuffer(32 << 10)
					server.SetWriteBuffer(32 << 10)
				})
				readLine(t, r)
				fmt.Fprint(c, "USER alice\r\nPASS secret word \r\n")
				readLine(t, r)
				if l := readLine(t, r); !strings.HasPrefix(l, "+OK alice has 1 visible message ") {
					t.Fatalf("PASS: %q", l)
				}
				c.SetReadDeadline(time.Time{})
				began := time.Now()
				go tc.client(c)
				select {
				case err := <-done:
					var we *writeError
					if !errors.As(err, &we) {
						t.Fatalf("Serve returned %v, want a write error", err)
					}
				case <-time.After(20 * timeout):
					t.Fatal("the session outlived its timeout twentyfold")
				}
				if d := time.Since(began); d < timeout || d > timeout+3*time.Second {
					t.Errorf("the session ended after %v; timeout %v", d, timeout)
				}
				if updated, restored := mb.state(); updated != updateOnAbort || restored == updateOnAbort {
					t.Errorf("update-on-abort %v: updated %v, restored %v", updateOnAbort, updated, restored)
				}
				for _, want := range []string{
					"(v4.0.5) Timeout (1 secs) during nw write to alice at c (192.0.2.1)",
					"alice at c (192.0.2.1): -ERR POP timeout from h",
				} {
					if !logged(log, want) {
						t.Errorf("not logged: %q\nlog: %q", want, log.all)
					}
				}
			})
		}
	}
}

// A client that keeps reading, however large the message, is not cut
// off by the write deadline.
func TestWriteDeadlineSpareReader(t *testing.T) {
	mb := &genMailbox{n: 8 << 20}
	cfg := &Config{Hostname: "h", Version: "4.0.5", Timeout: 200 * time.Millisecond, Expire: -1, LoginDelay: -1}
	c, r, _ := startBackend(t, cfg, &mailboxBackend{mbox: mb})
	fmt.Fprint(c, "USER alice\r\nPASS secret word \r\nRETR 1\r\n")
	readLine(t, r)
	readLine(t, r)
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if l := readLine(t, r); !strings.HasSuffix(l, " octets") {
		t.Fatalf("RETR: %q", l)
	}
	n := 0
	for {
		l := readLine(t, r)
		if l == "." {
			break
		}
		n += len(l) + 2
		if n%(1<<20) < 77 {
			time.Sleep(50 * time.Millisecond) // a slow patch, shorter than the timeout
		}
	}
	if int64(n) != mb.Size(0) {
		t.Fatalf("got %d octets, want %d", n, mb.Size(0))
	}
}

const tooMany = "-ERR Too many errors; closing the connection."

// cutOff sends 2,000 bad commands in one go, the first 20 from bad in
// turn, and expects the 20 replies want, the closing reply and the end of
// the connection. (All of it within the 64 KB the server reads away
// before it closes: more is answered with a reset, which may destroy the
// replies in flight.)
func cutOff(t *testing.T, c net.Conn, r *bufio.Reader, bad []string, want []string) {
	t.Helper()
	var b strings.Builder
	for i := 0; i < 2000; i++ {
		cmd := "XYZZY"
		if i < 20 {
			cmd = bad[i%len(bad)]
		}
		b.WriteString(cmd + "\r\n")
	}
	go io.WriteString(c, b.String())
	for i := 0; i < 20; i++ {
		if l := readLine(t, r); l != want[i%len(want)] {
			t.Fatalf("reply %d: %q, want %q", i+1, l, want[i%len(want)])
		}
	}
	if l := readLine(t, r); l != tooMany {
		t.Fatalf("after 20 bad commands: %q", l)
	}
	if l, err := r.ReadString('\n'); err != io.EOF {
		t.Fatalf("after the cut-off: %q, %v; want the end", l, err)
	}
}

func TestTooManyBadCommands(t *testing.T) {
	t.Run("before login", func(t *testing.T) {
		t.Parallel()
		log := &lines{}
		cfg := &Config{Hostname: "h", Version: "4.0.5", Expire: -1, LoginDelay: -1, Log: log, ClientHost: "c", ClientIP: "192.0.2.1"}
		c, r, done := start(t, cfg, newMailbox())
		cutOff(t, c, r, []string{"XYZZY", "", "STAT", "USER", "PASS x", "US\x01ER a", "AUTH PLAIN !!", strings.Repeat("x", 2000)},
			[]string{`-ERR Unknown command: "xyzzy".`, "-ERR Null command", `-ERR Unknown command: "stat".`,
				"-ERR Too few arguments for the user command.", `-ERR Unknown command: "pass".`, "-ERR Invalid characters in command",
				"-ERR [AUTH] AUTH PLAIN response is not valid base64.", "-ERR Command line too long"})
		if err := <-done; err != errTooManyBad {
			t.Fatalf("Serve returned %v", err)
		}
		if want := "(null) at c (192.0.2.1): " + tooMany; !logged(log, want) {
			t.Fatalf("not logged: %q\nlog: %q", want, log.all)
		}
	})
	for _, updateOnAbort := range []bool{true, false} {
		t.Run(fmt.Sprintf("after login/update-on-abort=%v", updateOnAbort), func(t *testing.T) {
			t.Parallel()
			mb := newMailbox()
			log := &lines{}
			cfg := &Config{Hostname: "h", Version: "4.0.5", Expire: -1, LoginDelay: -1, UpdateOnAbort: updateOnAbort, Log: log, ClientHost: "c", ClientIP: "192.0.2.1"}
			c, r, done := start(t, cfg, mb)
			login(t, c, r)
			fmt.Fprint(c, "DELE 1\r\n")
			readLine(t, r)
			cutOff(t, c, r, []string{"RETR", "LIST 1 2", "TOP 2", "USER alice", "RETR 1 X-MANGLE(HTML)", "XTND XMIT", "MDEF a(b)", "a b c d e f"},
				[]string{"-ERR Too few arguments for the retr command.", "-ERR Too many arguments for the list command.", "-ERR Too few arguments for the top command.",
					`-ERR Unknown command: "user".`, "-ERR Syntax error in Mangle", "-ERR XTND XMIT is not supported by this server",
					"-ERR MDEF A(B) is not supported by this server", "-ERR Too many arguments supplied."})
			if err := <-done; err != errTooManyBad {
				t.Fatalf("Serve returned %v", err)
			}
			mb.mu.Lock()
			defer mb.mu.Unlock()
			if updateOnAbort != (mb.updated != nil && mb.updated.Deleted[0]) || updateOnAbort == mb.restored {
				t.Fatalf("update-on-abort %v: updated %+v, restored %v", updateOnAbort, mb.updated, mb.restored)
			}
			if want := "alice at c (192.0.2.1): " + tooMany; !logged(log, want) {
				t.Fatalf("not logged: %q\nlog: %q", want, log.all)
			}
		})
	}
}

// Bad commands count only in a row; refusals of well-formed commands
// are not bad; the limit is the caller's.
func TestBadCommandsInARow(t *testing.T) {
	talkN := func(t *testing.T, c net.Conn, r *bufio.Reader, n int, cmd, want string) {
		t.Helper()
		for i := 0; i < n; i++ {
			fmt.Fprintf(c, "%s\r\n", cmd)
			if l := readLine(t, r); !strings.HasPrefix(l, want) {
				t.Fatalf("%q #%d: %q, want %q", cmd, i+1, l, want)
			}
		}
	}
	t.Run("19 bad, a good one, 19 bad", func(t *testing.T) {
		t.Parallel()
		c, r, _ := start(t, nil, newMailbox())
		talkN(t, c, r, 19, "XYZZY", "-ERR Unknown command")
		talkN(t, c, r, 1, "CAPA", "+OK")
		readMulti(t, r)
		talkN(t, c, r, 19, "XYZZY", "-ERR Unknown command")
		login(t, c, r)
		talkN(t, c, r, 19, "RETR", "-ERR Too few arguments")
		talkN(t, c, r, 1, "NOOP", "+OK no big woop")
		talkN(t, c, r, 19, "", "-ERR Null command")
		talkN(t, c, r, 1, "STAT", "+OK 3 111")
	})
	t.Run("refusals are not bad", func(t *testing.T) {
		t.Parallel()
		c, r, _ := start(t, nil, newMailbox())
		for i := 0; i < 25; i++ {
			talkN(t, c, r, 1, "USER alice", "+OK")
			talkN(t, c, r, 1, "PASS wrong", "-ERR [AUTH] Password supplied")
		}
		talkN(t, c, r, 25, "AUTH X-NONE", "-ERR Unknown authentication mechanism")
		talkN(t, c, r, 19, "XYZZY", "-ERR Unknown command")
		talkN(t, c, r, 1, "AUTH PLAIN", "+ ")
		talkN(t, c, r, 1, "*", "-ERR [AUTH] AUTH PLAIN cancelled.")
		talkN(t, c, r, 19, "XYZZY", "-ERR Unknown command")
		login(t, c, r)
		talkN(t, c, r, 25, "RETR 9", "-ERR Message 9 does not exist.")
		talkN(t, c, r, 1, "DELE 1", "+OK")
		talkN(t, c, r, 25, "RETR 1", "-ERR Message 1 has been deleted.")
		talkN(t, c, r, 25, "LIST x", "-ERR Message 0 does not exist.")
		talkN(t, c, r, 1, "NOOP", "+OK no big woop")
	})
	t.Run("MaxBadCommands 3", func(t *testing.T) {
		t.Parallel()
		c, r, done := start(t, &Config{Hostname: "h", Version: "4.0.5", Expire: -1, LoginDelay: -1, MaxBadCommands: 3}, newMailbox())
		talkN(t, c, r, 3, "XYZZY", "-ERR Unknown command")
		if l := readLine(t, r); l != tooMany {
			t.Fatalf("after 3 bad commands: %q", l)
		}
		if err := <-done; err != errTooManyBad {
			t.Fatalf("Serve returned %v", err)
		}
	})
	t.Run("MaxBadCommands -1", func(t *testing.T) {
		t.Parallel()
		c, r, _ := start(t, &Config{Hostname: "h", Version: "4.0.5", Expire: -1, LoginDelay: -1, MaxBadCommands: -1}, newMailbox())
		talkN(t, c, r, 100, "XYZZY", "-ERR Unknown command")
		talkN(t, c, r, 1, "QUIT", "+OK Pop server at h signing off.")
	})
}

// XTND XLST reads a header a line at a time: a header of any size costs
// a line, and a line over maxHeader ends the header there.
func TestXtndXlstBounded(t *testing.T) {
	long := strings.Repeat("x", maxHeader+1)
	mb := &fakeMailbox{msgs: []string{
		"Subject: one\r\n\tfolded\r\r\nX-Long: " + long + "\nSubject: after the long line\n\nbody\n",
		"Subject: two\n\tfolded\n\tagain\n",
	}}
	c, r, _ := start(t, nil, mb)
	loginAny(t, c, r)
	fmt.Fprint(c, "XTND XLST subject\r\n")
	if l := readLine(t, r); l != "+OK xlst command accepted; headers coming." {
		t.Fatalf("XLST: %q", l)
	}
	if got := strings.Join(readMulti(t, r), "|"); got != "1 Subject: one|\tfolded|2 Subject: two|\tfolded|\tagain" {
		t.Fatalf("XLST subject: %q", got)
	}
}

// Nothing a session holds grows with what the client sends: 20 MB of
// over-long lines, over-long SASL responses and pipelined commands,
// read and answered, leave the heap as it was.
func TestSessionMemoryFlatUnderInput(t *testing.T) {
	var b strings.Builder
	long := strings.Repeat("x", 100<<10)
	for b.Len() < 1<<20 {
		b.WriteString("CAPA\r\nUSER " + long + "\r\nAUTH PLAIN\r\n" + long + "\r\nAUTH PLAIN\r\n*\r\nXYZZY\r\n" +
			strings.Repeat("AUTH\r\nUSER alice\r\n", 50))
	}
	chunk := []byte(b.String())
	cfg := &Config{Hostname: "h", Version: "4.0.5", Expire: -1, LoginDelay: -1, Log: &discardLog{}}
	c, r, done := start(t, cfg, newMailbox())
	c.SetReadDeadline(time.Now().Add(time.Minute))
	replies := make(chan int64)
	go func() {
		n, _ := io.Copy(io.Discard, r)
		replies <- n
	}()
	live := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := live()
	growth := heapGrowth(func() {
		for i := 0; i < 20; i++ {
			if _, err := c.Write(chunk); err != nil {
				t.Fatal(err)
			}
		}
	})
	kept := int64(live()) - int64(before)
	io.WriteString(c, "QUIT\r\n")
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	c.Close()
	t.Logf("20 MB of input, %d octets of replies: heap grew by %d KB at most, %d KB kept", <-replies, growth>>10, kept>>10)
	if growth > 4<<20 || kept > 256<<10 {
		t.Fatalf("the heap grew by %d KB, and %d KB stayed", growth>>10, kept>>10)
	}
}

// discardLog is a Logger that keeps nothing.
type discardLog struct{}

func (discardLog) Notice(string) {}
func (discardLog) Info(string)   {}
func (discardLog) Debug(string)  {}
