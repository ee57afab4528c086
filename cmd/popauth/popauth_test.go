package main

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/popperd/popper/auth"
	"github.com/popperd/popper/compat"
	"github.com/popperd/popper/platform"
)

// These tests run the real popauth binary. It is built twice: as is, and
// with its built-in database path moved into a test directory, installed
// setuid root there when the tests run as root, as a site installs it.

var (
	popauthBin string // the plain build
	suidBin    string // built-in path suidDB; setuid root when we are root
	suidDB     string
	suidOK     bool   // the setuid bit takes effect where suidBin is
	suidWhy    string // why not
	probeBin   string // this test binary, setuid root, to probe suidOK
)

const (
	nobodyUID = 65534
	nobodyGID = 65534
	// probeEnv makes the test binary print its effective uid and exit.
	probeEnv = "POPAUTH_TEST_PRINT_EUID"
)

func TestMain(m *testing.M) {
	if os.Getenv(probeEnv) != "" {
		fmt.Println(os.Geteuid())
		os.Exit(0)
	}
	base, err := os.MkdirTemp("", "popauth-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(base)
		// Every user must reach the setuid copy; only root may write
		// where the database is.
		for _, d := range []string{base, filepath.Join(base, "bin"), filepath.Join(base, "etc")} {
			os.MkdirAll(d, 0o755)
			os.Chmod(d, 0o755)
		}
		popauthBin = filepath.Join(base, "popauth-plain")
		suidBin = filepath.Join(base, "bin", "popauth")
		suidDB = filepath.Join(base, "etc", "popper", "pop.auth")
		for _, b := range []struct{ out, ldflags string }{
			{popauthBin, ""},
			{suidBin, "-X main.dbPath=" + suidDB},
		} {
			cmd := exec.Command("go", "build", "-ldflags", b.ldflags, "-o", b.out, ".")
			if out, err := cmd.CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
				return 1
			}
		}
		suidOK, suidWhy = installSetuid(base)
		return m.Run()
	}()
	os.Exit(code)
}

// installSetuid makes suidBin root's and 4755, as popauth(8) says, and
// checks with a setuid copy of this test binary that the bit works here
// (a nosuid mount would silently ignore it).
func installSetuid(base string) (bool, string) {
	if os.Getuid() != 0 {
		return false, "needs root to install a setuid root binary"
	}
	if _, err := user.LookupId(strconv.Itoa(nobodyUID)); err != nil {
		return false, fmt.Sprintf("no user with uid %d: %v", nobodyUID, err)
	}
	for _, p := range []string{suidBin} {
		if err := os.Chown(p, 0, 0); err != nil {
			return false, err.Error()
		}
		if err := os.Chmod(p, 0o755|fs.ModeSetuid); err != nil {
			return false, err.Error()
		}
	}
	self, err := os.Executable()
	if err != nil {
		return false, err.Error()
	}
	data, err := os.ReadFile(self)
	if err != nil {
		return false, err.Error()
	}
	probeBin = filepath.Join(base, "bin", "probe")
	if err := os.WriteFile(probeBin, data, 0o755); err != nil {
		return false, err.Error()
	}
	os.Chmod(probeBin, 0o755|fs.ModeSetuid)
	cmd := exec.Command(probeBin)
	cmd.Env = []string{probeEnv + "=1"}
	cmd.Dir = base
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobodyUID, Gid: nobodyGID}}
	out, err := cmd.Output()
	if err != nil {
		return false, fmt.Sprintf("setuid probe: %v", err)
	}
	if strings.TrimSpace(string(out)) != "0" {
		return false, fmt.Sprintf("the setuid bit has no effect in %s (euid %s): nosuid mount?", base, strings.TrimSpace(string(out)))
	}
	return true, ""
}

// result is what one popauth run did.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
}

// runAs runs bin with args and stdin; uid -1 runs it as ourselves.
func runAs(t *testing.T, bin string, uid int, stdin string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Env = env
	cmd.Dir = filepath.Dir(filepath.Dir(bin))
	if uid >= 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: nobodyGID}}
	}
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("%s %v: %v", bin, args, err)
		}
		r.code = ee.ExitCode()
	}
	return r
}

