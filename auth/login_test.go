package auth

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"time"
)

// fakeClock advances only when the policy sleeps, or by cost when a
// source is asked (the time a hash check takes).
type fakeClock struct {
	t     time.Time
	slept []time.Duration
}

func (c *fakeClock) now() time.Time { return c.t }
func (c *fakeClock) sleep(d time.Duration) {
	c.slept = append(c.slept, d)
	c.t = c.t.Add(d)
}

// costlySource answers like the system source, taking cost of the clock
// for every check of a known user (an unknown one is answered at once,
// which is exactly what must not show).
type costlySource struct {
	clock *fakeClock
	cost  time.Duration
	accts map[string]*Account
	pass  map[string]string
	err   map[string]error
}

func (s *costlySource) Name() string      { return "test" }
func (s *costlySource) Problems() []error { return nil }
func (s *costlySource) Authenticate(name, password string) (*Account, error) {
	a := s.accts[name]
	if a == nil {
		return nil, ErrUnknownUser
	}
	s.clock.t = s.clock.t.Add(s.cost)
	if err := s.err[name]; err != nil {
		return a, err
	}
	if s.pass[name] != password {
		return nil, ErrWrongPassword
	}
	return a, nil
}
func (s *costlySource) Lookup(name string) (*Account, error) {
	if a := s.accts[name]; a != nil {
		return a, s.err[name]
	}
	return nil, ErrUnknownUser
}

type secrets map[string]string

func (s secrets) Secret(name string) (string, bool) { v, ok := s[name]; return v, ok }

func newPolicy(t *testing.T) (*Policy, *fakeClock, *[]string) {
	clock := &fakeClock{t: time.Unix(1e9, 0)}
	src := &costlySource{clock: clock, cost: 300 * time.Millisecond,
		accts: map[string]*Account{
			"alice":  {Name: "alice", UID: 1001},
			"root":   {Name: "root", UID: 0},
			"daemon": {Name: "daemon", UID: 10},
			"locked": {Name: "locked", UID: 1002},
			"old":    {Name: "old", UID: 1003},
			"temp":   {Name: "temp", UID: 1004},
		},
		pass: map[string]string{"alice": "right", "root": "right", "daemon": "right", "old": "right"},
		err: map[string]error{"locked": ErrLocked, "old": ErrAccountExpired,
			"temp": &TempError{Source: "test", Err: errors.New("shadow unreadable")}},
	}
	var logs []string
	p := &Policy{Source: src, Delay: 10 * time.Second, Now: clock.now, Sleep: clock.sleep,
		Client: Client{Host: "client.example", IP: "192.0.2.7"},
		Notice: func(s string) { logs = append(logs, "notice: "+s) },
		Debug:  func(s string) { logs = append(logs, "debug: "+s) },
		OpenAPOP: func() (Secrets, error) {
			return secrets{"alice": "tanstaaf", "root": "tanstaaf", "ghost": "tanstaaf"}, nil
		},
		ClearText: "default",
	}
	return p, clock, &logs
}

func digest(ts, secret string) string {
	s := md5.Sum([]byte(ts + secret))
	return hex.EncodeToString(s[:])
}

