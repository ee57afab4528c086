package compat

import (
	"fmt"
	"strings"
	"time"
)

// The session's log records. qpopper wrote every one of them with
// printf, the user name as it stood in p->user: empty before USER, the
// name given to USER from then on, even when USER or PASS was refused.
// Only the record of a -ERR reply writes "(null)" for the empty name
// (pop_msg.c); the others print it raw, so "from  at host" has two
// blanks before USER.

// nullUser is the -ERR record's user: "(null)" before USER.
func nullUser(user string) string {
	if user == "" {
		return "(null)"
	}
	return user
}

// ErrLine is the record of every -ERR reply, errText being the reply
// without "-ERR ": "user at host (ip): -ERR text".
func ErrLine(user, host, ip, errText string) string {
	return fmt.Sprintf("%s at %s (%s): -ERR %s", nullUser(user), host, ip, errText)
}

// TimeoutLine is the record of an idle timeout (popper.c tgetline). A
// write that times out is popper's own twin of it ("during nw write to"):
// qpopper had no write timeout.
func TimeoutLine(version string, timeout time.Duration, write bool, user, host, ip string) string {
	during := "read from"
	if write {
		during = "write to"
	}
	return fmt.Sprintf("(v%s) Timeout (%d secs) during nw %s %s at %s (%s)",
		version, int64(timeout/time.Second), during, user, host, ip)
}

// ExcessiveInput is the record of an over-long input line whose rest was
// thrown away (popper.c getline).
func ExcessiveInput(user, host, ip string, discarded int) string {
	return fmt.Sprintf("Excessive input from %s %s (%s); discarded %d bytes", user, host, ip, discarded)
}

// UserNameTruncated is the WARNING record of a user name cut to
// MaxUserLen (pop_user.c): the length given, the length kept, the name
// as given (its first 100 bytes).
func UserNameTruncated(given int, name string) string {
	return fmt.Sprintf("Excessive user name length (%d); truncated to %d: %.100s", given, MaxUserLen, name)
}

// TimingLine is the timing record of a session (timing): whole seconds
// until authentication, opening the maildrop and the update; normal is
// false for a session that did not end with QUIT.
func TimingLine(version, user, host string, normal bool, auth, init, clean int64) string {
	end := "error"
	if normal {
		end = "normal"
	}
	return fmt.Sprintf("(v%s) Timing for %s@%s (%s) auth=%d init=%d clean=%d", version, user, host, end, auth, init, clean)
}

// ServicingLine is the debug record of a new connection (pop_init.c).
func ServicingLine(version, host, ip string) string {
	return fmt.Sprintf("(v%s) Servicing request from \"%s\" at %s", version, host, ip)
}

