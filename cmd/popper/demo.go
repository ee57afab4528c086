package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/popperd/popper/platform"
)

// The demo: a throw-away spool for user "demo" (password "demo") served on
// a loopback port, without root and without any configuration.

// demoMessages are a handful of realistic messages, in mbox form.
func demoMessages(now time.Time) string {
	var b strings.Builder
	msgs := []struct{ from, subject, body string }{
		{"alice@example.org", "Welcome to popper",
			"Hello,\n\nthis spool was made for the demo. popper serves it the way qpopper\nwould: try LIST, UIDL, RETR 1, TOP 2 0, DELE 3, then QUIT.\n\n-- \nalice\n"},
		{"build-bot@example.org", "Nightly build: 3 warnings",
			"Build 4711 finished.\n\n.lines starting with a dot are byte-stuffed on the wire\n..and this one too\n\nFrom here on the body has a \"From \" line, quoted by the MDA:\n>From the archives\n"},
		{"bob@example.net", "Re: lunch on Friday?",
			"> Shall we try the new place?\n\nYes, 12:30 works for me.\n\nBob\n"},
		{"newsletter@example.com", "=?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_Z=C3=BCrich?=",
			"Content with 8-bit bytes: Grüße, naïve café.\n\nA long line follows: " + strings.Repeat("lorem ipsum ", 40) + "\n"},
		{"carol@example.org", "Minutes of the mail-ops meeting",
			"1. qpopper lost mail after the power cut in March.\n2. popper merges leftover temp drops at login.\n3. Boot recovery runs before the MTA starts.\n"},
	}
	for i, m := range msgs {
		t := now.Add(time.Duration(i-len(msgs)) * time.Hour).UTC()
		fmt.Fprintf(&b, "From %s %s\n", m.from, t.Format("Mon Jan _2 15:04:05 2006"))
		fmt.Fprintf(&b, "Return-Path: <%s>\n", m.from)
		fmt.Fprintf(&b, "Received: from mail.example.org by demo.localdomain; %s\n", t.Format(time.RFC1123Z))
		fmt.Fprintf(&b, "Date: %s\n", t.Format(time.RFC1123Z))
		fmt.Fprintf(&b, "From: %s\nTo: demo@localhost\nSubject: %s\n", m.from, m.subject)
		fmt.Fprintf(&b, "Message-ID: <demo.%d.%d@example.org>\n", now.Unix(), i+1)
		fmt.Fprintf(&b, "MIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 8bit\n\n")
		b.WriteString(m.body)
		b.WriteString("\n")
	}
	return b.String()
}

// setUpDemo creates the demo's files and returns the arguments that serve
// them.
func setUpDemo() (dir string, args []string, err error) {
	dir, err = os.MkdirTemp("", "popper-demo-")
	if err != nil {
		return "", nil, err
	}
	uid, gid := os.Getuid(), os.Getgid()
	if platform.IsRoot() {
		// Run as root, the demo user must not be root (qpopper refuses
		// uids <= 10): use nobody, and make the directories reachable.
		uid, gid = 65534, 65534
		if err := os.Chmod(dir, 0755); err != nil {
			return dir, nil, err
		}
	}
	spoolDir := filepath.Join(dir, "mail")
	if err := os.Mkdir(spoolDir, 0755); err != nil {
		return dir, nil, err
	}
	// Like /var/mail on Solaris: everyone may create their lock and temp
	// drop; the sticky bit keeps them from removing others'.
	if err := os.Chmod(spoolDir, os.ModeSticky|0o777); err != nil {
		return dir, nil, err
	}
	spool := filepath.Join(spoolDir, "demo")
	if err := os.WriteFile(spool, []byte(demoMessages(time.Now())), 0660); err != nil {
		return dir, nil, err
	}
	if err := os.Chown(spool, uid, gid); err != nil && platform.IsRoot() {
		return dir, nil, err
	}
	db := filepath.Join(dir, "userdb")
	entry := fmt.Sprintf("demo:{PLAIN}demo:%d:%d:Demo User:%s:/bin/sh\n", uid, gid, dir)
	if err := os.WriteFile(db, []byte(entry), 0600); err != nil {
		return dir, nil, err
	}
	conf := filepath.Join(dir, "qpopper.config")
	// No APOP: the host's APOP database is not the demo's.
	confText := fmt.Sprintf("# popper demo: qpopper syntax\nset spool-dir = \"%s\"\nset statistics\nset timeout = 600\nset apop-db = \"\"\n", spoolDir)
	if err := os.WriteFile(conf, []byte(confText), 0644); err != nil {
		return dir, nil, err
	}
	trace := filepath.Join(dir, "popper.log")
	return dir, []string{"-f", conf, "-t", trace, "--userdb", db}, nil
}

func demoUsage(addr, dir string) string {
	host, port := addr, "110"
	if i := strings.LastIndex(addr, ":"); i >= 0 {
		host, port = addr[:i], addr[i+1:]
	}
	return fmt.Sprintf(`popper demo: user "demo", password "demo", spool in %[3]s/mail/demo
listening on %[1]s:%[2]s (one popper process per connection, as under inetd)
log records: %[3]s/popper.log

Try it:
  curl -s pop3://demo:demo@%[1]s:%[2]s/             # LIST
  curl -s pop3://demo:demo@%[1]s:%[2]s/1            # RETR 1
  python3 -c 'import poplib; p = poplib.POP3("%[1]s", %[2]s); p.user("demo"); p.pass_("demo"); print(p.stat()); print(p.uidl()); p.quit()'
  telnet %[1]s %[2]s                                 # USER demo / PASS demo / LIST / QUIT

Stop with Ctrl-C; the files stay in %[3]s.
`, host, port, dir)
}
