package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/popperd/popper/compat"
)

// TestServiceFilesCommandLines reads every popper command line in the
// service files scripts/install installs (systemd units, SMF manifests,
// rc.d scripts, inetd.conf, xinetd) and checks that popper's command
// line parser accepts it.
func TestServiceFilesCommandLines(t *testing.T) {
	var lines []string // popper's arguments, one command line each
	add := func(args string) {
		if args != "" && (args[0] == '-' || args[0] >= '0' && args[0] <= '9') {
			lines = append(lines, args) // not "popper ]" of a shell test
		}
	}
	read := func(pattern string) map[string]string {
		files, _ := filepath.Glob(filepath.Join("..", "..", "scripts", pattern))
		out := map[string]string{}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out[f] = string(b)
		}
		return out
	}
	// The arguments up to a redirection, or to the end of an SMF exec="".
	popperCall := regexp.MustCompile(`(?m)/sbin/popper\s+([^\n>|]*?)\s*(?:"\s+timeout_seconds|$|[>|])`)
	for f, text := range read("systemd/*") {
		for _, m := range regexp.MustCompile(`(?m)^ExecStart=\S+\s+(.*)$`).FindAllStringSubmatch(text, -1) {
			add(m[1])
		}
		if strings.HasSuffix(f, ".service") && !strings.Contains(text, "ExecStart=") {
			t.Errorf("%s has no ExecStart", f)
		}
	}
	for _, text := range read("smf/*") {
		for _, m := range popperCall.FindAllStringSubmatch(text, -1) {
			add(m[1])
		}
	}
	for _, text := range read("rc.d/*") {
		for _, m := range regexp.MustCompile(`(?m)_flags:?="([^"]*)"`).FindAllStringSubmatch(text, -1) {
			add(m[1])
		}
		for _, m := range regexp.MustCompile(`(?m)^command_args="([^"]*)"`).FindAllStringSubmatch(text, -1) {
			add(strings.ReplaceAll(m[1], "${pidfile}", "/var/run/popperd.pid"))
		}
		for _, m := range popperCall.FindAllStringSubmatch(text, -1) {
			add(m[1])
		}
	}
	for _, text := range read("inetd.conf") {
		for _, l := range strings.Split(text, "\n") {
			l = strings.TrimPrefix(l, "#")
			if f := strings.Fields(l); len(f) > 7 && f[1] == "stream" && f[6] == "popper" {
				add(strings.Join(f[7:], " "))
			}
		}
	}
	for _, text := range read("xinetd.d/*") {
		if m := regexp.MustCompile(`server_args\s*=\s*(.*)`).FindStringSubmatch(text); m != nil {
			add(m[1])
		}
	}
	if len(lines) < 12 {
		t.Fatalf("found only %d command lines: %q", len(lines), lines)
	}
	for _, l := range lines {
		var args []string
		for _, w := range strings.Fields(l) {
			args = append(args, strings.Trim(w, `"`))
		}
		// The configuration files are the site's: only the command line
		// itself is checked here.
		if _, err := compat.ParseArgs(args, compat.DefaultOptions(), nil); err != nil {
			t.Errorf("%q: %v", l, err)
		}
	}
}
