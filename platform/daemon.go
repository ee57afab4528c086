package platform

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// The standalone daemon's accept loop: it accepts on every listener,
// learns each client's real address (from a PROXY header when the peer is
// a trusted load balancer), enforces the session limits and hands each
// admitted connection to a session process of its own, as inetd does.
// Nothing here writes to a client or a log: the caller's hooks do, with
// compat's texts.

// DaemonPolicy is what a configuration sets; SetPolicy swaps it at any
// time (SIGHUP), for connections accepted from then on.
type DaemonPolicy struct {
	MaxSessions   int // sessions at once; 0 = no limit
	MaxPerAddress int // sessions at once from one client address; 0 = no limit
	// ProxyFrom lists the peers that must open with a PROXY header
	// (v1 or v2); nil = PROXY off. Other peers are served as they are.
	ProxyFrom    []netip.Prefix
	ProxyTimeout time.Duration // for the header to arrive; 0 = 10 s
}

// Limited says which limit refused a connection.
type Limited int

const (
	LimitedSessions   Limited = iota + 1 // MaxSessions
	LimitedPerAddress                    // MaxPerAddress
)

// Daemon serves connections with session processes.
type Daemon struct {
	// Start hands conn, from client, to a new session process. It must
	// not keep conn: the daemon closes its copy once Start returns.
	Start func(conn net.Conn, client netip.AddrPort) (*os.Process, error)
	// Refused answers a connection a limit turned away (the connection
	// is closed after it); running is the count that was reached.
	Refused func(conn net.Conn, client netip.AddrPort, why Limited, running, max int)
	// BadProxy reports a trusted peer's connection without a valid PROXY
	// header; it is closed unserved.
	BadProxy func(peer netip.AddrPort, err error)
	// StartFailed answers a connection whose session could not be
	// started (no descriptors or processes left, say); the daemon then
	// pauses accepting as after an accept error.
	StartFailed func(conn net.Conn, client netip.AddrPort, err error)
	// AcceptTrouble reports accept errors: the first of a run and every
	// 100th, with the delay before the next try; err is nil when accept
	// works again after failures.
	AcceptTrouble func(err error, failures int, delay time.Duration)

	policy DaemonPolicy

	mu        sync.Mutex
	admitted  int                // connections being served or starting
	perAddr   map[netip.Addr]int // sessions per client address
	procs     map[*os.Process]bool
	listeners []net.Listener
	stopped   bool
	idle      *sync.Cond // signalled when admitted drops
	// pausedUntil holds accepting back after a session failed to start.
	pausedUntil time.Time
	loops       sync.WaitGroup
}

// SetPolicy sets the limits and PROXY trust for new connections.
func (d *Daemon) SetPolicy(p DaemonPolicy) {
	d.mu.Lock()
	d.policy = p
	d.mu.Unlock()
}

func (d *Daemon) init() {
	if d.perAddr == nil {
		d.perAddr = map[netip.Addr]int{}
		d.procs = map[*os.Process]bool{}
		d.idle = sync.NewCond(&d.mu)
	}
}

// Serve accepts on every listener until Stop; it returns once all accept
// loops have ended (sessions may still run: see Wait).
func (d *Daemon) Serve(ls []net.Listener) {
	d.mu.Lock()
	d.init()
	d.listeners = append(d.listeners, ls...)
	stopped := d.stopped
	d.mu.Unlock()
	if stopped {
		for _, ln := range ls {
			ln.Close()
		}
		return
	}
	for _, ln := range ls {
		d.loops.Add(1)
		go d.acceptLoop(ln)
	}
	d.loops.Wait()
}

// acceptLoop is net/http's: a failed accept (out of descriptors, say)
// is retried after 5 ms, doubling up to 1 s, and never ends the daemon;
// only Stop does.
func (d *Daemon) acceptLoop(ln net.Listener) {
	defer d.loops.Done()
	var delay time.Duration
	failures := 0
	for {
		if p := d.pausedFor(); p > 0 {
			time.Sleep(p)
		}
		c, err := ln.Accept()
		if err != nil {
			if d.isStopped() || errors.Is(err, net.ErrClosed) {
				return
			}
			failures++
			if delay == 0 {
				delay = 5 * time.Millisecond
			} else if delay *= 2; delay > time.Second {
				delay = time.Second
			}
			if d.AcceptTrouble != nil && (failures == 1 || failures%100 == 0) {
				d.AcceptTrouble(err, failures, delay)
			}
			time.Sleep(delay)
			continue
		}
		if failures > 0 && d.AcceptTrouble != nil {
			d.AcceptTrouble(nil, failures, 0)
		}
		delay, failures = 0, 0
		go d.serveConn(c)
	}
}

