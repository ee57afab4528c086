//go:build crashtest

package crashtest

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestSoak runs real procmail deliveries while several POP clients
// retrieve, delete and quit in parallel and some sessions are SIGKILLed at
// random moments. At the end every delivered message is gone only if a
// client DELE'd it, and must be gone if that client got QUIT +OK;
// everything else is in the spool exactly once.
func TestSoak(t *testing.T) {
	procmail, err := exec.LookPath("procmail")
	if err != nil {
		t.Skip("procmail not installed (apt-get install -y procmail)")
	}
	const (
		deliveries  = 60
		clients     = 3
		minSessions = 40
		budget      = 60 * time.Second
	)
	e := newEnv(t, false)
	e.put(map[string][]byte{testUser: nil})
	rc := filepath.Join(e.root, "procmailrc")
	os.WriteFile(rc, []byte("DEFAULT="+e.spoolPath()+"\nSHELL=/bin/sh\n"), 0o644)

	var mu sync.Mutex
	var delivered [][]byte
	committed := map[string]bool{}   // DELE'd in a session whose QUIT +OK arrived
	uncommitted := map[string]bool{} // DELE'd without it
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < deliveries; i++ {
			msg := mdaMessage(fmt.Sprintf("soak-%d", i))
			cmd := exec.Command(procmail, "-m", rc)
			cmd.Stdin = bytes.NewReader(msg)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("procmail: %v %s", err, out)
				continue
			}
			mu.Lock()
			delivered = append(delivered, msg)
			mu.Unlock()
			time.Sleep(time.Duration(rand.Intn(60)) * time.Millisecond)
		}
	}()
	sessions, kills := 0, 0
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
				p := plan{deleteAll: true}
				if rng.Intn(4) == 0 {
					p.killAfter = time.Duration(rng.Intn(40)) * time.Millisecond
				}
				s := e.run(p)
				mu.Lock()
				sessions++
				if p.killAfter > 0 {
					kills++
				}
				for _, id := range s.Deleted {
					if s.QuitOK {
						committed[id] = true
					} else {
						uncommitted[id] = true
					}
				}
				mu.Unlock()
				time.Sleep(time.Duration(rng.Intn(30)) * time.Millisecond)
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
	// Keep the clients (and their random kills) going after the last
	// delivery until enough sessions have run, within the budget.
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
	if out, err := e.recover(); err != nil {
		t.Errorf("popper --recover: %v\n%s", err, out)
	}
	for _, f := range e.verify("after the soak", m) {
		t.Error(f)
	}
	t.Logf("SUMMARY soak: %d delivered by procmail, %d sessions (%d with a random SIGKILL), %d deletes committed, %d uncommitted",
		len(delivered), sessions, kills, len(committed), len(uncommitted))
}
