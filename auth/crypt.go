package auth

import (
	"crypto/subtle"
	"encoding/hex"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/go-crypt/crypt/algorithm"
	"github.com/go-crypt/crypt/algorithm/argon2"
	"github.com/go-crypt/crypt/algorithm/bcrypt"
	"github.com/go-crypt/crypt/algorithm/md5crypt"
	"github.com/go-crypt/crypt/algorithm/scrypt"
	"github.com/go-crypt/crypt/algorithm/sha1crypt"
	"golang.org/x/crypto/md4" //nolint:staticcheck // FreeBSD's $3$ is MD4, for compatibility only
	xscrypt "golang.org/x/crypto/scrypt"
)

// The crypt(3) formats popper checks, as passwd, shadow and master.passwd
// keep them on Linux (glibc, libxcrypt), illumos and Solaris (crypt.conf)
// and the BSDs:
//
//	DES       13 characters            traditional, Solaris __unix__ (descrypt.go)
//	BSDi DES  _CCCCSSSS + 11           FreeBSD, NetBSD; key folded past 8 characters
//	$1$       MD5-crypt                everywhere
//	$5$ $6$   SHA-256/512-crypt        with or without rounds=N (shacrypt.go)
//	$2a$ $2b$ $2y$  bcrypt             OpenBSD, FreeBSD, NetBSD, illumos, libxcrypt
//	$md5$     Sun MD5                  $md5[,rounds=N]$salt$$hash, the form Solaris writes
//	$sha1$    NetBSD SHA1-crypt        $sha1$rounds$salt$hash
//	$y$       yescrypt                 Debian 11+, Fedora, Ubuntu (libxcrypt's settings)
//	$7$       scrypt                   libxcrypt
//	$argon2id$ $argon2i$ $argon2d$     NetBSD 10 (libargon2's encoding, v=19)
//	$3$       NT-Hash                  FreeBSD, libxcrypt
//
// Every field is checked against a strict pattern of the string crypt(3)
// writes before anything is computed, so that a field the system's own
// crypt(3) could never match is not matched here either. These stay
// ErrUnknownHash, deliberately:
//
//   - Sun MD5's legacy bare-salt form $md5$salt$hash (one "$" before the
//     hash; passlib's bare_salt): its digest covers the salt without the
//     trailing "$", which go-crypt cannot compute;
//   - gost-yescrypt $gy$ (needs GOST R 34.11-2012, not in Go);
//   - yescrypt settings libxcrypt does not write (flags other than "j",
//     a ROM, extra parameters);
//   - argon2 before version 19 (v=16, or no v= field), and hashes from
//     NetBSD's earlier argon2 code, which hashed the salt as written
//     instead of base-64 decoding it;
//   - bcrypt $2x$ (crypt_blowfish's buggy sign-extension variant, which
//     cannot be reproduced with a correct bcrypt) and the original $2$;
//   - the plain-text and LDAP-style ({CRYPT}, {SSHA}) forms, which are no
//     crypt(3) hashes: a password field is never a password.
//
// Parameters that would need more than maxHashMemory bytes (yescrypt,
// scrypt, argon2) are refused too: a damaged field must not exhaust the
// memory of the process checking it. The limit is what libxcrypt's
// costliest yescrypt setting needs. Time is not limited: a field asking
// for a billion SHA-512 rounds costs what it costs in crypt(3) too.
const maxHashMemory = 1 << 30

// A hashFormat is one modular crypt(3) format: the whole field must match
// pattern, then check verifies the password; m is pattern's submatches.
// Every pattern starts with its literal prefix, so a field without the
// prefix cannot match it and its pattern need not be tried. The patterns
// are compiled at first use: compiling all ten cost each session's
// process about a millisecond at start-up, and a login needs one.
type hashFormat struct {
	prefix  string
	pattern func() *regexp.Regexp
	check   func(m []string, hash, password string) error
}

// format is a hashFormat whose pattern is expr, compiled once when first
// needed.
func format(prefix, expr string, check func(m []string, hash, password string) error) hashFormat {
	return hashFormat{prefix, sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) }), check}
}

// reCrypt64 is crypt(3)'s base-64 alphabet as a regexp class, and reSalt
// a salt character: printable ASCII but "$", so that a salt's length in
// the pattern is its length in bytes, which is what crypt(3) counts.
const (
	reCrypt64 = `[./0-9A-Za-z]`
	reSalt    = `[ -#%-~]`
)