// popauth runs the plain build as ourselves.
func popauth(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	return runAs(t, popauthBin, -1, stdin, nil, args...)
}

func mustOK(t *testing.T, r result, what string) {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("%s: %v", what, r)
	}
}

func mustFail(t *testing.T, r result, what, says string) {
	t.Helper()
	if r.code != 1 || !strings.Contains(r.stderr, says) {
		t.Errorf("%s: %v; want exit 1 saying %q", what, r, says)
	}
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root: the database must be root's")
	}
}

// newDB makes an empty database with popauth -init in a fresh directory.
func newDB(t *testing.T) string {
	t.Helper()
	requireRoot(t)
	path := filepath.Join(t.TempDir(), "pop.auth")
	mustOK(t, popauth(t, "", "-db", path, "-init"), "-init")
	return path
}

func secrets(t *testing.T, path string) map[string]string {
	t.Helper()
	db, err := auth.OpenAPOPDB(path)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, n := range db.Names() {
		m[n], _ = db.Secret(n)
	}
	return m
}

func sameSecrets(t *testing.T, path string, want map[string]string) {
	t.Helper()
	got := secrets(t, path)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("database holds %q, want %q", got, want)
	}
}

func TestInit(t *testing.T) {
	requireRoot(t)
	dir := filepath.Join(t.TempDir(), "popper")
	path := filepath.Join(dir, "pop.auth")
	r := popauth(t, "", "-db", path, "-init")
	mustOK(t, r, "-init")
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode() != fs.ModeDir|0o755 || platform.IDOf(fi).Uid != 0 {
		t.Errorf("directory: %v %v", fi.Mode(), err)
	}
	data, err := os.ReadFile(path)
	if err != nil || string(data) != "popauth 1\n" {
		t.Errorf("new database %q, %v", data, err)
	}
	fi, _ = os.Stat(path)
	if fi.Mode() != 0o600 || platform.IDOf(fi).Uid != 0 || platform.IDOf(fi).Gid != 0 {
		t.Errorf("database %v %+v", fi.Mode(), platform.IDOf(fi))
	}
	// Again: the database stays as it is.
	mustOK(t, popauth(t, "s\n", "-db", path, "-user", "alice"), "-user")
	r = popauth(t, "", "-db", path, "-init")
	mustOK(t, r, "second -init")
	if !strings.Contains(r.stderr, "1 entries; left as it is") {
		t.Errorf("second -init: %v", r)
	}
	sameSecrets(t, path, map[string]string{"alice": "s"})
	// Only the last directory is made.
	r = popauth(t, "", "-db", filepath.Join(t.TempDir(), "a", "b", "pop.auth"), "-init")
	mustFail(t, r, "-init two levels down", "no such file")
}

func TestUserListDelete(t *testing.T) {
	path := newDB(t)
	mustOK(t, popauth(t, "open sesame\n", "-db", path, "-user", "alice"), "secret on stdin")
	mustOK(t, popauth(t, "no newline", "-db", path, "-user", "bob"), "secret without newline")
	mustOK(t, popauth(t, "", "-db", path, "-user", "carol", "on the command line"), "secret argument")
	sameSecrets(t, path, map[string]string{"alice": "open sesame", "bob": "no newline", "carol": "on the command line"})
	mustOK(t, popauth(t, "changed\nignored\n", "-db", path, "-user", "alice"), "replace")

	r := popauth(t, "", "-db", path, "-list")
	mustOK(t, r, "-list")
	if r.stdout != "alice\nbob\ncarol\n" {
		t.Errorf("-list: %q", r.stdout)
	}
	r = popauth(t, "", "-db", path, "-list", "bob")
	if r.code != 0 || r.stdout != "bob\n" {
		t.Errorf("-list bob: %v", r)
	}
	mustFail(t, popauth(t, "", "-db", path, "-list", "dave"), "-list dave", "dave has no APOP secret")

	mustOK(t, popauth(t, "", "-db", path, "-delete", "bob"), "-delete")
	mustFail(t, popauth(t, "", "-db", path, "-delete", "bob"), "-delete again", "bob has no APOP secret")
	sameSecrets(t, path, map[string]string{"alice": "changed", "carol": "on the command line"})
	if _, err := os.Lstat(path + ".new"); err == nil {
		t.Error(".new left behind")
	}
}

