//go:build crashtest

package crashtest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestSoak runs real procmail deliveries while several POP clients
// retrieve, delete and quit in parallel and most sessions are SIGKILLed,
// at moments spread over the whole session: during login, between
// commands, between the DELEs and QUIT, and inside the QUIT rewrite
// (after QUIT is sent, and at the update's failpoints). Some messages are
// over 64 KB, so that the rewrite takes long enough to be hit. At the end
// every delivered message is gone only if a client DELE'd it, and must be
// gone if that client got QUIT +OK; everything else is in the spool
// exactly once, and every copy a client retrieved was byte-identical.
func TestSoak(t *testing.T) {
	t.Parallel()
	procmail, err := exec.LookPath("procmail")
	if err != nil {
		t.Skip("procmail not installed (apt-get install -y procmail)")
	}
	const (
		deliveries  = 60
		clients     = 3
		minSessions = 60
		budget      = 60 * time.Second
	)
	e := newEnv(t, false)
	e.put(map[string][]byte{testUser: nil})
	rc := filepath.Join(e.root, "procmailrc")
	os.WriteFile(rc, []byte("DEFAULT="+e.spoolPath()+"\nSHELL=/bin/sh\nLOCKSLEEP=1\n"), 0o644)

	var mu sync.Mutex
	var delivered [][]byte
	committed := map[string]bool{}   // DELE'd in a session whose QUIT +OK arrived
	uncommitted := map[string]bool{} // DELE'd without it
	landed := map[string]int{}       // where the kills fell
	var retrieved [][]byte
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	big := 0
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewSource(99))
		for i := 0; i < deliveries; i++ {
			msg := mdaMessage(fmt.Sprintf("soak-%d", i))
			if i%5 == 2 {
				msg = bigMessage(fmt.Sprintf("soak-%d", i), 64<<10+rng.Intn(256<<10))
				big++
			}
			cmd := exec.Command(procmail, "-m", rc)
			cmd.Stdin = bytes.NewReader(msg)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("procmail: %v %s", err, out)
				continue
			}
			mu.Lock()
			delivered = append(delivered, msg)
			mu.Unlock()
			// Spread over the sessions, so that they find mail to fetch.
			time.Sleep(time.Duration(50+rng.Intn(250)) * time.Millisecond)
		}
	}()
	updatePoints := []string{"update.locked", "update.newmail-saved", "update.spool-truncated", "update.spool-written", "update.spool-synced", "update.done"}
	sessions, kills, failpointKills := 0, 0, 0
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(c) + 1))
			for {
				select {
				case <-stop:
					return
				default:
				}
				var proc *os.Process
				kill := func() {
					if proc != nil {
						proc.Signal(syscall.SIGKILL)
					}
				}
				p := plan{started: func(pr *os.Process) { proc = pr }}
				switch {
				case c == 0: // leaves mail on the server
				case rng.Intn(4) == 0:
					p.deleteAll = true
				default:
					p.deleteIf = func(string) bool { return rng.Intn(3) == 0 }
				}
				var env []string
				switch rng.Intn(6) {
				case 0: // no kill
				case 1: // during login or the first commands
					p.killAfter = time.Duration(1+rng.Intn(15)) * time.Millisecond
				case 2: // between two commands
					after := 1 + rng.Intn(4)
					p.afterRetr = func(n int) {
						if n == after {
							kill()
						}
					}
				case 3: // between the DELEs and QUIT
					p.beforeQuit = kill
				case 4: // inside the QUIT rewrite, at a random moment
					d := time.Duration(rng.Intn(1500)) * time.Microsecond
					p.afterQuitSent = func() { time.Sleep(d); kill() }
				case 5: // inside the QUIT rewrite, at one of its steps
					env = append(env, "POPPER_FAILPOINT="+updatePoints[rng.Intn(len(updatePoints))])
				}
				s := e.run(p, env...)
				mu.Lock()
				sessions++
				if killedBySIGKILL(s.ExitErr) {
					kills++
					if len(env) > 0 {
						failpointKills++
					}
					landed[landing(s)]++
				}
				for _, id := range s.Deleted {
					if s.QuitOK {
						committed[id] = true
					} else {
						uncommitted[id] = true
					}
				}
				retrieved = append(retrieved, s.Messages...)
				mu.Unlock()
				time.Sleep(time.Duration(50+rng.Intn(200)) * time.Millisecond)
			}
		}(c)
	}
	deadline := time.After(budget)
	done := make(chan struct{})
	go func() {
		for {
			mu.Lock()
			n := len(delivered)
			mu.Unlock()
			if n >= deliveries {
				close(done)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	select {
	case <-done:
	case <-deadline:
	}
	// Keep the clients (and their kills) going after the last delivery
	// until enough sessions have run, within the budget.
	for more := true; more; {
		mu.Lock()
		more = sessions < minSessions
		mu.Unlock()
		select {
		case <-deadline:
			more = false
		case <-time.After(100 * time.Millisecond):
		}
	}
	close(stop)
	wg.Wait()

	m := ledgerManifest(t, delivered, committed, uncommitted)
	if out, err := e.recover(); err != nil {
		t.Errorf("popper --recover: %v\n%s", err, out)
	}
	for _, f := range e.verify("after the soak", m) {
		t.Error(f)
	}
	bad := checkRetrieved(delivered, retrieved)
	for _, b := range bad {
		t.Errorf("a client retrieved a copy that differs from the delivered message: %s", b)
	}
	inSpool, gone := ledger(t, e.spoolDir, m)
	t.Logf("SUMMARY soak: %d delivered by procmail (%d over 64 KB), %d sessions, %d SIGKILLs (%d at update failpoints; landed: %s); ledger: %d delivered = %d deleted with QUIT +OK + %d deleted without it and gone + %d in the spool, each once; %d retrieved copies byte-identical",
		len(delivered), big, sessions, kills, failpointKills, histogram(landed), len(delivered), len(committed), gone, inSpool, len(retrieved)-len(bad))
	if !t.Failed() && inSpool+gone+len(committed) != len(delivered) {
		t.Errorf("the ledger does not balance")
	}
}

func killedBySIGKILL(err error) bool {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok {
			return ws.Signaled() && ws.Signal() == syscall.SIGKILL
		}
	}
	return false
}

// bigMessage is a delivery of about size bytes.
func bigMessage(id string, size int) []byte {
	var b bytes.Buffer
	b.Write(bytes.TrimSuffix(mdaMessage(id), []byte("\n")))
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "%s line %d: %x\n", id, i, i*2654435761%1000003)
	}
	b.WriteString("\n")
	return b.Bytes()
}

