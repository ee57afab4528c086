package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/popperd/popper/compat"
	"github.com/popperd/popper/platform"
)

// The standalone daemon: popper ADDRESS, or systemd's listeners
// (Accept=no). It reads its configuration once, as qpopper's standalone
// build did, and again on SIGHUP; each session is a popper process of
// its own that receives the daemon's options on a pipe (--options-fd), so
// that a configuration file being edited, or broken, never reaches a
// session half-read.

// proxyHeaderTimeout bounds the wait for a PROXY header, which a load
// balancer sends at once.
const proxyHeaderTimeout = 10 * time.Second

// daemonSetup is what one configuration gives the daemon.
type daemonSetup struct {
	opts    *compat.Options
	options []byte // opts as WriteOptions writes them, for the sessions
	configs []string
}

func newSetup(opts *compat.Options, configs []string) (*daemonSetup, error) {
	var b bytes.Buffer
	if err := opts.WriteOptions(&b); err != nil {
		return nil, err
	}
	return &daemonSetup{opts: opts, options: b.Bytes(), configs: configs}, nil
}

// policy is the limits and PROXY trust the options ask for.
func (s *daemonSetup) policy() platform.DaemonPolicy {
	p := platform.DaemonPolicy{
		MaxSessions:   s.opts.MaxSessions,
		MaxPerAddress: s.opts.MaxSessionsPerAddress,
		ProxyTimeout:  proxyHeaderTimeout,
	}
	if s.opts.ProxyProtocol {
		p.ProxyFrom, _ = compat.ParseAddrList(s.opts.ProxyTrusted)
	}
	return p
}

// loadSetup reads the command line and the configuration files it names,
// as at start and on SIGHUP; problems are what --check-config reports.
func loadSetup(argv []string) (*daemonSetup, []string) {
	opts := compat.DefaultOptions()
	inv, err := compat.ParseArgs(argv[1:], opts, func(path string) []*compat.ConfigError {
		return compat.LoadConfig(path, openAsInvoker, opts, compat.Init)
	})
	if err != nil {
		return nil, []string{err.Error()}
	}
	var problems []string
	for _, e := range inv.ConfigErrors {
		problems = append(problems, e.Error())
	}
	if len(problems) == 0 {
		problems = authProblems(opts)
	}
	if len(problems) > 0 {
		return nil, problems
	}
	s, err := newSetup(opts, inv.ConfigFiles)
	if err != nil {
		return nil, []string{err.Error()}
	}
	return s, nil
}