func TestRefusedSecretsAndNames(t *testing.T) {
	path := newDB(t)
	mustOK(t, popauth(t, "keep\n", "-db", path, "-user", "alice"), "-user")
	before, _ := os.ReadFile(path)
	for _, c := range []struct {
		what, stdin string
		args        []string
		says        string
	}{
		{"empty secret", "\n", []string{"-user", "alice"}, "empty secret"},
		{"no input", "", []string{"-user", "alice"}, "empty secret"},
		{"CR LF", "secret\r\n", []string{"-user", "alice"}, "carriage return"},
		{"NUL", "se\x00cret\n", []string{"-user", "alice"}, "NUL"},
		{"CR argument", "", []string{"-user", "alice", "a\rb"}, "carriage return"},
		{"LF argument", "", []string{"-user", "alice", "a\nb"}, "line feed"},
		{"too long", strings.Repeat("x", auth.MaxAPOPSecret+1) + "\n", []string{"-user", "alice"}, "more than 255"},
		{"colon in name", "s\n", []string{"-user", "a:b"}, "':'"},
		{"space in name", "s\n", []string{"-user", "a b"}, "space"},
		{"empty name", "s\n", []string{"-user", ""}, "empty user name"},
		{"long name", "s\n", []string{"-user", strings.Repeat("n", 65)}, "more than 64"},
		{"root without a name", "s\n", nil, "root does not log in by APOP"},
		{"unknown option", "", []string{"-frobnicate"}, "unknown option"},
		{"two modes", "", []string{"-list", "-init"}, "-list"},
		{"-db after the mode", "", []string{"-list", "-db", path}, "must come before"},
		{"-trace", "", []string{"-trace", "/tmp/x", "-list"}, "not supported"},
		{"-f missing", "", []string{"-f", "/nonexistent/popper.conf", "-list"}, "Unable to open configuration file"},
		{"-f and -db", "", []string{"-f", "/nonexistent/popper.conf", "-db", path, "-list"}, "give one of them"},
		{"-user without name", "", []string{"-user"}, "wrong number of arguments"},
		{"-delete two names", "", []string{"-delete", "a", "b"}, "wrong number of arguments"},
	} {
		args := append([]string{"-db", path}, c.args...)
		if c.what == "-db after the mode" || c.what == "-trace" || strings.HasPrefix(c.what, "-f") {
			args = c.args
		}
		mustFail(t, popauth(t, c.stdin, args...), c.what, c.says)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
		t.Errorf("a refused run changed the database to %q", after)
	}
	r := popauth(t, "", "-help")
	if r.code != 0 || !strings.Contains(r.stdout, "usage: popauth") {
		t.Errorf("-help: %v", r)
	}
}

// TestConfigFile: root's -f CONFIG finds the database as popper does, by
// the apop-db option.
func TestConfigFile(t *testing.T) {
	requireRoot(t)
	if auth.DefaultAPOPDB != compat.DefaultAPOPDB || dbPath != auth.DefaultAPOPDB {
		t.Errorf("default paths differ: auth %s, compat %s, popauth %s", auth.DefaultAPOPDB, compat.DefaultAPOPDB, dbPath)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "etc", "pop.auth")
	conf := filepath.Join(dir, "popper.conf")
	os.WriteFile(conf, []byte("# popper\nset apop-db = \""+path+"\"\nset clear-text-password = default\n"), 0o644)
	mustOK(t, popauth(t, "", "-f", conf, "-init"), "-f CONFIG -init")
	mustOK(t, popauth(t, "s\n", "-f", conf, "-user", "alice"), "-f CONFIG -user")
	sameSecrets(t, path, map[string]string{"alice": "s"})
	r := popauth(t, "", "-f", conf, "-list")
	if r.code != 0 || r.stdout != "alice\n" {
		t.Errorf("-f CONFIG -list: %v", r)
	}
	os.WriteFile(conf, []byte("set apop-db = \"\"\n"), 0o644)
	mustFail(t, popauth(t, "", "-f", conf, "-list"), "empty apop-db", "sets apop-db to empty")
	os.WriteFile(conf, []byte("set no-such-option = 1\n"), 0o644)
	mustFail(t, popauth(t, "", "-f", conf, "-list"), "bad config", conf)
	// The default: what popper uses without apop-db.
	os.WriteFile(conf, []byte("set statistics\n"), 0o644)
	if _, err := os.Lstat(auth.DefaultAPOPDB); errors.Is(err, fs.ErrNotExist) {
		mustFail(t, popauth(t, "", "-f", conf, "-list"), "-f CONFIG without apop-db", auth.DefaultAPOPDB)
	}
}