// Every refused attempt is answered exactly Delay after it began: an
// unknown user (answered at once by the source), a wrong password (after
// a costly hash), a locked account, a blocked uid with the right
// password, an expired account, an access-file refusal, and APOP's own
// failures.
func TestRefusalsTakeTheSameTime(t *testing.T) {
	p, clock, _ := newPolicy(t)
	ts := "<1.2@host>"
	attempts := []struct {
		name string
		try  func() error
		want string
	}{
		{"unknown user", func() error { _, err := p.Pass("nobody", "x"); return err }, `[AUTH] Password supplied for "nobody" is incorrect.`},
		{"wrong password", func() error { _, err := p.Pass("alice", "wrong"); return err }, `[AUTH] Password supplied for "alice" is incorrect.`},
		{"locked", func() error { _, err := p.Pass("locked", "right"); return err }, `[AUTH] Password supplied for "locked" is incorrect.`},
		{"uid 0, right password", func() error { _, err := p.Pass("root", "right"); return err }, `[AUTH] Access is blocked for UIDs below 10`},
		{"uid 10, right password", func() error { _, err := p.Pass("daemon", "right"); return err }, `[AUTH] Access is blocked for UIDs below 10`},
		{"uid 0, wrong password", func() error { _, err := p.Pass("root", "wrong"); return err }, `[AUTH] Password supplied for "root" is incorrect.`},
		{"expired", func() error { _, err := p.Pass("old", "right"); return err }, `[AUTH] "old": account expired.`},
		{"apop unknown", func() error { _, err := p.APOP("nobody", ts, digest(ts, "x")); return err }, `[AUTH] not authenticated`},
		{"apop wrong digest", func() error { _, err := p.APOP("alice", ts, digest(ts, "wrong")); return err }, `[AUTH] authentication failure`},
		{"apop uppercase digest", func() error {
			_, err := p.APOP("alice", ts, strings.ToUpper(digest(ts, "tanstaaf")))
			return err
		}, `[AUTH] authentication failure`},
		{"apop uid 0", func() error { _, err := p.APOP("root", ts, digest(ts, "tanstaaf")); return err }, `[AUTH] Access is blocked for UIDs below 10`},
		{"apop secret, no account", func() error { _, err := p.APOP("ghost", ts, digest(ts, "tanstaaf")); return err }, `[AUTH] Password supplied for "ghost" is incorrect.`},
		{"temporary", func() error { _, err := p.Pass("temp", "right"); return err }, `[SYS/TEMP] Unable to check the password now; try again later.`},
	}
	for _, a := range attempts {
		began := clock.t
		err := a.try()
		var r *Refusal
		if !errors.As(err, &r) || r.Error() != a.want {
			t.Errorf("%s: %v, want %s", a.name, err, a.want)
		}
		if took := clock.t.Sub(began); took != p.Delay {
			t.Errorf("%s: answered after %v, want %v", a.name, took, p.Delay)
		}
	}
	p.AuthFile = writeAdmin(t, t.TempDir(), "auth-file", "alice\n", 0o644)
	began := clock.t
	if _, err := p.Pass("bob", "x"); err == nil || err.Error() != `[AUTH] "bob": access denied.` || clock.t.Sub(began) != p.Delay {
		t.Errorf("auth-file: %v after %v", err, clock.t.Sub(began))
	}
	began = clock.t
	if _, err := p.APOP("bob", ts, "x"); err == nil || err.Error() != `[AUTH] Permission denied.` || clock.t.Sub(began) != p.Delay {
		t.Errorf("auth-file, APOP: %v after %v", err, clock.t.Sub(began))
	}
}

func TestSuccessIsNotDelayed(t *testing.T) {
	p, clock, _ := newPolicy(t)
	began := clock.t
	a, err := p.Pass("alice", "right")
	if err != nil || a.Name != "alice" || len(clock.slept) != 0 {
		t.Fatalf("PASS: %+v %v slept %v", a, err, clock.slept)
	}
	ts := "<1.2@host>"
	a, err = p.APOP("alice", ts, digest(ts, "tanstaaf"))
	if err != nil || a.Name != "alice" || len(clock.slept) != 0 {
		t.Fatalf("APOP: %+v %v slept %v", a, err, clock.slept)
	}
	if clock.t.Sub(began) != 300*time.Millisecond {
		t.Fatalf("clock moved %v", clock.t.Sub(began))
	}
}

