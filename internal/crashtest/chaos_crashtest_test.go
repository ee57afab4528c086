//go:build crashtest

package crashtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestChaos is a soak with everything at once, for chaosBudget: the
// standalone daemon serving real POP clients (Python's poplib, several
// at a time, fetching and deleting some, and curl fetching) while
// three kinds of delivery agent append (procmail, which takes the
// dotlock and a kernel lock; dotlockfile and procmail's lockfile, which
// trust the dotlock alone), sessions are SIGKILLed or SIGSTOPped at
// random (and their dotlock, while stopped, aged past the MDAs' stale
// time, so that a dotlock-only MDA breaks it and appends under the
// stopped session), the daemon itself is SIGKILLed and restarted, and
// the spool's file system is filled up again and again (a small tmpfs,
// where the machine lets the test mount one). Then popper --recover, and
// the ledger: every message an MDA acknowledged is gone only if a client
// DELE'd it, and must be gone if QUIT +OK followed; every other is in the
// spool exactly once, byte for byte, and every copy a client retrieved
// was byte-identical.
const chaosBudget = 75 * time.Second

func TestChaos(t *testing.T) {
	t.Parallel()
	var missing []string
	for _, tool := range []string{"procmail", "dotlockfile", "lockfile", "python3", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		t.Skipf("not installed: %s (scripts/test installs procmail, lockfile-progs, python3, curl)", strings.Join(missing, " "))
	}
	e := newEnv(t, false)
	fullDisk, why := chaosDisk(t, e)
	e.put(map[string][]byte{testUser: nil})
	c := &chaos{t: t, e: e, start: time.Now(), stopped: map[int]bool{}, landed: map[string]int{}}
	c.writeScripts()
	c.startDaemon()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	loop := func(seed int64, minPause, maxPause time.Duration, f func(rng *rand.Rand)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewSource(seed))
			for {
				select {
				case <-stop:
					return
				default:
				}
				f(rng)
				select {
				case <-stop:
					return
				case <-time.After(minPause + time.Duration(rng.Int63n(int64(maxPause-minPause)))):
				}
			}
		}()
	}
	n := 0
	var nmu sync.Mutex
	nextID := func(kind string) string {
		nmu.Lock()
		defer nmu.Unlock()
		n++
		return fmt.Sprintf("chaos-%s-%d", kind, n)
	}
	for i, kind := range []string{"procmail", "dotlockfile", "lockfile"} {
		kind := kind
		loop(int64(10+i), 100*time.Millisecond, 600*time.Millisecond, func(rng *rand.Rand) {
			id := nextID(kind)
			msg := mdaMessage(id)
			if rng.Intn(4) == 0 {
				msg = bigMessage(id, 64<<10+rng.Intn(200<<10))
			}
			c.deliver(kind, msg)
		})
	}
	for i := 0; i < 3; i++ {
		loop(int64(20+i), 50*time.Millisecond, 400*time.Millisecond, func(rng *rand.Rand) { c.poplib(rng) })
	}
	loop(30, 200*time.Millisecond, 900*time.Millisecond, func(rng *rand.Rand) { c.curl() })
	loop(40, 100*time.Millisecond, 400*time.Millisecond, func(rng *rand.Rand) { c.disturbSession(rng) })
	loop(50, 3*time.Second, 6*time.Second, func(rng *rand.Rand) { c.restartDaemon(rng) })
	loop(70, 50*time.Millisecond, 150*time.Millisecond, func(rng *rand.Rand) { c.thaw(rng) })
	if fullDisk {
		loop(60, 2*time.Second, 5*time.Second, func(rng *rand.Rand) { c.fillDisk(rng) })
	}
	time.Sleep(chaosBudget)
	close(stop)
	wg.Wait()

	// Wind down: everything continued, the disk emptied, the daemon
	// stopped, every session ended; then the boot sweep.
	c.contAll()
	os.RemoveAll(c.ballast)
	c.stopDaemon()
	c.waitSessions(30 * time.Second)
	if out, err := e.recover(); err != nil {
		t.Errorf("popper --recover after the chaos: %v\n%s", err, out)
	}
	acked := ledgerManifest(t, c.delivered, c.committed, c.uncommitted)
	m := c.manifest(t, acked)
	fails := e.verify("after the chaos", m)
	for _, f := range fails {
		t.Error(f)
	}
	bad := checkRetrieved(c.delivered, c.retrieved)
	for _, b := range bad {
		t.Errorf("a client retrieved a copy that differs from the delivered message: %s", b)
	}
	if t.Failed() {
		for _, f := range append(fails, bad...) {
			if m := regexp.MustCompile(`<[^>]+@crashtest>`).FindString(f); m != "" {
				t.Logf("events of %s:", m)
				c.explain(m)
			}
		}
		for _, r := range c.retrieved {
			for _, b := range bad {
				if messageID(r) == b {
					t.Logf("%s copy of %s: %d bytes: %q", c.from[string(r)], b, len(r), r[:min(len(r), 300)])
				}
			}
		}
		d, _ := os.ReadFile(filepath.Join(e.root, "daemon.log"))
		t.Logf("daemon log (tail): %s", d[max(0, len(d)-3000):])
		if dir := os.Getenv("CRASHTEST_KEEP"); dir != "" {
			os.WriteFile(filepath.Join(dir, "chaos-daemon.log"), d, 0o644)
			os.WriteFile(filepath.Join(dir, "chaos-events.log"), []byte(strings.Join(c.events, "\n")+"\n"), 0o644)
		}
	}
	inSpool, gone := ledger(t, e.spoolDir, acked)
	disk := fmt.Sprintf("full disk: %d episodes on a %s tmpfs, %d deliveries and %d sessions refused for lack of space", c.fills, chaosDiskSize, c.mdaENOSPC, c.popENOSPC)
	if !fullDisk {
		disk = "full disk: skipped (" + why + ")"
	}
	t.Logf("SUMMARY chaos: %v; deliveries acknowledged %s, %d refused; sessions: %s; %d SIGKILLs of sessions (landed: %s), %d SIGSTOP/SIGCONT and %d stops at failpoints (%d with the stopped session's dotlock aged past 300 s), %d daemon SIGKILL+restart; %s; ledger: %d delivered = %d deleted with QUIT +OK + %d deleted without it and gone + %d in the spool, each once; %d retrieved copies byte-identical",
		time.Since(c.start).Round(time.Second), histogram(c.byMDA), c.mdaFailed, histogram(c.sessions), c.kills, histogram(c.landed), c.stops, c.failpointStops, c.aged, c.restarts,
		disk, len(c.delivered), len(c.committed), gone, inSpool, len(c.retrieved)-len(bad))
	if !t.Failed() && inSpool+gone+len(c.committed) != len(c.delivered) {
		t.Errorf("the ledger does not balance: %d + %d + %d != %d", len(c.committed), gone, inSpool, len(c.delivered))
	}
}