func TestMissingAndBadDatabase(t *testing.T) {
	requireRoot(t)
	path := filepath.Join(t.TempDir(), "pop.auth")
	mustFail(t, popauth(t, "s\n", "-db", path, "-user", "alice"), "no database", "popauth -init")
	mustFail(t, popauth(t, "", "-db", path, "-list"), "-list, no database", "no such file")
	if _, err := os.Lstat(path); err == nil {
		t.Error("-user created the database")
	}
	os.WriteFile(path, []byte("popauth 1\nalice:41\n"), 0o644)
	os.Chmod(path, 0o644)
	mustFail(t, popauth(t, "s\n", "-db", path, "-user", "bob"), "mode 0644", "POP authentication DB has wrong mode (0644)")
}

func TestImport(t *testing.T) {
	path := newDB(t)
	mustOK(t, popauth(t, "old\n", "-db", path, "-user", "alice"), "-user alice")
	mustOK(t, popauth(t, "same\n", "-db", path, "-user", "bob"), "-user bob")
	in := filepath.Join(t.TempDir(), "export")
	os.WriteFile(in, []byte("popauth 1\nalice:6e6577\nbob:73616d65\ncarol:ff01\n"), 0o644)
	r := popauth(t, "", "-db", path, "-import", in)
	mustOK(t, r, "-import FILE")
	if !strings.Contains(r.stderr, "imported 3 entries") || !strings.Contains(r.stderr, "1 new, 1 replaced, 1 unchanged") {
		t.Errorf("-import: %v", r)
	}
	sameSecrets(t, path, map[string]string{"alice": "new", "bob": "same", "carol": "\xff\x01"})
	mustOK(t, popauth(t, "popauth 1\ndave:64\n", "-db", path, "-import", "-"), "-import -")
	sameSecrets(t, path, map[string]string{"alice": "new", "bob": "same", "carol": "\xff\x01", "dave": "d"})
	// A bad import file changes nothing.
	before, _ := os.ReadFile(path)
	mustFail(t, popauth(t, "popauth 1\nerin:65\nfrank:6\n", "-db", path, "-import", "-"), "bad import", "standard input:3")
	mustFail(t, popauth(t, "erin:65\n", "-db", path, "-import", "-"), "no magic", "not a popauth database")
	if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
		t.Errorf("a refused import changed the database")
	}
}

// TestConcurrentUpdates runs many popauth processes at once: the lock
// keeps every change.
func TestConcurrentUpdates(t *testing.T) {
	path := newDB(t)
	const n = 24
	var wg sync.WaitGroup
	results := make([]result, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = popauth(t, "", "-db", path, "-user", fmt.Sprintf("u%02d", i), fmt.Sprintf("s%d", i))
		}(i)
	}
	wg.Wait()
	want := map[string]string{}
	for i, r := range results {
		mustOK(t, r, fmt.Sprintf("run %d", i))
		want[fmt.Sprintf("u%02d", i)] = fmt.Sprintf("s%d", i)
	}
	sameSecrets(t, path, want)
}

// The setuid tests: popauth installed setuid root, run by uid 65534.

