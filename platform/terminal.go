package platform

import "golang.org/x/sys/unix"

// IsTerminal reports whether fd is a terminal.
func IsTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, termiosGet)
	return err == nil
}

// EchoOff stops terminal fd from echoing what is typed, for reading a
// secret; line editing and the signal keys keep working. The returned
// function puts the previous settings back; the caller must call it, on
// signals too.
func EchoOff(fd int) (restore func() error, err error) {
	old, err := unix.IoctlGetTermios(fd, termiosGet)
	if err != nil {
		return nil, err
	}
	quiet := *old
	quiet.Lflag &^= unix.ECHO | unix.ECHOE | unix.ECHOK
	// The newline the user types still shows, so the next prompt
	// starts on a line of its own.
	quiet.Lflag |= unix.ICANON | unix.ISIG | unix.ECHONL
	quiet.Iflag |= unix.ICRNL
	if err := unix.IoctlSetTermios(fd, termiosSet, &quiet); err != nil {
		return nil, err
	}
	saved := *old
	return func() error { return unix.IoctlSetTermios(fd, termiosSet, &saved) }, nil
}