const chaosDiskSize = "24m"

// chaosDisk moves e's spool directory onto a small tmpfs, where the test
// can fill the file system; it reports why not when it cannot.
func chaosDisk(t *testing.T, e *env) (bool, string) {
	disk := filepath.Join(e.root, "disk")
	if err := os.Mkdir(disk, 0o755); err != nil {
		t.Fatal(err)
	}
	if os.Getuid() != 0 {
		return false, "not root: no tmpfs"
	}
	if err := syscall.Mount("tmpfs", disk, "tmpfs", 0, "size="+chaosDiskSize+",mode=0755"); err != nil {
		return false, "mount -t tmpfs: " + err.Error()
	}
	t.Cleanup(func() { syscall.Unmount(disk, syscall.MNT_DETACH) })
	e.spoolDir = filepath.Join(disk, "mail")
	if err := os.Mkdir(e.spoolDir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(e.spoolDir, os.ModeSticky|0o777)
	conf := fmt.Sprintf("set spool-dir = %s\nset temp-dir = %s\n", e.spoolDir, e.spoolDir)
	if err := os.WriteFile(e.config, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return true, ""
}

type chaos struct {
	t       *testing.T
	e       *env
	start   time.Time
	addr    string
	ballast string
	scripts string

	mu          sync.Mutex
	daemon      *exec.Cmd
	daemonDone  chan struct{}
	delivered   [][]byte
	maybe       [][]byte // deliveries the MDA did not acknowledge
	committed   map[string]bool
	uncommitted map[string]bool
	retrieved   [][]byte
	byMDA       map[string]int
	sessions    map[string]int
	landed      map[string]int
	stopped     map[int]bool
	mdaFailed   int
	mdaENOSPC   int
	popENOSPC   int
	kills       int
	stops, aged int
	restarts    int
	fills       int
	// sessions that stopped at a failpoint (some daemons' sessions do)
	failpointStops int
	events         []string // what happened, for the log of a failure
	from           map[string]string
}

// event notes something that happened, under c.mu.
func (c *chaos) event(format string, args ...any) {
	c.events = append(c.events, fmt.Sprintf("%7.3fs ", time.Since(c.start).Seconds())+fmt.Sprintf(format, args...))
}

// explain logs the events that name id.
func (c *chaos) explain(id string) {
	for _, ev := range c.events {
		if strings.Contains(ev, id) {
			c.t.Logf("  %s", ev)
		}
	}
}

const popClient = `import json, os, poplib, random, sys
addr, port, user, pw, out, seed = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6])
rng = random.Random(seed)
res = {"login": False, "retr": [], "sent": [], "dele": [], "quit_ok": False, "error": ""}
try:
    p = poplib.POP3(addr, port, timeout=20)
    p.user(user)
    p.pass_(pw)
    res["login"] = True
    n = len(p.list()[1])
    for i in range(1, n + 1):
        lines = p.retr(i)[1]
        path = os.path.join(out, "%d.eml" % i)
        with open(path, "wb") as f:
            f.write(b"\n".join(lines) + b"\n")
        res["retr"].append(path)
        if rng.random() < 0.3:
            # Sent is enough for the server to commit it, should the
            # connection drop before QUIT (update-on-abort).
            res["sent"].append(path)
            p.dele(i)
            res["dele"].append(path)
    p.quit()
    res["quit_ok"] = True
except Exception as e:
    res["error"] = repr(e)
print(json.dumps(res))
`

const dotlockMDA = `set -u
S=$1 L=$1.lock
dotlockfile -r 40 -p "$L" || exit 75
size=$(stat -c %s "$S")
if ! cat >> "$S"; then truncate -s "$size" "$S"; dotlockfile -u "$L"; exit 75; fi
dotlockfile -u "$L"
`

const lockfileMDA = `set -u
S=$1 L=$1.lock
lockfile -l 300 -s 1 -r 40 "$L" || exit 75
size=$(stat -c %s "$S")
if ! cat >> "$S"; then truncate -s "$size" "$S"; rm -f "$L"; exit 75; fi
rm -f "$L"
`

func (c *chaos) writeScripts() {
	c.scripts = filepath.Join(c.e.root, "scripts")
	os.MkdirAll(c.scripts, 0o755)
	for name, body := range map[string]string{"popclient.py": popClient, "dotlockfile.sh": dotlockMDA, "lockfile.sh": lockfileMDA,
		"procmailrc": "DEFAULT=" + c.e.spoolPath() + "\nSHELL=/bin/sh\nLOCKSLEEP=1\n"} {
		if err := os.WriteFile(filepath.Join(c.scripts, name), []byte(body), 0o755); err != nil {
			c.t.Fatal(err)
		}
	}
	c.ballast = filepath.Join(filepath.Dir(c.e.spoolDir), "ballast")
	c.committed, c.uncommitted = map[string]bool{}, map[string]bool{}
	c.byMDA, c.sessions, c.from = map[string]int{}, map[string]int{}, map[string]string{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.t.Fatal(err)
	}
	c.addr = ln.Addr().String()
	ln.Close()
}

func (c *chaos) deliver(kind string, msg []byte) {
	var cmd *exec.Cmd
	switch kind {
	case "procmail":
		cmd = exec.Command("procmail", "-m", filepath.Join(c.scripts, "procmailrc"))
	default:
		cmd = exec.Command("sh", filepath.Join(c.scripts, kind+".sh"), c.e.spoolPath())
	}
	cmd.Stdin = bytes.NewReader(msg)
	out, err := cmd.CombinedOutput()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.event("delivery of %s by %s refused: %v %s", messageID(msg), kind, err, bytes.TrimSpace(out))
		c.mdaFailed++
		if bytes.Contains(out, []byte("space")) || c.diskFull() {
			c.mdaENOSPC++
		}
		c.maybe = append(c.maybe, msg)
		return
	}
	c.byMDA[kind]++
	c.delivered = append(c.delivered, msg)
	c.event("delivered %s by %s", messageID(msg), kind)
}

func (c *chaos) diskFull() bool {
	_, err := os.Stat(c.ballast)
	return err == nil
}

func (c *chaos) poplib(rng *rand.Rand) {
	out, err := os.MkdirTemp(c.e.root, "client")
	if err != nil {
		c.t.Fatal(err)
	}
	defer os.RemoveAll(out)
	host, port, _ := net.SplitHostPort(c.addr)
	cmd := exec.Command("python3", filepath.Join(c.scripts, "popclient.py"), host, port, testUser, testPass, out, strconv.Itoa(rng.Int()))
	b, _ := cmd.Output()
	var res struct {
		Login  bool     `json:"login"`
		Retr   []string `json:"retr"`
		Sent   []string `json:"sent"`
		Dele   []string `json:"dele"`
		QuitOK bool     `json:"quit_ok"`
		Error  string   `json:"error"`
	}
	if err := json.Unmarshal(b, &res); err != nil {
		c.t.Errorf("poplib client: %v: %q", err, b)
		return
	}
	msgs := map[string][]byte{}
	for _, p := range res.Retr {
		msgs[p], _ = os.ReadFile(p)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sessions["poplib"]++
	if !res.Login {
		c.sessions["poplib-no-login"]++
		if strings.Contains(res.Error, "space") || strings.Contains(res.Error, "SYS/TEMP") && c.diskFull() {
			c.popENOSPC++
		}
	}
	var got, sent, ok []string
	for _, p := range res.Retr {
		c.retrieved = append(c.retrieved, msgs[p])
		c.from[string(msgs[p])] = "poplib"
		got = append(got, messageID(msgs[p]))
	}
	for _, p := range res.Sent {
		sent = append(sent, messageID(msgs[p]))
	}
	for _, p := range res.Dele {
		ok = append(ok, messageID(msgs[p]))
	}
	c.event("poplib: login %v, retrieved %v, DELE sent %v, +OK %v, QUIT +OK %v %s", res.Login, got, sent, ok, res.QuitOK, res.Error)
	for _, p := range res.Sent {
		c.uncommitted[messageID(msgs[p])] = true
	}
	if res.QuitOK {
		for _, p := range res.Dele {
			c.committed[messageID(msgs[p])] = true
		}
	}
}

// curl fetches message 1 and leaves it. (It could DELE it on the same
// connection with --next, but when that connection is lost between the
// two, curl opens a new one for the DELE and deletes whatever message 1
// is there: a ledger cannot follow that, and a user would not want it.)
func (c *chaos) curl() {
	cmd := exec.Command("curl", "-s", "--max-time", "20", "-u", testUser+":"+testPass, "pop3://"+c.addr+"/1")
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	err := cmd.Run()
	msg := bytes.ReplaceAll(stdout.Bytes(), []byte("\r\n"), []byte("\n"))
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sessions["curl"]++
	if len(msg) == 0 || err != nil {
		return // a transfer cut short (--max-time) is no copy of the message
	}
	c.event("curl: retrieved %s", messageID(msg))
	c.retrieved = append(c.retrieved, msg)
	c.from[string(msg)] = "curl"
}

func messageID(msg []byte) string {
	if m := msgIDRe.FindSubmatch(msg); m != nil {
		return string(m[1])
	}
	return ""
}

// sessionPids lists the popper processes that are not a daemon this test
// started: the sessions, the current daemon's and those an earlier one
// left running.
func (c *chaos) sessionPids() []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, de := range ents {
		pid, err := strconv.Atoi(de.Name())
		if err != nil {
			continue
		}
		if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err != nil || exe != c.e.bin {
			continue
		}
		// The other crash tests run the same binary in parallel; only
		// this test's daemons pass on its marker.
		if env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid)); err != nil || !bytes.Contains(env, []byte("\x00"+c.marker()+"\x00")) {
			continue
		}
		if st := procStat(pid); len(st) > 1 && st[1] == strconv.Itoa(os.Getpid()) {
			continue // a daemon (its parent is this test)
		}
		pids = append(pids, pid)
	}
	return pids
}

