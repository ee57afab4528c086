package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Issue 12's RETR and memory rows against the real binary, as
// scripts/bench runs it but in process of the test and without peers:
// one popper per connection as under inetd, on loopback TCP, on a spool
// of n messages of scripts/bench's kind (lognormal sizes, median 2 KiB)
// whose UIDs an earlier session wrote back. Each op is one session:
//
//   - poll: USER/PASS, STAT, UIDL, QUIT;
//   - poll-no-mime: the same as user "alice-no-mime", which has every
//     message sized as the mangler would send it;
//   - retr-one: the same with every message RETR'd one command at a time
//     (the next RETR sent when the reply has ended);
//   - retr-pipelined: every RETR sent at once.
//
// Reported: MB/s of the RETR replies as the client reads them,
// peak-RSS-MB, the largest peak RSS of the sessions measured, on a spool
// in steady use (its index believed on stat), and parse-RSS-MB, that of
// the login before them, which parsed the whole spool and saved the
// index. The peak RSS is the process's VmHWM as scripts/bench reads it,
// taken before QUIT and once more after its reply; where /proc has none,
// maxrss from wait4, which on Linux would also count the test binary's
// own pages (os/exec starts the child in the parent's address space).
//
//	go test -run XXX -bench RealSession ./cmd/popper
//	go test -run XXX -bench 'RealSession/50k/.*/server' ./cmd/popper
//
// POPPER_BENCH_BIN runs another build (an older commit, for a before and
// after); POPPER_BENCH_1GIB=1 adds a 1 GiB spool (about 200,000
// messages).
func BenchmarkRealSession(b *testing.B) {
	bin := popperBin
	if p := os.Getenv("POPPER_BENCH_BIN"); p != "" {
		bin = p
	}
	sizes := []struct {
		name  string
		n     int
		bytes int64
	}{{"10", 10, 0}, {"1k", 1000, 0}, {"50k", 50000, 0}}
	if os.Getenv("POPPER_BENCH_1GIB") == "1" {
		sizes = append(sizes, struct {
			name  string
			n     int
			bytes int64
		}{"1GiB", 0, 1 << 30})
	}
	for _, sz := range sizes {
		spool := filepath.Join(b.TempDir(), "spool")
		if err := writeBenchSpool(spool, sz.n, sz.bytes); err != nil {
			b.Fatal(err)
		}
		for _, mode := range []string{"poll", "poll-no-mime", "retr-one", "retr-pipelined"} {
			for _, server := range []bool{false, true} {
				name, flags := sz.name+"/"+mode+"/normal", []string(nil)
				if server {
					name, flags = sz.name+"/"+mode+"/server", []string{"-S"}
				}
				b.Run(name, func(b *testing.B) { benchSession(b, bin, spool, mode, flags) })
			}
		}
	}
}

func benchSession(b *testing.B, bin, spool, mode string, flags []string) {
	s := newSite(b)
	p := filepath.Join(s.spoolDir, "alice")
	if err := exec.Command("cp", spool, p).Run(); err != nil {
		b.Fatal(err)
	}
	if os.Getuid() == 0 {
		os.Chown(p, s.uid, s.gid)
	}
	os.Chmod(p, 0660)
	benchOneSession(b, s, bin, "poll", flags) // the UIDs written back
	// The index is believed on stat when written well after the spool
	// last changed (spool/index.go, racyWindow): the login that parses
	// the spool and saves it comes after that window.
	time.Sleep(2100 * time.Millisecond)
	_, _, parseRSS := benchOneSession(b, s, bin, "poll", flags)
	var wire int64
	var rss int64
	var secs float64
	for b.Loop() {
		n, el, maxrss := benchOneSession(b, s, bin, mode, flags)
		wire, secs, rss = wire+n, secs+el, max(rss, maxrss)
	}
	if wire > 0 {
		b.ReportMetric(float64(wire)/secs/1e6, "MB/s")
	}
	b.ReportMetric(float64(rss)/1024, "peak-RSS-MB")
	b.ReportMetric(float64(parseRSS)/1024, "parse-RSS-MB")
}

