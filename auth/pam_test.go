//go:build pam && cgo

package auth

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// These tests run the real PAM library and the Debian modules (pam_unix,
// pam_permit, pam_debug, pam_exec) against real Unix accounts. They need
// root: they add users and write /etc/pam.d files, and pam_unix reads
// /etc/shadow itself only as root.

func pamRequireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: adds Unix users and /etc/pam.d services")
	}
}

func pamRandomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func pamRun(t *testing.T, stdin string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// pamAddUser creates a real Unix user with password (none if ""), removed
// again with userdel -r when the test ends.
func pamAddUser(t *testing.T, password string) string {
	t.Helper()
	name := "ppt" + pamRandomHex(t, 4)
	pamRun(t, "", "useradd", "-m", "-s", "/bin/sh", name)
	t.Cleanup(func() {
		if out, err := exec.Command("userdel", "-r", name).CombinedOutput(); err != nil {
			t.Errorf("userdel -r %s: %v\n%s", name, err, out)
		}
	})
	if password != "" {
		pamRun(t, name+":"+password+"\n", "chpasswd")
	}
	return name
}

// pamAddService writes /etc/pam.d/popper-test-<random> with body, removed
// when the test ends.
func pamAddService(t *testing.T, body string) string {
	t.Helper()
	name := "popper-test-" + pamRandomHex(t, 6)
	path := filepath.Join("/etc/pam.d", name)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.Remove(path); err != nil {
			t.Error(err)
		}
	})
	return name
}

// pamPasswdLookup stands in for the system passwd lookup the caller passes.
func pamPasswdLookup(name string) (*Account, error) {
	u, err := user.Lookup(name)
	if err != nil {
		var unknown user.UnknownUserError
		if errors.As(err, &unknown) {
			return nil, fmt.Errorf("%w: %v", ErrUnknownUser, err)
		}
		return nil, &TempError{Source: "test passwd", Err: err}
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return nil, err
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return nil, err
	}
	return &Account{Name: u.Username, UID: uid, GID: gid, Home: u.HomeDir}, nil
}

// pamGetent is the account as getent(1) sees it, to check what the source
// returns against something it did not compute.
func pamGetent(t *testing.T, name string) (uid, gid int, home string) {
	t.Helper()
	out, err := exec.Command("getent", "passwd", name).Output()
	if err != nil {
		t.Fatalf("getent passwd %s: %v", name, err)
	}
	f := strings.Split(strings.TrimSpace(string(out)), ":")
	if len(f) != 7 {
		t.Fatalf("getent passwd %s: %q", name, out)
	}
	uid, _ = strconv.Atoi(f[2])
	gid, _ = strconv.Atoi(f[3])
	return uid, gid, f[5]
}

func pamNew(t *testing.T, service string, client Client) Source {
	t.Helper()
	src, err := NewPAM(service, client, pamPasswdLookup)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// pamAuthenticate runs one login and logs what PAM said and how long it took
// (pam_unix delays failures by about two seconds).
func pamAuthenticate(t *testing.T, src Source, name, password string) (*Account, error) {
	t.Helper()
	start := time.Now()
	acct, err := src.Authenticate(name, password)
	t.Logf("Authenticate(%q): %v after %v", name, err, time.Since(start).Round(time.Millisecond))
	return acct, err
}

func pamCheckAccount(t *testing.T, acct *Account, name string) {
	t.Helper()
	if acct == nil {
		t.Fatalf("no account for %s", name)
	}
	uid, gid, home := pamGetent(t, name)
	if acct.Name != name || acct.UID != uid || acct.GID != gid || acct.Home != home {
		t.Errorf("account %+v, want name %s uid %d gid %d home %s", *acct, name, uid, gid, home)
	}
}

func pamWantRefused(t *testing.T, acct *Account, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("error %v, want %v", err, want)
	}
	var temp *TempError
	if errors.As(err, &temp) {
		t.Errorf("error %v is a TempError", err)
	}
	if acct != nil {
		t.Errorf("refused login returned account %+v", *acct)
	}
}

