package compat

import (
	"fmt"
	"strings"
	"time"
)

// Texts of -ERR replies that end a session; each is also logged through
// ErrLine.
const (
	EOFText    = "POP EOF or I/O Error"
	HangupText = "SIGHUP or SIGPIPE flagged"
)

// nullUser is what C's printf writes for a user not known yet.
func nullUser(user string) string {
	if user == "" {
		return "(null)"
	}
	return user
}

// StatsLine is the statistics record written at update:
// "Stats: user msgs_deleted bytes_deleted msgs_left bytes_left host ip".
func StatsLine(user string, msgsDeleted int, bytesDeleted int64, msgsLeft int, bytesLeft int64, host, ip string) string {
	return fmt.Sprintf("Stats: %s %d %d %d %d %s %s", user, msgsDeleted, bytesDeleted, msgsLeft, bytesLeft, host, ip)
}

// LoginLine expands a log-login template: %0 version, %1 user, %2 client
// host, %3 client address. Any other "%" sequence is an error (qpopper
// logged a notice and wrote no record). An empty template gives "".
func LoginLine(template, version, user, host, ip string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(template); i++ {
		c := template[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+1 >= len(template) {
			return "", fmt.Errorf("log-login template %q ends with %%", template)
		}
		i++
		switch template[i] {
		case '0':
			b.WriteString(version)
		case '1':
			b.WriteString(user)
		case '2':
			b.WriteString(host)
		case '3':
			b.WriteString(ip)
		default:
			return "", fmt.Errorf("log-login template %q has unknown %%%c", template, template[i])
		}
	}
	return b.String(), nil
}

// ErrLine is the record of every -ERR reply:
// "user at host (ip): -ERR text", "(null)" before a user is known.
func ErrLine(user, host, ip, errText string) string {
	return fmt.Sprintf("%s at %s (%s): -ERR %s", nullUser(user), host, ip, errText)
}

// TimeoutLine is the record of an idle timeout.
func TimeoutLine(version string, timeout time.Duration, user, host, ip string) string {
	return fmt.Sprintf("(v%s) Timeout (%d secs) during nw read from %s at %s (%s)",
		version, int64(timeout/time.Second), nullUser(user), host, ip)
}

// ExcessiveInput is the record of an over-long input line whose rest was
// thrown away.
func ExcessiveInput(user, host, ip string, discarded int) string {
	return fmt.Sprintf("Excessive input from %s %s (%s); discarded %d bytes", nullUser(user), host, ip, discarded)
}

// TraceLine is one trace-file record, newlines included:
// "Mon dd hh:mm:ss.mmm yyyy [pid] message", then qpopper's second line
// holding only the time stamp and a blank.
func TraceLine(t time.Time, pid int, msg string) string {
	stamp := t.Format("Jan _2 15:04:05") + fmt.Sprintf(".%03d", t.Nanosecond()/int(time.Millisecond)) + t.Format(" 2006")
	return fmt.Sprintf("%s [%d] %s\n%s \n", stamp, pid, msg, stamp)
}
