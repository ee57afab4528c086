package pop3

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeMailbox is an in-memory Mailbox; the real spool is exercised by the
// end-to-end tests of cmd/popper.
type fakeMailbox struct {
	msgs     []string
	hidden   int
	mu       sync.Mutex
	updated  *Changes
	restored bool
}

func (m *fakeMailbox) Len() int    { return len(m.msgs) }
func (m *fakeMailbox) Hidden() int { return m.hidden }
func (m *fakeMailbox) Size(i int) int64 {
	return int64(len(strings.ReplaceAll(m.msgs[i], "\n", "\r\n")))
}
func (m *fakeMailbox) UID(i int) string { return fmt.Sprintf("uid-%d", i+1) }
func (m *fakeMailbox) WriteMessage(w io.Writer, i, bodyLines int) error {
	msg := m.msgs[i]
	if bodyLines >= 0 {
		head, body, _ := strings.Cut(msg, "\n\n")
		lines := strings.SplitAfter(body, "\n")
		if bodyLines < len(lines) {
			lines = lines[:bodyLines]
		}
		msg = head + "\n\n" + strings.Join(lines, "")
	}
	_, err := io.WriteString(w, msg)
	return err
}
func (m *fakeMailbox) Update(c Changes) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.updated = &c
	return nil
}
func (m *fakeMailbox) Restore() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.restored = true
	return nil
}

// fakeBackend knows alice, password "secret word ". errs, keyed by
// method ("User", "Pass", "APOP"), replaces that method's answer; calls
// records every call, e.g. `Pass["alice" "secret word "]`.
type fakeBackend struct {
	mb   *fakeMailbox
	errs map[string]error

	mu    sync.Mutex
	calls []string
}

func (b *fakeBackend) record(method string, args ...string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, fmt.Sprintf("%s%q", method, args))
	return b.errs[method]
}

func (b *fakeBackend) called() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.calls...)
}

// Name keeps names as they are, but takes "-no-mime" off, as qpopper's
// rules would.
func (b *fakeBackend) Name(arg string) string { return strings.TrimSuffix(arg, "-no-mime") }
func (b *fakeBackend) User(name string) error { return b.record("User", name) }
func (b *fakeBackend) Pass(name, pw string) (Mailbox, error) {
	if err := b.record("Pass", name, pw); err != nil {
		return nil, err
	}
	if name == "alice" && pw == "secret word " {
		return b.mb, nil
	}
	return nil, Errorf("AUTH", "Password supplied for \"%s\" is incorrect.", name)
}
func (b *fakeBackend) APOP(name, ts, digest string) (Mailbox, error) {
	if err := b.record("APOP", name, digest); err != nil {
		return nil, err
	}
	return nil, Errorf("AUTH", "authentication failure")
}

func newMailbox() *fakeMailbox {
	return &fakeMailbox{msgs: []string{
		"Subject: one\n\nbody one\n.dot line\n",
		"Subject: two\n\nline 1\nline 2\nline 3\n",
		"Subject: three\n\nno final newline",
	}}
}

// dial runs a session for b on one end of a loopback TCP pair and
// returns the other end with the greeting still unread. A nil cfg is
// qpopper's defaults for pop.example.org.
func dial(t *testing.T, cfg *Config, b Backend) (net.Conn, *bufio.Reader, chan error) {
	t.Helper()
	return dialTuned(t, cfg, b, nil)
}

