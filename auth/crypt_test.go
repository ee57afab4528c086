package auth

import (
	"bufio"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/go-crypt/crypt/algorithm/shacrypt"
)

// hashVector is one line of testdata/hashes*.txt.
type hashVector struct {
	method, password, hash string
	line                   int
}

func readHashVectors(t testing.TB, name string) []hashVector {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var vs []hashVector
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, "\t")
		if len(fields) != 3 {
			t.Fatalf("%s:%d: %d fields, want method, password, hash", name, n, len(fields))
		}
		vs = append(vs, hashVector{fields[0], fields[1], fields[2], n})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(vs) == 0 {
		t.Fatalf("%s: no vectors", name)
	}
	return vs
}

// changedPassword returns password with one bit of its first byte changed, a bit
// that every format, DES included, reads.
func changedPassword(password string) string {
	if password == "" {
		return "a"
	}
	return string(password[0]^1) + password[1:]
}

// sameUpTo is how many password bytes a format reads (0: all of them).
func sameUpTo(hash string) int {
	switch {
	case len(hash) == 13 && hash[0] != '$':
		return 8 // traditional DES
	case strings.HasPrefix(hash, "$2"):
		return 72 // bcrypt
	}
	return 0
}

// checkVector asserts that v.hash verifies v.password, and that a changed
// password, an extended one and an empty one do not, except where the
// format itself reads only a prefix, where the prefix must verify as
// libxcrypt's crypt(3) does.
func checkVector(t *testing.T, v hashVector) {
	t.Helper()
	start := time.Now()
	if err := CheckHash(v.hash, v.password); err != nil {
		t.Fatalf("CheckHash(%q, %q) = %v, want a match", v.hash, v.password, err)
	}
	wrong := []string{changedPassword(v.password), v.password + "\x00x"}
	if v.password != "" {
		wrong = append(wrong, "")
	}
	n := sameUpTo(v.hash)
	switch {
	case time.Since(start) > 100*time.Millisecond:
		// A costly hash (yescrypt's default, scrypt, Sun MD5's
		// rounds, slower still under -race): one wrong password.
		wrong = wrong[:1]
	case n == 0 || len(v.password) < n:
		wrong = append(wrong, v.password+" ")
	default:
		if err := CheckHash(v.hash, v.password[:n]); err != nil {
			t.Errorf("CheckHash(%q, %q): %v; the format reads only %d bytes, so the prefix must match", v.hash, v.password[:n], err, n)
		}
		if err := CheckHash(v.hash, v.password+" "); err != nil {
			t.Errorf("CheckHash(%q, password+\" \"): %v; bytes past %d must not count", v.hash, err, n)
		}
		wrong = append(wrong, v.password[:n-1])
	}
	for _, w := range wrong {
		if err := CheckHash(v.hash, w); !errors.Is(err, ErrWrongPassword) {
			t.Errorf("CheckHash(%q, %q) = %v, want ErrWrongPassword", v.hash, w, err)
		}
	}
}

func TestCheckHashVectors(t *testing.T) {
	methods := map[string]int{}
	for _, v := range readHashVectors(t, "hashes.txt") {
		methods[v.method]++
		t.Run(fmt.Sprintf("%d_%s", v.line, v.method), func(t *testing.T) {
			t.Parallel()
			checkVector(t, v)
		})
	}
	// The file must keep covering every format; a generator that lost
	// one must not go unnoticed.
	for _, m := range []string{
		"mkpasswd-descrypt", "python-crypt-des", "mkpasswd-bsdicrypt", "mkpasswd-md5crypt",
		"openssl-1", "mkpasswd-sha256crypt", "mkpasswd-sha256crypt-R1000", "openssl-5",
		"mkpasswd-sha512crypt", "mkpasswd-sha512crypt-R5000", "openssl-6", "mkpasswd-bcrypt",
		"mkpasswd-bcrypt-a-R4", "passlib-bcrypt-2y", "mkpasswd-sunmd5", "passlib-sun_md5_crypt",
		"passlib-sun_md5_crypt-rounds", "mkpasswd-yescrypt", "mkpasswd-scrypt-R6", "mkpasswd-nt",
		"python-crypt-sha256-rounds5000", "python-crypt-sha512-rounds5000", "python-hashlib-scrypt",
		"passlib-sha1_crypt", "argon2-id", "argon2-i", "argon2-d",
	} {
		if methods[m] == 0 {
			t.Errorf("hashes.txt has no %s hashVector", m)
		}
	}
}

