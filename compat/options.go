// Package compat is qpopper 4.x's outside surface: the option table, the
// configuration-file syntax (and a TOML equivalent), the command line,
// the names of spool, lock and temp-drop files, and the log line formats.
//
// It only parses and names. Functions take readers, strings or an injected
// open function, so the caller decides with whose privileges a file is
// opened (qpopper read users' option files as root: CVE-2005-1151).
package compat

import (
	"fmt"
	"runtime"
	"strings"
	"time"
)

// Kind is the type of an option's value.
type Kind int

const (
	Bool     Kind = iota // set/reset; true, false, 0 or 1
	Int                  // C integer: decimal, 0x hex, leading-0 octal
	String               // quoted or a bare word
	Mnemonic             // one word from the option's list
)

func (k Kind) String() string {
	switch k {
	case Bool:
		return "boolean"
	case Int:
		return "integer"
	case String:
		return "string"
	case Mnemonic:
		return "mnemonic"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Restriction says where an option may be set.
type Restriction int

const (
	ResNone Restriction = iota // anywhere
	ResUser                    // not in a user's ~/.qpopper-options
	ResInit                    // only before a client connects (not in option files read after login)
)

func (r Restriction) String() string {
	switch r {
	case ResUser:
		return "not in user files"
	case ResInit:
		return "init only"
	}
	return "none"
}

// Context is when, and from whose file, options are being read.
type Context int

const (
	Init      Context = iota // command line and -f files, before any client traffic
	Connected                // the admin's <spool-dir>/.<user>.qpopper-options, after login
	User                     // the user's ~/.qpopper-options, after login
)

// Option describes one configuration option. The table of them is the
// single source of truth for the parsers, --print-config and the man page.
type Option struct {
	Name     string
	Kind     Kind
	Restrict Restriction
	// Flag is the option's qpopper letter as the synopsis shows it:
	// "-s" (a boolean: the letter sets it true), "-b bulldir" (the
	// argument is the value), "-l" with Digits (the argument is a
	// digit), or "-e expire=nn" (a key of -e); "" if none. The command
	// line, its usage text and the man page's flags are made from it.
	Flag string
	// Digits are the words -l and -p store for the digits 0, 1, ...
	Digits []string
	// Default is the value in configuration-file syntax ("" for an empty
	// string, "true"/"false" for booleans).
	Default string
	// Mnemonics lists the accepted words of a Mnemonic option. Each group
	// is one value; its first spelling is the one stored in Options.
	Mnemonics [][]string
	Doc       string
	// Unsupported, when not empty, says which feature popper lacks: the
	// option is accepted, and setting it away from its default is noted
	// (Options.Notes) for the caller to log once.
	Unsupported string

	// ref returns a pointer to the option's field: *bool, *int, *string or
	// *time.Duration (seconds in files and flags). nil for config-file.
	ref func(o *Options) any
	// check validates a new value (after kind parsing); nil accepts all.
	check func(v any) bool
}

// Options holds the effective value of every option.
type Options struct {
	AnnounceExpire       int    // CAPA EXPIRE; -1 = NEVER
	AnnounceLoginDelay   int    // CAPA LOGIN-DELAY; -1 = not announced
	APOPDB               string // popper: APOP secrets (popauth); "" = no APOP
	AuthDelay            time.Duration
	AuthFile             string
	AuthSource           string // popper: default, system, pam, checkpassword, userdb
	AutoDelete           bool
	BullDBMaxTries       int
	BullDBNonfatal       bool
	BullDir              string
	CacheDir             string // "" = the spool directory
	CacheName            string // printf-style, one %s
	CheckHashDir         bool
	CheckOldSpoolLoc     bool
	CheckPasswordExpired bool
	Checkpassword        string // popper: checkpassword program and arguments
	ChunkyWrites         string // always, TLS, never
	ClearTextPassword    string // default, never, TLS, always, local
	Debug                bool
	DowncaseUser         bool
	DracHost             string
	FastUpdate           bool
	GroupBulletins       bool
	GroupNoServerMode    string
	GroupServerMode      string
	HashSpool            int // 0 none, 1 or 2 (HashDir)
	HomeDirMail          string
	KeepTempDrop         bool
	Kerberos             bool
	KerberosService      string
	LogFacility          string // mail, local0..local7
	LogLogin             string // template for LoginLine; "" = no login record
	MailCommand          string
	MailLockCheck        int
	MaxAuthFailures      int // popper: failed logins before the connection is closed; 0 = no limit
	MaxBulletins         int
	NoAtomicOpen         bool
	NonauthFile          string
	OldStyleUID          bool
	PAMService           string // popper: PAM service name
	NoReverseLookup      bool   // reverse-lookup, in qpopper 4.0.5's sense: true = no lookups
	ServerMode           bool
	Shy                  bool
	SpoolDir             string
	SpoolOptions         bool
	Statistics           bool
	TempDir              string // "" = the spool directory
	TempName             string // printf-style, one %s
	Timeout              time.Duration
	Timing               bool
	TLSCipherList        string
	TLSIdentityFile      string
	TLSOptions           int
	TLSPassphrase        string
	TLSPrivateKeyFile    string
	TLSServerCertFile    string
	TLSSupport           string // none, STLS, alternate-port
	TLSVersion           string // default, SSLv2, SSLv3, TLSv1, SSLv23
	TLSWorkarounds       bool
	TraceFile            string
	TrimDomain           bool
	UpdateOnAbort        bool
	UpdateStatusHeaders  bool
	UserOptions          bool
	UWKluge              bool

	// popper's own options.
	ContentLength bool   // trust and write Content-Length (Solaris mailboxes)
	UserDB        string // passwd-style file of non-system accounts
	SpoolLocks    string // e.g. "dotlock,fcntl"; "" = the OS default

	// The standalone daemon's (popper's own).
	MaxSessions           int           // sessions at once; 0 = no limit
	MaxSessionsPerAddress int           // sessions at once from one client address; 0 = no limit
	PidFile               string        // written at start, removed at stop; "" = none
	ProxyProtocol         bool          // read a PROXY v1/v2 header from proxy-trusted sources
	ProxyTrusted          string        // addresses and CIDR prefixes, comma-separated
	ShutdownGrace         time.Duration // how long SIGTERM waits for sessions before ending them

	notes []string
	// set records where options were set, in order: for the warnings
	// about a stricter setting undone by a later one.
	set []setting
}

// setting is one option set from the command line or a file.
type setting struct {
	name, value string
	where       string // "-p 4", "line 3 of config file /etc/qpopper.config"; "" when unknown
}

// Notes lists the features that the options ask for and popper lacks, one
// sentence each, without repeats.
func (o *Options) Notes() []string { return append([]string(nil), o.notes...) }

func (o *Options) note(s string) {
	for _, n := range o.notes {
		if n == s {
			return
		}
	}
	o.notes = append(o.notes, s)
}

// TLSRequested reports whether the options need TLS: STLS or implicit TLS,
// or clear-text passwords allowed only over TLS.
func (o *Options) TLSRequested() bool {
	return o.TLSSupport != "none" || o.ClearTextPassword == "TLS"
}

// DefaultAPOPDB is where popauth(8) keeps APOP secrets unless apop-db
// says otherwise. qpopper compiled its path in; popper's file has its own
// name and format so that qpopper's database stays untouched beside it.
const DefaultAPOPDB = "/etc/popper/pop.auth"

// DefaultLogLogin is the login record template of a qpopper built with
// LOG_LOGIN: POP-before-SMTP log scrapers parse exactly this shape.
const DefaultLogLogin = `(v%0) POP login by user "%1" at (%2) %3`

// defaultLogFacility is qpopper's: LOG_MAIL on Linux, LOG_LOCAL0 elsewhere.
func defaultLogFacility() string {
	if runtime.GOOS == "linux" {
		return "mail"
	}
	return "local0"
}

// defaultContentLength: Solaris and illumos mailers write Content-Length
// and rely on it; elsewhere a From_ line alone separates messages.
func defaultContentLength() string {
	if runtime.GOOS == "solaris" || runtime.GOOS == "illumos" {
		return "true"
	}
	return "false"
}

func nonNegative(v any) bool { return v.(int) >= 0 }

// oneStringVerb accepts a printf format with exactly one %s and no other
// verb: qpopper handed these to sprintf, and anything else there is a
// format-string hole.
func oneStringVerb(v any) bool {
	s := v.(string)
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			continue
		}
		if i+1 >= len(s) {
			return false
		}
		switch s[i+1] {
		case '%':
		case 's':
			n++
		default:
			return false
		}
		i++
	}
	return n == 1
}