// TLSHandshakeFailed is the record of a TLS handshake that failed, on
// connect (alternate-port) or after STLS.
func TLSHandshakeFailed(err error) string {
	return fmt.Sprintf("TLS/SSL Handshake failed: %v", err)
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

// TraceLine is one trace-file record, newlines included:
// "Mon dd hh:mm:ss.mmm yyyy [pid] message", then qpopper's second line
// holding only the time stamp and a blank.
func TraceLine(t time.Time, pid int, msg string) string {
	stamp := t.Format("Jan _2 15:04:05") + fmt.Sprintf(".%03d", t.Nanosecond()/int(time.Millisecond)) + t.Format(" 2006")
	return fmt.Sprintf("%s [%d] %s\n%s \n", stamp, pid, msg, stamp)
}

// The maillock failures of qpopper's maillock.h, by code.
var maillockText = map[int]string{
	1: "User name too long",
	2: "Unable to create lockfile",
	3: "Unable to write pid into lockfile",
	4: "Max tries exceeded",
	5: "Other lock error",
	6: "Unable to lock lockfile",
}

// MaillockText is the text of a maillock error code.
func MaillockText(code int) string {
	if s, ok := maillockText[code]; ok {
		return s
	}
	return fmt.Sprintf("maillock error %d", code)
}

// MaillockError is qpopper's dotlock failure, to which a login's reply
// prefixes "[SYS/TEMP] ":
// "maillock error 'Max tries exceeded' (4) on '/var/mail/u.lock': File exists (17)".
func MaillockError(code int, lockPath string, err error) string {
	text, errno := Strerror(err)
	return fmt.Sprintf("maillock error '%s' (%d) on '%s': %s (%d)", MaillockText(code), code, lockPath, text, errno)
}

// KernelLockError is a failed kernel lock of the spool, in qpopper's
// shape: "flock: '/var/mail/u': Resource temporarily unavailable (11)".
func KernelLockError(kind, path string, err error) string {
	text, errno := Strerror(err)
	return fmt.Sprintf("%s: '%s': %s (%d)", kind, path, text, errno)
}

// InetdError is the record of a descriptor 0 that is not a connected
// socket (qpopper's pop_init.c).
func InetdError(err error) string {
	text, errno := Strerror(err)
	return fmt.Sprintf("Unable to obtain socket and address of client: %s (%d)", text, errno)
}

// ConfigFileFailed is what qpopper wrote on standard error, and exited,
// when a -f file had a bad line: under inetd the client read it.
func ConfigFileFailed(path string) string {
	return fmt.Sprintf("Unable to process config file %s", path)
}

// The session's own records, popper's.

// ReadMessageFailed: a message could not be read while XTND XLST listed
// its header.
func ReadMessageFailed(n int, user string, err error) string {
	return fmt.Sprintf("Error reading message %d of %s: %v", n, user, err)
}

// SendMessageFailed: message n could not be sent whole; cut is true when
// the connection is then closed without the terminating line.
func SendMessageFailed(n int, user string, err error, cut bool) string {
	if cut {
		return fmt.Sprintf("Error sending message %d to %s: %v; connection closed before the end of the message", n, user, err)
	}
	return fmt.Sprintf("Error sending message %d to %s: %v", n, user, err)
}

// HashDirFailed: the hashed spool directories could not be made.
func HashDirFailed(user string, err error) string {
	return fmt.Sprintf("Unable to create hashed spool directory for %s: %v", user, err)
}

// ChangeUserFailed: the session could not take the user's identity.
func ChangeUserFailed(user string, err error) string {
	return fmt.Sprintf("Unable to change to user %s: %v", user, err)
}

// NotRootLine: popper runs without root and the user is another.
func NotRootLine(user string, uid, euid int) string {
	return fmt.Sprintf("Not root: cannot serve %s (uid %d) as uid %d", user, uid, euid)
}

// OptionsFileFailed: a per-user option file could not be read; spool
// tells the admin's spool-dir file from the user's own. err may be nil.
func OptionsFileFailed(spool bool, user string, err error) string {
	which := "user"
	if spool {
		which = "spool"
	}
	if err == nil {
		return fmt.Sprintf("Unable to process %s options file for user %s", which, user)
	}
	return fmt.Sprintf("Unable to process %s options file for user %s: %v", which, user, err)
}

// UpdateFailedLine: the update at QUIT or abort failed.
func UpdateFailedLine(user string, err error) string {
	return fmt.Sprintf("Update of %s failed: %v", user, err)
}

// TraceFileRefused: the trace file could not be used; records go to the
// system log.
func TraceFileRefused(err error) string { return fmt.Sprintf("Trace file not used: %v", err) }

// RecoveredLine and RecoveryFailedLine are --recover's records of one
// temp drop.
func RecoveredLine(drop, user, result string) string {
	return fmt.Sprintf("Recovered %s for %s: %s", drop, user, result)
}

func RecoveryFailedLine(drop string, err error) string {
	return fmt.Sprintf("Recovery of %s failed: %v", drop, err)
}

// TLSVersionRefused: tls-version asks for SSLv2 or SSLv3.
func TLSVersionRefused(version string) string {
	return fmt.Sprintf("tls-version %s is not offered (broken, RFC 6176 and RFC 7568); TLS 1.0 and later are", version)
}

// UnknownCiphers: tls-cipher-list names ciphers Go's TLS does not have.
func UnknownCiphers(names []string) string {
	return fmt.Sprintf("tls-cipher-list: ciphers not known to popper ignored: %s", strings.Join(names, " "))
}

// SessionEnded is the debug record of a session that ended without QUIT.
func SessionEnded(err error) string { return fmt.Sprintf("session ended: %v", err) }

// The login policy's records.
const (
	// qpopper's record of a failed PASS: user, client host, client address.
	LogFailedLogin = "[AUTH] Failed attempted login to %s from host (%s) %s"
	// popper: a connection closed after too many failed logins: count,
	// user, client host, client address.
	LogTooManyFailures = "[AUTH] %d failed logins, the last for %s, from host (%s) %s; connection closed"
	// qpopper's INFO record of an APOP attempt: user.
	LogAPOP = "apop \"%s\""
	// popper: why a login failed, for the admin only: user, reason.
	LogLoginDetail = "[AUTH] Login of %s refused: %v"
	// popper: the APOP database cannot be used: why.
	LogAPOPDatabase = "APOP database: %v"
)
