package platform

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Maillock error codes and texts, as qpopper's maillock.h and maillock.c
// report them ("maillock error '%s' (%d) on '%s': %s (%d)").
type MaillockCode int

const (
	LockErrNameLen  MaillockCode = 1 // L_NAMELEN
	LockErrTmpLock  MaillockCode = 2 // L_TMPLOCK
	LockErrTmpWrite MaillockCode = 3 // L_TMPWRITE
	LockErrMaxTries MaillockCode = 4 // L_MAXTRYS
	LockErrOther    MaillockCode = 5 // L_ERROR
	LockErrManLock  MaillockCode = 6 // L_MANLOCK
)

var maillockText = map[MaillockCode]string{
	LockErrNameLen:  "User name too long",
	LockErrTmpLock:  "Unable to create lockfile",
	LockErrTmpWrite: "Unable to write pid into lockfile",
	LockErrMaxTries: "Max tries exceeded",
	LockErrOther:    "Other lock error",
	LockErrManLock:  "Unable to lock lockfile",
}

func (c MaillockCode) String() string {
	if s, ok := maillockText[c]; ok {
		return s
	}
	return fmt.Sprintf("maillock error %d", int(c))
}

// DotLockError is a dotlock failure. Its text is qpopper's
//
//	maillock error 'Max tries exceeded' (4) on '/var/mail/u.lock': File exists (17)
//
// to which the caller prefixes "-ERR [SYS/TEMP] " at login.
// errors.Is(err, ErrLockBusy) is true when the lock stayed held.
type DotLockError struct {
	Code MaillockCode
	Path string
	Err  error // the system error, or a description when there is none
}

func (e *DotLockError) Error() string {
	text, num := Strerror(e.Err)
	return fmt.Sprintf("maillock error '%s' (%d) on '%s': %s (%d)", e.Code, int(e.Code), e.Path, text, num)
}

func (e *DotLockError) Unwrap() error { return e.Err }

func (e *DotLockError) Is(target error) bool {
	return target == ErrLockBusy && e.Code == LockErrMaxTries
}

// Strerror renders err as C's strerror and errno would, for log lines that
// must match qpopper's "%s (%d)": "Socket operation on non-socket (88)".
// Go's errno texts are C's with the first letter lowered. An error without
// an errno renders with number 0.
func Strerror(err error) (text string, errno int) {
	if err == nil {
		return "Success", 0
	}
	var en syscall.Errno
	if errors.As(err, &en) {
		s := en.Error()
		if s != "" && s[0] >= 'a' && s[0] <= 'z' {
			s = string(s[0]-'a'+'A') + s[1:]
		}
		return s, int(en)
	}
	return err.Error(), 0
}

// DotLockOptions controls LockDot. The zero value is qpopper's login
// behaviour with one attempt.
type DotLockOptions struct {
	Tries    int                             // attempts before giving up; 0 means 1
	Wait     func(attempt int) time.Duration // pause after a failed attempt; nil means 5s*attempt
	Stale    time.Duration                   // a lock untouched this long is taken over; 0 means 300s
	LinkMode bool                            // create a unique file and link(2) it into place (NFS)
}

// Dotlock timings (qpopper LOCK_LIFE and LOCK_REFRESH_INTERVAL, maillock).
const (
	DefaultDotLockStale = 300 * time.Second
	DotLockRefresh      = 180 * time.Second
)

// DotLock is a held mailbox dotlock ("mailbox.lock").
type DotLock struct {
	path    string
	content []byte // "pid@host" as written

	mu      sync.Mutex
	id      FileID    // the lock file we created; we never remove another
	touched time.Time // last time we set its timestamps
}

// Path returns the lock file name.
func (l *DotLock) Path() string { return l.path }