// marker is the environment entry that tells this test's sessions from
// other popper processes.
func (c *chaos) marker() string { return "POPPER_CRASHTEST_CHAOS=" + c.e.root }

// procStat returns the fields of /proc/pid/stat after the command name:
// state, ppid, ...
func procStat(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	if i := bytes.LastIndexByte(b, ')'); i >= 0 {
		return strings.Fields(string(b[i+1:]))
	}
	return nil
}

// disturbSession SIGKILLs a session or stops it for a while: mostly one
// that has its mailbox open, and sometimes the one holding the dotlock,
// whose lock is then aged past the MDAs' stale time while it is stopped
// (as a host under heavy load would age it), so that a dotlock-only MDA
// breaks it and appends under the stopped session.
func (c *chaos) disturbSession(rng *rand.Rand) {
	pids := c.sessionPids()
	if len(pids) == 0 {
		return
	}
	lock := c.e.spoolPath() + ".lock"
	if rng.Intn(3) == 0 {
		if b, err := os.ReadFile(lock); err == nil {
			if owner, _, ok := strings.Cut(string(b), "@"); ok {
				if pid, err := strconv.Atoi(owner); err == nil && slices.Contains(pids, pid) {
					c.stop(rng, pid, lock)
					return
				}
			}
		}
	}
	var open []int
	for _, pid := range pids {
		if sessionPhase(pid) != "no-mailbox-open" {
			open = append(open, pid)
		}
	}
	if len(open) > 0 && rng.Intn(4) != 0 {
		pids = open
	}
	pid := pids[rng.Intn(len(pids))]
	if rng.Intn(2) == 0 {
		phase := sessionPhase(pid)
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			c.mu.Lock()
			c.kills++
			c.landed[phase]++
			c.event("SIGKILL session %d (%s)", pid, phase)
			c.mu.Unlock()
		}
		return
	}
	c.stop(rng, pid, "")
}