// benchOneSession runs one session and returns the RETR replies' octets,
// the seconds they took and the process's maxrss in KB.
func benchOneSession(b *testing.B, s *site, bin, mode string, flags []string) (int64, float64, int64) {
	conn, f := inetdSocket(b)
	defer conn.Close()
	cmd := exec.Command(bin, append([]string{"-f", s.config, "--userdb", s.userdb}, flags...)...)
	cmd.Stdin, cmd.Stdout = f, f
	err := cmd.Start()
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	conn.SetDeadline(time.Now().Add(10 * time.Minute))
	r := bufio.NewReaderSize(conn, 256<<10)
	ok := func() string {
		l, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(l, "+OK") {
			b.Fatalf("%q %v", l, err)
		}
		return l
	}
	multi := func() int64 {
		var n int64
		for {
			l, err := r.ReadSlice('\n')
			n += int64(len(l))
			switch {
			case err == bufio.ErrBufferFull:
				continue
			case err != nil:
				b.Fatal(err)
			case string(l) == ".\r\n":
				return n
			}
		}
	}
	ok()
	user := "alice"
	if mode == "poll-no-mime" {
		user = "alice-no-mime"
	}
	fmt.Fprintf(conn, "USER %s\r\nPASS secret\r\nSTAT\r\nUIDL\r\n", user)
	ok()
	ok()
	count, _ := strconv.Atoi(strings.Fields(ok())[1])
	ok()
	multi()
	var wire int64
	began := time.Now()
	switch mode {
	case "retr-one":
		w := bufio.NewWriter(conn)
		for i := 1; i <= count; i++ {
			fmt.Fprintf(w, "RETR %d\r\n", i)
			w.Flush()
			ok()
			wire += multi()
		}
	case "retr-pipelined":
		go func() {
			w := bufio.NewWriterSize(conn, 64<<10)
			for i := 1; i <= count; i++ {
				fmt.Fprintf(w, "RETR %d\r\n", i)
			}
			w.Flush()
		}()
		for i := 1; i <= count; i++ {
			ok()
			wire += multi()
		}
	}
	secs := time.Since(began).Seconds()
	hwm := peakRSS(cmd.Process.Pid)
	fmt.Fprint(conn, "QUIT\r\n")
	ok()
	hwm = max(hwm, peakRSS(cmd.Process.Pid))
	io.Copy(io.Discard, r)
	if err := cmd.Wait(); err != nil {
		b.Fatal(err)
	}
	if hwm > 0 {
		return wire, secs, hwm
	}
	return wire, secs, cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss
}

// peakRSS is the VmHWM of a running process in KiB, or -1 where /proc has
// none.
func peakRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
}

