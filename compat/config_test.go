package compat

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

// parseString reads qpopper syntax from a string in context ctx.
func parseString(t *testing.T, text string, ctx Context) (*Options, []*ConfigError) {
	t.Helper()
	o := DefaultOptions()
	errs := ParseConfig(strings.NewReader(text), "test.cf", nil, o, ctx)
	return o, errs
}

func errTexts(errs []*ConfigError) []string {
	var s []string
	for _, e := range errs {
		s = append(s, e.Text)
	}
	return s
}

func TestSampleConfig(t *testing.T) {
	o := DefaultOptions()
	errs := LoadConfig("testdata/qpopper.config", osOpen, o, Init)
	if len(errs) != 0 {
		t.Fatalf("errors: %q", errTexts(errs))
	}
	want := DefaultOptions()
	want.LogFacility = "mail"
	want.Statistics = true
	want.SpoolDir = "/var/mail"
	want.TempDir = "/var/mail"
	want.UWKluge = true
	want.Timeout = 600 * time.Second
	want.DowncaseUser = true
	want.AnnounceExpire = -1
	want.AnnounceLoginDelay = 0
	want.NonauthFile = "/etc/qpopper/blacklist"
	want.NoReverseLookup = true // "set reverse-lookup = true": qpopper 4.0.5's sense
	o.set = nil
	if !reflect.DeepEqual(o, want) {
		t.Errorf("got  %+v\nwant %+v", o, want)
	}
}

func osOpen(path string) (io.ReadCloser, error) { return os.Open(path) }

// TestEveryOptionAccepted sets each option to a non-default value in
// qpopper syntax and checks the value reads back.
func TestEveryOptionAccepted(t *testing.T) {
	values := map[Kind]string{Int: "2", String: `"/some/where"`}
	for _, opt := range AllOptions() {
		if opt.ref == nil {
			continue
		}
		var line, want string
		switch opt.Kind {
		case Bool:
			if opt.Default == "true" {
				line, want = "reset "+opt.Name, "false"
			} else {
				line, want = "set "+opt.Name, "true"
			}
		case Mnemonic:
			w := opt.Mnemonics[len(opt.Mnemonics)-1]
			line, want = "set "+opt.Name+" = "+w[len(w)-1], w[0]
		case String:
			line, want = "set "+opt.Name+" = "+values[String], "/some/where"
			if opt.check != nil && opt.Name != "spool-locks" {
				line, want = "set "+opt.Name+" = x%sy", "x%sy"
			}
			if opt.Name == "spool-locks" {
				line, want = "set spool-locks = fcntl,dotlock", "fcntl,dotlock"
			}
			if opt.Name == "proxy-trusted" {
				line, want = "set proxy-trusted = 192.0.2.0/24", "192.0.2.0/24"
			}
		case Int:
			line, want = "set "+opt.Name+" = "+values[Int], "2"
		}
		o, errs := parseString(t, line+"\n", Init)
		if len(errs) != 0 {
			t.Errorf("%s: %q", line, errTexts(errs))
			continue
		}
		if got, _ := o.Value(opt.Name); got != want {
			t.Errorf("%s: value %q, want %q", line, got, want)
		}
	}
}

func TestDefaults(t *testing.T) {
	o := DefaultOptions()
	checks := []struct {
		got, want any
	}{
		{o.TempName, ".%s.pop"}, {o.UpdateOnAbort, true}, {o.UpdateStatusHeaders, true},
		{o.Timeout, 120 * time.Second}, {o.CheckHashDir, true}, {o.CheckOldSpoolLoc, true},
		{o.NoReverseLookup, false}, {o.AnnounceExpire, 0}, {o.AnnounceLoginDelay, 0}, {o.MailLockCheck, 5000}, {o.TLSSupport, "none"},
		{o.ClearTextPassword, "default"}, {o.LogLogin, DefaultLogLogin}, {o.SpoolDir, "/var/mail"},
		{o.ServerMode, false}, {o.HashSpool, 0}, {o.ChunkyWrites, "always"},
	}
	for i, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("check %d: got %v, want %v", i, c.got, c.want)
		}
	}
	if len(o.Notes()) != 0 {
		t.Errorf("defaults noted %q", o.Notes())
	}
}

