//go:build linux

package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Several hosts on one spool, the way sites outgrow one machine: popper
// on two "hosts" (UTS namespaces with their own host names, so each
// writes and judges pid@host as a host of its own) serving one spool
// directory behind a real haproxy with PROXY v2, a procmail delivering,
// one host killed mid-session.

// onHost starts a daemon for s in a UTS namespace named host.
func (s *site) onHost(t *testing.T, host string, extra ...string) *daemon {
	t.Helper()
	return s.startDaemonCmd(t, func(args []string) *exec.Cmd {
		// unshare execs sh, which execs popper: the daemon keeps the pid.
		return exec.Command("unshare", append([]string{"--uts", "sh", "-c", `hostname "$0" && exec "$@"`, host}, args...)...)
	}, extra...)
}

// killHost kills a daemon and every session it started, at once, as a
// host that loses power.
func killHost(t *testing.T, d *daemon) []int {
	t.Helper()
	pids := childrenOf(d.cmd.Process.Pid)
	d.cmd.Process.Signal(syscall.SIGKILL)
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	d.wait(10 * time.Second)
	for _, pid := range pids {
		for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
			time.Sleep(20 * time.Millisecond)
		}
	}
	return pids
}

// spoolIDs is the Message-IDs in the user's spool, in order.
func spoolIDs(t *testing.T, path string) []string {
	t.Helper()
	b, _ := os.ReadFile(path)
	var ids []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "Message-ID: <") {
			ids = append(ids, strings.TrimSuffix(strings.TrimPrefix(l, "Message-ID: <"), "@example.org>"))
		}
	}
	return ids
}

func TestTwoHostsOneSpool(t *testing.T) {
	need(t, "unshare", "procmail", "haproxy")
	if os.Getuid() != 0 {
		t.Skip("needs root: UTS namespaces")
	}
	if out, err := exec.Command("unshare", "--uts", "true").CombinedOutput(); err != nil {
		t.Skipf("no UTS namespaces here: %v %s", err, out)
	}
	t.Run("local", func(t *testing.T) { twoHostsOneSpool(t, "") })
	t.Run("nfs", func(t *testing.T) {
		dir := os.Getenv("POPPER_TEST_NFS_DIR")
		if dir == "" {
			why := "set POPPER_TEST_NFS_DIR to a directory on an NFS mount to run this over NFS"
			if b, _ := os.ReadFile("/proc/filesystems"); !bytes.Contains(b, []byte("nfs")) {
				why = "this kernel has no NFS client (no nfs in /proc/filesystems, no modules to load), so no NFS mount can be made here; " + why
			}
			t.Skip(why)
		}
		var st syscall.Statfs_t
		if err := syscall.Statfs(dir, &st); err != nil || st.Type != 0x6969 {
			t.Fatalf("POPPER_TEST_NFS_DIR=%s is not on NFS (statfs type %#x, %v)", dir, st.Type, err)
		}
		twoHostsOneSpool(t, dir)
	})
}

