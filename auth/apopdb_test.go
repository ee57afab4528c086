package auth

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// apopDir is a directory fit for the database: the test's own, mode 0700.
func apopDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	if err := os.Chmod(d, 0o700); err != nil {
		t.Fatal(err)
	}
	return d
}

// writeAPOP writes a database file as popauth would leave it.
func writeAPOP(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: changes file ownership")
	}
}

func TestAPOPRoundTrip(t *testing.T) {
	path := filepath.Join(apopDir(t), "pop.auth")
	created, err := InitAPOPDB(path)
	if err != nil || !created {
		t.Fatalf("InitAPOPDB: created %v, %v", created, err)
	}
	want := map[string]string{
		"alice":         "open sesame",
		"bob":           "\x01\xff:\t \"\\%",
		"c.d-e_f@x.org": strings.Repeat("z", MaxAPOPSecret),
		"Ünïcode":       "sécret",
	}
	if err := UpdateAPOPDB(path, func(s map[string]string) error {
		for n, v := range want {
			s[n] = v
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	db, err := OpenAPOPDB(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(db.Names(), ","); got != "alice,bob,c.d-e_f@x.org,Ünïcode" {
		t.Errorf("Names = %s", got)
	}
	for n, v := range want {
		if got, ok := db.Secret(n); !ok || got != v {
			t.Errorf("Secret(%q) = %q, %v; want %q", n, got, ok, v)
		}
	}
	if _, ok := db.Secret("carol"); ok {
		t.Error("Secret(carol) found")
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != 0o600 {
		t.Errorf("mode %v after update", fi.Mode())
	}
	for _, leftover := range []string{path + ".new"} {
		if _, err := os.Lstat(leftover); err == nil {
			t.Errorf("%s left behind", leftover)
		}
	}
}

func TestAPOPFileIsTheDocumentedFormat(t *testing.T) {
	path := filepath.Join(apopDir(t), "pop.auth")
	if _, err := InitAPOPDB(path); err != nil {
		t.Fatal(err)
	}
	if err := UpdateAPOPDB(path, func(s map[string]string) error {
		s["bob"] = "s3cr3t!"
		s["alice"] = "open sesame"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	want := "popauth 1\nalice:6f70656e20736573616d65\nbob:73336372337421\n"
	if string(got) != want {
		t.Errorf("file:\n%s\nwant:\n%s", got, want)
	}
	// Upper-case hex and any order are read.
	writeAPOP(t, path, "popauth 1\nzed:4142\nal:6A6B\n")
	db, err := OpenAPOPDB(path)
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := db.Secret("al"); s != "jk" {
		t.Errorf("al = %q", s)
	}
	// An empty database is the magic line alone.
	writeAPOP(t, path, "popauth 1\n")
	if db, err := OpenAPOPDB(path); err != nil || len(db.Names()) != 0 {
		t.Errorf("empty database: %v, %v", db, err)
	}
}

func TestAPOPMalformedLines(t *testing.T) {
	long := strings.Repeat("n", MaxAPOPName+1)
	cases := []struct {
		name, content string
		line          int
		msg           string
	}{
		{"empty file", "", 1, "empty file"},
		{"no magic", "alice:41\n", 1, "not a popauth database"},
		{"other version", "popauth 2\n", 1, "version"},
		{"magic with CR", "popauth 1\r\n", 1, "CR LF"},
		{"magic without newline", "popauth 1", 1, "newline"},
		{"cut short", "popauth 1\nalice:41", 2, "newline"},
		{"no colon", "popauth 1\nalice 41\n", 2, "no ':'"},
		{"blank line", "popauth 1\nalice:41\n\nbob:42\n", 3, "no ':'"},
		{"comment", "popauth 1\n# users\n", 2, "no ':'"},
		{"odd hex", "popauth 1\nalice:414\n", 2, "hexadecimal"},
		{"not hex", "popauth 1\nalice:zz\n", 2, "hexadecimal"},
		{"CRLF", "popauth 1\nalice:41\r\n", 2, "CR LF"},
		{"second colon", "popauth 1\nalice:41:42\n", 2, "hexadecimal"},
		{"empty secret", "popauth 1\nalice:\n", 2, "empty secret"},
		{"NUL in secret", "popauth 1\nalice:410042\n", 2, "NUL"},
		{"CR in secret", "popauth 1\nalice:0d\n", 2, "carriage return"},
		{"LF in secret", "popauth 1\nalice:410a\n", 2, "line feed"},
		{"secret too long", "popauth 1\nalice:" + strings.Repeat("41", MaxAPOPSecret+1) + "\n", 2, "more than"},
		{"empty name", "popauth 1\n:41\n", 2, "empty user name"},
		{"space in name", "popauth 1\nal ice:41\n", 2, "space"},
		{"tab in name", "popauth 1\nal\tice:41\n", 2, "control character"},
		{"DEL in name", "popauth 1\nal\x7fice:41\n", 2, "control character"},
		{"name too long", "popauth 1\n" + long + ":41\n", 2, "more than"},
		{"duplicate", "popauth 1\nalice:41\nbob:42\nalice:43\n", 4, "twice"},
	}
	dir := apopDir(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-"))
			writeAPOP(t, path, c.content)
			_, err := OpenAPOPDB(path)
			var fe *APOPFormatError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want an *APOPFormatError", err)
			}
			if fe.Line != c.line || fe.Path != path || !strings.Contains(fe.Msg, c.msg) {
				t.Errorf("err = %v; want line %d and %q", err, c.line, c.msg)
			}
			if !strings.HasPrefix(err.Error(), path+":") {
				t.Errorf("error %q does not name the file", err)
			}
			// ParseAPOPDB refuses the same.
			if _, err := ParseAPOPDB(strings.NewReader(c.content), "x"); err == nil {
				t.Error("ParseAPOPDB accepted it")
			}
		})
	}
}

func TestAPOPMissingFile(t *testing.T) {
	dir := apopDir(t)
	path := filepath.Join(dir, "pop.auth")
	_, err := OpenAPOPDB(path)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v, want fs.ErrNotExist", err)
	}
	// An update needs the file; -init makes it.
	err = UpdateAPOPDB(path, func(map[string]string) error { return nil })
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "popauth -init") {
		t.Fatalf("update of a missing file: %v", err)
	}
	if _, err := os.Lstat(path); err == nil {
		t.Fatal("update created the database")
	}
	// A missing directory is missing too.
	if _, err := OpenAPOPDB(filepath.Join(dir, "nodir", "pop.auth")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing directory: %v", err)
	}
}

// refused checks that OpenAPOPDB refuses path with a message holding want.
func refused(t *testing.T, path, want string) error {
	t.Helper()
	db, err := OpenAPOPDB(path)
	if err == nil {
		t.Fatalf("OpenAPOPDB(%s) accepted it: %v", path, db.Names())
	}
	if errors.Is(err, fs.ErrNotExist) {
		t.Errorf("refusal %v looks like a missing file", err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, want it to say %q", err, want)
	}
	return err
}

func TestAPOPRefusesWrongMode(t *testing.T) {
	dir := apopDir(t)
	path := filepath.Join(dir, "pop.auth")
	for _, mode := range []fs.FileMode{0o644, 0o640, 0o400, 0o604, 0o700, 0o660, 0o600 | fs.ModeSetuid, 0o600 | fs.ModeSticky} {
		writeAPOP(t, path, "popauth 1\nalice:41\n")
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		err := refused(t, path, "POP authentication DB has wrong mode")
		var me *APOPModeError
		if !errors.As(err, &me) {
			t.Fatalf("mode %v: %v is not an *APOPModeError", mode, err)
		}
		want := path + ": POP authentication DB has wrong mode (" + octal(unixMode(mode)) + ")"
		if me.Error() != want {
			t.Errorf("mode %v: %q, want %q", mode, me.Error(), want)
		}
		// An update refuses it too rather than repairing it unseen.
		if err := UpdateAPOPDB(path, func(map[string]string) error { return nil }); err == nil {
			t.Errorf("mode %v: update accepted it", mode)
		}
		os.Chmod(path, 0o600)
		os.Remove(path)
	}
	if got := (&APOPModeError{Path: "p", Found: 0o644}).Error(); got != "p: POP authentication DB has wrong mode (0644)" {
		t.Errorf("qpopper text: %q", got)
	}
	if got := fmt.Sprintf("0%o", (&APOPModeError{Found: 0o600 | fs.ModeSetuid}).Mode()); got != "04600" {
		t.Errorf("setuid bit: %s", got)
	}
}

func octal(u uint32) string {
	const digits = "01234567"
	s := ""
	for ; u > 0; u /= 8 {
		s = string(digits[u%8]) + s
	}
	return "0" + s
}

func TestAPOPRefusesSymlink(t *testing.T) {
	dir := apopDir(t)
	real := filepath.Join(dir, "real")
	writeAPOP(t, real, "popauth 1\nalice:41\n")
	link := filepath.Join(dir, "pop.auth")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	refused(t, link, "symbolic link")
	// A dangling link is no missing file either.
	os.Remove(real)
	refused(t, link, "symbolic link")
}

func TestAPOPRefusesHardLink(t *testing.T) {
	dir := apopDir(t)
	path := filepath.Join(dir, "pop.auth")
	writeAPOP(t, path, "popauth 1\nalice:41\n")
	if err := os.Link(path, filepath.Join(dir, "other")); err != nil {
		t.Fatal(err)
	}
	refused(t, path, "2 hard links")
}

func TestAPOPRefusesNonRegular(t *testing.T) {
	dir := apopDir(t)
	path := filepath.Join(dir, "pop.auth")
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	refused(t, path, "not a regular file")
	fifo := filepath.Join(dir, "fifo")
	if out, err := exec.Command("mkfifo", "-m", "600", fifo).CombinedOutput(); err != nil {
		t.Skipf("mkfifo: %v %s", err, out)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		refused(t, fifo, "not a regular file")
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("OpenAPOPDB blocked on a FIFO")
	}
}

func TestAPOPRefusesWrongOwner(t *testing.T) {
	requireRoot(t)
	dir := apopDir(t)
	path := filepath.Join(dir, "pop.auth")
	writeAPOP(t, path, "popauth 1\nalice:41\n")
	if err := os.Chown(path, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	refused(t, path, "owned by uid 65534, not root")
	// The group does not matter: the file is 0600.
	os.Chown(path, 0, 65534)
	if _, err := OpenAPOPDB(path); err != nil {
		t.Errorf("root:65534 0600: %v", err)
	}
}

func TestAPOPRefusesWritableDirectory(t *testing.T) {
	dir := apopDir(t)
	path := filepath.Join(dir, "pop.auth")
	writeAPOP(t, path, "popauth 1\nalice:41\n")
	for _, mode := range []fs.FileMode{0o770, 0o707, 0o777, 0o775, 0o1777, 0o720} {
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
		refused(t, path, "writable by group or others")
		if err := UpdateAPOPDB(path, func(map[string]string) error { return nil }); err == nil {
			t.Errorf("dir mode %o: update accepted it", mode)
		}
	}
	for _, mode := range []fs.FileMode{0o700, 0o755, 0o750, 0o711, 0o500} {
		os.Chmod(dir, mode)
		if _, err := OpenAPOPDB(path); err != nil {
			t.Errorf("dir mode %o: %v", mode, err)
		}
	}
	os.Chmod(dir, 0o700)
}

func TestAPOPRefusesDirectoryOfAnotherUser(t *testing.T) {
	requireRoot(t)
	dir := apopDir(t)
	path := filepath.Join(dir, "pop.auth")
	writeAPOP(t, path, "popauth 1\nalice:41\n")
	if err := os.Chown(dir, 65534, 0); err != nil {
		t.Fatal(err)
	}
	refused(t, path, "owned by uid 65534, not root")
}

func TestAPOPDetectsQpopperDatabases(t *testing.T) {
	dir := apopDir(t)
	magic := map[string][]byte{
		"gdbm-le":   {0xce, 0x9a, 0x57, 0x13, 0, 0, 0, 0},
		"gdbm-be":   {0x13, 0x57, 0x9a, 0xcd, 0, 0, 0, 0},
		"gdbm64":    {0xcf, 0x9a, 0x57, 0x13, 0, 0, 0, 0},
		"gdbm-sync": {0xd1, 0x9a, 0x57, 0x13, 0, 0, 0, 0},
		"db185":     {0x61, 0x15, 0x06, 0x00, 2, 0, 0, 0},
		"db-hash":   {0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x61, 0x15, 0x06, 0x00, 9, 0, 0, 0},
		"db-btree":  {0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x05, 0x31, 0x62, 9, 0, 0, 0},
	}
	for name, head := range magic {
		path := filepath.Join(dir, name)
		data := append(append([]byte(nil), head...), make([]byte, 512)...)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		err := refused(t, path, "popauth -import")
		if !errors.Is(err, ErrQpopperAPOPDB) || !strings.Contains(err.Error(), "popauth(8)") {
			t.Errorf("%s: %v", name, err)
		}
		// Whatever its mode: the advice beats "wrong mode".
		os.Chmod(path, 0o644)
		if err := refused(t, path, "qpopper"); !errors.Is(err, ErrQpopperAPOPDB) {
			t.Errorf("%s 0644: %v", name, err)
		}
	}
	// ndbm's pair, or 4.4BSD's .db, beside a missing path.
	for _, suffixes := range [][]string{{".dir", ".pag"}, {".pag"}, {".db"}} {
		base := filepath.Join(dir, "ndbm"+strings.Join(suffixes, ""), "pop.auth")
		os.MkdirAll(filepath.Dir(base), 0o700)
		for _, s := range suffixes {
			os.WriteFile(base+s, []byte("x"), 0o600)
		}
		err := refused(t, base, "popauth -import")
		if !errors.Is(err, ErrQpopperAPOPDB) {
			t.Errorf("%v: %v", suffixes, err)
		}
		if _, err := InitAPOPDB(base); !errors.Is(err, ErrQpopperAPOPDB) {
			t.Errorf("InitAPOPDB beside %v: %v", suffixes, err)
		}
	}
}

// TestAPOPDetectsRealGdbmFile makes a gdbm file the way qpopper's popauth
// did (with perl's GDBM_File, which links the same libgdbm).
func TestAPOPDetectsRealGdbmFile(t *testing.T) {
	if _, err := exec.LookPath("perl"); err != nil {
		t.Skip("perl not installed")
	}
	if err := exec.Command("perl", "-MGDBM_File", "-e1").Run(); err != nil {
		t.Skip("perl has no GDBM_File (Debian: package perl, libperl5.x)")
	}
	path := filepath.Join(apopDir(t), "pop.auth")
	script := `use GDBM_File; tie my %h, 'GDBM_File', $ARGV[0], &GDBM_NEWDB, 0600 or die "$!";
		$h{"alice\0"} = join("", map { chr(ord($_) ^ 0xff) } split //, "secret") . "\0"; untie %h;`
	if out, err := exec.Command("perl", "-e", script, path).CombinedOutput(); err != nil {
		t.Fatalf("perl: %v\n%s", err, out)
	}
	err := refused(t, path, "gdbm")
	if !errors.Is(err, ErrQpopperAPOPDB) {
		t.Errorf("%v", err)
	}
}

func TestAPOPUpdateRemovesStaleNew(t *testing.T) {
	path := filepath.Join(apopDir(t), "pop.auth")
	if _, err := InitAPOPDB(path); err != nil {
		t.Fatal(err)
	}
	writeAPOP(t, path+".new", "popauth 1\nmallory:41\n")
	if err := UpdateAPOPDB(path, func(s map[string]string) error { s["alice"] = "a"; return nil }); err != nil {
		t.Fatal(err)
	}
	db, err := OpenAPOPDB(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(db.Names(), ","); got != "alice" {
		t.Errorf("names %s", got)
	}
	if _, err := os.Lstat(path + ".new"); err == nil {
		t.Error(".new still there")
	}
}

func TestAPOPUpdateThatFailsChangesNothing(t *testing.T) {
	path := filepath.Join(apopDir(t), "pop.auth")
	writeAPOP(t, path, "popauth 1\nalice:41\n")
	before, _ := os.ReadFile(path)
	boom := errors.New("boom")
	if err := UpdateAPOPDB(path, func(s map[string]string) error { s["bob"] = "b"; return boom }); !errors.Is(err, boom) {
		t.Errorf("err = %v", err)
	}
	for _, bad := range []map[string]string{{"bob": ""}, {"bob": "a\nb"}, {"b:ob": "x"}, {"": "x"}, {"b ob": "x"}} {
		err := UpdateAPOPDB(path, func(s map[string]string) error {
			for k, v := range bad {
				s[k] = v
			}
			return nil
		})
		if err == nil {
			t.Errorf("update with %q accepted", bad)
		}
	}
	after, _ := os.ReadFile(path)
	if string(after) != string(before) {
		t.Errorf("file changed to %q", after)
	}
	if _, err := os.Lstat(path + ".new"); err == nil {
		t.Error(".new left behind")
	}
}

func TestAPOPInitLeavesExistingDatabase(t *testing.T) {
	path := filepath.Join(apopDir(t), "pop.auth")
	writeAPOP(t, path, "popauth 1\nalice:41\n")
	created, err := InitAPOPDB(path)
	if err != nil || created {
		t.Fatalf("InitAPOPDB: %v %v", created, err)
	}
	if got, _ := os.ReadFile(path); string(got) != "popauth 1\nalice:41\n" {
		t.Errorf("file now %q", got)
	}
	// A bad existing file is reported, not replaced.
	writeAPOP(t, path, "garbage\n")
	if _, err := InitAPOPDB(path); err == nil {
		t.Error("InitAPOPDB accepted a malformed database")
	}
}

func TestAPOPNewFileIsModeUnderAnyUmask(t *testing.T) {
	path := filepath.Join(apopDir(t), "pop.auth")
	old := syscall.Umask(0o277)
	defer syscall.Umask(old)
	if _, err := InitAPOPDB(path); err != nil {
		t.Fatal(err)
	}
	if err := UpdateAPOPDB(path, func(s map[string]string) error { s["a"] = "b"; return nil }); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode() != 0o600 {
		t.Fatalf("mode %v, %v", fi.Mode(), err)
	}
}

func TestAPOPLockFileChecks(t *testing.T) {
	dir := apopDir(t)
	path := filepath.Join(dir, "pop.auth")
	writeAPOP(t, path, "popauth 1\n")
	target := filepath.Join(dir, "elsewhere")
	if err := os.Symlink(target, path+".lock"); err != nil {
		t.Fatal(err)
	}
	err := UpdateAPOPDB(path, func(s map[string]string) error { s["a"] = "b"; return nil })
	if err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("symlinked lock: %v", err)
	}
	if _, err := os.Lstat(target); err == nil {
		t.Error("the lock's symlink was followed")
	}
}

func TestAPOPUpdateWaitsForTheLock(t *testing.T) {
	path := filepath.Join(apopDir(t), "pop.auth")
	writeAPOP(t, path, "popauth 1\n")
	unlock, err := lockAPOP(path + ".lock")
	if err != nil {
		t.Fatal(err)
	}
	// On Linux the lock is an open file description lock, so this
	// process's own second attempt conflicts with it; elsewhere the
	// fcntl lock is the process's and only another process would wait
	// (cmd/popauth's tests run concurrent processes).
	old := apopLockWait
	apopLockWait = 300 * time.Millisecond
	defer func() { apopLockWait = old }()
	err = UpdateAPOPDB(path, func(s map[string]string) error { s["a"] = "b"; return nil })
	unlock()
	if runtime.GOOS == "linux" {
		if err == nil || !strings.Contains(err.Error(), "another popauth") {
			t.Errorf("update under a held lock: %v", err)
		}
	}
	if err := UpdateAPOPDB(path, func(s map[string]string) error { s["a"] = "b"; return nil }); err != nil {
		t.Errorf("after unlock: %v", err)
	}
}