func TestTableSorted(t *testing.T) {
	for i := 1; i < len(options); i++ {
		if strings.ToLower(options[i-1].Name) >= strings.ToLower(options[i].Name) {
			t.Errorf("%s before %s", options[i-1].Name, options[i].Name)
		}
	}
}

func TestSyntax(t *testing.T) {
	tests := []struct {
		text  string
		check func(o *Options) bool
	}{
		{"set statistics\n", func(o *Options) bool { return o.Statistics }},
		{"  \tset statistics = true # on\n", func(o *Options) bool { return o.Statistics }},
		{"set statistics=1\n", func(o *Options) bool { return o.Statistics }},
		{"set update-on-abort = 0\n", func(o *Options) bool { return !o.UpdateOnAbort }},
		{"set update-on-abort = FALSE\n", func(o *Options) bool { return !o.UpdateOnAbort }},
		{"reset update-on-abort\n", func(o *Options) bool { return !o.UpdateOnAbort }},
		{"SET Statistics\n", func(o *Options) bool { return o.Statistics }},
		{"set uw-kludge\n", func(o *Options) bool { return o.UWKluge }},
		{"# comment\n\n   \n\t# indented comment\n", func(o *Options) bool { return reflect.DeepEqual(o, DefaultOptions()) }},
		{"set timeout = 0x20\n", func(o *Options) bool { return o.Timeout == 32*time.Second }},
		{"set timeout = 010\n", func(o *Options) bool { return o.Timeout == 8*time.Second }},
		{"set timeout = 300\r\n", func(o *Options) bool { return o.Timeout == 300*time.Second }},
		{"set announce-expire = -1\n", func(o *Options) bool { return o.AnnounceExpire == -1 }},
		{"set spool-dir = /var/spool/mail\n", func(o *Options) bool { return o.SpoolDir == "/var/spool/mail" }},
		{"set spool-dir = \"/a b\"\n", func(o *Options) bool { return o.SpoolDir == "/a b" }},
		{"set spool-dir = '/a\"b'\n", func(o *Options) bool { return o.SpoolDir == `/a"b` }},
		{"set spool-dir = `/a'b`\n", func(o *Options) bool { return o.SpoolDir == "/a'b" }},
		{"set spool-dir = \"/a\\\"b\"\n", func(o *Options) bool { return o.SpoolDir == `/a\"b` }},
		{"set spool-dir = \"\"\n", func(o *Options) bool { return o.SpoolDir == "" }},
		{"set spool-dir = /x # trailing\n", func(o *Options) bool { return o.SpoolDir == "/x" }},
		{"set log-facility = LOCAL3\n", func(o *Options) bool { return o.LogFacility == "local3" }},
		{"set clear-text-password = SSL\n", func(o *Options) bool { return o.ClearTextPassword == "TLS" }},
		{"set tls-version = all\n", func(o *Options) bool { return o.TLSVersion == "SSLv23" }},
		{"set tls-options = 4\nset tls-options = 8\n", func(o *Options) bool { return o.TLSOptions == 12 }},
		{"set tracefile = /tmp/t\n", func(o *Options) bool { return o.TraceFile == "/tmp/t" && o.Debug }},
		{"set tracefile = /tmp/t\nreset debug\n", func(o *Options) bool { return o.TraceFile == "" && !o.Debug }},
		// qpopper 4.0.5's inverted sense (pop_config.c: kREVLOOKUP is
		// no_rev_lookup): true turns lookups off.
		{"set reverse-lookup = true\n", func(o *Options) bool { return o.NoReverseLookup }},
		{"reset reverse-lookup\n", func(o *Options) bool { return !o.NoReverseLookup }},
		{"set UW-kludge\n", func(o *Options) bool { return o.UWKluge }},
		// A last line without a newline is read (qpopper called it too long).
		{"set statistics", func(o *Options) bool { return o.Statistics }},
		{"set timeout = 60\nset shy", func(o *Options) bool { return o.Shy && o.Timeout == time.Minute }},
		{"set bulldir = /var/spool/bulls\n", func(o *Options) bool {
			return o.BullDir == "/var/spool/bulls" && len(o.Notes()) == 0
		}},
		{"set bulldb-nonfatal\n", func(o *Options) bool {
			return len(o.Notes()) == 1 && strings.Contains(o.Notes()[0], "bulletin database")
		}},
	}
	for _, tt := range tests {
		o, errs := parseString(t, tt.text, Init)
		if len(errs) != 0 {
			t.Errorf("%q: %q", tt.text, errTexts(errs))
			continue
		}
		if !tt.check(o) {
			t.Errorf("%q: wrong effect: %+v", tt.text, o)
		}
	}
}