// stop stops session pid for up to 0.8 s; with lock set, the session
// holds that dotlock, which is aged meanwhile.
func (c *chaos) stop(rng *rand.Rand, pid int, lock string) {
	if syscall.Kill(pid, syscall.SIGSTOP) != nil {
		return
	}
	phase := sessionPhase(pid)
	c.mu.Lock()
	c.stops++
	c.stopped[pid] = true
	c.event("SIGSTOP session %d (%s)", pid, phase)
	c.mu.Unlock()
	if lock != "" {
		c.ageLock(pid, lock)
	}
	time.Sleep(time.Duration(100+rng.Intn(700)) * time.Millisecond)
	syscall.Kill(pid, syscall.SIGCONT)
	c.mu.Lock()
	delete(c.stopped, pid)
	c.event("SIGCONT session %d", pid)
	c.mu.Unlock()
}

// ageLock makes the dotlock look 400 s old when stopped session pid
// holds it, so that a dotlock-only MDA breaks it.
func (c *chaos) ageLock(pid int, lock string) {
	b, err := os.ReadFile(lock)
	if err != nil || !strings.HasPrefix(string(b), strconv.Itoa(pid)+"@") {
		return
	}
	old := time.Now().Add(-400 * time.Second)
	if os.Chtimes(lock, old, old) == nil {
		c.mu.Lock()
		c.aged++
		c.event("dotlock of stopped session %d aged", pid)
		c.mu.Unlock()
	}
}

