package platform

import "golang.org/x/sys/unix"

// StderrIsConnection reports whether standard error is the client's
// connection on standard input, as inetd and xinetd leave it: nothing may
// be logged there. (systemd's StandardError=journal is a socket too, but
// another one.)
func StderrIsConnection() bool {
	var in, errst unix.Stat_t
	if unix.Fstat(0, &in) != nil || unix.Fstat(2, &errst) != nil {
		return false
	}
	return in.Mode&unix.S_IFMT == unix.S_IFSOCK && in.Dev == errst.Dev && in.Ino == errst.Ino
}
