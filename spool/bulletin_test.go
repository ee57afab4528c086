package spool

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const bullFrom = "From admin Wed Dec  2 05:53:22 1992\n"

// bullFixture is a bulletin directory and a home for one user.
type bullFixture struct {
	t     *testing.T
	dir   string
	state string
}

func newBullFixture(t *testing.T) *bullFixture {
	t.Helper()
	root := t.TempDir()
	f := &bullFixture{t: t, dir: filepath.Join(root, "bull"), state: filepath.Join(root, "home", ".popbull")}
	for _, d := range []string{f.dir, filepath.Dir(f.state)} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *bullFixture) add(name, text string) {
	f.t.Helper()
	if err := os.WriteFile(filepath.Join(f.dir, name), []byte(text), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// addSubject adds a bulletin whose Subject names the file.
func (f *bullFixture) addSubject(name string) {
	f.add(name, bullFrom+"Subject: bulletin "+name+"\n\nbody of "+name+"\n")
}

func (f *bullFixture) config() BulletinConfig {
	return BulletinConfig{
		Dir: f.dir, User: "alice", Host: "mail.example", Max: 1, StatePath: f.state,
		Now: func() time.Time { return time.Unix(1700000000, 0) },
	}
}

func (f *bullFixture) setState(s string) {
	f.t.Helper()
	if err := os.WriteFile(f.state, []byte(s), 0o600); err != nil {
		f.t.Fatal(err)
	}
}

func (f *bullFixture) stateText() string {
	f.t.Helper()
	b, err := os.ReadFile(f.state)
	if err != nil {
		f.t.Fatal(err)
	}
	return string(b)
}

// deliver runs one login: pending, write, commit; returns the output and
// the subjects delivered.
func (f *bullFixture) deliver(c BulletinConfig) (string, []string) {
	f.t.Helper()
	b, err := PendingBulletins(c)
	if err != nil {
		f.t.Fatal(err)
	}
	var out bytes.Buffer
	n, err := b.WriteTo(&out)
	if err != nil {
		f.t.Fatal(err)
	}
	if n != int64(out.Len()) {
		f.t.Fatalf("WriteTo returned %d, wrote %d", n, out.Len())
	}
	if err := b.Commit(); err != nil {
		f.t.Fatal(err)
	}
	return out.String(), subjects(out.String())
}

func subjects(s string) []string {
	var r []string
	for _, l := range strings.Split(s, "\n") {
		if rest, ok := strings.CutPrefix(l, "Subject: bulletin "); ok {
			r = append(r, rest)
		}
	}
	return r
}

func same(a, b []string) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

func TestBulletinNewUserAndAdvance(t *testing.T) {
	f := newBullFixture(t)
	for _, n := range []string{"7", "8", "10", "9"} {
		f.addSubject(n)
	}
	f.add("README", "not a bulletin")
	c := f.config()
	c.Max = 2 // qpopper: last = max - max-bulletins = 8
	if _, got := f.deliver(c); !same(got, []string{"9", "10"}) {
		t.Fatalf("new user got %v, want newest two [9 10]", got)
	}
	if s := f.stateText(); s != "10\n" {
		t.Fatalf("state %q", s)
	}
	if _, got := f.deliver(c); len(got) != 0 {
		t.Fatalf("second login got %v again", got)
	}
	f.addSubject("11")
	f.addSubject("12.notes")
	if _, got := f.deliver(c); !same(got, []string{"11", "12.notes"}) {
		t.Fatalf("got %v, want [11 12.notes]", got)
	}
	if s := f.stateText(); s != "12\n" {
		t.Fatalf("state %q", s)
	}
	fi, err := os.Stat(f.state)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state mode %v %v", fi.Mode(), err)
	}
	left, _ := filepath.Glob(f.state + ".*")
	if len(left) != 0 {
		t.Fatalf("temp files left: %v", left)
	}
}

func TestBulletinMaxZeroNewUserGetsNothing(t *testing.T) {
	f := newBullFixture(t)
	f.addSubject("5")
	c := f.config()
	c.Max = 0
	if _, got := f.deliver(c); len(got) != 0 {
		t.Fatalf("got %v", got)
	}
	if s := f.stateText(); s != "5\n" {
		t.Fatalf("state %q", s)
	}
}

func TestBulletinStateFileRules(t *testing.T) {
	for _, tc := range []struct {
		name, state string
		want        []string
	}{
		{"empty means all sent", "", nil},
		{"garbage like new user", "xyz\n", []string{"3"}},
		{"number", "1\n", []string{"2", "3"}},
		{"number without newline", "2", []string{"3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newBullFixture(t)
			f.addSubject("1")
			f.addSubject("2")
			f.addSubject("3")
			f.setState(tc.state)
			if _, got := f.deliver(f.config()); !same(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			if s := f.stateText(); s != "3\n" {
				t.Fatalf("state rewritten as %q, want 3", s)
			}
		})
	}
}

func TestBulletinGroups(t *testing.T) {
	f := newBullFixture(t)
	f.addSubject("1.ALL")
	f.addSubject("2")
	f.addSubject("3.staff")
	f.addSubject("4.admins.txt")
	f.addSubject("5.nosuchgroup")
	f.setState("0\n")
	c := f.config()
	c.Groups = true
	c.InGroup = func(g string) bool { return g == "staff" }
	if _, got := f.deliver(c); !same(got, []string{"1.ALL", "2", "3.staff"}) {
		t.Fatalf("got %v", got)
	}
	// Without group-bulletins every file is for everyone.
	f.setState("0\n")
	c.Groups = false
	if _, got := f.deliver(c); len(got) != 5 {
		t.Fatalf("without groups got %v", got)
	}
}

func TestBulletinRewriteAndParse(t *testing.T) {
	f := newBullFixture(t)
	f.add("1", bullFrom+"To: everyone@old\n  continued@old\nStatus: RO\nX-UIDL: stolen-uid-123456\nSubject: bulletin 1\n\nline\nTo: in body stays\n")
	f.add("2", bullFrom+"Subject: bulletin 2\n\nno newline at end")
	f.add("3", bullFrom+"Subject: bulletin 3\n\nends blank\n\n")
	f.add("4", "Subject: bulletin 4\n\nno From line\n")
	f.add("5", "From nobody\nSubject: bulletin 5\n\nbad From line\n")
	f.setState("0\n")
	b, err := PendingBulletins(f.config())
	if err != nil {
		t.Fatal(err)
	}
	if b.Len() != 5 {
		t.Fatalf("Len %d", b.Len())
	}
	var out bytes.Buffer
	if _, err := b.WriteTo(&out); err != nil {
		t.Fatal(err)
	}
	if sk := b.Skipped(); len(sk) != 2 || !strings.Contains(sk[0].Error(), "4") || !strings.Contains(sk[1].Error(), "5") {
		t.Fatalf("skipped %v", sk)
	}
	want := bullFrom + "X-UIDL: 1700000000.000\nTo: alice@mail.example\nSubject: bulletin 1\n\nline\nTo: in body stays\n\n" +
		bullFrom + "X-UIDL: 1700000000.001\nSubject: bulletin 2\n\nno newline at end\n\n" +
		bullFrom + "X-UIDL: 1700000000.002\nSubject: bulletin 3\n\nends blank\n\n"
	if out.String() != want {
		t.Fatalf("output\n%q\nwant\n%q", out.String(), want)
	}

	d, err := Parse(bytes.NewReader(out.Bytes()), ParseOptions{UpdateStatusHeaders: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Msgs) != 3 || len(d.Junk) != 0 {
		t.Fatalf("parsed %d messages, junk %v", len(d.Msgs), d.Junk)
	}
	seen := map[string]bool{}
	for i, m := range d.Msgs {
		wantUID := fmt.Sprintf("1700000000.%03d", i)
		if !m.UIDFound || m.UID != wantUID {
			t.Errorf("msg %d: UID %q found=%v, want %q", i, m.UID, m.UIDFound, wantUID)
		}
		if seen[m.UID] {
			t.Errorf("duplicate UID %q", m.UID)
		}
		seen[m.UID] = true
	}
	// Appended after an existing drop, the bulletins are separate messages too.
	drop := bullFrom + "Subject: mail\n\nhello\n\n" + out.String()
	d, err = Parse(strings.NewReader(drop), ParseOptions{UpdateStatusHeaders: true})
	if err != nil || len(d.Msgs) != 4 {
		t.Fatalf("drop + bulletins: %v messages, %v", len(d.Msgs), err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if s := f.stateText(); s != "5\n" {
		t.Fatalf("state %q: skipped bulletins are not retried at every login", s)
	}
}

func TestBulletinLargeFileStreams(t *testing.T) {
	f := newBullFixture(t)
	long := strings.Repeat("x", 200<<10) // one line longer than any buffer
	f.add("1", bullFrom+"Subject: bulletin 1\n\n"+long+"\n"+long)
	f.setState("0\n")
	out, got := f.deliver(f.config())
	if !same(got, []string{"1"}) {
		t.Fatalf("got %v", got)
	}
	if !strings.HasSuffix(out, long+"\n"+long+"\n\n") {
		t.Fatalf("long lines not copied whole (len %d)", len(out))
	}
}

func TestBulletinMissingDirectory(t *testing.T) {
	f := newBullFixture(t)
	c := f.config()
	c.Dir = filepath.Join(f.dir, "missing")
	_, err := PendingBulletins(c)
	want := fmt.Sprintf("Unable to open bulletin directory '%s': No such file or directory (2)", c.Dir)
	if err == nil || err.Error() != want {
		t.Fatalf("error %v, want %q", err, want)
	}
}

func TestBulletinCommitBeforeWriteRefused(t *testing.T) {
	f := newBullFixture(t)
	f.addSubject("1")
	b, err := PendingBulletins(f.config())
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err == nil {
		t.Fatal("Commit before WriteTo succeeded")
	}
	if _, err := os.Stat(f.state); !os.IsNotExist(err) {
		t.Fatalf("state written: %v", err)
	}
}
