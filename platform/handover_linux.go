package platform

import (
	"net"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/daemon"
)

// SystemdListeners returns the listening sockets systemd passed with
// LISTEN_FDS (socket units with Accept=no), in order, and unsets the
// LISTEN_* variables so children do not inherit them. With no sockets
// passed it returns nil, nil. A passed descriptor that is not a
// listening stream socket is skipped.
func SystemdListeners() ([]net.Listener, error) {
	all, err := activation.Listeners()
	if err != nil {
		return nil, err
	}
	var ls []net.Listener
	for _, l := range all {
		if l != nil {
			ls = append(ls, l)
		}
	}
	return ls, nil
}

// SdNotify sends state (such as "READY=1" or "STOPPING=1") to systemd
// when NOTIFY_SOCKET is set; otherwise it does nothing.
func SdNotify(state string) error {
	_, err := daemon.SdNotify(false, state)
	return err
}
