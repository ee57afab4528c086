// Command bench is scripts/bench's driver: it builds the spools, starts
// popper (default mode and -S) and openbsd-inetd, Dovecot and popa3d on
// loopback, speaks POP3 to them itself, and prints the medians and the
// ratios popper/peer of every row of issue 12's table. The servers are
// measured in turn within each repetition (A B C D A B C D ...), so that a
// noisy machine slows each of them alike. Run it through scripts/bench,
// which installs the peers, makes the test user and cleans up.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

var (
	workDir     = flag.String("work", "", "scratch directory (spools, server state, traces)")
	outDir      = flag.String("out", "", "where results.md, results.json and bench.png go (default WORK/out)")
	popperBin   = flag.String("popper", "", "the popper binary")
	popa3dBin   = flag.String("popa3d", "", "the popa3d binary")
	inetdBin    = flag.String("inetd", "/usr/sbin/inetd", "openbsd-inetd")
	dovecotBin  = flag.String("dovecot", "/usr/sbin/dovecot", "Dovecot's master")
	straceBin   = flag.String("strace", "/usr/bin/strace", "strace")
	userName    = flag.String("user", "popbench", "the test user (its password in $BENCH_PASS)")
	quick       = flag.Bool("quick", false, "skip the 1 GiB spool and repeat less")
	sizesFlag   = flag.String("sizes", "", "only these sizes (comma-separated keys: 10,1k,50k,1g)")
	serversFlag = flag.String("servers", "popper,popper-S,dovecot,popa3d", "servers to measure, in this order")
	versions    = flag.String("versions", "", "a file whose text heads results.md (machine, versions)")
)

type sizeSpec struct {
	key, label string
	msgs       int
	bytes      int64
	// repetitions of each measurement (0: not measured at this size)
	sessReps, firstReps, pollReps, rssReps, retrReps, deleteReps int
	retrNoDele                                                   bool
	sessSeconds                                                  float64
}

func sizes() []sizeSpec {
	if *quick {
		return []sizeSpec{
			{key: "10", label: "10 messages", msgs: 10, sessReps: 2, sessSeconds: 2},
			{key: "1k", label: "1,000 messages", msgs: 1000, firstReps: 3, pollReps: 7, rssReps: 2, retrReps: 2, deleteReps: 3, retrNoDele: true},
			{key: "50k", label: "50,000 messages", msgs: 50000, firstReps: 2, pollReps: 4, rssReps: 1, retrReps: 1, deleteReps: 2, retrNoDele: true},
		}
	}
	return []sizeSpec{
		{key: "10", label: "10 messages", msgs: 10, sessReps: 3, sessSeconds: 3},
		{key: "1k", label: "1,000 messages", msgs: 1000, firstReps: 5, pollReps: 15, rssReps: 3, retrReps: 3, deleteReps: 5, retrNoDele: true},
		{key: "50k", label: "50,000 messages", msgs: 50000, firstReps: 3, pollReps: 7, rssReps: 3, retrReps: 2, deleteReps: 3, retrNoDele: true},
		{key: "1g", label: "1 GiB", bytes: 1 << 30, firstReps: 2, pollReps: 5, rssReps: 2, retrReps: 2},
	}
}

// retrBudget bounds a RETR-all session: the 1 GiB spool at 20 MB/s, or
// a server that waits on delayed ACKs for every reply, would take
// minutes. The rate is that of the messages retrieved until then.
const retrBudget = 20 * time.Second

type rowDef struct {
	key, title, unit string
	higherBetter     bool
}

var rows = []rowDef{
	{"first", "first login: USER/PASS, STAT, UIDL, QUIT on a spool never served (no index, no X-UIDL)", "ms", false},
	{"poll", "repeated poll: USER/PASS, STAT, UIDL, QUIT, nothing changed", "ms", false},
	{"poll-login", "… of which connect to +OK after PASS", "ms", false},
	{"poll-bytes", "no-change poll: bytes written to files in the spool and index directories", "B", false},
	{"poll-fsyncs", "no-change poll: fsyncs", "", false},
	{"retr-bytes", "RETR all then QUIT, no DELE: bytes written to spool and index files", "B", false},
	{"retr-fsyncs", "RETR all then QUIT, no DELE: fsyncs", "", false},
	{"del-quit", "DELE one message mid-spool: QUIT to EOF", "ms", false},
	{"del-bytes", "DELE one message mid-spool: bytes written to spool and index files", "B", false},
	{"del-fsyncs", "DELE one message mid-spool: fsyncs", "", false},
	{"retr-one", "RETR all, one command at a time", "MB/s", true},
	{"retr-pipe", "RETR all, pipelined", "MB/s", true},
	{"rss", "peak RSS of a poll session (VmHWM of its largest process)", "MB", false},
	{"rss-nomime", "… the same as USER name-no-mime (popper only: qpopper's mangler, every message sized as text)", "MB", false},
	{"sess", "sessions per second (one client: USER/PASS, STAT, QUIT)", "/s", true},
}

