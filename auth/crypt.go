package auth

import (
	"strings"

	"github.com/go-crypt/crypt"
	"github.com/go-crypt/crypt/algorithm/bcrypt"
	"github.com/go-crypt/crypt/algorithm/md5crypt"
	"github.com/go-crypt/crypt/algorithm/scrypt"
	"github.com/go-crypt/crypt/algorithm/shacrypt"
)

// decoder knows the crypt(3) formats found in passwd, shadow and
// master.passwd files. Its plaintext decoder is deliberately left out: a
// hash field is never a password.
var decoder = func() *crypt.Decoder {
	d := crypt.NewDecoder()
	for _, register := range []func(*crypt.Decoder) error{
		func(d *crypt.Decoder) error { return bcrypt.RegisterDecoder(d) },
		func(d *crypt.Decoder) error { return md5crypt.RegisterDecoder(d) },
		func(d *crypt.Decoder) error { return scrypt.RegisterDecoder(d) },
		func(d *crypt.Decoder) error { return shacrypt.RegisterDecoder(d) },
	} {
		if err := register(d); err != nil {
			panic("auth: " + err.Error())
		}
	}
	return d
}()

// CheckHash checks password against a crypt(3) hash as stored for an
// account. It returns nil on a match, ErrWrongPassword on a mismatch,
// ErrLocked for a field that locks the account or holds no password, and
// ErrUnknownHash for a format it cannot verify.
func CheckHash(hash, password string) error {
	if hash == "" || strings.HasPrefix(hash, "!") || strings.HasPrefix(hash, "*") {
		return ErrLocked
	}
	d, err := decoder.Decode(hash)
	if err != nil {
		return ErrUnknownHash
	}
	ok, err := d.MatchAdvanced(password)
	if err != nil {
		return ErrUnknownHash
	}
	if !ok {
		return ErrWrongPassword
	}
	return nil
}
