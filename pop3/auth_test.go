package pop3

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/popperd/popper/compat"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// exchange is one command line and its exact one-line reply.
type exchange struct{ send, want string }

func talk(t *testing.T, c net.Conn, r *bufio.Reader, steps []exchange) {
	t.Helper()
	for _, st := range steps {
		fmt.Fprintf(c, "%s\r\n", st.send)
		if got := readLine(t, r); got != st.want {
			t.Fatalf("%.60q: got %q, want %q", st.send, got, st.want)
		}
	}
}

// capaLines sends CAPA and returns its capability lines, the date of
// X-LOCALTIME checked and replaced by "<now>".
func capaLines(t *testing.T, c net.Conn, r *bufio.Reader) []string {
	t.Helper()
	fmt.Fprint(c, "CAPA\r\n")
	if l := readLine(t, r); l != "+OK Capability list follows" {
		t.Fatalf("CAPA: %q", l)
	}
	return localTimeIsNow(t, readMulti(t, r))
}

// localTimeIsNow checks that the X-LOCALTIME line has the server's time
// in compat.LocalTimeFormat, and replaces it by "X-LOCALTIME <now>".
func localTimeIsNow(t *testing.T, capa []string) []string {
	t.Helper()
	for i, l := range capa {
		date, ok := strings.CutPrefix(l, "X-LOCALTIME ")
		if !ok {
			continue
		}
		at, err := time.Parse(compat.LocalTimeFormat, date)
		if err != nil || time.Since(at).Abs() > time.Minute {
			t.Fatalf("%q is not the time now (%v)", l, err)
		}
		capa[i] = "X-LOCALTIME <now>"
	}
	return capa
}

// probe sends a bare AUTH and returns the mechanisms it lists.
func probe(t *testing.T, c net.Conn, r *bufio.Reader) []string {
	t.Helper()
	fmt.Fprint(c, "AUTH\r\n")
	if l := readLine(t, r); l != "+OK Supported authentication mechanisms:" {
		t.Fatalf("AUTH: %q", l)
	}
	return readMulti(t, r)
}

const (
	aliceOK     = "+OK alice has 3 visible messages (0 hidden) in 111 octets."
	stillAuth   = `-ERR Unknown command: "stat".` // STAT before login
	errForm     = "-ERR [AUTH] AUTH PLAIN response must be authzid NUL authcid NUL password."
	errBase64   = "-ERR [AUTH] AUTH PLAIN response is not valid base64."
	errProxy    = "-ERR [AUTH] AUTH PLAIN authorization identity must be empty or the user name."
	errName     = "-ERR [AUTH] AUTH PLAIN user name has invalid characters."
	errCancel   = "-ERR [AUTH] AUTH PLAIN cancelled."
	errStronger = "-ERR [AUTH] You must use stronger authentication such as APOP to connect to this server"
	errTLS      = "-ERR [AUTH] You must use TLS/SSL or stronger authentication such as APOP to connect to this server"
)

var alicePlain = b64("\x00alice\x00secret word ")