// LockDot creates mailbox+".lock" exclusively and writes "pid@hostname"
// into it (no newline), as qpopper does. A lock held by someone else is
// waited for according to opt; one older than opt.Stale, or one whose
// "pid@host" names this host and a pid that no longer exists, is removed
// and taken over. A lock path that is a symbolic link or has more than
// one link is refused.
func LockDot(mailbox string, opt DotLockOptions) (*DotLock, error) {
	if mailbox == "" {
		return nil, &DotLockError{Code: LockErrNameLen, Path: ".lock", Err: errors.New("empty mailbox name")}
	}
	tries := opt.Tries
	if tries <= 0 {
		tries = 1
	}
	wait := opt.Wait
	if wait == nil {
		wait = func(attempt int) time.Duration { return 5 * time.Second * time.Duration(attempt) }
	}
	stale := opt.Stale
	if stale <= 0 {
		stale = DefaultDotLockStale
	}
	path := mailbox + ".lock"
	content := []byte(lockOwner())

	for attempt := 1; attempt <= tries; attempt++ {
		l, err := createDotLock(path, content, opt.LinkMode)
		if err == nil {
			return l, nil
		}
		var failed *DotLockError
		if errors.As(err, &failed) || !errors.Is(err, syscall.EEXIST) {
			return nil, err
		}
		// Someone holds it. Take it over if it is stale; otherwise wait.
		took, err := takeOverStale(path, content, stale, opt.LinkMode)
		if err != nil {
			return nil, err
		}
		if took != nil {
			return took, nil
		}
		if attempt < tries {
			time.Sleep(wait(attempt))
		}
	}
	return nil, &DotLockError{Code: LockErrMaxTries, Path: path, Err: syscall.EEXIST}
}

// lockOwner is what we write into a lock: "pid@hostname".
func lockOwner() string {
	host, err := os.Hostname()
	if err != nil {
		host = "localhost"
	}
	return strconv.Itoa(os.Getpid()) + "@" + host
}

// createDotLock makes the lock file exclusively. An error wrapping EEXIST
// means that the lock exists.
func createDotLock(path string, content []byte, linkMode bool) (*DotLock, error) {
	if err := checkLockPath(path); err != nil {
		return nil, err
	}
	if linkMode {
		return createDotLockByLink(path, content)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0600)
	if err != nil {
		if errors.Is(err, syscall.EEXIST) {
			return nil, err
		}
		return nil, &DotLockError{Code: LockErrTmpLock, Path: path, Err: unwrapErrno(err)}
	}
	return finishDotLock(f, path, content)
}

// finishDotLock writes the owner into a freshly created lock file.
func finishDotLock(f *os.File, path string, content []byte) (*DotLock, error) {
	_, werr := f.Write(content)
	fi, serr := f.Stat()
	cerr := f.Close()
	if werr == nil {
		werr = serr
	}
	if werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(path)
		return nil, &DotLockError{Code: LockErrTmpWrite, Path: path, Err: unwrapErrno(werr)}
	}
	return &DotLock{path: path, content: content, id: IDOf(fi), touched: time.Now()}, nil
}

// createDotLockByLink is the NFS-safe variant (liblockfile, maillock): a
// unique file is created, then hard-linked to the lock name; success is
// judged by the unique file's link count, since NFS may report a link that
// succeeded as failed.
func createDotLockByLink(path string, content []byte) (*DotLock, error) {
	tmp, f, err := createUnique(path)
	if err != nil {
		return nil, &DotLockError{Code: LockErrTmpLock, Path: path, Err: unwrapErrno(err)}
	}
	defer os.Remove(tmp)
	if _, err := f.Write(content); err != nil {
		f.Close()
		return nil, &DotLockError{Code: LockErrTmpWrite, Path: path, Err: unwrapErrno(err)}
	}
	if err := f.Close(); err != nil {
		return nil, &DotLockError{Code: LockErrTmpWrite, Path: path, Err: unwrapErrno(err)}
	}
	linkErr := os.Link(tmp, path)
	fi, err := os.Lstat(tmp)
	if err != nil {
		return nil, &DotLockError{Code: LockErrTmpLock, Path: path, Err: unwrapErrno(err)}
	}
	id := IDOf(fi)
	if id.Nlink != 2 {
		if linkErr == nil || errors.Is(linkErr, syscall.EEXIST) {
			return nil, &os.PathError{Op: "link", Path: path, Err: syscall.EEXIST}
		}
		return nil, &DotLockError{Code: LockErrTmpLock, Path: path, Err: unwrapErrno(linkErr)}
	}
	id.Nlink = 1 // after the unique name is removed
	return &DotLock{path: path, content: content, id: id, touched: time.Now()}, nil
}

