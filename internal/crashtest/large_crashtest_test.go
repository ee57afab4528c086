//go:build crashtest

package crashtest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/popperd/popper/platform"
)

// Crash scenarios at the sizes where power loss does its damage: messages
// over 64 KiB and a spool of several MB, so that the login copy, the
// QUIT rewrite and recovery write in many chunks, and partial writes,
// torn pages, holes, lost truncates and delayed allocation all leave
// states of their own. The states are enumerated lazily and sampled
// deterministically (every family gets its turn) within caps that keep
// the test to about a minute.

// largeSizes are the message sizes of largeSpool: 3.6 MB in all.
var largeSizes = []int{90_000, 300_000, 1_300_000, 70_000, 650_000, 120_000, 1_000_000, 66_000}

// largeSpool builds messages of largeSizes with Message-IDs <mN@crashtest>,
// bodies of numbered lines in paragraphs (so that a cut can fall just
// after a blank line), a From_ line quoted in a body, and, when
// noFinalNewline is set, a last message that does not end in a newline.
func largeSpool(noFinalNewline bool) []byte {
	var b bytes.Buffer
	for i, size := range largeSizes {
		n := i + 1
		start := b.Len()
		fmt.Fprintf(&b, "From sender%d@example.org Sat Nov 28 1%d:00:00 2026\n", n, n%10)
		fmt.Fprintf(&b, "From: sender%d@example.org\nTo: u@example.org\nSubject: large message %d\n", n, n)
		fmt.Fprintf(&b, "Message-ID: <m%d@crashtest>\nDate: Sat, 28 Nov 2026 10:00:00 +0000\n\n", n)
		for line := 0; b.Len()-start < size; line++ {
			switch {
			case line%40 == 39:
				b.WriteString("\n")
			case line == 77 && n == 2:
				b.WriteString(">From a quoted line, not a separator\n")
			default:
				fmt.Fprintf(&b, "message %d line %d: %x the quick brown fox\n", n, line, line*2654435761%1000003)
			}
		}
		if n < len(largeSizes) || !noFinalNewline {
			b.WriteString("\n")
		}
	}
	out := b.Bytes()
	if noFinalNewline {
		out = bytes.TrimRight(out, "\n")
	}
	return out
}

func deleteSome(ids []string) map[string]bool {
	return map[string]bool{ids[1]: true, ids[4]: true, ids[6]: true}
}

func largeScenarios() []scenario {
	n := len(largeSizes)
	return []scenario{
		{name: "large/normal/delete-three", messages: n, del: deleteSome, mbox: largeSpool(false)},
		{name: "large/normal/delete-three+arrival", messages: n, del: deleteSome, arrive: true, mbox: largeSpool(false)},
		{name: "large/normal/no-final-newline", messages: n, del: deleteSome, mbox: largeSpool(true)},
		{name: "large/copy/delete-three+arrival", messages: n, del: deleteSome, arrive: true, mbox: largeSpool(false), junk: true},
		{name: "large/settled/delete-three+arrival", messages: n, del: deleteSome, arrive: true, mbox: largeSpool(false), settled: true},
		{name: "large/settled/delete-three/posix", messages: n, del: deleteSome, mbox: largeSpool(false), settled: true, strictNames: true},
		{name: "large/server/delete-three", server: true, messages: n, del: deleteSome, mbox: largeSpool(false)},
		{name: "large/server/no-final-newline+arrival", server: true, messages: n, del: deleteSome, arrive: true, mbox: largeSpool(true)},
		{name: "large/recovery/sweep", messages: n, leftover: true, sweep: true, mbox: largeSpool(true)},
	}
}

// largeOptions bounds the enumeration of one large scenario.
var largeOptions = Options{Max: 28, Keep: 8, MaxPrefixes: 24, MaxPerFamily: 3, Lazy: true}

