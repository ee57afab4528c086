//go:build crashtest

package crashtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/popperd/popper/spool"
)

// Spool-level crash tests: the same failpoint and power-loss checks as the
// popper-binary tests, but the process under test is this test binary
// re-executed to run spool.Open and Maildrop.Commit (the login copy and
// the QUIT update) without the POP3 layer. They need only the spool
// package, and they pin down a crash-safety failure to the spool code.

const spoolHelperEnv = "CRASHTEST_SPOOL_HELPER" // "dir|server|deleteIndexes"

func init() {
	spec := os.Getenv(spoolHelperEnv)
	if spec == "" {
		return
	}
	parts := strings.Split(spec, "|")
	if len(parts) != 3 {
		fmt.Fprintln(os.Stderr, "bad", spoolHelperEnv)
		os.Exit(2)
	}
	err := spoolSession(parts[0], parts[1] == "server", parts[2], true)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(1)
	}
	fmt.Println("COMMITTED")
	os.Exit(0)
}

func spoolConfig(dir string, server bool) *spool.Config {
	return &spool.Config{
		Spool:       filepath.Join(dir, testUser),
		TempDrop:    filepath.Join(dir, "."+testUser+".pop"),
		Cache:       filepath.Join(dir, "."+testUser+".cache"),
		ServerMode:  server,
		Parse:       spool.ParseOptions{UpdateStatusHeaders: true},
		DotLockWait: func(int) time.Duration { return 10 * time.Millisecond },
	}
}

// spoolSession logs in, marks the 1-based message numbers in del (or
// "all") deleted and every message retrieved, and commits.
func spoolSession(dir string, server bool, del string, commit bool) error {
	md, err := spool.Open(spoolConfig(dir, server))
	if err != nil {
		return err
	}
	n := md.Len()
	deleted := make([]bool, n)
	retrieved := make([]bool, n)
	for i := range retrieved {
		retrieved[i] = true
		if del == "all" {
			deleted[i] = true
		}
	}
	if del != "all" && del != "" {
		for _, f := range strings.Split(del, ",") {
			k, err := strconv.Atoi(f)
			if err != nil || k < 1 || k > n {
				return fmt.Errorf("bad message number %q", f)
			}
			deleted[k-1] = true
		}
	}
	if !commit {
		return md.Rollback()
	}
	return md.Commit(deleted, retrieved)
}

// runSpoolHelper runs one session in a child process; committed reports
// whether Commit returned (the point where popper sends QUIT +OK).
func runSpoolHelper(t *testing.T, dir string, server bool, del string, env ...string) (committed bool, out string) {
	mode := "normal"
	if server {
		mode = "server"
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), env...), spoolHelperEnv+"="+dir+"|"+mode+"|"+del)
	b, _ := cmd.CombinedOutput()
	return bytes.Contains(b, []byte("COMMITTED")), string(b)
}

type spoolCase struct {
	name     string
	server   bool
	del      string // message numbers, "all" or ""
	leftover bool
}

func spoolCases() []spoolCase {
	var out []spoolCase
	for _, server := range []bool{false, true} {
		mode := "normal"
		if server {
			mode = "server"
		}
		out = append(out,
			spoolCase{mode + "/no-change", server, "", false},
			spoolCase{mode + "/delete-one", server, "2", false},
			spoolCase{mode + "/delete-all", server, "all", false},
		)
	}
	return append(out, spoolCase{"normal/leftover-at-login", false, "2", true})
}

// setup writes the case's files and returns the manifest before the
// session and the Message-IDs the session will delete.
func (c spoolCase) setup(t *testing.T, dir string) (Manifest, []string) {
	sp := testSpool(3)
	base, err := ManifestOf(sp, MustSurvive)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{testUser: sp}
	if c.leftover {
		var mail []byte
		files, mail = leftoverFiles(t, sp)
		extra, _ := ManifestOf(mail, MustSurvive)
		base = append(base, extra...)
	}
	for n, d := range files {
		if err := os.WriteFile(filepath.Join(dir, n), d, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var del []string
	switch c.del {
	case "all":
		for _, e := range base {
			del = append(del, e.MessageID)
		}
	case "2":
		del = []string{base[1].MessageID}
	}
	return base, del
}

func withFates(base Manifest, del []string, f Fate) Manifest {
	m := base
	for _, id := range del {
		m = m.Set(id, f)
	}
	return m
}

// spoolVerify recovers dir in-process, runs a login and commit with no
// change, and checks the manifest.
func spoolVerify(t *testing.T, label, dir string, server bool, m Manifest) []string {
	var fails []string
	if _, err := spool.Recover(spoolConfig(dir, server)); err != nil {
		fails = append(fails, fmt.Sprintf("%s: spool.Recover: %v", label, err))
	}
	if err := spoolSession(dir, server, "", true); err != nil {
		fails = append(fails, fmt.Sprintf("%s: next login+commit: %v", label, err))
	}
	probs, err := Check(dir, m)
	if err != nil {
		fails = append(fails, label+": "+err.Error())
	}
	for _, p := range probs {
		fails = append(fails, label+": "+p.String())
	}
	if len(probs) > 0 {
		fails = append(fails, label+": directory: "+listDir(dir))
	}
	return fails
}

func listDir(dir string) string {
	entries, _ := os.ReadDir(dir)
	var parts []string
	for _, de := range entries {
		if fi, _ := de.Info(); fi != nil {
			parts = append(parts, fmt.Sprintf("%s(%d)", de.Name(), fi.Size()))
		}
	}
	return strings.Join(parts, " ")
}

func TestSpoolFailpointKills(t *testing.T) {
	seen := map[string]bool{}
	runs := 0
	for _, c := range spoolCases() {
		c := c
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			base, del := c.setup(t, dir)
			trace := filepath.Join(t.TempDir(), "trace")
			ok, out := runSpoolHelper(t, dir, c.server, c.del, "POPPER_FAILPOINT_TRACE="+trace)
			if !ok {
				t.Fatalf("clean session failed: %s", out)
			}
			for _, f := range spoolVerify(t, "clean run", dir, c.server, withFates(base, del, MustGo)) {
				t.Error(f)
			}
			points, err := hits(trace)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("failpoints: %s", strings.Join(points, " "))
			for _, fp := range points {
				seen[strings.SplitN(fp, ":", 2)[0]] = true
				runs++
				dir := t.TempDir()
				c.setup(t, dir)
				ok, _ := runSpoolHelper(t, dir, c.server, c.del, "POPPER_FAILPOINT="+fp)
				fate := MayGo
				if ok {
					fate = MustGo
				}
				for _, f := range spoolVerify(t, "killed at "+fp, dir, c.server, withFates(base, del, fate)) {
					t.Error(f)
				}
			}
		})
	}
	var names []string
	for n := range seen {
		names = append(names, n)
	}
	t.Logf("SUMMARY spool failpoint kills: %d runs, failpoints: %s", runs, strings.Join(sortStrings(names), " "))
}

