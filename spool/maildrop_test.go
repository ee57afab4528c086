package spool

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/popperd/popper/platform"
)

// testMsg builds one mbox message with a recognisable Message-ID.
func testMsg(id string, body string) string {
	return fmt.Sprintf("From sender@example.org Sat Nov 28 10:%02d:00 2026\n"+
		"Received: from mx by host; Sat, 28 Nov 2026 10:00:00 +0000\n"+
		"Message-ID: <%s@example.org>\nSubject: test %s\nFrom: sender@example.org\n\n%s\n\n",
		len(id)%60, id, id, body)
}

func testConfig(t testing.TB, server bool) *Config {
	t.Helper()
	dir := t.TempDir()
	return &Config{
		Spool:       filepath.Join(dir, "alice"),
		TempDrop:    filepath.Join(dir, ".alice.pop"),
		ServerMode:  server,
		Parse:       ParseOptions{UpdateStatusHeaders: true},
		LockTimeout: 2 * time.Second,
		DotLockWait: func(int) time.Duration { return 10 * time.Millisecond },
		Logf:        t.Logf,
	}
}

var idRE = regexp.MustCompile(`(?m)^Message-ID: <([^@>]+)@`)

// ids lists the Message-IDs in a file, in order.
func ids(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range idRE.FindAllSubmatch(b, -1) {
		out = append(out, string(m[1]))
	}
	return out
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0660); err != nil {
		t.Fatal(err)
	}
}

func appendTo(t *testing.T, path, content string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0660)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
}

func equal(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }

func TestNormalSessionDeletesAndKeepsNewMail(t *testing.T) {
	for _, server := range []bool{false, true} {
		t.Run(fmt.Sprintf("server=%v", server), func(t *testing.T) {
			c := testConfig(t, server)
			write(t, c.Spool, testMsg("a", "one")+testMsg("b", "two")+testMsg("c", "three"))
			md, err := Open(c)
			if err != nil {
				t.Fatal(err)
			}
			if md.Len() != 3 {
				t.Fatalf("Len = %d, want 3", md.Len())
			}
			// Both modes serve the spool in place; the temp drop is the
			// session lock, empty.
			if got := ids(t, c.Spool); !equal(got, []string{"a", "b", "c"}) {
				t.Fatalf("spool holds %v during the session", got)
			}
			if fi, err := os.Lstat(c.TempDrop); err != nil || fi.Size() != 0 {
				t.Fatalf("temp drop during the session: %v, %v", fi, err)
			}
			var buf bytes.Buffer
			if err := md.WriteMessage(&buf, 1, -1); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(buf.String(), "two") || !strings.Contains(buf.String(), "X-UIDL: "+md.UID(1)) {
				t.Fatalf("RETR 2 gave %q", buf.String())
			}
			appendTo(t, c.Spool, testMsg("new", "arrived during the session"))
			if err := md.Commit([]bool{false, true, false}, []bool{false, true, false}); err != nil {
				t.Fatal(err)
			}
			if got, want := ids(t, c.Spool), []string{"a", "c", "new"}; !equal(got, want) {
				t.Fatalf("spool after update = %v, want %v", got, want)
			}
			if _, err := os.Lstat(c.TempDrop); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("temp drop left behind: %v", err)
			}
			// UIDs were persisted: a second session sees the same ones.
			uids := map[string]bool{md.UID(0): true, md.UID(2): true}
			md2, err := Open(c)
			if err != nil {
				t.Fatal(err)
			}
			defer md2.Commit(nil, nil)
			if md2.Len() != 3 || !uids[md2.UID(0)] || !uids[md2.UID(1)] {
				t.Fatalf("UIDs not stable: before %v, after %q %q", uids, md2.UID(0), md2.UID(1))
			}
		})
	}
}

func TestDeleteAllLeavesNewMail(t *testing.T) {
	for _, server := range []bool{false, true} {
		c := testConfig(t, server)
		write(t, c.Spool, testMsg("a", "one")+testMsg("b", "two"))
		md, err := Open(c)
		if err != nil {
			t.Fatal(err)
		}
		appendTo(t, c.Spool, testMsg("new", "late"))
		if err := md.Commit([]bool{true, true}, nil); err != nil {
			t.Fatal(err)
		}
		if got := ids(t, c.Spool); !equal(got, []string{"new"}) {
			t.Fatalf("server=%v: spool = %v, want [new]", server, got)
		}
	}
}

