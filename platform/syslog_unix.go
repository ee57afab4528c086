//go:build !solaris

package platform

import "log/syslog"

// openSystemLog uses log/syslog, which finds /dev/log, /var/run/syslog or
// /var/run/log and writes "ident[pid]: msg" as openlog(LOG_PID) does.
func openSystemLog(ident string, fac Facility) (Logger, error) {
	w, err := syslog.New(syslog.Priority(fac)|syslog.LOG_NOTICE, ident)
	if err != nil {
		return nil, err
	}
	return &syslogLogger{w: w}, nil
}

type syslogLogger struct{ w *syslog.Writer }

func (l *syslogLogger) Notice(msg string) { l.w.Notice(msg) }
func (l *syslogLogger) Info(msg string)   { l.w.Info(msg) }
func (l *syslogLogger) Debug(msg string)  { l.w.Debug(msg) }
func (l *syslogLogger) Close() error      { return l.w.Close() }

// try writes one record and says whether syslog took it (log/syslog
// dials again once when a write fails: a restarted syslogd is found).
func (l *syslogLogger) try(sev int, msg string) error {
	switch sev {
	case sevNotice:
		return l.w.Notice(msg)
	case sevInfo:
		return l.w.Info(msg)
	}
	return l.w.Debug(msg)
}
