package compat

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Usage is qpopper's usage text, from its man-page synopsis with every
// 4.x letter, followed by popper's own long options.
const Usage = `Usage: popper [ [address][:][port] ] [-b bulldir] [-B] [-c] [-C] [-d] [-D drac-host]
              [-e login_delay=nn,expire=nn] [-f config-file] [-F] [-k] [-K service]
              [-l0|1|2] [-L lock-check] [-p0|1|2|3|4] [-R] [-s] [-S] [-t trace-file]
              [-T timeout] [-u] [-U] [-v] [-y log-facility]
              [--detach] [--pidfile file]   (with an address: the standalone daemon)
       popper --recover | --check-config | --print-config[=toml] | --version
              | --demo [--listen addr] | --list-uids user   [--userdb file]
       popper -h | --help`

// UsageError is a command line qpopper would refuse: print it on stderr
// and exit 1.
type UsageError struct {
	Msg string // what is wrong, e.g. `unknown option -- "Z"`
}

func (e *UsageError) Error() string { return "popper: " + e.Msg + "\n" + Usage }

// Invocation is what the command line asks for besides options.
type Invocation struct {
	// Address is the standalone listen address, in net.Listen form
	// ("host:port", port 110 when not given); "" = inetd mode.
	Address string
	// ChildArgs are the arguments without the address argument: what a
	// per-connection child gets to run in inetd mode on its socket.
	ChildArgs []string

	Help        bool   // -h, --help
	Detach      bool   // --detach: the daemon runs in the background
	Recover     bool   // --recover
	CheckConfig bool   // --check-config
	PrintConfig string // --print-config: "qpopper" or "toml"; "" = not asked
	Version     bool   // --version, or qpopper's -v
	Demo        bool   // --demo
	Listen      string // --listen ADDR (for --demo)
	UserDB      string // --userdb FILE, or popper-userdb from a config file
	ListUIDs    string // --list-uids USER

	// OptionsFD is the descriptor (--options-fd) from which a session
	// of the standalone daemon reads the daemon's options, in place of
	// the command line and configuration files; 0 = none.
	OptionsFD int
	// Client is the client's address the daemon learnt from a PROXY
	// header (--client), "" = the connection's own peer.
	Client string

	ConfigFiles  []string       // -f files, in order
	ConfigErrors []*ConfigError // problems in them and in the option combination
	// Unsupported lists, once each, the flags and options that ask for a
	// feature popper lacks; they were accepted, and should be logged.
	Unsupported []string
}

// flagTakesArg is qpopper 4.x's getopt string b:BcCdD:e:f:FkK:l:L:p:RsSt:T:uUvy:
// plus 4.1's V and x (meaning unknown; taken without an argument).
var flagTakesArg = map[byte]bool{
	'b': true, 'B': false, 'c': false, 'C': false, 'd': false, 'D': true,
	'e': true, 'f': true, 'F': false, 'k': false, 'K': true, 'l': true,
	'L': true, 'p': true, 'R': false, 's': false, 'S': false, 't': true,
	'T': true, 'u': false, 'U': false, 'v': false, 'y': true,
	'V': false, 'x': false,
	'h': false, // popper's: the usage text on standard output
}

// longTakesArg lists popper's long options; true = needs a value.
var longTakesArg = map[string]bool{
	"recover": false, "check-config": false, "print-config": false, "version": false,
	"demo": false, "listen": true, "userdb": true, "list-uids": true,
	"help": false, "detach": false, "pidfile": true,
	// Between the standalone daemon and its sessions.
	"options-fd": true, "client": true,
}