type cell struct {
	Vals []float64 `json:"vals,omitempty"`
	Errs []string  `json:"errs,omitempty"`
	Note string    `json:"note,omitempty"`
}

type sizeResult struct {
	Key, Label string
	Msgs       int
	Bytes      int64
	Cells      map[string]map[string]*cell // row -> server -> cell
	Refused    map[string]string           // server -> the -ERR that ended its part of this size
}

var (
	results []*sizeResult
	servers []*server
	acct    account
	started = time.Now()
)

func (r *sizeResult) cell(row, srv string) *cell {
	if r.Cells[row] == nil {
		r.Cells[row] = map[string]*cell{}
	}
	c := r.Cells[row][srv]
	if c == nil {
		c = &cell{}
		r.Cells[row][srv] = c
	}
	return c
}

func (r *sizeResult) add(row string, s *server, v float64) {
	c := r.cell(row, s.key)
	c.Vals = append(c.Vals, v)
	logf("%s %-11s %-9s %s", r.Key, row, s.key, fmtVal(rowByKey(row), v))
}

func (r *sizeResult) fail(row string, s *server, err error) {
	c := r.cell(row, s.key)
	c.Errs = append(c.Errs, err.Error())
	logf("%s %-11s %-9s ERROR %v", r.Key, row, s.key, err)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%4.0fs] "+format+"\n", append([]any{time.Since(started).Seconds()}, args...)...)
}

