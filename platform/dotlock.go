package platform

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/popperd/popper/compat"
	"golang.org/x/sys/unix"
)

// Maillock error codes, as qpopper's maillock.h numbers them; their
// texts are compat's (MaillockText, MaillockError).
type MaillockCode int

const (
	LockErrNameLen  MaillockCode = 1 // L_NAMELEN
	LockErrTmpLock  MaillockCode = 2 // L_TMPLOCK
	LockErrTmpWrite MaillockCode = 3 // L_TMPWRITE
	LockErrMaxTries MaillockCode = 4 // L_MAXTRYS
	LockErrOther    MaillockCode = 5 // L_ERROR
	LockErrManLock  MaillockCode = 6 // L_MANLOCK
)

func (c MaillockCode) String() string { return compat.MaillockText(int(c)) }

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

func (e *DotLockError) Error() string { return compat.MaillockError(int(e.Code), e.Path, e.Err) }

func (e *DotLockError) Unwrap() error { return e.Err }

func (e *DotLockError) Is(target error) bool {
	return target == ErrLockBusy && e.Code == LockErrMaxTries
}

// DotLockOptions controls LockDot. The zero value is qpopper's login
// behaviour with one attempt.
type DotLockOptions struct {
	Tries int                             // attempts before giving up; 0 means 1
	Wait  func(attempt int) time.Duration // pause after a failed attempt; nil means 5s*attempt
	Stale time.Duration                   // a lock untouched this long is taken over; 0 means 300s
	// LinkMode (qpopper's no-atomic-open) insists on the link(2) method.
	// Every lock is made that way, so that it appears with its content
	// in one step and NFS cannot hand it to two hosts; without LinkMode,
	// a filesystem or name length that rules link(2) out falls back to
	// O_EXCL, with it the lock fails.
	LinkMode bool
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

// LockDot creates mailbox+".lock" holding "pid@hostname" (no newline, as
// qpopper writes it). The lock is written under a unique name beside it
// and hard-linked into place, the method liblockfile and maillock use and
// the only one that is atomic on NFS: the lock never exists without its
// owner in it. A lock held by someone else is waited for according to
// opt, and taken over when it is stale:
//   - older than opt.Stale (300 s), measured on the clock of the
//     filesystem that holds it, so several hosts agree;
//   - naming this host and a process that no longer exists;
//   - written before this host booted, when it names this host or names
//     no one at all (empty, or torn by a crash).
//
// A lock naming another host is judged by its age alone. A lock path
// that is a symbolic link, or has a second link that is not a locker's
// unique name, is refused.
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
		l, now, err := createDotLock(path, content, opt.LinkMode)
		if err == nil {
			return l, nil
		}
		var failed *DotLockError
		if errors.As(err, &failed) || !errors.Is(err, syscall.EEXIST) {
			return nil, err
		}
		// Someone holds it. Take it over if it is stale; otherwise wait.
		took, err := takeOverStale(path, content, stale, now, opt.LinkMode)
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
	return strconv.Itoa(os.Getpid()) + "@" + thisHost()
}

func thisHost() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		return "localhost"
	}
	return host
}

// createDotLock makes the lock file exclusively. An error wrapping EEXIST
// means that the lock exists; now is then the lock directory's clock (the
// unique file's mtime), or this host's when there was no unique file.
func createDotLock(path string, content []byte, strict bool) (l *DotLock, now time.Time, err error) {
	if _, err := checkLockPath(path); err != nil {
		return nil, time.Now(), err
	}
	l, now, err = createDotLockByLink(path, content)
	if err == nil || strict || !linkUnusable(err) {
		return l, now, err
	}
	// No link(2) here (a filesystem without hard links, or no room in
	// the name for the unique suffix): qpopper's O_EXCL, whose lock is
	// empty for a moment.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0600)
	if err != nil {
		if errors.Is(err, syscall.EEXIST) {
			return nil, time.Now(), err
		}
		return nil, time.Now(), &DotLockError{Code: LockErrTmpLock, Path: path, Err: unwrapErrno(err)}
	}
	l, err = finishDotLock(f, path, content)
	return l, time.Now(), err
}