// emptyOrOneStringVerb is oneStringVerb, or "" for a name that turns its
// file off (cache-name).
func emptyOrOneStringVerb(v any) bool { return v.(string) == "" || oneStringVerb(v) }

func validLockList(v any) bool {
	s := v.(string)
	if s == "" {
		return true
	}
	for _, k := range strings.Split(s, ",") {
		switch k {
		case "dotlock", "fcntl", "flock", "lockf":
		default:
			return false
		}
	}
	return true
}

func validAddrList(v any) bool {
	_, err := ParseAddrList(v.(string))
	return err == nil
}

var facilities = [][]string{{"mail"}, {"local0"}, {"local1"}, {"local2"}, {"local3"}, {"local4"}, {"local5"}, {"local6"}, {"local7"}}

const (
	noBulletins = "popper has no bulletin database (bulletins work from bulldir and ~/.popbull)"
	noKerberos  = "popper has no Kerberos support"
	noDRAC      = "popper has no DRAC support"
	noXMIT      = "popper has no XTND XMIT support"
	noOpenSSL   = "popper's TLS has no OpenSSL switches"
	inPlace     = "popper always rewrites a server-mode spool in place (a rename could drop mail an MDA is appending)"
)

// options is the table, sorted by name as qpopper's "valid options are"
// list is.
var options = []Option{
	// qpopper 4.0.5 left both announcements at 0 (a zeroed struct, and
	// no default in pop_init.c), so an unconfigured server says
	// "LOGIN-DELAY 0" and "EXPIRE 0", as popper does.
	{Name: "announce-expire", Kind: Int, Flag: "-e expire=nn", Default: "0",
		Doc: "days announced in CAPA EXPIRE (-1 = NEVER); not enforced",
		ref: func(o *Options) any { return &o.AnnounceExpire }},
	{Name: "announce-login-delay", Kind: Int, Flag: "-e login_delay=nn", Default: "0",
		Doc: "seconds announced in CAPA LOGIN-DELAY (-1 = not announced); not enforced",
		ref: func(o *Options) any { return &o.AnnounceLoginDelay }},
	{Name: "apop-db", Kind: String, Restrict: ResInit, Default: DefaultAPOPDB,
		Doc: "popper: the APOP secrets file popauth(8) keeps; APOP is offered only while it exists; empty = no APOP",
		ref: func(o *Options) any { return &o.APOPDB }},
	{Name: "auth-delay", Kind: Int, Restrict: ResInit, Default: "10", check: nonNegative,
		Doc: "popper: seconds from a login attempt to its refusal, whatever the reason (qpopper slept 10)",
		ref: func(o *Options) any { return &o.AuthDelay }},
	{Name: "auth-file", Kind: String, Restrict: ResInit,
		Doc: "if set, only the users listed in this file may log in",
		ref: func(o *Options) any { return &o.AuthFile }},
	{Name: "auth-source", Kind: Mnemonic, Restrict: ResInit, Default: "default",
		Mnemonics: [][]string{{"default"}, {"system"}, {"pam"}, {"checkpassword"}, {"userdb"}},
		Doc:       "popper: where accounts and passwords come from; default = userdb when popper-userdb is set, else system (passwd and shadow)",
		ref:       func(o *Options) any { return &o.AuthSource }},
	{Name: "auto-delete", Kind: Bool, Restrict: ResUser, Default: "false",
		Doc: "at update, delete every retrieved message",
		ref: func(o *Options) any { return &o.AutoDelete }},
	{Name: "bulldb-max-tries", Kind: Int, Default: "75", Unsupported: noBulletins,
		Doc: "tries to open the bulletin database", check: nonNegative,
		ref: func(o *Options) any { return &o.BullDBMaxTries }},
	{Name: "bulldb-nonfatal", Kind: Bool, Flag: "-B", Default: "false", Unsupported: noBulletins,
		Doc: "continue the session when the bulletin database cannot be opened",
		ref: func(o *Options) any { return &o.BullDBNonfatal }},
	{Name: "bulldir", Kind: String, Flag: "-b bulldir",
		Doc: "bulletin directory (enables bulletins)",
		ref: func(o *Options) any { return &o.BullDir }},
	{Name: "cache-dir", Kind: String, Restrict: ResUser,
		Doc: "directory of the index beside the spool, popper's own format (empty = spool-dir)",
		ref: func(o *Options) any { return &o.CacheDir }},
	{Name: "cache-name", Kind: String, Restrict: ResUser, Default: ".%s.cache",
		Doc: "name of the index beside the spool; %s is the user name; empty = no index", check: emptyOrOneStringVerb,
		ref: func(o *Options) any { return &o.CacheName }},
	{Name: "check-hash-dir", Kind: Bool, Default: "true",
		Doc: "create missing hashed spool directories",
		ref: func(o *Options) any { return &o.CheckHashDir }},
	{Name: "check-old-spool-loc", Kind: Bool, Default: "true",
		Doc: "with hash-spool or home-dir-mail, also look for a temp drop in the old location",
		ref: func(o *Options) any { return &o.CheckOldSpoolLoc }},
	{Name: "check-password-expired", Kind: Bool, Restrict: ResInit, Default: "true",
		Doc: "refuse users whose shadow password has expired",
		ref: func(o *Options) any { return &o.CheckPasswordExpired }},
	{Name: "checkpassword", Kind: String, Restrict: ResInit,
		Doc: "popper: a checkpassword program (the qmail interface) and its arguments, for auth-source checkpassword",
		ref: func(o *Options) any { return &o.Checkpassword }},
	{Name: "chunky-writes", Kind: Mnemonic, Default: "always",
		Mnemonics: [][]string{{"always", "default"}, {"TLS", "SSL"}, {"never"}},
		Doc:       "buffer output in 512-byte chunks",
		ref:       func(o *Options) any { return &o.ChunkyWrites }},
	{Name: "clear-text-password", Kind: Mnemonic, Restrict: ResUser, Flag: "-p", Default: "default",
		Digits:    []string{"default", "never", "always", "local", "TLS"},
		Mnemonics: [][]string{{"default"}, {"never"}, {"TLS", "SSL"}, {"always"}, {"local"}},
		Doc:       "when clear-text passwords are accepted",
		ref:       func(o *Options) any { return &o.ClearTextPassword }},
	{Name: "config-file", Kind: String, Flag: "-f config-file",
		Doc: "read another configuration file here (nesting up to 100)"},
	{Name: "content-length", Kind: Bool, Restrict: ResUser, Default: defaultContentLength(),
		Doc: "popper: trust Content-Length headers when splitting the mailbox",
		ref: func(o *Options) any { return &o.ContentLength }},
	{Name: "debug", Kind: Bool, Flag: "-d", Default: "false",
		Doc: "debug logging; resetting it also ends the trace file",
		ref: func(o *Options) any { return &o.Debug }},
	{Name: "downcase-user", Kind: Bool, Restrict: ResUser, Flag: "-c", Default: "false",
		Doc: "lower-case user names (ASCII A-Z)",
		ref: func(o *Options) any { return &o.DowncaseUser }},
	{Name: "drac-host", Kind: String, Flag: "-D drac-host", Default: "localhost", Unsupported: noDRAC,
		Doc: "DRAC server host",
		ref: func(o *Options) any { return &o.DracHost }},
	{Name: "fast-update", Kind: Bool, Flag: "-F", Default: "false", Unsupported: inPlace,
		Doc: "server mode: rename the temp drop over the spool",
		ref: func(o *Options) any { return &o.FastUpdate }},
	{Name: "group-bulletins", Kind: Bool, Restrict: ResUser, Default: "false",
		Doc: "bulletin file names carry a group",
		ref: func(o *Options) any { return &o.GroupBulletins }},
	{Name: "group-no-server-mode", Kind: String, Restrict: ResUser,
		Doc: "members of this group get server mode off",
		ref: func(o *Options) any { return &o.GroupNoServerMode }},
	{Name: "group-server-mode", Kind: String, Restrict: ResUser,
		Doc: "members of this group get server mode on",
		ref: func(o *Options) any { return &o.GroupServerMode }},
	{Name: "hash-spool", Kind: Int, Restrict: ResUser, Default: "0",
		Doc:   "hashed spool directories: 0 none, 1 one letter, 2 two levels",
		check: func(v any) bool { return v.(int) >= 0 && v.(int) <= 2 },
		ref:   func(o *Options) any { return &o.HashSpool }},
	{Name: "home-dir-mail", Kind: String, Restrict: ResUser,
		Doc: "the spool is $HOME/<value> instead of spool-dir/<user>",
		ref: func(o *Options) any { return &o.HomeDirMail }},
	{Name: "keep-temp-drop", Kind: Bool, Restrict: ResUser, Default: "false",
		Doc: "do not remove the temp drop after update",
		ref: func(o *Options) any { return &o.KeepTempDrop }},
	{Name: "kerberos", Kind: Bool, Restrict: ResUser, Flag: "-k", Default: "false", Unsupported: noKerberos,
		Doc: "Kerberos authentication",
		ref: func(o *Options) any { return &o.Kerberos }},
	{Name: "kerberos-service", Kind: String, Restrict: ResUser, Flag: "-K service", Default: "pop", Unsupported: noKerberos,
		Doc: "Kerberos service name",
		ref: func(o *Options) any { return &o.KerberosService }},
	// qpopper leaves log-facility and log-login unrestricted (a table
	// slip); popper refuses them in user files, where log-login would let
	// a user forge the records POP-before-SMTP relays trust.
	{Name: "log-facility", Kind: Mnemonic, Restrict: ResUser, Flag: "-y log-facility", Default: defaultLogFacility(),
		Mnemonics: facilities,
		Doc:       "syslog facility",
		ref:       func(o *Options) any { return &o.LogFacility }},
	{Name: "log-login", Kind: String, Restrict: ResUser, Default: DefaultLogLogin,
		Doc: "login record: %0 version, %1 user, %2 client host, %3 client address; empty = none",
		ref: func(o *Options) any { return &o.LogLogin }},
	{Name: "mail-command", Kind: String, Restrict: ResUser, Unsupported: noXMIT,
		Doc: "mailer for XTND XMIT",
		ref: func(o *Options) any { return &o.MailCommand }},
	{Name: "mail-lock-check", Kind: Int, Flag: "-L lock-check", Default: "5000", check: nonNegative,
		Doc: "messages between checks that the dot-lock still needs refreshing",
		ref: func(o *Options) any { return &o.MailLockCheck }},
	{Name: "max-auth-failures", Kind: Int, Restrict: ResInit, Default: "3", check: nonNegative,
		Doc: "popper: failed logins on one connection before it is closed; 0 = no limit",
		ref: func(o *Options) any { return &o.MaxAuthFailures }},
	{Name: "max-bulletins", Kind: Int, Default: "1", check: nonNegative,
		Doc: "old bulletins a new user gets",
		ref: func(o *Options) any { return &o.MaxBulletins }},
	{Name: "max-sessions", Kind: Int, Restrict: ResInit, Default: "256", check: nonNegative,
		Doc: "popper: standalone daemon: sessions at once; a connection past it gets -ERR [SYS/TEMP] and a log line; 0 = no limit",
		ref: func(o *Options) any { return &o.MaxSessions }},
	{Name: "max-sessions-per-address", Kind: Int, Restrict: ResInit, Default: "50", check: nonNegative,
		Doc: "popper: standalone daemon: sessions at once from one client address (the PROXY header's, behind a load balancer); 0 = no limit",
		ref: func(o *Options) any { return &o.MaxSessionsPerAddress }},
	{Name: "no-atomic-open", Kind: Bool, Restrict: ResUser, Default: "false",
		Doc: "take the dot-lock with link() instead of O_EXCL",
		ref: func(o *Options) any { return &o.NoAtomicOpen }},
	{Name: "nonauth-file", Kind: String, Restrict: ResInit,
		Doc: "users listed in this file may not log in",
		ref: func(o *Options) any { return &o.NonauthFile }},
	{Name: "old-style-uid", Kind: Bool, Default: "false",
		Doc: "32-hex-digit UIDs as qpopper 2.x made them",
		ref: func(o *Options) any { return &o.OldStyleUID }},
	{Name: "pam-service", Kind: String, Restrict: ResInit, Default: "pop3",
		Doc: "popper: the PAM service name, for auth-source pam (qpopper's --with-pam)",
		ref: func(o *Options) any { return &o.PAMService }},
	{Name: "pid-file", Kind: String, Restrict: ResInit,
		Doc: "popper: standalone daemon: file to write its process id to at start (removed at stop); empty = none",
		ref: func(o *Options) any { return &o.PidFile }},
	{Name: "popper-userdb", Kind: String, Restrict: ResInit,
		Doc: "popper: passwd-style file of accounts that are not system users",
		ref: func(o *Options) any { return &o.UserDB }},
	{Name: "proxy-protocol", Kind: Bool, Restrict: ResInit, Default: "false",
		Doc: "popper: read a PROXY protocol v1 or v2 header (HAProxy send-proxy, send-proxy-v2) on connections from proxy-trusted, and serve the client it names",
		ref: func(o *Options) any { return &o.ProxyProtocol }},
	{Name: "proxy-trusted", Kind: String, Restrict: ResInit, check: validAddrList,
		Doc: "popper: the load balancers allowed to send a PROXY header: addresses and CIDR prefixes, comma-separated",
		ref: func(o *Options) any { return &o.ProxyTrusted }},
	// qpopper 4.0.5 stores this value straight into its no_rev_lookup
	// variable ("SENSE REVERSED!" in pop_config.c), so "true" turns
	// lookups off there, as -R does. popper keeps that sense: a site's
	// file means what it meant under qpopper (--check-config says so).
	{Name: "reverse-lookup", Kind: Bool, Restrict: ResUser, Flag: "-R", Default: "false",
		Doc: "in qpopper 4.0.5's inverted sense: true turns the lookup of the client's host name off, as -R does",
		ref: func(o *Options) any { return &o.NoReverseLookup }},
	{Name: "server-mode", Kind: Bool, Flag: "-S", Default: "false",
		Doc: "qpopper's server mode: write the mailbox back at QUIT only for a deletion, a Status change or a new UID",
		ref: func(o *Options) any { return &o.ServerMode }},
	{Name: "shutdown-grace", Kind: Int, Restrict: ResInit, Default: "30", check: nonNegative,
		Doc: "popper: standalone daemon: seconds SIGTERM waits for sessions to end before it ends them in order (update or restore, as a hangup)",
		ref: func(o *Options) any { return &o.ShutdownGrace }},
	{Name: "shy", Kind: Bool, Restrict: ResInit, Default: "false",
		Doc: "hide the version in the greeting and CAPA",
		ref: func(o *Options) any { return &o.Shy }},
	{Name: "spool-dir", Kind: String, Restrict: ResUser, Default: "/var/mail",
		Doc: "mail spool directory",
		ref: func(o *Options) any { return &o.SpoolDir }},
	{Name: "spool-locks", Kind: String, Restrict: ResUser, check: validLockList,
		Doc: "popper: spool locks to take, comma-separated from dotlock, fcntl, flock, lockf; empty = the OS default",
		ref: func(o *Options) any { return &o.SpoolLocks }},
	{Name: "spool-options", Kind: Bool, Restrict: ResUser, Flag: "-U", Default: "false",
		Doc: "read <spool-dir>/.<user>.qpopper-options after login",
		ref: func(o *Options) any { return &o.SpoolOptions }},
	{Name: "statistics", Kind: Bool, Flag: "-s", Default: "false",
		Doc: "log a Stats: record at update",
		ref: func(o *Options) any { return &o.Statistics }},
	{Name: "temp-dir", Kind: String, Restrict: ResUser,
		Doc: "directory of the temp drop (empty = spool-dir)",
		ref: func(o *Options) any { return &o.TempDir }},
	{Name: "temp-name", Kind: String, Restrict: ResUser, Default: ".%s.pop",
		Doc: "temp drop name; %s is the user name", check: oneStringVerb,
		ref: func(o *Options) any { return &o.TempName }},
	{Name: "timeout", Kind: Int, Flag: "-T timeout", Default: "120", check: nonNegative,
		Doc: "idle timeout in seconds",
		ref: func(o *Options) any { return &o.Timeout }},
	{Name: "timing", Kind: Bool, Default: "false",
		Doc: "log a timing record per session",
		ref: func(o *Options) any { return &o.Timing }},
	{Name: "tls-cipher-list", Kind: String, Restrict: ResInit,
		Doc: "OpenSSL-style cipher list",
		ref: func(o *Options) any { return &o.TLSCipherList }},
	{Name: "tls-identity-file", Kind: String, Restrict: ResInit,
		Doc: "SSLPlus identity file",
		ref: func(o *Options) any { return &o.TLSIdentityFile }},
	{Name: "tls-options", Kind: Int, Restrict: ResUser, Default: "0", Unsupported: noOpenSSL,
		Doc: "OpenSSL SSL_OP_* bits; values set more than once add up",
		ref: func(o *Options) any { return &o.TLSOptions }},
	{Name: "tls-passphrase", Kind: String, Restrict: ResInit,
		Doc: "SSLPlus pass phrase",
		ref: func(o *Options) any { return &o.TLSPassphrase }},
	{Name: "tls-private-key-file", Kind: String, Restrict: ResInit,
		Doc: "TLS private key file",
		ref: func(o *Options) any { return &o.TLSPrivateKeyFile }},
	{Name: "tls-server-cert-file", Kind: String, Restrict: ResInit,
		Doc: "TLS certificate file",
		ref: func(o *Options) any { return &o.TLSServerCertFile }},
	{Name: "tls-support", Kind: Mnemonic, Restrict: ResInit, Flag: "-l", Default: "none",
		Digits:    []string{"none", "STLS", "alternate-port"},
		Mnemonics: [][]string{{"none", "default"}, {"STLS"}, {"alternate-port"}},
		Doc:       "TLS: none, the STLS command, or TLS on connect (port 995)",
		ref:       func(o *Options) any { return &o.TLSSupport }},
	{Name: "tls-version", Kind: Mnemonic, Restrict: ResInit, Default: "default",
		Mnemonics: [][]string{{"default"}, {"SSLv2"}, {"SSLv3"}, {"TLSv1"}, {"SSLv23", "all"}},
		Doc:       "TLS protocol version",
		ref:       func(o *Options) any { return &o.TLSVersion }},
	{Name: "tls-workarounds", Kind: Bool, Restrict: ResUser, Default: "false", Unsupported: noOpenSSL,
		Doc: "OpenSSL SSL_OP_ALL bug workarounds",
		ref: func(o *Options) any { return &o.TLSWorkarounds }},
	// qpopper allows tracefile anywhere; a user-chosen path that the
	// server then opens is how CVE-2005-1151 overwrote files.
	{Name: "tracefile", Kind: String, Restrict: ResUser, Flag: "-t trace-file",
		Doc: "write log records to this file instead of syslog (turns debug on)",
		ref: func(o *Options) any { return &o.TraceFile }},
	{Name: "trim-domain", Kind: Bool, Restrict: ResUser, Flag: "-C", Default: "false",
		Doc: "strip everything from the first @ of user names",
		ref: func(o *Options) any { return &o.TrimDomain }},
	{Name: "update-on-abort", Kind: Bool, Default: "true",
		Doc: "commit deletions when the session ends without QUIT",
		ref: func(o *Options) any { return &o.UpdateOnAbort }},
	{Name: "update-status-headers", Kind: Bool, Default: "true",
		Doc: "write Status: and X-UIDL: headers back to the spool",
		ref: func(o *Options) any { return &o.UpdateStatusHeaders }},
	{Name: "user-options", Kind: Bool, Restrict: ResUser, Flag: "-u", Default: "false",
		Doc: "read ~/.qpopper-options after login",
		ref: func(o *Options) any { return &o.UserOptions }},
	{Name: "UW-kluge", Kind: Bool, Default: "false",
		Doc: "hide UW IMAP's folder-internal first message (alias UW-kludge)",
		ref: func(o *Options) any { return &o.UWKluge }},
}

