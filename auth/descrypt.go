package auth

import (
	"crypto/subtle"
	"strings"
	"sync"
)

// DES-based crypt(3): the traditional 13-character form (two salt
// characters and eleven of hash, Solaris' __unix__ and old Linux and BSD
// systems) and the BSDi extended form ("_", four characters of iteration
// count, four of salt, eleven of hash) that FreeBSD and NetBSD still
// verify.
//
// Both encrypt a zero block with DES, keyed by the password, many times
// over. The salt changes DES itself: each set salt bit swaps two bits of
// the E expansion in every round (bit i with bit i+24), which is why
// crypto/des cannot be used and the rounds are done here. The tables are
// those of FIPS 46-3, numbered from 1 for the most significant bit.

// cryptAlphabet is crypt(3)'s base-64 alphabet: "." is 0, "z" is 63.
const cryptAlphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

var (
	desIP = [64]byte{
		58, 50, 42, 34, 26, 18, 10, 2,
		60, 52, 44, 36, 28, 20, 12, 4,
		62, 54, 46, 38, 30, 22, 14, 6,
		64, 56, 48, 40, 32, 24, 16, 8,
		57, 49, 41, 33, 25, 17, 9, 1,
		59, 51, 43, 35, 27, 19, 11, 3,
		61, 53, 45, 37, 29, 21, 13, 5,
		63, 55, 47, 39, 31, 23, 15, 7,
	}
	desE = [48]byte{
		32, 1, 2, 3, 4, 5,
		4, 5, 6, 7, 8, 9,
		8, 9, 10, 11, 12, 13,
		12, 13, 14, 15, 16, 17,
		16, 17, 18, 19, 20, 21,
		20, 21, 22, 23, 24, 25,
		24, 25, 26, 27, 28, 29,
		28, 29, 30, 31, 32, 1,
	}
	desP = [32]byte{
		16, 7, 20, 21, 29, 12, 28, 17,
		1, 15, 23, 26, 5, 18, 31, 10,
		2, 8, 24, 14, 32, 27, 3, 9,
		19, 13, 30, 6, 22, 11, 4, 25,
	}
	desPC1 = [56]byte{
		57, 49, 41, 33, 25, 17, 9,
		1, 58, 50, 42, 34, 26, 18,
		10, 2, 59, 51, 43, 35, 27,
		19, 11, 3, 60, 52, 44, 36,
		63, 55, 47, 39, 31, 23, 15,
		7, 62, 54, 46, 38, 30, 22,
		14, 6, 61, 53, 45, 37, 29,
		21, 13, 5, 28, 20, 12, 4,
	}
	desPC2 = [48]byte{
		14, 17, 11, 24, 1, 5,
		3, 28, 15, 6, 21, 10,
		23, 19, 12, 4, 26, 8,
		16, 7, 27, 20, 13, 2,
		41, 52, 31, 37, 47, 55,
		30, 40, 51, 45, 33, 48,
		44, 49, 39, 56, 34, 53,
		46, 42, 50, 36, 29, 32,
	}
	desShifts = [16]byte{1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1}
	// desS holds the eight S-boxes, each as four rows of sixteen.
	desS = [8][64]byte{{
		14, 4, 13, 1, 2, 15, 11, 8, 3, 10, 6, 12, 5, 9, 0, 7,
		0, 15, 7, 4, 14, 2, 13, 1, 10, 6, 12, 11, 9, 5, 3, 8,
		4, 1, 14, 8, 13, 6, 2, 11, 15, 12, 9, 7, 3, 10, 5, 0,
		15, 12, 8, 2, 4, 9, 1, 7, 5, 11, 3, 14, 10, 0, 6, 13,
	}, {
		15, 1, 8, 14, 6, 11, 3, 4, 9, 7, 2, 13, 12, 0, 5, 10,
		3, 13, 4, 7, 15, 2, 8, 14, 12, 0, 1, 10, 6, 9, 11, 5,
		0, 14, 7, 11, 10, 4, 13, 1, 5, 8, 12, 6, 9, 3, 2, 15,
		13, 8, 10, 1, 3, 15, 4, 2, 11, 6, 7, 12, 0, 5, 14, 9,
	}, {
		10, 0, 9, 14, 6, 3, 15, 5, 1, 13, 12, 7, 11, 4, 2, 8,
		13, 7, 0, 9, 3, 4, 6, 10, 2, 8, 5, 14, 12, 11, 15, 1,
		13, 6, 4, 9, 8, 15, 3, 0, 11, 1, 2, 12, 5, 10, 14, 7,
		1, 10, 13, 0, 6, 9, 8, 7, 4, 15, 14, 3, 11, 5, 2, 12,
	}, {
		7, 13, 14, 3, 0, 6, 9, 10, 1, 2, 8, 5, 11, 12, 4, 15,
		13, 8, 11, 5, 6, 15, 0, 3, 4, 7, 2, 12, 1, 10, 14, 9,
		10, 6, 9, 0, 12, 11, 7, 13, 15, 1, 3, 14, 5, 2, 8, 4,
		3, 15, 0, 6, 10, 1, 13, 8, 9, 4, 5, 11, 12, 7, 2, 14,
	}, {
		2, 12, 4, 1, 7, 10, 11, 6, 8, 5, 3, 15, 13, 0, 14, 9,
		14, 11, 2, 12, 4, 7, 13, 1, 5, 0, 15, 10, 3, 9, 8, 6,
		4, 2, 1, 11, 10, 13, 7, 8, 15, 9, 12, 5, 6, 3, 0, 14,
		11, 8, 12, 7, 1, 14, 2, 13, 6, 15, 0, 9, 10, 4, 5, 3,
	}, {
		12, 1, 10, 15, 9, 2, 6, 8, 0, 13, 3, 4, 14, 7, 5, 11,
		10, 15, 4, 2, 7, 12, 9, 5, 6, 1, 13, 14, 0, 11, 3, 8,
		9, 14, 15, 5, 2, 8, 12, 3, 7, 0, 4, 10, 1, 13, 11, 6,
		4, 3, 2, 12, 9, 5, 15, 10, 11, 14, 1, 7, 6, 0, 8, 13,
	}, {
		4, 11, 2, 14, 15, 0, 8, 13, 3, 12, 9, 7, 5, 10, 6, 1,
		13, 0, 11, 7, 4, 9, 1, 10, 14, 3, 5, 12, 2, 15, 8, 6,
		1, 4, 11, 13, 12, 3, 7, 14, 10, 15, 6, 8, 0, 5, 9, 2,
		6, 11, 13, 8, 1, 4, 10, 7, 9, 5, 0, 15, 14, 2, 3, 12,
	}, {
		13, 2, 8, 4, 6, 15, 11, 1, 10, 9, 3, 14, 5, 0, 12, 7,
		1, 15, 13, 8, 10, 3, 7, 4, 12, 5, 6, 11, 0, 14, 9, 2,
		7, 11, 4, 1, 9, 12, 14, 2, 0, 6, 10, 13, 15, 3, 5, 8,
		2, 1, 14, 7, 4, 10, 8, 13, 15, 12, 9, 0, 3, 5, 6, 11,
	}}
)