// linkUnusable reports whether the link method failed for a reason the
// O_EXCL method does not share.
func linkUnusable(err error) bool {
	var de *DotLockError
	if !errors.As(err, &de) || de.Code != LockErrTmpLock {
		return false
	}
	for _, e := range []syscall.Errno{syscall.ENAMETOOLONG, syscall.EPERM, syscall.EOPNOTSUPP, syscall.ENOTSUP, syscall.EXDEV, syscall.EMLINK, syscall.ENOSYS} {
		if errors.Is(de.Err, e) {
			return true
		}
	}
	return false
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

// createDotLockByLink is the NFS-safe method (liblockfile, maillock): a
// unique file is created and written, then hard-linked to the lock name;
// success is judged by the unique file's link count, since NFS may report
// a link that succeeded as failed (a retransmitted LINK finds its own
// result).
func createDotLockByLink(path string, content []byte) (*DotLock, time.Time, error) {
	tmp, f, err := createUnique(path)
	if err != nil {
		return nil, time.Now(), &DotLockError{Code: LockErrTmpLock, Path: path, Err: unwrapErrno(err)}
	}
	defer os.Remove(tmp)
	_, werr := f.Write(content)
	fi, serr := f.Stat()
	cerr := f.Close()
	for _, e := range []error{werr, serr, cerr} {
		if e != nil {
			return nil, time.Now(), &DotLockError{Code: LockErrTmpWrite, Path: path, Err: unwrapErrno(e)}
		}
	}
	now := fi.ModTime()
	// A kill here leaves the unique file (IsDotLockTemp) and no lock.
	Failpoint("dotlock.written")
	linkErr := os.Link(tmp, path)
	// A kill here leaves the lock with a second name: the next locker
	// recognises the unique name (checkLockPath) and judges the lock.
	Failpoint("dotlock.linked")
	cur, err := os.Lstat(tmp)
	if err != nil {
		return nil, now, &DotLockError{Code: LockErrTmpLock, Path: path, Err: unwrapErrno(err)}
	}
	id := IDOf(cur)
	if !id.SameFile(IDOf(fi)) || id.Nlink != 2 {
		if linkErr == nil || errors.Is(linkErr, syscall.EEXIST) {
			return nil, now, &os.PathError{Op: "link", Path: path, Err: syscall.EEXIST}
		}
		return nil, now, &DotLockError{Code: LockErrTmpLock, Path: path, Err: unwrapErrno(linkErr)}
	}
	id.Nlink = 1 // after the unique name is removed
	return &DotLock{path: path, content: content, id: id, touched: time.Now()}, now, nil
}

// createUnique creates the unique file beside the lock:
// ".<lock name>.<host>.<pid>.<12 hex digits>".
func createUnique(path string) (string, *os.File, error) {
	dir, base := filepath.Split(path)
	for i := 0; ; i++ {
		var r [6]byte
		if _, err := io.ReadFull(rand.Reader, r[:]); err != nil {
			return "", nil, err
		}
		tmp := filepath.Join(dir, fmt.Sprintf(".%s.%s.%d.%s", base, uniqueHost(), os.Getpid(), hex.EncodeToString(r[:])))
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0600)
		if err == nil || !errors.Is(err, syscall.EEXIST) || i == 10 {
			return tmp, f, err
		}
	}
}

