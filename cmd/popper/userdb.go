package main

import (
	"bufio"
	"crypto/subtle"
	"fmt"
	"io"
	"strconv"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// account is a mail user: who they are on the system and where their
// mail is.
type account struct {
	Name    string
	Hash    string
	UID     int
	GID     int
	Home    string
	Mailbox string // explicit spool path; "" = <spool-dir>/<name>
}

// userDB holds accounts read from a passwd-style file, for mail users who
// are not system accounts (and for tests and the demo, which run without
// root). Lines: name:hash:uid:gid:gecos:home:shell[:mailbox]; '#' starts a
// comment line. hash is "{PLAIN}secret" or a bcrypt hash ($2a$, $2b$, $2y$).
type userDB map[string]*account

func parseUserDB(r io.Reader, name string) (userDB, error) {
	db := make(userDB)
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
		if _, dup := db[f[0]]; dup {
			return nil, fmt.Errorf("%s:%d: user %q listed twice", name, line, f[0])
		}
		a := &account{Name: f[0], Hash: f[1], UID: uid, GID: gid, Home: f[5]}
		if len(f) == 8 {
			a.Mailbox = f[7]
		}
		db[a.Name] = a
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	return db, nil
}

// checkPassword reports whether password matches the stored hash. Empty
// hashes never match (qpopper refuses null passwords).
func checkPassword(hash, password string) bool {
	switch {
	case strings.HasPrefix(hash, "{PLAIN}"):
		want := strings.TrimPrefix(hash, "{PLAIN}")
		return want != "" && subtle.ConstantTimeCompare([]byte(want), []byte(password)) == 1
	case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2y$"):
		return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
	}
	return false
}
