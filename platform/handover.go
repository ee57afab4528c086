package platform

import (
	"net"
	"os"
	"syscall"

	"github.com/popperd/popper/compat"
)

// InetdError is returned by InetdConn when descriptor 0 is not a connected
// socket. Its text is qpopper's log line.
type InetdError struct{ Err error }

func (e *InetdError) Error() string { return compat.InetdError(e.Err) }

func (e *InetdError) Unwrap() error { return e.Err }

// InetdConn returns the client connection inetd (or systemd with
// Accept=yes and StandardInput=socket) left on descriptor 0. Like qpopper
// it first asks for the peer's address, so a descriptor 0 that is not a
// connected socket gives an *InetdError such as
// "Unable to obtain socket and address of client: Socket operation on non-socket (88)".
//
// The net.Conn holds a duplicate of descriptor 0; descriptors 0 and 1
// stay open until the process exits.
func InetdConn() (net.Conn, error) {
	if _, err := syscall.Getpeername(0); err != nil {
		return nil, &InetdError{Err: err}
	}
	c, err := net.FileConn(os.Stdin)
	if err != nil {
		return nil, &InetdError{Err: unwrapErrno(err)}
	}
	return c, nil
}
