package compat

import (
	"errors"
	"strings"
)

// MaxUserLen is qpopper's MAXUSERNAMELEN less its NUL: longer names are
// cut to this many bytes.
const MaxUserLen = 64

// noMIMESuffix on a user name asks for MIME-less (text/plain) output.
const noMIMESuffix = "-no-mime"

// UserName is a USER or APOP argument as qpopper stores it.
type UserName struct {
	Name   string // downcased, trimmed, "-no-mime" taken off, cut to MaxUserLen
	NoMIME bool   // the argument ended in "-no-mime": mail comes as plain text
	// Cut is the name before it was cut to MaxUserLen, "" when it fitted
	// (for the UserNameTruncated record).
	Cut string
}

// NormalizeUser applies qpopper's user-name rules in pop_user.c's order:
// downcase-user (ASCII only), then trim-domain (from the first "@"),
// then a "-no-mime" suffix (exactly so, after at least one byte) is taken
// off, then the name is cut to MaxUserLen bytes. So trim-domain takes a
// "-no-mime" after the domain with it, and "BOB-NO-MIME" is a name.
func NormalizeUser(arg string, o *Options) UserName {
	name := arg
	if o.DowncaseUser {
		b := []byte(name)
		for i, c := range b {
			if c >= 'A' && c <= 'Z' {
				b[i] = c + 'a' - 'A'
			}
		}
		name = string(b)
	}
	if o.TrimDomain {
		if i := strings.IndexByte(name, '@'); i >= 0 {
			name = name[:i]
		}
	}
	var u UserName
	if n := len(name) - len(noMIMESuffix); n > 0 && name[n:] == noMIMESuffix {
		name, u.NoMIME = name[:n], true
	}
	if len(name) > MaxUserLen {
		u.Cut, name = name, name[:MaxUserLen]
	}
	u.Name = name
	return u
}

// ValidUser refuses a user name that is unsafe in a file name: empty,
// longer than MaxUserLen, containing "/", "..", a blank, a control byte or
// NUL, or starting with "." (".bob.pop" would name bob's temp drop).
func ValidUser(name string) error {
	switch {
	case name == "":
		return errors.New("empty user name")
	case len(name) > MaxUserLen:
		return errors.New("user name too long")
	case strings.Contains(name, "/"):
		return errors.New("user name contains /")
	case strings.Contains(name, ".."):
		return errors.New("user name contains ..")
	case name[0] == '.':
		return errors.New("user name starts with .")
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c == 0x7f {
			return errors.New("user name contains a blank or control character")
		}
	}
	return nil
}

// HashDir is the hashed spool subdirectory of a user (genpath.c), without
// slashes around it: "" for method 0, one letter for method 1 (the sum of
// the first five bytes as C signed chars, modulo 26), and "a/b" for method
// 2 (first and second byte; the first twice for a one-byte name).
func HashDir(method int, user string) string {
	if user == "" {
		return ""
	}
	switch method {
	case 1:
		sum := 0
		for i := 0; i < len(user) && i < 5; i++ {
			sum += int(int8(user[i]))
		}
		// C's % keeps the sign of the dividend; a negative sum (bytes
		// >= 0x80) gives a character before 'a', as qpopper did.
		return string(rune(byte('a' + sum%26)))
	case 2:
		second := user[:1]
		if len(user) > 1 {
			second = user[1:2]
		}
		return user[:1] + "/" + second
	}
	return ""
}

// hashPrefix is "H/" or "".
func hashPrefix(o *Options, user string) string {
	if h := HashDir(o.HashSpool, user); h != "" {
		return h + "/"
	}
	return ""
}

// expandName fills temp-name or cache-name: "%s" is the user, "%%" a
// percent sign (the table allows no other verb).
func expandName(format, user string) string {
	var b strings.Builder
	for i := 0; i < len(format); i++ {
		if format[i] == '%' && i+1 < len(format) {
			switch format[i+1] {
			case 's':
				b.WriteString(user)
				i++
				continue
			case '%':
				b.WriteByte('%')
				i++
				continue
			}
		}
		b.WriteByte(format[i])
	}
	return b.String()
}

// tempDir is temp-dir, or the spool directory when unset.
func tempDir(o *Options) string {
	if o.TempDir != "" {
		return o.TempDir
	}
	return o.SpoolDir
}

// SpoolPath is the user's mailbox: spool-dir/H/user, or with home-dir-mail
// home/H/<home-dir-mail>.
func SpoolPath(o *Options, user, home string) string {
	if o.HomeDirMail != "" {
		return home + "/" + hashPrefix(o, user) + o.HomeDirMail
	}
	return o.SpoolDir + "/" + hashPrefix(o, user) + user
}

// LockPath is the dot-lock of a mailbox: its name plus ".lock".
func LockPath(spool string) string { return spool + ".lock" }

// TempDropPath is the temp drop: temp-dir/H/<temp-name with the user>,
// by default spool-dir/.user.pop.
func TempDropPath(o *Options, user, home string) string {
	return tempDir(o) + "/" + hashPrefix(o, user) + expandName(o.TempName, user)
}

// OldTempDropPath is where a temp drop was before hash-spool or
// home-dir-mail: spool-dir/H/<temp-name> (qpopper appends H here too).
// check-old-spool-loc looks there first.
func OldTempDropPath(o *Options, user, home string) string {
	return o.SpoolDir + "/" + hashPrefix(o, user) + expandName(o.TempName, user)
}

// CachePath is the server-mode cache file: cache-dir/H/<cache-name>.
func CachePath(o *Options, user string) string {
	dir := o.CacheDir
	if dir == "" {
		dir = o.SpoolDir
	}
	return dir + "/" + hashPrefix(o, user) + expandName(o.CacheName, user)
}

// SpoolOptionsPath is the admin's per-user option file read with
// spool-options: spool-dir/.user.qpopper-options (never hashed).
func SpoolOptionsPath(o *Options, user string) string {
	return o.SpoolDir + "/." + user + ".qpopper-options"
}

// UserOptionsPath is the user's own option file read with user-options.
func UserOptionsPath(home string) string { return home + "/.qpopper-options" }

// QuarantinePrefix is the start of the name of a file keeping bytes of a
// drop that are not mail: the temp drop name plus ".unparsed"; the spool
// package appends "-<UTC time>-<pid>".
func QuarantinePrefix(o *Options, user, home string) string {
	return TempDropPath(o, user, home) + ".unparsed"
}