const pamUnixService = "auth required pam_unix.so\naccount required pam_unix.so\n"

// TestPAMUnix runs the logins of the issue through a pam_unix stack, one
// after the other: PAM modules are not reentrant, and the source runs one
// transaction at a time anyway.
func TestPAMUnix(t *testing.T) {
	pamRequireRoot(t)
	service := pamAddService(t, pamUnixService)
	src := pamNew(t, service, Client{Host: "client.example", IP: "192.0.2.7"})
	if src.Name() != "pam" {
		t.Errorf("Name() = %q", src.Name())
	}
	const password = "Corr3ct horse"
	alice := pamAddUser(t, password)

	t.Run("right password", func(t *testing.T) {
		acct, err := pamAuthenticate(t, src, alice, password)
		if err != nil {
			t.Fatal(err)
		}
		pamCheckAccount(t, acct, alice)
	})
	t.Run("wrong password", func(t *testing.T) {
		acct, err := pamAuthenticate(t, src, alice, password+"x")
		pamWantRefused(t, acct, err, ErrWrongPassword)
	})
	t.Run("unknown user", func(t *testing.T) {
		acct, err := pamAuthenticate(t, src, "ppt-nosuch-"+pamRandomHex(t, 4), password)
		// pam_unix answers PAM_USER_UNKNOWN; callers tell the client the
		// same as for a wrong password.
		pamWantRefused(t, acct, err, ErrUnknownUser)
	})
	t.Run("empty password", func(t *testing.T) {
		acct, err := pamAuthenticate(t, src, alice, "")
		pamWantRefused(t, acct, err, ErrWrongPassword)
	})
	t.Run("Lookup", func(t *testing.T) {
		acct, err := src.Lookup(alice)
		if err != nil {
			t.Fatal(err)
		}
		pamCheckAccount(t, acct, alice)
		if _, err := src.Lookup("ppt-nosuch-" + pamRandomHex(t, 4)); !errors.Is(err, ErrUnknownUser) {
			t.Errorf("Lookup of a missing user: %v, want ErrUnknownUser", err)
		}
	})
	t.Run("locked", func(t *testing.T) {
		name := pamAddUser(t, password)
		pamRun(t, "", "usermod", "-L", name)
		acct, err := pamAuthenticate(t, src, name, password)
		pamWantRefused(t, acct, err, ErrWrongPassword)
	})
	t.Run("account expired", func(t *testing.T) {
		name := pamAddUser(t, password)
		pamRun(t, "", "usermod", "-e", "1", name)
		acct, err := pamAuthenticate(t, src, name, password)
		if !errors.Is(err, ErrAccountExpired) {
			t.Errorf("right password: %v, want ErrAccountExpired", err)
		}
		pamCheckAccount(t, acct, name)
		// The module's message came through the conversation and got an
		// empty reply; it is kept for the log.
		if err != nil && !strings.Contains(err.Error(), "module said") {
			t.Errorf("error %q does not carry pam_unix's message", err)
		}
		acct, err = pamAuthenticate(t, src, name, password+"x")
		pamWantRefused(t, acct, err, ErrWrongPassword)
		if errors.Is(err, ErrAccountExpired) {
			t.Errorf("wrong password told that the account expired: %v", err)
		}
	})
	t.Run("password must change", func(t *testing.T) {
		name := pamAddUser(t, password)
		pamRun(t, "", "chage", "-d", "0", name)
		acct, err := pamAuthenticate(t, src, name, password)
		if !errors.Is(err, ErrPasswordExpired) {
			t.Errorf("right password: %v, want ErrPasswordExpired", err)
		}
		pamCheckAccount(t, acct, name)
	})
	t.Run("empty hash with nullok", func(t *testing.T) {
		// Without PAM_DISALLOW_NULL_AUTHTOK pam_unix nullok lets any
		// password in for an account without one.
		nullok := pamNew(t, pamAddService(t, "auth required pam_unix.so nullok\naccount required pam_unix.so\n"), Client{})
		name := pamAddUser(t, "")
		pamRun(t, "", "passwd", "-d", name)
		acct, err := pamAuthenticate(t, nullok, name, "anything")
		pamWantRefused(t, acct, err, ErrWrongPassword)
	})
}