func main() {
	flag.Parse()
	if *workDir == "" || *popperBin == "" {
		fmt.Fprintln(os.Stderr, "usage: bench -work DIR -popper BIN [-popa3d BIN] [-quick]")
		os.Exit(2)
	}
	if *outDir == "" {
		*outDir = filepath.Join(*workDir, "out")
	}
	os.MkdirAll(*outDir, 0755)
	var err error
	acct, err = lookupAccount(*userName, os.Getenv("BENCH_PASS"))
	if err != nil {
		fatal(err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		<-sig
		stopAll()
		os.Exit(1)
	}()
	defer stopAll()
	if err := startServers(); err != nil {
		stopAll()
		fatal(err)
	}
	want := map[string]bool{}
	for _, k := range strings.Split(*sizesFlag, ",") {
		if k != "" {
			want[k] = true
		}
	}
	for _, sz := range sizes() {
		if len(want) > 0 && !want[sz.key] {
			continue
		}
		if err := runSize(sz); err != nil {
			stopAll()
			fatal(err)
		}
		writeResults()
	}
	writeResults()
	logf("done in %s", time.Since(started).Round(time.Second))
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

func stopAll() {
	for _, s := range servers {
		s.stop()
	}
}

func startServers() error {
	for _, k := range strings.Split(*serversFlag, ",") {
		var s *server
		var err error
		switch k {
		case "popper":
			s, err = newPopper(acct, *workDir, *popperBin, false)
		case "popper-S":
			s, err = newPopper(acct, *workDir, *popperBin, true)
		case "dovecot":
			s, err = newDovecot(acct, *workDir)
		case "popa3d":
			if *popa3dBin == "" {
				return fmt.Errorf("popa3d: no binary (-popa3d)")
			}
			s, err = newPopa3d(acct, *workDir, *popa3dBin)
		default:
			return fmt.Errorf("unknown server %q", k)
		}
		if s != nil {
			servers = append(servers, s)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		logf("%s listens on 127.0.0.1:%d (supervisor pid %d)", s.name, s.port, s.supervisor())
	}
	return nil
}

// wantMsgs is the message count of the spool being measured.
var wantMsgs int

func pollSession(s *server) session {
	return session{port: s.port, user: acct.name, pass: acct.pass, uidl: true, want: wantMsgs}
}

// each runs fn for every repetition and, within it, every server still
// serving this size: A B C D, A B C D, ...
func each(reps int, live map[string]string, fn func(rep int, s *server)) {
	for rep := 0; rep < reps; rep++ {
		for _, s := range servers {
			if live[s.key] == "" {
				fn(rep, s)
			}
		}
	}
}

func runSize(sz sizeSpec) error {
	r := &sizeResult{Key: sz.key, Label: sz.label, Cells: map[string]map[string]*cell{}, Refused: map[string]string{}}
	results = append(results, r)
	refDir := filepath.Join(*workDir, "ref")
	os.MkdirAll(refDir, 0755)
	ref := filepath.Join(refDir, sz.key+".mbox")
	t0 := time.Now()
	info, err := genSpool(ref, sz.msgs, sz.bytes)
	if err != nil {
		return err
	}
	defer os.Remove(ref)
	r.Msgs, r.Bytes = info.msgs, info.bytes
	wantMsgs = info.msgs
	logf("size %s: %d messages, %d bytes (made in %s)", sz.key, info.msgs, info.bytes, time.Since(t0).Round(time.Millisecond))
	refused := r.Refused
	// A session that fails: a refusal (-ERR) excludes the server from
	// the rest of this size; other errors are recorded in the row.
	check := func(row string, s *server, err error) bool {
		if err == nil {
			return true
		}
		if isRefused(err) && refused[s.key] == "" {
			refused[s.key] = err.Error()
		}
		r.fail(row, s, err)
		return false
	}
	poll := func(s *server) (timings, error) {
		t, err := pollSession(s).run()
		s.waitIdle()
		return t, err
	}

	for _, s := range servers {
		if err := s.install(ref, acct); err != nil {
			return err
		}
	}
	if sz.sessReps > 0 {
		for _, s := range servers {
			_, err := poll(s)
			check("sess", s, err)
		}
		each(sz.sessReps, refused, func(rep int, s *server) {
			sessionsPerSecond(r, s, sz.sessSeconds)
		})
	}
	if sz.firstReps == 0 {
		return nil
	}
	each(sz.firstReps, refused, func(rep int, s *server) {
		if rep > 0 {
			if err := s.install(ref, acct); err != nil {
				r.fail("first", s, err)
				return
			}
		}
		if t, err := poll(s); check("first", s, err) {
			r.add("first", s, t.total*1000)
		}
	})
	// One more poll: the steady state of a mailbox in use (X-UIDL
	// written back, Dovecot's index complete). Saved, so that each
	// session that changes the spool starts from it.
	each(1, refused, func(_ int, s *server) {
		_, err := poll(s)
		if check("poll", s, err) && (sz.deleteReps > 0 || sz.retrNoDele) {
			if err := s.snapshot(*workDir); err != nil {
				r.fail("poll", s, err)
			}
		}
	})
	each(sz.pollReps, refused, func(rep int, s *server) {
		if t, err := poll(s); check("poll", s, err) {
			r.add("poll", s, t.total*1000)
			r.add("poll-login", s, t.login*1000)
		}
	})
	each(1, refused, func(_ int, s *server) {
		st, err := traceSession(s, filepath.Join(*workDir, "trace-"+s.key), func() error {
			_, err := pollSession(s).run()
			return err
		})
		if check("poll-bytes", s, err) {
			r.add("poll-bytes", s, float64(st.mailBytes))
			r.add("poll-fsyncs", s, float64(st.fsyncs))
			noteTrace(r, "poll-bytes", s, st)
		}
	})
	each(sz.rssReps, refused, func(_ int, s *server) {
		smp := startRSS(s)
		_, err := pollSession(s).run()
		peak, name := smp.finish()
		if check("rss", s, err) {
			r.add("rss", s, float64(peak)/1e6)
			r.cell("rss", s.key).Note = name
		}
	})
	each(sz.rssReps, refused, func(_ int, s *server) {
		if !strings.HasPrefix(s.key, "popper") {
			return // the "-no-mime" suffix is qpopper's
		}
		ss := pollSession(s)
		ss.user += "-no-mime"
		smp := startRSS(s)
		_, err := ss.run()
		peak, name := smp.finish()
		if check("rss-nomime", s, err) {
			r.add("rss-nomime", s, float64(peak)/1e6)
			r.cell("rss-nomime", s.key).Note = name
		}
	})
	each(sz.retrReps, refused, func(_ int, s *server) {
		for _, mode := range []int{1, 2} {
			row := map[int]string{1: "retr-one", 2: "retr-pipe"}[mode]
			ss := pollSession(s)
			ss.uidl, ss.retr, ss.retrBudget = false, mode, retrBudget
			t, err := ss.run()
			s.waitIdle()
			if check(row, s, err) && t.retr > 0 {
				r.add(row, s, float64(t.retrBytes)/1e6/t.retr)
				if t.capped {
					r.cell(row, s.key).Note = fmt.Sprintf("stopped after %s: the rate is that of the messages retrieved by then", retrBudget)
				}
			}
		}
	})
	restoreWarm := func(row string, s *server) bool {
		if err := s.restore(*workDir); err != nil {
			r.fail(row, s, err)
			return false
		}
		_, err := poll(s)
		return check(row, s, err)
	}
	if sz.retrNoDele {
		each(1, refused, func(_ int, s *server) {
			if !restoreWarm("retr-bytes", s) {
				return
			}
			st, err := traceSession(s, filepath.Join(*workDir, "trace-"+s.key), func() error {
				ss := pollSession(s)
				ss.uidl, ss.retr = false, 2
				_, err := ss.run()
				return err
			})
			if check("retr-bytes", s, err) {
				r.add("retr-bytes", s, float64(st.mailBytes))
				r.add("retr-fsyncs", s, float64(st.fsyncs))
				noteTrace(r, "retr-bytes", s, st)
			}
		})
	}
	if sz.deleteReps > 0 {
		del := func(s *server) session {
			ss := pollSession(s)
			ss.uidl, ss.deleteMid = false, true
			return ss
		}
		each(sz.deleteReps, refused, func(_ int, s *server) {
			if !restoreWarm("del-quit", s) {
				return
			}
			t, err := del(s).run()
			s.waitIdle()
			if check("del-quit", s, err) {
				r.add("del-quit", s, t.quit*1000)
			}
		})
		each(1, refused, func(_ int, s *server) {
			if !restoreWarm("del-bytes", s) {
				return
			}
			st, err := traceSession(s, filepath.Join(*workDir, "trace-"+s.key), func() error {
				_, err := del(s).run()
				return err
			})
			if check("del-bytes", s, err) {
				r.add("del-bytes", s, float64(st.mailBytes))
				r.add("del-fsyncs", s, float64(st.fsyncs))
				noteTrace(r, "del-bytes", s, st)
			}
		})
	}
	os.RemoveAll(filepath.Join(*workDir, "snap"))
	return nil
}

func noteTrace(r *sizeResult, row string, s *server, st ioStats) {
	var calls []string
	for k, v := range st.calls {
		calls = append(calls, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(calls)
	r.cell(row, s.key).Note = fmt.Sprintf("other files %d B; msync/sync_file_range %d; calls %s",
		st.otherBytes, st.otherSyncs, strings.Join(calls, " "))
}

// sessionsPerSecond runs whole sessions back to back for secs seconds.
func sessionsPerSecond(r *sizeResult, s *server, secs float64) {
	ss := pollSession(s)
	ss.uidl = false
	t0 := time.Now()
	n, bad := 0, 0
	var last error
	for time.Since(t0).Seconds() < secs {
		if _, err := ss.run(); err != nil {
			bad++
			last = err
			continue
		}
		n++
	}
	el := time.Since(t0).Seconds()
	s.waitIdle()
	r.add("sess", s, float64(n)/el)
	if bad > 0 {
		r.fail("sess", s, fmt.Errorf("%d of %d sessions failed, last: %v", bad, n+bad, last))
	}
}

func rowByKey(k string) rowDef {
	for _, r := range rows {
		if r.key == k {
			return r
		}
	}
	return rowDef{key: k}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func fmtBytes(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 1e9:
		return fmt.Sprintf("%.2f GB", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.1f MB", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1f kB", v/1e3)
	}
	return fmt.Sprintf("%.0f B", v)
}

func fmtVal(row rowDef, v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	switch row.unit {
	case "B":
		return fmtBytes(v)
	case "ms":
		switch {
		case v >= 100:
			return fmt.Sprintf("%.0f ms", v)
		case v >= 10:
			return fmt.Sprintf("%.1f ms", v)
		}
		return fmt.Sprintf("%.2f ms", v)
	case "MB":
		return fmt.Sprintf("%.1f MB", v)
	case "MB/s", "/s":
		return fmt.Sprintf("%.0f %s", v, row.unit)
	}
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func ratio(a, b float64) string {
	switch {
	case math.IsNaN(a) || math.IsNaN(b):
		return "—"
	case a == 0 && b == 0:
		return "="
	case b == 0:
		return "∞"
	}
	if a/b >= 100 {
		return fmt.Sprintf("%.0f×", a/b)
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func (r *sizeResult) med(row, srv string) float64 {
	c := r.Cells[row][srv]
	if c == nil || len(c.Errs) > 0 && len(c.Vals) == 0 {
		return math.NaN()
	}
	return median(c.Vals)
}

func (r *sizeResult) show(row rowDef, srv string) string {
	c := r.Cells[row.key][srv]
	if (c == nil || len(c.Vals) == 0) && r.Refused[srv] != "" {
		return "refused"
	}
	if c == nil {
		return "—"
	}
	if len(c.Vals) == 0 {
		if len(c.Errs) > 0 {
			return "error"
		}
		return "—"
	}
	s := fmtVal(row, median(c.Vals))
	if len(c.Errs) > 0 {
		s += " (errors)"
	}
	return s
}

// writeResults writes results.json (every sample) and results.md (the
// tables of medians and ratios), then the plot.
func writeResults() {
	b, _ := json.MarshalIndent(results, "", " ")
	os.WriteFile(filepath.Join(*outDir, "results.json"), b, 0644)
	var md strings.Builder
	if *versions != "" {
		if v, err := os.ReadFile(*versions); err == nil {
			md.Write(v)
			md.WriteString("\n")
		}
	}
	has := map[string]bool{}
	for _, s := range servers {
		has[s.key] = true
	}
	peers := []string{}
	for _, k := range []string{"dovecot", "popa3d"} {
		if has[k] {
			peers = append(peers, k)
		}
	}
	mine := []string{}
	for _, k := range []string{"popper", "popper-S"} {
		if has[k] {
			mine = append(mine, k)
		}
	}
	names := map[string]string{"popper": "popper", "popper-S": "popper -S", "dovecot": "Dovecot", "popa3d": "popa3d"}
	for _, r := range results {
		fmt.Fprintf(&md, "### %s (%d messages, %s)\n\n", r.Label, r.Msgs, fmtBytes(float64(r.Bytes)))
		md.WriteString("| work |")
		for _, s := range servers {
			md.WriteString(" " + s.name + " |")
		}
		for _, m := range mine {
			for _, p := range peers {
				fmt.Fprintf(&md, " %s / %s |", names[m], names[p])
			}
		}
		md.WriteString("\n|---|")
		for range servers {
			md.WriteString("---|")
		}
		for range mine {
			for range peers {
				md.WriteString("---|")
			}
		}
		md.WriteString("\n")
		for _, row := range rows {
			if r.Cells[row.key] == nil {
				continue
			}
			any := false
			for _, c := range r.Cells[row.key] {
				if len(c.Vals) > 0 || len(c.Errs) > 0 {
					any = true
				}
			}
			if !any {
				continue
			}
			title := row.title
			if row.higherBetter {
				title += " (higher is better)"
			}
			fmt.Fprintf(&md, "| %s |", title)
			for _, s := range servers {
				fmt.Fprintf(&md, " %s |", r.show(row, s.key))
			}
			for _, m := range mine {
				for _, p := range peers {
					fmt.Fprintf(&md, " %s |", ratio(r.med(row.key, m), r.med(row.key, p)))
				}
			}
			md.WriteString("\n")
		}
		md.WriteString("\n")
		var notes []string
		for _, row := range rows {
			for _, s := range servers {
				c := r.Cells[row.key][s.key]
				if c == nil {
					continue
				}
				if len(c.Errs) > 0 {
					notes = append(notes, fmt.Sprintf("- %s, %s: %d error(s), first: %s", row.key, s.name, len(c.Errs), c.Errs[0]))
				}
				if c.Note != "" {
					notes = append(notes, fmt.Sprintf("- %s, %s: %s", row.key, s.name, c.Note))
				}
			}
		}
		for k, why := range r.Refused {
			notes = append(notes, fmt.Sprintf("- %s refused this spool: %s", names[k], why))
		}
		sort.Strings(notes)
		if len(notes) > 0 {
			md.WriteString("<details><summary>notes</summary>\n\n" + strings.Join(notes, "\n") + "\n\n</details>\n\n")
		}
	}
	fmt.Fprintf(&md, "Run time: %s.\n", time.Since(started).Round(time.Second))
	os.WriteFile(filepath.Join(*outDir, "results.md"), []byte(md.String()), 0644)
	writePlot()
}