func TestSecondSessionIsInUse(t *testing.T) {
	c := testConfig(t, false)
	write(t, c.Spool, testMsg("a", "one"))
	md, err := Open(c)
	if err != nil {
		t.Fatal(err)
	}
	defer md.Commit(nil, nil)
	_, err = Open(c)
	var e *Error
	if !errors.As(err, &e) || e.Kind != ErrInUse {
		t.Fatalf("second Open: %v, want ErrInUse", err)
	}
	if fi, err := os.Lstat(c.TempDrop); err != nil || fi.Size() != 0 {
		t.Fatalf("the live session's temp drop was touched: %v, %v", fi, err)
	}
	if got := ids(t, c.Spool); !equal(got, []string{"a"}) {
		t.Fatalf("the spool was touched: %v", got)
	}
}

func TestUnchangedPollWritesNothing(t *testing.T) {
	for _, server := range []bool{false, true} {
		t.Run(fmt.Sprintf("server=%v", server), func(t *testing.T) { testUnchangedPoll(t, server) })
	}
}

func testUnchangedPoll(t *testing.T, server bool) {
	c := testConfig(t, server)
	write(t, c.Spool, testMsg("a", "one")+testMsg("b", "two"))
	md, err := Open(c) // first session persists the generated UIDs
	if err != nil {
		t.Fatal(err)
	}
	if err := md.Commit(nil, nil); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(c.Spool)
	platform.ResetCounters()
	md, err = Open(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := md.Commit(nil, nil); err != nil {
		t.Fatal(err)
	}
	got := platform.ReadCounters()
	if got.Fsyncs != 0 || got.BytesWritten != 0 {
		t.Fatalf("unchanged poll: %+v, want no fsync and no bytes", got)
	}
	after, _ := os.ReadFile(c.Spool)
	if !bytes.Equal(before, after) {
		t.Fatal("spool changed")
	}
}

func TestLeftoverTempDropIsMergedFirst(t *testing.T) {
	c := testConfig(t, false)
	write(t, c.TempDrop, testMsg("old1", "x")+testMsg("old2", "y"))
	os.Chmod(c.TempDrop, 0660)
	write(t, c.Spool, testMsg("new", "z"))
	md, err := Open(c)
	if err != nil {
		t.Fatal(err)
	}
	if md.Len() != 3 {
		t.Fatalf("Len = %d, want 3", md.Len())
	}
	if err := md.Commit(nil, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := ids(t, c.Spool), []string{"old1", "old2", "new"}; !equal(got, want) {
		t.Fatalf("spool = %v, want %v", got, want)
	}
}

// A qpopper W3 leftover: the temp drop holds everything, the spool a
// partial rewrite of it (X-UIDL added, last message torn), then mail
// delivered after the crash.
func TestRecoverPartialRewrite(t *testing.T) {
	c := testConfig(t, false)
	a, b, cc := testMsg("a", "one"), testMsg("b", strings.Repeat("two ", 500)), testMsg("c", "three")
	write(t, c.TempDrop, a+b+cc)
	rewrittenA := strings.Replace(a, "\n", "\nX-UIDL: 0123456789abcdef01\n", 1)
	rewrittenA = strings.Replace(rewrittenA, "\n\none", "\nStatus: RO\n\none", 1)
	tornB := b[:len(b)/2]
	write(t, c.Spool, rewrittenA+tornB)
	res, err := Recover(c)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Found || res.Skipped {
		t.Fatalf("Recover = %+v", res)
	}
	if got, want := ids(t, c.Spool), []string{"a", "b", "c"}; !equal(got, want) {
		t.Fatalf("spool = %v, want %v", got, want)
	}
	sp, _ := os.ReadFile(c.Spool)
	if !strings.Contains(string(sp), "X-UIDL: 0123456789abcdef01") {
		t.Error("the UID written back into the spool was not kept")
	}
	if !strings.Contains(string(sp), b) {
		t.Error("message b is not whole")
	}
	if _, err := os.Lstat(c.TempDrop); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("temp drop not removed")
	}
	// Idempotent: a second sweep finds nothing.
	res, err = Recover(c)
	if err != nil || res.Found {
		t.Fatalf("second Recover = %+v, %v", res, err)
	}
}

func TestRecoverQuarantinesGarbage(t *testing.T) {
	c := testConfig(t, false)
	garbage := "\x00\x00\x00garbage that is no mail\n"
	write(t, c.TempDrop, garbage+testMsg("a", "one"))
	res, err := Recover(c)
	if err != nil {
		t.Fatal(err)
	}
	if res.Quarantined != int64(len(garbage)) {
		t.Fatalf("quarantined %d bytes, want %d", res.Quarantined, len(garbage))
	}
	q, err := os.ReadFile(res.QuarantineFile)
	if err != nil || string(q) != garbage {
		t.Fatalf("quarantine file holds %q (%v)", q, err)
	}
	if got := ids(t, c.Spool); !equal(got, []string{"a"}) {
		t.Fatalf("spool = %v", got)
	}
}

func TestRecoverSkipsLiveSession(t *testing.T) {
	c := testConfig(t, false)
	write(t, c.Spool, testMsg("a", "one"))
	md, err := Open(c)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Recover(c)
	if err != nil || !res.Skipped {
		t.Fatalf("Recover during a session = %+v, %v", res, err)
	}
	if err := md.Commit(nil, nil); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, c.Spool); !equal(got, []string{"a"}) {
		t.Fatalf("spool = %v", got)
	}
}