func TestAuthPlain(t *testing.T) {
	aliceCalls := []string{`User["alice"]`, `Pass["alice" "secret word "]`}
	for _, tc := range []struct {
		name  string
		errs  map[string]error
		talk  []exchange
		calls []string // the Backend calls; nil = not checked
	}{
		{"initial response", nil, []exchange{{"AUTH PLAIN " + alicePlain, aliceOK}, {"STAT", "+OK 3 111"}}, aliceCalls},
		{"authzid is authcid", nil, []exchange{{"AUTH PLAIN " + b64("alice\x00alice\x00secret word "), aliceOK}}, aliceCalls},
		{"challenge", nil, []exchange{{"AUTH PLAIN", "+ "}, {alicePlain, aliceOK}, {"STAT", "+OK 3 111"}}, aliceCalls},
		{"mechanism in lower case", nil, []exchange{{"auth plain", "+ "}, {alicePlain, aliceOK}}, aliceCalls},
		{"= is an empty response", nil, []exchange{{"AUTH PLAIN =", errForm}, {"STAT", stillAuth}}, []string{}},
		{"empty response line", nil, []exchange{{"AUTH PLAIN", "+ "}, {"", errForm}}, []string{}},
		{"cancelled", nil, []exchange{{"AUTH PLAIN", "+ "}, {"*", errCancel}, {"STAT", stillAuth}}, []string{}},
		{"* is no initial response", nil, []exchange{{"AUTH PLAIN *", errBase64}}, []string{}},
		{"bad base64 initial response", nil, []exchange{{"AUTH PLAIN !!!!", errBase64}, {"STAT", stillAuth}}, []string{}},
		{"bad base64 response", nil, []exchange{{"AUTH PLAIN", "+ "}, {"AGFsaWNl=", errBase64}}, []string{}},
		{"one NUL", nil, []exchange{{"AUTH PLAIN " + b64("alice\x00secret word "), errForm}}, []string{}},
		{"three NULs", nil, []exchange{{"AUTH PLAIN " + b64("\x00alice\x00secret\x00word "), errForm}}, []string{}},
		{"no authcid", nil, []exchange{{"AUTH PLAIN " + b64("\x00\x00secret word "), errForm}}, []string{}},
		{"no password", nil, []exchange{{"AUTH PLAIN " + b64("\x00alice\x00"), errForm}}, []string{}},
		{"another user's authzid", nil, []exchange{{"AUTH PLAIN " + b64("bob\x00alice\x00secret word "), errProxy}, {"STAT", stillAuth}}, []string{}},
		{"space in user name", nil, []exchange{{"AUTH PLAIN " + b64("\x00al ice\x00secret word "), errName}}, []string{}},
		{"control character in user name", nil, []exchange{{"AUTH PLAIN " + b64("\x00alice\r\n\x00secret word "), errName}}, []string{}},
		{"wrong password", nil, []exchange{
			{"AUTH PLAIN " + b64("\x00alice\x00wrong"), `-ERR [AUTH] Password supplied for "alice" is incorrect.`},
			{"STAT", stillAuth},
			{"AUTH PLAIN " + alicePlain, aliceOK},
		}, []string{`User["alice"]`, `Pass["alice" "wrong"]`, `User["alice"]`, `Pass["alice" "secret word "]`}},
		{"User refuses", map[string]error{"User": Errorf("AUTH", "\"alice\": access denied.")}, []exchange{
			{"AUTH PLAIN " + alicePlain, `-ERR [AUTH] "alice": access denied.`},
			{"STAT", stillAuth},
		}, []string{`User["alice"]`}},
		{"Pass fails", map[string]error{"Pass": errors.New("disk on fire")}, []exchange{
			{"AUTH PLAIN " + alicePlain, "-ERR [SYS/TEMP] disk on fire"},
		}, aliceCalls},
		{"unknown mechanism", nil, []exchange{{"AUTH CRAM-MD5", "-ERR Unknown authentication mechanism: CRAM-MD5"}}, []string{}},
		{"too many arguments", nil, []exchange{{"AUTH PLAIN " + alicePlain + " x", "-ERR Too many arguments for the auth command."}}, []string{}},
		{"after USER", nil, []exchange{
			{"USER bob", "+OK Password required for bob."},
			{"AUTH PLAIN " + alicePlain, aliceOK},
		}, []string{`User["bob"]`, `User["alice"]`, `Pass["alice" "secret word "]`}},
		{"a failed AUTH forgets USER", nil, []exchange{
			{"USER alice", "+OK Password required for alice."},
			{"AUTH PLAIN =", errForm},
			{"PASS secret word ", `-ERR Unknown command: "pass".`},
		}, []string{`User["alice"]`}},
		{"over-long response", nil, []exchange{
			{"AUTH PLAIN", "+ "},
			{strings.Repeat("A", maxLine), "-ERR Command line too long"},
			{"STAT", stillAuth},
		}, []string{}},
		{"long response within the line limit", nil, []exchange{
			{"AUTH PLAIN", "+ "},
			{strings.Repeat("A", maxLine-4), errForm}, // decodes, but has no NUL
		}, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &fakeBackend{mb: newMailbox(), errs: tc.errs}
			c, r, _ := startBackend(t, nil, b)
			talk(t, c, r, tc.talk)
			if got := b.called(); tc.calls != nil && !slices.Equal(got, tc.calls) {
				t.Fatalf("Backend calls %q, want %q", got, tc.calls)
			}
		})
	}
}

