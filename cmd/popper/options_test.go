package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/popperd/popper/compat"
)

// TestEveryOption holds one row per option of compat.AllOptions and runs
// it against the real popper binary. A row either shows the option's
// effect at run time (rowEffect), shows the exact text popper logs or
// answers when it declares the option unsupported or refuses it
// (rowRefused), or states why the option is accepted with no effect
// (rowNoEffect; its check then shows that it is accepted and, where the
// reason can be observed, the reason). The test fails when an option has
// no row and when a row names no option.

const (
	rowEffect   = "effect"
	rowRefused  = "refused"
	rowNoEffect = "no effect"
	// rowConfigOnly: the effect is on something the test cannot read (the
	// system log); the check shows the value popper takes.
	rowConfigOnly = "config only"
)

type optionRow struct {
	kind   string
	reason string // why: required for rowNoEffect and rowConfigOnly
	check  func(t *testing.T)
}

func TestEveryOption(t *testing.T) {
	rows := everyOptionRows()
	known := map[string]bool{}
	for _, o := range compat.AllOptions() {
		known[o.Name] = true
		r, ok := rows[o.Name]
		if !ok {
			t.Errorf("option %q of compat.AllOptions has no row in everyOptionRows", o.Name)
		}
		if ok && o.Unsupported != "" && r.kind != rowRefused {
			t.Errorf("option %q is marked Unsupported (%q): its row must check the notice (kind %q, not %q)", o.Name, o.Unsupported, rowRefused, r.kind)
		}
	}
	var names []string
	for name, r := range rows {
		names = append(names, name)
		if !known[name] {
			t.Errorf("row %q names no option of compat.AllOptions", name)
		}
		switch r.kind {
		case rowEffect, rowRefused:
		case rowNoEffect, rowConfigOnly:
			if r.reason == "" {
				t.Errorf("row %q (%s) states no reason", name, r.kind)
			}
		default:
			t.Errorf("row %q has unknown kind %q", name, r.kind)
		}
		if r.check == nil {
			t.Errorf("row %q has no check", name)
		}
	}
	if t.Failed() {
		return
	}
	sort.Strings(names)
	for _, name := range names {
		r := rows[name]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r.check(t)
		})
	}
}

// ---- helpers (prefixed eo: every option) ----

// eoFile writes a configuration file of its own and returns its path.
func eoFile(t *testing.T, s *site, name string, lines ...string) string {
	t.Helper()
	p := filepath.Join(s.dir, name)
	writeFile(t, p, strings.Join(lines, "\n")+"\n", 0644)
	return p
}

// eoStart starts popper on a fresh loopback connection as site.dial does
// and returns the client and the greeting line.
func eoStart(t *testing.T, s *site, extra ...string) (*client, string) {
	t.Helper()
	c := s.start(t, extra...)
	return c, c.line()
}

// eoLogin sends USER and PASS and returns the PASS reply.
func eoLogin(c *client, user, pass string) string {
	c.t.Helper()
	c.ok("USER " + user)
	return c.do("PASS " + pass)
}

// eoQuit ends a session with QUIT and waits for popper to exit, so that
// the trace file and the spool are complete.
func eoQuit(c *client) {
	c.t.Helper()
	c.ok("QUIT")
	c.cmd.Wait()
}

// eoCapa returns the CAPA lines.
func eoCapa(c *client) []string {
	c.t.Helper()
	c.ok("CAPA")
	return c.multi()
}

