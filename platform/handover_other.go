//go:build !linux

package platform

import "net"

// SystemdListeners returns nil, nil: only Linux has systemd.
func SystemdListeners() ([]net.Listener, error) { return nil, nil }

// SdNotify does nothing: only Linux has systemd.
func SdNotify(state string) error { return nil }