func TestSyntaxErrors(t *testing.T) {
	tests := []struct{ text, want string }{
		{"sett statistics\n", `Expected "set" or "reset", found "sett" at line 1 of config file test.cf`},
		{"= x\n", `Expected "set" or "reset", found "=" at line 1 of config file test.cf`},
		{"set nosuch\n", `Unrecognized option; scanning "nosuch" at line 1 of config file test.cf; valid options are: "announce-expire", "announce-login-delay", "apop-db", `},
		// Aliases follow their option, as qpopper lists "UW-kludge".
		{"set nosuch\n", `"user-options", "UW-kluge", "UW-kludge"`},
		{"set timeout\n", `"=" expected; found end of line at line 1 of config file test.cf`},
		{"set timeout 5\n", `"=" expected; found "5" at line 1 of config file test.cf`},
		{"set statistics = yes\n", `Boolean value expected for the statistics option; found "yes" at line 1 of config file test.cf`},
		{"set statistics = 2\n", `Boolean value expected for the statistics option; found "2" at line 1 of config file test.cf`},
		{"set timeout = abc\n", `Integer value expected for the timeout option; found "abc" at line 1 of config file test.cf`},
		{"set timeout = 99999999999\n", `Bad value for the timeout option; found "99999999999" at line 1 of config file test.cf`},
		{"set timeout = -5\n", `Bad value for the timeout option; found "-5" at line 1 of config file test.cf`},
		{"set timeout = 08\n", `Expected comment or end of line; found "8" at line 1 of config file test.cf`},
		{"set hash-spool = 3\n", `Bad value for the hash-spool option; found "3" at line 1 of config file test.cf`},
		{"set temp-name = .%d.pop\n", `Bad value for the temp-name option; found ".%d.pop" at line 1 of config file test.cf`},
		{"set temp-name = .pop\n", `Bad value for the temp-name option; found ".pop" at line 1 of config file test.cf`},
		{"set spool-locks = mbox\n", `Bad value for the spool-locks option; found "mbox" at line 1 of config file test.cf`},
		{"set spool-dir = \"/x\n", `String value expected for the spool-dir option; found unterminated "/x at line 1 of config file test.cf`},
		{"set spool-dir = \"/x\\\"\n", `String value expected for the spool-dir option; found unterminated "/x\" at line 1 of config file test.cf`},
		{"set spool-dir = \x01x\n", "String value expected for the spool-dir option; found \"\x01x\" at line 1 of config file test.cf"},
		{"set spool-dir = /x y\n", `Expected comment or end of line; found "y" at line 1 of config file test.cf`},
		{"set statistics = true false\n", `Expected comment or end of line; found "false" at line 1 of config file test.cf`},
		{"reset timeout\n", `timeout is not a boolean option; line 1 of config file test.cf`},
		{"reset statistics = 1\n", `Expected comment or end of line; found "= 1" at line 1 of config file test.cf`},
		{"set log-facility = kern\n", `Unrecognized "log-facility" mnemonic; scanning "kern" at line 1 of config file test.cf; valid mnemonics are: "mail", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"`},
		{strings.Repeat("#", 1023) + "\n", `Config file test.cf line 1 too long`},
		{strings.Repeat("#", 5000) + "\n", `Config file test.cf line 1 too long`},
		{"set config-file = /etc/x\n", `Unable to open configuration file /etc/x: including files is not allowed here (0)`},
	}
	for _, tt := range tests {
		_, errs := parseString(t, tt.text, Init)
		if len(errs) != 1 {
			t.Errorf("%q: want one error, got %q", tt.text, errTexts(errs))
			continue
		}
		if !strings.HasPrefix(errs[0].Text, tt.want) && !strings.HasSuffix(errs[0].Text, tt.want) {
			t.Errorf("%q:\n got %q\nwant %q", tt.text, errs[0].Text, tt.want)
		}
		if errs[0].Line != 1 && errs[0].Line != 0 {
			t.Errorf("%q: line %d", tt.text, errs[0].Line)
		}
	}
}