// TestCheckHashDESFirstEight pins what libxcrypt's DES does with long and
// 8-bit passwords: only the first 8 bytes count, and of each only the 7
// low bits.
func TestCheckHashDESFirstEight(t *testing.T) {
	for _, v := range readHashVectors(t, "hashes.txt") {
		if v.method != "python-crypt-des" || v.password != "password" {
			continue
		}
		for _, pw := range []string{"password", "password123", "passwordpassword"} {
			if err := CheckHash(v.hash, pw); err != nil {
				t.Errorf("CheckHash(%q, %q) = %v, want a match", v.hash, pw, err)
			}
		}
		high := string([]byte{'p' | 0x80}) + "assword"
		if err := CheckHash(v.hash, high); err != nil {
			t.Errorf("CheckHash(%q, %q) = %v; DES ignores each byte's high bit", v.hash, high, err)
		}
		for _, pw := range []string{"passwor", "Password", "passworD123"} {
			if err := CheckHash(v.hash, pw); !errors.Is(err, ErrWrongPassword) {
				t.Errorf("CheckHash(%q, %q) = %v, want ErrWrongPassword", v.hash, pw, err)
			}
		}
		return
	}
	t.Fatal(`hashes.txt has no python-crypt-des hashVector for "password"`)
}

func TestCheckHashUnsupported(t *testing.T) {
	for _, v := range readHashVectors(t, "hashes-unsupported.txt") {
		if err := CheckHash(v.hash, v.password); !errors.Is(err, ErrUnknownHash) {
			t.Errorf("%s: CheckHash(%q, %q) = %v, want ErrUnknownHash", v.method, v.hash, v.password, err)
		}
	}
}

func TestCheckHashLocked(t *testing.T) {
	for _, field := range []string{
		"", "*", "!", "!!", "*LK*", "*NP*", "NP", "NL", "UP", "LK", "x",
		"*LOCKED*", "*************", "********",
	} {
		for _, pw := range []string{"", "x", field} {
			if err := CheckHash(field, pw); !errors.Is(err, ErrLocked) {
				t.Errorf("CheckHash(%q, %q) = %v, want ErrLocked", field, pw, err)
			}
		}
	}
	// A lock in front of a valid hash refuses the right password.
	for _, v := range readHashVectors(t, "hashes.txt") {
		for _, lock := range []string{"!", "!!", "*LK*", "*LOCKED*", "*"} {
			if err := CheckHash(lock+v.hash, v.password); !errors.Is(err, ErrLocked) {
				t.Errorf("CheckHash(%q, %q) = %v, want ErrLocked", lock+v.hash, v.password, err)
			}
		}
	}
}

