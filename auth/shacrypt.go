package auth

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"hash"
	"strconv"
	"strings"
)

// SHA-crypt, $5$ (SHA-256) and $6$ (SHA-512): Ulrich Drepper's "Unix
// crypt using SHA-256 and SHA-512" (2007), the default of glibc, Solaris
// and FreeBSD before yescrypt and bcrypt. popper computes it itself,
// rather than through go-crypt, because this check is a tenth of every
// session: go-crypt's takes a fresh digest and an allocation a round,
// 5,000 of them, and costs 1.7 ms in a new process where this one costs
// 1.3 ms (nearly all of it the 5,000 compressions).

// shaCrypt is one of the two variants.
type shaCrypt struct {
	newHash func() hash.Hash
	sum     func(dst *[64]byte, p []byte) // the hash of p into dst's first size bytes
	size    int
	order   []byte // the output's byte order, three bytes a group (encode64LE)
}

var (
	sha256Crypt = shaCrypt{sha256.New, func(d *[64]byte, p []byte) { *(*[32]byte)(d[:32]) = sha256.Sum256(p) }, 32, []byte{
		20, 10, 0, 11, 1, 21, 2, 22, 12, 23, 13, 3, 14, 4, 24, 5, 25, 15, 26, 16, 6,
		17, 7, 27, 8, 28, 18, 29, 19, 9, 30, 31,
	}}
	sha512Crypt = shaCrypt{sha512.New, func(d *[64]byte, p []byte) { *d = sha512.Sum512(p) }, 64, []byte{
		42, 21, 0, 1, 43, 22, 23, 2, 44, 45, 24, 3, 4, 46, 25, 26, 5, 47, 48, 27, 6,
		7, 49, 28, 29, 8, 50, 51, 30, 9, 10, 52, 31, 32, 11, 53, 54, 33, 12, 13, 55, 34,
		35, 14, 56, 57, 36, 15, 16, 58, 37, 38, 17, 59, 60, 39, 18, 19, 61, 40, 41, 20, 62,
		63,
	}}
)

// checkSHACrypt verifies a $5$ or $6$ hash, already matched against its
// format's pattern: an optional rounds=N$ (1000 to 999,999,999), a salt of
// at most 16 characters, and the encoded hash.
func checkSHACrypt(_ []string, hash, password string) error {
	v := sha256Crypt
	if hash[1] == '6' {
		v = sha512Crypt
	}
	rest := hash[3:]
	rounds := 5000
	if r, ok := strings.CutPrefix(rest, "rounds="); ok {
		n, after, _ := strings.Cut(r, "$")
		var err error
		if rounds, err = strconv.Atoi(n); err != nil || rounds < 1000 || rounds > 999_999_999 {
			return ErrUnknownHash
		}
		rest = after
	}
	i := strings.LastIndexByte(rest, '$')
	if i < 0 {
		// The pattern took "rounds=N" for the salt. crypt(3) takes it
		// for the rounds and the hash's first characters for the salt,
		// so its result, which has a '$' after the salt, never equals
		// this field: no password matches it.
		return ErrWrongPassword
	}
	salt, want := rest[:i], rest[i+1:]
	key := v.key([]byte(password), []byte(salt), rounds)
	out := make([]byte, len(v.order))
	for j, k := range v.order {
		out[j] = key[k]
	}
	if subtle.ConstantTimeCompare([]byte(encode64LE(out)), []byte(want)) != 1 {
		return ErrWrongPassword
	}
	return nil
}

// key is the algorithm's steps 1 to 21: the digest before its encoding.
func (v shaCrypt) key(p, s []byte, rounds int) [64]byte {
	n := v.size
	h := v.newHash()
	var a, b, dp, ds [64]byte
	// B = H(p s p); A = H(p s, B repeated to len(p), then B or p for each
	// bit of len(p) from the lowest, 1 or 0).
	h.Write(p)
	h.Write(s)
	h.Write(p)
	h.Sum(b[:0])
	h.Reset()
	h.Write(p)
	h.Write(s)
	for left := len(p); left > 0; left -= n {
		h.Write(b[:min(left, n)])
	}
	for l := len(p); l > 0; l >>= 1 {
		if l&1 != 0 {
			h.Write(b[:n])
		} else {
			h.Write(p)
		}
	}
	h.Sum(a[:0])
	// P: H(p repeated len(p) times) repeated to len(p); S: H(s repeated
	// 16 + A[0] times) repeated to len(s).
	h.Reset()
	for range len(p) {
		h.Write(p)
	}
	h.Sum(dp[:0])
	h.Reset()
	for range 16 + int(a[0]) {
		h.Write(s)
	}
	h.Sum(ds[:0])
	P, S := repeatTo(dp[:n], len(p)), repeatTo(ds[:n], len(s))
	// The rounds: each hashes C or P, S unless the round is a multiple
	// of 3, P unless of 7, then P or C (odd rounds start with P).
	c := a
	buf := make([]byte, 0, 2*n+len(S)+2*len(P))
	for r := range rounds {
		m := buf[:0]
		if r&1 != 0 {
			m = append(m, P...)
		} else {
			m = append(m, c[:n]...)
		}
		if r%3 != 0 {
			m = append(m, S...)
		}
		if r%7 != 0 {
			m = append(m, P...)
		}
		if r&1 != 0 {
			m = append(m, c[:n]...)
		} else {
			m = append(m, P...)
		}
		v.sum(&c, m)
	}
	return c
}

// repeatTo returns d repeated to n bytes.
func repeatTo(d []byte, n int) []byte {
	out := make([]byte, 0, n)
	for len(out) < n {
		out = append(out, d[:min(len(d), n-len(out))]...)
	}
	return out
}
