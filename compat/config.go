package compat

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// MaxConfigNesting is how deep config-file may include files.
const MaxConfigNesting = 100

// maxConfigFiles bounds the files one load may open, so files that
// include each other more than once cannot multiply without end.
const maxConfigFiles = 1000

// maxConfigLine is qpopper's fgets buffer: a line and its newline must fit
// in 1023 bytes.
const maxConfigLine = 1023

// ConfigError is one problem in a configuration file. Its text is
// qpopper's log text for the same problem.
type ConfigError struct {
	File string // "" for problems not in a file (e.g. option combinations)
	Line int    // 0 when not about a line
	Text string
}

func (e *ConfigError) Error() string { return e.Text }

// OpenFunc opens a configuration file. The caller chooses whose
// privileges it uses.
type OpenFunc func(path string) (io.ReadCloser, error)

// configReader reads one file and everything it includes.
type configReader struct {
	open OpenFunc
	opts *Options
	ctx  Context
	errs []*ConfigError

	opened  int  // files opened so far
	tooDeep bool // nesting overflowed once: skip further includes
}

func (c *configReader) errorf(file string, line int, format string, args ...any) {
	c.errs = append(c.errs, &ConfigError{File: file, Line: line, Text: fmt.Sprintf(format, args...)})
}

// ParseConfig reads qpopper configuration text from r (named name in
// messages) into opts. Unlike qpopper, which stopped at the first bad line,
// it applies every good line and returns every problem: a caller should
// refuse service when there is any. Included files (config-file) are
// opened with open; a nil open refuses includes.
func ParseConfig(r io.Reader, name string, open OpenFunc, opts *Options, ctx Context) []*ConfigError {
	c := &configReader{open: open, opts: opts, ctx: ctx}
	c.parse(r, name, 1)
	return c.errs
}

// ParseUserOptions reads a per-user option file: ~/.qpopper-options with
// ctx User, or <spool-dir>/.<user>.qpopper-options with ctx Connected.
// The caller opens r with the user's privileges (CVE-2005-1151); includes
// are refused, since the file is opened before this is called and the
// caller's open function is not at hand.
func ParseUserOptions(r io.Reader, name string, ctx Context, opts *Options) []*ConfigError {
	return ParseConfig(r, name, nil, opts, ctx)
}

// LoadConfig opens and reads a configuration file: TOML when its name ends
// in ".toml", qpopper syntax otherwise.
func LoadConfig(name string, open OpenFunc, opts *Options, ctx Context) []*ConfigError {
	c := &configReader{open: open, opts: opts, ctx: ctx}
	c.include(name, "", 0, 1)
	return c.errs
}

// include opens and reads a file at nesting level depth (1 = top), for a
// reference at line of file from ("" at the top).
func (c *configReader) include(name, from string, line, depth int) {
	if c.tooDeep {
		return // reported once; a loop would report it at every level
	}
	if depth > MaxConfigNesting || c.opened >= maxConfigFiles {
		c.tooDeep = true
		c.errorf(from, line, "Config file nesting exceeds %d; line %d of config file %s", MaxConfigNesting, line, from)
		return
	}
	if c.open == nil {
		c.errorf(from, line, "Unable to open configuration file %s: %s (%d)", name, "including files is not allowed here", 0)
		return
	}
	c.opened++
	f, err := c.open(name)
	if err != nil {
		text, errno := Strerror(err)
		c.errorf(name, 0, "Unable to open configuration file %s: %s (%d)", name, text, errno)
		return
	}
	defer f.Close()
	if strings.HasSuffix(name, ".toml") {
		c.parseTOML(f, name, depth)
		return
	}
	c.parse(f, name, depth)
}

// parse reads qpopper syntax.
func (c *configReader) parse(r io.Reader, name string, depth int) {
	br := bufio.NewReader(r)
	for lineNo := 1; ; lineNo++ {
		line, err := readConfigLine(br)
		if err == io.EOF {
			return
		}
		if err != nil && err != errLineTooLong {
			c.errorf(name, lineNo, "Unable to read configuration file %s: %v", name, err)
			return
		}
		if err == errLineTooLong {
			c.errorf(name, lineNo, "Config file %s line %d too long", name, lineNo)
			continue
		}
		c.parseLine(line, name, lineNo, depth)
	}
}

var errLineTooLong = errors.New("line too long")