// TestCheckHashMalformed checks that fields crypt(3) would never match
// are not matched: real vectors, bent.
func TestCheckHashMalformed(t *testing.T) {
	vs := readHashVectors(t, "hashes.txt")
	for _, v := range vs {
		for _, bad := range []string{
			v.hash[:len(v.hash)-1],
			v.hash + "x",
			v.hash + "\n",
			" " + v.hash,
			"{CRYPT}" + v.hash,
			strings.ToUpper(v.hash[:3]) + v.hash[3:],
		} {
			if bad == v.hash {
				continue
			}
			if err := CheckHash(bad, v.password); err == nil || errors.Is(err, ErrLocked) {
				t.Errorf("%s: CheckHash(%q, %q) = %v, want a refusal", v.method, bad, v.password, err)
			}
		}
	}
	// Hand-bent fields: each is a working hash with its syntax broken
	// in a way that crypt(3) would reject or never reproduce.
	byMethod := map[string]hashVector{}
	for _, v := range vs {
		if _, ok := byMethod[v.method]; !ok {
			byMethod[v.method] = v
		}
	}
	for _, c := range []struct{ method, old, new string }{
		{"mkpasswd-bcrypt", "$2b$", "$2x$"}, // crypt_blowfish's bug-compatible variant
		{"mkpasswd-bcrypt", "$2b$", "$2$"},  // the original bcrypt
		{"mkpasswd-bcrypt", "$05$", "$5$"},  // cost without its leading zero
		{"python-crypt-sha512-rounds5000", "rounds=5000", "rounds=05000"},
		{"mkpasswd-sha512crypt-R1000", "rounds=1000", "rounds=999"},
		{"mkpasswd-sha256crypt-R1000", "rounds=1000$", "rounds=1000$$"},
		{"mkpasswd-sha512crypt", "$6$", "$6$a"}, // mkpasswd's 16-character salt made 17
		{"mkpasswd-md5crypt", "$1$", "$1$a"},    // its 8 made 9
		{"mkpasswd-md5crypt", "$1$", "$apr1$"},
		{"passlib-sun_md5_crypt", "$$", "$x$"},
		{"mkpasswd-sunmd5", "rounds=", "rounds=0"},
		{"mkpasswd-sunmd5", "$md5,", "$md5$"},
		{"mkpasswd-yescrypt", "$y$j", "$y$k"},
		{"argon2-id", "v=19", "v=20"},
		{"argon2-id", "m=4096,t=3", "t=3,m=4096"},
		{"argon2-id", "m=4096", "m=4294967295"}, // would need 4 TiB
		{"mkpasswd-nt", "$3$$", "$3$"},
		{"passlib-sha1_crypt", "$sha1$5000", "$sha1$05000"},
	} {
		v, ok := byMethod[c.method]
		if !ok || !strings.Contains(v.hash, c.old) {
			t.Errorf("no %s hashVector containing %q", c.method, c.old)
			continue
		}
		hash, pw := strings.Replace(v.hash, c.old, c.new, 1), v.password
		if err := CheckHash(hash, pw); !errors.Is(err, ErrUnknownHash) {
			t.Errorf("CheckHash(%q, %q) = %v, want ErrUnknownHash", hash, pw, err)
		}
	}
	for _, hash := range []string{
		"password", "{PLAIN}password", "{SSHA}deadbeef", "$", "$$", "$1$", "$6$$", "_", "__",
		"ab", "abcdefghijkl", "abcdefghijklmn", "a:cdefghijklm", "_J9..", "_J9..abcd",
		"_........abcdefghijk", // count 0
		"$y$j/.$abc$" + strings.Repeat("a", 43),
		"$y$jzz$abc$" + strings.Repeat("a", 43), // N = 2^64
		"$7$zU..../....salt$" + strings.Repeat("a", 43),
		"$7$C.........../salt$" + strings.Repeat("a", 43), // r = 0
		"$gy$j9T$abc$" + strings.Repeat("a", 43),
		"$argon2id$v=19$m=65536,t=3,p=1$c2FsdHNhbHQ$",
	} {
		if err := CheckHash(hash, "password"); !errors.Is(err, ErrUnknownHash) {
			t.Errorf("CheckHash(%q) = %v, want ErrUnknownHash", hash, err)
		}
	}
}

// TestCheckHashFresh hashes random passwords with random salts at test
// time with the system's own tools and checks every one: a regression in
// a format the committed vectors happen to miss shows here.
func TestCheckHashFresh(t *testing.T) {
	type tool struct {
		name string
		args []string
	}
	var tools []tool
	if _, err := exec.LookPath("mkpasswd"); err != nil {
		t.Log("mkpasswd not on PATH (Debian: apt-get install whois); skipping its formats")
	} else {
		for _, m := range [][]string{
			{"descrypt"}, {"bsdicrypt"}, {"bsdicrypt", "-R", "R"}, {"md5crypt"},
			{"sha256crypt"}, {"sha256crypt", "-R", "R"}, {"sha512crypt"}, {"sha512crypt", "-R", "R"},
			{"bcrypt", "-R", "4"}, {"bcrypt-a", "-R", "4"}, {"sunmd5"}, {"sunmd5", "-R", "R"},
			{"yescrypt", "-R", "1"}, {"nt"},
		} {
			tools = append(tools, tool{"mkpasswd -m " + strings.Join(m, " "), append([]string{"mkpasswd", "-s", "-m"}, m...)})
		}
	}
	if _, err := exec.LookPath("openssl"); err == nil {
		for _, f := range []string{"-1", "-5", "-6"} {
			tools = append(tools, tool{"openssl passwd " + f, []string{"openssl", "passwd", f, "-stdin"}})
		}
	}
	if _, err := exec.LookPath("argon2"); err == nil {
		for _, v := range []string{"-id", "-i", "-d"} {
			tools = append(tools, tool{"argon2 " + v, []string{"argon2", "SALT", v, "-t", "2", "-m", "10", "-e"}})
		}
	}
	if len(tools) == 0 {
		t.Skip("none of mkpasswd, openssl, argon2 on PATH")
	}
	for _, tl := range tools {
		t.Run(tl.name, func(t *testing.T) {
			t.Parallel()
			for range 3 {
				pw := hashRandPassword(t)
				args := make([]string, len(tl.args))
				for i, a := range tl.args {
					switch a {
					case "R":
						a = strconv.Itoa(1000 + hashRandInt(t, 4000))
					case "SALT":
						a = hashRandText(t, "abcdefghijklmnopqrstuvwxyz0123456789", 16)
					}
					args[i] = a
				}
				cmd := exec.Command(args[0], args[1:]...)
				cmd.Stdin = strings.NewReader(pw)
				out, err := cmd.Output()
				if err != nil {
					t.Fatalf("%s: %v", strings.Join(args, " "), err)
				}
				hash := strings.TrimSuffix(string(out), "\n")
				if err := CheckHash(hash, pw); err != nil {
					t.Fatalf("%s made %q from %q; CheckHash: %v", tl.name, hash, pw, err)
				}
				if n := sameUpTo(hash); n > 0 && len(pw) > n {
					if err := CheckHash(hash, pw[:n]); err != nil {
						t.Errorf("CheckHash(%q, %q): %v, but %s reads only %d bytes", hash, pw[:n], err, tl.name, n)
					}
				}
				if err := CheckHash(hash, changedPassword(pw)); !errors.Is(err, ErrWrongPassword) {
					t.Errorf("CheckHash(%q, %q) = %v, want ErrWrongPassword", hash, changedPassword(pw), err)
				}
			}
		})
	}
}