// TestPowerLossLarge is TestPowerLoss for the large scenarios.
func TestPowerLossLarge(t *testing.T) {
	t.Parallel() // it waits on fsyncs and child processes more than on the CPU
	start := time.Now()
	var total Stats
	checked, writes := 0, 0
	for _, sc := range largeScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			r := sc.recorded(t)
			m, s, ops, commitAt := r.m, r.s, r.ops, r.commitAt
			for _, op := range ops {
				if op.Kind == OpWrite {
					writes++
				}
			}
			opt := largeOptions
			opt.CommitAt, opt.Ext4Names = commitAt, r.ext4Names
			states, st := Enumerate(r.snap, ops, opt)
			t.Logf("%d ops (QUIT +OK after %d, QUIT +OK %v); states: %s", len(ops), commitAt, s.QuitOK, st)
			total.Add(st)
			for _, state := range states {
				checked++
				for _, f := range checkState(t, sc, state, m, ops) {
					t.Error(f)
				}
			}
		})
	}
	t.Logf("SUMMARY power loss, large (%d messages of 66 KB to 1.3 MB, %d-byte spool, %d writes recorded): %d states generated, %d distinct, %d checked, %v; per family generated/distinct/checked: %s",
		len(largeSizes), len(largeSpool(false)), writes, total.Generated, total.Unique, checked, time.Since(start).Round(time.Second), total.Families())
}

// recording is a recorded run of a scenario: its environment, the spool
// directory before it, the manifest its outcome implies, the session,
// the op log and how many of its ops were done when QUIT +OK arrived.
type recording struct {
	e        *env
	snap     Snapshot
	m        Manifest
	s        *session
	ops      []Op
	commitAt int
	// ext4Names: the binary relied on a file's fsync making its new name
	// durable (platform.NameDurableWithSync), so the states are
	// enumerated under that rule (Options.Ext4Names).
	ext4Names bool
}

// recorded prepares a fresh environment for sc, snapshots its spool
// directory and records the process under test (record), deliveries
// included in the op log.
func (sc scenario) recorded(t *testing.T) recording {
	t.Helper()
	r := recording{e: newEnv(t, sc.server)}
	base := sc.start(t, r.e)
	var err error
	if r.snap, err = TakeSnapshot(r.e.spoolDir); err != nil {
		t.Fatal(err)
	}
	oplog := filepath.Join(r.e.root, "oplog")
	r.e.mdaLog = oplog
	var env []string
	if sc.strictNames {
		env = append(env, "POPPER_CRASHTEST_STRICT_NAMES=1")
	} else {
		r.ext4Names = namesDurable(t, r.e.spoolDir)
	}
	r.m, r.s, r.ops, r.commitAt = sc.record(t, r.e, base, oplog, env...)
	return r
}

// record runs the scenario's process under test with an op log and
// returns the manifest of its outcome, the session, the log and how many
// of its ops were done when QUIT +OK arrived.
func (sc scenario) record(t *testing.T, e *env, base Manifest, oplog string, env ...string) (Manifest, *session, []Op, int) {
	t.Helper()
	commitAt := 0
	m, s := sc.exec(t, e, base, func() {
		if ops, err := ReadOpLog(oplog); err == nil {
			commitAt = len(ops)
		}
	}, append(env, "POPPER_OPLOG="+oplog)...)
	if !sc.sweep && !sc.drop && !s.QuitOK {
		t.Fatalf("recorded run failed:\n%s", s.Transcript.String())
	}
	ops, err := ReadOpLog(oplog)
	if err != nil {
		t.Fatal(err)
	}
	if s.QuitOK && commitAt == 0 {
		commitAt = len(ops)
	}
	return m, s, ops, commitAt
}

// checkState materializes a crash state of sc, runs popper --recover and
// the next login on it, and checks it against m: before the commit a
// DELE'd message may go or stay, a delivery not yet durable may be
// missing or torn.
func checkState(t *testing.T, sc scenario, state State, m Manifest, ops []Op) []string {
	e := newEnv(t, sc.server)
	if err := state.Materialize(e.spoolDir); err != nil {
		t.Fatal(err)
	}
	e.ownAll()
	want := beforeCommit(m)
	if state.AfterCommit {
		want = m
	}
	want = undelivered(want, ops, state.Prefix, mdaDurable(ops))
	label := fmt.Sprintf("state %q", state.Name)
	var fails []string
	if out, err := e.recover(); err != nil {
		fails = append(fails, fmt.Sprintf("%s: popper --recover: %v\n%s", label, err, out))
	}
	return append(fails, e.verify(label, want)...)
}

// beforeCommit is m with every message that must go allowed to stay.
func beforeCommit(m Manifest) Manifest {
	out := append(Manifest(nil), m...)
	for i := range out {
		if out[i].Fate == MustGo {
			out[i].Fate = MayGo
		}
	}
	return out
}

// namesDurable is platform.NameDurableWithSync for a file in dir: what
// the binary under test decides there.
func namesDurable(t *testing.T, dir string) bool {
	t.Helper()
	f, err := platform.OpenFile(filepath.Join(dir, ".names-probe"), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0600)
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	return platform.NameDurableWithSync(f)
}
