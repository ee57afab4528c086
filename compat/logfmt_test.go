package compat

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The user name rules are qpopper's: "(null)" only in the -ERR record
// (pop_msg.c); the timeout and excessive-input records print the empty
// name raw (popper.c's printf of p->user).
func TestLogLines(t *testing.T) {
	tests := []struct{ got, want string }{
		{StatsLine("bob", 2, 1234, 3, 5678901234, "client.example.org", "192.0.2.7"),
			"Stats: bob 2 1234 3 5678901234 client.example.org 192.0.2.7"},
		{ErrLine("", "yw-out-2526.google.com", "74.125.46.32", ReplyEOF),
			"(null) at yw-out-2526.google.com (74.125.46.32): -ERR POP EOF or I/O Error"},
		{ErrLine("bob", "h", "192.0.2.7", ReplyEOF), "bob at h (192.0.2.7): -ERR POP EOF or I/O Error"},
		{TimeoutLine("4.0.5", 120*time.Second, false, "bob", "h.example.org", "192.0.2.7"),
			"(v4.0.5) Timeout (120 secs) during nw read from bob at h.example.org (192.0.2.7)"},
		{TimeoutLine("4.0.5", 600*time.Second, false, "", "h", "192.0.2.7"),
			"(v4.0.5) Timeout (600 secs) during nw read from  at h (192.0.2.7)"},
		{TimeoutLine("4.0.5", 60*time.Second, true, "", "h", "192.0.2.7"),
			"(v4.0.5) Timeout (60 secs) during nw write to  at h (192.0.2.7)"},
		{ExcessiveInput("", "h", "192.0.2.7", 4096), "Excessive input from  h (192.0.2.7); discarded 4096 bytes"},
		{ExcessiveInput("bob", "h", "192.0.2.7", 1), "Excessive input from bob h (192.0.2.7); discarded 1 bytes"},
		{TimingLine("4.0.5", "", "h", false, 10, 0, 0), "(v4.0.5) Timing for @h (error) auth=10 init=0 clean=0"},
		{UserNameTruncated(70, strings.Repeat("a", 70)), "Excessive user name length (70); truncated to 64: " + strings.Repeat("a", 70)},
		{MaillockError(4, "/var/mail/u.lock", syscall.EEXIST), "maillock error 'Max tries exceeded' (4) on '/var/mail/u.lock': File exists (17)"},
		{KernelLockError("flock", "/var/mail/u", syscall.EAGAIN), "flock: '/var/mail/u': Resource temporarily unavailable (11)"},
		{ConfigFileFailed("/etc/qpopper.config"), "Unable to process config file /etc/qpopper.config"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("\n got %q\nwant %q", tt.got, tt.want)
		}
	}
}

func TestStrerror(t *testing.T) {
	text, n := Strerror(fmt.Errorf("wrapped: %w", syscall.ENOTSOCK))
	if text != "Socket operation on non-socket" || n != int(syscall.ENOTSOCK) {
		t.Errorf("Strerror = %q, %d", text, n)
	}
	if text, n := Strerror(errors.New("no errno")); text != "no errno" || n != 0 {
		t.Errorf("Strerror = %q, %d", text, n)
	}
}

func TestLoginLine(t *testing.T) {
	tests := []struct {
		template, want string
		ok             bool
	}{
		{DefaultLogLogin, `(v4.0.5) POP login by user "bob" at (client.example.org) 192.0.2.7`, true},
		{"%1 from %3 (%2) v%0 100%%", "", false},
		{"%1 %3", "bob 192.0.2.7", true},
		{"", "", true},
		{"login %", "", false},
		{"%s", "", false},
	}
	for _, tt := range tests {
		got, err := LoginLine(tt.template, "4.0.5", "bob", "client.example.org", "192.0.2.7")
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("LoginLine(%q) = %q, %v; want %q", tt.template, got, err, tt.want)
		}
	}
}

func TestTraceLine(t *testing.T) {
	at := time.Date(2026, time.March, 5, 9, 7, 3, 42_000_000, time.UTC)
	got := TraceLine(at, 4242, "(v4.0.5) Servicing request")
	want := "Mar  5 09:07:03.042 2026 [4242] (v4.0.5) Servicing request\nMar  5 09:07:03.042 2026 \n"
	if got != want {
		t.Errorf("\n got %q\nwant %q", got, want)
	}
}