// ParseArgs reads the command line (without the program name) into opts,
// strictly left to right like qpopper: -f calls loadFile at its position,
// so later flags override the file and the file overrides earlier flags.
// Letters may be clustered (-sS) and arguments glued (-T600) or separate
// (-T 600). A non-option argument is the standalone address
// [address][:][port], wherever it stands. A bad command line returns a
// *UsageError; problems in configuration files are in
// Invocation.ConfigErrors.
func ParseArgs(args []string, opts *Options, loadFile func(path string) []*ConfigError) (*Invocation, error) {
	inv := &Invocation{}
	addrIndex := -1
	onlyOperands := false
	others := false // arguments besides --options-fd and --client
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "--options-fd=") && !strings.HasPrefix(a, "--client=") {
			others = true
		}
		switch {
		case onlyOperands || a == "-" || !strings.HasPrefix(a, "-"):
			if addrIndex >= 0 {
				return nil, &UsageError{Msg: fmt.Sprintf("more than one address argument: %q and %q", args[addrIndex], a)}
			}
			addr, err := listenAddress(a)
			if err != nil {
				return nil, &UsageError{Msg: err.Error()}
			}
			inv.Address, addrIndex = addr, i
		case a == "--":
			onlyOperands = true
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			needs, ok := longTakesArg[name]
			if !ok {
				return nil, &UsageError{Msg: fmt.Sprintf("unknown option --%s", name)}
			}
			if needs && !hasVal {
				if i+1 >= len(args) {
					return nil, &UsageError{Msg: fmt.Sprintf("option --%s needs a value", name)}
				}
				i++
				val = args[i]
			}
			if !needs && hasVal && name != "print-config" {
				return nil, &UsageError{Msg: fmt.Sprintf("option --%s takes no value", name)}
			}
			if err := inv.long(name, val, hasVal, opts); err != nil {
				return nil, err
			}
		default:
			// A cluster of letters; a letter that takes an argument takes
			// the rest of the word, or else the next word.
			for j := 1; j < len(a); j++ {
				letter := a[j]
				needs, ok := flagTakesArg[letter]
				if !ok {
					return nil, &UsageError{Msg: fmt.Sprintf("unknown option -- %q", string(letter))}
				}
				val := ""
				if needs {
					if j+1 < len(a) {
						val = a[j+1:]
					} else if i+1 < len(args) {
						i++
						val = args[i]
					} else {
						return nil, &UsageError{Msg: fmt.Sprintf("option requires an argument -- %q", string(letter))}
					}
				}
				if err := inv.flag(letter, val, opts, loadFile); err != nil {
					return nil, err
				}
				if needs {
					break
				}
			}
		}
	}
	for i, a := range args {
		if i != addrIndex {
			inv.ChildArgs = append(inv.ChildArgs, a)
		}
	}
	if inv.OptionsFD > 0 && others {
		return nil, &UsageError{Msg: "--options-fd=N takes no other argument but --client=ADDR"}
	}
	inv.finish(opts)
	return inv, nil
}

// finish applies the checks that concern the options as a whole.
func (inv *Invocation) finish(opts *Options) {
	inv.UserDB = opts.UserDB
	if opts.TLSRequested() && opts.TLSServerCertFile == "" && opts.TLSIdentityFile == "" {
		// qpopper without TLS refuses to start when asked for it; with
		// no certificate popper cannot do better.
		inv.ConfigErrors = append(inv.ConfigErrors, &ConfigError{Text: fmt.Sprintf(
			"TLS requested (tls-support %s, clear-text-password %s) but neither tls-server-cert-file nor tls-identity-file is set",
			opts.TLSSupport, opts.ClearTextPassword)})
	}
	if opts.ProxyProtocol && opts.ProxyTrusted == "" {
		inv.ConfigErrors = append(inv.ConfigErrors, &ConfigError{Text: "proxy-protocol is set but proxy-trusted names no load balancer"})
	}
	for _, n := range opts.Notes() {
		inv.unsupported(n)
	}
}

// ReadOptions reads the options a standalone daemon hands its session on
// --options-fd (WriteOptions' form), in place of a command line, and
// checks them as ParseArgs checks a command line.
func (inv *Invocation) ReadOptions(r io.Reader, opts *Options) {
	c := &configReader{opts: opts, ctx: Init}
	c.parseTOML(r, "the daemon's options", 1)
	inv.ConfigErrors = append(inv.ConfigErrors, c.errs...)
	inv.finish(opts)
}

