//go:build !linux

package platform

import "net"

// SystemdSockets returns nothing: only Linux has systemd.
func SystemdSockets() ([]net.Listener, net.Conn, error) { return nil, nil, nil }

// SdNotify does nothing: only Linux has systemd.
func SdNotify(state string) error { return nil }
