package auth

import (
	"bufio"
	"crypto/subtle"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// UserDB is popper's own account file, for mail users who are not system
// accounts, and for the tests and the demo, which run without root.
// Lines: name:hash:uid:gid:gecos:home:shell[:mailbox]; '#' starts a
// comment line. hash is "{PLAIN}secret" or any crypt(3) hash CheckHash
// knows (bcrypt, SHA-crypt, yescrypt, ...).
type UserDB struct {
	path     string
	accounts map[string]*userEntry
}

type userEntry struct {
	Account
	hash string
}

// OpenUserDB reads and checks a user database (owned by root or by
// popper's own user, writable by no one else).
func OpenUserDB(path string) (*UserDB, error) {
	f, err := openAdminFile(path)
	if err != nil {
		return nil, fmt.Errorf("user database: %v", err)
	}
	defer f.Close()
	return parseUserDB(f, path)
}

func parseUserDB(r io.Reader, name string) (*UserDB, error) {
	db := &UserDB{path: name, accounts: map[string]*userEntry{}}
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimRight(sc.Text(), "\r")
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		f := strings.Split(text, ":")
		if len(f) != 7 && len(f) != 8 {
			return nil, fmt.Errorf("%s:%d: want 7 or 8 colon-separated fields, have %d", name, line, len(f))
		}
		uid, err1 := strconv.Atoi(f[2])
		gid, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil || uid < 0 || gid < 0 {
			return nil, fmt.Errorf("%s:%d: bad uid or gid", name, line)
		}
		if f[0] == "" {
			return nil, fmt.Errorf("%s:%d: empty user name", name, line)
		}
		if _, dup := db.accounts[f[0]]; dup {
			return nil, fmt.Errorf("%s:%d: user %q listed twice", name, line, f[0])
		}
		e := &userEntry{Account: Account{Name: f[0], UID: uid, GID: gid, Home: f[5], Shell: f[6]}, hash: f[1]}
		if len(f) == 8 {
			e.Mailbox = f[7]
		}
		db.accounts[e.Name] = e
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	return db, nil
}

func (db *UserDB) Name() string { return "userdb" }

// Authenticate checks a {PLAIN} secret (in constant time) or a crypt(3)
// hash. Empty secrets never match: qpopper refuses null passwords.
func (db *UserDB) Authenticate(name, password string) (*Account, error) {
	e := db.accounts[name]
	if e == nil {
		return nil, ErrUnknownUser
	}
	if plain, ok := strings.CutPrefix(e.hash, "{PLAIN}"); ok {
		if plain == "" || password == "" {
			return nil, ErrLocked
		}
		if subtle.ConstantTimeCompare([]byte(plain), []byte(password)) != 1 {
			return nil, ErrWrongPassword
		}
		return &e.Account, nil
	}
	if password == "" {
		return nil, ErrWrongPassword
	}
	if err := CheckHash(e.hash, password); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &e.Account, nil
}

func (db *UserDB) Lookup(name string) (*Account, error) {
	if e := db.accounts[name]; e != nil {
		return &e.Account, nil
	}
	return nil, ErrUnknownUser
}

// Accounts lists every account, for the boot-time sweep (home-dir-mail).
func (db *UserDB) Accounts() ([]*Account, error) {
	var all []*Account
	for _, e := range db.accounts {
		all = append(all, &e.Account)
	}
	return all, nil
}

// Problems: a database that opened has none; OpenUserDB reports the rest.
func (db *UserDB) Problems() []error { return nil }
