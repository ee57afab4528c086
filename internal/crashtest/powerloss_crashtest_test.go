//go:build crashtest

package crashtest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// statesPerScenario caps the crash states checked per scenario so that the
// whole crash test stays within minutes on two cores; the enumeration
// samples deterministically above it and the log says so.
const statesPerScenario = 120

// TestPowerLoss records each scenario's file operations, enumerates the
// states a power loss could leave after every prefix (durability.md §2
// families), and checks each one after popper --recover and a normal
// login.
func TestPowerLoss(t *testing.T) {
	start := time.Now()
	var generated, distinct, checked int
	for _, sc := range scenarios() {
		if sc.arrive || sc.drop && sc.server {
			continue // deliveries are not in the op log; abort is covered in normal mode
		}
		sc := sc
		t.Run(sc.name, func(t *testing.T) {
			e := newEnv(t, sc.server)
			base := sc.start(t, e)
			snap, err := TakeSnapshot(e.spoolDir)
			if err != nil {
				t.Fatal(err)
			}
			oplog := filepath.Join(e.root, "oplog")
			commitAt := 0
			m, s := sc.exec(t, e, base, func() {
				ops, err := ReadOpLog(oplog)
				if err == nil {
					commitAt = len(ops)
				}
			}, "POPPER_OPLOG="+oplog)
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
			states, st := Enumerate(snap, ops, Options{Max: statesPerScenario, CommitAt: commitAt})
			t.Logf("%d ops (QUIT +OK after %d); states: %s", len(ops), commitAt, st)
			generated += st.Generated
			distinct += st.Unique
			// Before the commit a DELE'd message may go or stay; after
			// it, it must be gone.
			before := append(Manifest(nil), m...)
			for i := range before {
				if before[i].Fate == MustGo {
					before[i].Fate = MayGo
				}
			}
			for _, state := range states {
				checked++
				e := newEnv(t, sc.server)
				if err := state.Materialize(e.spoolDir); err != nil {
					t.Fatal(err)
				}
				e.ownAll()
				want := before
				if state.AfterCommit {
					want = m
				}
				label := fmt.Sprintf("state %q", state.Name)
				if out, err := e.recover(); err != nil {
					t.Errorf("%s: popper --recover: %v\n%s", label, err, out)
				}
				for _, f := range e.verify(label, want) {
					t.Error(f)
				}
			}
		})
	}
	t.Logf("SUMMARY power loss: %d states generated, %d distinct, %d checked, %v",
		generated, distinct, checked, time.Since(start).Round(time.Second))
}

// TestQpopperLeftovers recovers every qpopper crash-window fixture, by
// popper --recover and by a plain login, and checks that nothing
// recoverable is lost.
func TestQpopperLeftovers(t *testing.T) {
	fx, err := QpopperFixtures(testSpool(4), testUser)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fx {
		for _, sweep := range []bool{true, false} {
			how := "login"
			if sweep {
				how = "sweep"
			}
			f := f
			t.Run(f.Name+"/"+how, func(t *testing.T) {
				e := newEnv(t, false)
				e.put(f.Files)
				if sweep {
					out, err := e.recover()
					if err != nil {
						t.Errorf("popper --recover: %v\n%s", err, out)
					}
					t.Logf("%s", strings.TrimSpace(out))
				}
				for _, p := range e.verify(f.String(), f.Manifest) {
					t.Error(p)
				}
			})
		}
	}
}

var _ = os.Getpid
