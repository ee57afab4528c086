package spool

// validFromLine reports whether line (without its line ending) is an mbox
// "From " envelope by c-client's VALID test, as qpopper's isfromline uses
// it. The test looks only at the shape of the date at the end of the line:
//
//	From user Wed Dec  2 05:53 1992
//	From user Wed Dec  2 05:53:22 1992            (BSD)
//	From user Wed Dec  2 05:53 PST 1992           (SysV)
//	From user Wed Dec  2 05:53:22 PST 1992        (rn)
//	From user Wed Dec  2 05:53 -0700 1992
//	From user Wed Dec  2 05:53:22 -0700 1992
//	From user Wed Dec  2 05:53 1992 PST
//	From user Wed Dec  2 05:53:22 1992 PST
//	From user Wed Dec  2 05:53 1992 -0700
//	From user Wed Dec  2 05:53:22 1992 -0700      (Solaris)
//
// each optionally followed by " remote from xxx". Only the positions of
// spaces, colons and the zone sign are checked, never the letters or
// digits, exactly as c-client does. Where the C macro would read before
// the start of the line (short lines with odd spacing), the line is
// rejected.
func validFromLine(line []byte) bool {
	if len(line) < 5 || string(line[:5]) != "From " {
		return false
	}
	// c-client stops at a NUL; qpopper turned NULs into spaces before,
	// so the callers pass lines without NULs.
	s := line
	// at(i) is x[i] for the C pointer x at the end of s (i < 0).
	at := func(i int) int {
		if len(s)+i < 0 {
			return -1
		}
		return int(s[len(s)+i])
	}
	if len(s) >= 41 {
		// Strip " remote from xxx": the 12 bytes before the last space.
		zn := -1 // "From " guarantees a space
		for at(zn) != ' ' {
			zn--
		}
		if len(s)+zn-12 >= 0 && string(s[len(s)+zn-12:len(s)+zn]) == " remote from" {
			s = s[:len(s)+zn-12]
		}
	}
	if len(s) < 27 {
		return false
	}
	ti := 0
	switch {
	case at(-5) == ' ': // ends with " yyyy"
		switch {
		case at(-8) == ':':
			ti = -5
		case at(-9) == ' ': // " zzz yyyy"
			ti = -9
		case at(-11) == ' ' && (at(-10) == '+' || at(-10) == '-'): // " +hhmm yyyy"
			ti = -11
		}
	case at(-4) == ' ': // " yyyy zzz"
		if at(-9) == ' ' {
			ti = -9
		}
	case at(-6) == ' ': // " yyyy +hhmm"
		if at(-11) == ' ' && (at(-5) == '+' || at(-5) == '-') {
			ti = -11
		}
	}
	if ti == 0 {
		return false
	}
	// ti is the space after the time: "hh:mm" or "hh:mm:ss", then
	// " dd", " mmm", " www" before it.
	if at(ti-3) != ':' {
		return false
	}
	if at(ti-6) == ':' {
		ti -= 9
	} else {
		ti -= 6
	}
	return at(ti) == ' ' && at(ti-3) == ' ' && at(ti-7) == ' ' && at(ti-11) == ' '
}