// twoHostsOneSpool runs the scenario with the spool in a fresh directory
// under spoolParent ("" = the site's own, local).
func twoHostsOneSpool(t *testing.T, spoolParent string) {
	s := newSite(t)
	if spoolParent != "" {
		s.spoolDir, _ = os.MkdirTemp(spoolParent, "popper-spool-")
		os.Chmod(s.spoolDir, 0o1777)
		t.Cleanup(func() { os.RemoveAll(s.spoolDir) })
		s.setOptions(t, fmt.Sprintf("set spool-dir = %q", s.spoolDir))
	}
	// haproxy connects from 127.0.0.1; clients come from 127.0.0.2x.
	s.setOptions(t, "set proxy-protocol", "set proxy-trusted = 127.0.0.1", "set reverse-lookup")
	sp := s.spool(t, "alice", msg("m1", "first")+msg("m2", "second")+msg("m3", "third"))
	hosts := map[string]*daemon{"popa": s.onHost(t, "popa"), "popb": s.onHost(t, "popb")}
	hp := haproxy(t, s.dir, hosts["popa"].addr+" send-proxy-v2", hosts["popb"].addr+" send-proxy-v2")
	hostOf := func(greeting string) string {
		for h := range hosts {
			if strings.Contains(greeting, " at "+h+" ") {
				return h
			}
		}
		t.Fatalf("greeting from no host: %q", greeting)
		return ""
	}

	// Two sessions for alice at once, one per host: one wins, the other
	// gets [IN-USE].
	c1, g1 := dialVia(t, "127.0.0.21", hp)
	c2, g2 := dialVia(t, "127.0.0.22", hp)
	x, y := hostOf(g1), hostOf(g2)
	if x == y {
		t.Fatalf("haproxy did not spread the sessions over the hosts: %q, %q", g1, g2)
	}
	if r := eoLogin(c1, "alice", "secret"); !strings.HasPrefix(r, "+OK alice has 3 visible messages") {
		t.Fatalf("host %s: %q", x, r)
	}
	if r := eoLogin(c2, "alice", "secret"); !strings.HasPrefix(r, "-ERR [IN-USE] ") {
		t.Fatalf("host %s, while host %s serves alice: %q", y, x, r)
	}

	// A delivery while host x holds the session.
	rc := filepath.Join(s.dir, "procmailrc")
	writeFile(t, rc, fmt.Sprintf("LOCKTIMEOUT=60\n:0:\n%s\n", sp), 0o644)
	deliver := exec.Command("procmail", "-m", rc)
	deliver.Stdin = strings.NewReader(msg("late", "arrived during the session"))
	if out, err := deliver.CombinedOutput(); err != nil {
		t.Fatalf("procmail: %v\n%s", err, out)
	}

	// Host x dies mid-session, after a DELE it never committed.
	c1.ok("DELE 1")
	dead := killHost(t, hosts[x])
	if _, err := os.Lstat(filepath.Join(s.spoolDir, ".alice.pop")); err != nil {
		t.Fatalf("host %s left no temp drop: %v", x, err)
	}

	// The survivor, through haproxy (which redispatches from the dead
	// host), merges the dead host's drop back: nothing lost, nothing twice.
	c3, g3 := dialVia(t, "127.0.0.23", hp)
	if hostOf(g3) != y {
		t.Fatalf("after host %s died: %q", x, g3)
	}
	if r := eoLogin(c3, "alice", "secret"); !strings.HasPrefix(r, "+OK alice has 4 visible messages") {
		t.Fatalf("host %s after host %s died: %q\n%s", y, x, r, hosts[y].log())
	}
	c3.ok("QUIT")
	if ids := strings.Join(spoolIDs(t, sp), " "); ids != "m1 m2 m3 late" {
		t.Fatalf("spool after host %s's recovery: %s", y, ids)
	}

	// Host x dies again mid-session; this time the boot sweep (run on
	// host y) recovers its drop.
	hosts[x] = s.onHost(t, x)
	c4, _ := hosts[x].dialFrom(t, "127.0.0.24") // not haproxy: no PROXY header
	if r := eoLogin(c4, "alice", "secret"); !strings.HasPrefix(r, "+OK alice has 4 visible messages") {
		t.Fatalf("host %s restarted: %q", x, r)
	}
	killHost(t, hosts[x])
	sweep := exec.Command("unshare", append([]string{"--uts", "sh", "-c", `hostname "$0" && exec "$@"`, y, popperBin, "--recover"}, s.args()...)...)
	if out, err := sweep.CombinedOutput(); err != nil || !strings.Contains(string(out), "1 recovered, 0 failed") {
		t.Fatalf("popper --recover on host %s: %v\n%s", y, err, out)
	}
	if ids := strings.Join(spoolIDs(t, sp), " "); ids != "m1 m2 m3 late" {
		t.Fatalf("spool after the sweep: %s", ids)
	}

	// pid@host: a lock host x's dead session left is not host y's to
	// take by pid (only by age), while host x takes it over at once.
	lock := sp + ".lock"
	writeFile(t, lock, fmt.Sprintf("%d@%s", dead[0], x), 0o600)
	os.Chown(lock, s.uid, s.gid)
	c5, _ := hosts[y].dialFrom(t, "127.0.0.25") // not haproxy: no PROXY header
	if r := eoLogin(c5, "alice", "secret"); !strings.HasPrefix(r, "-ERR [SYS/TEMP] maillock error 'Max tries exceeded' (4)") {
		t.Fatalf("host %s with host %s's dead lock: %q", y, x, r)
	}
	hosts[x] = s.onHost(t, x)
	c6, _ := hosts[x].dialFrom(t, "127.0.0.26") // not haproxy: no PROXY header
	if r := eoLogin(c6, "alice", "secret"); !strings.HasPrefix(r, "+OK alice has 4 visible messages") {
		t.Fatalf("host %s with its own dead session's lock: %q", x, r)
	}
	c6.ok("QUIT")
	t.Logf("hosts popa and popb on %s behind haproxy: [IN-USE] across hosts, a kill of %s recovered by %s and by the sweep, pid@host honoured", s.spoolDir, x, y)
}