func TestLineLimit(t *testing.T) {
	// A line and its newline must fit in 1023 bytes.
	value := strings.Repeat("a", 1022-len("set spool-dir = "))
	_, errs := parseString(t, "set spool-dir = "+value+"\n", Init)
	if len(errs) != 0 {
		t.Fatalf("1022-byte line: %q", errTexts(errs))
	}
	_, errs = parseString(t, "set spool-dir = "+value+"a\n", Init)
	if len(errs) != 1 || !strings.Contains(errs[0].Text, "too long") {
		t.Fatalf("1023-byte line: %q", errTexts(errs))
	}
}

// TestEveryProblemReported checks that popper, unlike qpopper, reads on
// past a bad line, applies the good ones and reports each bad one; the
// last line, without a newline, is one of the good ones.
func TestEveryProblemReported(t *testing.T) {
	text := "set statistics\nset nosuch\nset timeout = 60\nset timeout = x\n" + strings.Repeat("x", 2000) + "\nset server-mode\nset debug"
	o, errs := parseString(t, text, Init)
	var lines []int
	for _, e := range errs {
		lines = append(lines, e.Line)
	}
	if !reflect.DeepEqual(lines, []int{2, 4, 5}) {
		t.Errorf("error lines %v: %q", lines, errTexts(errs))
	}
	if !o.Statistics || o.Timeout != 60*time.Second || !o.ServerMode || !o.Debug {
		t.Errorf("good lines not applied: %+v", o)
	}
}

func TestRestrictions(t *testing.T) {
	tests := []struct {
		line string
		ctx  Context
		want string // "" = accepted
	}{
		{"set spool-dir = /x", Init, ""},
		{"set spool-dir = /x", Connected, ""},
		{"set spool-dir = /x", User, `Attempt to use restricted option "spool-dir" at line 1 of user config file test.cf`},
		{"set shy", Init, ""},
		{"set shy", Connected, `The "shy" option cannot be set after a client has connected (line 1 of config file test.cf)`},
		{"set shy", User, `The "shy" option cannot be set after a client has connected (line 1 of config file test.cf)`},
		{"set statistics", User, ""},
		{"set timeout = 30", User, ""},
		{"reset update-on-abort", User, ""},
		{"set tracefile = /etc/passwd", User, `Attempt to use restricted option "tracefile" at line 1 of user config file test.cf`},
		{"set log-login = x", User, `Attempt to use restricted option "log-login" at line 1 of user config file test.cf`},
		{"set popper-userdb = /x", Connected, `The "popper-userdb" option cannot be set after a client has connected (line 1 of config file test.cf)`},
	}
	for _, tt := range tests {
		_, errs := parseString(t, tt.line+"\n", tt.ctx)
		switch {
		case tt.want == "" && len(errs) != 0:
			t.Errorf("%s (ctx %d): %q", tt.line, tt.ctx, errTexts(errs))
		case tt.want != "" && (len(errs) != 1 || errs[0].Text != tt.want):
			t.Errorf("%s (ctx %d): got %q, want %q", tt.line, tt.ctx, errTexts(errs), tt.want)
		}
	}
	// Every option has its restriction enforced in both after-login contexts.
	for _, opt := range AllOptions() {
		line := "set " + opt.Name + " = 1\n"
		if opt.Kind == Bool {
			line = "set " + opt.Name + "\n"
		}
		for _, ctx := range []Context{Connected, User} {
			_, errs := parseString(t, line, ctx)
			refused := len(errs) > 0 && (strings.Contains(errs[0].Text, "restricted") || strings.Contains(errs[0].Text, "after a client"))
			want := opt.Restrict == ResInit || ctx == User && opt.Restrict == ResUser
			if refused != want {
				t.Errorf("%s in context %d: refused %v, want %v (%q)", opt.Name, ctx, refused, want, errTexts(errs))
			}
		}
	}
}

