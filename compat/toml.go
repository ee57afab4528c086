package compat

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
)

// parseTOML reads the option table from TOML: top-level keys named as
// the options, e.g. `spool-dir = "/var/mail"`, `server-mode = true`,
// `timeout = 600`, `log-facility = "mail"`. config-file includes another
// file (TOML or qpopper syntax by its name).
func (c *configReader) parseTOML(r io.Reader, name string, depth int) {
	data, err := io.ReadAll(r)
	if err != nil {
		c.errorf(name, 0, "Unable to read configuration file %s: %v", name, err)
		return
	}
	var m map[string]any
	md, err := toml.Decode(string(data), &m)
	if err != nil {
		var perr toml.ParseError
		line := 0
		if errors.As(err, &perr) {
			line = perr.Position.Line
		}
		c.errorf(name, line, "TOML syntax error at line %d of config file %s: %v", line, name, err)
		return
	}
	lines := tomlKeyLines(string(data))
	for _, key := range md.Keys() {
		if len(key) != 1 {
			continue // inside a table: reported with the table
		}
		k := key[0]
		n := lines[k]
		opt, ok := Lookup(k)
		if !ok {
			c.errorf(name, n, "Unrecognized option; scanning \"%s\" at line %d of config file %s; valid options are: %s",
				k, n, name, optionNames())
			continue
		}
		if !c.allowed(opt, name, n) {
			continue
		}
		v, ok := c.tomlValue(opt, m[k], name, n)
		if !ok {
			continue
		}
		if !opt.valid(v) {
			c.errorf(name, n, "Bad value for the %s option; found \"%v\" at line %d of config file %s", opt.Name, v, n, name)
			continue
		}
		if opt.ref == nil {
			c.include(v.(string), name, n, depth+1)
			continue
		}
		opt.apply(c.opts, v, where(name, n))
	}
}

// tomlValue converts a decoded TOML value to the option's kind.
func (c *configReader) tomlValue(opt *Option, raw any, name string, n int) (any, bool) {
	switch opt.Kind {
	case Bool:
		if b, ok := raw.(bool); ok {
			return b, true
		}
		c.errorf(name, n, "Boolean value expected for the %s option; found %s at line %d of config file %s", opt.Name, tomlShow(raw), n, name)
	case Int:
		if i, ok := raw.(int64); ok {
			if i < math.MinInt32 || i > math.MaxInt32 {
				c.errorf(name, n, "Bad value for the %s option; found \"%d\" at line %d of config file %s", opt.Name, i, n, name)
				return nil, false
			}
			return int(i), true
		}
		c.errorf(name, n, "Integer value expected for the %s option; found %s at line %d of config file %s", opt.Name, tomlShow(raw), n, name)
	case Mnemonic:
		s, ok := raw.(string)
		if !ok {
			c.errorf(name, n, "String value expected for the %s option; found %s at line %d of config file %s", opt.Name, tomlShow(raw), n, name)
			return nil, false
		}
		m, ok := opt.mnemonic(s)
		if !ok {
			c.badMnemonic(opt, s, name, n)
			return nil, false
		}
		return m, true
	case String:
		if s, ok := raw.(string); ok {
			return s, true
		}
		c.errorf(name, n, "String value expected for the %s option; found %s at line %d of config file %s", opt.Name, tomlShow(raw), n, name)
	}
	return nil, false
}

func tomlShow(v any) string {
	switch v.(type) {
	case map[string]any:
		return "a table"
	case []any, []map[string]any:
		return "an array"
	case float64:
		return fmt.Sprintf("the float %v", v)
	case time.Time:
		return "a date"
	}
	return fmt.Sprintf("%q", fmt.Sprint(v))
}

// tomlKeyLines finds the line of each top-level key, as the toml package
// does not export key positions.
func tomlKeyLines(data string) map[string]int {
	lines := make(map[string]int)
	inTable := false
	for i, line := range strings.Split(data, "\n") {
		t := strings.TrimLeft(line, " \t")
		if strings.HasPrefix(t, "[") {
			inTable = true
			key := strings.Trim(strings.TrimSpace(strings.SplitN(t, "]", 2)[0]), "[ \t\"'")
			if _, seen := lines[key]; !seen && !strings.Contains(key, ".") {
				lines[key] = i + 1
			}
		}
		if inTable {
			continue
		}
		end := strings.IndexAny(t, " \t=")
		if end <= 0 {
			continue
		}
		key := strings.Trim(t[:end], `"'`)
		if _, seen := lines[key]; !seen {
			lines[key] = i + 1
		}
	}
	return lines
}

// Print writes the effective options for --print-config, in "qpopper"
// (the default) or "toml" syntax; the output reads back to the same
// Options. A string that one syntax cannot write is given as a comment.
func (o *Options) Print(w io.Writer, format string) error {
	var b strings.Builder
	toTOML := format == "toml"
	if toTOML {
		b.WriteString("# popper configuration (TOML)\n")
	} else {
		b.WriteString("# popper configuration (qpopper syntax)\n")
	}
	for i := range options {
		opt := &options[i]
		if opt.ref == nil {
			continue
		}
		v := opt.value(o)
		fmt.Fprintf(&b, "\n# %s\n", opt.Doc)
		if toTOML {
			b.WriteString(tomlLine(opt, v))
		} else {
			b.WriteString(qpopperLine(opt, v))
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func qpopperLine(opt *Option, v string) string {
	switch opt.Kind {
	case Bool:
		if v == "true" {
			return "set " + opt.Name
		}
		return "reset " + opt.Name
	case Int, Mnemonic:
		return "set " + opt.Name + " = " + v
	}
	line := ""
	if q, ok := quoteQpopper(v); ok {
		line = "set " + opt.Name + " = " + q
	}
	if line == "" || len(line)+1 > maxConfigLine {
		return "# " + opt.Name + ": the value cannot be written in qpopper syntax: " + strconv.Quote(v)
	}
	return line
}

// quoteQpopper quotes s with a quote character it can be read back with:
// none of that character in s, no control characters, and no trailing
// backslash (which would hide the closing quote).
func quoteQpopper(s string) (string, bool) {
	if strings.HasSuffix(s, `\`) {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 && s[i] != '\t' || s[i] == 0x7f {
			return "", false
		}
	}
	for _, q := range []string{`"`, `'`, "`"} {
		if !strings.Contains(s, q) {
			return q + s + q, true
		}
	}
	return "", false
}

func tomlLine(opt *Option, v string) string {
	switch opt.Kind {
	case Bool, Int:
		return opt.Name + " = " + v
	}
	if !utf8.ValidString(v) {
		return "# " + opt.Name + ": the value is not UTF-8 and cannot be written in TOML: " + strconv.Quote(v)
	}
	return opt.Name + " = " + tomlQuote(v)
}

// tomlQuote writes a TOML basic string.
func tomlQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
