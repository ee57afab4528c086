//go:build crashtest

package crashtest

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/popperd/popper/auth"
)

// Crash tests of popauth's one write path (auth.UpdateAPOPDB): a
// crash-test build of cmd/popauth is killed at every failpoint an update
// passes, and an update's recorded file operations are replayed into
// every state a power loss could leave. After each, the database must
// open and hold the old or the new secrets, whole, and the next popauth
// runs must succeed and leave no PATH.new behind.

// popauthCrash is the crash-test build of cmd/popauth.
func popauthCrash(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: popauth takes -db PATH from root only")
	}
	return crashBinary(t, "./cmd/popauth")
}

const popauthDBName = "pop.auth"

// apopFile renders secrets in the database format (popauth(8)).
func apopFile(secrets map[string]string) []byte {
	var b strings.Builder
	b.WriteString("popauth 1\n")
	for _, n := range slices.Sorted(maps.Keys(secrets)) {
		b.WriteString(n + ":" + hex.EncodeToString([]byte(secrets[n])) + "\n")
	}
	return []byte(b.String())
}

// bigSecrets is a site of n users, about 60 bytes a line.
func bigSecrets(n int) map[string]string {
	m := make(map[string]string, n)
	for i := 0; i < n; i++ {
		m[fmt.Sprintf("user%05d", i)] = fmt.Sprintf("secret-%05d-%s", i, strings.Repeat("x", i%17))
	}
	return m
}

// popauthCase is one update: the files it starts from, the command, and
// the secrets before (nil: no database) and after it.
type popauthCase struct {
	name     string
	files    map[string][]byte // in the database directory
	args     []string          // after -db PATH
	stdin    string
	old, new map[string]string
}

func popauthCases(t *testing.T) []popauthCase {
	old := bigSecrets(3000)
	if n := len(apopFile(old)); n < 128<<10 {
		t.Fatalf("test database of %d bytes is too small for partial writes", n)
	}
	// The import replaces a third, adds a third as many again.
	imp := map[string]string{}
	for i := 0; i < 3000; i += 3 {
		imp[fmt.Sprintf("user%05d", i)] = fmt.Sprintf("changed-%d", i)
	}
	for i := 3000; i < 4000; i++ {
		imp[fmt.Sprintf("user%05d", i)] = fmt.Sprintf("new-%d", i)
	}
	merged := maps.Clone(old)
	maps.Copy(merged, imp)
	withUser := maps.Clone(old)
	withUser["user00007"] = "typed on stdin"
	withoutUser := maps.Clone(old)
	delete(withoutUser, "user00002")
	addUser := maps.Clone(old)
	addUser["zed"] = "z"
	start := map[string][]byte{popauthDBName: apopFile(old)}
	stale := map[string][]byte{popauthDBName: apopFile(old), popauthDBName + ".new": apopFile(imp)[:40000]}
	return []popauthCase{
		{name: "import", files: start, args: []string{"-import", "-"}, stdin: string(apopFile(imp)), old: old, new: merged},
		{name: "user", files: start, args: []string{"-user", "user00007"}, stdin: "typed on stdin\n", old: old, new: withUser},
		{name: "delete", files: start, args: []string{"-delete", "user00002"}, old: old, new: withoutUser},
		{name: "stale-new", files: stale, args: []string{"-user", "zed", "z"}, old: old, new: addUser},
		{name: "init", files: map[string][]byte{}, args: []string{"-init"}, old: nil, new: map[string]string{}},
	}
}

// popauthDir makes a database directory holding files, as root's 0700.
func popauthDir(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	os.Chmod(dir, 0o700)
	for n, data := range files {
		p := filepath.Join(dir, n)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, 0o600)
	}
	return dir
}