func TestParseUserOptions(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, ".qpopper-options")
	if err := os.WriteFile(p, []byte("set statistics\nset spool-dir = /tmp\nset config-file = /etc/x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	o := DefaultOptions()
	errs := ParseUserOptions(f, p, User, o)
	if len(errs) != 2 || !o.Statistics || o.SpoolDir != "/var/mail" {
		t.Errorf("errors %q, options %+v", errTexts(errs), o)
	}
}

func TestNesting(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	inner := write("inner.cf", "set timeout = 30\nset statistics\n")
	tomlFile := write("more.toml", "server-mode = true\nconfig-file = \""+inner+"\"\n")
	outer := write("outer.cf", "set timeout = 10\nset config-file = "+tomlFile+"\nset debug\n")
	o := DefaultOptions()
	if errs := LoadConfig(outer, osOpen, o, Init); len(errs) != 0 {
		t.Fatalf("%q", errTexts(errs))
	}
	if o.Timeout != 30*time.Second || !o.Statistics || !o.ServerMode || !o.Debug {
		t.Errorf("nested values not applied: %+v", o)
	}

	// A file including itself stops at depth 100.
	self := filepath.Join(dir, "self.cf")
	write("self.cf", "set statistics\nset config-file = "+self+"\n")
	opens := 0
	counting := func(p string) (io.ReadCloser, error) { opens++; return os.Open(p) }
	errs := LoadConfig(self, counting, DefaultOptions(), Init)
	if opens != MaxConfigNesting || len(errs) != 1 ||
		errs[0].Text != fmt.Sprintf("Config file nesting exceeds 100; line 2 of config file %s", self) {
		t.Errorf("opens %d, errors %q", opens, errTexts(errs))
	}

	// Two includes of itself per file must not multiply: one report, and
	// the opens stay bounded.
	write("twice.cf", "set config-file = "+filepath.Join(dir, "twice.cf")+"\nset config-file = "+filepath.Join(dir, "twice.cf")+"\n")
	opens = 0
	errs = LoadConfig(filepath.Join(dir, "twice.cf"), counting, DefaultOptions(), Init)
	if opens != MaxConfigNesting || len(errs) != 1 {
		t.Errorf("twice: opens %d, errors %q", opens, errTexts(errs))
	}

	// A missing file reports C's strerror text and errno.
	missing := filepath.Join(dir, "missing.cf")
	errs = LoadConfig(missing, osOpen, DefaultOptions(), Init)
	want := fmt.Sprintf("Unable to open configuration file %s: No such file or directory (2)", missing)
	if len(errs) != 1 || errs[0].Text != want {
		t.Errorf("got %q, want %q", errTexts(errs), want)
	}
	var pe *fs.PathError
	_, err := osOpen(missing)
	if !errors.As(err, &pe) {
		t.Fatalf("open error %T", err)
	}
}

func TestTOML(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "popper.toml")
	text := `# popper
spool-dir = "/srv/mail"
server-mode = true
timeout = 600
log-facility = "local2"
UW-kludge = true
statistics = "yes"
nosuch = 1
hash-spool = 7
tls-support = "bogus"
[table]
x = 1
`
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	o := DefaultOptions()
	errs := LoadConfig(p, osOpen, o, Init)
	want := []string{
		`Boolean value expected for the statistics option; found "yes" at line 7 of config file ` + p,
		`Unrecognized option; scanning "nosuch" at line 8 of config file ` + p,
		`Bad value for the hash-spool option; found "7" at line 9 of config file ` + p,
		`Unrecognized "tls-support" mnemonic; scanning "bogus" at line 10 of config file ` + p,
		`Unrecognized option; scanning "table" at line 11 of config file ` + p,
	}
	got := errTexts(errs)
	if len(got) != len(want) {
		t.Fatalf("errors %q", got)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("error %d:\n got %q\nwant %q", i, got[i], want[i])
		}
	}
	if o.SpoolDir != "/srv/mail" || !o.ServerMode || o.Timeout != 600*time.Second || o.LogFacility != "local2" || !o.UWKluge {
		t.Errorf("values not applied: %+v", o)
	}

	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("a = 1\nb = = 2\n"), 0o600)
	errs = LoadConfig(bad, osOpen, DefaultOptions(), Init)
	if len(errs) != 1 || errs[0].Line != 2 {
		t.Errorf("syntax error: %q (line %d)", errTexts(errs), errs[0].Line)
	}
}

