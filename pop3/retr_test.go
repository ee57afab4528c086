package pop3

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// brokenMailbox fails to read its message halfway, after some lines.
type brokenMailbox struct{ *fakeMailbox }

func (m brokenMailbox) WriteMessage(w io.Writer, i, bodyLines int) error {
	io.WriteString(w, "Subject: one\n\nfirst half\n")
	return errors.New("read /var/mail/.alice.pop: input/output error")
}

type brokenBackend struct{ *fakeBackend }

func (b brokenBackend) Pass(name, pw string) (Mailbox, error) {
	mb, err := b.fakeBackend.Pass(name, pw)
	if err != nil {
		return nil, err
	}
	return brokenMailbox{mb.(*fakeMailbox)}, nil
}

// A RETR whose message cannot be read after its +OK ends the connection
// without the terminating line, so the client does not keep (and maybe
// DELE) a truncated message; the session ends as a lost client's does.
func TestRetrFailingHalfwayEndsWithoutTheDot(t *testing.T) {
	for _, onAbort := range []bool{true, false} {
		t.Run(fmt.Sprintf("update-on-abort %v", onAbort), func(t *testing.T) {
			mb := newMailbox()
			fb := &fakeBackend{mb: mb}
			cfg := &Config{Hostname: "pop.example.org", Version: "4.0.5", UpdateOnAbort: onAbort, Expire: -1, LoginDelay: -1}
			c, r, done := startBackend(t, cfg, brokenBackend{fb})
			fmt.Fprint(c, "USER alice\r\nPASS secret word \r\nDELE 2\r\nRETR 1\r\nNOOP\r\n")
			var got []string
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					if l != "" {
						got = append(got, l)
					}
					break
				}
				got = append(got, strings.TrimSuffix(l, "\r\n"))
			}
			want := []string{"+OK Password required for alice.", "+OK alice has 3 visible messages (0 hidden) in 111 octets.",
				"+OK Message 2 has been deleted.", "+OK 37 octets", "Subject: one", "", "first half"}
			if strings.Join(got, "|") != strings.Join(want, "|") {
				t.Fatalf("client saw %q\nwant %q (and then the end of the connection, no terminating dot)", got, want)
			}
			<-done
			mb.mu.Lock()
			defer mb.mu.Unlock()
			if onAbort && (mb.updated == nil || !mb.updated.Deleted[1] || mb.updated.Retrieved[0]) {
				t.Fatalf("update-on-abort: Update(%+v), want DELE 2 committed and message 1 not retrieved", mb.updated)
			}
			if !onAbort && (!mb.restored || mb.updated != nil) {
				t.Fatalf("without update-on-abort: restored %v, updated %+v", mb.restored, mb.updated)
			}
		})
	}
}
