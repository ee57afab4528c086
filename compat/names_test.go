package compat

import (
	"strings"
	"testing"
)

func TestHashDir(t *testing.T) {
	tests := []struct {
		method int
		user   string
		want   string
	}{
		{0, "bob", ""},
		{1, "bob", "v"},          // 98+111+98 = 307; 307 % 26 = 21
		{1, "alice", "q"},        // 510 % 26 = 16
		{1, "alexander", "d"},    // only "alexa": 523 % 26 = 3
		{1, "x", "q"},            // 120 % 26 = 16
		{1, "\xe9ric", "j"},      // signed char: -23+114+105+99 = 295 % 26 = 9 (unsigned would give "f")
		{1, "élise", "y"},        // UTF-8 c3 a9: -61-87+108+105+115 = 180 % 26 = 24
		{1, "\xff\xff\xff", "^"}, // sum -3: C's % keeps the sign, 'a'-3
		{2, "bob", "b/o"},
		{2, "x", "x/x"},
		{2, "\xe9ric", "\xe9/r"},
		{1, "", ""},
		{3, "bob", ""},
	}
	for _, tt := range tests {
		if got := HashDir(tt.method, tt.user); got != tt.want {
			t.Errorf("HashDir(%d, %q) = %q, want %q", tt.method, tt.user, got, tt.want)
		}
	}
}

func TestPaths(t *testing.T) {
	type paths struct{ spool, lock, temp, old, cache, spoolOpts, quarantine string }
	tests := []struct {
		name string
		set  func(o *Options)
		user string
		home string
		want paths
	}{
		{"defaults", func(o *Options) {}, "bob", "/home/bob", paths{
			"/var/mail/bob", "/var/mail/bob.lock", "/var/mail/.bob.pop", "/var/mail/.bob.pop",
			"/var/mail/.bob.cache", "/var/mail/.bob.qpopper-options", "/var/mail/.bob.pop.unparsed"}},
		{"one-char", func(o *Options) {}, "x", "/home/x", paths{
			"/var/mail/x", "/var/mail/x.lock", "/var/mail/.x.pop", "/var/mail/.x.pop",
			"/var/mail/.x.cache", "/var/mail/.x.qpopper-options", "/var/mail/.x.pop.unparsed"}},
		{"temp-dir", func(o *Options) { o.TempDir = "/var/spool/poptemp"; o.CacheDir = "/var/cache/pop" }, "alice", "/h", paths{
			"/var/mail/alice", "/var/mail/alice.lock", "/var/spool/poptemp/.alice.pop", "/var/mail/.alice.pop",
			"/var/cache/pop/.alice.cache", "/var/mail/.alice.qpopper-options", "/var/spool/poptemp/.alice.pop.unparsed"}},
		{"hash 1", func(o *Options) { o.HashSpool = 1 }, "alexander", "/h", paths{
			"/var/mail/d/alexander", "/var/mail/d/alexander.lock", "/var/mail/d/.alexander.pop", "/var/mail/d/.alexander.pop",
			"/var/mail/d/.alexander.cache", "/var/mail/.alexander.qpopper-options", "/var/mail/d/.alexander.pop.unparsed"}},
		{"hash 1 signed char", func(o *Options) { o.HashSpool = 1 }, "\xe9ric", "/h", paths{
			"/var/mail/j/\xe9ric", "/var/mail/j/\xe9ric.lock", "/var/mail/j/.\xe9ric.pop", "/var/mail/j/.\xe9ric.pop",
			"/var/mail/j/.\xe9ric.cache", "/var/mail/.\xe9ric.qpopper-options", "/var/mail/j/.\xe9ric.pop.unparsed"}},
		{"hash 2 temp-dir", func(o *Options) { o.HashSpool = 2; o.TempDir = "/tmp/pop" }, "bob", "/h", paths{
			"/var/mail/b/o/bob", "/var/mail/b/o/bob.lock", "/tmp/pop/b/o/.bob.pop", "/var/mail/b/o/.bob.pop",
			"/var/mail/b/o/.bob.cache", "/var/mail/.bob.qpopper-options", "/tmp/pop/b/o/.bob.pop.unparsed"}},
		{"hash 2 one-char", func(o *Options) { o.HashSpool = 2 }, "x", "/h", paths{
			"/var/mail/x/x/x", "/var/mail/x/x/x.lock", "/var/mail/x/x/.x.pop", "/var/mail/x/x/.x.pop",
			"/var/mail/x/x/.x.cache", "/var/mail/.x.qpopper-options", "/var/mail/x/x/.x.pop.unparsed"}},
		{"home-dir-mail", func(o *Options) { o.HomeDirMail = "Mailbox" }, "bob", "/home/bob", paths{
			"/home/bob/Mailbox", "/home/bob/Mailbox.lock", "/var/mail/.bob.pop", "/var/mail/.bob.pop",
			"/var/mail/.bob.cache", "/var/mail/.bob.qpopper-options", "/var/mail/.bob.pop.unparsed"}},
		{"home-dir-mail hashed", func(o *Options) { o.HomeDirMail = ".mail"; o.HashSpool = 1 }, "bob", "/home/bob", paths{
			"/home/bob/v/.mail", "/home/bob/v/.mail.lock", "/var/mail/v/.bob.pop", "/var/mail/v/.bob.pop",
			"/var/mail/v/.bob.cache", "/var/mail/.bob.qpopper-options", "/var/mail/v/.bob.pop.unparsed"}},
		{"names", func(o *Options) { o.TempName = "%s.tmp%%"; o.CacheName = "cache-%s" }, "bob", "/h", paths{
			"/var/mail/bob", "/var/mail/bob.lock", "/var/mail/bob.tmp%", "/var/mail/bob.tmp%",
			"/var/mail/cache-bob", "/var/mail/.bob.qpopper-options", "/var/mail/bob.tmp%.unparsed"}},
	}
	for _, tt := range tests {
		o := DefaultOptions()
		tt.set(o)
		spool := SpoolPath(o, tt.user, tt.home)
		got := paths{spool, LockPath(spool), TempDropPath(o, tt.user, tt.home), OldTempDropPath(o, tt.user, tt.home),
			CachePath(o, tt.user), SpoolOptionsPath(o, tt.user), QuarantinePrefix(o, tt.user, tt.home)}
		if got != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.want)
		}
	}
	if got := UserOptionsPath("/home/bob"); got != "/home/bob/.qpopper-options" {
		t.Errorf("UserOptionsPath = %q", got)
	}
}

