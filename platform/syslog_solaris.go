//go:build solaris

package platform

import (
	"errors"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// On illumos and Solaris /dev/log is a STREAMS device, not a socket, so
// log/syslog cannot reach syslogd. libc syslog(3C) instead putmsg()s each
// record to /dev/conslog; this does the same (platforms.md §6).
//
// Not yet run on a real illumos host: the log_ctl layout follows
// <sys/strlog.h> but is unverified at run time.
func openSystemLog(ident string, fac Facility) (Logger, error) {
	fd, err := unix.Open("/dev/conslog", unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: "/dev/conslog", Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR {
		unix.Close(fd)
		return nil, errors.New("/dev/conslog is not a character device")
	}
	return &conslogLogger{fd: fd, ident: ident, fac: fac, pid: os.Getpid(),
		fallback: StderrLogger(ident)}, nil
}

type conslogLogger struct {
	mu       sync.Mutex
	fd       int
	ident    string
	fac      Facility
	pid      int
	fallback Logger
}

func (l *conslogLogger) send(sev int, msg string, toFallback func(string)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ctl, data := conslogMessage(int(l.fac)|sev, syslogLine(time.Now(), l.ident, l.pid, msg))
	if l.fd < 0 || unix.Putmsg(l.fd, ctl, data, 0) != nil {
		toFallback(msg) // never lose a record silently
	}
}

func (l *conslogLogger) Notice(msg string) { l.send(sevNotice, msg, l.fallback.Notice) }
func (l *conslogLogger) Info(msg string)   { l.send(sevInfo, msg, l.fallback.Info) }
func (l *conslogLogger) Debug(msg string)  { l.send(sevDebug, msg, l.fallback.Debug) }

func (l *conslogLogger) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fd < 0 {
		return nil
	}
	err := unix.Close(l.fd)
	l.fd = -1
	return err
}
