package auth

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// checker is a checkpassword program in sh: it reads descriptor 3 as the
// interface says and answers by name.
const checker = `#!/bin/sh
creds=$(tr '\000' '\n' <&3)
name=$(printf '%s\n' "$creds" | sed -n 1p)
pass=$(printf '%s\n' "$creds" | sed -n 2p)
echo "$TCPREMOTEIP" > "$(dirname "$0")/peer"
case "$name:$pass" in
alice:right) HOME=/home/alice; export HOME; exec "$@" ;;
liar:right) exit 0 ;;
temp:*) exit 111 ;;
misuse:*) exit 2 ;;
slow:*) sleep 5; exit 1 ;;
crash:*) kill -9 $$ ;;
esac
exit 1
`

func newChecker(t *testing.T) *Checkpassword {
	t.Helper()
	dir := t.TempDir()
	prog := writeAdmin(t, dir, "checkpassword", checker, 0o755)
	return &Checkpassword{
		Argv: []string{prog},
		// The real reporter is popper itself; sh prints the same line.
		Reporter: []string{"/bin/sh", "-c", `echo "$(id -u) $(id -g) $HOME"`},
		Client:   Client{Host: "client.example", IP: "192.0.2.9"},
		Timeout:  time.Second,
	}
}

func TestCheckpassword(t *testing.T) {
	c := newChecker(t)
	a, err := c.Authenticate("alice", "right")
	if err != nil {
		t.Fatal(err)
	}
	if a.Name != "alice" || a.UID != os.Getuid() || a.GID != os.Getgid() || a.Home != "/home/alice" {
		t.Fatalf("account %+v", a)
	}
	peer, _ := os.ReadFile(filepath.Join(filepath.Dir(c.Argv[0]), "peer"))
	if strings.TrimSpace(string(peer)) != "192.0.2.9" {
		t.Errorf("TCPREMOTEIP seen by the checker: %q", peer)
	}
	var te *TempError
	for _, tc := range []struct {
		user, pass string
		temp       bool
	}{
		{"alice", "wrong", false},
		{"nobody", "right", false},
		{"crash", "x", true},
		{"temp", "x", true},
		{"misuse", "x", true},
		{"slow", "x", true},
		{"liar", "right", true}, // exit 0 without running the reporter
	} {
		_, err := c.Authenticate(tc.user, tc.pass)
		switch {
		case tc.temp && !errors.As(err, &te):
			t.Errorf("%s: %v, want a temporary error", tc.user, err)
		case !tc.temp && !errors.Is(err, ErrWrongPassword):
			t.Errorf("%s: %v, want a wrong password", tc.user, err)
		}
	}
	long := strings.Repeat("x", 600)
	if _, err := c.Authenticate("alice", long); !errors.Is(err, ErrWrongPassword) {
		t.Errorf("credentials over 512 bytes: %v", err)
	}
	if _, err := c.Authenticate("alice", ""); !errors.Is(err, ErrWrongPassword) {
		t.Errorf("empty password: %v", err)
	}
}

func TestCheckpasswordProblems(t *testing.T) {
	c := newChecker(t)
	if p := c.Problems(); p != nil {
		t.Fatalf("good program: %v", p)
	}
	os.Chmod(c.Argv[0], 0o777)
	if p := c.Problems(); p == nil {
		t.Error("world-writable program not reported")
	}
	c.Argv = []string{"checkpassword"}
	if p := c.Problems(); p == nil {
		t.Error("relative path not reported")
	}
	c.Argv = []string{"/nonexistent/checkpassword"}
	if p := c.Problems(); p == nil {
		t.Error("missing program not reported")
	}
	c.Argv = nil
	if p := c.Problems(); p == nil {
		t.Error("no program not reported")
	}
}

func TestParseIdentity(t *testing.T) {
	for _, bad := range []string{"", "1 2", "x 2 /h", "1 y /h", "-1 2 /h", "1 2 /h\nmore\n"} {
		if _, err := parseIdentity("u", bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	a, err := parseIdentity("u", "1000 100 /home/with space\n")
	if err != nil || a.UID != 1000 || a.GID != 100 || a.Home != "/home/with space" {
		t.Fatalf("%+v %v", a, err)
	}
}
