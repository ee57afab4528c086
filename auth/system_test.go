package auth

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sha512 of "pop secret" (openssl passwd -6 -salt saltsaltsalt).
const popSecret512 = "$6$saltsaltsalt$xC4bkaxBm9eJP.G56aIzwLYWC0gh9vzCAm6yVjkcqonW.sAsBy5Ll2nrlwLPF24l.dJnZpCDHTIee5ZpsKdb6."

// md5-crypt of "pop secret" (openssl passwd -1 -salt abcdefgh).
const popSecretMD5 = "$1$abcdefgh$dIjtxyXBYgUnC6t920YV.1"

func writeAdmin(t *testing.T, dir, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, mode)
	return p
}

// day 20000 is 2024-10-04; the clock stands at day 20100.
var testNow = func() time.Time { return time.Unix(20100*86400+3600, 0) }

func shadowSystem(t *testing.T, passwd, shadow string) *System {
	t.Helper()
	dir := t.TempDir()
	return &System{
		Files: SystemFiles{
			Passwd: writeAdmin(t, dir, "passwd", passwd, 0o644),
			Shadow: writeAdmin(t, dir, "shadow", shadow, 0o640),
		},
		CheckPasswordExpired: true,
		Now:                  testNow,
	}
}

const testPasswd = `root:x:0:0:root:/root:/bin/bash
+nisuser::::::
# a comment
alice:x:1001:1001:Alice:/home/alice:/bin/sh
bob:x:1002:1002::/home/bob:/bin/sh
carol:x:1003:1003::/home/carol:/bin/sh
dave:x:1004:1004::/home/dave:/bin/sh
erin:x:1005:1005::/home/erin:/bin/sh
frank:x:1006:1006::/home/frank:/bin/sh
grace:` + popSecretMD5 + `:1007:1007::/home/grace:/bin/sh
heidi:x:1008:1008::/home/heidi:/bin/sh
daemon:x:1:1::/usr/sbin:/usr/sbin/nologin
`

var testShadow = strings.Join([]string{
	"root:" + popSecret512 + ":19000:0:99999:7:::",
	"alice:" + popSecret512 + ":20000:0:99999:7:::",
	"bob:!" + popSecret512 + ":20000:0:99999:7:::",       // usermod -L
	"carol:" + popSecret512 + ":20000:0:99999:7::20050:", // expired on day 20050
	"dave:" + popSecret512 + ":20000:0:30:7:::",          // max age 30 days: expired on 20030
	"erin:" + popSecret512 + ":0:0:99999:7:::",           // chage -d 0
	"frank:*:20000:0:99999:7:::",
	"heidi:" + popSecret512 + "::::::20200:", // expires in the future, no ageing
	"daemon:" + popSecret512 + ":20000::::::",
}, "\n") + "\n"

func TestSystemShadow(t *testing.T) {
	s := shadowSystem(t, testPasswd, testShadow)
	for _, c := range []struct {
		user, pass string
		want       error
	}{
		{"alice", "pop secret", nil},
		{"alice", "pop secreT", ErrWrongPassword},
		{"alice", "", ErrWrongPassword},
		{"nobody", "pop secret", ErrUnknownUser},
		{"nisuser", "x", ErrUnknownUser},
		{"bob", "pop secret", ErrLocked},
		{"carol", "pop secret", ErrAccountExpired},
		{"carol", "wrong", ErrWrongPassword}, // expiry is told only with the right password
		{"dave", "pop secret", ErrPasswordExpired},
		{"erin", "pop secret", ErrPasswordExpired},
		{"frank", "pop secret", ErrLocked},
		{"grace", "pop secret", nil}, // no shadow entry: the passwd field's own hash
		{"heidi", "pop secret", nil},
		{"daemon", "pop secret", nil}, // BLOCK_UID is the policy's, not the source's
	} {
		a, err := s.Authenticate(c.user, c.pass)
		if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s/%q: got %v, want %v", c.user, c.pass, err, c.want)
			continue
		}
		if err == nil && (a.Name != c.user || a.UID == 0 && c.user != "root") {
			t.Errorf("%s: account %+v", c.user, a)
		}
	}
	a, err := s.Authenticate("alice", "pop secret")
	if err != nil || a.UID != 1001 || a.GID != 1001 || a.Home != "/home/alice" || a.Shell != "/bin/sh" {
		t.Fatalf("alice: %+v %v", a, err)
	}
	s.CheckPasswordExpired = false
	for _, u := range []string{"dave", "erin"} {
		if _, err := s.Authenticate(u, "pop secret"); err != nil {
			t.Errorf("%s with check-password-expired off: %v", u, err)
		}
	}
	if _, err := s.Authenticate("carol", "pop secret"); !errors.Is(err, ErrAccountExpired) {
		t.Errorf("carol with check-password-expired off: %v (account expiry is not the password's)", err)
	}
}