// createUnique creates a new file next to the lock, named after it.
func createUnique(path string) (string, *os.File, error) {
	dir, base := filepath.Split(path)
	for i := 0; ; i++ {
		var r [6]byte
		if _, err := io.ReadFull(rand.Reader, r[:]); err != nil {
			return "", nil, err
		}
		tmp := filepath.Join(dir, fmt.Sprintf(".%s.%d.%s", base, os.Getpid(), hex.EncodeToString(r[:])))
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0600)
		if err == nil || !errors.Is(err, syscall.EEXIST) || i == 10 {
			return tmp, f, err
		}
	}
}

// checkLockPath refuses an existing lock path that is a symbolic link or
// has more than one link (qpopper): either could make us remove or touch a
// file that is not a lock.
func checkLockPath(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil // absent (or unreadable: the create reports it)
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		return &DotLockError{Code: LockErrOther, Path: path, Err: errors.New("lock file is a symbolic link")}
	}
	if !fi.Mode().IsRegular() {
		return &DotLockError{Code: LockErrOther, Path: path, Err: errors.New("lock file is not a regular file")}
	}
	if IDOf(fi).Nlink > 1 {
		// A link-mode locker has two names for its lock for a moment
		// (liblockfile, maillock and LinkMode here); a link that stays
		// is refused.
		time.Sleep(50 * time.Millisecond)
		if fi, err := os.Lstat(path); err == nil && IDOf(fi).Nlink > 1 {
			return &DotLockError{Code: LockErrOther, Path: path, Err: errors.New("lock file has more than one link")}
		}
	}
	return nil
}