// Duplicates that really arrived twice stay twice; copies made by a
// crashed update do not.
func TestRecoverKeepsGenuineDuplicates(t *testing.T) {
	c := testConfig(t, false)
	m := testMsg("twice", "same")
	write(t, c.TempDrop, m+m)
	write(t, c.Spool, m) // one of them already written back
	if _, err := Recover(c); err != nil {
		t.Fatal(err)
	}
	got := ids(t, c.Spool)
	sort.Strings(got)
	if !equal(got, []string{"twice", "twice"}) {
		t.Fatalf("spool = %v, want two copies", got)
	}
}

func TestBulletinsDeliveredOnceAtLogin(t *testing.T) {
	for _, server := range []bool{false, true} {
		c := testConfig(t, server)
		dir := filepath.Dir(c.Spool)
		bulls := filepath.Join(dir, "bulls")
		os.Mkdir(bulls, 0755)
		write(t, filepath.Join(bulls, "1"), "From admin@example.org Sat Nov 28 09:00:00 2026\nTo: everyone\nSubject: maintenance\n\nDowntime tonight.\n")
		c.Bulletins = &BulletinConfig{Dir: bulls, User: "alice", Host: "pop.example.org", Max: 1, StatePath: filepath.Join(dir, ".popbull")}
		// The spool's last message lacks its blank line: the bulletin must
		// still be a message of its own.
		write(t, c.Spool, strings.TrimSuffix(testMsg("a", "one"), "\n"))
		md, err := Open(c)
		if err != nil {
			t.Fatal(err)
		}
		if md.Len() != 2 {
			t.Fatalf("server=%v: %d messages, want the spool's and the bulletin", server, md.Len())
		}
		var buf bytes.Buffer
		md.WriteMessage(&buf, 1, -1)
		if !strings.Contains(buf.String(), "To: alice@pop.example.org") || !strings.Contains(buf.String(), "Downtime tonight.") {
			t.Fatalf("bulletin as sent: %q", buf.String())
		}
		if err := md.Commit(nil, nil); err != nil {
			t.Fatal(err)
		}
		md, err = Open(c) // delivered once only
		if err != nil {
			t.Fatal(err)
		}
		if md.Len() != 2 {
			t.Fatalf("second login: %d messages, want 2", md.Len())
		}
		md.Commit(nil, nil)
	}
}

// An MMDF temp drop whose last message lost its trailer in a crash is
// merged with the spool: the trailer is put back, so the spool's first
// message keeps its separator and nothing runs together.
func TestRecoverMMDFWithoutTrailer(t *testing.T) {
	const sep = "\x01\x01\x01\x01\n"
	mmdf := func(id string) string {
		return sep + strings.TrimPrefix(testMsg(id, "body of "+id), strings.SplitAfter(testMsg(id, ""), "\n")[0]) + sep
	}
	for _, tail := range []string{"", "\x01\x01\x01\x01", "\x01\x01"} {
		c := testConfig(t, false)
		torn := strings.TrimSuffix(mmdf("old2"), sep) + tail
		write(t, c.TempDrop, mmdf("old1")+torn)
		write(t, c.Spool, mmdf("new1")+mmdf("new2"))
		if _, err := Recover(c); err != nil {
			t.Fatal(err)
		}
		if got, want := ids(t, c.Spool), []string{"old1", "old2", "new1", "new2"}; !equal(got, want) {
			t.Fatalf("tail %q: spool = %v, want %v", tail, got, want)
		}
		data, _ := os.ReadFile(c.Spool)
		d, err := Parse(bytes.NewReader(data), ParseOptions{})
		if err != nil || len(d.Msgs) != 4 || len(d.Junk) != 0 {
			t.Fatalf("tail %q: spool parses as %d messages, junk %v, %v:\n%q", tail, len(d.Msgs), d.Junk, err, data)
		}
	}
}

