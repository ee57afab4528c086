package platform

import (
	"encoding/binary"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

func init() {
	helpers["stderrlog"] = func(args []string) error {
		l := StderrLogger(args[0])
		l.Notice(args[1])
		return l.Close()
	}
}

func TestParseFacility(t *testing.T) {
	good := map[string]Facility{"mail": 16, "MAIL": 16, "LOG_MAIL": 16, "local0": 128, "local7": 184, "Local3": 152}
	for in, want := range good {
		if got, err := ParseFacility(in); err != nil || got != want {
			t.Errorf("ParseFacility(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "user", "local8", "daemon", "mail "} {
		if _, err := ParseFacility(in); err == nil {
			t.Errorf("ParseFacility(%q) accepted", in)
		}
	}
	if _, err := OpenSyslog("popper", "kern"); err == nil {
		t.Error("OpenSyslog accepted facility kern")
	}
}

func TestSyslogLine(t *testing.T) {
	when := time.Date(2026, 11, 8, 9, 5, 7, 0, time.Local)
	got := syslogLine(when, "popper", 4242, "Stats: u 0 0 1 480 host 10.0.0.1\n")
	if want := "Nov  8 09:05:07 popper[4242]: Stats: u 0 0 1 480 host 10.0.0.1"; got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestWriterLogger(t *testing.T) {
	var b strings.Builder
	l := newWriterLogger(&b, "in.qpopper")
	l.now = func() time.Time { return time.Date(2026, 11, 28, 22, 5, 0, 0, time.Local) }
	l.Notice("one")
	l.Info("two")
	l.Debug("three")
	want := fmt.Sprintf("Nov 28 22:05:00 in.qpopper[%d]: one\nNov 28 22:05:00 in.qpopper[%[1]d]: two\nNov 28 22:05:00 in.qpopper[%[1]d]: three\n", os.Getpid())
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

func TestStderrLoggerInChild(t *testing.T) {
	cmd := helperCommand(t, "stderrlog", "popper-test", "(v4.0.5) POP login by user \"u\" at (h) 1.2.3.4")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	re := fmt.Sprintf(`^[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d popper-test\[%d\]: \(v4\.0\.5\) POP login by user "u" at \(h\) 1\.2\.3\.4\n$`, cmd.Process.Pid)
	if !regexp.MustCompile(re).MatchString(stderr.String()) {
		t.Errorf("stderr %q does not match %s", stderr.String(), re)
	}
}

func TestConslogMessage(t *testing.T) {
	ctl, data := conslogMessage(16|5, "Nov 28 22:05:00 popper[7]: hello")
	if len(ctl) != 24 {
		t.Fatalf("log_ctl is %d bytes, want 24", len(ctl))
	}
	if f := binary.NativeEndian.Uint16(ctl[6:]); f != 0x10 {
		t.Errorf("flags %#x, want SL_CONSOLE", f)
	}
	if p := binary.NativeEndian.Uint32(ctl[20:]); p != 21 {
		t.Errorf("pri %d, want 21 (mail.notice)", p)
	}
	for i, b := range ctl {
		if (i < 6 || (i >= 8 && i < 20)) && b != 0 {
			t.Errorf("byte %d of log_ctl is %d, want 0", i, b)
		}
	}
	if string(data) != "Nov 28 22:05:00 popper[7]: hello\n\x00" {
		t.Errorf("data %q", data)
	}
	_, data = conslogMessage(21, strings.Repeat("x", 5000))
	if len(data) != 1024 || !strings.HasSuffix(string(data), "x\n\x00") {
		t.Errorf("long record: %d bytes, ends %q", len(data), data[len(data)-3:])
	}
}