// landing says where in a session a kill fell, from what the client saw.
func landing(s *session) string {
	switch {
	case !s.LoggedIn:
		return "login"
	case s.QuitOK:
		return "after-QUIT-OK"
	case s.QuitSent:
		return "QUIT-rewrite"
	case len(s.Deleted) > 0:
		return "after-DELE-before-QUIT"
	}
	return "transaction"
}

func histogram(h map[string]int) string {
	var parts []string
	for _, k := range sortedNames(h) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, h[k]))
	}
	return strings.Join(parts, " ")
}

// ledgerManifest is the manifest of what was delivered: a message DELE'd
// in a session whose QUIT +OK arrived must be gone, one DELE'd without it
// may be, every other must be there once.
func ledgerManifest(t *testing.T, delivered [][]byte, committed, uncommitted map[string]bool) Manifest {
	var m Manifest
	for _, msg := range delivered {
		mm, err := ManifestOf(msg, MustSurvive)
		if err != nil {
			t.Fatal(err)
		}
		id := mm[0].MessageID
		switch {
		case committed[id]:
			mm[0].Fate = MustGo
		case uncommitted[id]:
			mm[0].Fate = MayGo
		}
		m = append(m, mm...)
	}
	return m
}

// ledger counts the manifest's messages that are in the spool directory,
// and those that may go and are gone.
func ledger(t *testing.T, dir string, m Manifest) (inSpool, gone int) {
	msgs, _, err := Scan(dir)
	if err != nil {
		t.Fatal(err)
	}
	present := map[string]bool{}
	for _, msg := range msgs {
		if !IsQuarantine(msg.File) {
			present[msg.MessageID] = true
		}
	}
	for _, e := range m {
		switch {
		case present[e.MessageID]:
			inSpool++
		case e.Fate == MayGo:
			gone++
		}
	}
	return inSpool, gone
}

// checkRetrieved compares every copy clients retrieved with the message
// delivered under its Message-ID: the same header (but for the X-UIDL:
// and Status: lines the server writes) and the same body. RETR sends no
// From_ line.
func checkRetrieved(delivered, retrieved [][]byte) []string {
	want := map[string]Message{}
	for _, d := range delivered {
		msgs, _ := SplitMbox("", d)
		if len(msgs) == 1 {
			want[msgs[0].MessageID] = msgs[0]
		}
	}
	var bad []string
	for _, r := range retrieved {
		got := parseMessage("", append([]byte("From x\n"), r...), 0)
		w, ok := want[got.MessageID]
		if !ok {
			bad = append(bad, fmt.Sprintf("unknown message %q", got.MessageID))
			continue
		}
		wn := parseMessage("", wireForm(w, delivered), 0)
		if got.HeaderSHA != wn.HeaderSHA || got.BodySHA != wn.BodySHA {
			bad = append(bad, got.MessageID)
		}
	}
	sort.Strings(bad)
	return bad
}

// wireForm is a delivered message as RETR shows it, but for its From_
// line, which is replaced by the placeholder checkRetrieved uses.
func wireForm(m Message, delivered [][]byte) []byte {
	for _, d := range delivered {
		if msgs, _ := SplitMbox("", d); len(msgs) == 1 && msgs[0].MessageID == m.MessageID {
			nl := bytes.IndexByte(d, '\n')
			return append([]byte("From x\n"), d[nl+1:]...)
		}
	}
	return nil
}
