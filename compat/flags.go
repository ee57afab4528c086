package compat

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// Usage returns qpopper's usage text, its flags made from the option
// table, followed by popper's own long options: every flag in qpopper's
// order (by letter, the lower case first), wrapped as its man page is.
// It is made when asked for, not at start: every session would pay for it.
func Usage() string {
	var flags []string
	for _, f := range flagList() {
		flags = append(flags, "["+f+"]")
	}
	var b strings.Builder
	line := "Usage: popper [ [address][:][port] ]"
	for _, f := range flags {
		if len(line)+1+len(f) > 92 {
			b.WriteString(line + "\n")
			line = "             "
		}
		line += " " + f
	}
	b.WriteString(line + "\n")
	b.WriteString(`              [--detach] [--pidfile file]   (with an address: the standalone daemon)
       popper --recover | --check-config | --print-config[=toml] | --version
              | --demo [--listen addr] | --list-uids user   [--userdb file]
       popper -h | --help`)
	return b.String()
}

// UsageError is a command line qpopper would refuse: print it on stderr
// and exit 1.
type UsageError struct {
	Msg string // what is wrong, e.g. `unknown option -- "Z"`
}

func (e *UsageError) Error() string { return "popper: " + e.Msg + "\n" + Usage() }

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
	// FailedConfigFiles are the -f files that had problems (in them or
	// in files they include), for qpopper's "Unable to process config
	// file NAME".
	FailedConfigFiles []string
	// Unsupported lists, once each, the flags and options that ask for a
	// feature popper lacks; they were accepted, and should be logged.
	Unsupported []string
	// Warnings are settings that may not do what their reader expects
	// (Options.Warnings), and Ineffective the options that do nothing
	// here (Options.Ineffective): --check-config shows both, and a
	// starting server logs the warnings.
	Warnings, Ineffective []string
}

// Letters that set no option: -v (qpopper's version), 4.1's -V and -x
// (meaning unknown, taken without an argument), popper's -h. Every other
// letter of qpopper 4.x's getopt string b:BcCdD:e:f:FkK:l:L:p:RsSt:T:uUvy:
// is an option's Flag in the table.
var plainLetters = map[byte]string{'v': "", 'V': "", 'x': "", 'h': ""}

// flagOption returns the option a letter sets; e is the announce-*
// options' letter, which flagOptions returns all of.
func flagOptions(letter byte) []*Option {
	var out []*Option
	for i := range options {
		if f := options[i].Flag; len(f) >= 2 && f[1] == letter {
			out = append(out, &options[i])
		}
	}
	return out
}

// takesArg tells whether a letter takes an argument, and whether it is a
// letter at all: every option's letter but a boolean's does.
func takesArg(letter byte) (needs, ok bool) {
	if _, ok := plainLetters[letter]; ok {
		return false, true
	}
	opts := flagOptions(letter)
	if len(opts) == 0 {
		return false, false
	}
	return opts[0].Kind != Bool, true
}

// flagList is the synopsis of every flag, in qpopper's order: "-b
// bulldir", "-B", "-l0|1|2", "-e login_delay=nn,expire=nn", "-v".
func flagList() []string {
	seen := map[byte]bool{}
	type flag struct {
		letter byte
		text   string
	}
	var fl []flag
	for _, opt := range options {
		if len(opt.Flag) < 2 || seen[opt.Flag[1]] {
			continue
		}
		letter := opt.Flag[1]
		seen[letter] = true
		text := opt.Flag
		if opt.Digits != nil {
			var d []string
			for i := range opt.Digits {
				d = append(d, strconv.Itoa(i))
			}
			text = opt.Flag + strings.Join(d, "|")
		}
		if group := flagOptions(letter); len(group) > 1 {
			var keys []string
			for _, o := range group {
				keys = append(keys, strings.TrimPrefix(o.Flag, "-e "))
			}
			// qpopper's order: "login_delay=nn,expire=nn".
			sort.Sort(sort.Reverse(sort.StringSlice(keys)))
			text = "-e " + strings.Join(keys, ",")
		}
		fl = append(fl, flag{letter, text})
	}
	fl = append(fl, flag{'v', "-v"})
	sort.Slice(fl, func(i, j int) bool {
		a, b := fl[i].letter, fl[j].letter
		if la, lb := a|0x20, b|0x20; la != lb {
			return la < lb
		}
		return a > b // the lower case first
	})
	var out []string
	for _, f := range fl {
		out = append(out, f.text)
	}
	return out
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
				needs, ok := takesArg(letter)
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
	inv.Warnings, inv.Ineffective = opts.Warnings(), opts.Ineffective()
}