var hashFormats = []hashFormat{
	format("$1$", `^\$1\$`+reSalt+`{0,8}\$`+reCrypt64+`{22}$`, goCrypt(md5crypt.Decode)),
	format("$5$", `^\$5\$(?:rounds=[1-9][0-9]{3,8}\$)?`+reSalt+`{0,16}\$`+reCrypt64+`{43}$`, checkSHACrypt),
	format("$6$", `^\$6\$(?:rounds=[1-9][0-9]{3,8}\$)?`+reSalt+`{0,16}\$`+reCrypt64+`{86}$`, checkSHACrypt),
	format("$2", `^\$2[aby]\$(?:0[4-9]|[12][0-9]|3[01])\$`+reCrypt64+`{53}$`, goCrypt(bcrypt.DecodeVariant(bcrypt.VariantStandard))),
	format("$md5", `^\$md5(?:,rounds=[1-9][0-9]{0,8})?\$`+reSalt+`*\$\$`+reCrypt64+`{22}$`, goCrypt(md5crypt.Decode)),
	format("$sha1$", `^\$sha1\$[1-9][0-9]{0,8}\$`+reSalt+`{0,64}\$`+reCrypt64+`{28}$`, goCrypt(sha1crypt.Decode)),
	format("$y$j", `^\$y\$j(`+reCrypt64+`)(`+reCrypt64+`)\$`+reCrypt64+`+\$`+reCrypt64+`{43}$`, checkYescrypt),
	format("$7$", `^\$7\$(`+reCrypt64+`)(`+reCrypt64+`{5})(`+reCrypt64+`{5})(`+reSalt+`*)\$(`+reCrypt64+`{43})$`, checkScrypt),
	format("$argon2", `^\$argon2(?:id|i|d)\$v=19\$m=([1-9][0-9]{0,9}),t=[1-9][0-9]{0,9},p=([1-9][0-9]{0,2})\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$`, checkArgon2),
	format("$3$$", `^\$3\$\$([0-9a-f]{32})$`, checkNTHash),
}

// CheckHash checks password against a crypt(3) hash as stored for an
// account. It returns nil on a match, ErrWrongPassword on a mismatch,
// ErrLocked for a field that locks the account or holds no password, and
// ErrUnknownHash for a format it cannot verify. Nothing it does not
// recognise is ever a match.
func CheckHash(hash, password string) error {
	return guarded(checkHash, hash, password)
}

// guarded runs check, turning a panic into ErrUnknownHash: a library
// panicking on a field it should have refused must not take the session
// with it. FuzzCheckHash calls checkHash unguarded, to see such panics.
func guarded(check func(hash, password string) error, hash, password string) (err error) {
	defer func() {
		if recover() != nil {
			err = ErrUnknownHash
		}
	}()
	return check(hash, password)
}

func checkHash(hash, password string) error {
	if noPassword(hash) {
		return ErrLocked
	}
	// crypt(3) reads the password as a C string, so no stored hash was
	// made from one holding a NUL; in C everything from the NUL on would
	// be ignored, which popper does not imitate.
	if strings.IndexByte(password, 0) >= 0 {
		return ErrWrongPassword
	}
	if hash[0] != '$' {
		return checkDES(hash, password)
	}
	for _, f := range hashFormats {
		if !strings.HasPrefix(hash, f.prefix) {
			continue
		}
		if m := f.pattern().FindStringSubmatch(hash); m != nil {
			return f.check(m, hash, password)
		}
	}
	return ErrUnknownHash
}

// noPassword reports whether a password field locks the account or holds
// no password at all:
//
//	""             no password; qpopper refused null passwords, and so does popper
//	"!..."         Linux: locked (usermod -L, passwd -l put "!" before the hash,
//	               which must not verify), "!" or "!!" never set
//	"*..."         "*" everywhere; *LK* (illumos, Solaris passwd -l), *NP*,
//	               *LOCKED* (FreeBSD pw lock, NetBSD usermod -C), OpenBSD's
//	               "*************", macOS "********"
//	NP             Solaris, illumos: no password (passwd -N)
//	NL, UP, LK     other Solaris markers (no-login, not yet activated,
//	               locked without the stars)
//	x              the placeholder of a passwd file whose hashes are elsewhere
//
// None of these can be a crypt(3) result: "!" and "*" are outside every
// crypt alphabet, and the others are too short.
func noPassword(hash string) bool {
	switch hash {
	case "", "NP", "NL", "UP", "LK", "x":
		return true
	}
	return hash[0] == '!' || hash[0] == '*'
}

