//go:build crashtest

package crashtest

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// A crash during the recovery of a crash state. Recovery rewrites the
// temp drop and the spool in its turn, so it must leave, at every one of
// its own crash points, a state that the next recovery still merges
// without loss:
//
//   - popper --recover is killed at each failpoint it passes on the
//     state, then recovery runs again and the next login is checked;
//   - the power fails during popper --recover: its op log gives the
//     states. After a power loss the state it recovers is what is on
//     disk, durable; after a process kill it is in the page cache, with
//     the killed session's unsynced ops still unsynced, so the states come
//     from the session's log up to the kill followed by the recovery's
//     (Options.From keeps the prefixes that reach into the recovery).

const (
	recoveryStatesPerScenario = 8 // first crash states, per scenario
	recoveryStatesPerLarge    = 2
	secondStatesPerRecovery   = 6 // power-loss states of one recovery
)

func TestRecoveryCrash(t *testing.T) {
	t.Parallel()
	start := time.Now()
	var first, kills, second, afterKill int
	var secondStats Stats
	points := map[string]bool{}
	pick := map[string]bool{
		"normal/delete-one": true, "server/delete-one": true, "normal/delete-one+arrival": true,
		"server/delete-all+arrival": true, "recovery/leftover-at-login": true, "copy/delete-one+arrival": true, "settled/normal/delete-one+arrival": true,
	}
	var scs []scenario
	for _, sc := range scenarios() {
		if pick[sc.name] {
			scs = append(scs, sc)
		}
	}
	for _, sc := range largeScenarios() {
		if sc.name == "large/server/no-final-newline+arrival" || sc.name == "large/normal/no-final-newline" {
			scs = append(scs, sc)
		}
	}
	for _, sc := range scs {
		t.Run(sc.name, func(t *testing.T) {
			r := sc.recorded(t)
			e, snap, m, ops, commitAt := r.e, r.snap, r.m, r.ops, r.commitAt
			max := recoveryStatesPerScenario
			if sc.mbox != nil {
				max = recoveryStatesPerLarge
			}
			opt := Options{Max: max, CommitAt: commitAt, Lazy: true, Ext4Names: r.ext4Names}
			if sc.mbox != nil {
				opt.MaxPrefixes, opt.MaxPerFamily = largeOptions.MaxPrefixes, largeOptions.MaxPerFamily
			}
			states, _ := Enumerate(snap, ops, opt)
			for _, state := range states {
				want := beforeCommit(m)
				if state.AfterCommit {
					want = m
				}
				want = undelivered(want, ops, state.Prefix, mdaDurable(ops))
				first++
				// Which failpoints does recovery of this state pass?
				e1 := stateEnv(t, sc, state)
				trace := filepath.Join(e1.root, "trace")
				e1.recover("POPPER_FAILPOINT_TRACE=" + trace)
				fps, _ := hits(trace)
				for _, fp := range fps {
					if strings.HasPrefix(fp, "dotlock.") {
						continue // the lock's own crash points: TestFailpointKills
					}
					kills++
					points[strings.SplitN(fp, ":", 2)[0]] = true
					e2 := stateEnv(t, sc, state)
					e2.recover("POPPER_FAILPOINT=" + fp)
					label := fmt.Sprintf("state %q, recovery killed at %s", state.Name, fp)
					if out, err := e2.recover(); err != nil {
						t.Errorf("%s: popper --recover: %v\n%s", label, err, out)
					}
					for _, f := range e2.verify(label, want) {
						t.Error(f)
					}
				}
				// The power fails during recovery.
				e3 := stateEnv(t, sc, state)
				rsnap, err := TakeSnapshot(e3.spoolDir)
				if err != nil {
					t.Fatal(err)
				}
				rlog := filepath.Join(e3.root, "oplog")
				if out, err := e3.recover("POPPER_OPLOG=" + rlog); err != nil {
					t.Errorf("state %q: recorded popper --recover: %v\n%s", state.Name, err, out)
				}
				rops, err := ReadOpLog(rlog)
				if err != nil {
					t.Fatal(err)
				}
				if len(rops) == 0 {
					continue // nothing to recover
				}
				init, log, ropt := rsnap, rops, Options{Max: secondStatesPerRecovery, Lazy: true, Ext4Names: r.ext4Names}
				how := "after a power loss"
				if state.Family == FamKill {
					// The killed session's unsynced ops are still unsynced.
					init = snap
					log = append(append([]Op(nil), ops[:state.Prefix]...), rebase(rops, e3.spoolDir, e.spoolDir)...)
					ropt.From = state.Prefix
					how = "after a kill"
				}
				if sc.mbox != nil {
					ropt.MaxPrefixes, ropt.MaxPerFamily = largeOptions.MaxPrefixes, largeOptions.MaxPerFamily
				}
				rstates, rst := Enumerate(init, log, ropt)
				secondStats.Add(rst)
				for _, rs := range rstates {
					second++
					if state.Family == FamKill {
						afterKill++
					}
					e4 := stateEnv(t, sc, rs)
					label := fmt.Sprintf("state %q, then %q of its recovery (%s)", state.Name, rs.Name, how)
					if out, err := e4.recover(); err != nil {
						t.Errorf("%s: popper --recover: %v\n%s", label, err, out)
					}
					for _, f := range e4.verify(label, want) {
						t.Error(f)
					}
				}
			}
		})
	}
	var names []string
	for n := range points {
		names = append(names, n)
	}
	sort.Strings(names)
	t.Logf("SUMMARY recovery crashed: %d first crash states; popper --recover killed %d times on them at %d failpoints (%s); %d power-loss states of the recovery checked (%d of them after a kill, from the session's and the recovery's ops together; %d generated, %d distinct; per family %s), %v",
		first, kills, len(names), strings.Join(names, " "), second, afterKill, secondStats.Generated, secondStats.Unique, secondStats.Families(), time.Since(start).Round(time.Second))
}

// stateEnv is a fresh spool directory holding state.
func stateEnv(t *testing.T, sc scenario, state State) *env {
	e := newEnv(t, sc.server)
	if err := state.Materialize(e.spoolDir); err != nil {
		t.Fatal(err)
	}
	e.ownAll()
	return e
}

// rebase moves the paths of ops under directory from to directory to.
func rebase(ops []Op, from, to string) []Op {
	out := make([]Op, len(ops))
	for i, op := range ops {
		for _, p := range []*string{&op.Path, &op.Path2} {
			if *p == from || strings.HasPrefix(*p, from+"/") {
				*p = to + strings.TrimPrefix(*p, from)
			}
		}
		out[i] = op
	}
	return out
}