// ReadOptions reads the options a standalone daemon hands its session on
// --options-fd (WriteOptions' form), in place of a command line, and
// checks them as ParseArgs checks a command line.
func (inv *Invocation) ReadOptions(r io.Reader, opts *Options) {
	c := &configReader{opts: opts, ctx: Init}
	c.parseTOML(r, "the daemon's options", 1)
	inv.ConfigErrors = append(inv.ConfigErrors, c.errs...)
	inv.finish(opts)
	// The daemon said these when it started; its pipe has no lines to
	// name.
	inv.Warnings, inv.Ineffective = nil, nil
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

// flag applies one qpopper letter: the option the table gives it, set
// to true (a boolean), to its argument, or to the word its digit names
// (-p, -l).
func (inv *Invocation) flag(letter byte, val string, opts *Options, loadFile func(string) []*ConfigError) error {
	switch letter {
	case 'v':
		inv.Version = true
		return nil
	case 'h':
		inv.Help = true
		return nil
	case 'V', 'x':
		inv.unsupported(fmt.Sprintf("flag -%c (qpopper 4.1) ignored", letter))
		return nil
	}
	group := flagOptions(letter)
	if len(group) > 1 {
		return inv.announce(val, opts, group)
	}
	opt := group[0]
	if opt.ref == nil { // -f: config-file
		inv.ConfigFiles = append(inv.ConfigFiles, val)
		if loadFile != nil {
			errs := loadFile(val)
			if len(errs) > 0 {
				inv.FailedConfigFiles = append(inv.FailedConfigFiles, val)
			}
			inv.ConfigErrors = append(inv.ConfigErrors, errs...)
		}
		return nil
	}
	var v any = true
	switch {
	case opt.Digits != nil:
		n, rest, ok := strtol(val)
		if !ok || rest != "" || n < 0 || n >= len(opt.Digits) {
			return &UsageError{Msg: fmt.Sprintf("-%c needs 0 to %d, found %q", letter, len(opt.Digits)-1, val)}
		}
		v = opt.Digits[n]
	case opt.Kind == Int:
		n, rest, ok := strtol(val)
		if !ok || rest != "" {
			return &UsageError{Msg: fmt.Sprintf("-%c needs a number, found %q", letter, val)}
		}
		v = n
	case opt.Kind == Mnemonic:
		m, ok := opt.mnemonic(val)
		if !ok {
			return &UsageError{Msg: fmt.Sprintf("-%c: unrecognized %s %q; valid are: %s",
				letter, strings.ReplaceAll(opt.Name, "-", " "), val, strings.Join(opt.MnemonicWords(), ", "))}
		}
		v = m
	case opt.Kind == String:
		v = val
	}
	if !opt.valid(v) {
		return &UsageError{Msg: fmt.Sprintf("bad value for -%c: %q", letter, val)}
	}
	where := "-" + string(letter)
	if val != "" {
		where += " " + val
	}
	opt.apply(opts, v, where)
	return nil
}

// announce reads -e login_delay=N,expire=N; a key without =N means -1.
func (inv *Invocation) announce(val string, opts *Options, group []*Option) error {
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
		var opt *Option
		var keys []string
		for _, o := range group {
			k := strings.TrimSuffix(strings.TrimPrefix(o.Flag, "-e "), "=nn")
			keys = append(keys, k)
			if k == key {
				opt = o
			}
		}
		if opt == nil {
			return &UsageError{Msg: fmt.Sprintf("-e: unknown key %q (%s)", key, strings.Join(keys, " or "))}
		}
		opt.apply(opts, n, "-e "+item)
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
