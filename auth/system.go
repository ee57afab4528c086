package auth

import (
	"errors"
	"fmt"
	"os/user"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// SystemFiles names the account files of the system source.
type SystemFiles struct {
	Passwd string // name:passwd:uid:gid:gecos:home:shell
	// Shadow is shadow(5) (Linux, illumos, Solaris); MasterPasswd is the
	// BSDs' master.passwd. At most one is set.
	Shadow       string
	MasterPasswd string
}

// DefaultSystemFiles are the files this OS keeps its accounts in. macOS
// keeps passwords in Open Directory, which only PAM can ask: there it
// names no password file, and every password check says so.
func DefaultSystemFiles() SystemFiles {
	switch runtime.GOOS {
	case "freebsd", "openbsd", "netbsd", "dragonfly":
		return SystemFiles{Passwd: "/etc/passwd", MasterPasswd: "/etc/master.passwd"}
	case "darwin":
		return SystemFiles{Passwd: "/etc/passwd"}
	}
	return SystemFiles{Passwd: "/etc/passwd", Shadow: "/etc/shadow"}
}

// System is the host's own accounts, read from its files as qpopper read
// them with getpwnam and getspnam: pure Go, so the cgo-free builds have
// it. It must run as root to read the shadow file.
type System struct {
	Files SystemFiles
	// CheckPasswordExpired refuses a password past its maximum age
	// (qpopper's check-password-expired).
	CheckPasswordExpired bool
	// Now is the clock for expiry; nil = time.Now.
	Now func() time.Time
}

func (s *System) Name() string { return "system" }

var errNoPasswordFile = fmt.Errorf("%s keeps passwords where only PAM can check them; set auth-source to pam or checkpassword", runtime.GOOS)

func (s *System) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Authenticate checks a password against the shadow (or master.passwd)
// hash, or the passwd file's own hash field where there is no shadow
// entry, then the account's expiry.
func (s *System) Authenticate(name, password string) (*Account, error) {
	if s.Files.Shadow == "" && s.Files.MasterPasswd == "" {
		return nil, &TempError{Source: s.Name(), Err: errNoPasswordFile}
	}
	e, err := s.entry(name)
	if err != nil {
		return nil, err
	}
	if password == "" {
		return nil, ErrWrongPassword // qpopper refuses null passwords
	}
	if err := CheckHash(e.Hash, password); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := s.expiry(e); err != nil {
		return &e.Account, err
	}
	return &e.Account, nil
}

// expiry applies the account's expiry date, then the password's.
func (s *System) expiry(e *entry) error {
	if s.accountExpired(e) {
		return ErrAccountExpired
	}
	if s.CheckPasswordExpired && s.passwordExpired(e) {
		return ErrPasswordExpired
	}
	return nil
}

func (s *System) accountExpired(e *entry) bool {
	now := s.now().Unix()
	if e.Seconds {
		return e.Expire > 0 && now > e.Expire
	}
	return e.Expire > 0 && now/86400 > e.Expire
}

func (s *System) passwordExpired(e *entry) bool {
	now := s.now().Unix()
	if e.Seconds {
		return e.LastChange > 0 && now > e.LastChange // master.passwd: the instant it expires
	}
	if e.LastChange == 0 {
		return true // "must change at next login" (chage -d 0, passwd -f)
	}
	return e.MaxAge > 0 && e.LastChange > 0 && now/86400 > e.LastChange+e.MaxAge
}

// Lookup finds the account without a password. An account past its
// expiry date is refused here too, so APOP cannot open what the admin
// closed.
func (s *System) Lookup(name string) (*Account, error) {
	e, err := s.entry(name)
	if errors.Is(err, ErrUnknownUser) {
		return lookupNSS(name)
	}
	if err != nil {
		return nil, err
	}
	if s.accountExpired(e) {
		return &e.Account, ErrAccountExpired
	}
	return &e.Account, nil
}

// entry reads name's passwd entry and its shadow or master.passwd entry.
func (s *System) entry(name string) (*entry, error) {
	if name == "" || strings.ContainsAny(name, ":\n\x00") {
		return nil, ErrUnknownUser // no such name can be in the files
	}
	if s.Files.MasterPasswd != "" {
		f, err := s.fields(s.Files.MasterPasswd, name, 10)
		if err != nil {
			return nil, err
		}
		return parseMasterPasswd(f)
	}
	f, err := s.fields(s.Files.Passwd, name, 7)
	if err != nil {
		return nil, err
	}
	e, err := parsePasswd(f)
	if err != nil {
		return nil, &TempError{Source: s.Name(), Err: fmt.Errorf("%s: %v", s.Files.Passwd, err)}
	}
	if s.Files.Shadow == "" {
		return e, nil
	}
	sf, err := s.fields(s.Files.Shadow, name, 9)
	switch {
	case errors.Is(err, ErrUnknownUser):
		// No shadow entry: qpopper then compared with the passwd field
		// unless it was the "x" placeholder.
		if e.Hash == "x" {
			e.Hash = ""
		}
		return e, nil
	case err != nil:
		return nil, err
	}
	if err := e.addShadow(sf); err != nil {
		return nil, &TempError{Source: s.Name(), Err: fmt.Errorf("%s: %v", s.Files.Shadow, err)}
	}
	return e, nil
}

// fields reads one account file; anything but "no such line" is a
// TempError, since it would refuse every user alike.
func (s *System) fields(path, name string, n int) ([]string, error) {
	f, err := openAdminFile(path)
	if err != nil {
		return nil, &TempError{Source: s.Name(), Err: err}
	}
	defer f.Close()
	fl, err := findLine(f, name, n)
	if err != nil && !errors.Is(err, ErrUnknownUser) {
		return nil, &TempError{Source: s.Name(), Err: fmt.Errorf("%s: %v", path, err)}
	}
	return fl, err
}

// Problems reports account files that cannot be read or trusted.
func (s *System) Problems() []error {
	var errs []error
	for _, p := range []string{s.Files.Passwd, s.Files.Shadow, s.Files.MasterPasswd} {
		if p == "" {
			continue
		}
		f, err := openAdminFile(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("system accounts: %v", err))
			continue
		}
		f.Close()
	}
	if s.Files.Shadow == "" && s.Files.MasterPasswd == "" {
		errs = append(errs, fmt.Errorf("system accounts: %v", errNoPasswordFile))
	}
	return errs
}