// The refusals of AUTH PLAIN are logged under the authcid, as PASS's are
// under USER's name.
func TestAuthPlainLogsUser(t *testing.T) {
	log := &lines{}
	cfg := &Config{Hostname: "h", Version: "4.0.5", Expire: -1, LoginDelay: -1, Log: log, ClientHost: "c", ClientIP: "192.0.2.1"}
	c, r, _ := start(t, cfg, newMailbox())
	talk(t, c, r, []exchange{{"AUTH PLAIN " + b64("\x00alice\x00wrong"), `-ERR [AUTH] Password supplied for "alice" is incorrect.`}})
	want := `alice at c (192.0.2.1): -ERR [AUTH] Password supplied for "alice" is incorrect.`
	log.mu.Lock()
	defer log.mu.Unlock()
	if !slices.Contains(log.all, want) {
		t.Fatalf("log %q lacks %q", log.all, want)
	}
}

// AUTH PLAIN, its CAPA line and the AUTH probe follow the clear-text
// policy that USER follows; a refusal comes before the challenge, so the
// password is never sent.
func TestAuthPlainClearTextPolicy(t *testing.T) {
	for _, tc := range []struct {
		clearText, ip string
		implicitTLS   bool
		refusal       string // "" = allowed
	}{
		{"", "192.0.2.1", false, ""},
		{"default", "192.0.2.1", false, ""},
		{"always", "192.0.2.1", false, ""},
		{"never", "127.0.0.1", false, errStronger},
		{"never", "127.0.0.1", true, errStronger},
		{"TLS", "127.0.0.1", false, errTLS},
		{"TLS", "192.0.2.1", true, ""},
		{"local", "127.0.0.1", false, ""},
		{"local", "192.0.2.1", false, errStronger},
		{"local", "192.0.2.1", true, errStronger},
	} {
		t.Run(fmt.Sprintf("%s from %s, implicit TLS %v", tc.clearText, tc.ip, tc.implicitTLS), func(t *testing.T) {
			b := &fakeBackend{mb: newMailbox()}
			cfg := &Config{Hostname: "h", Version: "4.0.5", Expire: -1, LoginDelay: -1,
				ClearText: tc.clearText, ClientIP: tc.ip, ImplicitTLS: tc.implicitTLS}
			c, r, _ := startBackend(t, cfg, b)
			allowed := tc.refusal == ""
			if got := slices.Contains(capaLines(t, c, r), "SASL PLAIN"); got != allowed {
				t.Errorf("CAPA lists SASL PLAIN: %v, want %v", got, allowed)
			}
			want := []string{}
			if allowed {
				want = []string{"PLAIN"}
			}
			if got := probe(t, c, r); !slices.Equal(got, want) {
				t.Errorf("AUTH lists %q, want %q", got, want)
			}
			if !allowed {
				talk(t, c, r, []exchange{{"AUTH PLAIN " + alicePlain, tc.refusal}, {"AUTH PLAIN", tc.refusal}})
				if calls := b.called(); len(calls) > 0 {
					t.Fatalf("refused, but the backend saw %q", calls)
				}
				return
			}
			talk(t, c, r, []exchange{{"AUTH PLAIN", "+ "}, {alicePlain, aliceOK}})
		})
	}
}

