//go:build crashtest

package crashtest

import (
	"os"
	"strings"
	"testing"
	"time"
)

// statesPerScenario caps the crash states checked per scenario so that the
// whole crash test stays within minutes on two cores; the enumeration
// samples deterministically above it and the log says so.
const statesPerScenario = 120

// TestPowerLoss records each scenario's file operations, enumerates the
// states a power loss could leave after every prefix (the families of
// doc/crash-model.md), and checks each one after popper --recover and a normal
// login.
func TestPowerLoss(t *testing.T) {
	start := time.Now()
	var total Stats
	checked := 0
	for _, sc := range scenarios() {
		if sc.drop && sc.server {
			continue // abort is covered in normal mode
		}
		sc := sc
		t.Run(sc.name, func(t *testing.T) {
			r := sc.recorded(t)
			m, ops, commitAt := r.m, r.ops, r.commitAt
			states, st := Enumerate(r.snap, ops, Options{Max: statesPerScenario, CommitAt: commitAt, Ext4Names: r.ext4Names})
			t.Logf("%d ops (QUIT +OK after %d); states: %s", len(ops), commitAt, st)
			total.Add(st)
			for _, state := range states {
				checked++
				for _, f := range checkState(t, sc, state, m, ops) {
					t.Error(f)
				}
			}
			if t.Failed() {
				t.Logf("op log:\n%s", opList(ops))
			}
		})
	}
	t.Logf("SUMMARY power loss: %d states generated, %d distinct, %d checked (MDA deliveries in the op log), %v; per family generated/distinct/checked: %s",
		total.Generated, total.Unique, checked, time.Since(start).Round(time.Second), total.Families())
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

// mdaDurable returns, for each message the test's MDA wrote into the
// op log, the number of ops after which its delivery was durable (its
// fsync): before that the MDA had not acknowledged it.
func mdaDurable(ops []Op) map[string]int {
	out := map[string]int{}
	var pending []string
	for i, op := range ops {
		if op.Pid != os.Getpid() {
			continue
		}
		switch op.Kind {
		case OpWrite:
			for _, msg := range mustSplit(op.Data) {
				pending = append(pending, msg.MessageID)
			}
		case OpFsync:
			for _, id := range pending {
				out[id] = i + 1
			}
			pending = nil
		}
	}
	return out
}

func mustSplit(b []byte) []Message {
	msgs, _ := SplitMbox("", b)
	return msgs
}

// undelivered relaxes m for a crash state holding the first prefix ops:
// a message whose delivery was not yet durable may be missing, or torn,
// and its torn part may have lost its Message-ID.
func undelivered(m Manifest, ops []Op, prefix int, durable map[string]int) Manifest {
	out := m
	torn := false
	for id, at := range durable {
		if prefix < at {
			torn = true
			out = out.Set(id, MayGo)
			for i := range out {
				if out[i].MessageID == id {
					out[i].MayBeDamaged = true
				}
			}
		}
	}
	if torn {
		out = append(out, Expected{Fate: MayGo, MayBeDamaged: true})
	}
	return out
}