// sessionPhase guesses from the session's open files what it was doing.
func sessionPhase(pid int) string {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	phase := "no-mailbox-open"
	for _, de := range ents {
		p, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, de.Name()))
		switch {
		case strings.HasSuffix(p, ".pop.new") || strings.HasSuffix(p, ".pop.merge"):
			return "update-or-recovery"
		case strings.HasSuffix(p, ".pop"):
			phase = "session"
		}
	}
	return phase
}

// thaw finds the sessions stopped at a failpoint, ages the dotlock of
// those that hold it past the MDAs' stale time (a host under heavy load
// would age it so), lets the MDAs break it and append for a while, and
// continues them.
func (c *chaos) thaw(rng *rand.Rand) {
	lock := c.e.spoolPath() + ".lock"
	for _, pid := range c.sessionPids() {
		c.mu.Lock()
		ours := c.stopped[pid]
		c.mu.Unlock()
		if st := procStat(pid); ours || len(st) == 0 || st[0] != "T" {
			continue
		}
		c.mu.Lock()
		c.failpointStops++
		c.event("session %d stopped at its failpoint (%s)", pid, sessionPhase(pid))
		c.mu.Unlock()
		c.ageLock(pid, lock)
		time.Sleep(time.Duration(200+rng.Intn(600)) * time.Millisecond)
		syscall.Kill(pid, syscall.SIGCONT)
		c.mu.Lock()
		c.event("SIGCONT session %d", pid)
		c.mu.Unlock()
	}
}