func requireSetuid(t *testing.T) {
	t.Helper()
	if !suidOK {
		t.Skip(suidWhy)
	}
}

// freshSuidDB empties the built-in database of the setuid build, as root,
// and gives it alice's secret.
func freshSuidDB(t *testing.T) {
	t.Helper()
	os.RemoveAll(filepath.Dir(suidDB))
	mustOK(t, runAs(t, suidBin, -1, "", nil, "-init"), "-init as root")
	mustOK(t, runAs(t, suidBin, -1, "alice's\n", nil, "-user", "alice"), "root sets alice")
}

func nobodyName(t *testing.T) string {
	u, err := user.LookupId(strconv.Itoa(nobodyUID))
	if err != nil {
		t.Fatal(err)
	}
	return u.Username
}

// rootOwned checks that the database is still 0600 root:root, alone.
func rootOwned(t *testing.T) {
	t.Helper()
	for _, p := range []string{suidDB, suidDB + ".lock"} {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		id := platform.IDOf(fi)
		if fi.Mode() != 0o600 || id.Uid != 0 || id.Gid != 0 || id.Nlink != 1 {
			t.Errorf("%s: mode %v, owner %d:%d, %d links", p, fi.Mode(), id.Uid, id.Gid, id.Nlink)
		}
	}
	if _, err := os.Lstat(suidDB + ".new"); err == nil {
		t.Errorf("%s.new left behind", suidDB)
	}
}

func TestSetuidUserSetsOwnSecret(t *testing.T) {
	requireSetuid(t)
	freshSuidDB(t)
	me := nobodyName(t)
	// The environment names someone else; popauth must not believe it.
	env := []string{"USER=alice", "LOGNAME=alice", "HOME=/root", "POPAUTH_DB=/tmp/x"}
	r := runAs(t, suidBin, nobodyUID, "mine\n", env)
	mustOK(t, r, "popauth as "+me)
	sameSecrets(t, suidDB, map[string]string{"alice": "alice's", me: "mine"})
	rootOwned(t)

	r = runAs(t, suidBin, nobodyUID, "mine again\n", env, "-user", me)
	mustOK(t, r, "-user "+me)
	sameSecrets(t, suidDB, map[string]string{"alice": "alice's", me: "mine again"})

	r = runAs(t, suidBin, nobodyUID, "", env, "-list")
	if r.code != 0 || r.stdout != me+"\n" {
		t.Errorf("-list as %s: %v", me, r)
	}
	r = runAs(t, suidBin, nobodyUID, "", env, "-list", me)
	if r.code != 0 || r.stdout != me+"\n" {
		t.Errorf("-list %s as %s: %v", me, me, r)
	}
	mustOK(t, runAs(t, suidBin, nobodyUID, "", env, "-delete", me), "-delete own entry")
	sameSecrets(t, suidDB, map[string]string{"alice": "alice's"})
	r = runAs(t, suidBin, nobodyUID, "", env, "-list")
	mustFail(t, r, "-list without an entry", me+" has no APOP secret")
	if strings.Contains(r.stdout+r.stderr, "alice") {
		t.Errorf("-list told %s about alice: %v", me, r)
	}
	rootOwned(t)
}