// TestInPlaceWritesWhatACopyWrites: a normal-mode session served in place
// leaves the spool with the bytes qpopper's normal mode, which served
// every session from a copy, wrote back: for random drops, deletions,
// retrievals and mail delivered during the session, over two sessions.
// And an in-place update that changes nothing writes nothing.
func TestInPlaceWritesWhatACopyWrites(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	for iter := 0; iter < 120; iter++ {
		content := randomDrop(rng, iter%6 == 0)
		type action struct {
			del, retr []bool
			newMail   string
		}
		var actions []action
		for s := 0; s < 4; s++ {
			a := action{}
			for i := 0; i < 8; i++ {
				a.del = append(a.del, rng.Intn(5) == 0)
				a.retr = append(a.retr, rng.Intn(3) == 0)
			}
			if rng.Intn(3) == 0 && iter%6 != 0 {
				a.newMail = testMsg(fmt.Sprintf("new%d", s), "during the session")
			}
			if s >= 2 {
				// Polls: the first settles the mail delivered during the
				// last session (its X-UIDL), the second must write nothing.
				a = action{del: make([]bool, 8), retr: make([]bool, 8)}
			}
			actions = append(actions, a)
		}
		run := func(copy bool) ([]string, []platform.Counters) {
			c := testConfig(t, false)
			c.Parse.UIDCounter = 1000
			c.Logf = func(string, ...any) {}
			c.alwaysCopy = copy
			write(t, c.Spool, content)
			var costs []platform.Counters
			var states []string
			for _, a := range actions {
				platform.ResetCounters()
				md, err := Open(c)
				if err != nil {
					t.Fatal(err)
				}
				if a.newMail != "" {
					appendTo(t, c.Spool, a.newMail)
				}
				n := md.Len()
				if err := md.Commit(a.del[:min(n, 8)], a.retr[:min(n, 8)]); err != nil {
					t.Fatal(err)
				}
				costs = append(costs, platform.ReadCounters())
				b, _ := os.ReadFile(c.Spool)
				states = append(states, string(b))
			}
			return states, costs
		}
		wants, _ := run(true)
		gots, costs := run(false)
		for s := range wants {
			if gots[s] != wants[s] {
				t.Fatalf("drop %q\nactions %+v\nafter session %d, in place: %q\ncopy:     %q", content, actions, s+1, gots[s], wants[s])
			}
		}
		if last := costs[len(costs)-1]; last.BytesWritten != 0 || last.Fsyncs != 0 {
			t.Fatalf("drop %q\nactions %+v\nthe last poll wrote %+v", content, actions, last)
		}
	}
}

// TestUpdateWritesFromTheFirstChange: once the spool is settled, a
// session that deletes the newest message leaves the messages before it
// in place in the spool: the update is a truncate, one fsync and no
// bytes (TestUpdateCost has a deletion in the middle).
func TestUpdateWritesFromTheFirstChange(t *testing.T) {
	for _, server := range []bool{false, true} {
		c := testConfig(t, server)
		var all strings.Builder
		for i := 0; i < 50; i++ {
			all.WriteString(testMsg(fmt.Sprintf("m%02d", i), strings.Repeat("body line\n", 40)))
		}
		write(t, c.Spool, all.String())
		md, err := Open(c) // settles every X-UIDL and Status
		if err != nil {
			t.Fatal(err)
		}
		if err := md.Commit(nil, nil); err != nil {
			t.Fatal(err)
		}
		settled, _ := os.ReadFile(c.Spool)
		md, err = Open(c)
		if err != nil {
			t.Fatal(err)
		}
		del := make([]bool, md.Len())
		del[md.Len()-1] = true
		last := md.msgs.start(md.index(md.Len() - 1))
		platform.ResetCounters()
		if err := md.Commit(del, nil); err != nil {
			t.Fatal(err)
		}
		got := platform.ReadCounters()
		after, _ := os.ReadFile(c.Spool)
		if string(after) != string(settled[:last]) {
			t.Fatalf("server=%v: the spool after deleting the last message is not the settled spool without it", server)
		}
		// Deleting the newest message is a truncate: nothing written.
		if got.BytesWritten != 0 || got.Fsyncs != 1 {
			t.Errorf("server=%v: %d bytes written and %d fsyncs, want none and 1", server, got.BytesWritten, got.Fsyncs)
		}
	}
}