func TestSpoolPowerLoss(t *testing.T) {
	var total Stats
	checked := 0
	for _, c := range spoolCases() {
		for _, ext4 := range []bool{false, true} {
			c := c
			model := "posix"
			if ext4 {
				model = "ext4"
			}
			t.Run(c.name+"/"+model, func(t *testing.T) {
				dir := t.TempDir()
				base, del := c.setup(t, dir)
				snap, err := TakeSnapshot(dir)
				if err != nil {
					t.Fatal(err)
				}
				oplog := filepath.Join(t.TempDir(), "oplog")
				env := []string{"POPPER_OPLOG=" + oplog}
				if !ext4 {
					env = append(env, "POPPER_CRASHTEST_STRICT_NAMES=1")
				}
				ok, out := runSpoolHelper(t, dir, c.server, c.del, env...)
				if !ok {
					t.Fatalf("recorded session failed: %s", out)
				}
				ops, err := ReadOpLog(oplog)
				if err != nil {
					t.Fatal(err)
				}
				// Commit returned after the last recorded op: only the
				// full log is known to be past the commit point.
				states, st := Enumerate(snap, ops, Options{Max: statesPerScenario, CommitAt: len(ops), Ext4Names: ext4})
				t.Logf("%d ops; states: %s", len(ops), st)
				total.Add(st)
				for _, s := range states {
					checked++
					d := t.TempDir()
					if err := s.Materialize(d); err != nil {
						t.Fatal(err)
					}
					fate := MayGo
					if s.AfterCommit {
						fate = MustGo
					}
					for _, f := range spoolVerify(t, fmt.Sprintf("state %q", s.Name), d, c.server, withFates(base, del, fate)) {
						t.Error(f)
					}
				}
				if t.Failed() {
					t.Logf("op log:\n%s", opList(ops))
				}
			})
		}
	}
	t.Logf("SUMMARY spool power loss: %d states generated, %d distinct, %d checked; per family generated/distinct/checked: %s",
		total.Generated, total.Unique, checked, total.Families())
}

func opList(ops []Op) string {
	var b strings.Builder
	for i, op := range ops {
		fmt.Fprintf(&b, "  %2d %s\n", i, op)
	}
	return b.String()
}

// TestSpoolQpopperLeftovers merges every qpopper crash-window fixture,
// by spool.Recover (the sweep) and by a plain login, and checks that
// nothing still recoverable is lost.
func TestSpoolQpopperLeftovers(t *testing.T) {
	fx, err := QpopperFixtures(testSpool(4), testUser)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fx {
		for _, sweep := range []bool{true, false} {
			f := f
			how := "login"
			if sweep {
				how = "sweep"
			}
			t.Run(f.Name+"/"+how, func(t *testing.T) {
				dir := t.TempDir()
				for n, d := range f.Files {
					if err := os.WriteFile(filepath.Join(dir, n), d, 0o600); err != nil {
						t.Fatal(err)
					}
				}
				if sweep {
					r, err := spool.Recover(spoolConfig(dir, false))
					if err != nil {
						t.Errorf("spool.Recover: %v", err)
					}
					t.Logf("%s: %s", f.Name, r)
				}
				if err := spoolSession(dir, false, "", true); err != nil {
					t.Errorf("login+commit: %v", err)
				}
				probs, err := Check(dir, f.Manifest)
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range probs {
					t.Errorf("%s: %s", f, p)
				}
				if len(probs) > 0 {
					t.Logf("directory: %s", listDir(dir))
				}
			})
		}
	}
}
