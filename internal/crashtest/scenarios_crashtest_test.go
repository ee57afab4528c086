//go:build crashtest

package crashtest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// scenario is one kind of session whose every crash point is tested.
type scenario struct {
	name      string
	server    bool
	messages  int
	del       func(ids []string) map[string]bool // which Message-IDs to DELE
	deleteAll bool
	arrive    bool   // a delivery during the session
	leftover  bool   // a crashed session's temp drop exists at login
	drop      bool   // connection dropped after DELE (update-on-abort)
	sweep     bool   // the process under test is popper --recover
	mbox      []byte // the spool to start with; nil: testSpool(messages)
	junk      bool   // a line that is no mail before the first message
	settled   bool   // X-UIDL and Status already written back, as after a session
	// strictNames: the binary is told that no file system makes a new
	// name durable with the file's fsync (POPPER_CRASHTEST_STRICT_NAMES),
	// so that it syncs the directory and the states are those of the
	// strict POSIX model.
	strictNames bool
}

func ids(n int) []string {
	var out []string
	for i := 1; i <= n; i++ {
		out = append(out, fmt.Sprintf("<m%d@crashtest>", i))
	}
	return out
}

func deleteSecond(ids []string) map[string]bool { return map[string]bool{ids[1]: true} }

func deleteLast(ids []string) map[string]bool { return map[string]bool{ids[len(ids)-1]: true} }

func scenarios() []scenario {
	var out []scenario
	for _, server := range []bool{false, true} {
		mode := "normal"
		if server {
			mode = "server"
		}
		out = append(out,
			scenario{name: mode + "/no-change", server: server, messages: 3},
			scenario{name: mode + "/delete-one", server: server, messages: 3, del: deleteSecond},
			scenario{name: mode + "/delete-all", server: server, messages: 3, deleteAll: true},
			scenario{name: mode + "/delete-one+arrival", server: server, messages: 3, del: deleteSecond, arrive: true},
			scenario{name: mode + "/delete-all+arrival", server: server, messages: 3, deleteAll: true, arrive: true},
			scenario{name: mode + "/abort-after-dele", server: server, messages: 3, del: deleteSecond, drop: true},
		)
	}
	// A spool with bytes that are no mail is served from a copy in the
	// temp drop (qpopper's normal mode), the junk quarantined.
	out = append(out,
		scenario{name: "copy/delete-one", messages: 3, del: deleteSecond, junk: true},
		scenario{name: "copy/delete-one+arrival", messages: 3, del: deleteSecond, arrive: true, junk: true},
		scenario{name: "copy/delete-all+arrival", messages: 3, deleteAll: true, arrive: true, junk: true},
	)
	// A settled spool: an update leaves the messages before the first
	// change where they are and rewrites the spool from there.
	out = append(out,
		scenario{name: "settled/normal/delete-one", messages: 3, del: deleteSecond, settled: true},
		scenario{name: "settled/normal/delete-one+arrival", messages: 3, del: deleteSecond, arrive: true, settled: true},
		scenario{name: "settled/server/delete-one+arrival", server: true, messages: 3, del: deleteSecond, arrive: true, settled: true},
		scenario{name: "settled/normal/delete-last", messages: 3, del: deleteLast, settled: true},
		scenario{name: "settled/normal/delete-one+arrival/posix", messages: 3, del: deleteSecond, arrive: true, settled: true, strictNames: true},
	)
	out = append(out,
		scenario{name: "recovery/leftover-at-login", messages: 3, del: deleteSecond, leftover: true},
		scenario{name: "recovery/sweep", messages: 3, leftover: true, sweep: true},
	)
	return out
}

// withJunk puts a line that belongs to no message before mbox's first
// message, which makes a session serve the spool from a copy (and
// quarantine the line: it is not mail, and not in the manifest).
func withJunk(mbox []byte) []byte {
	return append([]byte("This line is no mail: the session copies the spool.\n\n"), mbox...)
}

// settle gives every message of mbox (from testSpool or largeSpool) the
// X-UIDL and Status lines a session writes back, first in its header.
func settle(mbox []byte) []byte {
	var b bytes.Buffer
	n := 0
	prevBlank := true
	for _, line := range bytes.SplitAfter(mbox, []byte("\n")) {
		b.Write(line)
		if prevBlank && bytes.HasPrefix(line, []byte("From sender")) {
			n++
			fmt.Fprintf(&b, "X-UIDL: crashtest-uid-%04d\nStatus: U\n", n)
		}
		prevBlank = len(line) == 1
	}
	return b.Bytes()
}