// aliases maps another spelling to an option name.
var aliases = map[string]string{"UW-kludge": "UW-kluge"}

// AllOptions returns a copy of the option table, sorted by name.
func AllOptions() []Option { return append([]Option(nil), options...) }

// Lookup finds an option by name, ignoring ASCII case, aliases included.
func Lookup(name string) (*Option, bool) {
	for alias, real := range aliases {
		if strings.EqualFold(alias, name) {
			name = real
		}
	}
	for i := range options {
		if strings.EqualFold(options[i].Name, name) {
			return &options[i], true
		}
	}
	return nil, false
}

// mnemonic returns the stored spelling of word, or false.
func (opt *Option) mnemonic(word string) (string, bool) {
	for _, g := range opt.Mnemonics {
		for _, w := range g {
			if strings.EqualFold(w, word) {
				return g[0], true
			}
		}
	}
	return "", false
}

// MnemonicWords lists every accepted spelling of a Mnemonic option.
func (opt *Option) MnemonicWords() []string {
	var all []string
	for _, g := range opt.Mnemonics {
		all = append(all, g...)
	}
	return all
}

// DefaultOptions returns the compiled-in defaults, as the table states them.
func DefaultOptions() *Options {
	o := &Options{}
	for i := range options {
		opt := &options[i]
		if opt.ref == nil {
			continue
		}
		v, err := opt.parseValue(opt.Default)
		if err != nil {
			panic("compat: bad default for " + opt.Name + ": " + err.Error())
		}
		opt.store(o, v)
	}
	return o
}

