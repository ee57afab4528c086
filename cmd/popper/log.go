package main

import (
	"os"
	"sync"
	"time"

	"github.com/popperd/popper/compat"
	"github.com/popperd/popper/platform"
)

// openLog returns where log records go: the trace file when one is set
// (-t, tracefile), else syslog under the program's name with the
// configured facility. Debug records are kept only with -d/debug.
func openLog(ident string, opts *compat.Options) platform.Logger {
	var l platform.Logger
	var refused error
	if opts.TraceFile != "" {
		// Opened as root: never through a symbolic link, never a file
		// someone else owns or could have replaced (qpopper's trace file
		// let root append to any file: CVE-2005-1151's class).
		f, err := platform.OpenAdminFile(opts.TraceFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0600)
		if err == nil {
			l = &traceLogger{f: f}
		} else {
			refused = err
		}
	}
	if l == nil {
		sl, err := platform.OpenSyslog(ident, opts.LogFacility)
		if err != nil {
			l = fallbackLog(ident, err)
		} else {
			l = platform.Failover(sl, func(err error) platform.Logger { return fallbackLog(ident, err) })
		}
	}
	if refused != nil {
		l.Notice(compat.TraceFileRefused(refused))
	}
	if !opts.Debug {
		l = noDebug{l}
	}
	return l
}

// fallbackNoted is set in the environment once a process has said that
// the system log is unavailable, so that the daemon's sessions, which
// inherit its standard error, do not say it again each.
const fallbackNoted = "POPPER_SYSLOG_FALLBACK_NOTED"

// fallbackLog is where records go when the system log cannot take them:
// standard error, saying so once; nowhere when standard error is the
// client's connection (inetd), where -t names the place instead.
func fallbackLog(ident string, err error) platform.Logger {
	if platform.StderrIsConnection() {
		return nopLogger{}
	}
	l := platform.StderrLogger(ident)
	if os.Getenv(fallbackNoted) != "" {
		return l
	}
	// Said before the first record, not before there is one: commands
	// that log nothing print nothing.
	return &noteFirst{Logger: l, note: compat.SyslogFallbackLine(err, "standard error")}
}

// noteFirst writes note before its first record.
type noteFirst struct {
	platform.Logger
	once sync.Once
	note string
}

func (n *noteFirst) first() {
	n.once.Do(func() {
		n.Logger.Notice(n.note)
		os.Setenv(fallbackNoted, "1")
	})
}

func (n *noteFirst) Notice(msg string) { n.first(); n.Logger.Notice(msg) }
func (n *noteFirst) Info(msg string)   { n.first(); n.Logger.Info(msg) }
func (n *noteFirst) Debug(msg string)  { n.first(); n.Logger.Debug(msg) }

// traceLogger writes qpopper's trace-file records.
type traceLogger struct {
	mu sync.Mutex
	f  *os.File
}

func (t *traceLogger) write(msg string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.f.WriteString(compat.TraceLine(time.Now(), os.Getpid(), msg))
}

func (t *traceLogger) Notice(msg string) { t.write(msg) }
func (t *traceLogger) Info(msg string)   { t.write(msg) }
func (t *traceLogger) Debug(msg string)  { t.write(msg) }
func (t *traceLogger) Close() error      { return t.f.Close() }

type nopLogger struct{}

func (nopLogger) Notice(string) {}
func (nopLogger) Info(string)   {}
func (nopLogger) Debug(string)  {}
func (nopLogger) Close() error  { return nil }

// noDebug drops debug records.
type noDebug struct{ platform.Logger }

func (noDebug) Debug(string) {}
