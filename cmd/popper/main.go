// Command popper is a POP3 server that replaces Qualcomm qpopper: the
// same flags, configuration files, temp-drop names and log lines, with a
// maildrop life cycle that does not lose mail when the host crashes.
//
// Run modes: inetd (the default: the connection is fd 0), standalone
// (an address argument, or systemd socket activation: one re-executed
// popper per connection), --demo, --recover (boot-time sweep of leftover
// temp drops), --check-config, --print-config, --list-uids, --version.
package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/popperd/popper/auth"
	"github.com/popperd/popper/compat"
	"github.com/popperd/popper/platform"
	"github.com/popperd/popper/pop3"
)

// version is what the banner and logs call this server: qpopper's version
// it is compatible with, as log scrapers and clients key on it.
const version = "4.0.5"

// popperVersion is popper's own release.
const popperVersion = "0.1.0"

func main() {
	os.Exit(run(os.Args))
}

func run(argv []string) int {
	if len(argv) == 2 && argv[1] == auth.IdentityFlag {
		// Run by a checkpassword program that accepted a password.
		return auth.ReportIdentity()
	}
	// qpopper's umask: files it creates are group-accessible (the mail
	// group) and never world-accessible.
	syscall.Umask(0o007)

	ident := filepath.Base(argv[0])
	opts := compat.DefaultOptions()
	inv, err := compat.ParseArgs(argv[1:], opts, func(path string) []*compat.ConfigError {
		return compat.LoadConfig(path, openAsInvoker, opts, compat.Init)
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if inv.OptionsFD > 0 {
		// A session of the standalone daemon: its options come on a pipe.
		f := os.NewFile(uintptr(inv.OptionsFD), "options")
		inv.ReadOptions(f, opts)
		f.Close()
	}
	cfgErrs := inv.ConfigErrors
	switch {
	case inv.Help:
		fmt.Println(compat.Usage())
		return 0
	case inv.Version:
		fmt.Printf("popper %s (qpopper %s compatible)\n", popperVersion, version)
		return 0
	case inv.CheckConfig:
		for _, e := range cfgErrs {
			fmt.Fprintln(os.Stderr, e.Error())
		}
		// Not problems, but what an admin switching from qpopper must
		// know: settings that may not do what they seem to, and options
		// that do nothing here.
		for _, n := range append(append(append([]string(nil), inv.Warnings...), inv.Ineffective...), inv.Unsupported...) {
			fmt.Fprintln(os.Stderr, "note: "+n)
		}
		problems := len(cfgErrs)
		if problems == 0 {
			// Only a configuration that parsed names the sources right.
			for _, p := range authProblems(opts) {
				fmt.Fprintln(os.Stderr, p)
				problems++
			}
		}
		if problems > 0 {
			fmt.Fprintf(os.Stderr, "%d problem(s) found\n", problems)
			return 1
		}
		fmt.Println("configuration OK")
		return 0
	case inv.PrintConfig != "":
		for _, e := range cfgErrs {
			fmt.Fprintln(os.Stderr, e.Error())
		}
		opts.Print(os.Stdout, inv.PrintConfig)
		if len(cfgErrs) > 0 {
			return 1
		}
		return 0
	case inv.Demo:
		return runDemo(inv)
	}

	log := openLog(ident, opts)
	defer log.Close()
	// Flags and options popper cannot honour, each once (ParseArgs has
	// gathered the options' notes into inv.Unsupported), and settings
	// that may not do what they seem to.
	for _, u := range append(append([]string(nil), inv.Unsupported...), inv.Warnings...) {
		log.Notice(u)
	}

	switch {
	case inv.Recover:
		return runRecover(opts, inv, log, os.Stdout)
	case inv.ListUIDs != "":
		return runListUIDs(opts, inv, inv.ListUIDs, os.Stdout)
	case inv.Address != "" && inv.Detach:
		// The daemon proper is a new process in the background, which
		// says when it listens, or why it cannot.
		if err := platform.Detach(childArgsWithout(argv, "--detach"), time.Minute); err != nil {
			fmt.Fprintln(os.Stderr, "popper:", err)
			return 1
		}
		return 0
	case inv.Address != "":
		return startDaemon(argv, inv, opts, inv.Address, nil, log)
	}
	// fd 0 a connected socket: inetd, xinetd, SMF inetd, or systemd with
	// Accept=yes (which also passes the connection as LISTEN_FDS: it must
	// not be taken for a listener).
	conn, inetdErr := platform.InetdConn()
	if inetdErr == nil {
		return runInetd(conn, opts, inv, cfgErrs, log)
	}
	ls, conn, err := platform.SystemdSockets()
	switch {
	case err == nil && conn != nil:
		// Accept=yes without StandardInput=socket: the connection is fd 3.
		for _, l := range ls {
			l.Close()
		}
		return runInetd(conn, opts, inv, cfgErrs, log)
	case err == nil && len(ls) > 0:
		return startDaemon(argv, inv, opts, "", ls, log)
	}
	log.Notice(inetdErr.Error())
	if !platform.StderrIsConnection() {
		fmt.Fprintln(os.Stderr, compat.NoConnectionText)
	}
	return 1
}

// startDaemon runs the standalone daemon with the configuration already
// read, refusing to start on one --check-config would refuse.
func startDaemon(argv []string, inv *compat.Invocation, opts *compat.Options, addr string, ls []net.Listener, log platform.Logger) int {
	problems := make([]string, 0, len(inv.ConfigErrors))
	for _, e := range inv.ConfigErrors {
		problems = append(problems, e.Error())
	}
	configFailed(inv.FailedConfigFiles, log)
	if len(problems) == 0 {
		problems = authProblems(opts)
	}
	if len(problems) == 0 {
		setup, err := newSetup(opts, inv.ConfigFiles)
		if err == nil {
			return runDaemon(addr, ls, setup, func() (*daemonSetup, []string) { return loadSetup(argv) }, log)
		}
		problems = append(problems, err.Error())
	}
	for _, p := range problems {
		log.Notice(p)
		fmt.Fprintln(os.Stderr, p)
	}
	err := errors.New(compat.NotStartedLine(len(problems)))
	log.Notice(err.Error())
	fmt.Fprintln(os.Stderr, "popper:", err)
	platform.Detached(err)
	return 1
}

// openAsInvoker opens configuration files with the privileges popper was
// started with (root under inetd), so only as the admin's own files: not
// through a symbolic link, owned by root, writable by no one else.
func openAsInvoker(path string) (io.ReadCloser, error) {
	return platform.OpenAdminFile(path, os.O_RDONLY, 0)
}

// runInetd serves one connection on fd 0, as qpopper under inetd.
func runInetd(conn net.Conn, opts *compat.Options, inv *compat.Invocation, cfgErrs []*compat.ConfigError, log platform.Logger) int {
	defer conn.Close()
	peerAddr, perr := sessionPeer(conn, opts, inv)
	if perr != nil {
		log.Notice(perr.Error())
		return 1
	}
	host, ip := clientNames(peerAddr, opts)
	hostname := myHostname()
	if len(cfgErrs) > 0 {
		// Fail closed: a broken configuration must not serve with half of
		// its settings (qpopper silently dropped the rest of the file).
		for _, e := range cfgErrs {
			log.Notice(e.Error())
		}
		configFailed(inv.FailedConfigFiles, log)
		refuseConfig(conn, host, ip, log)
		return 1
	}
	client := auth.Client{Host: host, IP: ip}
	src, err := accountSource(opts, client)
	if err != nil {
		log.Notice(err.Error())
		refuseConfig(conn, host, ip, log)
		return 1
	}
	if opts.Debug {
		log.Debug(compat.ServicingLine(version, host, ip))
	}
	tlsCfg, err := loadTLS(opts, log)
	if err != nil {
		log.Notice(err.Error())
		refuseConfig(conn, host, ip, log)
		return 1
	}
	implicit := opts.TLSSupport == "alternate-port"
	raw := conn
	if implicit {
		tc := tls.Server(conn, tlsCfg)
		tc.SetDeadline(time.Now().Add(opts.Timeout))
		if err := tc.Handshake(); err != nil {
			log.Notice(compat.TLSHandshakeFailed(err))
			return 1
		}
		tc.SetDeadline(time.Time{})
		conn = tc
	}
	b := &backend{opts: opts, policy: loginPolicy(opts, src, client, log), log: log, clientHost: host, clientIP: ip}
	cfg := &pop3.Config{
		Hostname:       hostname,
		Version:        version,
		Shy:            opts.Shy,
		Timeout:        opts.Timeout,
		LoginDelay:     opts.AnnounceLoginDelay,
		Expire:         opts.AnnounceExpire,
		ClearText:      opts.ClearTextPassword,
		ImplicitTLS:    implicit,
		UpdateOnAbort:  opts.UpdateOnAbort,
		AutoDelete:     opts.AutoDelete,
		Log:            log,
		ClientHost:     host,
		ClientIP:       ip,
		Implementation: "Qpopper-version-" + version,
		ChunkyWrites:   opts.ChunkyWrites,
		Timing:         opts.Timing,
		NoAPOP:         !apopOffered(opts),
	}
	if opts.TLSSupport == "STLS" {
		cfg.TLS = tlsCfg
	}
	// SIGHUP (qpopper's hangup) and SIGTERM (shutdown) end the session
	// in order: update or restore, as for a client that went away. They
	// are caught by a goroutine, which runs while the session first waits
	// for the client: catching them starts three threads, 0.2 ms before
	// the greeting otherwise. A maildrop is opened only once they are
	// (backend.open waits for caught); before that their default, to end
	// the process, loses nothing.
	hangup := make(chan struct{})
	caught := make(chan struct{})
	go func() {
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM)
		close(caught)
		<-sigs
		close(hangup)
	}()
	b.signalsCaught = caught
	cfg.Hangup = hangup
	if err := pop3.Serve(conn, b, cfg); err != nil {
		log.Debug(compat.SessionEnded(err))
	}
	endConnection(conn, raw)
	return 0
}

// endConnection tells the client the session is over (the update done,
// the sign-off sent) as soon as it is, not when the process has exited:
// the socket is fds 0–2 too, so closing conn would not end it, and the
// exit of a Go process takes about a millisecond more. The write side is
// shut down, as close at exit did (TLS's close_notify first where conn
// is the implicit TLS connection); what the process does after this
// reaches no client.
func endConnection(conn, raw net.Conn) {
	type closeWriter interface{ CloseWrite() error }
	if c, ok := conn.(closeWriter); ok && conn != raw {
		c.CloseWrite()
	}
	if c, ok := raw.(closeWriter); ok {
		c.CloseWrite()
	}
}

// configFailed says, for each -f file with a problem, what qpopper said
// before it exited: on standard error (the client's connection under
// inetd, as it was qpopper's) and in the log.
func configFailed(files []string, log platform.Logger) {
	for _, f := range files {
		fmt.Fprintln(os.Stderr, compat.ConfigFileFailed(f))
		log.Notice(compat.ConfigFileFailed(f))
	}
}

// refuseConfig answers a client that a configuration problem keeps from
// being served, and logs the -ERR as every other.
func refuseConfig(conn net.Conn, host, ip string, log platform.Logger) {
	log.Notice(compat.ErrLine("", host, ip, "["+compat.RespTemp+"] "+compat.ReplyConfigError))
	io.WriteString(conn, "-ERR ["+compat.RespTemp+"] "+compat.ReplyConfigError+"\r\n")
}

// clientNames returns the client's host name (reverse lookup unless
// reverse-lookup, in qpopper's inverted sense, or -R turns it off) and
// address.
func clientNames(client netip.AddrPort, opts *compat.Options) (host, ip string) {
	ip = "unknown"
	if client.IsValid() {
		ip = client.Addr().String()
	}
	host = ip
	if !opts.NoReverseLookup {
		if names, err := net.LookupAddr(ip); err == nil && len(names) > 0 {
			host = strings.TrimSuffix(names[0], ".")
		}
	}
	return host, ip
}

// myHostname is the name in the banner and sign-off: the FQDN when the
// resolver knows one.
func myHostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "localhost"
	}
	if !strings.Contains(h, ".") {
		if cname, err := net.LookupCNAME(h); err == nil && strings.Contains(strings.TrimSuffix(cname, "."), ".") {
			return strings.TrimSuffix(cname, ".")
		}
	}
	return h
}

// runDemo serves a throw-away spool on a loopback port.
func runDemo(inv *compat.Invocation) int {
	dir, args, err := setUpDemo()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 1
	}
	addr := inv.Listen
	if addr == "" {
		addr = "127.0.0.1:1110"
	}
	opts := compat.DefaultOptions()
	dinv, err := compat.ParseArgs(args, opts, func(path string) []*compat.ConfigError {
		return compat.LoadConfig(path, openAsInvoker, opts, compat.Init)
	})
	if err == nil && len(dinv.ConfigErrors) > 0 {
		err = dinv.ConfigErrors[0]
	}
	var setup *daemonSetup
	if err == nil {
		setup, err = newSetup(opts, dinv.ConfigFiles)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 1
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 1
	}
	fmt.Print(demoUsage(ln.Addr().String(), dir))
	return runDaemon("", []net.Listener{ln}, setup, nil, platform.StderrLogger("popper-demo"))
}