// WriteOptions writes every option for ReadOptions: TOML, which, unlike
// qpopper's syntax, can hold any string.
func (o *Options) WriteOptions(w io.Writer) error { return o.Print(w, "toml") }

func (inv *Invocation) unsupported(s string) {
	for _, u := range inv.Unsupported {
		if u == s {
			return
		}
	}
	inv.Unsupported = append(inv.Unsupported, s)
}

func (inv *Invocation) long(name, val string, hasVal bool, opts *Options) error {
	switch name {
	case "recover":
		inv.Recover = true
	case "check-config":
		inv.CheckConfig = true
	case "print-config":
		switch {
		case !hasVal:
			inv.PrintConfig = "qpopper"
		case val == "toml" || val == "qpopper":
			inv.PrintConfig = val
		default:
			return &UsageError{Msg: fmt.Sprintf("--print-config=%s: the format is qpopper or toml", val)}
		}
	case "version":
		inv.Version = true
	case "demo":
		inv.Demo = true
	case "listen":
		inv.Listen = val
	case "userdb":
		opts.UserDB = val
	case "list-uids":
		inv.ListUIDs = val
	case "help":
		inv.Help = true
	case "detach":
		inv.Detach = true
	case "pidfile":
		return opts.Set("pid-file", val)
	case "options-fd":
		n, err := strconv.Atoi(val)
		if err != nil || n < 3 {
			return &UsageError{Msg: fmt.Sprintf("--options-fd=%s: want a descriptor number of 3 or more", val)}
		}
		inv.OptionsFD = n
	case "client":
		if _, err := netip.ParseAddrPort(val); err != nil {
			return &UsageError{Msg: fmt.Sprintf("--client=%s: want address:port", val)}
		}
		inv.Client = val
	}
	return nil
}

// clearTextByDigit and tlsByDigit are the -p and -l argument values.
var (
	clearTextByDigit = []string{"default", "never", "always", "local", "TLS"}
	tlsByDigit       = []string{"none", "STLS", "alternate-port"}
)

// flag applies one qpopper letter.
func (inv *Invocation) flag(letter byte, val string, opts *Options, loadFile func(string) []*ConfigError) error {
	set := func(name string, v any) error {
		opt, _ := Lookup(name)
		if !opt.valid(v) {
			return &UsageError{Msg: fmt.Sprintf("bad value for -%c: %q", letter, val)}
		}
		opt.apply(opts, v)
		return nil
	}
	number := func() (int, error) {
		n, rest, ok := strtol(val)
		if !ok || rest != "" {
			return 0, &UsageError{Msg: fmt.Sprintf("-%c needs a number, found %q", letter, val)}
		}
		return n, nil
	}
	digit := func(words []string) (string, error) {
		n, err := number()
		if err != nil || n < 0 || n >= len(words) {
			return "", &UsageError{Msg: fmt.Sprintf("-%c needs 0 to %d, found %q", letter, len(words)-1, val)}
		}
		return words[n], nil
	}
	switch letter {
	case 'b':
		return set("bulldir", val)
	case 'B':
		return set("bulldb-nonfatal", true)
	case 'c':
		return set("downcase-user", true)
	case 'C':
		return set("trim-domain", true)
	case 'd':
		return set("debug", true)
	case 'D':
		return set("drac-host", val)
	case 'e':
		return inv.announce(val, opts)
	case 'f':
		inv.ConfigFiles = append(inv.ConfigFiles, val)
		if loadFile != nil {
			inv.ConfigErrors = append(inv.ConfigErrors, loadFile(val)...)
		}
	case 'F':
		return set("fast-update", true)
	case 'k':
		return set("kerberos", true)
	case 'K':
		return set("kerberos-service", val)
	case 'l':
		w, err := digit(tlsByDigit)
		if err != nil {
			return err
		}
		return set("tls-support", w)
	case 'L':
		n, err := number()
		if err != nil {
			return err
		}
		return set("mail-lock-check", n)
	case 'p':
		w, err := digit(clearTextByDigit)
		if err != nil {
			return err
		}
		return set("clear-text-password", w)
	case 'R':
		return set("reverse-lookup", false)
	case 's':
		return set("statistics", true)
	case 'S':
		return set("server-mode", true)
	case 't':
		return set("tracefile", val)
	case 'T':
		n, err := number()
		if err != nil {
			return err
		}
		return set("timeout", n)
	case 'u':
		return set("user-options", true)
	case 'U':
		return set("spool-options", true)
	case 'v':
		inv.Version = true
	case 'y':
		// 4.0.5 fell through to its usage error here (a missing break);
		// popper does what the man page says.
		opt, _ := Lookup("log-facility")
		m, ok := opt.mnemonic(val)
		if !ok {
			return &UsageError{Msg: fmt.Sprintf("-y: unrecognized log facility %q; valid are: %s", val, strings.Join(opt.MnemonicWords(), ", "))}
		}
		return set("log-facility", m)
	case 'h':
		inv.Help = true
	case 'V', 'x':
		inv.unsupported(fmt.Sprintf("flag -%c (qpopper 4.1) ignored", letter))
	}
	return nil
}