func TestSystemLookup(t *testing.T) {
	s := shadowSystem(t, testPasswd, testShadow)
	if a, err := s.Lookup("bob"); err != nil || a.UID != 1002 {
		t.Errorf("bob (locked password, still an account): %+v %v", a, err)
	}
	if _, err := s.Lookup("carol"); !errors.Is(err, ErrAccountExpired) {
		t.Errorf("carol: %v, want account expired", err)
	}
	if a, err := s.Lookup("dave"); err != nil || a.UID != 1004 {
		t.Errorf("dave (password expiry does not close APOP): %+v %v", a, err)
	}
	if _, err := s.Lookup("no-such-user-anywhere"); !errors.Is(err, ErrUnknownUser) {
		t.Errorf("unknown: %v", err)
	}
}

func TestMasterPasswd(t *testing.T) {
	dir := t.TempDir()
	now := testNow().Unix()
	mp := strings.Join([]string{
		"alice:" + popSecret512 + ":1001:1001::0:0:Alice:/home/alice:/bin/sh",
		"bob:*LOCKED*" + popSecret512 + ":1002:1002::0:0::/home/bob:/bin/sh",
		"carol:" + popSecret512 + ":1003:1003::0:" + itoa(now-60) + "::/home/carol:/bin/sh",
		"dave:" + popSecret512 + ":1004:1004::" + itoa(now-60) + ":0::/home/dave:/bin/sh",
		"erin:" + popSecret512 + ":1005:1005::" + itoa(now+3600) + ":" + itoa(now+3600) + "::/home/erin:/bin/sh",
	}, "\n") + "\n"
	s := &System{Files: SystemFiles{Passwd: writeAdmin(t, dir, "passwd", "", 0o644),
		MasterPasswd: writeAdmin(t, dir, "master.passwd", mp, 0o600)}, CheckPasswordExpired: true, Now: testNow}
	for _, c := range []struct {
		user string
		want error
	}{
		{"alice", nil}, {"bob", ErrLocked}, {"carol", ErrAccountExpired}, {"dave", ErrPasswordExpired}, {"erin", nil},
	} {
		a, err := s.Authenticate(c.user, "pop secret")
		if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s: got %v, want %v", c.user, err, c.want)
		}
		if err == nil && a.Home != "/home/"+c.user {
			t.Errorf("%s: home %q", c.user, a.Home)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// A shadow file others can write, or one owned by another user, is not
// believed: every login fails as a temporary error, none is let in.
func TestSystemRefusesUntrustedFiles(t *testing.T) {
	s := shadowSystem(t, testPasswd, testShadow)
	os.Chmod(s.Files.Shadow, 0o666)
	var te *TempError
	if _, err := s.Authenticate("alice", "pop secret"); !errors.As(err, &te) {
		t.Fatalf("world-writable shadow: %v", err)
	}
	if len(s.Problems()) == 0 {
		t.Error("Problems() silent about a world-writable shadow file")
	}
	os.Chmod(s.Files.Shadow, 0o640)
	link := filepath.Join(filepath.Dir(s.Files.Shadow), "shadow-link")
	os.Symlink(s.Files.Shadow, link)
	s.Files.Shadow = link
	if _, err := s.Authenticate("alice", "pop secret"); !errors.As(err, &te) {
		t.Fatalf("symlinked shadow: %v", err)
	}
	if os.Geteuid() == 0 {
		s = shadowSystem(t, testPasswd, testShadow)
		os.Chown(s.Files.Shadow, 65534, 0)
		if _, err := s.Authenticate("alice", "pop secret"); !errors.As(err, &te) {
			t.Fatalf("shadow owned by nobody: %v", err)
		}
	}
}

func TestSystemWithoutPasswordFile(t *testing.T) {
	s := &System{Files: SystemFiles{Passwd: writeAdmin(t, t.TempDir(), "passwd", testPasswd, 0o644)}}
	var te *TempError
	if _, err := s.Authenticate("alice", "pop secret"); !errors.As(err, &te) {
		t.Fatalf("no shadow file configured (macOS): %v", err)
	}
	if len(s.Problems()) == 0 {
		t.Error("Problems() silent about a system without a password file")
	}
}