// uniqueHost is this host's name as it goes into unique names: letters,
// digits, '-' and '.', at most 32 of them.
func uniqueHost() string {
	var b strings.Builder
	for _, c := range []byte(thisHost()) {
		if b.Len() == 32 {
			break
		}
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// uniqueNameRe is compiled when first used: most sessions never do.
var uniqueNameRe = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^\..+\.lock\.[A-Za-z0-9.-]*\.[0-9]+\.[0-9a-f]{12}$`)
})

// IsDotLockTemp reports whether a file name is a unique file of LockDot's
// (".user.lock.host.1234.0123456789ab"). One is left behind only by a
// locker killed between creating it and removing it; it holds
// "pid@host", never mail, and may be removed once older than 300 s.
func IsDotLockTemp(name string) bool { return uniqueNameRe().MatchString(filepath.Base(name)) }

// checkLockPath refuses an existing lock path that is a symbolic link, not
// a regular file, or has a second link that is not a locker's unique name
// (qpopper refuses any second link): either could make us remove or
// touch a file that is not a lock. It returns the unique name that shares
// the lock's inode, if any: a link-method locker stopped, or killed,
// between linking and removing it.
func checkLockPath(path string) (sibling string, err error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return "", nil // absent (or unreadable: the create reports it)
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		return "", &DotLockError{Code: LockErrOther, Path: path, Err: errors.New("lock file is a symbolic link")}
	}
	if !fi.Mode().IsRegular() {
		return "", &DotLockError{Code: LockErrOther, Path: path, Err: errors.New("lock file is not a regular file")}
	}
	if IDOf(fi).Nlink > 1 {
		// A link-method locker has two names for its lock for a moment.
		time.Sleep(50 * time.Millisecond)
		fi, err := os.Lstat(path)
		if err != nil || IDOf(fi).Nlink <= 1 {
			return "", nil
		}
		if s := lockerSibling(path, IDOf(fi)); s != "" {
			return s, nil
		}
		return "", &DotLockError{Code: LockErrOther, Path: path, Err: errors.New("lock file has more than one link")}
	}
	return "", nil
}

// IsLockerLink reports whether lockPath is a lock whose second link is a
// locker's unique name: the state a link-method locker (LockDot, or
// liblockfile and maillock) is in between link(2) and removing that name,
// for ever if it was killed there. Such a lock is a lock, judged by its
// owner and age, not a link someone planted; LockDot takes it over when
// its owner is gone.
func IsLockerLink(lockPath string) bool {
	fi, err := os.Lstat(lockPath)
	return err == nil && fi.Mode().IsRegular() && IDOf(fi).Nlink == 2 && lockerSibling(lockPath, IDOf(fi)) != ""
}

// lockerSibling finds, in the lock's directory, the other name of a lock
// with two links when it is a locker's unique name: ours (IsDotLockTemp),
// liblockfile's ".lk…" or maillock's "<mailbox>XXXXXX".
func lockerSibling(path string, id FileID) string {
	dir, base := filepath.Split(path)
	mailbox := strings.TrimSuffix(base, ".lock")
	d, err := os.Open(filepath.Clean(dir + "."))
	if err != nil {
		return ""
	}
	defer d.Close()
	for {
		names, err := d.Readdirnames(512)
		for _, n := range names {
			ours := strings.HasPrefix(n, "."+base+".") && IsDotLockTemp(n)
			maillock := len(n) == len(mailbox)+6 && strings.HasPrefix(n, mailbox)
			if !ours && !maillock && !strings.HasPrefix(n, ".lk") {
				continue
			}
			// A lock is a few bytes; a second name of anything larger
			// (a mailbox linked there) is not a locker's.
			if fi, err := os.Lstat(filepath.Join(dir, n)); err == nil && fi.Mode().IsRegular() && fi.Size() <= 256 && IDOf(fi).SameFile(id) {
				return filepath.Join(dir, n)
			}
		}
		if err != nil {
			return ""
		}
	}
}

// takeOverStale removes the lock at path and creates ours if the lock is
// stale. It returns nil, nil when the lock is live (or changed under us).
// now is the time on the lock directory's clock.
//
// Two takers must never both succeed: B could judge the old lock stale,
// A remove it and create a new one, and B then remove A's. So the
// old lock file is itself locked (flock, or fcntl on Oracle Solaris) while
// it is checked, removed and replaced; a second taker that opened the same
// old file cannot get that lock, and on its next attempt finds the name
// referring to the new, live lock.
func takeOverStale(path string, content []byte, stale time.Duration, now time.Time, strict bool) (*DotLock, error) {
	sibling, err := checkLockPath(path)
	if err != nil {
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
		return takeOverUnreadable(path, content, stale, now, strict)
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
	buf := make([]byte, 256)
	n, _ := f.ReadAt(buf, 0)
	if !dotLockIsStale(buf[:n], held.ModTime(), now, stale) {
		return nil, nil
	}
	if testHookBeforeTakeover != nil {
		testHookBeforeTakeover()
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, syscall.ENOENT) {
		return nil, &DotLockError{Code: LockErrOther, Path: path, Err: unwrapErrno(err)}
	}
	removeSibling(sibling, held)
	l, _, err := createDotLock(path, content, strict)
	if err != nil {
		if errors.Is(err, syscall.EEXIST) {
			return nil, nil // a program that ignores our takeover lock got in first
		}
		return nil, err
	}
	return l, nil
}

// removeSibling removes the dead locker's unique name of a lock taken
// over, if it is one of ours and still names that lock. Other lockers'
// names are left alone: only our own pattern is known to be no mailbox.
func removeSibling(sibling string, lock os.FileInfo) {
	if sibling == "" || !IsDotLockTemp(sibling) {
		return
	}
	if fi, err := os.Lstat(sibling); err == nil && IDOf(fi).SameFile(IDOf(lock)) {
		os.Remove(sibling)
	}
}

// takeOverUnreadable handles a lock we may not open (another user's 0600
// lock, as a deliverer running as root may leave): only its age can tell,
// and no guard lock can be taken on it, so two takers racing here could
// both succeed; this is the same exposure maillock and liblockfile have on
// every takeover. A stale lock must not keep a user from mail for ever.
func takeOverUnreadable(path string, content []byte, stale time.Duration, now time.Time, strict bool) (*DotLock, error) {
	fi, err := os.Lstat(path)
	if err != nil || now.Sub(fi.ModTime()) < stale {
		return nil, nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, syscall.ENOENT) {
		return nil, &DotLockError{Code: LockErrOther, Path: path, Err: unwrapErrno(err)}
	}
	l, _, err := createDotLock(path, content, strict)
	if errors.Is(err, syscall.EEXIST) {
		return nil, nil
	}
	return l, err
}

// testHookBeforeTakeover lets tests widen the window between judging a
// lock stale and removing it.
var testHookBeforeTakeover func()

// dotLockIsStale judges a lock that holds content and was last touched at
// mtime, at time now on the same clock (qpopper and liblockfile judge by
// mtime; maillock compares with its own new file's time, so that hosts
// whose clocks differ from the file server's agree).
func dotLockIsStale(content []byte, mtime, now time.Time, stale time.Duration) bool {
	if now.Sub(mtime) >= stale {
		return true
	}
	pid, host, torn := parseLockOwner(content)
	mine := host == thisHost()
	if mine && pid > 0 && syscall.Kill(pid, 0) == syscall.ESRCH {
		return true // its owner on this host is dead
	}
	// No process of this host outlives a reboot, and an empty or torn
	// lock (a crash between create and write, or a power cut that kept
	// the name and not the data) cannot say whose it is.
	if boot := BootTime(); (mine || torn) && !boot.IsZero() && mtime.Before(boot) {
		return true
	}
	return false
}

// parseLockOwner reads a lock's content. "pid@host" is popper's and
// qpopper's; maillock's "0\0" and liblockfile's bare pid name no host and
// are left to the age rule; anything else (nothing, NUL bytes, "123@")
// is torn.
func parseLockOwner(b []byte) (pid int, host string, torn bool) {
	s := strings.TrimSuffix(string(b), "\n")
	if s == "0\x00" {
		return 0, "", false
	}
	pidText, host, hasHost := strings.Cut(s, "@")
	n, err := strconv.Atoi(pidText)
	if err != nil || n < 0 || pidText == "" || pidText[0] == '+' || pidText[0] == '-' {
		return 0, "", true
	}
	if !hasHost {
		return n, "", false
	}
	if host == "" || strings.ContainsAny(host, "\x00\n@ ") {
		return 0, "", true
	}
	return n, host, false
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
	// utimes(NULL): "now" on the clock of the filesystem holding the
	// lock (NFS sets the server's time), the clock its readers judge by.
	if err := unix.Utimes(l.path, nil); err != nil {
		return &DotLockError{Code: LockErrOther, Path: l.path, Err: unwrapErrno(err)}
	}
	l.touched = time.Now()
	return nil
}

// Verify reports whether the lock file is still ours: the same file,
// holding our "pid@host". A lock taken over as stale by another
// process, or removed by hand, fails.
func (l *DotLock) Verify() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.checkOursLocked()
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