// takeOverStale removes the lock at path and creates ours if the lock is
// stale. It returns nil, nil when the lock is live (or changed under us).
//
// Two takers must never both succeed: B could judge the old lock stale,
// A remove it and create a new one, and B then remove A's. So the
// old lock file is itself locked (flock, or fcntl on Oracle Solaris) while
// it is checked, removed and replaced; a second taker that opened the same
// old file cannot get that lock, and on its next attempt finds the name
// referring to the new, live lock.
func takeOverStale(path string, content []byte, stale time.Duration, linkMode bool) (*DotLock, error) {
	if err := checkLockPath(path); err != nil {
		return nil, err
	}
	mode := os.O_RDONLY // enough for flock
	if !haveFlock {
		mode = os.O_RDWR // an fcntl write lock needs a writable descriptor
	}
	// O_NONBLOCK: should a FIFO have replaced the checked file, the open
	// must not hang.
	f, err := os.OpenFile(path, mode|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if errors.Is(err, os.ErrPermission) {
		return takeOverUnreadable(path, content, stale, linkMode)
	}
	if err != nil {
		return nil, nil // gone already: the next attempt creates it
	}
	defer f.Close()
	if err := sessionTryLock(int(f.Fd())); err != nil {
		return nil, nil // another taker is at work
	}
	held, err := f.Stat()
	if err != nil {
		return nil, nil
	}
	cur, err := os.Lstat(path)
	if err != nil || !IDOf(cur).SameFile(IDOf(held)) {
		return nil, nil // replaced or removed since we opened it
	}
	if !dotLockIsStale(f, held, stale) {
		return nil, nil
	}
	if testHookBeforeTakeover != nil {
		testHookBeforeTakeover()
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, syscall.ENOENT) {
		return nil, &DotLockError{Code: LockErrOther, Path: path, Err: unwrapErrno(err)}
	}
	l, err := createDotLock(path, content, linkMode)
	if err != nil {
		if errors.Is(err, syscall.EEXIST) {
			return nil, nil // a program that ignores our takeover lock got in first
		}
		return nil, err
	}
	return l, nil
}

// takeOverUnreadable handles a lock we may not open (another user's 0600
// lock, as a deliverer running as root may leave): only its age can tell,
// and no guard lock can be taken on it, so two takers racing here could
// both succeed; this is the same exposure maillock and liblockfile have on
// every takeover. A stale lock must not keep a user from mail for ever.
func takeOverUnreadable(path string, content []byte, stale time.Duration, linkMode bool) (*DotLock, error) {
	fi, err := os.Lstat(path)
	if err != nil || time.Since(fi.ModTime()) < stale {
		return nil, nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, syscall.ENOENT) {
		return nil, &DotLockError{Code: LockErrOther, Path: path, Err: unwrapErrno(err)}
	}
	l, err := createDotLock(path, content, linkMode)
	if errors.Is(err, syscall.EEXIST) {
		return nil, nil
	}
	return l, err
}

// testHookBeforeTakeover lets tests widen the window between judging a
// lock stale and removing it.
var testHookBeforeTakeover func()

// dotLockIsStale applies the age rule (by mtime, as qpopper and
// liblockfile) and the dead-owner rule (popper): "pid@host" naming this
// host and a process that does not exist.
func dotLockIsStale(f *os.File, fi os.FileInfo, stale time.Duration) bool {
	if time.Since(fi.ModTime()) >= stale {
		return true
	}
	buf := make([]byte, 256)
	n, _ := f.ReadAt(buf, 0)
	return ownerIsDead(string(buf[:n]))
}

// ownerIsDead reports whether content is "pid@host" with host this host
// and no process pid. Anything else (maillock's "0", liblockfile's bare
// pid, another host) is judged by age only.
func ownerIsDead(content string) bool {
	pidText, host, ok := strings.Cut(content, "@")
	if !ok {
		return false
	}
	me, err := os.Hostname()
	if err != nil || host != me {
		return false
	}
	pid, err := strconv.Atoi(pidText)
	if err != nil || pid <= 0 {
		return false
	}
	return syscall.Kill(pid, 0) == syscall.ESRCH
}

// Refresh keeps the lock from going stale: at most every 180 s it sets the
// lock's timestamps to now (maillock touchlock). It is cheap to call often.
// It fails if the lock file is no longer ours (removed or taken over).
func (l *DotLock) Refresh() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if time.Since(l.touched) < DotLockRefresh {
		return nil
	}
	return l.touchLocked()
}

func (l *DotLock) touchLocked() error {
	if err := l.checkOursLocked(); err != nil {
		return err
	}
	now := time.Now()
	if err := os.Chtimes(l.path, now, now); err != nil {
		return &DotLockError{Code: LockErrOther, Path: l.path, Err: unwrapErrno(err)}
	}
	l.touched = now
	return nil
}

func (l *DotLock) checkOursLocked() error {
	fi, err := os.Lstat(l.path)
	if err != nil {
		return &DotLockError{Code: LockErrOther, Path: l.path, Err: unwrapErrno(err)}
	}
	// The inode alone could have been reused by a new lock; the content
	// tells our lock from another process's.
	if !IDOf(fi).SameFile(l.id) || !l.hasOurContent() {
		return &DotLockError{Code: LockErrOther, Path: l.path, Err: errors.New("lock was taken over by another process")}
	}
	return nil
}

func (l *DotLock) hasOurContent() bool {
	f, err := os.OpenFile(l.path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	buf := make([]byte, len(l.content)+1)
	n, _ := io.ReadFull(f, buf)
	return string(buf[:n]) == string(l.content)
}

// Unlock removes the lock file, unless it is no longer ours.
func (l *DotLock) Unlock() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.checkOursLocked(); err != nil {
		return err
	}
	if err := os.Remove(l.path); err != nil {
		return &DotLockError{Code: LockErrOther, Path: l.path, Err: unwrapErrno(err)}
	}
	return nil
}

// unwrapErrno returns the errno inside err, or err itself.
func unwrapErrno(err error) error {
	var en syscall.Errno
	if errors.As(err, &en) {
		return en
	}
	return err
}
