package compat

import (
	"errors"
	"syscall"
)

// Strerror renders err as C's strerror and errno do in qpopper's
// "%s (%d)" texts: "Socket operation on non-socket (88)". Go's errno
// texts are C's with the first letter lowered. An error without an errno
// renders as its own text with number 0; no error is "Success" (0).
func Strerror(err error) (text string, errno int) {
	if err == nil {
		return "Success", 0
	}
	var en syscall.Errno
	if errors.As(err, &en) {
		s := en.Error()
		if s != "" && s[0] >= 'a' && s[0] <= 'z' {
			s = string(s[0]-'a'+'A') + s[1:]
		}
		return s, int(en)
	}
	return err.Error(), 0
}