// Lookup tables derived from the ones above once, so that a round is a
// handful of table reads rather than bit-by-bit permutations: the final
// permutation (the inverse of IP), E applied to each byte of R, and each
// S-box's output already passed through P. They are made when DES is
// first needed (desTables), not at every process start, as few accounts
// still have DES hashes.
var (
	desFP  [64]byte
	desEx  [4][256]uint64
	desSP  [8][64]uint32
	desInv [256]int8 // cryptAlphabet's values; -1 for other bytes
)

var desTables = sync.OnceFunc(func() {
	for i, from := range desIP {
		desFP[from-1] = byte(i + 1)
	}
	for b := range 4 {
		for v := range 256 {
			desEx[b][v] = desPermute(uint64(v)<<(24-8*b), desE[:], 32)
		}
	}
	for s := range 8 {
		for six := range 64 {
			row := six>>4&2 | six&1
			col := six >> 1 & 15
			out := uint64(desS[s][row*16+col]) << (28 - 4*s)
			desSP[s][six] = uint32(desPermute(out, desP[:], 32))
		}
	}
})

func init() {
	for i := range desInv {
		desInv[i] = -1
	}
	for i := range len(cryptAlphabet) {
		desInv[cryptAlphabet[i]] = int8(i)
	}
}

// desPermute returns the bits of in (width bits wide) picked by table:
// output bit 1, the most significant, is input bit table[0].
func desPermute(in uint64, table []byte, width uint) uint64 {
	var out uint64
	for _, from := range table {
		out = out<<1 | in>>(width-uint(from))&1
	}
	return out
}

// desKey is a DES key schedule: the sixteen 48-bit round keys.
type desKey [16]uint64

func newDESKey(key uint64) *desKey {
	var k desKey
	cd := desPermute(key, desPC1[:], 64)
	c, d := cd>>28, cd&(1<<28-1)
	for i, n := range desShifts {
		c = (c<<n | c>>(28-n)) & (1<<28 - 1)
		d = (d<<n | d>>(28-n)) & (1<<28 - 1)
		k[i] = desPermute(c<<28|d, desPC2[:], 56)
	}
	return &k
}

