package platform

import (
	"sync"
	"time"
)

var bootTime struct {
	once sync.Once
	t    time.Time
	// override, when set (tests, crash-test builds), replaces the
	// system's answer.
	override func() time.Time
}

// BootTime is when this host (or, on illumos and Solaris, this zone)
// last booted, or the zero time when the system does not say. A file
// written before it was written by a process that no longer runs.
func BootTime() time.Time {
	if f := bootTime.override; f != nil {
		return f()
	}
	bootTime.once.Do(func() {
		t, err := systemBootTime()
		if err == nil && t.Before(time.Now()) {
			bootTime.t = t
		}
	})
	return bootTime.t
}