// runPopauth runs the crash-test popauth on the database in dir.
func runPopauth(bin, dir, stdin string, args []string, env ...string) (string, error) {
	cmd := exec.Command(bin, append([]string{"-db", filepath.Join(dir, popauthDBName)}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func killed(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// found reads the database in dir: nil when there is none.
func found(dir string) (map[string]string, error) {
	db, err := auth.OpenAPOPDB(filepath.Join(dir, popauthDBName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, n := range db.Names() {
		m[n], _ = db.Secret(n)
	}
	return m, nil
}

func sameMap(a, b map[string]string) bool {
	if (a == nil) != (b == nil) {
		return false
	}
	return maps.Equal(a, b)
}

// checkAfterCrash checks the invariant in dir and returns what it found:
// "old" or "new".
func checkAfterCrash(t *testing.T, bin, dir, label string, c popauthCase) string {
	t.Helper()
	got, err := found(dir)
	if err != nil {
		t.Errorf("%s: the database does not open: %v", label, err)
		return ""
	}
	which := ""
	switch {
	case sameMap(got, c.new):
		which = "new"
	case sameMap(got, c.old):
		which = "old"
	default:
		t.Errorf("%s: the database is neither the old nor the new one (%d entries; old %d, new %d)",
			label, len(got), len(c.old), len(c.new))
		return ""
	}
	// The next runs: -init (which also clears a stale PATH.new), then a
	// change.
	if out, err := runPopauth(bin, dir, "", []string{"-init"}); err != nil {
		t.Errorf("%s: next popauth -init: %v\n%s", label, err, out)
		return which
	}
	if _, err := os.Lstat(filepath.Join(dir, popauthDBName+".new")); err == nil {
		t.Errorf("%s: %s.new left after the next run", label, popauthDBName)
	}
	if out, err := runPopauth(bin, dir, "", []string{"-user", "next-run", "after the crash"}); err != nil {
		t.Errorf("%s: next popauth -user: %v\n%s", label, err, out)
		return which
	}
	want := map[string]string{}
	maps.Copy(want, got)
	want["next-run"] = "after the crash"
	if after, err := found(dir); err != nil || !sameMap(after, want) {
		t.Errorf("%s: after the next runs the database holds %d entries, %v; want %d", label, len(after), err, len(want))
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if n := e.Name(); n != popauthDBName && n != popauthDBName+".lock" {
			t.Errorf("%s: %s left in the database directory", label, n)
		}
	}
	return which
}

// TestPopauthFailpointKills kills popauth at every failpoint hit of every
// case, learnt from POPPER_FAILPOINT_TRACE.
func TestPopauthFailpointKills(t *testing.T) {
	bin := popauthCrash(t)
	start := time.Now()
	runs := 0
	seen := map[string]bool{}
	outcome := map[string]int{}
	for _, c := range popauthCases(t) {
		t.Run(c.name, func(t *testing.T) {
			dir := popauthDir(t, c.files)
			trace := filepath.Join(t.TempDir(), "trace")
			if out, err := runPopauth(bin, dir, c.stdin, c.args, "POPPER_FAILPOINT_TRACE="+trace); err != nil {
				t.Fatalf("traced run: %v\n%s", err, out)
			}
			if got, err := found(dir); err != nil || !sameMap(got, c.new) {
				t.Fatalf("traced run left %d entries, %v; want %d", len(got), err, len(c.new))
			}
			points, err := hits(trace)
			if err != nil || len(points) == 0 {
				t.Fatalf("no failpoints traced: %v", err)
			}
			t.Logf("failpoints: %s", strings.Join(points, " "))
			for _, fp := range points {
				seen[strings.SplitN(fp, ":", 2)[0]] = true
				runs++
				dir := popauthDir(t, c.files)
				out, err := runPopauth(bin, dir, c.stdin, c.args, "POPPER_FAILPOINT="+fp)
				if !killed(err) {
					t.Errorf("%s: popauth was not killed there: %v\n%s", fp, err, out)
					continue
				}
				outcome[checkAfterCrash(t, bin, dir, "killed at "+fp, c)]++
			}
		})
	}
	names := slices.Sorted(maps.Keys(seen))
	t.Logf("SUMMARY popauth failpoint kills: %d runs (%d left the old database, %d the new), failpoints: %s, %v",
		runs, outcome["old"], outcome["new"], strings.Join(names, " "), time.Since(start).Round(time.Second))
}

// TestPopauthPowerLoss records each case's file operations and checks
// every power-loss state the harness enumerates from them.
func TestPopauthPowerLoss(t *testing.T) {
	bin := popauthCrash(t)
	start := time.Now()
	var generated, distinct, checked int
	outcome := map[string]int{}
	families := map[string]int{}
	for _, c := range popauthCases(t) {
		t.Run(c.name, func(t *testing.T) {
			dir := popauthDir(t, c.files)
			snap, err := TakeSnapshot(dir)
			if err != nil {
				t.Fatal(err)
			}
			oplog := filepath.Join(t.TempDir(), "oplog")
			if out, err := runPopauth(bin, dir, c.stdin, c.args, "POPPER_OPLOG="+oplog); err != nil {
				t.Fatalf("recorded run: %v\n%s", err, out)
			}
			ops, err := ReadOpLog(oplog)
			if err != nil {
				t.Fatal(err)
			}
			writes := 0
			for _, op := range ops {
				if op.Kind == OpWrite {
					writes++
				}
			}
			if c.name == "import" && writes < 3 {
				t.Errorf("the import wrote in %d pieces; the test wants several for partial writes", writes)
			}
			states, st := Enumerate(snap, ops, Options{})
			t.Logf("%d ops (%d writes); states: %s", len(ops), writes, st)
			generated += st.Generated
			distinct += st.Unique
			for f, n := range st.ByFamily {
				families[f] += n
			}
			for _, s := range states {
				checked++
				d := t.TempDir()
				os.Chmod(d, 0o700)
				if err := s.Materialize(d); err != nil {
					t.Fatal(err)
				}
				outcome[checkAfterCrash(t, bin, d, fmt.Sprintf("state %q", s.Name), c)]++
			}
		})
	}
	var fam []string
	for _, f := range slices.Sorted(maps.Keys(families)) {
		fam = append(fam, fmt.Sprintf("%s=%d", f, families[f]))
	}
	t.Logf("SUMMARY popauth power loss: %d states generated, %d distinct, %d checked (%d old, %d new; %s), %v",
		generated, distinct, checked, outcome["old"], outcome["new"], strings.Join(fam, " "), time.Since(start).Round(time.Second))
}
