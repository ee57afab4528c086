//go:build crashtest

package platform

import "os"

// In crash-test builds POPPER_CRASHTEST_STRICT_NAMES makes
// NameDurableWithSync answer false, so that the strict POSIX model's
// states are tested on any file system.
var strictNames = os.Getenv("POPPER_CRASHTEST_STRICT_NAMES") != ""