// writeBenchSpool writes an mbox of n messages, or of about size octets,
// of scripts/bench's kind, the same every run.
func writeBenchSpool(path string, n int, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	rng := rand.New(rand.NewPCG(12, 0x5EED))
	base := time.Date(2024, 3, 4, 5, 6, 7, 0, time.UTC)
	var total int64
	for i := 0; (n <= 0 || i < n) && (size <= 0 || total < size); i++ {
		want := int(math.Exp(math.Log(2048) + 1.342*rng.NormFloat64()))
		want = min(max(want, 700), 8<<20)
		d := base.Add(time.Duration(i) * 37 * time.Second)
		head := fmt.Sprintf("From sender%d@example.org %s\n"+
			"Received: from mx.example.org by mail.example.net; %s\n"+
			"Date: %s\nFrom: sender%d@example.org\nTo: popbench@example.net\n"+
			"Subject: message %d\nMessage-ID: <%d.%08x@example.org>\n\n",
			i%997, d.Format(time.ANSIC), d.Format(time.RFC1123Z), d.Format(time.RFC1123Z), i%997, i, i, rng.Uint32())
		w.WriteString(head)
		m := len(head)
		for j := 0; m < want; j++ {
			l := "the body of a message in the benchmark spool, words and words\n"
			if j%53 == 7 {
				l = ".a line that starts with a dot\n"
			}
			w.WriteString(l)
			m += len(l)
		}
		w.WriteString("\n")
		total += int64(m + 1)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Issue 12's sessions-per-second and repeated-poll rows as scripts/bench
// measures them, with the whole fixed cost of a session: one popper per
// connection started as inetd starts it (popper -s -f CONFIG, the
// connection on fds 0–2), a configuration of spool-dir only, a spool
// directory like Debian's /var/mail (2775 root:mail), and a real Unix
// account with a SHA-512 crypt password in /etc/shadow (it needs root:
// the user is made with useradd and removed after). Each op is one
// session until the server closes the connection:
//
//   - 10/sessions: USER/PASS, STAT, QUIT on 10 messages (reported:
//     sessions/s, one client, back to back);
//   - 1k/poll: USER/PASS, STAT, UIDL, QUIT on 1,000 messages whose UIDs
//     an earlier session wrote back.
//
// login-ms is the mean time from connect to the +OK after PASS.
//
//	sudo go test -run XXX -bench RealSessionSystem ./cmd/popper
func BenchmarkRealSessionSystem(b *testing.B) {
	bin := popperBin
	if p := os.Getenv("POPPER_BENCH_BIN"); p != "" {
		bin = p
	}
	s := newSite(b)
	mail, err := user.LookupGroup("mail")
	if err != nil {
		b.Skip("no mail group:", err)
	}
	mailGID, _ := strconv.Atoi(mail.Gid)
	u := addSysUser(b, s, "SHA512", "bench-Pass-6", "")
	if out, _ := os.ReadFile("/etc/shadow"); !strings.Contains(string(out), "\n"+u.name+":$6$") {
		b.Fatal("the user's shadow entry is not SHA-512 crypt")
	}
	os.Chown(s.spoolDir, 0, mailGID)
	os.Chmod(s.spoolDir, 0o775|os.ModeSetgid)
	config := filepath.Join(s.dir, "popper.config")
	writeFile(b, config, fmt.Sprintf("set spool-dir = %q\n", s.spoolDir), 0644)
	for _, c := range []struct {
		name string
		n    int
		uidl bool
	}{{"10/sessions", 10, false}, {"1k/poll", 1000, true}} {
		b.Run(c.name, func(b *testing.B) {
			p := filepath.Join(s.spoolDir, u.name)
			if err := writeBenchSpool(p, c.n, 0); err != nil {
				b.Fatal(err)
			}
			os.Chown(p, u.uid, mailGID)
			os.Chmod(p, 0660)
			defer os.Remove(p)
			argv := []string{"-s", "-f", config}
			var exited sync.WaitGroup
			benchSystemSession(b, bin, argv, u, c.uidl, &exited) // the UIDs written back
			var login time.Duration
			began := time.Now()
			for b.Loop() {
				login += benchSystemSession(b, bin, argv, u, c.uidl, &exited)
			}
			b.ReportMetric(float64(b.N)/time.Since(began).Seconds(), "sessions/s")
			exited.Wait()
			b.ReportMetric(login.Seconds()*1000/float64(b.N), "login-ms")
		})
	}
}

// benchSystemSession runs one session of u's and returns the time from
// connect to the +OK after PASS. The process is reaped in the
// background (exited), as inetd does: the client is done when the
// server has closed the connection.
func benchSystemSession(b *testing.B, bin string, argv []string, u *sysUser, uidl bool, exited *sync.WaitGroup) time.Duration {
	began := time.Now()
	conn, f := inetdSocket(b)
	defer conn.Close()
	cmd := exec.Command(bin, argv...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = f, f, f
	err := cmd.Start()
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	exited.Go(func() { cmd.Wait() })
	conn.SetDeadline(time.Now().Add(time.Minute))
	r := bufio.NewReader(conn)
	ok := func() {
		l, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(l, "+OK") {
			cmd.Process.Kill()
			b.Fatalf("%q %v", l, err)
		}
	}
	ok()
	fmt.Fprintf(conn, "USER %s\r\n", u.name)
	ok()
	fmt.Fprintf(conn, "PASS %s\r\n", u.pass)
	ok()
	login := time.Since(began)
	fmt.Fprint(conn, "STAT\r\n")
	ok()
	if uidl {
		fmt.Fprint(conn, "UIDL\r\n")
		ok()
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				b.Fatal(err)
			}
			if l == ".\r\n" {
				break
			}
		}
	}
	fmt.Fprint(conn, "QUIT\r\n")
	ok()
	if _, err := io.Copy(io.Discard, r); err != nil {
		b.Fatal(err)
	}
	return login
}