// leftoverFiles is the spool directory a session killed after its login
// copy leaves (popper's own temp drop is qpopper's name and format), with
// one message delivered after the crash.
func leftoverFiles(t *testing.T, spool []byte) (map[string][]byte, []byte) {
	fx, err := QpopperFixtures(spool, testUser)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fx {
		if f.Name == "W0-session-leftover" {
			return f.Files, f.Files[testUser]
		}
	}
	t.Fatal("no W0 fixture")
	return nil, nil
}

// start prepares e for sc and returns the base manifest (everything that
// is in the directory before the process under test runs).
func (sc scenario) start(t *testing.T, e *env) Manifest {
	spool := sc.mbox
	if spool == nil {
		spool = testSpool(sc.messages)
	}
	if sc.settled {
		spool = settle(spool)
	}
	base, err := ManifestOf(spool, MustSurvive)
	if err != nil {
		t.Fatal(err)
	}
	if sc.leftover {
		files, mail := leftoverFiles(t, spool)
		e.put(files)
		extra, _ := ManifestOf(mail, MustSurvive)
		return append(base, extra...)
	}
	if sc.junk {
		spool = withJunk(spool)
	}
	e.put(map[string][]byte{testUser: spool})
	return base
}

// exec runs the process under test and returns the manifest its outcome
// implies, and whether the client saw QUIT +OK.
func (sc scenario) exec(t *testing.T, e *env, base Manifest, onQuitOK func(), extraEnv ...string) (Manifest, *session) {
	if sc.sweep {
		out, err := e.recover(extraEnv...)
		return base, &session{ExitErr: err, Transcript: builder(out)}
	}
	arrived := mdaMessage("arrived-" + strings.ReplaceAll(sc.name, "/", "-"))
	delivered := false
	p := plan{deleteAll: sc.deleteAll, dropAfterDele: sc.drop, onQuitOK: onQuitOK}
	if sc.del != nil {
		p.deleteIDs = sc.del(ids(sc.messages))
	}
	if sc.arrive {
		p.afterLogin = func() { e.deliver(arrived); delivered = true }
	}
	s := e.run(p, extraEnv...)
	var more [][]byte
	if delivered {
		more = append(more, arrived)
	}
	return expect(t, base, s, more...), s
}

func builder(s string) (b strings.Builder) {
	b.WriteString(s)
	return
}

// hits lists every failpoint hit of a traced run as name:N.
func hits(trace string) ([]string, error) {
	b, err := os.ReadFile(trace)
	if err != nil {
		return nil, err
	}
	count := map[string]int{}
	var out []string
	for _, name := range strings.Fields(string(b)) {
		count[name]++
		out = append(out, name+":"+strconv.Itoa(count[name]))
	}
	return out, nil
}

// TestFailpointKills kills the process under test at every failpoint hit
// of every scenario, then checks that the next login (directly, and after
// popper --recover) loses, duplicates and resurrects nothing.
func TestFailpointKills(t *testing.T) {
	start := time.Now()
	seen := map[string]bool{}
	total := 0
	for _, sc := range scenarios() {
		sc := sc
		t.Run(sc.name, func(t *testing.T) {
			e := newEnv(t, sc.server)
			trace := filepath.Join(e.root, "trace")
			base := sc.start(t, e)
			m, s := sc.exec(t, e, base, nil, "POPPER_FAILPOINT_TRACE="+trace)
			if !sc.sweep && !sc.drop && !s.QuitOK {
				t.Fatalf("untraced run failed:\n%s", s.Transcript.String())
			}
			for _, f := range e.verify("after a clean run", m) {
				t.Error(f)
			}
			points, err := hits(trace)
			if err != nil {
				t.Fatalf("no failpoint trace: %v", err)
			}
			t.Logf("failpoints: %s", strings.Join(points, " "))
			for _, fp := range points {
				seen[strings.SplitN(fp, ":", 2)[0]] = true
				for _, viaSweep := range []bool{false, true} {
					total++
					e := newEnv(t, sc.server)
					base := sc.start(t, e)
					m, s := sc.exec(t, e, base, nil, "POPPER_FAILPOINT="+fp)
					if !sc.sweep && s.QuitOK {
						t.Logf("%s: QUIT +OK arrived before the kill", fp)
					}
					label := "killed at " + fp
					if viaSweep {
						label += ", then popper --recover"
						if out, err := e.recover(); err != nil {
							t.Errorf("%s: popper --recover: %v\n%s", label, err, out)
						}
					}
					for _, f := range e.verify(label, m) {
						t.Error(f)
					}
				}
			}
		})
	}
	var names []string
	for n := range seen {
		names = append(names, n)
	}
	t.Logf("SUMMARY failpoint kills: %d crash runs checked, %d distinct failpoints (%s), %v",
		total, len(names), strings.Join(sortStrings(names), " "), time.Since(start).Round(time.Second))
}

func sortStrings(s []string) []string {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s
}