// CAPA is pop_extend.c's list in its order (X-MACRO left out: MDEF is
// refused), STLS whenever tls-support is STLS, then popper's PIPELINING
// and, in the AUTHORIZATION state only, SASL PLAIN, before
// IMPLEMENTATION.
func TestCapaSASLByState(t *testing.T) {
	cfg := &Config{Hostname: "h", Version: "4.0.5", LoginDelay: -1, Expire: -1,
		Implementation: "Qpopper-version-4.0.5", TLS: &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}}}
	c, r, _ := start(t, cfg, newMailbox())
	common := "TOP,USER,EXPIRE NEVER,UIDL,RESP-CODES,AUTH-RESP-CODE,X-MANGLE,X-LOCALTIME <now>,STLS,PIPELINING,"
	before := common + "SASL PLAIN,IMPLEMENTATION Qpopper-version-4.0.5"
	if got := strings.Join(capaLines(t, c, r), ","); got != before {
		t.Fatalf("CAPA before USER = %s", got)
	}
	talk(t, c, r, []exchange{{"USER alice", "+OK Password required for alice."}})
	if got := strings.Join(capaLines(t, c, r), ","); got != before {
		t.Fatalf("CAPA after USER = %s", got)
	}
	talk(t, c, r, []exchange{{"PASS secret word ", aliceOK}})
	if got := strings.Join(capaLines(t, c, r), ","); got != common+"IMPLEMENTATION Qpopper-version-4.0.5" {
		t.Fatalf("CAPA in TRANSACTION = %s", got)
	}
}

// An Error with Close ends the session after its reply, whichever login
// command it refuses: the commands pipelined after it are never read.
func TestErrorCloseEndsSession(t *testing.T) {
	closing := &Error{Code: "AUTH", Text: "Too many failed logins.", Close: true}
	refusal := "-ERR [AUTH] Too many failed logins."
	then := "USER bob\r\nQUIT\r\n"
	for _, tc := range []struct {
		name, send string
		errs       map[string]error
		want       []string
		calls      []string
	}{
		{"USER", "USER alice\r\n", map[string]error{"User": closing}, []string{refusal}, []string{`User["alice"]`}},
		{"PASS", "USER alice\r\nPASS x\r\n", map[string]error{"Pass": closing},
			[]string{"+OK Password required for alice.", refusal}, []string{`User["alice"]`, `Pass["alice" "x"]`}},
		{"APOP", "APOP alice 0123\r\n", map[string]error{"APOP": closing}, []string{refusal}, []string{`APOP["alice" "0123"]`}},
		{"AUTH PLAIN refused by User", "AUTH PLAIN " + alicePlain + "\r\n", map[string]error{"User": closing},
			[]string{refusal}, []string{`User["alice"]`}},
		{"AUTH PLAIN refused by Pass", "AUTH PLAIN\r\n" + alicePlain + "\r\n", map[string]error{"Pass": closing},
			[]string{"+ ", refusal}, []string{`User["alice"]`, `Pass["alice" "secret word "]`}},
		// Without Close the same refusal leaves the session going.
		{"PASS without Close", "USER alice\r\nPASS x\r\n", map[string]error{"Pass": &Error{Code: "AUTH", Text: "Too many failed logins."}},
			[]string{"+OK Password required for alice.", refusal, "+OK Password required for bob.", "+OK Pop server at pop.example.org signing off."},
			[]string{`User["alice"]`, `Pass["alice" "x"]`, `User["bob"]`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &fakeBackend{mb: newMailbox(), errs: tc.errs}
			c, r, done := startBackend(t, nil, b)
			fmt.Fprint(c, tc.send+then) // one write: the server reads it whole
			for _, want := range tc.want {
				if got := readLine(t, r); got != want {
					t.Fatalf("got %q, want %q", got, want)
				}
			}
			if rest, err := r.ReadString('\n'); err != io.EOF || rest != "" {
				t.Fatalf("after the refusal: %q, %v; want EOF", rest, err)
			}
			if err := <-done; err != nil {
				t.Fatalf("Serve: %v", err)
			}
			if got := b.called(); !slices.Equal(got, tc.calls) {
				t.Fatalf("Backend calls %q, want %q", got, tc.calls)
			}
		})
	}
}

