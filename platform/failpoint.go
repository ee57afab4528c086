//go:build !crashtest

package platform

// Failpoint marks a named durable step. Production builds compile it to
// nothing; crash-test builds (-tags crashtest) kill the process there when
// POPPER_FAILPOINT names it.
func Failpoint(name string) {}
