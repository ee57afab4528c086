package compat

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// The standalone daemon's texts: what a refused client is told and what
// the daemon logs. qpopper's standalone build had none of these; each is
// defined here once.

// ParseAddrList reads proxy-trusted: IP addresses and CIDR prefixes,
// separated by commas (blanks around them are allowed). An address is a
// prefix of its full length.
func ParseAddrList(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if p, err := netip.ParsePrefix(item); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(item)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("%q is neither an IP address nor a CIDR prefix", item)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// Limit is a session limit of the standalone daemon.
type Limit int

const (
	LimitSessions   Limit = iota + 1 // max-sessions
	LimitPerAddress                  // max-sessions-per-address
	LimitSystem                      // the system's: no descriptor or process for a session
)

// LimitReply is what a client refused by a session limit reads before
// the connection closes (RFC 2449 [SYS/TEMP]: try again later).
func LimitReply(l Limit) string {
	switch l {
	case LimitPerAddress:
		return "-ERR [SYS/TEMP] Too many sessions from your address; try again later.\r\n"
	case LimitSystem:
		return "-ERR [SYS/TEMP] Server out of resources; try again later.\r\n"
	}
	return "-ERR [SYS/TEMP] Too many sessions; try again later.\r\n"
}

// LimitLine is the log record of a connection refused by a limit.
func LimitLine(l Limit, client string, running, max int) string {
	if l == LimitPerAddress {
		return fmt.Sprintf("Connection from %s refused: %d sessions from this address (max-sessions-per-address %d)", client, running, max)
	}
	return fmt.Sprintf("Connection from %s refused: %d sessions running (max-sessions %d)", client, running, max)
}

// StartFailedLine is the log record of a session that could not be
// started (the client read LimitReply(LimitSystem)).
func StartFailedLine(client string, err error) string {
	return fmt.Sprintf("Connection from %s refused: cannot start a session: %v; Server out of resources", client, err)
}

// ProxyLine is the log record of a connection from a proxy-trusted
// address whose PROXY header was missing or bad: it is closed unserved.
func ProxyLine(from string, err error) string {
	return fmt.Sprintf("Connection from %s closed: no valid PROXY protocol header (proxy-trusted): %v", from, err)
}

// StartLine is logged once the daemon listens.
func StartLine(popperVersion, qpopperVersion string, addrs []string, pid int, configs []string) string {
	cfg := "no configuration file"
	if len(configs) > 0 {
		cfg = "config " + strings.Join(configs, ", ")
	}
	return fmt.Sprintf("popper %s (qpopper %s compatible) started: listening on %s, pid %d, %s",
		popperVersion, qpopperVersion, strings.Join(addrs, ", "), pid, cfg)
}

// StoppingLine is logged when a signal stops the daemon.
func StoppingLine(sig string, sessions int, grace time.Duration) string {
	return fmt.Sprintf("popper stopping on %s: no new sessions; waiting up to %d s for %d running", sig, int(grace/time.Second), sessions)
}

// GraceOverLine is logged when sessions outlast shutdown-grace.
func GraceOverLine(sessions int) string {
	return fmt.Sprintf("popper stopping: shutdown-grace is over; ending %d sessions as on a hangup (update or restore)", sessions)
}

// StoppedLine is the daemon's last record.
func StoppedLine(pid int) string { return fmt.Sprintf("popper stopped (pid %d)", pid) }

// ReloadLine is logged after SIGHUP read the configuration again.
func ReloadLine(configs []string) string {
	return fmt.Sprintf("Configuration re-read on SIGHUP (%s): new sessions use it", strings.Join(configs, ", "))
}

// ReloadFailedLine is logged, after each problem, when SIGHUP found the
// configuration broken.
func ReloadFailedLine(problems int) string {
	return fmt.Sprintf("Configuration not re-read on SIGHUP: %d problem(s); sessions keep the previous configuration", problems)
}

// AcceptLine is logged when accept fails (out of descriptors, say): the
// daemon keeps its listener and retries after delay, doubling it up to a
// second. recovered reports the end of such a run, after failures.
func AcceptLine(err error, delay time.Duration, failures int, recovered bool) string {
	if recovered {
		return fmt.Sprintf("accept works again after %d failure(s)", failures)
	}
	return fmt.Sprintf("accept: %v; retrying in %v (failure %d)", err, delay, failures)
}

// ListenFailedLine is logged, and printed, when the daemon cannot
// listen on its address.
func ListenFailedLine(addr string, err error) string {
	return fmt.Sprintf("Unable to listen on %s: %v", addr, err)
}

// NotStartedLine ends the list of configuration problems that keep the
// daemon from starting.
func NotStartedLine(problems int) string {
	return fmt.Sprintf("not started: %d problem(s) in the configuration (see popper --check-config)", problems)
}

// PidFileLine is logged when the pid file cannot be written.
func PidFileLine(path string, err error) string {
	return fmt.Sprintf("not started: cannot write the pid-file %s: %v", path, err)
}

// NoExecutableLine is logged when the daemon cannot find its own program
// to run sessions with.
func NoExecutableLine(err error) string {
	return fmt.Sprintf("not started: cannot find popper's own executable: %v", err)
}

// ListenersClosedLine is logged when every listener has failed for good.
const ListenersClosedLine = "popper stopping: all its listening sockets are closed"

// NoConnectionText is printed, on standard error, when popper is run
// with neither a connection on standard input nor an address to listen
// on: by hand, most likely.
const NoConnectionText = `popper: standard input is not a network connection.
popper expects to be started by inetd, xinetd, systemd or SMF with the
client's connection as standard input, or to be given an address to
listen on, as in "popper 110 -f /etc/qpopper.config" (see popper --help).`

// SyslogFallbackLine is written once, to the records' new destination,
// when the system log cannot be reached.
func SyslogFallbackLine(err error, where string) string {
	return fmt.Sprintf("System log unavailable (%v): log records go to %s", err, where)
}