// TestPrintRoundTrip prints non-default options in both syntaxes and reads
// them back into defaults.
func TestPrintRoundTrip(t *testing.T) {
	o := DefaultOptions()
	o.SpoolDir = `/var/spool/"mail"`
	o.TempDir = "/var/tmp/it's"
	o.HomeDirMail = "Mail box"
	o.LogLogin = `(v%0) user "%1" at '%2' %3`
	o.Timeout = 600 * time.Second
	o.ServerMode = true
	o.UpdateOnAbort = false
	o.AnnounceExpire = -1
	o.LogFacility = "local5"
	o.ClearTextPassword = "TLS"
	o.TLSOptions = 12
	o.HashSpool = 2
	o.TraceFile = "/tmp/trace"
	o.Debug = true
	o.SpoolLocks = "dotlock,fcntl"
	o.UserDB = "/etc/popper/users"
	for _, format := range []string{"qpopper", "toml"} {
		var b strings.Builder
		if err := o.Print(&b, format); err != nil {
			t.Fatal(err)
		}
		name := "printed.cf"
		if format == "toml" {
			name = "printed.toml"
		}
		p := filepath.Join(t.TempDir(), name)
		os.WriteFile(p, []byte(b.String()), 0o600)
		back := DefaultOptions()
		if errs := LoadConfig(p, osOpen, back, Init); len(errs) != 0 {
			t.Fatalf("%s: %q\n%s", format, errTexts(errs), b.String())
		}
		back.notes = nil // reading an unsupported option notes it; o was set directly
		back.set = nil   // and where each was set
		if !reflect.DeepEqual(back, o) {
			t.Errorf("%s round trip:\n got %+v\nwant %+v\n%s", format, back, o, b.String())
		}
	}
	// A value qpopper syntax cannot hold becomes a comment, not a bad line.
	o = DefaultOptions()
	o.SpoolDir = "a\"b'c`d"
	var b strings.Builder
	o.Print(&b, "qpopper")
	if !strings.Contains(b.String(), "# spool-dir: the value cannot be written") {
		t.Errorf("unwritable value: %s", b.String())
	}
}

func TestStrtol(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		rest string
		ok   bool
	}{
		{"10", 10, "", true}, {"0x1F", 31, "", true}, {"0X1f", 31, "", true}, {"017", 15, "", true},
		{"0", 0, "", true}, {"-12", -12, "", true}, {"+7", 7, "", true}, {"08", 0, "8", true},
		{"0x", 0, "x", true}, {"12ab", 12, "ab", true}, {"abc", 0, "abc", false}, {"", 0, "", false},
		{"2147483647", 2147483647, "", true}, {"-2147483648", -2147483648, "", true},
	}
	for _, tt := range tests {
		n, rest, ok := strtol(tt.in)
		if n != tt.n || rest != tt.rest || ok != tt.ok {
			t.Errorf("strtol(%q) = %d, %q, %v", tt.in, n, rest, ok)
		}
	}
	if _, _, ok := strtol("2147483648"); ok {
		t.Error("overflow accepted")
	}
}

