package platform

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/popperd/popper/compat"
)

// ErrLockBusy is wrapped in the error returned when a lock is held by
// someone else and the allowed attempts or time ran out.
var ErrLockBusy = errors.New("lock busy")

// LockKind is a kernel lock on an open mailbox.
type LockKind int

const (
	LockFcntl LockKind = iota + 1 // fcntl(F_SETLK) write lock on the whole file
	LockFlock                     // flock(LOCK_EX)
)

func (k LockKind) String() string {
	switch k {
	case LockFcntl:
		return "fcntl"
	case LockFlock:
		return "flock"
	}
	return fmt.Sprintf("LockKind(%d)", int(k))
}

// DefaultSpoolLocks returns the kernel locks the local delivery agents of
// this OS take on a mailbox (see doc_locks.go). A dotlock comes first on
// every OS and is taken separately with LockDot.
func DefaultSpoolLocks() []LockKind {
	switch runtime.GOOS {
	case "freebsd", "dragonfly", "openbsd", "netbsd", "darwin":
		return []LockKind{LockFlock}
	default: // linux, illumos, solaris
		return []LockKind{LockFcntl}
	}
}

// ParseLockKinds parses a configuration list such as "dotlock,fcntl" or
// "dotlock flock". It reports whether a dotlock was named and returns the
// kernel locks in the order given. Unknown or repeated names are errors.
func ParseLockKinds(s string) (dotlock bool, kinds []LockKind, err error) {
	names := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
	if len(names) == 0 {
		return false, nil, fmt.Errorf("empty lock list %q", s)
	}
	seen := map[string]bool{}
	for _, name := range names {
		name = strings.ToLower(name)
		if seen[name] {
			return false, nil, fmt.Errorf("lock %q listed twice in %q", name, s)
		}
		seen[name] = true
		switch name {
		case "dotlock":
			dotlock = true
		case "fcntl", "lockf":
			// lockf(3) is a wrapper around fcntl record locks on every
			// target OS, so an MDA using it takes the same lock.
			kinds = append(kinds, LockFcntl)
		case "flock":
			kinds = append(kinds, LockFlock)
		default:
			return false, nil, fmt.Errorf("unknown lock %q (want dotlock, fcntl, lockf or flock)", name)
		}
	}
	return dotlock, kinds, nil
}

// LockError describes a kernel lock that could not be taken. Err is the
// system error (a syscall.Errno where there is one); Busy, and
// errors.Is(err, ErrLockBusy), report that someone else held the lock.
type LockError struct {
	Kind LockKind
	Path string
	Err  error
	Busy bool
}

// Error has qpopper's shape, "flock: '/var/mail/u': Resource temporarily
// unavailable (11)", to which the caller prefixes "-ERR [SYS/TEMP] ".
func (e *LockError) Error() string { return compat.KernelLockError(e.Kind.String(), e.Path, e.Err) }

func (e *LockError) Unwrap() error { return e.Err }

func (e *LockError) Is(target error) bool { return target == ErrLockBusy && e.Busy }

// isBusy reports whether err from a non-blocking lock attempt means that
// another holder has the lock.
func isBusy(err error) bool {
	return err == syscall.EWOULDBLOCK || err == syscall.EAGAIN || err == syscall.EACCES
}

// lockRetryInterval is the pause between non-blocking attempts.
const lockRetryInterval = 100 * time.Millisecond

// LockMailbox takes exclusive locks of the given kinds, in order, on the
// open mailbox f. Every attempt is non-blocking; when one kind is busy the
// kinds already taken are released and the whole set is tried again, until
// timeout has passed (timeout 0 means one attempt). This keeps us from
// deadlocking with a deliverer that takes the same locks in another order.
//
// The returned unlock releases the locks in reverse order. Closing f also
// releases them. No kinds takes no lock: a site whose delivery agents use
// the dotlock alone.
func LockMailbox(f *File, kinds []LockKind, timeout time.Duration) (unlock func() error, err error) {
	if len(kinds) == 0 {
		return func() error { return nil }, nil
	}
	seen := map[LockKind]bool{}
	for _, k := range kinds {
		if k != LockFcntl && k != LockFlock {
			return nil, fmt.Errorf("LockMailbox: unknown lock kind %v", k)
		}
		if k == LockFlock && !haveFlock {
			return nil, &LockError{Kind: k, Path: f.Name(), Err: errNoFlock}
		}
		if seen[k] {
			return nil, fmt.Errorf("LockMailbox: %v listed twice", k)
		}
		seen[k] = true
	}
	if seen[LockFcntl] && seen[LockFlock] && runtime.GOOS == "illumos" {
		// illumos flock shares the fcntl lock manager; the second lock
		// would conflict with our own first one.
		return nil, errors.New("LockMailbox: fcntl and flock together would conflict on illumos")
	}

	deadline := time.Now().Add(timeout)
	fd := int(f.Fd())
	for {
		taken, err := tryKinds(fd, f.Name(), kinds)
		if err == nil {
			return func() error { return releaseKinds(fd, f.Name(), taken) }, nil
		}
		if !errors.Is(err, ErrLockBusy) || !time.Now().Before(deadline) {
			return nil, err
		}
		pause := lockRetryInterval
		if left := time.Until(deadline); left < pause {
			pause = left
		}
		time.Sleep(pause)
	}
}

// tryKinds takes every kind without blocking, or none of them.
func tryKinds(fd int, name string, kinds []LockKind) ([]LockKind, error) {
	var taken []LockKind
	for _, k := range kinds {
		var err error
		switch k {
		case LockFcntl:
			err = fcntlTryLock(fd)
		case LockFlock:
			err = flockTryLock(fd)
		}
		if err != nil {
			releaseKinds(fd, name, taken)
			return nil, &LockError{Kind: k, Path: name, Err: err, Busy: isBusy(err)}
		}
		taken = append(taken, k)
	}
	return taken, nil
}

func releaseKinds(fd int, name string, kinds []LockKind) error {
	var first error
	for i := len(kinds) - 1; i >= 0; i-- {
		var err error
		switch kinds[i] {
		case LockFcntl:
			err = fcntlUnlock(fd)
		case LockFlock:
			err = flockUnlock(fd)
		}
		if err != nil && first == nil {
			first = &LockError{Kind: kinds[i], Path: name, Err: err}
		}
	}
	return first
}

// TryLockSession takes the temp drop's session lock without waiting, as
// qpopper does with flock(LOCK_EX|LOCK_NB). It returns false, nil when
// another session holds it. The lock lasts until f is closed.
func TryLockSession(f *File) (bool, error) {
	err := sessionTryLock(int(f.Fd()))
	if err == nil {
		return true, nil
	}
	if isBusy(err) {
		return false, nil
	}
	return false, &LockError{Kind: sessionLockKind, Path: f.Name(), Err: err}
}
