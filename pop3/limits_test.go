package pop3

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// genMailbox holds one message of about n octets that is generated as it
// is written, never held in memory: a small header, then body lines.
type genMailbox struct {
	fakeMailbox
	n    int64
	body func(w io.Writer, n int64) error // nil: lines of 'x'
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
	if _, err := io.WriteString(w, "Subject: big\n\n"); err != nil {
		return err
	}
	if m.body != nil {
		return m.body(w, m.n)
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
	c.lf += int64(strings.Count(string(p), "\n"))
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