// TestPAMEmptyPasswordNotAsked: a stack that lets everyone in still
// refuses an empty password, so PAM was not asked.
func TestPAMEmptyPasswordNotAsked(t *testing.T) {
	pamRequireRoot(t)
	src := pamNew(t, pamAddService(t, "auth required pam_permit.so\naccount required pam_permit.so\n"), Client{})
	name := pamAddUser(t, "")
	if _, err := pamAuthenticate(t, src, name, "x"); err != nil {
		t.Fatalf("pam_permit refused a password: %v", err)
	}
	acct, err := pamAuthenticate(t, src, name, "")
	pamWantRefused(t, acct, err, ErrWrongPassword)
	acct, err = pamAuthenticate(t, src, name, "a\x00b")
	pamWantRefused(t, acct, err, ErrWrongPassword)
	acct, err = pamAuthenticate(t, src, "", "x")
	pamWantRefused(t, acct, err, ErrUnknownUser)
}

// TestPAMClientItems: the modules see PAM_RHOST and PAM_TTY already in
// pam_authenticate (pam_exec passes them to a script as $PAM_RHOST and
// $PAM_TTY).
func TestPAMClientItems(t *testing.T) {
	pamRequireRoot(t)
	dir := t.TempDir()
	script := filepath.Join(dir, "items")
	out := filepath.Join(dir, "out")
	body := "#!/bin/sh\necho \"$PAM_TYPE $PAM_USER rhost=$PAM_RHOST tty=$PAM_TTY\" >> " + out + "\n"
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	// pam_exec ignores pam_setcred, and a stack that only ignores fails;
	// pam_permit answers it.
	service := pamAddService(t, "auth required pam_exec.so quiet "+script+"\nauth required pam_permit.so\n"+
		"account required pam_exec.so quiet "+script+"\n")
	name := pamAddUser(t, "")
	src := pamNew(t, service, Client{Host: "client.example", IP: "192.0.2.7"})
	if _, err := pamAuthenticate(t, src, name, "x"); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("auth %s rhost=client.example tty=192.0.2.7\naccount %[1]s rhost=client.example tty=192.0.2.7\n", name)
	if string(got) != want {
		t.Errorf("the modules saw\n%s\nwant\n%s", got, want)
	}
}