func eoHas(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

func eoHasPrefix(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

func eoTrace(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("trace file: %v", err)
	}
	return string(b)
}

func eoRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func eoExists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func eoSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// eoDir makes a directory every session user may create files in, as
// /var/mail is (1777).
func eoDir(t *testing.T, path string) string {
	t.Helper()
	if err := os.MkdirAll(path, 0755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, os.ModeSticky|0o777)
	return path
}

// eoOwn gives a file or directory to the site's user (the session's
// identity under root).
func eoOwn(s *site, path string) {
	if os.Getuid() == 0 {
		os.Chown(path, s.uid, s.gid)
	}
}

// eoUserFile writes a file owned by the site's user.
func eoUserFile(t *testing.T, s *site, path, content string, mode os.FileMode) {
	t.Helper()
	writeFile(t, path, content, mode)
	eoOwn(s, path)
}

// eoAddUser adds an account with the site user's uid to the site's
// user database.
func eoAddUser(t *testing.T, s *site, name, pass string) {
	t.Helper()
	f, err := os.OpenFile(s.userdb, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "%s:{PLAIN}%s:%d:%d::%s:/bin/sh\n", name, pass, s.uid, s.gid, s.dir)
	f.Close()
}

// eoModeMsg is a message whose X-UIDL value (11 characters) only server
// mode accepts: qpopper's normal mode read the spool with a window one
// character narrower at each end (spool/uid.go).
const eoModeUID = "elevenchars"

func eoModeMsg() string {
	return "From sender@example.org Sat Nov 28 10:00:00 2026\nX-UIDL: " + eoModeUID + "\nMessage-ID: <mode@example.org>\nSubject: mode\n\nmode\n\n"
}

// eoServerMode tells, during a logged-in session on a spool whose first
// message is eoModeMsg, whether popper serves it in server mode: both
// modes read the spool in place, but only server mode takes that UID.
func eoServerMode(c *client) bool {
	c.t.Helper()
	return eoUID(c) == eoModeUID
}

var eoUIDL = regexp.MustCompile(`^1 (\S+)$`)

// eoUID returns the UID of message 1.
func eoUID(c *client) string {
	c.t.Helper()
	r := c.ok("UIDL 1")
	m := eoUIDL.FindStringSubmatch(strings.TrimPrefix(r, "+OK "))
	if m == nil {
		c.t.Fatalf("UIDL 1: %q", r)
	}
	return m[1]
}

// eoNote is the text popper logs for an option the table marks
// Unsupported when it is set away from its default.
func eoNote(t *testing.T, option string) string {
	t.Helper()
	o, ok := compat.Lookup(option)
	if !ok || o.Unsupported == "" {
		t.Fatalf("option %s is not marked Unsupported in compat.AllOptions", option)
	}
	return fmt.Sprintf("%s (option %s ignored)", o.Unsupported, o.Name)
}

// eoUnsupported sets an option popper lacks, checks that the session
// still works and that the trace has the exact notice, and that a site
// without the option has no such notice.
func eoUnsupported(option string, lines []string, flags ...string) func(t *testing.T) {
	return func(t *testing.T) {
		note := eoNote(t, option)
		s, _ := eoSite(t, msg("one", "first"), lines...)
		c := s.dial(t, flags...)
		if r := eoLogin(c, "alice", "secret"); !strings.HasPrefix(r, "+OK alice has 1 visible message ") {
			t.Fatalf("PASS with %s set: %q", option, r)
		}
		eoQuit(c)
		if tr := eoTrace(t, s.trace); strings.Count(tr, "] "+note+"\n") != 1 {
			t.Fatalf("trace should have %q once:\n%s", note, tr)
		}
		d := newSite(t)
		c = d.dial(t)
		eoQuit(c)
		if tr := eoTrace(t, d.trace); strings.Contains(tr, "(option "+option+" ignored)") {
			t.Fatalf("notice without the option:\n%s", tr)
		}
	}
}

// eoIndexed logs in twice with the configuration lines (the first
// session writes the X-UIDL headers back, the second indexes the spool)
// and checks that the index is at where(spool) and only there, and that a
// third login, served from it, sees the same UIDs.
func eoIndexed(t *testing.T, lines []string, where func(spool string) string) {
	t.Helper()
	s, sp := eoSite(t, msg("one", "first")+msg("two", "second"), lines...)
	var uids []string
	for i := 0; i < 3; i++ {
		c := s.dial(t, "-S")
		if r := eoLogin(c, "alice", "secret"); !strings.HasPrefix(r, "+OK alice has 2 visible messages ") {
			t.Fatalf("PASS: %q", r)
		}
		c.ok("UIDL")
		uids = append(uids, strings.Join(c.multi(), " "))
		eoQuit(c)
	}
	if uids[1] != uids[0] || uids[2] != uids[0] {
		t.Fatalf("UIDs %q", uids)
	}
	ix := where(sp)
	if b, err := os.ReadFile(ix); err != nil || !strings.HasPrefix(string(b), "popper index\n") {
		t.Fatalf("index %s: %v", ix, err)
	}
	if def := filepath.Join(filepath.Dir(sp), ".alice.cache"); def != ix && eoExists(def) {
		t.Fatalf("an index at %s too", def)
	}
}

// eoAccepted sets options with no effect and shows that they are
// accepted: a session logs in, retrieves and deletes as without them.
func eoAccepted(t *testing.T, lines []string, flags ...string) *site {
	t.Helper()
	s, sp := eoSite(t, msg("one", "first")+msg("two", "second"), lines...)
	c := s.dial(t, flags...)
	if r := eoLogin(c, "alice", "secret"); !strings.HasPrefix(r, "+OK alice has 2 visible messages ") {
		t.Fatalf("PASS: %q", r)
	}
	c.ok("RETR 1")
	c.multi()
	c.ok("DELE 1")
	eoQuit(c)
	if got := eoRead(t, sp); strings.Contains(got, "<one@") || !strings.Contains(got, "<two@") {
		t.Fatalf("spool after QUIT:\n%s", got)
	}
	if tr := eoTrace(t, s.trace); strings.Contains(tr, "ignored") || strings.Contains(tr, "-ERR") {
		t.Fatalf("trace:\n%s", tr)
	}
	return s
}

// eoSite makes a site whose alice has content in her spool and whose
// configuration has lines added; it returns the spool's path too.
func eoSite(t *testing.T, content string, lines ...string) (*site, string) {
	t.Helper()
	s := newSite(t)
	sp := s.spool(t, "alice", content)
	s.setOptions(t, lines...)
	return s, sp
}

// eoBulletinLogin logs alice (a new bulletin reader, no ~/.popbull) in
// with a bulletin directory holding the named bulletins and the given
// configuration lines, and returns the PASS reply.
func eoBulletinLogin(t *testing.T, names []string, lines ...string) string {
	t.Helper()
	s := newSite(t)
	eoOwn(s, s.dir) // the user's home holds ~/.popbull
	bulls := filepath.Join(s.dir, "bulls")
	os.Mkdir(bulls, 0755)
	for _, n := range names {
		writeFile(t, filepath.Join(bulls, n), "From root@example.org Sat Nov 28 09:00:00 2026\nSubject: bulletin "+n+"\n\nnews\n", 0644)
	}
	s.setOptions(t, append([]string{fmt.Sprintf("set bulldir = %q", bulls)}, lines...)...)
	return eoLogin(s.dial(t), "alice", "secret")
}

// eoSpoolAfter runs a session of alice (messages one and two) with the
// given configuration lines; session must end it. It returns the spool.
func eoSpoolAfter(t *testing.T, lines []string, session func(c *client)) string {
	t.Helper()
	s, sp := eoSite(t, msg("one", "first")+msg("two", "second"), lines...)
	c := s.dial(t)
	eoLogin(c, "alice", "secret")
	session(c)
	return eoRead(t, sp)
}

// eoTraceOfLogin logs alice in and out with the given configuration
// lines and returns the trace file.
func eoTraceOfLogin(t *testing.T, lines ...string) string {
	t.Helper()
	s := newSite(t)
	s.setOptions(t, lines...)
	c := s.dial(t)
	eoLogin(c, "alice", "secret")
	eoQuit(c)
	return eoTrace(t, s.trace)
}

// eoAccessList shows auth-file or nonauth-file at work with a list that
// names alice: user denied logs in without the option and is refused
// with qpopper's text with it, while user allowed still logs in.
func eoAccessList(t *testing.T, option, allowed, denied string) {
	t.Helper()
	s := newSite(t)
	eoAddUser(t, s, "bob", "pw")
	pass := map[string]string{"alice": "secret", "bob": "pw"}
	if r := eoLogin(s.dial(t), denied, pass[denied]); !strings.HasPrefix(r, "+OK "+denied+" has") {
		t.Fatalf("%s without %s: %q", denied, option, r)
	}
	list := eoFile(t, s, option, "alice")
	s.setOptions(t, fmt.Sprintf("set %s = %q", option, list))
	if r := eoLogin(s.dial(t), allowed, pass[allowed]); !strings.HasPrefix(r, "+OK "+allowed+" has") {
		t.Fatalf("%s with %s: %q", allowed, option, r)
	}
	if r := eoLogin(s.dial(t), denied, pass[denied]); r != fmt.Sprintf(`-ERR [AUTH] "%s": access denied.`, denied) {
		t.Fatalf("%s with %s: %q", denied, option, r)
	}
}

// eoUserNameRule shows a user-name option (flag) at work: typed logs in
// as alice with the flag and is refused without it (after qpopper's
// tarpit, which runs while the other session goes on).
func eoUserNameRule(t *testing.T, flag, typed string) *site {
	t.Helper()
	s := newSite(t)
	s.spool(t, "alice", msg("one", "first"))
	plain := s.dial(t)
	plain.ok("USER " + typed)
	fmt.Fprintf(plain.conn, "PASS secret\r\n")
	c := s.dial(t, flag)
	// The reply names the user as qpopper stores it (pop_pass.c: p->user).
	if r := eoLogin(c, typed, "secret"); !strings.HasPrefix(r, "+OK alice has 1 visible message ") {
		t.Fatalf("USER %s with %s: %q", typed, flag, r)
	}
	eoQuit(c)
	if r := plain.line(); !strings.HasPrefix(r, "-ERR [AUTH] ") {
		t.Fatalf("USER %s without %s: %q", typed, flag, r)
	}
	return s
}

// eoSyscw is the number of write system calls process pid has made.
func eoSyscw(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "syscw: "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no syscw in /proc/%d/io", pid)
	return 0
}

// eoConfigError checks that popper refuses to serve with a broken TLS
// setup: the client gets the configuration-error greeting and the trace
// has the reason.
func eoConfigError(t *testing.T, s *site, reason string) {
	t.Helper()
	c, g := eoStart(t, s)
	if g != "-ERR [SYS/TEMP] Server configuration error; try again later." {
		t.Fatalf("greeting: %q", g)
	}
	c.cmd.Wait()
	if tr := eoTrace(t, s.trace); !strings.Contains(tr, reason) {
		t.Fatalf("trace lacks %q:\n%s", reason, tr)
	}
}

// eoChecker writes a checkpassword program for the site: it accepts
// alice with the password "from the checker", records its own arguments,
// becomes the site's user and runs the subprogram, as the interface
// says.
func eoChecker(t *testing.T, s *site) string {
	t.Helper()
	become := ""
	if os.Getuid() == 0 {
		need(t, "setpriv")
		become = fmt.Sprintf("setpriv --reuid=%d --regid=%d --clear-groups", s.uid, s.gid)
	}
	script := fmt.Sprintf(`#!/bin/sh
creds=$(tr '\000' '\n' <&3)
name=$(printf '%%s\n' "$creds" | sed -n 1p)
pass=$(printf '%%s\n' "$creds" | sed -n 2p)
printf '%%s' "$1" > %s/checker-args
shift
[ "$name:$pass" = "alice:from the checker" ] || exit 1
HOME=%s; export HOME
exec %s "$@"
`, s.dir, s.dir, become)
	p := filepath.Join(s.dir, "checkpassword")
	writeFile(t, p, script, 0o755)
	return p
}

// eoAPOPSecret writes the site's APOP database (popauth(8)'s format,
// mode 0600 as popper requires) with one user's secret.
func eoAPOPSecret(t *testing.T, s *site, name, secret string) string {
	t.Helper()
	p := filepath.Join(s.dir, "pop.auth")
	writeFile(t, p, fmt.Sprintf("popauth 1\n%s:%x\n", name, secret), 0o600)
	return p
}

// eoLoginLine is the log-login template that shows the client host name.
const eoLoginLine = `set log-login = "LOGIN %1 HOST %2 ADDR %3"`

// ---- the rows ----

func everyOptionRows() map[string]optionRow {
	return map[string]optionRow{
		"announce-expire": {kind: rowEffect, check: func(t *testing.T) {
			s := newSite(t)
			// qpopper 4.0.5 unconfigured: EXPIRE 0 (pop_extend.c, p->expire zeroed).
			if capa := eoCapa(s.dial(t)); !eoHas(capa, "EXPIRE 0") {
				t.Fatalf("default CAPA: %q", capa)
			}
			if capa := eoCapa(s.dial(t, "-e", "expire")); !eoHas(capa, "EXPIRE NEVER") {
				t.Fatalf("CAPA with -e expire: %q", capa)
			}
			s.setOptions(t, "set announce-expire = 30")
			if capa := eoCapa(s.dial(t)); !eoHas(capa, "EXPIRE 30") || eoHas(capa, "EXPIRE NEVER") {
				t.Fatalf("CAPA with announce-expire 30: %q", capa)
			}
			if capa := eoCapa(s.dial(t, "-e", "expire=7")); !eoHas(capa, "EXPIRE 7") {
				t.Fatalf("CAPA with -e expire=7: %q", capa)
			}
		}},
		"announce-login-delay": {kind: rowEffect, check: func(t *testing.T) {
			s := newSite(t)
			if capa := eoCapa(s.dial(t)); !eoHas(capa, "LOGIN-DELAY 0") {
				t.Fatalf("default CAPA: %q", capa)
			}
			if capa := eoCapa(s.dial(t, "-e", "login_delay")); eoHasPrefix(capa, "LOGIN-DELAY") {
				t.Fatalf("CAPA with -e login_delay (-1): %q", capa)
			}
			if capa := eoCapa(s.dial(t, "-e", "login_delay=300")); !eoHas(capa, "LOGIN-DELAY 300") {
				t.Fatalf("CAPA with -e login_delay=300: %q", capa)
			}
			s.setOptions(t, "set announce-login-delay = 900")
			if capa := eoCapa(s.dial(t)); !eoHas(capa, "LOGIN-DELAY 900") {
				t.Fatalf("CAPA with announce-login-delay 900: %q", capa)
			}
		}},
		"auth-delay": {kind: rowEffect, check: func(t *testing.T) {
			s := newSite(t)
			s.setOptions(t, "set auth-delay = 1")
			c := s.dial(t)
			c.ok("USER alice")
			began := time.Now()
			r := c.do("PASS wrong")
			if took := time.Since(began); r != `-ERR [AUTH] Password supplied for "alice" is incorrect.` || took < time.Second || took > 5*time.Second {
				t.Fatalf("wrong password with auth-delay 1: %q after %v (the default waits 10 s)", r, took)
			}
		}},
		"auth-source": {kind: rowEffect, check: func(t *testing.T) {
			s := newSite(t)
			s.setOptions(t, "set auth-delay = 0")
			if r := eoLogin(s.dial(t), "alice", "secret"); !strings.HasPrefix(r, "+OK alice has 0 visible messages") {
				t.Fatalf("alice of the userdb by default: %q", r)
			}
			s.setOptions(t, "set auth-source = system")
			if r := eoLogin(s.dial(t), "alice", "secret"); r != `-ERR [AUTH] Password supplied for "alice" is incorrect.` {
				t.Fatalf("alice with auth-source system (she is no system account): %q", r)
			}
		}},
		"auth-file": {kind: rowEffect, check: func(t *testing.T) {
			eoAccessList(t, "auth-file", "alice", "bob")
		}},
		"auto-delete": {kind: rowEffect, check: func(t *testing.T) {
			// qpopper deletes RETR'd messages only when update-on-abort
			// is false (doc/qpopper.md, "Update at QUIT"); popper too.
			run := func(lines ...string) string {
				return eoSpoolAfter(t, lines, func(c *client) {
					c.ok("RETR 1")
					c.multi()
					eoQuit(c)
				})
			}
			if got := run("set auto-delete", "reset update-on-abort"); strings.Contains(got, "<one@") || !strings.Contains(got, "<two@") {
				t.Fatalf("auto-delete: spool after RETR 1, QUIT:\n%s", got)
			}
			if got := run("reset update-on-abort"); !strings.Contains(got, "<one@") {
				t.Fatalf("without auto-delete message 1 was deleted:\n%s", got)
			}
			if got := run("set auto-delete"); !strings.Contains(got, "<one@") {
				t.Fatalf("auto-delete with update-on-abort deleted message 1 (qpopper does not):\n%s", got)
			}
		}},
		"bulldb-max-tries": {kind: rowRefused, check: eoUnsupported("bulldb-max-tries", []string{"set bulldb-max-tries = 3"})},
		"bulldb-nonfatal":  {kind: rowRefused, check: eoUnsupported("bulldb-nonfatal", nil, "-B")},
		"bulldir": {kind: rowEffect, check: func(t *testing.T) {
			s := newSite(t)
			s.spool(t, "alice", msg("one", "first"))
			eoOwn(s, s.dir) // the user's home holds ~/.popbull
			c := s.dial(t)
			if r := eoLogin(c, "alice", "secret"); !strings.HasPrefix(r, "+OK alice has 1 visible message ") {
				t.Fatalf("without bulldir: %q", r)
			}
			eoQuit(c)
			bulls := filepath.Join(s.dir, "bulls")
			os.Mkdir(bulls, 0755)
			writeFile(t, filepath.Join(bulls, "3"), "From root@example.org Sat Nov 28 09:00:00 2026\nTo: all\nSubject: note\n\nRead me.\n", 0644)
			c = s.dial(t, "-b", bulls)
			if r := eoLogin(c, "alice", "secret"); !strings.HasPrefix(r, "+OK alice has 2 visible messages ") {
				t.Fatalf("with -b: %q", r)
			}
			c.ok("RETR 2")
			if body := strings.Join(c.multi(), "\n"); !strings.Contains(body, "Read me.") || !strings.Contains(body, "To: alice@") {
				t.Fatalf("bulletin: %q", body)
			}
		}},
		"cache-dir": {kind: rowEffect, check: func(t *testing.T) {
			dir := eoDir(t, filepath.Join(t.TempDir(), "cache"))
			eoIndexed(t, []string{fmt.Sprintf("set cache-dir = %q", dir)}, func(sp string) string { return filepath.Join(dir, ".alice.cache") })
		}},
		"cache-name": {kind: rowEffect, check: func(t *testing.T) {
			eoIndexed(t, []string{`set cache-name = "%s.eo-cache"`}, func(sp string) string { return filepath.Join(filepath.Dir(sp), "alice.eo-cache") })
			// Empty: no index.
			s, sp := eoSite(t, msg("one", "first"), `set cache-name = ""`)
			for i := 0; i < 2; i++ {
				c := s.dial(t, "-S")
				eoLogin(c, "alice", "secret")
				eoQuit(c)
			}
			if ents, _ := filepath.Glob(filepath.Join(filepath.Dir(sp), "*cache*")); len(ents) != 0 {
				t.Fatalf("an index without cache-name: %v", ents)
			}
		}},
		"check-hash-dir": {kind: rowEffect, check: func(t *testing.T) {
			h := compat.HashDir(1, "alice")
			s := newSite(t)
			s.setOptions(t, "set hash-spool = 1")
			if r := eoLogin(s.dial(t), "alice", "secret"); !strings.HasPrefix(r, "+OK alice has 0 visible messages") {
				t.Fatalf("hash-spool 1, check-hash-dir on: %q", r)
			}
			if fi, err := os.Stat(filepath.Join(s.spoolDir, h)); err != nil || !fi.IsDir() {
				t.Fatalf("hash directory %s not made: %v", h, err)
			}
			d := newSite(t)
			d.setOptions(t, "set hash-spool = 1", "reset check-hash-dir")
			if r := eoLogin(d.dial(t), "alice", "secret"); !strings.HasPrefix(r, "-ERR [SYS/TEMP] ") {
				t.Fatalf("hash-spool 1, check-hash-dir off, no hash directory: %q", r)
			}
			if eoExists(filepath.Join(d.spoolDir, h)) {
				t.Fatal("hash directory made with check-hash-dir off")
			}
		}},
		"check-old-spool-loc": {kind: rowEffect, check: func(t *testing.T) {
			// With hash-spool and a temp-dir, the temp drop's old place is
			// spool-dir/H/.alice.pop; a leftover there is merged back.
			h := compat.HashDir(1, "alice")
			run := func(lines ...string) (string, *site) {
				s := newSite(t)
				eoDir(t, filepath.Join(s.spoolDir, h))
				tmp := eoDir(t, filepath.Join(s.dir, "drops"))
				eoDir(t, filepath.Join(tmp, h))
				eoUserFile(t, s, filepath.Join(s.spoolDir, h, "alice"), msg("new", "in the spool"), 0660)
				eoUserFile(t, s, filepath.Join(s.spoolDir, h, ".alice.pop"), msg("old", "left over"), 0660)
				s.setOptions(t, append([]string{"set hash-spool = 1", fmt.Sprintf("set temp-dir = %q", tmp)}, lines...)...)
				c := s.dial(t)
				r := eoLogin(c, "alice", "secret")
				eoQuit(c)
				return r, s
			}
			if r, _ := run(); !strings.HasPrefix(r, "+OK alice has 2 visible messages ") {
				t.Fatalf("check-old-spool-loc on: %q", r)
			}
			r, s := run("reset check-old-spool-loc")
			if !strings.HasPrefix(r, "+OK alice has 1 visible message ") {
				t.Fatalf("check-old-spool-loc off: %q", r)
			}
			if got := eoRead(t, filepath.Join(s.spoolDir, h, ".alice.pop")); !strings.Contains(got, "<old@") {
				t.Fatalf("leftover changed with check-old-spool-loc off: %q", got)
			}
		}},
		"check-password-expired": {kind: rowEffect, check: func(t *testing.T) {
			need(t, "chage")
			s := systemSite(t, "set auth-delay = 0")
			u := addSysUser(t, s, "SHA512", "pw pw", "")
			runCmd(t, nil, "chage", "-d", "0", u.name) // must change at next login
			if r := eoLogin(s.dial(t), u.name, u.pass); r != `-ERR [AUTH] "`+u.name+`": password expired.` {
				t.Fatalf("password to change, check-password-expired on: %q", r)
			}
			s.setOptions(t, "reset check-password-expired")
			if r := eoLogin(s.dial(t), u.name, u.pass); !strings.HasPrefix(r, "+OK "+u.name+" has 0 visible messages") {
				t.Fatalf("password to change, check-password-expired off: %q", r)
			}
		}},
		"checkpassword": {kind: rowEffect, check: func(t *testing.T) {
			s := newSite(t)
			prog := eoChecker(t, s)
			s.setOptions(t, "set auth-delay = 0", "set auth-source = checkpassword", fmt.Sprintf("set checkpassword = %q", prog+" --from-test"))
			if r := eoLogin(s.dial(t), "alice", "from the checker"); !strings.HasPrefix(r, "+OK alice has 0 visible messages") {
				t.Fatalf("alice with the checker's password: %q\n%s", r, eoTrace(t, s.trace))
			}
			if r := eoLogin(s.dial(t), "alice", "secret"); r != `-ERR [AUTH] Password supplied for "alice" is incorrect.` {
				t.Fatalf("alice with the userdb's password: %q", r)
			}
			if args := eoRead(t, filepath.Join(s.dir, "checker-args")); args != "--from-test" {
				t.Fatalf("the checker got arguments %q before the subprogram", args)
			}
		}},
		"chunky-writes": {kind: rowEffect, check: func(t *testing.T) {
			if runtime.GOOS != "linux" {
				t.Skip("counts write system calls in /proc/PID/io")
			}
			body := strings.Repeat("a line of the body\n", 100)
			writes := func(lines ...string) int {
				s, _ := eoSite(t, msg("one", body), lines...)
				c := s.dial(t)
				eoLogin(c, "alice", "secret")
				before := eoSyscw(t, c.cmd.Process.Pid)
				c.ok("RETR 1")
				c.multi()
				return eoSyscw(t, c.cmd.Process.Pid) - before
			}
			if n := writes(); n > 3 {
				t.Fatalf("default (always): RETR of 100 lines took %d writes", n)
			}
			for _, v := range []string{"never", "TLS"} {
				if n := writes("set chunky-writes = " + v); n < 100 {
					t.Fatalf("chunky-writes %s (no TLS): RETR of 100 lines took %d writes, want one a line", v, n)
				}
			}
		}},
		"clear-text-password": {kind: rowEffect, check: func(t *testing.T) {
			s := newSite(t)
			if capa := eoCapa(s.dial(t)); !eoHas(capa, "USER") {
				t.Fatalf("default CAPA: %q", capa)
			}
			c := s.dial(t, "-p", "1") // never
			if capa := eoCapa(c); eoHas(capa, "USER") {
				t.Fatalf("CAPA with -p1: %q", capa)
			}
			if r := c.do("USER alice"); r != "-ERR [AUTH] You must use stronger authentication such as APOP to connect to this server" {
				t.Fatalf("USER with -p1: %q", r)
			}
			_, _, both, _ := makeCert(t, s.dir, "")
			s.setOptions(t, "set clear-text-password = TLS", fmt.Sprintf("set tls-server-cert-file = %q", both))
			c = s.dial(t)
			if r := c.do("USER alice"); r != "-ERR [AUTH] You must use TLS/SSL or stronger authentication such as APOP to connect to this server" {
				t.Fatalf("USER in clear with clear-text-password TLS: %q", r)
			}
		}},
		"config-file": {kind: rowEffect, check: func(t *testing.T) {
			s := newSite(t)
			if _, g := eoStart(t, s); strings.HasPrefix(g, "+OK ready") {
				t.Fatalf("shy greeting without the included file: %q", g)
			}
			inner := eoFile(t, s, "inner.conf", "set shy")
			s.setOptions(t, fmt.Sprintf("set config-file = %q", inner))
			if _, g := eoStart(t, s); g != "+OK ready  " {
				t.Fatalf("greeting with config-file setting shy: %q", g)
			}
		}},
		"content-length": {kind: rowEffect, check: func(t *testing.T) {
			body := "x\n\nFrom inside the body Sat Nov 28 10:00:00 2026\n" + strings.Repeat("padding line\n", 5)
			box := fmt.Sprintf("From a@example.org Sat Nov 28 10:00:00 2026\nSubject: cl\nContent-Length: %d\n\n%s\n", len(body)+1, body) + msg("two", "second")
			count := func(line string) string {
				s, _ := eoSite(t, box, line)
				return eoLogin(s.dial(t), "alice", "secret")
			}
			if r := count("set content-length"); !strings.HasPrefix(r, "+OK alice has 2 visible messages ") {
				t.Fatalf("content-length on: %q", r)
			}
			if r := count("reset content-length"); !strings.HasPrefix(r, "+OK alice has 3 visible messages ") {
				t.Fatalf("content-length off: %q", r)
			}
		}},
		"debug": {kind: rowEffect, check: func(t *testing.T) {
			// -t turns debug on; debug records (Servicing request) are kept.
			s := newSite(t)
			eoQuit(s.dial(t))
			if tr := eoTrace(t, s.trace); !strings.Contains(tr, `(v4.0.5) Servicing request from "`) {
				t.Fatalf("no debug record:\n%s", tr)
			}
			// reset debug after -t ends the trace file: nothing is written.
			d := newSite(t)
			off := eoFile(t, d, "nodebug.conf", "reset debug")
			eoQuit(d.dial(t, "-f", off))
			if eoExists(d.trace) {
				t.Fatalf("trace file written after reset debug:\n%s", eoRead(t, d.trace))
			}
		}},
		"downcase-user": {kind: rowEffect, check: func(t *testing.T) {
			s := eoUserNameRule(t, "-c", "ALICE")
			if tr := eoTrace(t, s.trace); !strings.Contains(tr, `POP login by user "alice"`) {
				t.Fatalf("login not logged as alice:\n%s", tr)
			}
		}},
		"drac-host": {kind: rowRefused, check: eoUnsupported("drac-host", nil, "-D", "drac.example.org")},
		"fast-update": {kind: rowRefused, check: func(t *testing.T) {
			eoUnsupported("fast-update", nil, "-S", "-F")(t)
			// and the reason holds: the spool keeps its inode through a
			// server-mode update that deletes
			s := newSite(t)
			sp := s.spool(t, "alice", msg("one", "first")+msg("two", "second"))
			before, _ := os.Stat(sp)
			c := s.dial(t, "-S", "-F")
			eoLogin(c, "alice", "secret")
			c.ok("DELE 1")
			eoQuit(c)
			after, err := os.Stat(sp)
			if err != nil || !os.SameFile(before, after) {
				t.Fatalf("spool replaced by fast-update: %v", err)
			}
			if got := eoRead(t, sp); strings.Contains(got, "<one@") || !strings.Contains(got, "<two@") {
				t.Fatalf("spool after QUIT:\n%s", got)
			}
		}},
		"group-bulletins": {kind: rowEffect, check: func(t *testing.T) {
			g, err := user.LookupGroupId(strconv.Itoa(newSite(t).gid))
			if err != nil {
				t.Skipf("the session user's group has no name: %v", err)
			}
			run := func(lines ...string) string {
				return eoBulletinLogin(t, []string{"7." + g.Name, "8.eo-no-such-group"}, append([]string{"set max-bulletins = 5"}, lines...)...)
			}
			if r := run(); !strings.HasPrefix(r, "+OK alice has 2 visible messages ") {
				t.Fatalf("without group-bulletins: %q", r)
			}
			if r := run("set group-bulletins"); !strings.HasPrefix(r, "+OK alice has 1 visible message ") {
				t.Fatalf("with group-bulletins: %q", r)
			}
		}},
		"group-no-server-mode": {kind: rowEffect, check: func(t *testing.T) {
			g, err := user.LookupGroupId(strconv.Itoa(newSite(t).gid))
			if err != nil {
				t.Skipf("the session user's group has no name: %v", err)
			}
			s, _ := eoSite(t, eoModeMsg(), "set server-mode")
			c := s.dial(t)
			eoLogin(c, "alice", "secret")
			if !eoServerMode(c) {
				t.Fatal("server-mode: not in server mode")
			}
			eoQuit(c)
			s.setOptions(t, fmt.Sprintf("set group-no-server-mode = %q", g.Name))
			c = s.dial(t)
			eoLogin(c, "alice", "secret")
			if eoServerMode(c) {
				t.Fatalf("member of %s still in server mode", g.Name)
			}
			eoQuit(c)
		}},
		"group-server-mode": {kind: rowEffect, check: func(t *testing.T) {
			g, err := user.LookupGroupId(strconv.Itoa(newSite(t).gid))
			if err != nil {
				t.Skipf("the session user's group has no name: %v", err)
			}
			s, _ := eoSite(t, eoModeMsg(), `set group-server-mode = "eo-no-such-group"`)
			c := s.dial(t)
			eoLogin(c, "alice", "secret")
			if eoServerMode(c) {
				t.Fatal("server mode for a group alice is not in")
			}
			eoQuit(c)
			s.spool(t, "alice", eoModeMsg()) // the update settled its X-UIDL
			s.setOptions(t, fmt.Sprintf("set group-server-mode = %q", g.Name))
			c = s.dial(t)
			eoLogin(c, "alice", "secret")
			if !eoServerMode(c) {
				t.Fatalf("member of %s not in server mode", g.Name)
			}
			eoQuit(c)
		}},
		"hash-spool": {kind: rowEffect, check: func(t *testing.T) {
			s := newSite(t)
			dir := eoDir(t, filepath.Join(s.spoolDir, compat.HashDir(2, "alice")))
			if !strings.HasSuffix(dir, "/a/l") {
				t.Fatalf("HashDir(2, alice) = %s", dir)
			}
			eoUserFile(t, s, filepath.Join(dir, "alice"), msg("hashed", "in a/l"), 0660)
			c := s.dial(t)
			if r := eoLogin(c, "alice", "secret"); !strings.HasPrefix(r, "+OK alice has 0 visible messages") {
				t.Fatalf("without hash-spool: %q", r)
			}
			eoQuit(c)
			s.setOptions(t, "set hash-spool = 2")
			c = s.dial(t)
			if r := eoLogin(c, "alice", "secret"); !strings.HasPrefix(r, "+OK alice has 1 visible message ") {
				t.Fatalf("hash-spool 2: %q", r)
			}
			if !eoExists(filepath.Join(dir, ".alice.pop")) || eoExists(filepath.Join(s.spoolDir, ".alice.pop")) {
				t.Fatal("temp drop not in the hash directory")
			}
		}},
		"home-dir-mail": {kind: rowEffect, check: func(t *testing.T) {
			s := newSite(t)
			eoOwn(s, s.dir) // the dot-lock is made next to the mailbox
			s.spool(t, "alice", msg("spool", "in spool-dir"))
			eoUserFile(t, s, filepath.Join(s.dir, "Mailbox"), msg("home1", "at home")+msg("home2", "at home"), 0600)
			c := s.dial(t)
			if r := eoLogin(c, "alice", "secret"); !strings.HasPrefix(r, "+OK alice has 1 visible message ") {
				t.Fatalf("without home-dir-mail: %q", r)
			}
			eoQuit(c)
			s.setOptions(t, `set home-dir-mail = "Mailbox"`)
			c = s.dial(t)
			if r := eoLogin(c, "alice", "secret"); !strings.HasPrefix(r, "+OK alice has 2 visible messages ") {
				t.Fatalf("home-dir-mail Mailbox: %q", r)
			}
			c.ok("TOP 1 0")
			if h := strings.Join(c.multi(), "\n"); !strings.Contains(h, "<home1@") {
				t.Fatalf("message 1: %q", h)
			}
		}},
		"keep-temp-drop": {kind: rowEffect, check: func(t *testing.T) {
			run := func(lines ...string) (*site, bool) {
				s, _ := eoSite(t, msg("one", "first"), lines...)
				c := s.dial(t)
				eoLogin(c, "alice", "secret")
				eoQuit(c)
				return s, eoExists(filepath.Join(s.spoolDir, ".alice.pop"))
			}
			if _, kept := run(); kept {
				t.Fatal("temp drop left without keep-temp-drop")
			}
			s, kept := run("set keep-temp-drop")
			if !kept {
				t.Fatal("temp drop removed with keep-temp-drop")
			}
			if n := eoSize(t, filepath.Join(s.spoolDir, ".alice.pop")); n != 0 {
				t.Fatalf("kept temp drop holds %d bytes", n)
			}
		}},
		"kerberos":         {kind: rowRefused, check: eoUnsupported("kerberos", nil, "-k")},
		"kerberos-service": {kind: rowRefused, check: eoUnsupported("kerberos-service", nil, "-K", "pop3")},
		"log-facility": {kind: rowConfigOnly,
			reason: "records go to syslog with this facility, and the test host has no syslog socket to read; shown through --print-config and the -y check",
			check: func(t *testing.T) {
				s := newSite(t)
				print := func(args ...string) string {
					out, err := exec.Command(popperBin, append([]string{"-f", s.config}, args...)...).CombinedOutput()
					if err != nil {
						t.Fatalf("popper %v: %v\n%s", args, err, out)
					}
					return string(out)
				}
				def, _ := compat.DefaultOptions().Value("log-facility")
				if out := print("--print-config"); !strings.Contains(out, "\nset log-facility = "+def+"\n") {
					t.Fatalf("default facility %s not printed:\n%s", def, out)
				}
				if out := print("-y", "local5", "--print-config"); !strings.Contains(out, "\nset log-facility = local5\n") {
					t.Fatalf("-y local5 not printed:\n%s", out)
				}
				s.setOptions(t, "set log-facility = local3")
				if out := print("--print-config"); !strings.Contains(out, "\nset log-facility = local3\n") {
					t.Fatalf("log-facility local3 not printed:\n%s", out)
				}
				out, err := exec.Command(popperBin, "-y", "local9").CombinedOutput()
				if err == nil || !strings.Contains(string(out), `-y: unrecognized log facility "local9"; valid are: mail, local0, local1, local2, local3, local4, local5, local6, local7`) {
					t.Fatalf("-y local9: %v\n%s", err, out)
				}
			}},
		"log-login": {kind: rowEffect, check: func(t *testing.T) {
			run := func(lines ...string) string { return eoTraceOfLogin(t, lines...) }
			if tr := run(); !regexp.MustCompile(`\] \(v4\.0\.5\) POP login by user "alice" at \(\S+\) 127\.0\.0\.1\n`).MatchString(tr) {
				t.Fatalf("default login record missing:\n%s", tr)
			}
			tr := run(`set log-login = "LOGIN %1 FROM %3 (%0)"`)
			if !strings.Contains(tr, "] LOGIN alice FROM 127.0.0.1 (4.0.5)\n") || strings.Contains(tr, "POP login by user") {
				t.Fatalf("log-login template:\n%s", tr)
			}
			if tr := run(`set log-login = ""`); strings.Contains(tr, "login by") || strings.Contains(tr, "LOGIN") {
				t.Fatalf("empty log-login still logs:\n%s", tr)
			}
		}},
		"mail-command": {kind: rowRefused, check: func(t *testing.T) {
			eoUnsupported("mail-command", []string{`set mail-command = "/usr/sbin/sendmail"`})(t)
			s := newSite(t)
			s.setOptions(t, `set mail-command = "/usr/sbin/sendmail"`)
			c := s.dial(t)
			eoLogin(c, "alice", "secret")
			if r := c.do("XTND XMIT"); r != "-ERR XTND XMIT is not supported by this server" {
				t.Fatalf("XTND XMIT: %q", r)
			}
		}},
		"mail-lock-check": {kind: rowNoEffect,
			reason: "qpopper's effect is kept: during a long copy, every N messages the dot-lock is touched once 180 s (platform.DotLockRefresh) have passed, and a lock found gone is logged; no test session lasts that long",
			check: func(t *testing.T) {
				eoAccepted(t, nil, "-L", "1")
			}},
		"apop-db": {kind: rowEffect, check: func(t *testing.T) {
			s := newSite(t)
			s.setOptions(t, "set auth-delay = 0")
			c, g := eoStart(t, s)
			if strings.Contains(g, "<") {
				t.Fatalf("greeting without an APOP database: %q", g)
			}
			if r := c.do("APOP alice 0123456789abcdef0123456789abcdef"); r != `-ERR Unknown command: "apop".` {
				t.Fatalf("APOP without a database: %q", r)
			}
			db := eoAPOPSecret(t, s, "alice", "tanstaaf")
			c, g = eoStart(t, s)
			ts := regexp.MustCompile(`<[^>]+>`).FindString(g)
			if ts == "" {
				t.Fatalf("greeting with %s: %q", db, g)
			}
			if r := c.do("APOP alice " + md5hex(ts+"tanstaaf")); !strings.HasPrefix(r, "+OK alice has 0 visible messages") {
				t.Fatalf("APOP with the secret: %q", r)
			}
			if r := s.dial(t).do("USER alice"); r != "-ERR [AUTH] You must use stronger authentication such as AUTH or APOP to connect to this server" {
				t.Fatalf("USER of an APOP user: %q", r)
			}
			s.setOptions(t, `set apop-db = ""`)
			if _, g := eoStart(t, s); strings.Contains(g, "<") {
				t.Fatalf("greeting with apop-db empty: %q", g)
			}
		}},
		"pam-service": {kind: rowEffect, check: func(t *testing.T) {
			bin := pamPopper(t)
			allow, deny := pamService(t, pamUnixStack), pamService(t, "auth required pam_deny.so\naccount required pam_deny.so\n")
			s := systemSite(t, "set auth-delay = 0", "set auth-source = pam")
			u := addSysUser(t, s, "YESCRYPT", "pw pw", "")
			login := func(service string) string {
				s.setOptions(t, fmt.Sprintf("set pam-service = %q", service))
				c := s.startBinary(t, bin)
				c.line()
				return eoLogin(c, u.name, u.pass)
			}
			if r := login(allow); !strings.HasPrefix(r, "+OK "+u.name+" has 0 visible messages") {
				t.Fatalf("pam-service %s (pam_unix): %q", allow, r)
			}
			if r := login(deny); r != `-ERR [AUTH] Password supplied for "`+u.name+`" is incorrect.` {
				t.Fatalf("pam-service %s (pam_deny): %q", deny, r)
			}
		}},
		"max-auth-failures": {kind: rowEffect, check: func(t *testing.T) {
			s := newSite(t)
			s.setOptions(t, "set auth-delay = 0")
			c := s.dial(t)
			for i := 0; i < 2; i++ {
				c.ok("USER alice")
				c.do("PASS wrong")
			}
			c.ok("USER alice") // the default, 3, leaves the connection open after 2
			s.setOptions(t, "set max-auth-failures = 2")
			c = s.dial(t)
			for i := 0; i < 2; i++ {
				c.ok("USER alice")
				if r := c.do("PASS wrong"); r != `-ERR [AUTH] Password supplied for "alice" is incorrect.` {
					t.Fatalf("failure %d: %q", i+1, r)
				}
			}
			c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			if l, err := c.r.ReadString('\n'); err == nil {
				t.Fatalf("after 2 failures the connection is open: %q", l)
			}
			c.cmd.Wait()
			if tr := eoTrace(t, s.trace); !strings.Contains(tr, "[AUTH] 2 failed logins, the last for alice, from host (") {
				t.Fatalf("no record of the closed connection:\n%s", tr)
			}
		}},
		"max-sessions":             {kind: rowEffect, check: eoMaxSessions},
		"max-sessions-per-address": {kind: rowEffect, check: eoMaxSessionsPerAddress},
		"pid-file":                 {kind: rowEffect, check: eoPidFile},
		"proxy-protocol":           {kind: rowEffect, check: eoProxyProtocol},
		"proxy-trusted":            {kind: rowEffect, check: eoProxyTrusted},
		"shutdown-grace":           {kind: rowEffect, check: eoShutdownGrace},
		"max-bulletins": {kind: rowEffect, check: func(t *testing.T) {
			run := func(lines ...string) string {
				return eoBulletinLogin(t, []string{"5", "6", "7"}, lines...)
			}
			if r := run(); !strings.HasPrefix(r, "+OK alice has 1 visible message ") {
				t.Fatalf("new user, default max-bulletins 1: %q", r)
			}
			if r := run("set max-bulletins = 2"); !strings.HasPrefix(r, "+OK alice has 2 visible messages ") {
				t.Fatalf("new user, max-bulletins 2: %q", r)
			}
		}},
		"no-atomic-open": {kind: rowEffect, check: func(t *testing.T) {
			// The dot-lock is made by link() from a unique file named
			// ".<lock name>.<host>.<pid>.<hex>" next to it; where that
			// cannot be, popper falls back to O_EXCL, unless
			// no-atomic-open insists on link(). With a mailbox name of 240
			// bytes the lock name (245) fits in NAME_MAX (255) and the
			// unique name does not: only no-atomic-open fails.
			box := strings.Repeat("m", 240)
			run := func(lines ...string) string {
				s := newSite(t)
				eoOwn(s, s.dir)
				eoUserFile(t, s, filepath.Join(s.dir, box), msg("one", "first"), 0600)
				s.setOptions(t, append([]string{fmt.Sprintf("set home-dir-mail = %q", box)}, lines...)...)
				return eoLogin(s.dial(t), "alice", "secret")
			}
			if r := run(); !strings.HasPrefix(r, "+OK alice has 1 visible message ") {
				t.Fatalf("O_EXCL dot-lock: %q", r)
			}
			if r := run("set no-atomic-open"); !strings.HasPrefix(r, "-ERR [SYS/TEMP] ") || !strings.Contains(strings.ToLower(r), "too long") {
				t.Fatalf("link() dot-lock with a unique name over NAME_MAX: %q", r)
			}
		}},
		"nonauth-file": {kind: rowEffect, check: func(t *testing.T) {
			eoAccessList(t, "nonauth-file", "bob", "alice")
		}},
		"old-style-uid": {kind: rowEffect, check: func(t *testing.T) {
			uid := func(lines ...string) string {
				s, _ := eoSite(t, msg("one", "first"), lines...)
				c := s.dial(t)
				eoLogin(c, "alice", "secret")
				return eoUID(c)
			}
			if u := uid(); len(u) != 20 {
				t.Fatalf("default UID %q: want 20 characters", u)
			}
			if u := uid("set old-style-uid"); !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(u) {
				t.Fatalf("old-style-uid UID %q: want 32 hex digits", u)
			}
		}},
		"popper-userdb": {kind: rowEffect, check: func(t *testing.T) {
			s := newSite(t)
			db := filepath.Join(s.dir, "other-userdb")
			writeFile(t, db, fmt.Sprintf("bob:{PLAIN}pw:%d:%d::%s:/bin/sh\n", s.uid, s.gid, s.dir), 0600)
			more := eoFile(t, s, "userdb.conf", fmt.Sprintf("set popper-userdb = %q", db))
			if r := eoLogin(s.dial(t, "-f", more), "bob", "pw"); !strings.HasPrefix(r, "+OK bob has 0 visible messages") {
				t.Fatalf("bob of popper-userdb: %q", r)
			}
		}},
		"reverse-lookup": {kind: rowEffect, check: func(t *testing.T) {
			names, err := net.LookupAddr("127.0.0.1")
			if err != nil || len(names) == 0 {
				t.Skipf("127.0.0.1 has no name here (%v): reverse-lookup cannot make a difference", err)
			}
			name := strings.TrimSuffix(names[0], ".")
			run := func(flags ...string) string {
				s := newSite(t)
				s.setOptions(t, eoLoginLine)
				c := s.dial(t, flags...)
				eoLogin(c, "alice", "secret")
				eoQuit(c)
				return eoTrace(t, s.trace)
			}
			if tr := run(); !strings.Contains(tr, "] LOGIN alice HOST "+name+" ADDR 127.0.0.1\n") {
				t.Fatalf("reverse-lookup on, want host %s:\n%s", name, tr)
			}
			if tr := run("-R"); !strings.Contains(tr, "] LOGIN alice HOST 127.0.0.1 ADDR 127.0.0.1\n") {
				t.Fatalf("-R:\n%s", tr)
			}
			// qpopper 4.0.5's sense: true is no_rev_lookup, as -R.
			off := eoFile(t, newSite(t), "rl.conf", "set reverse-lookup = true")
			if tr := run("-f", off); !strings.Contains(tr, "] LOGIN alice HOST 127.0.0.1 ADDR 127.0.0.1\n") {
				t.Fatalf("set reverse-lookup = true:\n%s", tr)
			}
		}},
		"server-mode": {kind: rowEffect, check: func(t *testing.T) {
			s := newSite(t)
			sp := s.spool(t, "alice", eoModeMsg()+msg("two", "second"))
			drop := filepath.Join(s.spoolDir, ".alice.pop")
			c := s.dial(t)
			eoLogin(c, "alice", "secret")
			if eoServerMode(c) {
				t.Fatal("default session in server mode")
			}
			eoQuit(c)
			s.spool(t, "alice", eoModeMsg()+msg("two", "second")) // the update settled its X-UIDL
			c = s.dial(t, "-S")
			eoLogin(c, "alice", "secret")
			if !eoServerMode(c) {
				t.Fatal("-S session not in server mode")
			}
			c.ok("DELE 2")
			eoQuit(c)
			if got := eoRead(t, sp); !strings.Contains(got, "<mode@") || strings.Contains(got, "<two@") || eoExists(drop) {
				t.Fatalf("after the server-mode update: temp drop %v, spool:\n%s", eoExists(drop), got)
			}
		}},
		"shy": {kind: rowEffect, check: func(t *testing.T) {
			s := newSite(t)
			c, g := eoStart(t, s)
			if !strings.HasPrefix(g, "+OK Qpopper (version 4.0.5) at ") {
				t.Fatalf("default greeting: %q", g)
			}
			if capa := eoCapa(c); !eoHas(capa, "IMPLEMENTATION Qpopper-version-4.0.5") {
				t.Fatalf("default CAPA: %q", capa)
			}
			s.setOptions(t, "set shy")
			c, g = eoStart(t, s)
			if g != "+OK ready  " { // qpopper's shy greeting, with no APOP timestamp
				t.Fatalf("shy greeting: %q", g)
			}
			if capa := eoCapa(c); eoHasPrefix(capa, "IMPLEMENTATION") {
				t.Fatalf("shy CAPA before login: %q", capa)
			}
			eoLogin(c, "alice", "secret")
			if capa := eoCapa(c); !eoHas(capa, "IMPLEMENTATION Qpopper-version-4.0.5") {
				t.Fatalf("shy CAPA after login: %q", capa)
			}
		}},
		"spool-dir": {kind: rowEffect, check: func(t *testing.T) {
			s := newSite(t)
			s.spool(t, "alice", msg("one", "first"))
			other := eoDir(t, filepath.Join(s.dir, "othermail"))
			eoUserFile(t, s, filepath.Join(other, "alice"), msg("a", "1")+msg("b", "2")+msg("c", "3"), 0660)
			s.setOptions(t, fmt.Sprintf("set spool-dir = %q", other))
			c := s.dial(t)
			if r := eoLogin(c, "alice", "secret"); !strings.HasPrefix(r, "+OK alice has 3 visible messages ") {
				t.Fatalf("spool-dir %s: %q", other, r)
			}
			if !eoExists(filepath.Join(other, ".alice.pop")) || eoExists(filepath.Join(s.spoolDir, ".alice.pop")) {
				t.Fatal("temp drop not in the configured spool-dir")
			}
		}},
		"spool-locks": {kind: rowEffect, check: func(t *testing.T) {
			if runtime.GOOS != "linux" {
				t.Skip("flock and fcntl locks are independent of each other only on Linux")
			}
			// The test holds an fcntl lock on the spool: a session that
			// takes fcntl locks waits for it, one that takes only flock
			// does not.
			run := func(kinds string, wantWait bool) {
				s, sp := eoSite(t, msg("one", "first"), fmt.Sprintf("set spool-locks = %q", kinds))
				f, err := os.OpenFile(sp, os.O_RDWR, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0}
				if err := syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lk); err != nil {
					t.Fatal(err)
				}
				c := s.dial(t)
				c.ok("USER alice")
				fmt.Fprintf(c.conn, "PASS secret\r\n")
				if !wantWait {
					if r := c.line(); !strings.HasPrefix(r, "+OK alice has 1 visible message ") {
						t.Fatalf("spool-locks %s with an fcntl lock held: %q", kinds, r)
					}
					return
				}
				c.conn.SetReadDeadline(time.Now().Add(1500 * time.Millisecond))
				if early, err := c.r.ReadString('\n'); err == nil || early != "" {
					t.Fatalf("spool-locks %s: answered %q while the spool was fcntl-locked", kinds, early)
				}
				lk.Type = syscall.F_UNLCK
				syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lk)
				if r := c.line(); !strings.HasPrefix(r, "+OK alice has 1 visible message ") {
					t.Fatalf("spool-locks %s after unlock: %q", kinds, r)
				}
			}
			run("fcntl", true)
			run("flock", false)
			run("dotlock,flock", false)
			run("dotlock", false) // the dotlock alone: no kernel lock
			run("lockf", true)    // lockf is fcntl
		}},
		"spool-options": {kind: rowEffect, check: func(t *testing.T) {
			run := func(flags ...string) bool {
				s := newSite(t)
				s.spool(t, "alice", msg("one", "first"))
				writeFile(t, filepath.Join(s.spoolDir, ".alice.qpopper-options"), "set keep-temp-drop\n", 0644)
				c := s.dial(t, flags...)
				eoLogin(c, "alice", "secret")
				eoQuit(c)
				return eoExists(filepath.Join(s.spoolDir, ".alice.pop"))
			}
			if run() {
				t.Fatal("spool options file read without -U")
			}
			if !run("-U") {
				t.Fatal("-U: keep-temp-drop of the spool options file not applied")
			}
		}},
		"statistics": {kind: rowEffect, check: func(t *testing.T) {
			run := func(line string) string {
				s, _ := eoSite(t, msg("one", "first")+msg("two", "second"), line)
				c := s.dial(t)
				eoLogin(c, "alice", "secret")
				c.ok("DELE 1")
				eoQuit(c)
				return eoTrace(t, s.trace)
			}
			if tr := run("set statistics"); !regexp.MustCompile(`\] Stats: alice 1 \d+ 1 \d+ \S+ 127\.0\.0\.1\n`).MatchString(tr) {
				t.Fatalf("statistics on:\n%s", tr)
			}
			if tr := run("reset statistics"); strings.Contains(tr, "Stats:") {
				t.Fatalf("statistics off:\n%s", tr)
			}
		}},
		"temp-dir": {kind: rowEffect, check: func(t *testing.T) {
			s := newSite(t)
			s.spool(t, "alice", msg("one", "first"))
			drops := eoDir(t, filepath.Join(s.dir, "drops"))
			s.setOptions(t, fmt.Sprintf("set temp-dir = %q", drops))
			c := s.dial(t)
			eoLogin(c, "alice", "secret")
			if !eoExists(filepath.Join(drops, ".alice.pop")) || eoExists(filepath.Join(s.spoolDir, ".alice.pop")) {
				t.Fatal("temp drop not in temp-dir")
			}
		}},
		"temp-name": {kind: rowEffect, check: func(t *testing.T) {
			s, _ := eoSite(t, msg("one", "first"), `set temp-name = "%s.eo-drop"`)
			c := s.dial(t)
			eoLogin(c, "alice", "secret")
			if !eoExists(filepath.Join(s.spoolDir, "alice.eo-drop")) || eoExists(filepath.Join(s.spoolDir, ".alice.pop")) {
				t.Fatal("temp drop not named by temp-name")
			}
		}},
		"timeout": {kind: rowEffect, check: func(t *testing.T) {
			s := newSite(t)
			c := s.dial(t, "-T", "1")
			eoLogin(c, "alice", "secret")
			start := time.Now()
			if r := c.line(); !strings.HasPrefix(r, "-ERR POP timeout from ") {
				t.Fatalf("idle with -T 1: %q", r)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Fatalf("timed out after %v", d)
			}
			c.cmd.Wait()
			if tr := eoTrace(t, s.trace); !regexp.MustCompile(`\] \(v4\.0\.5\) Timeout \(1 secs\) during nw read from alice at \S+ \(127\.0\.0\.1\)\n`).MatchString(tr) {
				t.Fatalf("no timeout record:\n%s", tr)
			}
		}},
		"timing": {kind: rowEffect, check: func(t *testing.T) {
			run := func(lines ...string) string { return eoTraceOfLogin(t, lines...) }
			if tr := run("set timing"); !regexp.MustCompile(`\] \(v4\.0\.5\) Timing for alice@\S+ \(normal\) auth=\d+ init=\d+ clean=\d+\n`).MatchString(tr) {
				t.Fatalf("timing on:\n%s", tr)
			}
			if tr := run(); strings.Contains(tr, "Timing for") {
				t.Fatalf("timing off:\n%s", tr)
			}
		}},
		"tls-cipher-list": {kind: rowEffect, check: func(t *testing.T) {
			s := newSite(t)
			cert, key, _, _ := makeCert(t, s.dir, "")
			s.setOptions(t, "set tls-support = stls", fmt.Sprintf("set tls-server-cert-file = %q", cert), fmt.Sprintf("set tls-private-key-file = %q", key))
			aes256 := &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}}
			if _, err := s.dial(t).startTLS(aes256.Clone()); err != nil {
				t.Fatalf("AES256 client without tls-cipher-list: %v", err)
			}
			s.setOptions(t, `set tls-cipher-list = "ECDHE-ECDSA-AES128-GCM-SHA256"`)
			if _, err := s.dial(t).startTLS(aes256.Clone()); err == nil {
				t.Fatal("AES256 client accepted with tls-cipher-list naming only AES128")
			}
			st, err := s.dial(t).startTLS(&tls.Config{MaxVersion: tls.VersionTLS12})
			if err != nil || st.CipherSuite != tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 {
				t.Fatalf("tls-cipher-list suite: %v, %s", err, tls.CipherSuiteName(st.CipherSuite))
			}
		}},
		"tls-identity-file": {kind: rowEffect, check: func(t *testing.T) {
			// SSLPlus' one file with certificate and key, used when no
			// tls-server-cert-file is set.
			s := newSite(t)
			_, _, both, der := makeCert(t, s.dir, "")
			s.setOptions(t, "set tls-support = stls")
			eoConfigError(t, s, "TLS requested (tls-support STLS, clear-text-password default) but neither tls-server-cert-file nor tls-identity-file is set")
			s.setOptions(t, fmt.Sprintf("set tls-identity-file = %q", both))
			st, err := s.dial(t).startTLS(&tls.Config{})
			if err != nil || len(st.PeerCertificates) == 0 || string(st.PeerCertificates[0].Raw) != string(der) {
				t.Fatalf("certificate presented is not the identity file's: %v", err)
			}
		}},
		"tls-options": {kind: rowRefused, check: eoUnsupported("tls-options", []string{"set tls-options = 0x400000", "set tls-options = 0x4"})},
		"tls-passphrase": {kind: rowEffect, check: func(t *testing.T) {
			s := newSite(t)
			cert, key, _, _ := makeCert(t, s.dir, "eo secret")
			s.setOptions(t, "set tls-support = stls", fmt.Sprintf("set tls-server-cert-file = %q", cert), fmt.Sprintf("set tls-private-key-file = %q", key))
			eoConfigError(t, s, fmt.Sprintf("TLS private key %s is encrypted and tls-passphrase is not set", key))
			s.setOptions(t, `set tls-passphrase = "eo secret"`)
			if _, err := s.dial(t).startTLS(&tls.Config{}); err != nil {
				t.Fatalf("with tls-passphrase: %v", err)
			}
		}},
		"tls-private-key-file": {kind: rowEffect, check: func(t *testing.T) {
			s := newSite(t)
			cert, key, _, _ := makeCert(t, s.dir, "")
			s.setOptions(t, "set tls-support = stls", fmt.Sprintf("set tls-server-cert-file = %q", cert))
			eoConfigError(t, s, "TLS certificate "+cert+": ")
			s.setOptions(t, fmt.Sprintf("set tls-private-key-file = %q", key))
			if _, err := s.dial(t).startTLS(&tls.Config{}); err != nil {
				t.Fatalf("with tls-private-key-file: %v", err)
			}
		}},
		"tls-server-cert-file": {kind: rowEffect, check: func(t *testing.T) {
			s := newSite(t)
			_, _, both, der := makeCert(t, s.dir, "")
			s.setOptions(t, "set tls-support = stls")
			eoConfigError(t, s, "TLS requested (tls-support STLS, clear-text-password default) but neither tls-server-cert-file nor tls-identity-file is set")
			// a tls-server-cert-file wins over a tls-identity-file
			_, _, other, _ := makeCert(t, t.TempDir(), "")
			s.setOptions(t, fmt.Sprintf("set tls-identity-file = %q", other), fmt.Sprintf("set tls-server-cert-file = %q", both))
			st, err := s.dial(t).startTLS(&tls.Config{})
			if err != nil || len(st.PeerCertificates) == 0 || string(st.PeerCertificates[0].Raw) != string(der) {
				t.Fatalf("certificate presented is not the file's: %v", err)
			}
		}},
		"tls-support": {kind: rowEffect, check: func(t *testing.T) {
			s := newSite(t)
			s.spool(t, "alice", msg("one", "first"))
			c := s.dial(t)
			if capa := eoCapa(c); eoHas(capa, "STLS") {
				t.Fatalf("default CAPA: %q", capa)
			}
			if r := c.do("STLS"); r != "-ERR Command not enabled" {
				t.Fatalf("STLS without tls-support: %q", r)
			}
			_, _, both, _ := makeCert(t, s.dir, "")
			s.setOptions(t, fmt.Sprintf("set tls-server-cert-file = %q", both))
			// STLS
			c = s.dial(t, "-l", "1")
			if capa := eoCapa(c); !eoHas(capa, "STLS") {
				t.Fatalf("CAPA with -l1: %q", capa)
			}
			if _, err := c.startTLS(&tls.Config{}); err != nil {
				t.Fatal(err)
			}
			// qpopper lists STLS whenever tls-support is STLS (pop_extend.c).
			if capa := eoCapa(c); !eoHas(capa, "STLS") {
				t.Fatalf("CAPA inside TLS: %q", capa)
			}
			if r := eoLogin(c, "alice", "secret"); !strings.HasPrefix(r, "+OK alice has 1 visible message ") {
				t.Fatalf("PASS inside TLS: %q", r)
			}
			eoQuit(c)
			// alternate-port: TLS from the first byte
			s.setOptions(t, "set tls-support = alternate-port")
			c = s.start(t)
			if _, err := c.handshake(&tls.Config{}); err != nil {
				t.Fatalf("implicit TLS: %v", err)
			}
			if g := c.line(); !strings.HasPrefix(g, "+OK Qpopper (version 4.0.5) at ") {
				t.Fatalf("greeting over implicit TLS: %q", g)
			}
			if r := eoLogin(c, "alice", "secret"); !strings.HasPrefix(r, "+OK alice has 1 visible message ") {
				t.Fatalf("PASS over implicit TLS: %q", r)
			}
		}},
		"tls-version": {kind: rowEffect, check: func(t *testing.T) {
			s := newSite(t)
			_, _, both, _ := makeCert(t, s.dir, "")
			s.setOptions(t, "set tls-support = stls", fmt.Sprintf("set tls-server-cert-file = %q", both))
			tls10 := &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10}
			if _, err := s.dial(t).startTLS(tls10.Clone()); err == nil {
				t.Fatal("TLS 1.0 client accepted by default")
			}
			s.setOptions(t, "set tls-version = TLSv1")
			st, err := s.dial(t).startTLS(tls10.Clone())
			if err != nil || st.Version != tls.VersionTLS10 {
				t.Fatalf("TLS 1.0 client with tls-version TLSv1: %v, version %x", err, st.Version)
			}
		}},
		"tls-workarounds": {kind: rowRefused, check: eoUnsupported("tls-workarounds", []string{"set tls-workarounds"})},
		"tracefile": {kind: rowEffect, check: func(t *testing.T) {
			s := newSite(t)
			other := filepath.Join(s.dir, "other-trace")
			more := eoFile(t, s, "trace.conf", fmt.Sprintf("set tracefile = %q", other))
			c := s.dial(t, "-f", more)
			eoLogin(c, "alice", "secret")
			eoQuit(c)
			if tr := eoTrace(t, other); !strings.Contains(tr, `POP login by user "alice"`) {
				t.Fatalf("tracefile %s:\n%s", other, tr)
			}
			if eoExists(s.trace) {
				t.Fatalf("records still in the -t file:\n%s", eoRead(t, s.trace))
			}
		}},
		"trim-domain": {kind: rowEffect, check: func(t *testing.T) {
			eoUserNameRule(t, "-C", "alice@example.org")
		}},
		"update-on-abort": {kind: rowEffect, check: func(t *testing.T) {
			run := func(lines ...string) string {
				return eoSpoolAfter(t, lines, func(c *client) {
					c.ok("DELE 1")
					c.conn.Close()
					c.cmd.Wait()
				})
			}
			if got := run(); strings.Contains(got, "<one@") || !strings.Contains(got, "<two@") {
				t.Fatalf("update-on-abort on (default), spool after a dropped session:\n%s", got)
			}
			if got := run("reset update-on-abort"); !strings.Contains(got, "<one@") || !strings.Contains(got, "<two@") {
				t.Fatalf("update-on-abort off, spool after a dropped session:\n%s", got)
			}
		}},
		"update-status-headers": {kind: rowEffect, check: func(t *testing.T) {
			orig := msg("one", "first") + msg("two", "second")
			run := func(flags []string, lines ...string) string {
				s, sp := eoSite(t, orig, lines...)
				c := s.dial(t, flags...)
				eoLogin(c, "alice", "secret")
				c.ok("RETR 1")
				c.multi()
				eoQuit(c)
				return eoRead(t, sp)
			}
			for _, mode := range [][]string{nil, {"-S"}} {
				if got := run(mode); !strings.Contains(got, "\nX-UIDL: ") || !strings.Contains(got, "\nStatus: RO\n") || !strings.Contains(got, "\nStatus: U\n") {
					t.Fatalf("%v update-status-headers on (default):\n%s", mode, got)
				}
			}
			// Off: no Status: header is added. The normal-mode update
			// still writes X-UIDL as it copies each message back
			// (doc/qpopper.md, "Update at QUIT"); a server-mode session
			// that only read leaves the spool as it was ("UIDs": without
			// update-status-headers they are never written).
			if got := run(nil, "reset update-status-headers"); strings.Contains(got, "Status:") {
				t.Fatalf("update-status-headers off, Status: written:\n%s", got)
			}
			if got := run([]string{"-S"}, "reset update-status-headers"); got != orig {
				t.Fatalf("update-status-headers off, server mode, spool changed:\n%s", got)
			}
		}},
		"user-options": {kind: rowEffect, check: func(t *testing.T) {
			run := func(flags ...string) (string, *site) {
				s := newSite(t)
				s.spool(t, "alice", msg("one", "first"))
				writeFile(t, filepath.Join(s.dir, ".qpopper-options"), "reset statistics\nset keep-temp-drop\n", 0644)
				c := s.dial(t, flags...)
				eoLogin(c, "alice", "secret")
				c.ok("DELE 1")
				eoQuit(c)
				return eoTrace(t, s.trace), s
			}
			if tr, _ := run(); !strings.Contains(tr, "Stats: alice 1 ") {
				t.Fatalf("user options file read without -u:\n%s", tr)
			}
			tr, s := run("-u")
			if strings.Contains(tr, "Stats:") {
				t.Fatalf("-u: reset statistics of ~/.qpopper-options not applied:\n%s", tr)
			}
			refusal := fmt.Sprintf(`Attempt to use restricted option "keep-temp-drop" at line 2 of user config file %s/.qpopper-options`, s.dir)
			if !strings.Contains(tr, refusal) || eoExists(filepath.Join(s.spoolDir, ".alice.pop")) {
				t.Fatalf("-u: restricted keep-temp-drop not refused (want %q):\n%s", refusal, tr)
			}
		}},
		"UW-kluge": {kind: rowEffect, check: func(t *testing.T) {
			internal := "From MAILER-DAEMON Sat Nov 28 08:00:00 2026\nDate: Sat, 28 Nov 2026 08:00:00 +0000\n" +
				"From: Mail System Internal Data <MAILER-DAEMON@example.org>\n" +
				"Subject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA\nX-IMAP: 1764316800 0000000002\n\n" +
				"This text is part of the internal format of your mail folder, and is not\na real message.\n\n"
			run := func(lines ...string) string {
				s, _ := eoSite(t, internal+msg("one", "first"), lines...)
				return eoLogin(s.dial(t), "alice", "secret")
			}
			if r := run(); !strings.HasPrefix(r, "+OK alice has 2 visible messages (0 hidden) ") {
				t.Fatalf("without UW-kluge: %q", r)
			}
			if r := run("set UW-kluge"); !strings.HasPrefix(r, "+OK alice has 1 visible message (1 hidden) ") {
				t.Fatalf("UW-kluge: %q", r)
			}
			if r := run("set UW-kludge"); !strings.HasPrefix(r, "+OK alice has 1 visible message (1 hidden) ") {
				t.Fatalf("UW-kludge (alias): %q", r)
			}
		}},
	}
}