// parseValue reads a whole value written as in a configuration file but
// unquoted (table defaults, flag arguments, TOML strings).
func (opt *Option) parseValue(s string) (any, error) {
	switch opt.Kind {
	case Bool:
		switch strings.ToLower(s) {
		case "true", "1":
			return true, nil
		case "false", "0":
			return false, nil
		}
		return nil, fmt.Errorf("boolean value expected, found %q", s)
	case Int:
		n, rest, ok := strtol(s)
		if !ok || rest != "" {
			return nil, fmt.Errorf("integer value expected, found %q", s)
		}
		return n, nil
	case Mnemonic:
		m, ok := opt.mnemonic(s)
		if !ok {
			return nil, fmt.Errorf("unrecognized mnemonic %q; valid mnemonics are: %s", s, strings.Join(opt.MnemonicWords(), ", "))
		}
		return m, nil
	}
	return s, nil
}

// valid reports whether a parsed value is in the option's range.
func (opt *Option) valid(v any) bool {
	return opt.check == nil || opt.check(v)
}

// store sets the option's field to a parsed value (bool, int or string)
// with qpopper's side effects, without any checks.
func (opt *Option) store(o *Options, v any) {
	switch p := opt.ref(o).(type) {
	case *bool:
		*p = v.(bool)
	case *int:
		if opt.Name == "tls-options" && *p != 0 {
			*p += v.(int) // qpopper adds these up
		} else {
			*p = v.(int)
		}
	case *time.Duration:
		*p = time.Duration(v.(int)) * time.Second
	case *string:
		*p = v.(string)
	}
	switch opt.Name {
	case "tracefile":
		if v.(string) != "" {
			o.Debug = true
		}
	case "debug":
		if !v.(bool) {
			o.TraceFile = "" // resetting debug closes the trace file
		}
	}
}

