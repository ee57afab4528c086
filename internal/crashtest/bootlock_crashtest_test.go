//go:build crashtest

package crashtest

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSweepAfterRebootTakesEmptyLock: a host crashed while a session was
// between creating the spool's dotlock and writing its owner into it (an
// O_EXCL lock, qpopper's or popper's fallback), or a power cut kept the
// lock's name and lost its data. After the reboot the boot sweep finds
// the leftover temp drop behind a lock that names no one, 20 s old: by
// age it could be live for 280 s more, but it was written before the
// boot, so it is stale; the sweep recovers the user and says so.
func TestSweepAfterRebootTakesEmptyLock(t *testing.T) {
	for _, content := range []string{"", "\x00\x00\x00\x00\x00\x00\x00\x00", "31337@"} {
		t.Run(strconv.Quote(content), func(t *testing.T) {
			e := newEnv(t, false)
			sc := scenario{name: "boot", messages: 3, leftover: true}
			m := sc.start(t, e)
			lock := e.spoolPath() + ".lock"
			if err := os.WriteFile(lock, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			e.own(lock)
			written := time.Now().Add(-20 * time.Second)
			os.Chtimes(lock, written, written)
			boot := "POPPER_CRASHTEST_BOOT_TIME=" + strconv.FormatInt(time.Now().Add(-10*time.Second).Unix(), 10)
			began := time.Now()
			out, err := e.recover(boot)
			if err != nil || !strings.Contains(out, "1 recovered, 0 failed") {
				t.Fatalf("popper --recover after the reboot: %v\n%s", err, out)
			}
			if took := time.Since(began); took > 4*time.Second {
				t.Errorf("the sweep waited %v for a lock from before the boot", took)
			}
			if _, err := os.Stat(lock); !os.IsNotExist(err) {
				t.Errorf("the lock is still there after the sweep: %v", err)
			}
			for _, f := range e.verify("after the sweep", m) {
				t.Error(f)
			}
		})
	}
}