// Without APOP the greeting is qpopper's with an empty timestamp, two
// trailing spaces included, and APOP is an unknown command.
func TestNoAPOP(t *testing.T) {
	for _, tc := range []struct {
		noAPOP, shy bool
		greeting    string
		apop        string
	}{
		{true, false, "+OK Qpopper (version 4.0.5) at pop.example.org starting.  \r\n", `-ERR Unknown command: "apop".`},
		{true, true, "+OK ready  \r\n", `-ERR Unknown command: "apop".`},
		{false, false, "+OK Qpopper (version 4.0.5) at pop.example.org starting.  <1.2@pop.example.org>\r\n", "-ERR [AUTH] authentication failure"},
		{false, true, "+OK ready  <1.2@pop.example.org>\r\n", "-ERR [AUTH] authentication failure"},
	} {
		t.Run(fmt.Sprintf("NoAPOP %v shy %v", tc.noAPOP, tc.shy), func(t *testing.T) {
			b := &fakeBackend{mb: newMailbox()}
			cfg := &Config{Hostname: "pop.example.org", Version: "4.0.5", Expire: -1, LoginDelay: -1,
				NoAPOP: tc.noAPOP, Shy: tc.shy, APOPTimestamp: "<1.2@pop.example.org>"}
			c, r, _ := dial(t, cfg, b)
			if g, err := r.ReadString('\n'); g != tc.greeting {
				t.Fatalf("greeting %q (%v), want %q", g, err, tc.greeting)
			}
			talk(t, c, r, []exchange{{"APOP alice c4c9334bac560ecc979e58001b3e22fb", tc.apop}})
			if calls := b.called(); tc.noAPOP && len(calls) > 0 {
				t.Fatalf("APOP reached the backend: %q", calls)
			}
			talk(t, c, r, []exchange{{"USER alice", "+OK Password required for alice."}, {"PASS secret word ", aliceOK}})
		})
	}
}

// curl logs in with SASL PLAIN when CAPA offers it, with and without an
// initial response, and lists the mailbox.
func TestCurlAuthPlain(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := &Config{Hostname: "h", Version: "4.0.5", Expire: -1, LoginDelay: -1, NoAPOP: true}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { Serve(conn, &fakeBackend{mb: newMailbox()}, cfg); conn.Close() }()
		}
	}()
	mb := newMailbox()
	var list strings.Builder
	for i := range mb.Len() {
		fmt.Fprintf(&list, "%d %d\r\n", i+1, mb.Size(i))
	}
	for _, ir := range []bool{false, true} {
		t.Run(fmt.Sprintf("initial response %v", ir), func(t *testing.T) {
			args := []string{"-sS", "-v", "--max-time", "10", "--noproxy", "*", "-u", "alice:secret word ", "pop3://" + ln.Addr().String() + "/"}
			wantAuth := "> AUTH PLAIN\r\n"
			if ir {
				args = append(args, "--sasl-ir")
				wantAuth = "> AUTH PLAIN " + alicePlain + "\r\n"
			}
			var stdout, stderr bytes.Buffer
			cmd := exec.Command(curl, args...)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("curl: %v\n%s", err, stderr.String())
			}
			if stdout.String() != list.String() {
				t.Errorf("curl listed %q, want %q", stdout.String(), list.String())
			}
			if !strings.Contains(stderr.String(), wantAuth) || strings.Contains(stderr.String(), "> APOP") {
				t.Errorf("curl did not log in with %q:\n%s", wantAuth, stderr.String())
			}
		})
	}
}

// The response to the challenge has the read deadline of a command.
func TestAuthPlainResponseTimeout(t *testing.T) {
	cfg := &Config{Hostname: "h", Version: "4.0.5", Timeout: 200 * time.Millisecond, Expire: -1, LoginDelay: -1}
	c, r, done := start(t, cfg, newMailbox())
	talk(t, c, r, []exchange{{"AUTH PLAIN", "+ "}})
	if l := readLine(t, r); l != "-ERR POP timeout from h" {
		t.Fatalf("no response: %q", l)
	}
	var ne net.Error
	if err := <-done; !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Serve: %v", err)
	}
}
