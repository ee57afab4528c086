package spool

import (
	"os"
	"strings"
	"testing"
)

// The states below are what a power cut can leave in the middle of a
// rewrite or of a login copy (durability.md §2; the crash tests in
// internal/crashtest generate them all from popper's own op logs). Each
// must come back with every message exactly once, whole, nothing glued.

// rewritten is a message as an update writes it back: X-UIDL and Status
// headers added after the separator line.
func rewritten(m string) string {
	return strings.Replace(m, "\n", "\nX-UIDL: 0123456789abcdef01\nStatus: RO\n", 1)
}

// recoverAndCheck runs recovery and checks that the spool holds exactly
// the messages want (by Message-ID, in order), each of them whole: its
// body line present and directly followed by the end of the message.
func recoverAndCheck(t *testing.T, c *Config, want []string, bodies map[string]string) string {
	t.Helper()
	res, err := Recover(c)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(t, c.Spool); !equal(got, want) {
		sp, _ := os.ReadFile(c.Spool)
		t.Fatalf("spool = %v, want %v:\n%q", got, want, sp)
	}
	sp, _ := os.ReadFile(c.Spool)
	d, err := Parse(strings.NewReader(string(sp)), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range d.Msgs {
		body := strings.TrimRight(string(sp[m.BodyStart:m.End]), "\n")
		if w := bodies[want[i]]; body != w {
			t.Errorf("message %s: body %q, want %q", want[i], body, w)
		}
	}
	if _, err := os.Lstat(c.TempDrop); err == nil {
		t.Error("temp drop left behind")
	}
	return res.QuarantineFile
}

// A normal-mode update rewrote the spool (message b deleted, X-UIDL and
// Status written back) and the power cut kept its writes but not the
// truncates: the spool is the rewrite followed by what the spool held
// before, which is the temp drop's own bytes at the same offsets. The
// last message has no trailing newline, so the stale bytes follow it
// directly.
func TestRecoverRewriteWithLostTruncate(t *testing.T) {
	for _, tc := range []struct {
		name string
		last string // the last message's body and ending
	}{
		{"last message without newline", "three"},
		{"ordinary spool", "three\n\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig(t, false)
			a := testMsg("a", "one")
			b := testMsg("b", strings.Repeat("two two two two\n", 40))
			cc := strings.TrimSuffix(testMsg("c", ""), "\n\n") + tc.last
			s := a + b + cc
			write(t, c.TempDrop, s)
			x := rewritten(a) + "\n" + rewritten(cc)
			if len(x) >= len(s) {
				t.Fatal("the rewrite must be shorter than the old spool")
			}
			write(t, c.Spool, x+s[len(x):])
			q := recoverAndCheck(t, c, []string{"a", "b", "c"}, map[string]string{
				"a": "one", "b": strings.TrimRight(strings.Repeat("two two two two\n", 40), "\n"), "c": "three"})
			if q == "" {
				t.Error("the stale bytes were not kept aside")
			}
		})
	}
}

// The same rewrite, with the truncate kept but a write in the middle
// lost: the spool has a hole of NULs where the rewrite's second chunk
// was.
func TestRecoverRewriteWithHole(t *testing.T) {
	c := testConfig(t, false)
	a := testMsg("a", strings.Repeat("one one one\n", 30))
	b := testMsg("b", strings.Repeat("two two two\n", 30))
	cc := testMsg("c", "three")
	write(t, c.TempDrop, a+b+cc)
	x := []byte(rewritten(a) + rewritten(b) + rewritten(cc))
	for i := 200; i < 500; i++ {
		x[i] = 0
	}
	write(t, c.Spool, string(x))
	recoverAndCheck(t, c, []string{"a", "b", "c"}, map[string]string{
		"a": strings.TrimRight(strings.Repeat("one one one\n", 30), "\n"),
		"b": strings.TrimRight(strings.Repeat("two two two\n", 30), "\n"), "c": "three"})
}

// A login copy cut short by the power cut, before the spool was
// truncated: the spool is intact and its copy of the last message is the
// whole one, also when the cut fell just after a blank line inside the
// body or in a last message without a trailing newline. And a login copy
// whose middle write was lost (a hole of NULs in the temp drop).
func TestRecoverTornLoginCopy(t *testing.T) {
	a := testMsg("a", "one")
	b := testMsg("b", "para one\n\npara two\n\npara three")
	cc := strings.TrimSuffix(testMsg("c", "last words"), "\n\n")
	s := a + b + cc
	bodies := map[string]string{"a": "one", "b": "para one\n\npara two\n\npara three", "c": "last words"}
	for _, tc := range []struct {
		name string
		temp string
	}{
		{"cut after a blank line", s[:strings.Index(s, "para two")]},
		{"cut inside the last message", s[:len(s)-4]},
		{"cut at the end of a line", s[:strings.Index(s, "para two")-1]},
		{"hole in the middle", s[:len(a)+10] + strings.Repeat("\x00", 30) + s[len(a)+40:]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig(t, false)
			write(t, c.TempDrop, tc.temp)
			write(t, c.Spool, s)
			recoverAndCheck(t, c, []string{"a", "b", "c"}, bodies)
		})
	}
}