// readConfigLine returns the next line without its newline, like fgets
// into qpopper's 1024-byte buffer: a line whose newline is not within
// 1023 bytes is too long (the rest of it is skipped). A last line
// without a newline is a line: qpopper called it too long, and so
// refused a file whose editor had not ended it.
func readConfigLine(br *bufio.Reader) (string, error) {
	var b []byte
	for {
		c, err := br.ReadByte()
		if err == io.EOF {
			if len(b) == 0 {
				return "", io.EOF
			}
			return string(b), nil
		}
		if err != nil {
			return "", err
		}
		if c == '\n' {
			if len(b)+1 > maxConfigLine {
				return "", errLineTooLong
			}
			return string(b), nil
		}
		if len(b) < maxConfigLine {
			b = append(b, c)
		} else if len(b) == maxConfigLine {
			// Already too long: skip to the newline, then report.
			for {
				c, err := br.ReadByte()
				if err != nil || c == '\n' {
					return "", errLineTooLong
				}
			}
		}
	}
}

// isBlank is qpopper's separator; a carriage return counts too, so files
// edited on Windows read the same (qpopper would report "Expected comment
// or end of line").
func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\r' }

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-'
}

// lineScanner walks one line in qpopper's tokens: a run of alphanumerics
// and '-' is one token, any other byte is a token of its own.
type lineScanner struct {
	s string
	i int
}

func (l *lineScanner) skipBlanks() {
	for l.i < len(l.s) && isBlank(l.s[l.i]) {
		l.i++
	}
}

// atEnd reports whether only blanks or a comment are left.
func (l *lineScanner) atEnd() bool {
	l.skipBlanks()
	return l.i >= len(l.s) || l.s[l.i] == '#'
}

func (l *lineScanner) token() string {
	l.skipBlanks()
	if l.i >= len(l.s) {
		return ""
	}
	start := l.i
	if !isWordByte(l.s[l.i]) {
		l.i++
		return l.s[start:l.i]
	}
	for l.i < len(l.s) && isWordByte(l.s[l.i]) {
		l.i++
	}
	return l.s[start:l.i]
}

// rest is what is left of the line, for messages.
func (l *lineScanner) rest() string { return strings.TrimRight(l.s[l.i:], " \t\r") }

func (c *configReader) parseLine(line, name string, n, depth int) {
	l := &lineScanner{s: line}
	if l.atEnd() {
		return
	}
	verb := l.token()
	reset := false
	switch strings.ToLower(verb) {
	case "set":
	case "reset":
		reset = true
	default:
		c.errorf(name, n, "Expected \"set\" or \"reset\", found \"%s\" at line %d of config file %s", verb, n, name)
		return
	}
	optName := l.token()
	opt, ok := Lookup(optName)
	if !ok {
		c.errorf(name, n, "Unrecognized option; scanning \"%s\" at line %d of config file %s; valid options are: %s",
			optName, n, name, optionNames())
		return
	}
	if !c.allowed(opt, name, n) {
		return
	}
	if reset {
		if opt.Kind != Bool {
			c.errorf(name, n, "%s is not a boolean option; line %d of config file %s", opt.Name, n, name)
			return
		}
		if !l.atEnd() {
			c.errorf(name, n, "Expected comment or end of line; found \"%s\" at line %d of config file %s", l.rest(), n, name)
			return
		}
		opt.apply(c.opts, false, where(name, n))
		return
	}
	if l.atEnd() {
		if opt.Kind != Bool {
			c.errorf(name, n, "\"=\" expected; found end of line at line %d of config file %s", n, name)
			return
		}
		opt.apply(c.opts, true, where(name, n))
		return
	}
	if eq := l.token(); eq != "=" {
		c.errorf(name, n, "\"=\" expected; found \"%s\" at line %d of config file %s", eq, n, name)
		return
	}
	v, ok := c.value(l, opt, name, n)
	if !ok {
		return
	}
	if !l.atEnd() {
		c.errorf(name, n, "Expected comment or end of line; found \"%s\" at line %d of config file %s", l.rest(), n, name)
		return
	}
	if !opt.valid(v) {
		c.errorf(name, n, "Bad value for the %s option; found \"%v\" at line %d of config file %s", opt.Name, v, n, name)
		return
	}
	if opt.ref == nil { // config-file
		c.include(v.(string), name, n, depth+1)
		return
	}
	opt.apply(c.opts, v, where(name, n))
}

