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
// record to /dev/conslog; this does the same (doc/platforms.md, "The
// system log").
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
	return &conslogLogger{fd: fd, ident: ident, fac: fac, pid: os.Getpid()}, nil
}

type conslogLogger struct {
	mu    sync.Mutex
	fd    int
	ident string
	fac   Facility
	pid   int
}

// try sends one record and says whether the log driver took it.
func (l *conslogLogger) try(sev int, msg string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fd < 0 {
		return errors.New("/dev/conslog is closed")
	}
	ctl, data := conslogMessage(int(l.fac)|sev, syslogLine(time.Now(), l.ident, l.pid, msg))
	return unix.Putmsg(l.fd, ctl, data, 0)
}

func (l *conslogLogger) Notice(msg string) { l.try(sevNotice, msg) }
func (l *conslogLogger) Info(msg string)   { l.try(sevInfo, msg) }
func (l *conslogLogger) Debug(msg string)  { l.try(sevDebug, msg) }

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
