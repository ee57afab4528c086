//go:build !solaris

package platform

import (
	"log/syslog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The severities reach a syslog socket with the right priorities, through
// the same wrapper OpenSyslog returns (here dialled to a socket of ours).
func TestSyslogLoggerPriorities(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "log")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fac, _ := ParseFacility("local3")
	w, err := syslog.Dial("unixgram", sock, syslog.Priority(fac)|syslog.LOG_NOTICE, "popper")
	if err != nil {
		t.Fatal(err)
	}
	var l Logger = &syslogLogger{w: w}
	defer l.Close()
	l.Notice("n")
	l.Info("i")
	l.Debug("d")
	buf := make([]byte, 2048)
	for _, want := range []string{`^<157>.* popper\[\d+\]: n\n?$`, `^<158>.* popper\[\d+\]: i\n?$`, `^<159>.* popper\[\d+\]: d\n?$`} {
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(want).Match(buf[:n]) {
			t.Errorf("got %q, want %s", buf[:n], want)
		}
	}
}

// One record to the real system log when there is one; without one,
// OpenSyslog must report an error so the caller falls back to stderr.
func TestOpenSyslog(t *testing.T) {
	haveLog := false
	for _, p := range []string{"/dev/log", "/var/run/syslog", "/var/run/log"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode()&os.ModeSocket != 0 {
			haveLog = true
		}
	}
	l, err := OpenSyslog("popper-platform-test", "mail")
	if !haveLog {
		if err == nil || l != nil {
			t.Fatalf("no system log socket, yet OpenSyslog = %v, %v", l, err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	l.Debug("platform test: OpenSyslog works")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// When the system log stops taking records (syslogd gone), Failover
// hands each one to the fallback, and asks for the fallback only once.
func TestFailoverWhenSyslogGoes(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "log")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	w, err := syslog.Dial("unixgram", sock, syslog.LOG_MAIL|syslog.LOG_NOTICE, "popper")
	if err != nil {
		t.Fatal(err)
	}
	var fb strings.Builder
	asked := 0
	l := Failover(&syslogLogger{w: w}, func(err error) Logger {
		asked++
		fb.WriteString("fallback because " + err.Error() + "\n")
		return newWriterLogger(&fb, "popper")
	})
	l.Notice("to syslog")
	buf := make([]byte, 512)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := conn.Read(buf); err != nil || !strings.Contains(string(buf[:n]), "to syslog") {
		t.Fatalf("syslog got %q, %v", buf[:n], err)
	}
	conn.Close()
	os.Remove(sock)
	l.Notice("first lost")
	l.Info("second lost")
	if asked != 1 || !strings.Contains(fb.String(), "first lost") || !strings.Contains(fb.String(), "second lost") {
		t.Fatalf("fallback asked %d times; it got:\n%s", asked, fb.String())
	}
	if strings.Contains(fb.String(), "to syslog") {
		t.Error("a record syslog took went to the fallback too")
	}
	// A fallback of nil drops records without failing.
	Failover(&syslogLogger{w: w}, func(error) Logger { return nil }).Notice("dropped")
}