// goCrypt returns the check of a format go-crypt implements, decoded by
// its algorithm package's decode (popper does not link go-crypt's own
// registry of decoders, whose start-up compiles a regexp in every
// process); the pattern has already checked the field's syntax.
func goCrypt(decode func(string) (algorithm.Digest, error)) func(m []string, hash, password string) error {
	return func(_ []string, hash, password string) error {
		d, err := decode(hash)
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
}

var (
	checkYescryptDigest = goCrypt(scrypt.DecodeVariant(scrypt.VariantYescrypt))
	checkArgon2Digest   = goCrypt(argon2.Decode)
)

// checkYescrypt bounds yescrypt's memory (128·r·N bytes) before go-crypt
// computes it. m holds the N and r characters of the "j" setting.
func checkYescrypt(m []string, hash, password string) error {
	logN, _ := cryptDecode64(m[1])
	r, _ := cryptDecode64(m[2])
	if logN+1 > 30 || 128*(uint64(r)+1)<<(logN+1) > maxHashMemory {
		return ErrUnknownHash
	}
	return checkYescryptDigest(m, hash, password)
}

// checkArgon2 bounds argon2's memory (m KiB, at least 8 KiB a lane)
// before go-crypt computes it.
func checkArgon2(m []string, hash, password string) error {
	kib, _ := strconv.ParseUint(m[1], 10, 64)
	lanes, _ := strconv.ParseUint(m[2], 10, 64)
	if max(kib, 8*lanes) > maxHashMemory/1024 {
		return ErrUnknownHash
	}
	return checkArgon2Digest(m, hash, password)
}

// checkScrypt verifies libxcrypt's scrypt, $7$: log2(N) in one character,
// r and p in five each (30 bits, least significant first), the salt used
// as it is written (not decoded), and 32 bytes of hash in yescrypt's
// little-endian base 64.
func checkScrypt(m []string, hash, password string) error {
	logN, _ := cryptDecode64(m[1])
	r, _ := cryptDecode64(m[2])
	p, _ := cryptDecode64(m[3])
	if logN < 1 || logN > 30 || r < 1 || p < 1 || uint64(r)*uint64(p) >= 1<<30 ||
		uint64(r) > maxHashMemory>>(7+logN) || 128*uint64(r)*uint64(p) > maxHashMemory {
		return ErrUnknownHash
	}
	key, err := xscrypt.Key([]byte(password), []byte(m[4]), 1<<logN, int(r), int(p), 32)
	if err != nil {
		return ErrUnknownHash
	}
	if subtle.ConstantTimeCompare([]byte(encode64LE(key)), []byte(m[5])) != 1 {
		return ErrWrongPassword
	}
	return nil
}

// encode64LE is the base 64 of yescrypt and scrypt: each group of three
// bytes taken as a little-endian number, written six bits at a time from
// the least significant.
func encode64LE(b []byte) string {
	var sb strings.Builder
	for i := 0; i < len(b); i += 3 {
		var v, bits uint
		for j := i; j < i+3 && j < len(b); j++ {
			v |= uint(b[j]) << bits
			bits += 8
		}
		for ; bits > 0; bits -= min(6, bits) {
			sb.WriteByte(cryptAlphabet[v&63])
			v >>= 6
		}
	}
	return sb.String()
}

// checkNTHash verifies FreeBSD's and libxcrypt's NT-Hash, $3$$ and the
// hex MD4 of the password widened to 16 bits a byte (the bytes taken as
// Latin-1, as both implementations do, not decoded from UTF-8).
func checkNTHash(m []string, _, password string) error {
	wide := make([]byte, 0, 2*len(password))
	for i := range len(password) {
		wide = append(wide, password[i], 0)
	}
	h := md4.New()
	h.Write(wide)
	sum := hex.EncodeToString(h.Sum(nil))
	if subtle.ConstantTimeCompare([]byte(sum), []byte(m[1])) != 1 {
		return ErrWrongPassword
	}
	return nil
}