// runDaemon serves ls (nil: listen on addr) until SIGTERM or SIGINT.
// reload, when not nil, reads the configuration again on SIGHUP.
func runDaemon(addr string, ls []net.Listener, setup *daemonSetup, reload func() (*daemonSetup, []string), log platform.Logger) int {
	fail := func(err error) int {
		log.Notice(err.Error())
		if !platform.StderrIsConnection() {
			fmt.Fprintln(os.Stderr, "popper:", err)
		}
		platform.Detached(err)
		return 1
	}
	if ls == nil {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fail(errors.New(compat.ListenFailedLine(addr, err)))
		}
		ls = []net.Listener{ln}
	}
	exe, err := os.Executable()
	if err != nil {
		return fail(errors.New(compat.NoExecutableLine(err)))
	}
	if setup.opts.PidFile != "" {
		if err := platform.WritePidFile(setup.opts.PidFile); err != nil {
			return fail(errors.New(compat.PidFileLine(setup.opts.PidFile, err)))
		}
		defer platform.RemovePidFile(setup.opts.PidFile)
	}

	var mu sync.Mutex // guards setup
	current := func() *daemonSetup {
		mu.Lock()
		defer mu.Unlock()
		return setup
	}
	d := &platform.Daemon{
		Start: func(conn net.Conn, client netip.AddrPort) (*os.Process, error) {
			return startSession(exe, current().options, conn, client)
		},
		Refused: func(conn net.Conn, client netip.AddrPort, why platform.Limited, running, max int) {
			l := compat.LimitSessions
			if why == platform.LimitedPerAddress {
				l = compat.LimitPerAddress
			}
			conn.Write([]byte(compat.LimitReply(l)))
			log.Notice(compat.LimitLine(l, client.Addr().String(), running, max))
		},
		BadProxy: func(peer netip.AddrPort, err error) {
			log.Notice(compat.ProxyLine(peer.Addr().String(), err))
		},
		StartFailed: func(conn net.Conn, client netip.AddrPort, err error) {
			conn.Write([]byte(compat.LimitReply(compat.LimitSystem)))
			log.Notice(compat.StartFailedLine(client.Addr().String(), err))
		},
		AcceptTrouble: func(err error, failures int, delay time.Duration) {
			log.Notice(compat.AcceptLine(err, delay, failures, err == nil))
		},
	}
	d.SetPolicy(setup.policy())

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	served := make(chan struct{})
	go func() { d.Serve(ls); close(served) }()

	var addrs []string
	for _, ln := range ls {
		addrs = append(addrs, ln.Addr().String())
	}
	log.Notice(compat.StartLine(popperVersion, version, addrs, os.Getpid(), setup.configs))
	platform.SdNotify("READY=1")
	platform.Detached(nil)

	for {
		var sig os.Signal
		select {
		case sig = <-sigs:
		case <-served:
			// Every listener failed for good (closed under us).
			log.Notice(compat.ListenersClosedLine)
			return 1
		}
		if sig == syscall.SIGHUP {
			if reload == nil {
				continue
			}
			platform.SdNotify("RELOADING=1")
			next, problems := reload()
			if next == nil {
				for _, p := range problems {
					log.Notice(p)
				}
				log.Notice(compat.ReloadFailedLine(len(problems)))
			} else {
				mu.Lock()
				setup = next
				mu.Unlock()
				d.SetPolicy(next.policy())
				log.Notice(compat.ReloadLine(next.configs))
			}
			platform.SdNotify("READY=1")
			continue
		}
		platform.SdNotify("STOPPING=1")
		grace := current().opts.ShutdownGrace
		d.Stop()
		<-served
		log.Notice(compat.StoppingLine(signalName(sig), d.Running(), grace))
		if !d.Wait(grace) {
			log.Notice(compat.GraceOverLine(d.Running()))
			// What a hangup does: update or restore, then exit.
			d.Signal(syscall.SIGTERM)
			d.Wait(time.Minute)
		}
		log.Notice(compat.StoppedLine(os.Getpid()))
		return 0
	}
}

func signalName(sig os.Signal) string {
	switch sig {
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGINT:
		return "SIGINT"
	}
	return sig.String()
}

// startSession starts popper for one connection: the daemon's options
// on descriptor 3, and the client's address when a PROXY header gave it.
func startSession(exe string, options []byte, conn net.Conn, client netip.AddrPort) (*os.Process, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	go func() {
		w.Write(options)
		w.Close()
	}()
	args := []string{os.Args[0], "--options-fd=3"}
	if client.IsValid() && client.String() != conn.RemoteAddr().String() {
		args = append(args, "--client="+client.String())
	}
	p, err := platform.StartSession(exe, args, os.Environ(), conn, r)
	if err != nil {
		w.Close()
	}
	return p, err
}

// sessionPeer is the client of an inetd-mode session: the daemon's
// --client, else the PROXY header a trusted load balancer sends first
// (inetd, xinetd or systemd Accept=yes behind HAProxy), else the peer.
func sessionPeer(conn net.Conn, opts *compat.Options, inv *compat.Invocation) (netip.AddrPort, error) {
	if inv.Client != "" {
		return netip.ParseAddrPort(inv.Client)
	}
	peer, _ := netip.ParseAddrPort(conn.RemoteAddr().String())
	if opts.ProxyProtocol {
		from, _ := compat.ParseAddrList(opts.ProxyTrusted)
		if platform.ProxyTrusted(from, peer.Addr()) {
			src, err := platform.ReadProxyHeader(conn, proxyHeaderTimeout)
			if err != nil {
				return peer, fmt.Errorf("%s", compat.ProxyLine(peer.Addr().String(), err))
			}
			if src.IsValid() {
				return src, nil
			}
		}
	}
	return peer, nil
}

// childArgsWithout drops the words --detach from argv, for the daemon
// Detach starts.
func childArgsWithout(argv []string, drop string) []string {
	var out []string
	for _, a := range argv {
		if a != drop && !strings.HasPrefix(a, drop+"=") {
			out = append(out, a)
		}
	}
	return out
}