// apply stores a value set at where, and notes a request for a missing
// feature.
func (opt *Option) apply(o *Options, v any, where string) {
	opt.store(o, v)
	if opt.ref != nil {
		o.set = append(o.set, setting{name: opt.Name, value: opt.value(o), where: where})
	}
	if opt.Unsupported != "" && opt.value(o) != opt.Default {
		o.note(fmt.Sprintf("%s (option %s ignored)", opt.Unsupported, opt.Name))
	}
}

// value returns the option's current value in configuration-file syntax,
// unquoted.
func (opt *Option) value(o *Options) string {
	switch p := opt.ref(o).(type) {
	case *bool:
		if *p {
			return "true"
		}
		return "false"
	case *int:
		return fmt.Sprint(*p)
	case *time.Duration:
		return fmt.Sprint(int64(*p / time.Second))
	case *string:
		return *p
	}
	return ""
}

// Value returns an option's current value as a string (booleans "true" or
// "false", integers in decimal, timeout in seconds).
func (o *Options) Value(name string) (string, bool) {
	opt, ok := Lookup(name)
	if !ok || opt.ref == nil {
		return "", false
	}
	return opt.value(o), true
}

// Set sets an option by name from its value written unquoted, with the
// same checks as a configuration file read in context Init.
func (o *Options) Set(name, value string) error {
	opt, ok := Lookup(name)
	if !ok || opt.ref == nil {
		return fmt.Errorf("unrecognized option %q", name)
	}
	v, err := opt.parseValue(value)
	if err != nil {
		return fmt.Errorf("%s: %v", opt.Name, err)
	}
	if !opt.valid(v) {
		return fmt.Errorf("bad value for the %s option: %q", opt.Name, value)
	}
	opt.apply(o, v, "")
	return nil
}

