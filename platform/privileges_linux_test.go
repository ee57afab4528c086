package platform

import (
	"strconv"
	"syscall"
)

// thisThread is the calling thread's id, as /proc/self/task names it.
func thisThread() string { return strconv.Itoa(syscall.Gettid()) }