// A crash during the session: the spool holds only mail delivered since
// login, whose messages share the leftover's separator line and headers
// up to the subject; none of it is taken for a copy.
func TestRecoverKeepsLookalikeNewMail(t *testing.T) {
	c := testConfig(t, false)
	msg := func(n string) string {
		return "From mda@example.org Sat Nov 28 22:00:00 2026\nFrom: mda@example.org\nTo: user\nSubject: soak-" + n +
			"\nMessage-ID: <soak-" + n + "@example.org>\n\nbody of soak-" + n + "\nsecond line\n\n"
	}
	write(t, c.TempDrop, msg("13")+msg("14"))
	write(t, c.Spool, msg("12")+msg("15"))
	recoverAndCheck(t, c, []string{"soak-13", "soak-14", "soak-12", "soak-15"}, map[string]string{
		"soak-12": "body of soak-12\nsecond line", "soak-13": "body of soak-13\nsecond line",
		"soak-14": "body of soak-14\nsecond line", "soak-15": "body of soak-15\nsecond line"})
}

// An append that did not fully reach the disk before the power cut: its
// range reads as NULs, or its first half does. The message before it
// comes back without them, and the unacknowledged append goes to
// quarantine.
func TestRecoverCutsLostAppend(t *testing.T) {
	a, b := testMsg("a", "one"), testMsg("b", "two")
	for _, tail := range []string{strings.Repeat("\x00", 100), strings.Repeat("\x00", 50) + "ject: new\nMessage-ID: <n@example.org>\n\nnew\n\n"} {
		c := testConfig(t, true)
		write(t, c.TempDrop, "") // a server-mode session's empty temp drop
		write(t, c.Spool, a+b+tail)
		if q := recoverAndCheck(t, c, []string{"a", "b"}, map[string]string{"a": "one", "b": "two"}); q == "" {
			t.Errorf("tail %q: nothing kept aside", tail)
		}
	}
}

// Recovery crashed in its turn, after making its merge durable and before
// the spool held it: the merge (TEMP.merge) is the authority, and the
// temp drop and TEMP.new it was made from still tell which of the
// spool's bytes are old. Here the merge took the spool's copy of a (it
// carries the UID clients saw), so the old bytes are not where they were
// in the merge.
func TestRecoverAfterCrashedRecovery(t *testing.T) {
	c := testConfig(t, false)
	a := testMsg("a", "one")
	b := testMsg("b", strings.Repeat("two two two two\n", 40))
	cc := testMsg("c", "three")
	s := a + b + cc
	write(t, c.TempDrop, s)
	x := rewritten(a) + rewritten(cc)
	write(t, c.Spool, x+s[len(x):])
	write(t, c.mergePath(), rewritten(a)+b+cc)
	recoverAndCheck(t, c, []string{"a", "b", "c"}, map[string]string{
		"a": "one", "b": strings.TrimRight(strings.Repeat("two two two two\n", 40), "\n"), "c": "three"})
	sp, _ := os.ReadFile(c.Spool)
	if !strings.Contains(string(sp), "X-UIDL: 0123456789abcdef01") {
		t.Error("the UID the merge kept is gone")
	}
	for _, p := range []string{c.mergePath(), c.newPath(), c.tmpPath()} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s left behind", p)
		}
	}
}

// The merge alone survived (its temp drop's name had not reached the
// disk): the next login merges it first. A scratch file alone is removed.
func TestOrphanedMergeAndScratch(t *testing.T) {
	c := testConfig(t, false)
	write(t, c.mergePath(), testMsg("a", "one")+testMsg("b", "two"))
	write(t, c.Spool, testMsg("a", "one")[:30])
	md, err := Open(c)
	if err != nil {
		t.Fatal(err)
	}
	if md.Len() != 2 {
		t.Errorf("login sees %d messages, want 2", md.Len())
	}
	if err := md.Commit(nil, nil); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, c.Spool); !equal(got, []string{"a", "b"}) {
		t.Errorf("spool = %v", got)
	}
	if _, err := os.Lstat(c.mergePath()); err == nil {
		t.Error("merge left behind")
	}
	write(t, c.tmpPath(), testMsg("a", "one"))
	if _, err := Recover(c); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(c.tmpPath()); err == nil {
		t.Error("scratch file left behind")
	}
	if got := ids(t, c.Spool); !equal(got, []string{"a", "b"}) {
		t.Errorf("spool = %v", got)
	}
}
