package platform

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Logger is where popper's log records go. qpopper logs almost everything
// at NOTICE (POP_PRIORITY), a few records at INFO and DEBUG.
type Logger interface {
	Notice(msg string)
	Info(msg string)
	Debug(msg string)
	Close() error
}

// Facility is a syslog facility code, already shifted (LOG_MAIL = 2<<3).
type Facility int

// Syslog severities used by Logger.
const (
	sevNotice = 5
	sevInfo   = 6
	sevDebug  = 7
)

var facilities = map[string]Facility{
	"mail":   2 << 3,
	"local0": 16 << 3,
	"local1": 17 << 3,
	"local2": 18 << 3,
	"local3": 19 << 3,
	"local4": 20 << 3,
	"local5": 21 << 3,
	"local6": 22 << 3,
	"local7": 23 << 3,
}

// ParseFacility parses a facility mnemonic: mail or local0 to local7, in
// any case, with or without a "LOG_" prefix.
func ParseFacility(name string) (Facility, error) {
	key := strings.TrimPrefix(strings.ToLower(name), "log_")
	if f, ok := facilities[key]; ok {
		return f, nil
	}
	return 0, fmt.Errorf("unknown syslog facility %q (want mail or local0..local7)", name)
}

// OpenSyslog connects to the system log as ident[pid] with the given
// facility. If the system log cannot be reached it returns an error;
// callers then log with StderrLogger(ident).
func OpenSyslog(ident, facility string) (Logger, error) {
	fac, err := ParseFacility(facility)
	if err != nil {
		return nil, err
	}
	if ident == "" {
		ident = "popper"
	}
	return openSystemLog(ident, fac)
}

// Failover returns a Logger that writes to primary, a system log from
// OpenSyslog, and sends each record the system log does not take to the
// Logger fallback returns; fallback is called once, with the first
// error (it is where the caller says, once, that records go elsewhere).
// A fallback that returns nil drops the records: under inetd, standard
// error is the client's connection.
func Failover(primary Logger, fallback func(err error) Logger) Logger {
	t, ok := primary.(tryLogger)
	if !ok {
		return primary
	}
	return &failover{primary: primary, t: t, fallback: fallback}
}

// tryLogger is a Logger that reports whether a record was taken.
type tryLogger interface {
	try(sev int, msg string) error
}

type failover struct {
	primary  Logger
	t        tryLogger
	fallback func(error) Logger

	mu  sync.Mutex
	fb  Logger
	got bool
}

func (f *failover) send(sev int, msg string) {
	err := f.t.try(sev, msg)
	if err == nil {
		return
	}
	f.mu.Lock()
	if !f.got {
		f.got = true
		f.fb = f.fallback(err)
	}
	fb := f.fb
	f.mu.Unlock()
	if fb != nil {
		fb.Notice(msg)
	}
}

func (f *failover) Notice(msg string) { f.send(sevNotice, msg) }
func (f *failover) Info(msg string)   { f.send(sevInfo, msg) }
func (f *failover) Debug(msg string)  { f.send(sevDebug, msg) }
func (f *failover) Close() error      { return f.primary.Close() }

// syslogLine is the text libc syslog(3) builds for LOG_PID:
// "Nov 28 22:05:00 ident[pid]: msg".
func syslogLine(now time.Time, ident string, pid int, msg string) string {
	return fmt.Sprintf("%s %s[%d]: %s", now.Format(time.Stamp), ident, pid, strings.TrimRight(msg, "\n"))
}

// StderrLogger writes timestamped syslog-style lines to standard error. It
// is the fallback when no system log can be reached, and what tests use.
func StderrLogger(ident string) Logger { return newWriterLogger(os.Stderr, ident) }

type writerLogger struct {
	mu    sync.Mutex
	w     io.Writer
	ident string
	pid   int
	now   func() time.Time
}

func newWriterLogger(w io.Writer, ident string) *writerLogger {
	return &writerLogger{w: w, ident: ident, pid: os.Getpid(), now: time.Now}
}

func (l *writerLogger) write(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	io.WriteString(l.w, syslogLine(l.now(), l.ident, l.pid, msg)+"\n")
}

func (l *writerLogger) Notice(msg string) { l.write(msg) }
func (l *writerLogger) Info(msg string)   { l.write(msg) }
func (l *writerLogger) Debug(msg string)  { l.write(msg) }
func (l *writerLogger) Close() error      { return nil }

// conslog message layout (illumos <sys/strlog.h> struct log_ctl, which
// uses 32-bit ltime/ttime under _LP64 so it is 24 bytes everywhere):
//
//	short mid; short sid; char level; [pad]; short flags;
//	clock32_t ltime; time32_t ttime; int seq_no; int pri;
const (
	logCtlSize  = 24
	slConsole   = 0x10 // SL_CONSOLE, what libc syslog sets
	logMaxPS    = 1024 // LOG_MAXPS: the log driver refuses longer data
	offFlags    = 6
	offPriority = 20
)

// conslogMessage builds the control and data parts of the putmsg(2) that
// libc vsyslog sends to /dev/conslog: a log_ctl with pri and SL_CONSOLE,
// and the NUL-terminated line ending in a newline, at most LOG_MAXPS bytes.
func conslogMessage(pri int, line string) (ctl, data []byte) {
	ctl = make([]byte, logCtlSize)
	binary.NativeEndian.PutUint16(ctl[offFlags:], slConsole)
	binary.NativeEndian.PutUint32(ctl[offPriority:], uint32(pri))
	if !strings.HasSuffix(line, "\n") {
		line += "\n"
	}
	if len(line)+1 > logMaxPS {
		line = line[:logMaxPS-2] + "\n"
	}
	data = append([]byte(line), 0)
	return ctl, data
}
