// Package man holds popper's manual pages. Its tests keep the pages honest
// against the code: every option of compat's table has an entry in
// popper.conf(5) that states its type, default, flag and restriction as
// the table does; every qpopper flag and every long option is documented
// in popper(8) and accepted by compat.ParseArgs; the examples in the pages
// parse; and mandoc finds nothing to warn about.
package man

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/popperd/popper/compat"
	"github.com/popperd/popper/platform"
)

// qpopperFlags is qpopper 4.0.5's getopt string plus 4.1's -V: the
// command-line interface popper promises to keep.
const qpopperFlags = "b:BcCdD:e:f:FkK:l:L:p:RsSt:T:uUvy:" + "V"

// readPage returns the lines of a page in this directory.
func readPage(t *testing.T, name string) []string {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(string(data), "\n")
}

// section returns the source lines of the .SH section with the given
// title, without the .SH line; it fails the test when there is none.
func section(t *testing.T, lines []string, title string) []string {
	t.Helper()
	start := -1
	for i, l := range lines {
		if !strings.HasPrefix(l, ".SH ") {
			continue
		}
		if start >= 0 {
			return lines[start:i]
		}
		if plain(l) == title {
			start = i + 1
		}
	}
	if start < 0 {
		t.Fatalf("no section %q", title)
	}
	return lines[start:]
}

// entry is one .TP item: its tag and its body, both as plain text.
type entry struct {
	tag, body string
}

// entries returns the .TP items of a section in order. An item's body
// runs to the next .TP, .SS, .SH or paragraph macro.
func entries(lines []string) []entry {
	var out []entry
	for i := 0; i < len(lines); i++ {
		if macroName(lines[i]) != "TP" || i+1 >= len(lines) {
			continue
		}
		e := entry{tag: plain(lines[i+1])}
		var body []string
		j := i + 2
		for ; j < len(lines); j++ {
			switch macroName(lines[j]) {
			case "TP", "SS", "SH", "PP", "LP", "P":
			default:
				if s := plain(lines[j]); s != "" {
					body = append(body, s)
				}
				continue
			}
			break
		}
		e.body = joinText(body)
		out = append(out, e)
		i = j - 1
	}
	return out
}

// joinText joins plain lines with blanks, except after a line that ended
// in \c (marked by plain with a trailing NUL).
func joinText(parts []string) string {
	var b strings.Builder
	for i, p := range parts {
		if i > 0 && !strings.HasSuffix(parts[i-1], "\x00") {
			b.WriteByte(' ')
		}
		b.WriteString(strings.TrimSuffix(p, "\x00"))
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// macroName returns the name of the macro a line calls, or "" for a text
// line or a comment.
func macroName(line string) string {
	if !strings.HasPrefix(line, ".") || strings.HasPrefix(line, `.\"`) {
		return ""
	}
	name, _, _ := strings.Cut(line[1:], " ")
	return name
}

// plain renders one roff source line as text: font macros give their
// arguments (alternating ones joined without blanks), other macros and
// comments give "", escapes are resolved. A line ending in \c gets a
// trailing NUL so joinText can glue it to the next one.
func plain(line string) string {
	if strings.HasPrefix(line, `.\"`) || strings.HasPrefix(line, `'\"`) {
		return ""
	}
	text := line
	if strings.HasPrefix(line, ".") {
		name, rest, _ := strings.Cut(line[1:], " ")
		args := macroArgs(rest)
		switch name {
		case "B", "I", "SM", "SB", "SH", "SS":
			text = strings.Join(args, " ")
		case "BR", "RB", "IR", "RI", "BI", "IB":
			text = strings.Join(args, "")
		default:
			return ""
		}
	}
	glue := strings.HasSuffix(text, `\c`)
	text = unescape(strings.TrimSuffix(text, `\c`))
	if glue {
		text += "\x00"
	}
	return text
}

// macroArgs splits macro arguments: blank-separated, with "double
// quotes" around arguments that hold blanks ("" is a literal quote).
func macroArgs(s string) []string {
	var args []string
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return args
		}
		if s[0] != '"' {
			end := strings.IndexAny(s, " \t")
			if end < 0 {
				end = len(s)
			}
			args = append(args, s[:end])
			s = s[end:]
			continue
		}
		var b strings.Builder
		i := 1
		for ; i < len(s); i++ {
			if s[i] == '"' {
				if i+1 < len(s) && s[i+1] == '"' {
					b.WriteByte('"')
					i++
					continue
				}
				break
			}
			b.WriteByte(s[i])
		}
		args = append(args, b.String())
		if i < len(s) {
			i++
		}
		s = s[i:]
	}
}