func (c *chaos) contAll() {
	for _, pid := range c.sessionPids() {
		syscall.Kill(pid, syscall.SIGCONT)
	}
}

func (c *chaos) startDaemon(env ...string) {
	args := append([]string{c.addr}, c.e.args()...)
	cmd := exec.Command(c.e.bin, args...)
	cmd.Env = append(append(os.Environ(), c.marker()), env...)
	logf, _ := os.OpenFile(filepath.Join(c.e.root, "daemon.log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	c.mu.Lock()
	c.daemon, c.daemonDone = cmd, done
	c.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if conn, err := net.DialTimeout("tcp", c.addr, time.Second); err == nil {
			conn.Close()
			return
		}
		select {
		case <-done:
			b, _ := os.ReadFile(filepath.Join(c.e.root, "daemon.log"))
			c.t.Fatalf("the daemon exited: %s", b)
		case <-time.After(50 * time.Millisecond):
		}
	}
	c.t.Fatalf("the daemon does not accept on %s", c.addr)
}

func (c *chaos) restartDaemon(rng *rand.Rand) {
	c.mu.Lock()
	cmd, done := c.daemon, c.daemonDone
	c.mu.Unlock()
	cmd.Process.Signal(syscall.SIGKILL)
	<-done
	time.Sleep(time.Duration(100+rng.Intn(400)) * time.Millisecond)
	// Every other daemon's sessions stop, once each, at a step where
	// they hold the dotlock, for thaw to age it.
	var env []string
	if rng.Intn(2) == 0 {
		fp := []string{"login.copied", "update.locked", "update.newmail-saved", "update.spool-truncated"}[rng.Intn(4)]
		env = []string{"POPPER_FAILPOINT=" + fp, "POPPER_FAILPOINT_ACTION=stop"}
	}
	c.startDaemon(env...)
	c.mu.Lock()
	c.restarts++
	c.event("daemon SIGKILLed and restarted %v", env)
	c.mu.Unlock()
}

func (c *chaos) stopDaemon() {
	c.mu.Lock()
	cmd, done := c.daemon, c.daemonDone
	c.mu.Unlock()
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(40 * time.Second):
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
	}
}

func (c *chaos) waitSessions(d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && len(c.sessionPids()) > 0 {
		time.Sleep(100 * time.Millisecond)
	}
	for _, pid := range c.sessionPids() {
		c.t.Logf("session %d still running after %v: killed", pid, d)
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// fillDisk fills the spool's file system until writes fail, for a while.
func (c *chaos) fillDisk(rng *rand.Rand) {
	f, err := os.Create(c.ballast)
	if err != nil {
		return
	}
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				c.t.Logf("filling the disk: %v", err)
			}
			break
		}
	}
	f.Close()
	c.mu.Lock()
	c.fills++
	c.event("disk full")
	c.mu.Unlock()
	time.Sleep(time.Duration(300+rng.Intn(1200)) * time.Millisecond)
	os.Remove(c.ballast)
	c.mu.Lock()
	c.event("disk emptied")
	c.mu.Unlock()
}

// manifest is the ledger as a manifest: an acknowledged delivery must be
// there once unless DELE'd, and must be gone when QUIT +OK followed; a
// delivery the MDA did not acknowledge may be there, whole, or not.
func (c *chaos) manifest(t *testing.T, acked Manifest) Manifest {
	m := append(Manifest(nil), acked...)
	for _, msg := range c.maybe {
		mm, err := ManifestOf(msg, MayGo)
		if err != nil {
			t.Fatal(err)
		}
		m = append(m, mm...)
	}
	return m
}