// TestPAMResultCodes drives the mapping from PAM result codes to the auth
// errors through pam_debug, which returns the codes it is told to, in each
// of the three steps.
func TestPAMResultCodes(t *testing.T) {
	pamRequireRoot(t)
	name := pamAddUser(t, "")
	temp := errors.New("TempError")
	success := errors.New("success")
	for _, tc := range []struct {
		args string
		want error
	}{
		{"", success},
		{"auth=user_unknown", ErrUnknownUser},
		{"auth=auth_err", ErrWrongPassword},
		{"auth=maxtries", ErrWrongPassword},
		{"auth=perm_denied", ErrWrongPassword},
		{"auth=cred_insufficient", ErrWrongPassword},
		{"auth=new_authtok_reqd", ErrWrongPassword}, // not an authenticate answer
		{"auth=module_unknown", temp},
		{"auth=open_err", temp},
		{"auth=symbol_err", temp},
		{"auth=service_err", temp},
		{"auth=authinfo_unavail", temp},
		{"auth=system_err", temp},
		{"auth=buf_err", temp},
		{"auth=conv_err", temp},
		{"auth=abort", temp},
		{"acct=acct_expired", ErrAccountExpired},
		{"acct=new_authtok_reqd", ErrPasswordExpired},
		{"acct=user_unknown", ErrUnknownUser},
		{"acct=perm_denied", ErrWrongPassword},
		{"acct=authinfo_unavail", temp},
		{"cred=cred_err", ErrWrongPassword},
		{"cred=system_err", temp},
	} {
		t.Run(tc.args, func(t *testing.T) {
			service := pamAddService(t, "auth required pam_debug.so "+tc.args+"\naccount required pam_debug.so "+tc.args+"\n")
			acct, err := pamAuthenticate(t, pamNew(t, service, Client{}), name, "x")
			var te *TempError
			switch tc.want {
			case success:
				if err != nil {
					t.Fatal(err)
				}
				pamCheckAccount(t, acct, name)
			case temp:
				if !errors.As(err, &te) {
					t.Errorf("error %v, want a TempError", err)
				}
				if acct != nil {
					t.Errorf("account %+v with a TempError", *acct)
				}
			case ErrAccountExpired, ErrPasswordExpired:
				if !errors.Is(err, tc.want) {
					t.Errorf("error %v, want %v", err, tc.want)
				}
				pamCheckAccount(t, acct, name)
			default:
				pamWantRefused(t, acct, err, tc.want)
			}
		})
	}

	t.Run("accepted but not in passwd", func(t *testing.T) {
		service := pamAddService(t, "auth required pam_permit.so\naccount required pam_permit.so\n")
		acct, err := pamAuthenticate(t, pamNew(t, service, Client{}), "ppt-nosuch-"+pamRandomHex(t, 4), "x")
		pamWantRefused(t, acct, err, ErrUnknownUser)
		if err != nil && !strings.Contains(err.Error(), "the system has no such account") {
			t.Errorf("error %q does not say the system lacks the account", err)
		}
	})

	// The lookup may refuse too: LookupSystem returns the account with
	// ErrAccountExpired for an expired shadow entry.
	permit := pamAddService(t, "auth required pam_permit.so\naccount required pam_permit.so\n")
	expired := pamAddService(t, "auth required pam_permit.so\naccount required pam_debug.so acct=acct_expired\n")
	for _, tc := range []struct {
		name, service string
		lookupErr     error
		want          error
	}{
		{"lookup says expired", permit, ErrAccountExpired, ErrAccountExpired},
		{"lookup says password expired", permit, ErrPasswordExpired, ErrPasswordExpired},
		{"both say expired", expired, ErrAccountExpired, ErrAccountExpired},
		{"lookup temporary", permit, &TempError{Source: "test", Err: errors.New("NSS down")}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lookup := func(n string) (*Account, error) {
				a, err := pamPasswdLookup(n)
				if err != nil {
					return nil, err
				}
				if _, temp := tc.lookupErr.(*TempError); temp {
					return nil, tc.lookupErr
				}
				return a, tc.lookupErr
			}
			src, err := NewPAM(tc.service, Client{}, lookup)
			if err != nil {
				t.Fatal(err)
			}
			acct, err := pamAuthenticate(t, src, name, "x")
			if tc.want == nil {
				var te *TempError
				if !errors.As(err, &te) || acct != nil {
					t.Errorf("got %v, %v; want a TempError and no account", acct, err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("error %v, want %v", err, tc.want)
			}
			pamCheckAccount(t, acct, name)
		})
	}
}

// TestPAMLookupSystem wires the source as popper does, with LookupSystem:
// an account pam_unix finds expired is ErrAccountExpired with the account,
// although LookupSystem refuses it as well.
func TestPAMLookupSystem(t *testing.T) {
	pamRequireRoot(t)
	const password = "s3cret"
	src, err := NewPAM(pamAddService(t, pamUnixService), Client{}, LookupSystem)
	if err != nil {
		t.Fatal(err)
	}
	name := pamAddUser(t, password)
	acct, err := pamAuthenticate(t, src, name, password)
	if err != nil {
		t.Fatal(err)
	}
	pamCheckAccount(t, acct, name)
	pamRun(t, "", "usermod", "-e", "1", name)
	acct, err = pamAuthenticate(t, src, name, password)
	if !errors.Is(err, ErrAccountExpired) {
		t.Errorf("error %v, want ErrAccountExpired", err)
	}
	pamCheckAccount(t, acct, name)
}

// TestPAMGoroutines: logins from many goroutines at once all get their
// own answer (the source serializes them and locks each to a thread).
func TestPAMGoroutines(t *testing.T) {
	pamRequireRoot(t)
	const password = "s3cret"
	src := pamNew(t, pamAddService(t, pamUnixService), Client{Host: "client.example", IP: "192.0.2.7"})
	names := []string{pamAddUser(t, password), pamAddUser(t, password), pamAddUser(t, password)}
	var wg sync.WaitGroup
	errs := make([]error, 12)
	accts := make([]*Account, len(errs))
	for i := range errs {
		wg.Go(func() { accts[i], errs[i] = src.Authenticate(names[i%len(names)], password) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("login %d: %v", i, err)
			continue
		}
		pamCheckAccount(t, accts[i], names[i%len(names)])
	}
}

func TestPAMProblems(t *testing.T) {
	pamRequireRoot(t)
	missing := "popper-test-missing-" + pamRandomHex(t, 6)
	problems := pamNew(t, missing, Client{}).Problems()
	want := fmt.Sprintf("PAM service %s has no /etc/pam.d/%[1]s; PAM will use 'other'", missing)
	if len(problems) != 1 || problems[0].Error() != want {
		t.Errorf("Problems() for a missing service = %v, want [%s]", problems, want)
	}
	if problems := pamNew(t, pamAddService(t, pamUnixService), Client{}).Problems(); problems != nil {
		t.Errorf("Problems() for an existing service = %v", problems)
	}
}

// TestPAMConfigProblems checks the configuration search of each PAM
// library under a stand-in root.
func TestPAMConfigProblems(t *testing.T) {
	write := func(t *testing.T, root, path, body string) {
		t.Helper()
		p := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const conf = "# pam.conf\nlogin auth required pam_unix.so\nPOP3\tauth required pam_unix_auth.so.1 # comment\n#imap auth required pam_unix_auth.so.1\n"
	for _, tc := range []struct {
		name, goos, service string
		files               map[string]string
		ok                  bool
	}{
		{"pam.d file", "linux", "pop3", map[string]string{"/etc/pam.d/pop3": ""}, true},
		{"linux lowercases", "linux", "POP3", map[string]string{"/etc/pam.d/pop3": ""}, true},
		{"linux vendor dir", "linux", "pop3", map[string]string{"/usr/lib/pam.d/pop3": ""}, true},
		{"nothing", "linux", "pop3", map[string]string{"/etc/pam.d/other": ""}, false},
		{"linux ignores pam.conf beside pam.d", "linux", "pop3", map[string]string{"/etc/pam.d/other": "", "/etc/pam.conf": conf}, false},
		{"linux pam.conf alone", "linux", "pop3", map[string]string{"/etc/pam.conf": conf}, true},
		{"solaris pam.conf", "solaris", "pop3", map[string]string{"/etc/pam.conf": conf}, true},
		{"solaris pam.conf other service", "solaris", "smtp", map[string]string{"/etc/pam.conf": conf}, false},
		{"solaris commented out", "illumos", "imap", map[string]string{"/etc/pam.conf": conf}, false},
		{"freebsd local", "freebsd", "pop3", map[string]string{"/usr/local/etc/pam.d/pop3": ""}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for p, body := range tc.files {
				write(t, root, p, body)
			}
			problems := pamConfigProblems(tc.service, tc.goos, root)
			if tc.ok && problems != nil {
				t.Errorf("problems %v, want none", problems)
			}
			if !tc.ok && (len(problems) != 1 || !strings.Contains(problems[0].Error(), "PAM will use 'other'")) {
				t.Errorf("problems %v, want the 'other' warning", problems)
			}
		})
	}
}

func TestPAMNewPAMRefuses(t *testing.T) {
	for _, service := range []string{"", "../etc/passwd", "pop\x003"} {
		if _, err := NewPAM(service, Client{}, pamPasswdLookup); err == nil {
			t.Errorf("NewPAM(%q) accepted", service)
		}
	}
	if _, err := NewPAM("pop3", Client{}, nil); err == nil {
		t.Error("NewPAM without a lookup accepted")
	}
}
