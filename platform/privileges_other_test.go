//go:build !linux

package platform

// thisThread is only needed where /proc lists threads (threadIDs).
func thisThread() string { return "" }
