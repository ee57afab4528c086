package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// descendants lists every process below pid (children of any of its
// threads, recursively).
func descendants(pid int) []int {
	var out []int
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			c, err := strconv.Atoi(f)
			if err == nil {
				out = append(out, c)
				out = append(out, descendants(c)...)
			}
		}
	}
	return out
}

func procComm(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// vmHWM is a process's peak resident set, in KiB.
func vmHWM(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			v = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB"))
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return -1
}

// sessionProcs are the server's per-session processes now running.
func (s *server) sessionProcs() []int {
	var out []int
	for _, p := range descendants(s.supervisor()) {
		if s.isSession(procComm(p)) {
			out = append(out, p)
		}
	}
	return out
}

// waitIdle waits until no session process of s runs any more, so that
// the next session neither overlaps this one nor finds its lock.
func (s *server) waitIdle() {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if len(s.sessionProcs()) == 0 {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// rssSampler samples the peak RSS of s's session processes every
// couple of milliseconds, from before the session starts until they
// have exited. VmHWM only grows, so what the last sample misses is what
// the process grew in its last 2 ms.
type rssSampler struct {
	s    *server
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	peak map[int]int64
	name map[int]string
}

func startRSS(s *server) *rssSampler {
	r := &rssSampler{s: s, stop: make(chan struct{}), done: make(chan struct{}), peak: map[int]int64{}, name: map[int]string{}}
	go func() {
		defer close(r.done)
		stopping := false
		for {
			procs := s.sessionProcs()
			for _, p := range procs {
				if v := vmHWM(p); v > 0 {
					r.mu.Lock()
					if v > r.peak[p] {
						r.peak[p] = v
						r.name[p] = procComm(p)
					}
					r.mu.Unlock()
				}
			}
			if stopping && len(procs) == 0 {
				return
			}
			select {
			case <-r.stop:
				stopping = true
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	return r
}

// finish waits for the session processes to end and returns the largest
// peak RSS of one of them, in bytes, and its name.
func (r *rssSampler) finish() (int64, string) {
	close(r.stop)
	select {
	case <-r.done:
	case <-time.After(60 * time.Second):
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var best int64
	var name string
	for p, v := range r.peak {
		if v > best {
			best, name = v, r.name[p]
		}
	}
	return best * 1024, name
}

// ioStats are the file writes and syncs strace saw during a session.
type ioStats struct {
	mailBytes  int64 // bytes written to files under the server's mail and index directories
	otherBytes int64 // bytes written to other files (logs)
	fsyncs     int   // fsync, fdatasync, syncfs, sync
	otherSyncs int   // msync, sync_file_range
	calls      map[string]int
}

var traced = []string{"write", "pwrite64", "writev", "pwritev", "pwritev2", "copy_file_range", "sendfile",
	"splice", "fsync", "fdatasync", "sync", "syncfs", "msync", "sync_file_range"}

// traceSession runs f with strace following every process of the server
// (its supervisor and whatever it forks), and sums what was written to
// files and how often they were synced.
func traceSession(s *server, out string, f func() error) (ioStats, error) {
	pids := append([]int{s.supervisor()}, descendants(s.supervisor())...)
	args := []string{"-f", "-qq", "-y", "-s", "0", "-e", "trace=" + strings.Join(traced, ","), "-o", out}
	for _, p := range pids {
		args = append(args, "-p", strconv.Itoa(p))
	}
	cmd := exec.Command(*straceBin, args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return ioStats{}, err
	}
	register(cmd.Process.Pid)
	defer unregister(cmd.Process.Pid)
	// Wait until strace has attached to every process.
	deadline := time.Now().Add(20 * time.Second)
	for _, p := range pids {
		for tracerPid(p) == 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	ferr := f()
	s.waitIdle()
	time.Sleep(50 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGINT)
	cmd.Wait()
	if ferr != nil {
		return ioStats{}, ferr
	}
	return parseStrace(out, s.dataDirs)
}

func tracerPid(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1 // gone: nothing to wait for
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "TracerPid:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return -1
}

var (
	straceLine = regexp.MustCompile(`^(\d+)\s+(.*)$`)
	fdAnn      = regexp.MustCompile(`(\d+)<([^>]*)>`)
	retVal     = regexp.MustCompile(`\)\s+=\s+(-?\d+)`)
)

// parseStrace reads strace -f -y output. A call that another thread
// interrupted is printed as "<unfinished ...>" and ends in a later
// "<... NAME resumed>" line of the same pid: the two are joined.
func parseStrace(path string, dataDirs []string) (ioStats, error) {
	st := ioStats{calls: map[string]int{}}
	f, err := os.Open(path)
	if err != nil {
		return st, err
	}
	defer f.Close()
	pending := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := straceLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		pid, rest := m[1], m[2]
		if i := strings.Index(rest, " <unfinished ...>"); i >= 0 {
			pending[pid] = rest[:i]
			continue
		}
		if strings.HasPrefix(rest, "<... ") {
			i := strings.Index(rest, " resumed>")
			if i < 0 {
				continue
			}
			rest = pending[pid] + rest[i+len(" resumed>"):]
			delete(pending, pid)
		}
		open := strings.IndexByte(rest, '(')
		if open <= 0 {
			continue
		}
		name, args := rest[:open], rest[open+1:]
		st.calls[name]++
		rv := int64(-1)
		if rm := retVal.FindAllStringSubmatch(args, -1); rm != nil {
			rv, _ = strconv.ParseInt(rm[len(rm)-1][1], 10, 64)
		}
		if rv < 0 {
			continue
		}
		// The fd the call writes to or syncs: the first argument, or
		// the third for copy_file_range and splice. Only the first may
		// be followed by a string, so the later ones parse safely.
		var target string
		anns := fdAnn.FindAllStringSubmatch(args, 3)
		switch name {
		case "copy_file_range", "splice":
			if len(anns) >= 2 {
				target = anns[1][2]
			}
		default:
			if len(anns) >= 1 && strings.HasPrefix(args, anns[0][1]+"<") {
				target = anns[0][2]
			}
		}
		isFile := strings.HasPrefix(target, "/") && !strings.HasPrefix(target, "/dev/")
		inData := false
		for _, d := range dataDirs {
			if strings.HasPrefix(target, d) {
				inData = true
			}
		}
		switch name {
		case "fsync", "fdatasync", "syncfs", "sync":
			st.fsyncs++
		case "msync", "sync_file_range":
			st.otherSyncs++
		default:
			switch {
			case inData:
				st.mailBytes += rv
			case isFile:
				st.otherBytes += rv
			}
		}
	}
	return st, sc.Err()
}