// TestEveryOptionRestriction checks every option's Restrict field against
// the per-user option files: each option is written into
// ~/.qpopper-options (read with -u) and the spool-dir options file (read
// with -U) at the value it already has, and popper must refuse exactly the
// restricted ones, with qpopper's texts and line numbers, and take the
// others.
func TestEveryOptionRestriction(t *testing.T) {
	s := newSite(t)
	s.spool(t, "alice", msg("one", "first"))
	out, err := exec.Command(popperBin, "-f", s.config, "-t", s.trace, "--userdb", s.userdb, "--print-config").CombinedOutput()
	if err != nil {
		t.Fatalf("--print-config: %v\n%s", err, out)
	}
	current := map[string]string{} // option name → its line in qpopper syntax
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && (f[0] == "set" || f[0] == "reset") {
			current[f[1]] = l
		}
	}
	userFile := filepath.Join(s.dir, ".qpopper-options")
	spoolFile := filepath.Join(s.spoolDir, ".alice.qpopper-options")
	var user, spool []string
	var want, unwanted []string
	for _, o := range compat.AllOptions() {
		line, ok := current[o.Name]
		if o.Name == "config-file" {
			line, ok = `set config-file = "/nonexistent/eo.conf"`, true
		}
		if !ok {
			t.Errorf("option %s not printed by --print-config", o.Name)
			continue
		}
		user = append(user, line)
		spool = append(spool, line)
		refusedUser := fmt.Sprintf(`Attempt to use restricted option "%s" at line %d of user config file %s`, o.Name, len(user), userFile)
		lateUser := fmt.Sprintf(`The "%s" option cannot be set after a client has connected (line %d of config file %s)`, o.Name, len(user), userFile)
		lateSpool := fmt.Sprintf(`The "%s" option cannot be set after a client has connected (line %d of config file %s)`, o.Name, len(spool), spoolFile)
		switch o.Restrict {
		case compat.ResUser:
			want = append(want, refusedUser)
			unwanted = append(unwanted, lateSpool)
		case compat.ResInit:
			want = append(want, lateUser, lateSpool)
		default:
			unwanted = append(unwanted, refusedUser, lateUser, lateSpool)
		}
	}
	// includes are refused in both files (the files are opened with the
	// user's privileges and nothing else may be)
	want = append(want,
		"Unable to open configuration file /nonexistent/eo.conf: including files is not allowed here (0)")
	writeFile(t, userFile, strings.Join(user, "\n")+"\n", 0644)
	writeFile(t, spoolFile, strings.Join(spool, "\n")+"\n", 0644)

	c := s.dial(t, "-u", "-U")
	if r := eoLogin(c, "alice", "secret"); !strings.HasPrefix(r, "+OK alice has 1 visible message ") {
		t.Fatalf("PASS with every option in both files: %q", r)
	}
	eoQuit(c)
	tr := eoTrace(t, s.trace)
	for _, w := range want {
		if !strings.Contains(tr, "] "+w+"\n") {
			t.Errorf("trace lacks %q", w)
		}
	}
	for _, u := range unwanted {
		if strings.Contains(tr, u) {
			t.Errorf("trace has %q", u)
		}
	}
	if n := strings.Count(tr, "including files is not allowed here"); n != 2 {
		t.Errorf("%d include refusals, want one per file", n)
	}
	if t.Failed() {
		t.Logf("trace:\n%s", tr)
	}
}
