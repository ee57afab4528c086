package platform

import (
	"net"

	"golang.org/x/sys/unix"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/daemon"
)

// SystemdSockets returns what systemd passed with LISTEN_FDS, in order,
// and unsets the LISTEN_* variables so children do not inherit them:
// listening stream sockets (socket units with Accept=no) and, from a unit
// with Accept=yes but without StandardInput=socket, the one connection
// (on descriptor 3). With nothing passed it returns nil, nil, nil.
// Descriptors that are neither are closed and skipped.
func SystemdSockets() (listeners []net.Listener, conn net.Conn, err error) {
	for _, f := range activation.Files(true) {
		fd := int(f.Fd())
		accepting, aerr := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
		_, perr := unix.Getpeername(fd)
		switch {
		case aerr == nil && accepting == 1:
			if l, err := net.FileListener(f); err == nil {
				listeners = append(listeners, l)
			}
		case perr == nil && conn == nil:
			// net.FileListener would take a connected socket for a
			// listener (it does not check SO_ACCEPTCONN).
			if c, err := net.FileConn(f); err == nil {
				conn = c
			}
		}
		f.Close()
	}
	return listeners, conn, nil
}

// SdNotify sends state (such as "READY=1" or "STOPPING=1") to systemd
// when NOTIFY_SOCKET is set; otherwise it does nothing.
func SdNotify(state string) error {
	_, err := daemon.SdNotify(false, state)
	return err
}