var specialChars = map[string]string{
	"em": "—", "en": "–", "dq": `"`, "aq": "'", "ga": "`", "ti": "~", "ha": "^", "rs": `\`, "bu": "•",
}

// unescape resolves the roff escapes the pages use.
func unescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch c := s[i]; c {
		case '-', '.', '\'':
			b.WriteByte(c)
		case 'e':
			b.WriteByte('\\')
		case '&', ':':
		case '~', ' ', '0':
			b.WriteByte(' ')
		case 'f':
			if i+1 < len(s) {
				i++ // \fB, \fI, \fR, \fP
			}
		case '(':
			if i+2 < len(s) {
				name := s[i+1 : i+3]
				if r, ok := specialChars[name]; ok {
					b.WriteString(r)
				} else {
					b.WriteString(`\(` + name)
				}
				i += 2
			}
		default:
			b.WriteByte('\\')
			b.WriteByte(c)
		}
	}
	return b.String()
}

// exBlocks returns the plain text lines of each .EX/.EE block.
func exBlocks(lines []string) [][]string {
	var blocks [][]string
	var cur []string
	in := false
	for _, l := range lines {
		switch macroName(l) {
		case "EX":
			in, cur = true, nil
			continue
		case "EE":
			if in {
				blocks = append(blocks, cur)
			}
			in = false
			continue
		}
		if in {
			cur = append(cur, plain(l))
		}
	}
	return blocks
}

// containsWord reports whether word occurs in text with no letter, digit
// or hyphen right before or after it.
func containsWord(text, word string) bool {
	return regexp.MustCompile(`(^|[^A-Za-z0-9-])` + regexp.QuoteMeta(word) + `($|[^A-Za-z0-9-])`).MatchString(text)
}

// restrictionPhrase is how popper.conf(5) states each restriction.
var restrictionPhrase = map[compat.Restriction]string{
	compat.ResNone: "allowed in every file",
	compat.ResUser: "not in ~/.qpopper-options",
	compat.ResInit: "only before login",
}

func TestConfOptionsMatchTable(t *testing.T) {
	lines := readPage(t, "popper.conf.5")
	documented := map[string]entry{}
	for _, e := range entries(section(t, lines, "OPTIONS")) {
		if _, dup := documented[e.tag]; dup {
			t.Errorf("popper.conf.5: option %q has two entries", e.tag)
		}
		documented[e.tag] = e
		if opt, ok := compat.Lookup(e.tag); !ok || opt.Name != e.tag {
			t.Errorf("popper.conf.5 documents %q, which is not an option name in compat's table", e.tag)
		}
	}
	table := compat.AllOptions()
	if len(table) == 0 {
		t.Fatal("compat.AllOptions() is empty")
	}
	for _, opt := range table {
		e, ok := documented[opt.Name]
		if !ok {
			t.Errorf("popper.conf.5 has no entry for option %s", opt.Name)
			continue
		}
		checkConfEntry(t, opt, e.body)
	}
}

// checkConfEntry checks that an entry states what the table says.
func checkConfEntry(t *testing.T, opt compat.Option, body string) {
	t.Helper()
	errorf := func(format string, args ...any) {
		t.Helper()
		t.Errorf("popper.conf.5, %s: %s\n\tentry: %s", opt.Name, fmt.Sprintf(format, args...), body)
	}
	if !containsWord(body, opt.Kind.String()) {
		errorf("type %s not stated", opt.Kind)
	}
	if opt.Default != "" {
		if !regexp.MustCompile(`default ` + regexp.QuoteMeta(opt.Default) + `($|[^A-Za-z0-9])`).MatchString(body) {
			errorf("default %q (on %s) not stated", opt.Default, runtime.GOOS)
		}
	} else if !strings.Contains(body, "default none") {
		errorf(`empty default not stated as "default none"`)
	}
	if opt.Flag != "" {
		flag := strings.Fields(opt.Flag)[0]
		if !strings.Contains(body, "flag "+flag) {
			errorf("flag %s not stated", flag)
		}
	} else if m := regexp.MustCompile(`flag -[A-Za-z]\b`).FindString(body); m != "" {
		errorf("claims %q, but the option has no flag", m)
	}
	for r, phrase := range restrictionPhrase {
		if has := strings.Contains(body, phrase); has != (r == opt.Restrict) {
			if has {
				errorf("says %q, but its restriction is %q", phrase, opt.Restrict)
			} else {
				errorf("does not say %q (restriction %q)", phrase, opt.Restrict)
			}
		}
	}
	for _, w := range opt.MnemonicWords() {
		if !containsWord(body, w) {
			errorf("mnemonic %q not listed", w)
		}
	}
	if opt.Unsupported != "" && !strings.Contains(body, "Not supported by popper") {
		errorf("not marked \"Not supported by popper\" (%s)", opt.Unsupported)
	}
}

func TestPopperFlagsDocumented(t *testing.T) {
	lines := readPage(t, "popper.8")
	letters := map[byte]entry{}
	longs := map[string]entry{}
	letterTag := regexp.MustCompile(`^-([A-Za-z])(\s|$)`)
	longTag := regexp.MustCompile(`^--([a-z][a-z-]*)`)
	for _, e := range entries(section(t, lines, "OPTIONS")) {
		if m := letterTag.FindStringSubmatch(e.tag); m != nil {
			letters[m[1][0]] = e
		} else if m := longTag.FindStringSubmatch(e.tag); m != nil {
			longs[m[1]] = e
		}
	}

	// qpopper's letters, and every flag compat's usage text offers.
	want := map[byte]bool{}
	for i := 0; i < len(qpopperFlags); i++ {
		if qpopperFlags[i] != ':' {
			want[qpopperFlags[i]] = true
		}
	}
	for _, m := range regexp.MustCompile(`\[-([A-Za-z])`).FindAllStringSubmatch(compat.Usage(), -1) {
		want[m[1][0]] = true
	}
	for c := range want {
		if _, ok := letters[c]; !ok {
			t.Errorf("popper.8 OPTIONS has no entry for -%c", c)
		}
	}
	wantLong := map[string]bool{}
	for _, m := range regexp.MustCompile(`--([a-z][a-z-]*)`).FindAllStringSubmatch(compat.Usage(), -1) {
		wantLong[m[1]] = true
	}
	if len(wantLong) == 0 {
		t.Error("compat.Usage names no long options")
	}
	for name := range wantLong {
		if _, ok := longs[name]; !ok {
			t.Errorf("popper.8 OPTIONS has no entry for --%s", name)
		}
	}

	// The synopsis shows them all too.
	var syn []string
	for _, l := range section(t, lines, "SYNOPSIS") {
		syn = append(syn, plain(l))
	}
	synopsis := joinText(syn)
	for c := range want {
		if !strings.Contains(synopsis, "[-"+string(c)) {
			t.Errorf("popper.8 SYNOPSIS does not show [-%c", c)
		}
	}
	for name := range wantLong {
		if !strings.Contains(synopsis, "--"+name) {
			t.Errorf("popper.8 SYNOPSIS does not show --%s", name)
		}
	}

	// Every documented flag exists.
	for c := range letters {
		if _, err := compat.ParseArgs([]string{"-" + string(c)}, compat.DefaultOptions(), nil); err != nil &&
			strings.Contains(err.Error(), "unknown option") {
			t.Errorf("popper.8 documents -%c, which compat.ParseArgs refuses: %v", c, err)
		}
	}
	for name := range longs {
		if _, err := compat.ParseArgs([]string{"--" + name}, compat.DefaultOptions(), nil); err != nil &&
			strings.Contains(err.Error(), "unknown option") {
			t.Errorf("popper.8 documents --%s, which compat.ParseArgs refuses: %v", name, err)
		}
	}

	// A flag's entry names its option, and says so when popper lacks the
	// feature.
	for _, opt := range compat.AllOptions() {
		if len(opt.Flag) < 2 || opt.Flag[0] != '-' || opt.Flag[1] == '-' {
			continue
		}
		e, ok := letters[opt.Flag[1]]
		if !ok {
			continue // reported above if it is a qpopper letter
		}
		if !containsWord(e.body, opt.Name) {
			t.Errorf("popper.8: the entry for %s does not name its option %s\n\tentry: %s", e.tag, opt.Name, e.body)
		}
		if opt.Unsupported != "" && !strings.Contains(e.body, "Not supported") {
			t.Errorf("popper.8: the entry for %s does not say it is not supported (%s)", e.tag, opt.Unsupported)
		}
	}
}

// TestLockingFacts checks the numbers and the lock table of popper(8)
// against the platform package, for the system the test runs on.
func TestLockingFacts(t *testing.T) {
	lines := readPage(t, "popper.8")
	locking := section(t, lines, "LOCKING")
	var plainText []string
	for _, l := range locking {
		plainText = append(plainText, plain(l))
	}
	text := joinText(plainText)
	for _, d := range []time.Duration{platform.DefaultDotLockStale, platform.DotLockRefresh} {
		if s := fmt.Sprintf("%d seconds", int(d/time.Second)); !strings.Contains(text, s) {
			t.Errorf("popper.8 LOCKING does not say %q", s)
		}
	}

	rowLabel := map[string]string{
		"linux": "Linux", "illumos": "illumos, Solaris", "solaris": "illumos, Solaris",
		"freebsd": "FreeBSD, DragonFly", "dragonfly": "FreeBSD, DragonFly",
		"openbsd": "OpenBSD, NetBSD", "netbsd": "OpenBSD, NetBSD", "darwin": "macOS",
	}
	label, ok := rowLabel[runtime.GOOS]
	if !ok {
		t.Skipf("popper.8 has no lock table row for %s", runtime.GOOS)
	}
	var row []string
	inTable := false
	for _, l := range locking {
		switch {
		case macroName(l) == "TS":
			inTable = true
		case macroName(l) == "TE":
			inTable = false
		case inTable && strings.Contains(l, "\t"):
			cells := strings.Split(l, "\t")
			if unescape(cells[0]) == label {
				row = cells
			}
		}
	}
	if len(row) != 3 {
		t.Fatalf("popper.8 LOCKING table has no three-column row %q", label)
	}
	if !strings.Contains(row[1], "dotlock") {
		t.Errorf("popper.8 lock table, %s: outer lock %q, want the dotlock", label, row[1])
	}
	for _, k := range platform.DefaultSpoolLocks() {
		if !strings.Contains(unescape(row[2]), k.String()) {
			t.Errorf("popper.8 lock table, %s: inner lock %q does not name %s, the default on %s",
				label, unescape(row[2]), k, runtime.GOOS)
		}
	}

	conf := readPage(t, "popper.conf.5")
	var confText []string
	for _, l := range section(t, conf, "SYNTAX") {
		confText = append(confText, plain(l))
	}
	if s := fmt.Sprintf("nested %d deep", compat.MaxConfigNesting); !strings.Contains(joinText(confText), s) {
		t.Errorf("popper.conf.5 SYNTAX does not say %q", s)
	}
}

// TestConfExamplesParse reads the example files of popper.conf(5) with
// compat's parsers: an example that popper would refuse is a lie.
func TestConfExamplesParse(t *testing.T) {
	blocks := exBlocks(readPage(t, "popper.conf.5"))
	seen := map[string]bool{}
	for _, b := range blocks {
		if len(b) == 0 {
			continue
		}
		text := strings.Join(b, "\n") + "\n"
		opts := compat.DefaultOptions()
		var errs []*compat.ConfigError
		switch first := b[0]; first {
		case "# /etc/qpopper.config":
			errs = compat.ParseConfig(strings.NewReader(text), "qpopper.config", nil, opts, compat.Init)
			if v, _ := opts.Value("timeout"); v != "600" {
				t.Errorf("qpopper.config example: timeout = %s, the comment says 600", v)
			}
		case "# ~/.qpopper-options":
			errs = compat.ParseUserOptions(strings.NewReader(text), ".qpopper-options", compat.User, opts)
		case "# /etc/popper.toml":
			open := func(string) (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(text)), nil }
			errs = compat.LoadConfig("popper.toml", open, opts, compat.Init)
		default:
			continue
		}
		seen[b[0]] = true
		for _, e := range errs {
			t.Errorf("popper.conf.5 example %q: %s", b[0], e.Text)
		}
	}
	for _, want := range []string{"# /etc/qpopper.config", "# ~/.qpopper-options", "# /etc/popper.toml"} {
		if !seen[want] {
			t.Errorf("popper.conf.5 has no example starting %q", want)
		}
	}
}

// TestPopperExamplesParse runs the command lines of popper(8)'s examples
// (popper, inetd.conf, xinetd and systemd lines) through compat.ParseArgs.
func TestPopperExamplesParse(t *testing.T) {
	n := 0
	for _, b := range exBlocks(readPage(t, "popper.8")) {
		for _, l := range b {
			f := strings.Fields(l)
			var args []string
			switch {
			case len(f) > 0 && f[0] == "popper":
				args = f[1:]
			case len(f) >= 7 && f[1] == "stream" && f[3] == "nowait":
				args = f[7:] // service type proto wait user path argv0 args...
			case len(f) > 0 && strings.HasPrefix(f[0], "ExecStart="):
				args = f[1:]
			case len(f) > 2 && f[0] == "server_args" && f[1] == "=":
				args = f[2:]
			default:
				continue
			}
			n++
			inv, err := compat.ParseArgs(args, compat.DefaultOptions(), nil)
			if err != nil {
				t.Errorf("popper.8 example %q: %v", l, err)
				continue
			}
			for _, e := range inv.ConfigErrors {
				t.Errorf("popper.8 example %q: %s", l, e.Text)
			}
		}
	}
	if n < 5 {
		t.Errorf("found only %d example command lines in popper.8", n)
	}
}

func TestMandocLint(t *testing.T) {
	mandoc, err := exec.LookPath("mandoc")
	if err != nil {
		t.Skip("mandoc is not installed (scripts/test installs it)")
	}
	for _, page := range []string{"popper.8", "popper.conf.5", "popauth.8"} {
		cmd := exec.Command(mandoc, "-Tlint", "-W", "warning", page)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		if err != nil || out.Len() > 0 {
			t.Errorf("mandoc -Tlint -W warning %s: %v\n%s", page, err, out.String())
		}
	}
}

// TestPlain checks the roff-to-text helper the other tests rely on.
func TestPlain(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`.B spool\-dir`, "spool-dir"},
		{`.BR \-S ,`, "-S,"},
		{`.BR "(v%0) POP login by user \(dq%1\(dq at (%2) %3" ,`, `(v%0) POP login by user "%1" at (%2) %3,`},
		{`.IR spool\-dir /. user .qpopper\-options`, "spool-dir/.user.qpopper-options"},
		{`text with \fBbold\fP and \e backslash`, `text with bold and \ backslash`},
		{`.\" a comment`, ""},
		{`.TP`, ""},
		{`.BI login_delay= nn ,expire= nn\c`, "login_delay=nn,expire=nn\x00"},
	} {
		if got := plain(c.in); got != c.want {
			t.Errorf("plain(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if got := joinText([]string{"a\x00", "b", "c"}); got != "ab c" {
		t.Errorf("joinText = %q", got)
	}
	es := entries([]string{".TP", ".B name", "body one", ".BR two ,", ".TP", "tag2", "x", ".PP", "after"})
	if len(es) != 2 || es[0].tag != "name" || es[0].body != "body one two," || es[1].tag != "tag2" || es[1].body != "x" {
		t.Errorf("entries = %+v", es)
	}
	if !containsWord("a debug b", "debug") || containsWord("debugging", "debug") {
		t.Error("containsWord")
	}
}

// TestLogFormats checks the record formats shown in popper(8) LOGGING
// against compat's formatters, with the page's placeholder words as the
// values.
func TestLogFormats(t *testing.T) {
	var shown []string
	for _, b := range exBlocks(section(t, readPage(t, "popper.8"), "LOGGING")) {
		shown = append(shown, b...)
	}
	find := func(prefix string) string {
		for _, l := range shown {
			if strings.Contains(l, prefix) {
				return l
			}
		}
		t.Errorf("popper.8 LOGGING shows no record containing %q", prefix)
		return ""
	}

	if l := find("POP login by user"); l != "" {
		m := regexp.MustCompile(`^\(v([0-9.]+)\)`).FindStringSubmatch(l)
		if m == nil {
			t.Errorf("login record %q does not start with (vVERSION)", l)
		} else if want, err := compat.LoginLine(compat.DefaultLogLogin, m[1], "user", "host", "ip"); err != nil || l != want {
			t.Errorf("popper.8 login record\n\t%q\ncompat.LoginLine gives\n\t%q (%v)", l, want, err)
		}
	}
	if l := find("Stats:"); l != "" {
		// Numbers stand for the page's words, one field each.
		want := strings.Fields(compat.StatsLine("user", 1, 2, 3, 4, "host", "ip"))
		got := strings.Fields(l)
		if len(got) != len(want) || got[0] != want[0] || got[1] != "user" ||
			got[len(got)-2] != "host" || got[len(got)-1] != "ip" {
			t.Errorf("popper.8 Stats record %q does not have the fields of %q", l, strings.Join(want, " "))
		}
	}
	if l := find("-ERR"); l != "" {
		if want := compat.ErrLine("user", "host", "ip", "text"); l != want {
			t.Errorf("popper.8 -ERR record %q, compat.ErrLine gives %q", l, want)
		}
	}
}