// encrypt runs DES count times over block, each time feeding the output
// back in, with the salt mask swapping E bits (bit i of the 24-bit mask,
// counted from the top, swaps E output bits i+1 and i+25). With a zero
// mask and a count of 1 it is plain DES.
func (k *desKey) encrypt(block uint64, mask uint32, count int) uint64 {
	desTables()
	lr := desPermute(block, desIP[:], 64)
	l, r := uint32(lr>>32), uint32(lr)
	for range count {
		for _, rk := range k {
			e := desEx[0][r>>24] | desEx[1][r>>16&255] | desEx[2][r>>8&255] | desEx[3][r&255]
			swap := (uint32(e>>24) ^ uint32(e)) & mask
			e ^= uint64(swap)<<24 | uint64(swap)
			x := e ^ rk
			var f uint32
			for s := range 8 {
				f |= desSP[s][x>>(42-6*s)&63]
			}
			l, r = r, l^f
		}
		// The last round does not swap; the next pass starts from the
		// output, and IP undoes FP, so only the halves trade places.
		l, r = r, l
	}
	return desPermute(uint64(l)<<32|uint64(r), desFP[:], 64)
}

// saltMask turns a crypt salt into the E-swap mask: salt bit i (least
// significant first) becomes mask bit 23-i.
func saltMask(salt uint32) uint32 {
	var mask uint32
	for i := range 24 {
		if salt>>i&1 != 0 {
			mask |= 1 << (23 - i)
		}
	}
	return mask
}

// cryptDecode64 reads crypt base-64 characters, least significant first, as
// the salt and count fields of both DES forms are written. ok is false
// for a character outside the alphabet.
func cryptDecode64(s string) (v uint32, ok bool) {
	for i := range len(s) {
		c := desInv[s[i]]
		if c < 0 {
			return 0, false
		}
		v |= uint32(c) << (6 * i)
	}
	return v, true
}

// isCrypt64 reports whether s is made of cryptAlphabet only.
func isCrypt64(s string) bool {
	for i := range len(s) {
		if desInv[s[i]] < 0 {
			return false
		}
	}
	return true
}

// desEncodeBlock writes the 64-bit result as eleven characters, most
// significant bits first, the last one padded with two zero bits.
func desEncodeBlock(sb *strings.Builder, v uint64) {
	for shift := 58; shift >= -2; shift -= 6 {
		var c uint64
		if shift >= 0 {
			c = v >> shift & 63
		} else {
			c = v << -shift & 63
		}
		sb.WriteByte(cryptAlphabet[c])
	}
}

// desKeyBlock packs up to 8 password bytes into a DES key: each byte's 7 low
// bits shifted up by one, a short password padded with zero bytes.
func desKeyBlock(pw string) uint64 {
	var k uint64
	for i := range 8 {
		k <<= 8
		if i < len(pw) {
			k |= uint64(pw[i] << 1)
		}
	}
	return k
}

// desCrypt computes the DES crypt(3) string for password and the setting
// taken from hash: the traditional one when hash is 13 characters, the
// BSDi extended one when it is 20 and starts with "_". ok is false when
// hash has neither form.
func desCrypt(hash, password string) (out string, ok bool) {
	if !isCrypt64(strings.TrimPrefix(hash, "_")) {
		return "", false
	}
	var sb strings.Builder
	switch {
	case len(hash) == 13:
		salt, ok := cryptDecode64(hash[:2])
		if !ok {
			return "", false
		}
		// Only the first 8 characters count, as with every crypt(3).
		k := newDESKey(desKeyBlock(password))
		sb.WriteString(hash[:2])
		desEncodeBlock(&sb, k.encrypt(0, saltMask(salt), 25))
	case len(hash) == 20 && hash[0] == '_':
		count, ok1 := cryptDecode64(hash[1:5])
		salt, ok2 := cryptDecode64(hash[5:9])
		if !ok1 || !ok2 || count == 0 {
			return "", false
		}
		// Every character counts: each further 8 are folded into the
		// key by encrypting the key with itself and XORing them in.
		key := desKeyBlock(password)
		for rest := password[min(8, len(password)):]; rest != ""; rest = rest[min(8, len(rest)):] {
			key = newDESKey(key).encrypt(key, 0, 1)
			key ^= desKeyBlock(rest)
		}
		sb.WriteString(hash[:9])
		desEncodeBlock(&sb, newDESKey(key).encrypt(0, saltMask(salt), int(count)))
	default:
		return "", false
	}
	return sb.String(), true
}

// checkDES verifies password against a DES crypt(3) hash.
func checkDES(hash, password string) error {
	out, ok := desCrypt(hash, password)
	if !ok {
		return ErrUnknownHash
	}
	if subtle.ConstantTimeCompare([]byte(out), []byte(hash)) != 1 {
		return ErrWrongPassword
	}
	return nil
}