// tcpPair returns the two ends of a loopback TCP connection; both are
// closed when the test ends.
func tcpPair(t testing.TB) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if client, err = net.Dial("tcp", ln.Addr().String()); err != nil {
		t.Fatal(err)
	}
	if server, err = ln.Accept(); err != nil {
		client.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// dialTuned is dial with tune, when not nil, run on both ends before the
// session starts.
func dialTuned(t *testing.T, cfg *Config, b Backend, tune func(client, server *net.TCPConn)) (net.Conn, *bufio.Reader, chan error) {
	t.Helper()
	client, server := tcpPair(t)
	if tune != nil {
		tune(client.(*net.TCPConn), server.(*net.TCPConn))
	}
	if cfg == nil {
		cfg = &Config{Hostname: "pop.example.org", Version: "4.0.5", UpdateOnAbort: true, Expire: -1, LoginDelay: -1}
	}
	done := make(chan error, 1)
	go func() { done <- Serve(server, b, cfg); server.Close() }()
	t.Cleanup(func() { client.Close() })
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	return client, bufio.NewReader(client), done
}

// start runs a session on mb and reads qpopper's greeting.
func start(t *testing.T, cfg *Config, mb *fakeMailbox) (net.Conn, *bufio.Reader, chan error) {
	t.Helper()
	return startBackend(t, cfg, &fakeBackend{mb: mb})
}

// startBackend is start for a backend of the test's own.
func startBackend(t *testing.T, cfg *Config, b Backend) (net.Conn, *bufio.Reader, chan error) {
	t.Helper()
	client, r, done := dial(t, cfg, b)
	greet, _ := r.ReadString('\n')
	if !strings.HasPrefix(greet, "+OK Qpopper (version 4.0.5) at ") {
		t.Fatalf("greeting %q", greet)
	}
	return client, r, done
}

func readLine(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	l, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if !strings.HasSuffix(l, "\r\n") {
		t.Fatalf("line without CRLF: %q", l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

func readMulti(t *testing.T, r *bufio.Reader) []string {
	t.Helper()
	var out []string
	for {
		l := readLine(t, r)
		if l == "." {
			return out
		}
		out = append(out, l)
	}
}

func login(t *testing.T, c net.Conn, r *bufio.Reader) {
	t.Helper()
	fmt.Fprint(c, "USER alice\r\nPASS secret word \r\n")
	if l := readLine(t, r); l != "+OK Password required for alice." {
		t.Fatalf("USER: %q", l)
	}
	if l := readLine(t, r); l != "+OK alice has 3 visible messages (0 hidden) in 111 octets." {
		t.Fatalf("PASS: %q", l)
	}
}

// The protocol table: every command in each state, with good and bad
// arguments. want is a prefix of the status line.
func TestCommandTable(t *testing.T) {
	type step struct {
		cmd, want string
		multi     bool
	}
	auth := []step{
		{"STAT", "-ERR Unknown command: \"stat\".", false},
		{"LIST", "-ERR Unknown command", false},
		{"RETR 1", "-ERR Unknown command", false},
		{"DELE 1", "-ERR Unknown command", false},
		{"UIDL", "-ERR Unknown command", false},
		{"TOP 1 1", "-ERR Unknown command", false},
		{"RSET", "-ERR Unknown command", false},
		{"NOOP", "-ERR Unknown command", false},
		{"LAST", "-ERR Unknown command", false},
		{"PASS x", "-ERR Unknown command", false},
		{"USER", "-ERR Too few arguments for the user command.", false},
		{"USER a b", "-ERR Too many arguments for the user command.", false},
		{"APOP alice", "-ERR Too few arguments", false},
		{"APOP alice 0123", "-ERR [AUTH] authentication failure", false},
		{"STLS", "-ERR Command not enabled", false},
		{"AUTH X-UNKNOWN", "-ERR Unknown authentication mechanism: X-UNKNOWN", false},
		{"AUTH", "+OK Supported authentication mechanisms:", true},
		{"XYZZY", "-ERR Unknown command: \"xyzzy\".", false},
		{"", "-ERR Null command", false},
		{"USER al\x01ice", "-ERR Invalid characters", false},
		{"CAPA", "+OK Capability list follows", true},
		{"uSeR alice", "+OK Password required for alice.", false},
		{"APOP alice x", "-ERR Unknown command", false},
		{"PASS wrong", "-ERR [AUTH] Password supplied for \"alice\" is incorrect.", false},
		{"PASS x", "-ERR Unknown command", false}, // back in AUTHORIZATION
		{"USER alice", "+OK", false},
		{"PASS secret word ", "+OK alice has 3 visible messages (0 hidden) in 111 octets.", false},
	}
	trans := []step{
		{"USER alice", "-ERR Unknown command", false},
		{"PASS x", "-ERR Unknown command", false},
		{"APOP a b", "-ERR Unknown command", false},
		{"STLS", "-ERR Unknown command", false},
		{"AUTH", "-ERR Unknown command: \"auth\".", false},
		{"AUTH PLAIN AGFsaWNlAHNlY3JldCB3b3JkIA==", "-ERR Unknown command: \"auth\".", false},
		{"STAT", "+OK 3 111", false},
		{"STAT 1", "-ERR Too many arguments for the stat command.", false},
		{"LIST", "+OK 3 visible messages (111 octets)", true},
		{"LIST 2", "+OK 2 40", false},
		// Message numbers are C's atoi of the argument (pop_list.c).
		{"LIST 0", "-ERR Message 0 does not exist.", false},
		{"LIST 4", "-ERR Message 4 does not exist.", false},
		{"LIST -1", "-ERR Message -1 does not exist.", false},
		{"LIST +1", "+OK 1 37", false},
		{"LIST abc", "-ERR Message 0 does not exist.", false},
		{"LIST 2x", "+OK 2 40", false},
		{"LIST 4294967297", "+OK 1 37", false},                                  // int32 of 2^32+1
		{"LIST 99999999999999999999", "-ERR Message -1 does not exist.", false}, // LONG_MAX as an int
		{"LIST 1 2", "-ERR Too many arguments for the list command.", false},
		{"UIDL", "+OK uidl command accepted.", true},
		{"UIDL 3", "+OK 3 uid-3", false},
		// pop_uidl.c's own texts; its count is msg_count (hidden ones too).
		{"UIDL 0", "-ERR Parameter must be a number between 1 and 3", false},
		{"UIDL x", "-ERR Parameter must be a number between 1 and 3", false},
		{"UIDL 4", "-ERR Message 4 out of range.", false},
		{"UIDL -2", "-ERR Message -2 out of range.", false},
		{"RETR", "-ERR Too few arguments for the retr command.", false},
		{"RETR 0", "-ERR Message 0 does not exist.", false},
		{"RETR x", "-ERR Message 0 does not exist.", false},
		{"RETR 1 2", "-ERR Too many arguments", false},
		{"RETR 1", "+OK 37 octets", true},
		{"TOP 2", "-ERR Too few arguments", false},
		{"TOP 2 x", "+OK Message follows", true},  // atoi: 0 lines
		{"TOP 2 -1", "+OK Message follows", true}, // the whole message
		{"TOP x 1", "-ERR Message 0 does not exist.", false},
		{"TOP 9 1", "-ERR Message 9 does not exist.", false},
		{"TOP 2 1", "+OK Message follows", true},
		{"TOP 2 99999999", "+OK Message follows", true},
		{"LAST", "+OK 0 is the last read message.", false},
		{"DELE", "-ERR Too few arguments", false},
		{"DELE x", "-ERR Message 0 does not exist.", false},
		{"DELE 2", "+OK Message 2 has been deleted.", false},
		{"DELE 2", "+OK Message 2 has been deleted.", false}, // qpopper's: again +OK
		{"LAST", "+OK 2 is the last read message.", false},
		{"RETR 2", "-ERR Message 2 has been deleted.", false},
		{"TOP 2 0", "-ERR Message 2 has been deleted.", false},
		{"LIST 2", "-ERR Message 2 has been deleted.", false},
		{"UIDL 2", "-ERR Message 2 has been marked for deletion.", false},
		{"STAT", "+OK 2 71", false},
		{"RSET", "+OK Maildrop has 3 messages (111 octets)", false},
		{"STAT", "+OK 3 111", false},
		{"NOOP", "+OK no big woop", false},
		{"NOOP x", "-ERR Too many arguments", false},
		{"CAPA", "+OK Capability list follows", true},
		{"XTND XMIT", "-ERR XTND XMIT is not supported by this server", false},
		{"XTND XLST Subject", "+OK xlst command accepted; headers coming.", true},
		{"XTND XLST Subject 9", "-ERR Message 9 does not exist.", false},
		{"XTND XLST", "-ERR Too few arguments for the xlst command.", false},
		{"MDEF a(b)", "-ERR MDEF A(B) is not supported by this server", false},
		{"DELE 3", "+OK", false},
		{"QUIT", "+OK Pop server at pop.example.org signing off.", false},
	}
	mb := newMailbox()
	c, r, done := start(t, nil, mb)
	for _, st := range append(auth, trans...) {
		fmt.Fprintf(c, "%s\r\n", st.cmd)
		got := readLine(t, r)
		if !strings.HasPrefix(got, st.want) {
			t.Fatalf("%q: got %q, want %q...", st.cmd, got, st.want)
		}
		if st.multi {
			readMulti(t, r)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if mb.updated == nil || !mb.updated.Deleted[2] || mb.updated.Deleted[1] || !mb.updated.Retrieved[0] {
		t.Fatalf("update = %+v", mb.updated)
	}
}

func TestRetrStuffingAndUnterminatedLastLine(t *testing.T) {
	c, r, _ := start(t, nil, newMailbox())
	login(t, c, r)
	fmt.Fprint(c, "RETR 1\r\nRETR 3\r\nTOP 2 1\r\nTOP 2 0\r\n")
	if l := readLine(t, r); l != "+OK 37 octets" {
		t.Fatalf("RETR 1: %q", l)
	}
	if got := strings.Join(readMulti(t, r), "|"); got != "Subject: one||body one|..dot line" {
		t.Fatalf("RETR 1 body %q", got)
	}
	readLine(t, r)
	if got := strings.Join(readMulti(t, r), "|"); got != "Subject: three||no final newline" {
		t.Fatalf("RETR 3 body %q", got)
	}
	readLine(t, r)
	if got := strings.Join(readMulti(t, r), "|"); got != "Subject: two||line 1" {
		t.Fatalf("TOP 2 1 %q", got)
	}
	readLine(t, r)
	if got := strings.Join(readMulti(t, r), "|"); got != "Subject: two|" {
		t.Fatalf("TOP 2 0 %q", got)
	}
}

// A deep pipeline sent in one write is answered in order.
func TestPipelining(t *testing.T) {
	c, r, _ := start(t, nil, newMailbox())
	login(t, c, r)
	var b strings.Builder
	for i := 0; i < 300; i++ {
		fmt.Fprintf(&b, "LIST %d\r\nNOOP\r\n", i%3+1)
	}
	go io.WriteString(c, b.String())
	for i := 0; i < 300; i++ {
		if l := readLine(t, r); !strings.HasPrefix(l, fmt.Sprintf("+OK %d ", i%3+1)) {
			t.Fatalf("answer %d: %q", i, l)
		}
		if l := readLine(t, r); l != "+OK no big woop" {
			t.Fatalf("answer %d: %q", i, l)
		}
	}
}

func TestLongLines(t *testing.T) {
	c, r, _ := start(t, nil, newMailbox())
	ok := "USER " + strings.Repeat("a", 249) // 254 + CRLF = 256
	fmt.Fprintf(c, "%s\r\n", ok)
	if l := readLine(t, r); !strings.HasPrefix(l, "+OK Password required") {
		t.Fatalf("255-octet command: %q", l)
	}
	for _, n := range []int{1024, 64 << 10, 10 << 20} {
		go func() { io.WriteString(c, "USER "+strings.Repeat("x", n)+"\r\nNOOP\r\n") }()
		if l := readLine(t, r); l != "-ERR Command line too long" {
			t.Fatalf("%d bytes: %q", n, l)
		}
		// The rest of the long line was discarded, not run as commands.
		if l := readLine(t, r); !strings.HasPrefix(l, "-ERR Unknown command: \"noop\"") {
			t.Fatalf("after %d bytes: %q", n, l)
		}
	}
	fmt.Fprint(c, "QUIT\n") // bare LF ends a command too
	if l := readLine(t, r); !strings.HasPrefix(l, "+OK Pop server") {
		t.Fatalf("QUIT: %q", l)
	}
}

func TestTimeoutRunsUpdateOnAbort(t *testing.T) {
	for _, updateOnAbort := range []bool{true, false} {
		mb := newMailbox()
		cfg := &Config{Hostname: "h", Version: "4.0.5", Timeout: 200 * time.Millisecond, UpdateOnAbort: updateOnAbort, Expire: -1, LoginDelay: -1}
		c, r, done := start(t, cfg, mb)
		login(t, c, r)
		fmt.Fprint(c, "DELE 1\r\n")
		readLine(t, r)
		if l := readLine(t, r); l != "-ERR POP timeout from h" {
			t.Fatalf("timeout: %q", l)
		}
		// qpopper's state loop ends, and signs off (popper.c).
		if l := readLine(t, r); l != "+OK Pop server at h signing off." {
			t.Fatalf("after the timeout: %q", l)
		}
		<-done
		if updateOnAbort && (mb.updated == nil || !mb.updated.Deleted[0]) {
			t.Fatalf("update-on-abort: update = %+v", mb.updated)
		}
		if !updateOnAbort && (mb.updated != nil || !mb.restored) {
			t.Fatalf("no update-on-abort: updated %+v restored %v", mb.updated, mb.restored)
		}
	}
}

func TestCapaExactLines(t *testing.T) {
	cfg := &Config{Hostname: "h", Version: "4.0.5", LoginDelay: 0, Expire: 0, Implementation: "Qpopper-version-4.0.5", Shy: true}
	c, r, _ := start2(t, cfg)
	if got := strings.Join(capaLines(t, c, r), ","); got != "TOP,USER,LOGIN-DELAY 0,EXPIRE 0,UIDL,RESP-CODES,AUTH-RESP-CODE,X-MANGLE,X-LOCALTIME <now>,PIPELINING,SASL PLAIN" {
		t.Fatalf("CAPA before login (shy) = %s", got)
	}
	// clear-text-password never: no USER (pop_extend.c).
	cfg = &Config{Hostname: "h", Version: "4.0.5", LoginDelay: -1, Expire: 30, ClearText: "never"}
	c, r, _ = start(t, cfg, newMailbox())
	if got := strings.Join(capaLines(t, c, r), ","); got != "TOP,EXPIRE 30,UIDL,RESP-CODES,AUTH-RESP-CODE,X-MANGLE,X-LOCALTIME <now>,PIPELINING" {
		t.Fatalf("CAPA, clear-text never = %s", got)
	}
}

// start2 is start for a shy banner.
func start2(t *testing.T, cfg *Config) (net.Conn, *bufio.Reader, chan error) {
	t.Helper()
	client, r, done := dial(t, cfg, &fakeBackend{mb: newMailbox()})
	if g := readLine(t, r); !strings.HasPrefix(g, "+OK ready  <") {
		t.Fatalf("shy greeting %q", g)
	}
	return client, r, done
}

func FuzzSession(f *testing.F) {
	f.Add("USER alice\r\nPASS secret word \r\nLIST\r\nRETR 1\r\nDELE 1\r\nTOP 2 0\r\nQUIT\r\n")
	f.Add("CAPA\nUIDL 1\nSTAT\n")
	f.Add("USER alice\r\nPASS secret word \r\nXTND XLST Subject\r\nRETR 1 X-MANGLE(TEXT=PLAIN)\r\nLIST X-MANGLE(TEXT=PLAIN)\r\nAUTH\r\n")
	f.Add("AUTH\r\nAUTH PLAIN AGFsaWNlAHNlY3JldCB3b3JkIA==\r\nSTAT\r\nAUTH PLAIN\r\n")
	f.Add("AUTH PLAIN\r\nYWxpY2UAYWxpY2UAc2VjcmV0IHdvcmQg\r\nRETR 2\r\n")
	f.Add("AUTH PLAIN =\r\nAUTH PLAIN\r\n*\r\nAUTH PLAIN !!\r\nAUTH PLAIN\r\nAGFsaWNl\r\nAUTH plain AGFsaWNlAA==\r\n")
	f.Add(strings.Repeat("XYZZY\r\n", 19) + "NOOP\r\n" + strings.Repeat("\r\n", 25))
	f.Fuzz(func(t *testing.T, input string) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Skip(err)
		}
		defer ln.Close()
		client, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Skip(err)
		}
		defer client.Close()
		server, err := ln.Accept()
		if err != nil {
			t.Skip(err)
		}
		cfg := &Config{Hostname: "h", Version: "4.0.5", Timeout: time.Second, Expire: -1, LoginDelay: -1}
		done := make(chan error, 1)
		go func() { done <- Serve(server, &fakeBackend{mb: newMailbox()}, cfg); server.Close() }()
		go func() {
			io.WriteString(client, input+"\r\nQUIT\r\n")
			// All is sent: a server that reads on (a SASL exchange, the
			// input a cut-off reads away) sees the end at once.
			client.(*net.TCPConn).CloseWrite()
		}()
		r := bufio.NewReader(client)
		client.SetReadDeadline(time.Now().Add(5 * time.Second))
		inBody := false
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				break
			}
			switch {
			case inBody && l == ".\r\n":
				inBody = false
			case inBody:
			case l == "+ \r\n": // SASL challenge
			case strings.HasPrefix(l, "+OK"):
				inBody = strings.Contains(l, "follows") || strings.Contains(l, "octets") && !strings.Contains(l, "has") ||
					strings.Contains(l, "accepted") || strings.Contains(l, "visible messages (") || strings.Contains(l, "mechanisms:")
			case strings.HasPrefix(l, "-ERR"):
			default:
				t.Fatalf("reply %q is neither +OK nor -ERR", l)
			}
		}
		<-done
	})
}

// A hangup (SIGHUP to the process) ends the session as a lost client
// does: qpopper's -ERR, then the update (update-on-abort) or a restore.
func TestHangupEndsSession(t *testing.T) {
	for _, updateOnAbort := range []bool{true, false} {
		hup := make(chan struct{})
		log := &lines{}
		mb := newMailbox()
		cfg := &Config{Hostname: "h", Version: "4.0.5", Expire: -1, UpdateOnAbort: updateOnAbort, Hangup: hup, Log: log, ClientHost: "c", ClientIP: "192.0.2.1"}
		c, r, done := start(t, cfg, mb)
		login(t, c, r)
		fmt.Fprint(c, "DELE 1\r\n")
		readLine(t, r)
		close(hup)
		if l := readLine(t, r); l != "-ERR POP hangup from h" {
			t.Fatalf("after hangup: %q", l)
		}
		if l := readLine(t, r); l != "+OK Pop server at h signing off." {
			t.Fatalf("after the hangup's -ERR: %q", l)
		}
		if err := <-done; err != errHangup {
			t.Fatalf("Serve returned %v", err)
		}
		if updateOnAbort != (mb.updated != nil && mb.updated.Deleted[0]) || updateOnAbort == mb.restored {
			t.Fatalf("update-on-abort %v: updated %+v restored %v", updateOnAbort, mb.updated, mb.restored)
		}
		if got := strings.Join(log.all, "\n"); !strings.Contains(got, "alice at c (192.0.2.1): -ERR POP hangup from h") {
			t.Fatalf("log:\n%s", got)
		}
	}
}

func TestXtndXlst(t *testing.T) {
	mb := &fakeMailbox{msgs: []string{
		"Subject: one\nReceived: by a;\n\tSat, 28 Nov 2026\nreceived: by b\n\nbody\nReceived: not a header\n",
		"Subject: two\n\n",
		"Subject: three\r\nReceived: by c\r\n\r\n",
	}}
	c, r, _ := start(t, nil, mb)
	loginAny(t, c, r)
	fmt.Fprint(c, "DELE 2\r\nXTND XLST received\r\nXTND XLST Subject: 3\r\n")
	readLine(t, r)
	if l := readLine(t, r); l != "+OK xlst command accepted; headers coming." {
		t.Fatalf("XLST: %q", l)
	}
	if got := strings.Join(readMulti(t, r), "|"); got != "1 Received: by a;|\tSat, 28 Nov 2026|1 received: by b|3 Received: by c" {
		t.Fatalf("XLST received: %q", got)
	}
	readLine(t, r)
	if got := strings.Join(readMulti(t, r), "|"); got != "3 Subject: three" {
		t.Fatalf("XLST Subject 3: %q", got)
	}
}

// The records name the user as qpopper's p->user holds it: the name
// USER gave, kept after USER or PASS is refused; "(null)" only in the
// -ERR record before any USER, the empty name raw in the others
// (pop_msg.c, popper.c). A refusal's own records follow its -ERR.
func TestLogRecordsName(t *testing.T) {
	log := &lines{}
	after := &Error{Code: "AUTH", Text: `Password supplied for "bob" is incorrect.`, Log: []string{"failed login of bob"}}
	b := &fakeBackend{mb: newMailbox(), errs: map[string]error{"Pass": after}}
	cfg := &Config{Hostname: "h", Version: "4.0.5", Expire: -1, LoginDelay: -1, Timeout: 300 * time.Millisecond,
		Log: log, ClientHost: "c", ClientIP: "192.0.2.1"}
	c, r, done := startBackend(t, cfg, b)
	talk(t, c, r, []exchange{{"STAT", `-ERR Unknown command: "stat".`}})
	talk(t, c, r, []exchange{{strings.Repeat("x", 2000), "-ERR Command line too long"}})
	talk(t, c, r, []exchange{
		{"USER bob-no-mime", "+OK Password required for bob."},
		{"PASS wrong", `-ERR [AUTH] Password supplied for "bob" is incorrect.`},
		{"STAT", `-ERR Unknown command: "stat".`},
	})
	readLine(t, r) // the timeout's -ERR
	<-done
	log.mu.Lock()
	defer log.mu.Unlock()
	want := []string{
		`(null) at c (192.0.2.1): -ERR Unknown command: "stat".`,
		"Excessive input from  c (192.0.2.1); discarded 2002 bytes",
		"(null) at c (192.0.2.1): -ERR Command line too long",
		`bob at c (192.0.2.1): -ERR [AUTH] Password supplied for "bob" is incorrect.`,
		"failed login of bob",
		`bob at c (192.0.2.1): -ERR Unknown command: "stat".`,
		"(v4.0.5) Timeout (0 secs) during nw read from bob at c (192.0.2.1)",
		"bob at c (192.0.2.1): -ERR POP timeout from h",
	}
	if !slices.Equal(log.all, want) {
		t.Errorf("records\n got %q\nwant %q", log.all, want)
	}
}
