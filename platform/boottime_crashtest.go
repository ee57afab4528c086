//go:build crashtest

package platform

import (
	"os"
	"strconv"
	"time"
)

// In crash-test builds POPPER_CRASHTEST_BOOT_TIME (Unix seconds) stands in
// for the host's boot time, so that a test can play "the host has just
// rebooted" without rebooting.
func init() {
	if v := os.Getenv("POPPER_CRASHTEST_BOOT_TIME"); v != "" {
		if sec, err := strconv.ParseInt(v, 10, 64); err == nil {
			t := time.Unix(sec, 0)
			bootTime.override = func() time.Time { return t }
		}
	}
}