func TestTooManyFailuresClose(t *testing.T) {
	p, _, _ := newPolicy(t)
	p.MaxFailures = 3
	var last *Refusal
	for i := 1; i <= 3; i++ {
		_, err := p.Pass("alice", "wrong")
		var r *Refusal
		if !errors.As(err, &r) {
			t.Fatalf("attempt %d: %v", i, err)
		}
		if r.Close != (i == 3) {
			t.Fatalf("attempt %d: Close=%v", i, r.Close)
		}
		last = r
	}
	if !slices.Contains(last.Log, "[AUTH] 3 failed logins, the last for alice, from host (client.example) 192.0.2.7; connection closed") {
		t.Fatalf("no close record in %q", last.Log)
	}
	// A source that cannot answer is not the client's failure.
	p, _, _ = newPolicy(t)
	p.MaxFailures = 1
	_, err := p.Pass("temp", "right")
	var r *Refusal
	if !errors.As(err, &r) || r.Close {
		t.Fatalf("temporary error counted as a failure: %+v", r)
	}
}

// The failed-login record is the caller's to log after the reply, as
// qpopper logs it after its -ERR.
func TestFailedLoginRecords(t *testing.T) {
	p, _, logs := newPolicy(t)
	_, err := p.Pass("alice", "wrong")
	var r *Refusal
	want := "[AUTH] Failed attempted login to alice from host (client.example) 192.0.2.7"
	if !errors.As(err, &r) || !slices.Equal(r.Log, []string{want}) {
		t.Fatalf("refusal %+v, want its record %q", r, want)
	}
	for _, l := range *logs {
		if strings.Contains(l, "Failed attempted login") {
			t.Fatalf("logged before the reply: %q", *logs)
		}
	}
	*logs = nil
	p.Source.(*costlySource).err["alice"] = fmt.Errorf("alice: %w", ErrUnknownHash)
	p.Pass("alice", "right")
	if len(*logs) != 1 || !strings.HasPrefix((*logs)[0], "notice: [AUTH] Login of alice refused: ") {
		t.Fatalf("an unknown hash format must reach the admin at notice: %q", *logs)
	}
}

func TestUserAPOPRule(t *testing.T) {
	p, _, _ := newPolicy(t)
	if err := p.User("alice"); err == nil || err.Error() != "[AUTH] You must use stronger authentication such as AUTH or APOP to connect to this server" {
		t.Fatalf("APOP user with clear-text default: %v", err)
	}
	if err := p.User("bob"); err != nil {
		t.Fatalf("user without APOP secret: %v", err)
	}
	p.ClearText = "always"
	if err := p.User("alice"); err != nil {
		t.Fatalf("clear-text always: %v", err)
	}
	for _, mode := range []string{"local", "TLS"} {
		p.ClearText = mode
		if err := p.User("alice"); err == nil {
			t.Fatalf("clear-text %s let an APOP user use USER", mode)
		}
	}
	p.ClearText = "default"
	p.OpenAPOP = func() (Secrets, error) { return nil, fs.ErrNotExist }
	if err := p.User("alice"); err != nil {
		t.Fatalf("no database: %v", err)
	}
	p.OpenAPOP = func() (Secrets, error) { return nil, modeErr(0o644) }
	if err := p.User("alice"); err == nil || err.Error() != "[SYS/PERM] POP authentication DB has wrong mode (0644)" {
		t.Fatalf("database with mode 0644 at USER: %v", err)
	}
	if _, err := p.APOP("alice", "<1@h>", "x"); err == nil || err.Error() != "[SYS/PERM] POP authentication DB has wrong mode (644)" {
		t.Fatalf("database with mode 0644 at APOP: %v", err)
	}
	p.OpenAPOP = func() (Secrets, error) { return nil, fs.ErrNotExist }
	if _, err := p.APOP("alice", "<1@h>", "x"); err == nil || err.Error() != "[SYS/TEMP] POP authentication DB not available (user alice): No such file or directory (2)" {
		t.Fatalf("no database at APOP: %v", err)
	}
}

type modeErr fs.FileMode

func (m modeErr) Error() string     { return fmt.Sprintf("mode %o", fs.FileMode(m)) }
func (m modeErr) Mode() fs.FileMode { return fs.FileMode(m) }
