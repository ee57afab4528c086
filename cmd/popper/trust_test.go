package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Attacks of a local user with a shell on the mail host, against the
// files popper opens as root. Each runs the real binary.

// plant makes path the attacker's (uid 65534): a symbolic link to
// symlinkTo, or a file with content.
func plant(t *testing.T, path string, symlinkTo string, content string) {
	t.Helper()
	if symlinkTo != "" {
		if err := os.Symlink(symlinkTo, path); err != nil {
			t.Fatal(err)
		}
		os.Lchown(path, 65534, 65534)
		return
	}
	writeFile(t, path, content, 0o666)
	os.Chown(path, 65534, 65534)
}

// TestTraceFileCannotBeRedirected: a trace file (-t) in a world-writable
// directory is a path any local user can prepare. A symbolic link there
// must not make root append to its target, and a file the attacker made
// must not receive root's records.
func TestTraceFileCannotBeRedirected(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: the attack is on files root opens")
	}
	s := newSite(t)
	public := filepath.Join(s.dir, "public")
	os.Mkdir(public, 0o755)
	os.Chmod(public, os.ModeSticky|0o777) // like /tmp
	victim := filepath.Join(s.dir, "root-only")
	writeFile(t, victim, "root's file\n", 0o600)
	for _, tc := range []struct{ name, link, content string }{
		{"symlink", victim, ""},
		{"planted file", "", "attacker's file\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			trace := filepath.Join(public, strings.ReplaceAll(tc.name, " ", "-"))
			plant(t, trace, tc.link, tc.content)
			c := s.dial(t, "-t", trace)
			if r := eoLogin(c, "alice", "secret"); !strings.HasPrefix(r, "+OK alice has 0 visible messages") {
				t.Fatalf("login with a refused trace file: %q", r)
			}
			eoQuit(c)
			if got := eoRead(t, victim); got != "root's file\n" {
				t.Fatalf("root appended to the symlink's target:\n%s", got)
			}
			if tc.content != "" {
				if got := eoRead(t, trace); got != tc.content {
					t.Fatalf("root wrote into the attacker's file:\n%s", got)
				}
			}
		})
	}
}

// TestConfigFileMustBeRoots: a configuration file someone else owns or
// can write is not believed: popper refuses to serve with it.
func TestConfigFileMustBeRoots(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: the files' owner is what is checked")
	}
	s := newSite(t)
	for _, tc := range []struct {
		name  string
		setup func(path string)
	}{
		{"owned by another user", func(p string) { os.Chown(p, 65534, 65534) }},
		{"world-writable", func(p string) { os.Chmod(p, 0o666) }},
		{"symlink", func(p string) {
			real := p + ".real"
			os.Rename(p, real)
			os.Symlink(real, p)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := eoFile(t, s, "cfg-"+strings.ReplaceAll(tc.name, " ", "-"), "set spool-dir = "+s.spoolDir)
			tc.setup(cfg)
			c := s.start(t, "-f", cfg)
			if g := c.line(); g != "-ERR [SYS/TEMP] Server configuration error; try again later." {
				t.Fatalf("greeting with a config file %s: %q", tc.name, g)
			}
			c.cmd.Wait()
			if tr := eoTrace(t, s.trace); !strings.Contains(tr, "not trusted") && !strings.Contains(tr, "symbolic link") && !strings.Contains(tr, "too many levels") {
				t.Fatalf("trace does not say why:\n%s", tr)
			}
		})
	}
}