func FuzzConfig(f *testing.F) {
	seed, _ := os.ReadFile("testdata/qpopper.config")
	f.Add(string(seed))
	f.Add("set spool-dir = \"a\\\"b\"\nreset debug\nset timeout = 0x10 # x\n")
	f.Add("set config-file = x\n")
	f.Fuzz(func(t *testing.T, text string) {
		o := DefaultOptions()
		open := func(string) (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(text)), nil }
		for _, e := range ParseConfig(strings.NewReader(text), "fuzz", open, o, Init) {
			if e.Text == "" {
				t.Fatal("empty error text")
			}
		}
		var b strings.Builder
		o.Print(&b, "qpopper")
		back := DefaultOptions()
		ParseConfig(strings.NewReader(b.String()), "printed", nil, back, Init)
	})
}

func TestSetAndValue(t *testing.T) {
	o := DefaultOptions()
	if err := o.Set("timeout", "0x3c"); err != nil || o.Timeout != time.Minute {
		t.Errorf("Set timeout: %v, %v", err, o.Timeout)
	}
	if v, ok := o.Value("timeout"); !ok || v != "60" {
		t.Errorf("Value(timeout) = %q, %v", v, ok)
	}
	for _, bad := range [][2]string{{"nosuch", "1"}, {"hash-spool", "5"}, {"statistics", "maybe"}, {"log-facility", "kern"}, {"config-file", "x"}} {
		if err := o.Set(bad[0], bad[1]); err == nil {
			t.Errorf("Set(%q, %q) accepted", bad[0], bad[1])
		}
	}
}

func TestPerOSDefaults(t *testing.T) {
	o := DefaultOptions()
	wantFacility, wantCL := "local0", false
	switch runtime.GOOS {
	case "linux":
		wantFacility = "mail"
	case "solaris", "illumos":
		wantCL = true
	}
	if o.LogFacility != wantFacility || o.ContentLength != wantCL {
		t.Errorf("%s: log-facility %q content-length %v", runtime.GOOS, o.LogFacility, o.ContentLength)
	}
}

func TestTOMLTypesAndRestrictions(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "user.toml")
	text := "timeout = \"600\"\nspool-dir = 5\ndebug = 1\nshy = true\nstatistics = true\nlog-facility = 3\ntimeout = 1.5\n"
	os.WriteFile(p, []byte(text), 0o600)
	o := DefaultOptions()
	errs := LoadConfig(p, osOpen, o, Connected)
	if len(errs) != 1 || !strings.Contains(errs[0].Text, "toml") && !strings.Contains(errs[0].Text, "TOML") {
		// duplicate key: the whole file is a TOML syntax error
		t.Fatalf("duplicate key: %q", errTexts(errs))
	}
	text = "timeout = \"600\"\nspool-dir = 5\ndebug = 1\nshy = true\nstatistics = true\nlog-facility = 3\nbulldir = 1.5\n"
	os.WriteFile(p, []byte(text), 0o600)
	o = DefaultOptions()
	errs = LoadConfig(p, osOpen, o, Connected)
	want := []string{
		`Integer value expected for the timeout option; found "600" at line 1 of config file ` + p,
		`String value expected for the spool-dir option; found "5" at line 2 of config file ` + p,
		`Boolean value expected for the debug option; found "1" at line 3 of config file ` + p,
		`The "shy" option cannot be set after a client has connected (line 4 of config file ` + p + `)`,
		`String value expected for the log-facility option; found "3" at line 6 of config file ` + p,
		`String value expected for the bulldir option; found the float 1.5 at line 7 of config file ` + p,
	}
	if got := errTexts(errs); !reflect.DeepEqual(got, want) {
		t.Errorf("\n got %q\nwant %q", got, want)
	}
	if !o.Statistics || o.Shy {
		t.Errorf("options %+v", o)
	}
}
