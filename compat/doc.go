package compat

import (
	"fmt"
	"io"
	"strings"
)

// WriteManOptions writes the option table as troff for the man page's
// configuration section: one .TP entry per option with its syntax, kind,
// restriction, command-line flag, default and meaning.
func WriteManOptions(w io.Writer) error {
	var b strings.Builder
	for _, opt := range options {
		b.WriteString(".TP\n")
		switch opt.Kind {
		case Bool:
			fmt.Fprintf(&b, ".B set %s\\fR | \\fBreset %s\n", troff(opt.Name), troff(opt.Name))
		case Mnemonic:
			fmt.Fprintf(&b, ".BI \"set %s = \" %s\n", troff(opt.Name), troff(strings.Join(opt.MnemonicWords(), "|")))
		default:
			fmt.Fprintf(&b, ".BI \"set %s = \" %s\n", troff(opt.Name), opt.Kind)
		}
		b.WriteString(troff(opt.Doc) + ".\n")
		var facts []string
		if opt.Default != "" {
			facts = append(facts, "Default: "+troff(opt.Default)+".")
		}
		if opt.Flag != "" {
			facts = append(facts, "Flag: "+troff(opt.Flag)+".")
		}
		switch opt.Restrict {
		case ResUser:
			facts = append(facts, "Not allowed in ~/.qpopper-options.")
		case ResInit:
			facts = append(facts, "Not allowed in files read after login.")
		}
		if opt.Unsupported != "" {
			facts = append(facts, "Accepted and ignored: "+troff(opt.Unsupported)+".")
		}
		if len(facts) > 0 {
			b.WriteString(strings.Join(facts, " ") + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// troff escapes backslashes and hyphens, and a leading dot or quote.
func troff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}