// announce reads -e login_delay=N,expire=N; a key without =N means -1.
func (inv *Invocation) announce(val string, opts *Options) error {
	for _, item := range strings.Split(val, ",") {
		key, num, hasNum := strings.Cut(item, "=")
		n := -1
		if hasNum {
			v, rest, ok := strtol(num)
			if !ok || rest != "" {
				return &UsageError{Msg: fmt.Sprintf("-e %s: %q is not a number", key, num)}
			}
			n = v
		}
		switch key {
		case "login_delay":
			opts.AnnounceLoginDelay = n
		case "expire":
			opts.AnnounceExpire = n
		default:
			return &UsageError{Msg: fmt.Sprintf("-e: unknown key %q (login_delay or expire)", key)}
		}
	}
	return nil
}

// IsAddressArg reports whether a word of the command line is a standalone
// address [address][:][port] rather than a flag or a flag's value.
// Prefer Invocation.ChildArgs, which knows which words are flag values.
func IsAddressArg(s string) bool {
	if strings.HasPrefix(s, "-") {
		return false
	}
	_, err := listenAddress(s)
	return err == nil
}

// listenAddress turns [address][:][port] into net.Listen form: "8110" →
// ":8110", "192.0.2.7" → "192.0.2.7:110", "[::1]:995", "host:110".
func listenAddress(s string) (string, error) {
	bad := fmt.Errorf("bad address argument %q: want [address][:port]", s)
	if s == "" {
		return "", bad
	}
	validPort := func(p string) bool {
		n, err := strconv.Atoi(p)
		return err == nil && n > 0 && n <= 65535 && p[0] != '+'
	}
	if validPort(s) {
		return ":" + s, nil
	}
	host, port := s, "110"
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]")
		if end < 0 {
			return "", bad
		}
		host = s[1:end]
		switch rest := s[end+1:]; {
		case rest == "":
		case strings.HasPrefix(rest, ":") && validPort(rest[1:]):
			port = rest[1:]
		default:
			return "", bad
		}
		if ip := net.ParseIP(host); ip == nil || ip.To4() != nil {
			return "", bad
		}
		return net.JoinHostPort(host, port), nil
	}
	if i := strings.LastIndex(s, ":"); i >= 0 {
		host = s[:i]
		if !validPort(s[i+1:]) {
			return "", bad
		}
		port = s[i+1:]
	}
	if host == "" {
		return ":" + port, nil
	}
	if net.ParseIP(host) == nil && !isHostName(host) {
		return "", bad
	}
	if strings.Contains(host, ":") { // a bare IPv6 address needs brackets
		return "", bad
	}
	return net.JoinHostPort(host, port), nil
}

// isHostName accepts a DNS name with at least one letter, so a mistyped
// number is not taken for a host.
func isHostName(s string) bool {
	letter := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
			letter = true
		case c >= '0' && c <= '9', c == '-', c == '.':
		default:
			return false
		}
	}
	return letter && len(s) <= 253 && s[0] != '-' && s[0] != '.'
}
