package auth

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/popperd/popper/platform"
)

// The account files, as the system keeps them:
//
//	/etc/passwd         name:passwd:uid:gid:gecos:home:shell (every Unix)
//	/etc/shadow         name:hash:lastchg:min:max:warn:inactive:expire:flag
//	                    (Linux, illumos, Solaris; lastchg and expire in days
//	                    since 1970, empty = not set)
//	/etc/master.passwd  name:hash:uid:gid:class:change:expire:gecos:home:shell
//	                    (the BSDs; change and expire in seconds since 1970,
//	                    0 = not set)
//
// Lines starting with '+' or '-' are NIS compat markers and '#' starts a
// comment; neither names an account.

// entry is one account as the files describe it.
type entry struct {
	Account
	Hash   string
	Shadow bool // Hash came from a shadow or master.passwd entry
	// Days since 1970 (shadow) or seconds (master.passwd); -1 = not set.
	LastChange, MaxAge, Expire int64
	Seconds                    bool // LastChange/Expire are seconds (BSD)
}

// accountLines calls fn with the fields of each account line until fn
// returns false.
func accountLines(r io.Reader, fn func(f []string) bool) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || line[0] == '+' || line[0] == '-' {
			continue
		}
		if !fn(strings.Split(line, ":")) {
			break
		}
	}
	return sc.Err()
}

// findLine returns the fields of the line whose first field is name.
func findLine(r io.Reader, name string, fields int) ([]string, error) {
	var found []string
	err := accountLines(r, func(f []string) bool {
		if f[0] == name {
			found = f
		}
		return found == nil
	})
	switch {
	case err != nil:
		return nil, err
	case found == nil:
		return nil, ErrUnknownUser
	case len(found) < fields:
		return nil, fmt.Errorf("entry for %s has %d fields, want %d", name, len(found), fields)
	}
	return found, nil
}

// number reads a numeric field; an empty one is -1 (not set).
func number(s string) (int64, error) {
	if s == "" {
		return -1, nil
	}
	return strconv.ParseInt(s, 10, 64)
}

func parsePasswd(f []string) (*entry, error) {
	uid, err1 := strconv.Atoi(f[2])
	gid, err2 := strconv.Atoi(f[3])
	if err1 != nil || err2 != nil || uid < 0 || gid < 0 {
		return nil, fmt.Errorf("entry for %s has a bad uid or gid", f[0])
	}
	return &entry{Account: Account{Name: f[0], UID: uid, GID: gid, Home: f[5], Shell: f[6]},
		Hash: f[1], LastChange: -1, MaxAge: -1, Expire: -1}, nil
}

// addShadow fills in a shadow(5) entry's hash and ageing fields.
func (e *entry) addShadow(f []string) error {
	var err error
	e.Hash, e.Shadow = f[1], true
	if e.LastChange, err = number(f[2]); err != nil {
		return fmt.Errorf("shadow entry for %s: bad last change: %v", e.Name, err)
	}
	if e.MaxAge, err = number(f[4]); err != nil {
		return fmt.Errorf("shadow entry for %s: bad maximum age: %v", e.Name, err)
	}
	if e.Expire, err = number(f[7]); err != nil {
		return fmt.Errorf("shadow entry for %s: bad expiry: %v", e.Name, err)
	}
	return nil
}

// parseMasterPasswd reads a BSD master.passwd entry.
func parseMasterPasswd(f []string) (*entry, error) {
	e, err := parsePasswd([]string{f[0], f[1], f[2], f[3], f[7], f[8], f[9]})
	if err != nil {
		return nil, err
	}
	e.Shadow, e.Seconds = true, true
	change, err1 := number(f[5])
	expire, err2 := number(f[6])
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("master.passwd entry for %s has a bad change or expire field", f[0])
	}
	// 0 means "not set" there; the password's expiry is an instant.
	e.Expire, e.MaxAge, e.LastChange = notSet(expire), -1, notSet(change)
	return e, nil
}

func notSet(v int64) int64 {
	if v <= 0 {
		return -1
	}
	return v
}

// openAdminFile opens a file the administrator owns and popper reads as
// root, after platform.OpenAdminFile's checks.
func openAdminFile(path string) (*os.File, error) {
	return platform.OpenAdminFile(path, os.O_RDONLY, 0)
}
