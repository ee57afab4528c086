package pop3

import (
	"fmt"
	"io"
	"slices"
	"testing"
)

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