// strtol reads a C integer the way strtol(s, &end, 0) does: optional
// blanks and sign, then 0x hex, leading-0 octal or decimal, as many digits
// as fit. It returns the value, the unread rest, and whether any digit was
// read. Values that do not fit in 32 bits report !ok (qpopper stored them
// in an int).
func strtol(s string) (n int, rest string, ok bool) {
	i := 0
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	base := 10
	if i+2 < len(s) && s[i] == '0' && (s[i+1] == 'x' || s[i+1] == 'X') && isDigit(s[i+2], 16) {
		base = 16
		i += 2
	} else if i < len(s) && s[i] == '0' {
		base = 8
	}
	start := i
	var v int64
	for i < len(s) && isDigit(s[i], base) {
		v = v*int64(base) + int64(digitVal(s[i]))
		if v > 1<<31 {
			return 0, s[i:], false
		}
		i++
	}
	if i == start {
		return 0, s, false
	}
	if neg {
		v = -v
	}
	if v > 1<<31-1 || v < -1<<31 {
		return 0, s[i:], false
	}
	return int(v), s[i:], true
}

func isDigit(c byte, base int) bool {
	switch {
	case c >= '0' && c <= '9':
		return int(c-'0') < base
	case c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
		return base == 16
	}
	return false
}

func digitVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	}
	return int(c-'A') + 10
}