// Accounts lists the accounts of the passwd (or master.passwd) file, for
// the boot-time sweep of home-directory mail.
func (s *System) Accounts() ([]*Account, error) {
	path, n := s.Files.Passwd, 7
	if s.Files.MasterPasswd != "" {
		path, n = s.Files.MasterPasswd, 10
	}
	f, err := openAdminFile(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var all []*Account
	err = accountLines(f, func(fl []string) bool {
		if len(fl) < n {
			return true
		}
		var e *entry
		var err error
		if n == 10 {
			e, err = parseMasterPasswd(fl)
		} else {
			e, err = parsePasswd(fl)
		}
		if err == nil {
			all = append(all, &e.Account)
		}
		return true
	})
	return all, err
}

// lookupNSS finds an account the files do not list (NIS, LDAP) through
// the C library when popper is built with cgo; without cgo os/user reads
// /etc/passwd itself and finds nothing more.
func lookupNSS(name string) (*Account, error) {
	u, err := user.Lookup(name)
	if err != nil {
		var unknown user.UnknownUserError
		if errors.As(err, &unknown) {
			return nil, ErrUnknownUser
		}
		return nil, &TempError{Source: "system", Err: err}
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return nil, &TempError{Source: "system", Err: fmt.Errorf("user %s: non-numeric uid or gid", name)}
	}
	return &Account{Name: name, UID: uid, GID: gid, Home: u.HomeDir}, nil
}

// LookupSystem finds a system account the way the system source does,
// for the sources that verify passwords elsewhere (PAM, checkpassword)
// and for the boot-time sweep.
func LookupSystem(name string) (*Account, error) {
	return (&System{Files: DefaultSystemFiles()}).Lookup(name)
}