// qpopper's order (pop_user.c): downcase, trim-domain, strip
// "-no-mime" (case-sensitive, after at least one byte), cut to 64.
func TestNormalizeUser(t *testing.T) {
	long := strings.Repeat("a", 70)
	tests := []struct {
		in         string
		down, trim bool
		want       string
		noMIME     bool
		cut        string
	}{
		{"bob", false, false, "bob", false, ""},
		{"Bob", false, false, "Bob", false, ""},
		{"Bob", true, false, "bob", false, ""},
		{"ÉRIC", true, false, "Éric", false, ""}, // ASCII only
		{"bob@example.org", false, true, "bob", false, ""},
		{"Bob@Example.org", true, true, "bob", false, ""},
		{"bob@a@b", false, false, "bob@a@b", false, ""},
		{"bob-no-mime", false, false, "bob", true, ""},
		{"Bob-NO-MIME", false, false, "Bob-NO-MIME", false, ""},    // case-sensitive
		{"Bob-NO-MIME", true, false, "bob", true, ""},              // downcased first
		{"bob@example.org-no-mime", false, true, "bob", false, ""}, // trimmed with the domain
		{"bob-no-mime@example.org", false, true, "bob", true, ""},
		{"-no-mime", false, false, "-no-mime", false, ""},
		{long, false, false, long[:64], false, long},
		{strings.Repeat("b", 60) + "-no-mime", false, false, strings.Repeat("b", 60), true, ""}, // suffix first, then the cut
		{long + "-no-mime", false, false, long[:64], true, long},
	}
	for _, tt := range tests {
		o := DefaultOptions()
		o.DowncaseUser, o.TrimDomain = tt.down, tt.trim
		got := NormalizeUser(tt.in, o)
		if got != (UserName{tt.want, tt.noMIME, tt.cut}) {
			t.Errorf("NormalizeUser(%q, down=%v trim=%v) = %+v; want %q, %v, %q", tt.in, tt.down, tt.trim, got, tt.want, tt.noMIME, tt.cut)
		}
	}
}

func TestValidUser(t *testing.T) {
	good := []string{"bob", "x", "bob.smith", "bob@example.org", "\xe9ric", "a-b_c", strings.Repeat("a", 64)}
	bad := []string{"", ".", "..", "../etc", "a/b", "/", "a..b", ".bob.pop", "a\x00b", "a\nb", "a b", "a\tb", "a\x7fb", strings.Repeat("a", 65)}
	for _, u := range good {
		if err := ValidUser(u); err != nil {
			t.Errorf("ValidUser(%q): %v", u, err)
		}
	}
	for _, u := range bad {
		if ValidUser(u) == nil {
			t.Errorf("ValidUser(%q) accepted", u)
		}
	}
}