func TestSetuidUserCannotTouchOthers(t *testing.T) {
	requireSetuid(t)
	freshSuidDB(t)
	me := nobodyName(t)
	other := filepath.Join(t.TempDir(), "other.auth")
	os.WriteFile(other, []byte("popauth 1\nalice:6f776e6564\n"), 0o644)
	os.Chmod(filepath.Dir(other), 0o755)
	before, _ := os.ReadFile(suidDB)
	fiBefore, _ := os.Stat(suidDB)
	for _, c := range []struct {
		what, stdin string
		args        []string
		says        string
	}{
		{"-user alice", "owned\n", []string{"-user", "alice"}, "only your own entry"},
		{"-user root", "owned\n", []string{"-user", "root"}, "only your own entry"},
		{"-delete alice", "", []string{"-delete", "alice"}, "only your own entry"},
		{"-list alice", "", []string{"-list", "alice"}, "only your own entry"},
		{"-init", "", []string{"-init"}, "only root may create"},
		{"-import", "", []string{"-import", other}, "only root may import"},
		{"-import -", "popauth 1\nalice:6f776e6564\n", []string{"-import", "-"}, "only root may import"},
		{"-db", "owned\n", []string{"-db", other, "-user", me}, "only root may name a database"},
		{"-db -list", "", []string{"-db", other, "-list"}, "only root may name a database"},
		{"-f", "", []string{"-f", other, "-list"}, "only root may name a configuration file"},
		{"secret argument", "", []string{"-user", me, "visible"}, "only root may give a secret on the command line"},
	} {
		r := runAs(t, suidBin, nobodyUID, c.stdin, []string{"USER=root", "LOGNAME=root"}, c.args...)
		mustFail(t, r, c.what, c.says)
		if strings.Contains(r.stdout, "alice") {
			t.Errorf("%s: told %s about alice: %v", c.what, me, r)
		}
	}
	after, _ := os.ReadFile(suidDB)
	fiAfter, _ := os.Stat(suidDB)
	if !bytes.Equal(before, after) || !os.SameFile(fiBefore, fiAfter) {
		t.Errorf("a refused run rewrote the database: %q", after)
	}
	if got, _ := os.ReadFile(other); string(got) != "popauth 1\nalice:6f776e6564\n" {
		t.Errorf("the file named with -db changed: %q", got)
	}
	rootOwned(t)
}

// TestSetuidRefusesATamperedDatabase: a database someone made readable is
// refused for users too, with qpopper's text, and not repaired.
func TestSetuidRefusesATamperedDatabase(t *testing.T) {
	requireSetuid(t)
	freshSuidDB(t)
	os.Chmod(suidDB, 0o644)
	defer os.Chmod(suidDB, 0o600)
	r := runAs(t, suidBin, nobodyUID, "mine\n", nil)
	mustFail(t, r, "mode 0644", "POP authentication DB has wrong mode (0644)")
	fi, _ := os.Stat(suidDB)
	if fi.Mode() != 0o644 {
		t.Errorf("mode now %v", fi.Mode())
	}
}

// TestPlainBuildAsUser: without the setuid bit a user gets told why.
func TestPlainBuildAsUser(t *testing.T) {
	requireSetuid(t)
	freshSuidDB(t)
	plain := filepath.Join(filepath.Dir(suidBin), "popauth-nosuid")
	data, _ := os.ReadFile(suidBin)
	os.WriteFile(plain, data, 0o755)
	defer os.Remove(plain)
	r := runAs(t, plain, nobodyUID, "mine\n", nil)
	mustFail(t, r, "not setuid", "setuid root")
}

// apopDigest is what a client sends for APOP.
func apopDigest(timestamp, secret string) string {
	sum := md5.Sum([]byte(timestamp + secret))
	return hex.EncodeToString(sum[:])
}