// where names a line of a configuration file, for warnings.
func where(file string, line int) string {
	return fmt.Sprintf("line %d of config file %s", line, file)
}

// allowed enforces the option's restriction in the reader's context.
func (c *configReader) allowed(opt *Option, name string, n int) bool {
	if c.ctx == User && opt.Restrict == ResUser {
		c.errorf(name, n, "Attempt to use restricted option \"%s\" at line %d of user config file %s", opt.Name, n, name)
		return false
	}
	if c.ctx != Init && opt.Restrict == ResInit {
		c.errorf(name, n, "The \"%s\" option cannot be set after a client has connected (line %d of config file %s)", opt.Name, n, name)
		return false
	}
	return true
}

// value reads the value after "=" according to the option's kind.
func (c *configReader) value(l *lineScanner, opt *Option, name string, n int) (any, bool) {
	l.skipBlanks()
	switch opt.Kind {
	case Bool:
		tok := l.token()
		switch strings.ToLower(tok) {
		case "true":
			return true, true
		case "false":
			return false, true
		}
		l.i -= len(tok)
		v, rest, ok := strtol(l.s[l.i:])
		if ok && (v == 0 || v == 1) {
			l.i = len(l.s) - len(rest)
			return v == 1, true
		}
		c.errorf(name, n, "Boolean value expected for the %s option; found \"%s\" at line %d of config file %s", opt.Name, tok, n, name)
		return nil, false
	case Int:
		v, rest, ok := strtol(l.s[l.i:])
		if !ok {
			if rest != l.s[l.i:] { // digits, but too many for an int
				c.errorf(name, n, "Bad value for the %s option; found \"%s\" at line %d of config file %s", opt.Name, l.rest(), n, name)
			} else {
				c.errorf(name, n, "Integer value expected for the %s option; found \"%s\" at line %d of config file %s", opt.Name, l.rest(), n, name)
			}
			return nil, false
		}
		l.i = len(l.s) - len(rest)
		return v, true
	case Mnemonic:
		tok := l.token()
		m, ok := opt.mnemonic(tok)
		if !ok {
			c.badMnemonic(opt, tok, name, n)
			return nil, false
		}
		return m, true
	}
	// String.
	if l.i >= len(l.s) || l.s[l.i] < 0x20 || l.s[l.i] == 0x7f {
		c.errorf(name, n, "String value expected for the %s option; found \"%s\" at line %d of config file %s", opt.Name, l.rest(), n, name)
		return nil, false
	}
	switch q := l.s[l.i]; q {
	case '"', '\'', '`':
		// A quote preceded by a backslash does not end the string; the
		// backslash stays in the value.
		for j := l.i + 1; j < len(l.s); j++ {
			if l.s[j] == q && l.s[j-1] != '\\' {
				v := l.s[l.i+1 : j]
				l.i = j + 1
				return v, true
			}
		}
		c.errorf(name, n, "String value expected for the %s option; found unterminated %s at line %d of config file %s", opt.Name, l.rest(), n, name)
		return nil, false
	}
	start := l.i
	for l.i < len(l.s) && !isBlank(l.s[l.i]) {
		l.i++
	}
	return l.s[start:l.i], true
}

// badMnemonic reports a word that is none of the option's mnemonics, as
// pop_config.c's tilt(kER_UNKN_MNEM) does.
func (c *configReader) badMnemonic(opt *Option, word, name string, n int) {
	c.errorf(name, n, "Unrecognized \"%s\" mnemonic; scanning \"%s\" at line %d of config file %s; valid mnemonics are: %s",
		opt.Name, word, n, name, quotedList(opt.MnemonicWords()))
}

// optionNames is the "valid options are" list: every name, aliases
// after the name they stand for, as qpopper lists UW-kludge.
func optionNames() string {
	var names []string
	for _, o := range options {
		names = append(names, o.Name)
		for alias, name := range aliases {
			if name == o.Name {
				names = append(names, alias)
			}
		}
	}
	return quotedList(names)
}

// quotedList is qpopper's form of a list in a message:
// "\"a\", \"b\", \"c\"" (pop_config.c's tilt).
func quotedList(words []string) string {
	return `"` + strings.Join(words, `", "`) + `"`
}