func hashRandInt(t *testing.T, n int) int {
	i, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		t.Fatal(err)
	}
	return int(i.Int64())
}

func hashRandText(t *testing.T, alphabet string, n int) string {
	runes := []rune(alphabet)
	var sb strings.Builder
	for range n {
		sb.WriteRune(runes[hashRandInt(t, len(runes))])
	}
	return sb.String()
}

// hashRandPassword is 1 to 20 characters of printable ASCII, spaces and a
// few multi-byte runes: what the tools read back unchanged from stdin
// (no NUL, no newline), and what argon2's tool accepts (not empty).
func hashRandPassword(t *testing.T) string {
	pw := hashRandText(t, " !\"#$%&'()*+,-./0123456789:;<=>?@ABCXYZ[\\]^_`abcxyz{|}~éü€日本", 1+hashRandInt(t, 20))
	if !utf8.ValidString(pw) {
		t.Fatal("bad random password")
	}
	return pw
}

func TestCheckHashGuardsPanics(t *testing.T) {
	boom := func(string, string) error { panic("boom") }
	if err := guarded(boom, "$1$", "x"); !errors.Is(err, ErrUnknownHash) {
		t.Fatalf("a check that panics gives %v, want ErrUnknownHash", err)
	}
	ok := func(string, string) error { return nil }
	if err := guarded(ok, "$1$", "x"); err != nil {
		t.Fatalf("a check that matches gives %v, want nil", err)
	}
}

// tooSlowToFuzz tells the fuzzer to skip fields whose parameters make one
// check take long: CheckHash honours them as crypt(3) does, but a fuzzer
// would stall on them.
func tooSlowToFuzz(hash string) bool {
	num := func(s string) uint64 {
		n, _ := strconv.ParseUint(s, 10, 64)
		return n
	}
	for _, f := range strings.FieldsFunc(hash, func(r rune) bool { return r < '0' || r > '9' }) {
		if len(f) > 4 || num(f) > 2000 {
			return true
		}
	}
	switch {
	case strings.HasPrefix(hash, "_") && len(hash) >= 5:
		n, ok := cryptDecode64(hash[1:5])
		return !ok || n > 2000
	case strings.HasPrefix(hash, "$2") && len(hash) >= 6:
		return num(hash[4:6]) > 5
	case strings.HasPrefix(hash, "$y$") && len(hash) >= 7:
		n, _ := cryptDecode64(hash[4:5])
		r, _ := cryptDecode64(hash[5:6])
		return n > 9 || r > 8
	case strings.HasPrefix(hash, "$7$") && len(hash) >= 14:
		n, _ := cryptDecode64(hash[3:4])
		r, _ := cryptDecode64(hash[4:9])
		p, _ := cryptDecode64(hash[9:14])
		return n > 10 || r > 8 || p > 2
	case strings.HasPrefix(hash, "$argon2"):
		m := regexp.MustCompile(`m=(\d+),t=(\d+),p=(\d+)`).FindStringSubmatch(hash)
		return m != nil && (num(m[1]) > 1024 || num(m[2]) > 3 || num(m[3]) > 2)
	}
	return false
}