// pause makes the accept loops wait a while before their next accept:
// a session that could not start for want of resources will not start
// a moment later either.
func (d *Daemon) pause() {
	d.mu.Lock()
	d.pausedUntil = time.Now().Add(100 * time.Millisecond)
	d.mu.Unlock()
}

func (d *Daemon) pausedFor() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	return time.Until(d.pausedUntil)
}

func (d *Daemon) isStopped() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stopped
}

// serveConn admits one connection: the global limit first (before a
// PROXY header is waited for, so that stalled headers are bounded too),
// then the per-address limit on the real client address.
func (d *Daemon) serveConn(c net.Conn) {
	defer c.Close()
	peer := addrPortOf(c.RemoteAddr())
	d.mu.Lock()
	p := d.policy
	if p.MaxSessions > 0 && d.admitted >= p.MaxSessions {
		n := d.admitted
		d.mu.Unlock()
		d.refuse(c, peer, LimitedSessions, n, p.MaxSessions)
		return
	}
	d.admitted++
	d.mu.Unlock()
	admitted := true
	defer func() {
		if admitted {
			d.release()
		}
	}()

	client := peer
	if ProxyTrusted(p.ProxyFrom, peer.Addr()) {
		timeout := p.ProxyTimeout
		if timeout <= 0 {
			timeout = 10 * time.Second
		}
		src, err := ReadProxyHeader(c, timeout)
		if err != nil {
			if d.BadProxy != nil {
				d.BadProxy(peer, err)
			}
			return
		}
		if src.IsValid() {
			client = src
		}
	}
	addr := client.Addr().Unmap()
	d.mu.Lock()
	if p.MaxPerAddress > 0 && d.perAddr[addr] >= p.MaxPerAddress {
		n := d.perAddr[addr]
		d.mu.Unlock()
		// Its global slot is given back before the refusal is sent: a
		// client that reads it and connects again must find it free.
		admitted = false
		d.release()
		d.refuse(c, client, LimitedPerAddress, n, p.MaxPerAddress)
		return
	}
	d.perAddr[addr]++
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		if d.perAddr[addr]--; d.perAddr[addr] <= 0 {
			delete(d.perAddr, addr)
		}
		d.mu.Unlock()
	}()

	proc, err := d.Start(c, client)
	if err != nil {
		if d.StartFailed != nil {
			c.SetDeadline(time.Now().Add(5 * time.Second))
			d.StartFailed(c, client, err)
		}
		d.pause()
		return
	}
	c.Close()
	d.mu.Lock()
	d.procs[proc] = true
	d.mu.Unlock()
	proc.Wait()
	d.mu.Lock()
	delete(d.procs, proc)
	d.mu.Unlock()
}

func (d *Daemon) refuse(c net.Conn, client netip.AddrPort, why Limited, running, max int) {
	if d.Refused != nil {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		d.Refused(c, client, why, running, max)
	}
}

func (d *Daemon) release() {
	d.mu.Lock()
	d.admitted--
	d.idle.Broadcast()
	d.mu.Unlock()
}

// Running is the number of connections being served.
func (d *Daemon) Running() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.admitted
}

// Stop closes the listeners: no connection is accepted from now on.
// Sessions go on.
func (d *Daemon) Stop() {
	d.mu.Lock()
	d.init()
	d.stopped = true
	ls := d.listeners
	d.mu.Unlock()
	for _, ln := range ls {
		ln.Close()
	}
}

// Wait waits up to timeout for every session to end, and reports
// whether they have.
func (d *Daemon) Wait(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	timer := time.AfterFunc(timeout, func() {
		d.mu.Lock()
		d.idle.Broadcast()
		d.mu.Unlock()
	})
	defer timer.Stop()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.init()
	for d.admitted > 0 && time.Now().Before(deadline) {
		d.idle.Wait()
	}
	return d.admitted == 0
}

// Signal sends sig to every session process.
func (d *Daemon) Signal(sig os.Signal) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for p := range d.procs {
		p.Signal(sig)
	}
}

// addrPortOf is a connection address as netip, or the zero value.
func addrPortOf(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	if a != nil {
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			return ap
		}
	}
	return netip.AddrPort{}
}

// StartSession runs a session process for conn, as inetd would: exe
// with args, the connection on descriptors 0 and 1, standard error
// inherited, extra as descriptors 3 on. The process gets a process group
// of its own, so that a terminal's ^C reaches only the daemon, which ends
// sessions in order.
func StartSession(exe string, args, env []string, conn net.Conn, extra ...*os.File) (*os.Process, error) {
	fc, ok := conn.(interface{ File() (*os.File, error) })
	if !ok {
		return nil, errors.New("connection has no descriptor to hand over")
	}
	f, err := fc.File()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(exe)
	cmd.Args = args
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = f, f, os.Stderr
	cmd.ExtraFiles = extra
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return cmd.Process, nil
}
