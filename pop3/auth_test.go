package pop3

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"slices"
	"testing"
)

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

const aliceOK = "+OK alice has 3 visible messages (0 hidden) in 111 octets."

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
