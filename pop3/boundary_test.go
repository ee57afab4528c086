package pop3

import (
	"fmt"
	"strings"
	"testing"
)

// The line limit is 1024 octets with the line end: 1022+CRLF and
// 1023+LF are commands, 1023+CRLF is rejected whole.
func TestLineLimitBoundary(t *testing.T) {
	c, r, _ := start(t, nil, newMailbox())
	for _, tc := range []struct {
		line, want string
	}{
		{"USER " + strings.Repeat("a", 1017) + "\r\n", "+OK Password required"},
		{"USER " + strings.Repeat("b", 1018) + "\n", "+OK Password required"},
		{"USER " + strings.Repeat("c", 1018) + "\r\n", "-ERR Command line too long"},
		{"USER " + strings.Repeat("d", 250) + "\r\n", "+OK Password required"},
	} {
		fmt.Fprint(c, tc.line)
		if l := readLine(t, r); !strings.HasPrefix(l, tc.want) {
			t.Fatalf("%d-octet line: %q, want %q", len(tc.line), l, tc.want)
		}
	}
}