// TestExportQpopper makes qpopper-layout databases with perl's modules,
// exports them with scripts/popauth-export-qpopper, imports the result and
// checks that every APOP digest comes out as with the original secret.
func TestExportQpopper(t *testing.T) {
	requireRoot(t)
	if _, err := exec.LookPath("perl"); err != nil {
		t.Skip("perl not installed")
	}
	script, err := filepath.Abs("../../scripts/popauth-export-qpopper")
	if err != nil {
		t.Fatal(err)
	}
	users := map[string]string{
		"alice":          "open sesame",
		"bob":            "x:y z\t\"'$`\\",
		"carol":          "\x80\xfe\x01high bytes",
		"dave@example":   strings.Repeat("long", 60),
		"with-scram":     "apop part",
		"erin.o'connell": "é",
	}
	// qpopper's layout: key NUL-terminated, value XOR 0xff and
	// NUL-terminated, a SCRAM build's second part after it; a user with
	// only a SCRAM part has no APOP secret.
	const writer = `
		use Fcntl;
		my ($module, $file, @pairs) = @ARGV;
		eval "require $module; 1" or exit 3;
		sub ob { join "", map { chr(ord($_) ^ 0xff) } split //, shift }
		my %h;
		if ($module eq "GDBM_File") { tie %h, $module, $file, &GDBM_File::GDBM_NEWDB, 0600 or die "$!" }
		elsif ($module eq "DB_File") { tie %h, $module, $file, O_RDWR|O_CREAT, 0600, $DB_File::DB_HASH or die "$!" }
		else { tie %h, $module, $file, O_RDWR|O_CREAT, 0600 or die "$!" }
		while (@pairs) {
			my ($k, $v) = splice @pairs, 0, 2;
			my $val = ob($v) . "\0";
			$val .= "scram-salt-and-hash\0" if $k eq "with-scram";
			$h{"$k\0"} = $val;
		}
		$h{"scram-only\0"} = "\0scram-salt-and-hash\0";
		untie %h;
	`
	var pairs []string
	for k, v := range users {
		pairs = append(pairs, k, v)
	}
	ran := 0
	for _, module := range []string{"GDBM_File", "NDBM_File", "DB_File", "SDBM_File"} {
		t.Run(module, func(t *testing.T) {
			dir := t.TempDir()
			qpath := filepath.Join(dir, "pop.auth")
			args := append([]string{"-e", writer, module, qpath}, pairs...)
			cmd := exec.Command("perl", args...)
			if out, err := cmd.CombinedOutput(); err != nil {
				if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 3 {
					t.Skipf("perl has no %s (Debian: package perl)", module)
				}
				t.Fatalf("perl %s: %v\n%s", module, err, out)
			}
			ran++
			export := exec.Command("perl", script, qpath)
			var out, errb bytes.Buffer
			export.Stdout, export.Stderr = &out, &errb
			if err := export.Run(); err != nil {
				t.Fatalf("export: %v\n%s", err, errb.String())
			}
			if !strings.Contains(errb.String(), `"scram-only" has no APOP secret`) {
				t.Errorf("export did not mention the SCRAM-only user:\n%s", errb.String())
			}
			db := filepath.Join(dir, "popper", "pop.auth")
			mustOK(t, popauth(t, "", "-db", db, "-init"), "-init")
			mustOK(t, popauth(t, out.String(), "-db", db, "-import", "-"), "-import -")
			got := secrets(t, db)
			if len(got) != len(users) {
				t.Errorf("imported %d users, want %d: %q", len(got), len(users), got)
			}
			const ts = "<1896.697170952@dbc.mtview.ca.us>"
			for name, secret := range users {
				if apopDigest(ts, got[name]) != apopDigest(ts, secret) {
					t.Errorf("%s: digest differs: imported secret %q, qpopper's %q", name, got[name], secret)
				}
			}
		})
	}
	if ran == 0 {
		t.Skip("perl loads none of GDBM_File, NDBM_File, DB_File, SDBM_File")
	}
}

// TestExportQpopperRefusesWhatPopperCannotHold: a name popper's format
// cannot hold stops the export unless -s is given.
func TestExportQpopperRefusesWhatPopperCannotHold(t *testing.T) {
	if err := exec.Command("perl", "-MGDBM_File", "-e1").Run(); err != nil {
		t.Skip("perl with GDBM_File not installed")
	}
	script, _ := filepath.Abs("../../scripts/popauth-export-qpopper")
	qpath := filepath.Join(t.TempDir(), "pop.auth")
	w := `use GDBM_File; tie my %h, "GDBM_File", $ARGV[0], &GDBM_NEWDB, 0600 or die;
		$h{"good\0"} = "\x8f\x88\0"; $h{"bad name\0"} = "\x8f\0"; untie %h;`
	if out, err := exec.Command("perl", "-e", w, qpath).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	out, err := exec.Command("perl", script, qpath).Output()
	if err == nil || len(out) != 0 {
		t.Errorf("export without -s: %v, printed %q", err, out)
	}
	out, err = exec.Command("perl", script, "-s", qpath).Output()
	if err == nil || string(out) != "popauth 1\ngood:7077\n" {
		t.Errorf("export -s: %v, printed %q", err, out)
	}
}
