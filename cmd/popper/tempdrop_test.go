package main

import (
	"os"
	"path/filepath"
	"testing"
)

// A temp drop that fails qpopper's checks is refused with
// pop_dropcopy.c's own text, which cmd/popper picks by the spool
// package's error kind. (A linked one, or another user's, is moved aside
// as planted before the check can see it: spool.ClearPlanted.)
func TestTempDropOpenToOthers(t *testing.T) {
	s := newSite(t)
	s.spool(t, "alice", msg("one", "first"))
	drop := filepath.Join(s.spoolDir, ".alice.pop")
	writeFile(t, drop, "", 0o666)
	if os.Getuid() == 0 {
		os.Chown(drop, s.uid, s.gid)
	}
	c := s.dial(t)
	c.ok("USER alice")
	want := "-ERR [SYS/PERM] Your temporary file " + drop + " is accessible by others.  This must be fixed"
	if r := c.do("PASS secret"); r != want {
		t.Fatalf("got  %q\nwant %q", r, want)
	}
}
