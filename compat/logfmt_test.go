package compat

import (
	"testing"
	"time"
)

func TestLogLines(t *testing.T) {
	tests := []struct{ got, want string }{
		{StatsLine("bob", 2, 1234, 3, 5678901234, "client.example.org", "192.0.2.7"),
			"Stats: bob 2 1234 3 5678901234 client.example.org 192.0.2.7"},
		{ErrLine("", "yw-out-2526.google.com", "74.125.46.32", EOFText),
			"(null) at yw-out-2526.google.com (74.125.46.32): -ERR POP EOF or I/O Error"},
		{ErrLine("bob", "h", "192.0.2.7", HangupText), "bob at h (192.0.2.7): -ERR SIGHUP or SIGPIPE flagged"},
		{TimeoutLine("4.0.5", 120*time.Second, "bob", "h.example.org", "192.0.2.7"),
			"(v4.0.5) Timeout (120 secs) during nw read from bob at h.example.org (192.0.2.7)"},
		{TimeoutLine("4.0.5", 600*time.Second, "", "h", "192.0.2.7"),
			"(v4.0.5) Timeout (600 secs) during nw read from (null) at h (192.0.2.7)"},
		{ExcessiveInput("", "h", "192.0.2.7", 4096), "Excessive input from (null) h (192.0.2.7); discarded 4096 bytes"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("\n got %q\nwant %q", tt.got, tt.want)
		}
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
