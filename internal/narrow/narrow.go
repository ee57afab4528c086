// Package narrow runs the process on one processor from its start until
// Widen.
//
// A popper session's fixed part (start, configuration, the password
// check, the drop to the user) is one goroutine's work. A second
// processor there only wakes more threads, and on Linux each thread is
// one more to signal for every change of credentials (platform.DropToUser):
// about 0.45 ms of an 8 ms session. The setting is made in this package's
// init, which imports nothing but the runtime so as to run before nearly
// every other package's: in main it cost 0.17 ms, here 0.03 ms, as little
// else runs yet to stop.
package narrow

import "runtime"

// before is the setting Widen restores; 0 when init left it alone.
var before int

func init() {
	// Only the default: a GOMAXPROCS set other than the number of CPUs
	// (by the environment, or a container's quota) is left as it is.
	if n := runtime.GOMAXPROCS(0); n > 1 && n == runtime.NumCPU() {
		before = runtime.GOMAXPROCS(1)
	}
}

// Widen gives the process back the processors it had at start, so that
// the collector can run beside a parse or a RETR (pipelined RETR was 15%
// slower on one). Called again, or where init left the setting alone, it
// does nothing.
func Widen() {
	if before > 0 {
		runtime.GOMAXPROCS(before)
		before = 0
	}
}
