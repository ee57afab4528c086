//go:build crashtest

package platform

import (
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Crash-test failpoints. Two environment variables drive them:
//
//	POPPER_FAILPOINT_TRACE=path  append "name\n" to path at every hit, so a
//	                             test can learn which failpoints a session
//	                             passes and in which order.
//	POPPER_FAILPOINT=name[:N]    at the Nth hit of name (default 1) send
//	                             SIGKILL to this process: nothing deferred
//	                             runs, exactly as with kill -9.
//	POPPER_FAILPOINT_ACTION=stop send SIGSTOP instead: the process stops
//	                             there, as a host under heavy load or a
//	                             debugger would stop it, until SIGCONT.

var failpoints struct {
	once   sync.Once
	trace  *os.File
	target string
	nth    int
	stop   bool
	mu     sync.Mutex
	hits   map[string]int
}

func loadFailpoints() {
	fp := &failpoints
	if path := os.Getenv("POPPER_FAILPOINT_TRACE"); path != "" {
		// Opened now, while the process may still be root: a session
		// writes its failpoints after it has dropped to the user.
		fp.trace, _ = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o666)
		if fp.trace != nil {
			// Children that already run as the user (the recovery
			// sweep's) append to the same file.
			fp.trace.Chmod(0o666)
		}
	}
	fp.hits = make(map[string]int)
	spec := os.Getenv("POPPER_FAILPOINT")
	if spec == "" {
		return
	}
	fp.target, fp.nth = spec, 1
	fp.stop = os.Getenv("POPPER_FAILPOINT_ACTION") == "stop"
	if i := strings.LastIndexByte(spec, ':'); i >= 0 {
		if n, err := strconv.Atoi(spec[i+1:]); err == nil && n > 0 {
			fp.target, fp.nth = spec[:i], n
		}
	}
}

func init() { failpoints.once.Do(loadFailpoints) }

// Failpoint marks a named durable step; see the package comment above.
func Failpoint(name string) {
	fp := &failpoints
	fp.once.Do(loadFailpoints)
	fp.mu.Lock()
	defer fp.mu.Unlock()
	if fp.trace != nil {
		// One write per hit on an O_APPEND file keeps lines whole even
		// when several processes trace into the same file.
		fp.trace.Write([]byte(name + "\n"))
	}
	if fp.target != name {
		return
	}
	fp.hits[name]++
	if fp.hits[name] == fp.nth && fp.stop {
		// The stop is asynchronous: this thread must not go on until the
		// process has been stopped and continued.
		cont := make(chan os.Signal, 1)
		signal.Notify(cont, syscall.SIGCONT)
		syscall.Kill(os.Getpid(), syscall.SIGSTOP)
		<-cont
		signal.Stop(cont)
		return
	}
	if fp.hits[name] == fp.nth {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way; never return into the caller
	}
}