func FuzzCheckHash(f *testing.F) {
	for _, v := range readHashVectors(f, "hashes.txt") {
		f.Add(v.hash, v.password)
	}
	for _, v := range readHashVectors(f, "hashes-unsupported.txt") {
		f.Add(v.hash, v.password)
	}
	for _, h := range []string{"", "!", "*LK*", "$", "$$$$", "_", "$md5,rounds=$$$", "$y$j$$", "$argon2id$v=19$m=,t=,p=$$", "$3$$"} {
		f.Add(h, "x")
	}
	f.Fuzz(func(t *testing.T, hash, password string) {
		if tooSlowToFuzz(hash) {
			return
		}
		err := checkHash(hash, password) // unguarded: a panic fails
		switch err {
		case nil, ErrWrongPassword, ErrLocked, ErrUnknownHash:
		default:
			t.Fatalf("CheckHash(%q, %q) = %v, not one of auth's errors", hash, password, err)
		}
		if err := checkHash("!"+hash, password); err != ErrLocked {
			t.Fatalf("CheckHash(%q, %q) = %v, want ErrLocked", "!"+hash, password, err)
		}
	})
}

// checkHash tries a format's pattern only on a field that starts with the
// format's prefix: the pattern itself must demand that prefix, or a field
// it matches would be skipped.
func TestHashFormatPrefixes(t *testing.T) {
	for _, f := range hashFormats {
		expr := f.pattern().String()
		re, err := syntax.Parse(expr, syntax.Perl)
		if err != nil {
			t.Fatal(err)
		}
		if re.Op != syntax.OpConcat || len(re.Sub) < 2 || re.Sub[0].Op != syntax.OpBeginText ||
			re.Sub[1].Op != syntax.OpLiteral || !strings.HasPrefix(string(re.Sub[1].Rune), f.prefix) {
			t.Errorf("pattern %s does not begin with its prefix %q", expr, f.prefix)
		}
	}
}

// TestSHACryptAgainstGoCrypt checks popper's own SHA-crypt against
// go-crypt's on random passwords (up to 150 bytes: more than one block
// of B), salts (1 to 16 characters) and rounds, both variants.
// A field whose only '$' after the prefix ends "rounds=N" matches the
// pattern with "rounds=N" as its salt. crypt(3) reads it as the rounds and
// returns "$5$rounds=1000$" + 16 characters of the hash + "$" + a digest,
// never the field itself (libxcrypt, python3's crypt.crypt), so no
// password matches. The fuzzer found that this once panicked.
func TestSHACryptRoundsWithoutSalt(t *testing.T) {
	for _, hash := range []string{
		"$5$rounds=1000$.sPHb5EXcxFtfl.yGXhtFMynuoffntsbJo7t1mXpbJ6",
		"$6$rounds=5000$" + strings.Repeat("a", 86),
	} {
		if err := checkHash(hash, "a"); err != ErrWrongPassword {
			t.Errorf("checkHash(%q, \"a\") = %v, want ErrWrongPassword", hash, err)
		}
	}
}

func TestSHACryptAgainstGoCrypt(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(12, 6))
	for i := range 120 {
		variant := []shacrypt.Opt{shacrypt.WithSHA256(), shacrypt.WithSHA512()}[i%2]
		rounds := 1000 + rng.IntN(2000)
		if i%10 == 0 {
			rounds = 5000 // written without rounds=
		}
		h, err := shacrypt.New(variant, shacrypt.WithRounds(rounds))
		if err != nil {
			t.Fatal(err)
		}
		pw := make([]byte, rng.IntN(151))
		for j := range pw {
			pw[j] = byte(1 + rng.IntN(255))
		}
		salt := make([]byte, 1+rng.IntN(16)) // go-crypt refuses an empty one
		for j := range salt {
			salt[j] = cryptAlphabet[rng.IntN(64)]
		}
		d, err := h.HashWithSalt(string(pw), salt)
		if err != nil {
			t.Fatal(err)
		}
		hash := d.Encode()
		if err := CheckHash(hash, string(pw)); err != nil {
			t.Fatalf("CheckHash(%q, %q) = %v, go-crypt made it", hash, pw, err)
		}
		if err := CheckHash(hash, changedPassword(string(pw))); !errors.Is(err, ErrWrongPassword) {
			t.Fatalf("CheckHash(%q, a changed password) = %v", hash, err)
		}
	}
}
