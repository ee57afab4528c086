package spool

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/popperd/popper/platform"
)

// The maildrop life cycle. qpopper's temp drop (.USER.pop) is kept, with
// the same name, mode and meaning, but every step that makes a copy of
// mail unreachable comes after the other copy is durable:
//
// Both modes serve the spool in place: at login, under the dotlock and
// the kernel lock, the temp drop is created empty with
// O_CREAT|O_EXCL|O_NOFOLLOW and flocked (the session lock), the spool is
// parsed where it is, and the spool locks are dropped. Mail delivered
// during the session lands after the parsed end and is neither shown nor
// touched. An update that must write first copies the spool's bytes from
// the first message that changes into the temp drop (an undo copy,
// undo.go) and makes it durable, then rewrites the spool in place from
// there and syncs it, then unlinks the temp drop (updateInPlace).
//
// The modes differ in when an update must write. qpopper's normal mode
// copied the spool into the temp drop and wrote every message back at
// QUIT in its settled form (X-UIDL first, Status written): popper writes
// exactly those bytes, but only when they differ from what the spool
// holds (Msg.Canonical), so a session that changes nothing writes and
// syncs nothing. Server mode (-S) writes only for a deletion, a Status
// change or a UID to persist, as qpopper's did.
//
// A spool with bytes that belong to no message, or a session with
// bulletins to deliver, is served from a copy in the temp drop instead
// (loginCopy), as qpopper's normal mode served every session:
//
//	login:  copy spool -> temp drop; fsync temp drop; fsync dir;
//	        truncate the spool; unlock.
//	update: lock; if the spool got new mail, save it in TEMP.new and
//	        fsync it and the dir; truncate the spool; write the kept
//	        messages (X-UIDL/Status written back) and the new mail; fsync
//	        the spool; unlink TEMP.new and the temp drop; fsync dir; unlock;
//	        only then +OK.
//
// The spool is always rewritten in place, never renamed over: an MDA that
// opened the spool and waits for our lock must append to the file that
// stays the spool.
//
// Whatever the crash point, a temp drop that exists after the crash holds,
// durably, a superset of what the spool is meant to hold (a copy), or
// with the spool's untouched head the spool as it was (an undo copy), or
// the spool is intact, so recovery (recover.go) merges it back without
// loss.

// Config says where a user's maildrop lives and how to treat it.
type Config struct {
	Spool       string // the mailbox, e.g. /var/mail/alice
	TempDrop    string // the temp drop, e.g. /var/mail/.alice.pop
	OldTempDrop string // qpopper's pre-hash location, checked for a leftover; "" for none
	// Quarantine is the path prefix for bytes recovery cannot parse as
	// messages; "" means TempDrop+".unparsed".
	Quarantine   string
	ServerMode   bool
	KeepTempDrop bool
	Parse        ParseOptions
	Locks        []platform.LockKind // kernel locks on the spool; nil = platform default
	LinkDotLock  bool                // NFS-safe dotlock (no-atomic-open)
	LockTimeout  time.Duration       // kernel lock wait; 0 = 30 s
	// LockCheck is qpopper's mail-lock-check: refresh the dotlock every
	// so many messages during long copies; 0 = 5000.
	LockCheck int
	// Logf receives notices (recovery, quarantine, refused drops).
	Logf func(format string, args ...any)
	// Bulletins, when set, are delivered at login (qpopper's bulletins:
	// appended to the temp drop, so a session with bulletins due is
	// served from a copy).
	Bulletins *BulletinConfig
	// alwaysCopy serves every session from a copy, as qpopper's normal
	// mode did: the tests' reference for the bytes an in-place update
	// must write.
	alwaysCopy bool
	// DotLockWait overrides the sleep between dotlock attempts (tests).
	DotLockWait func(attempt int) time.Duration
	// Cache is the index beside the spool (cache-dir/cache-name, see
	// index.go); "" for none.
	Cache string
}

// ErrorKind classifies maildrop errors so the caller can choose qpopper's
// reply text and response code.
type ErrorKind int

const (
	ErrInUse   ErrorKind = iota + 1 // another live session holds the temp drop
	ErrLock                         // dotlock or kernel lock not obtained
	ErrPerm                         // temp drop or spool fails the ownership/mode/link checks
	ErrIO                           // reading, copying or writing failed
	ErrChanged                      // server mode: the spool was rewritten by someone else
	// ErrLockLost: while the work ran, the dotlock stopped being ours (an
	// MDA that trusts the dotlock alone took it over as stale, e.g. after
	// the session was stopped for longer than the stale age) or the spool
	// grew or was replaced. Nothing of the spool was discarded after that:
	// the temp drop keeps the mail and recovery merges it.
	ErrLockLost
	// The temp drop fails one of qpopper's checks, each with its own
	// reply: another user owns it, others may read or write it, it has
	// more than one link. (Other failed checks are ErrPerm.)
	ErrNotOwned
	ErrOpenToOthers
	ErrLinked
)

// Error is a maildrop failure.
type Error struct {
	Kind ErrorKind
	Op   string // what was being done, e.g. "copy spool to temp drop"
	Path string
	Err  error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("%s %s", e.Op, e.Path)
	}
	return fmt.Sprintf("%s %s: %v", e.Op, e.Path, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

func newErr(kind ErrorKind, op, path string, err error) *Error {
	return &Error{Kind: kind, Op: op, Path: path, Err: err}
}

const (
	loginDotTries  = 2 // qpopper: 2 attempts at login
	updateDotTries = 4 // and 4 at update/restore
	// recovery refreshes the dotlock every this many bytes copied, too.
	refreshBytes = 8 << 20
)

// Maildrop is an open session on a user's mailbox. Its methods match the
// pop3.Mailbox interface.
type Maildrop struct {
	cfg     *Config
	inPlace bool
	drop    *platform.File // the temp drop: session lock, and the message source of a copy
	spool   *platform.File // in place: the spool
	src     *platform.File // where message bytes are read from
	d       *Drop          // what src holds, but its Msgs: they are in msgs
	msgs    *msgTable      // the messages of src
	skip    int            // the hidden messages, when they are the first ones
	vis     []int32        // or the visible ones' indexes into msgs (nil: skip)
	// in place: what the spool looked like when parsed
	spoolEnd int64
	spoolID  platform.FileID
	openEnd  bool // the last message does not end in a blank line
	done     bool
}

func (c *Config) logf(format string, args ...any) {
	if c.Logf != nil {
		c.Logf(format, args...)
	}
}

func (c *Config) lockTimeout() time.Duration {
	if c.LockTimeout > 0 {
		return c.LockTimeout
	}
	return 30 * time.Second
}

func (c *Config) locks() []platform.LockKind {
	if c.Locks != nil {
		return c.Locks
	}
	return platform.DefaultSpoolLocks()
}

func (c *Config) newPath() string { return c.TempDrop + ".new" }
func (c *Config) tmpPath() string { return c.TempDrop + ".tmp" }

// mergePath is where recovery keeps its merge result until the spool
// holds it (recover.go).
func (c *Config) mergePath() string { return c.TempDrop + ".merge" }

// spoolLock is the MDA-compatible lock on the spool: dotlock first, then
// the kernel locks on the open spool (the order procmail, Postfix and
// mail.local use).
type spoolLock struct {
	dot    *platform.DotLock
	spool  *platform.File // nil when the spool does not exist
	unlock func() error
	owned  bool // spool was opened by lockSpool (and is closed by release)
	logf   func(format string, args ...any)
	lost   bool // a refresh found the dotlock gone (logged once)
}

// lockSpool takes the spool locks. f, when non-nil, is the already open
// spool (fcntl locks belong to the process and die with any close of the
// file, so one descriptor is used throughout). create makes a missing
// spool (update and restore do, as qpopper: user:mailgroup 0660).
func lockSpool(c *Config, tries int, f *platform.File, create bool) (*spoolLock, error) {
	dot, err := platform.LockDot(c.Spool, platform.DotLockOptions{Tries: tries, LinkMode: c.LinkDotLock, Wait: c.DotLockWait})
	if err != nil {
		return nil, newErr(ErrLock, "maillock", c.Spool, err)
	}
	l := &spoolLock{dot: dot, spool: f, logf: c.logf}
	if f == nil {
		f, err = platform.OpenFile(c.Spool, os.O_RDWR, 0)
		if errors.Is(err, fs.ErrNotExist) && create {
			// A spool we create must have a durable name before mail is
			// written into it.
			f, err = platform.OpenFile(c.Spool, os.O_RDWR|os.O_CREATE, 0660)
			if err == nil {
				if err = platform.SyncParent(c.Spool); err != nil {
					f.Close()
				}
			}
		}
		switch {
		case err == nil:
			l.spool, l.owned = f, true
		case errors.Is(err, fs.ErrNotExist) && !create:
			return l, nil // no spool: an empty mailbox
		default:
			dot.Unlock()
			return nil, newErr(ErrIO, "open spool", c.Spool, err)
		}
	}
	if err := checkSpool(l.spool); err != nil {
		l.release()
		return nil, err
	}
	unlock, err := platform.LockMailbox(l.spool, c.locks(), c.lockTimeout())
	if err != nil {
		l.release()
		return nil, newErr(ErrLock, "lock spool", c.Spool, err)
	}
	l.unlock = unlock
	return l, nil
}

func (l *spoolLock) release() {
	if l.unlock != nil {
		l.unlock()
		l.unlock = nil
	}
	if l.owned && l.spool != nil {
		l.spool.Close()
	}
	l.dot.Unlock()
}

// guard proves, before a step that discards or overwrites spool bytes,
// that the lock is still ours and the spool is the file we locked, with
// the size we expect: a dotlock-only MDA that took the lock over as stale
// (we were stopped longer than its stale age) may have appended.
func (l *spoolLock) guard(c *Config, f *platform.File, want int64) error {
	if err := l.dot.Verify(); err != nil {
		return newErr(ErrLockLost, "dot-lock lost", c.Spool, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return newErr(ErrIO, "stat spool", c.Spool, err)
	}
	li, err := os.Lstat(c.Spool)
	if err != nil || !platform.IDOf(li).SameFile(platform.IDOf(fi)) {
		return newErr(ErrLockLost, "spool replaced", c.Spool, err)
	}
	if fi.Size() != want {
		return newErr(ErrLockLost, fmt.Sprintf("spool changed size (%d bytes, %d expected)", fi.Size(), want), c.Spool, nil)
	}
	return nil
}

// guardedWriter writes the spool from offset 0 and, before every chunk,
// checks that nobody else has written it (its size is still what we wrote)
// and, at most every second, that the dotlock is still ours; it refreshes
// the dotlock as it goes. A write after someone else's append would
// overwrite their mail: the writer stops there instead.
type guardedWriter struct {
	c       *Config
	f       *platform.File
	lk      *spoolLock
	off     int64
	checked time.Time
}

func (g *guardedWriter) Write(p []byte) (int, error) {
	fi, err := g.f.Stat()
	if err != nil {
		return 0, err
	}
	if fi.Size() != g.off {
		return 0, newErr(ErrLockLost, fmt.Sprintf("spool written by someone else (%d bytes, %d expected)", fi.Size(), g.off), g.c.Spool, nil)
	}
	if time.Since(g.checked) >= time.Second {
		if err := g.lk.dot.Verify(); err != nil {
			return 0, newErr(ErrLockLost, "dot-lock lost", g.c.Spool, err)
		}
		g.checked = time.Now()
	}
	g.lk.refresh()
	n, err := g.f.Write(p)
	g.off += int64(n)
	return n, err
}

// refresh keeps the dotlock from going stale during long work. A dotlock
// found gone (taken over as stale, or removed by hand) is logged once:
// the kernel locks still hold, but an MDA that trusts the dotlock alone
// may now write beside us.
func (l *spoolLock) refresh() {
	if err := l.dot.Refresh(); err != nil && !l.lost {
		l.lost = true
		l.logf("Dot-lock lost during a long copy: %v", err)
	}
}

// checkSpool refuses a spool that is not a plain file with one link: a
// FIFO, a device or a hard link to someone else's file.
func checkSpool(f *platform.File) error {
	fi, err := f.Stat()
	if err != nil {
		return newErr(ErrIO, "stat spool", f.Name(), err)
	}
	if !fi.Mode().IsRegular() {
		return newErr(ErrPerm, "spool is not a regular file", f.Name(), nil)
	}
	if platform.IDOf(fi).Nlink > 1 {
		return newErr(ErrPerm, "spool has more than one link", f.Name(), nil)
	}
	return nil
}

// Open authenticates nothing: the caller has already switched to the
// user's identity. It locks the spool, recovers any leftover temp drop,
// creates the session's temp drop and reads the messages.
func Open(c *Config) (*Maildrop, error) {
	lk, err := lockSpool(c, loginDotTries, nil, false)
	if err != nil {
		return nil, err
	}
	defer lk.release()

	if c.OldTempDrop != "" && c.OldTempDrop != c.TempDrop {
		if err := recoverOldLocation(c, lk); err != nil {
			return nil, err
		}
	}
	drop, err := createTempDrop(c, lk)
	if err != nil {
		return nil, err
	}
	md := &Maildrop{cfg: c, drop: drop}
	var bull *Bulletins
	if c.Bulletins != nil {
		var b *Bulletins
		err := platform.AsOwnGroup(func() (err error) { b, err = PendingBulletins(*c.Bulletins); return err })
		switch {
		case err != nil:
			c.logf("%v", err)
		case b.Len() > 0:
			bull = b
		}
	}
	if lk.spool != nil && bull == nil && !c.alwaysCopy {
		err = md.loginInPlace(lk)
	} else {
		err = md.loginCopy(lk, bull)
	}
	if err != nil {
		md.abandon()
		return nil, err
	}
	return md, nil
}

// createTempDrop makes the session's temp drop with O_EXCL. An existing
// one is either held by a live session (its flock is taken: IN-USE) or a
// leftover of a crashed session, which is merged back into the spool
// first. Both decisions are made under the spool's dotlock, which every
// popper login and the boot sweep hold while they create or judge a temp
// drop, so a fresh drop can never be taken for a leftover.
func createTempDrop(c *Config, lk *spoolLock) (*platform.File, error) {
	if exists(c.mergePath()) && !exists(c.TempDrop) {
		// A recovery that crashed after writing its merge, whose temp
		// drop was already gone: the merge may hold what the spool lost.
		if _, err := recoverLocked(c, lk, nil); err != nil {
			return nil, err
		}
	}
	for attempt := 0; attempt < 4; attempt++ {
		f, err := platform.OpenFile(c.TempDrop, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0660)
		if err == nil {
			ok, err := platform.TryLockSession(f)
			if err != nil || !ok {
				// Only a program that ignores the dotlock (a qpopper still
				// running during migration) can lock our brand-new file.
				f.Close()
				return nil, newErr(ErrInUse, "lock temp drop", c.TempDrop, err)
			}
			platform.Failpoint("login.tempdrop-created")
			return f, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, newErr(ErrIO, "create temp drop", c.TempDrop, err)
		}
		f, err = openLeftover(c.TempDrop)
		if errors.Is(err, fs.ErrNotExist) {
			continue // the other session just finished
		}
		if err != nil {
			return nil, err
		}
		if f == nil {
			continue // replaced while we looked; look again
		}
		res, err := recoverLocked(c, lk, f)
		f.Close()
		if err != nil {
			return nil, err
		}
		c.logf("Recovered leftover temp drop %s: %d messages (%d bytes) merged into %s, %d bytes quarantined",
			c.TempDrop, res.Messages, res.Bytes, c.Spool, res.Quarantined)
	}
	return nil, newErr(ErrInUse, "temp drop keeps changing", c.TempDrop, nil)
}

// openLeftover opens an existing temp drop and takes its session lock.
// It returns ErrInUse when a live session holds it, (nil, nil) when the
// name no longer refers to the file opened, and checks ownership, mode
// and links as qpopper does.
func openLeftover(path string) (*platform.File, error) {
	f, err := platform.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, newErr(ErrIO, "open temp drop", path, err)
	}
	ok, err := platform.TryLockSession(f)
	if err != nil {
		f.Close()
		return nil, newErr(ErrIO, "lock temp drop", path, err)
	}
	if !ok {
		f.Close()
		return nil, newErr(ErrInUse, "lock temp drop", path, nil)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, newErr(ErrIO, "stat temp drop", path, err)
	}
	li, err := os.Lstat(path)
	if err != nil || !platform.IDOf(li).SameFile(platform.IDOf(fi)) {
		f.Close()
		return nil, nil
	}
	if err := checkTempDrop(fi, path); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// checkTempDrop applies qpopper's checks to a temp drop.
func checkTempDrop(fi os.FileInfo, path string) error {
	id := platform.IDOf(fi)
	switch {
	case !fi.Mode().IsRegular():
		return newErr(ErrPerm, "temp drop is not a regular file", path, nil)
	case int(id.Uid) != os.Geteuid():
		return newErr(ErrNotOwned, "temp drop not owned by user", path, nil)
	case fi.Mode().Perm()&0o007 != 0:
		return newErr(ErrOpenToOthers, "temp drop accessible by others", path, nil)
	case id.Nlink != 1:
		return newErr(ErrLinked, "temp drop has more than one link", path, nil)
	}
	return nil
}

// recoverOldLocation merges a leftover temp drop found at qpopper's
// pre-hash location (check-old-spool-loc).
func recoverOldLocation(c *Config, lk *spoolLock) error {
	f, err := openLeftover(c.OldTempDrop)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && f == nil) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	old := *c
	old.TempDrop = c.OldTempDrop
	_, err = recoverLocked(&old, lk, f)
	return err
}

func (md *Maildrop) parseOptions(fromSpool bool) ParseOptions {
	opt := md.cfg.Parse
	opt.FromSpool = fromSpool
	if opt.UIDCounter == 0 {
		opt.UIDCounter = time.Now().Unix()
	}
	return opt
}

// loginCopy copies the spool into the temp drop, makes the copy durable,
// and only then empties the spool.
func (md *Maildrop) loginCopy(lk *spoolLock, bull *Bulletins) error {
	c := md.cfg
	md.src = md.drop
	var size int64
	if lk.spool != nil {
		fi, err := lk.spool.Stat()
		if err != nil {
			return newErr(ErrIO, "stat spool", c.Spool, err)
		}
		size = fi.Size()
	}
	if lk.spool == nil && bull == nil {
		md.setDrop(&Drop{}, nil)
		return nil
	}
	var spoolReader io.Reader = bytes.NewReader(nil)
	if lk.spool != nil {
		spoolReader = io.NewSectionReader(lk.spool.OS(), 0, size)
	}
	w := &refreshWriter{w: md.drop, lk: lk}
	tee := io.TeeReader(spoolReader, w)
	d, err := Parse(bufio.NewReaderSize(tee, 64<<10), md.parseOptions(true))
	if err == nil {
		// Parse may stop early on a trailing fragment; copy whatever is left.
		_, err = io.Copy(io.Discard, tee)
	}
	if err != nil {
		md.drop.Truncate(0)
		return newErr(ErrIO, "copy spool to temp drop", c.TempDrop, err)
	}
	platform.Failpoint("login.copied")
	if bull != nil {
		if d, err = md.appendBulletins(bull, size); err != nil {
			bull = nil // not delivered: not recorded as sent
			c.logf("Bulletins for %s not delivered: %v", c.Spool, err)
			if d, err = md.reparse(); err != nil {
				md.drop.Truncate(0)
				return newErr(ErrIO, "read temp drop", c.TempDrop, err)
			}
		}
	}
	if len(d.Junk) > 0 {
		// Bytes that belong to no message never reach the spool again:
		// keep them in a file of their own before the spool is emptied.
		if _, err := quarantine(c, md.drop, d.Junk); err != nil {
			md.drop.Truncate(0)
			return err
		}
	}
	if err := md.drop.Sync(); err != nil {
		md.drop.Truncate(0)
		return newErr(ErrIO, "sync temp drop", c.TempDrop, err)
	}
	if err := platform.SyncParent(c.TempDrop); err != nil {
		md.drop.Truncate(0)
		return newErr(ErrIO, "sync temp drop directory", c.TempDrop, err)
	}
	platform.Failpoint("login.tempdrop-synced")
	if bull != nil {
		// The bulletins are durable in the temp drop: record them as sent.
		if err := platform.AsOwnGroup(bull.Commit); err != nil {
			c.logf("Unable to record bulletins sent for %s: %v", c.Spool, err)
		}
	}
	if lk.spool == nil {
		md.setDrop(d, nil)
		return nil
	}
	if err := lk.guard(c, lk.spool, size); err != nil {
		// The spool keeps its mail (and what was added); the copy goes.
		md.drop.Truncate(0)
		return err
	}
	if err := lk.spool.Truncate(0); err != nil {
		// The spool keeps its mail; the temp drop copy would duplicate it.
		md.drop.Truncate(0)
		return newErr(ErrIO, "truncate spool", c.Spool, err)
	}
	// The truncate is made durable before an MDA may append: a power cut
	// that lost it but kept an unsynced delivery would leave that
	// delivery torn over the old messages, a mix recovery cannot take
	// apart (recover.go). Only copies pay this: they are rare.
	if err := lk.spool.Sync(); err != nil {
		return newErr(ErrIO, "sync spool", c.Spool, err)
	}
	platform.Failpoint("login.spool-truncated")
	md.setDrop(d, nil)
	return nil
}

// appendBulletins adds the due bulletins after the spool's copy (size
// bytes) in the temp drop, keeping the mbox boundary, and parses the
// result. On failure the temp drop is cut back to the copy.
func (md *Maildrop) appendBulletins(bull *Bulletins, size int64) (*Drop, error) {
	pad, err := boundaryPad(md.drop, size)
	if err == nil && pad != "" {
		_, err = md.drop.Write([]byte(pad))
	}
	if err == nil {
		// Bulletin files are paths the user may choose (bulldir in
		// ~/.qpopper-options): opened with the user's own group.
		err = platform.AsOwnGroup(func() error { _, err := bull.WriteTo(md.drop); return err })
	}
	for _, e := range bull.Skipped() {
		md.cfg.logf("%v", e)
	}
	if err != nil {
		md.drop.Truncate(size)
		md.drop.Seek(size, io.SeekStart)
		return nil, err
	}
	return md.reparse()
}

// reparse parses the whole temp drop.
func (md *Maildrop) reparse() (*Drop, error) {
	fi, err := md.drop.Stat()
	if err != nil {
		return nil, err
	}
	return Parse(bufio.NewReaderSize(io.NewSectionReader(md.drop.OS(), 0, fi.Size()), 64<<10), md.parseOptions(true))
}

// boundaryPad is what must follow the first size bytes of f so that a
// "From " line written next starts a message: the blank line an mbox
// message ends with.
func boundaryPad(f *platform.File, size int64) (string, error) {
	if size == 0 {
		return "", nil
	}
	var tail [2]byte
	n := int64(2)
	if size < 2 {
		n = size
	}
	if _, err := f.ReadAt(tail[2-n:], size-n); err != nil {
		return "", err
	}
	switch {
	case tail[1] != '\n':
		return "\n\n", nil
	case tail[0] != '\n' && size >= 2:
		return "\n", nil
	}
	return "", nil
}

// loginInPlace parses the spool in place; nothing is written. The parse
// takes qpopper's X-UIDL window of the mode: normal mode read the spool
// as a spool, server mode as a drop.
func (md *Maildrop) loginInPlace(lk *spoolLock) error {
	c := md.cfg
	fi, err := lk.spool.Stat()
	if err != nil {
		return newErr(ErrIO, "stat spool", c.Spool, err)
	}
	d, t, err := loadDrop(c, lk.spool.OS(), fi, md.parseOptions(!c.ServerMode))
	if err != nil {
		return newErr(ErrIO, "read spool", c.Spool, err)
	}
	if len(d.Junk) > 0 {
		// Bytes that are no message cannot be kept by an in-place rewrite;
		// the copy quarantines them.
		if c.ServerMode {
			c.logf("Server mode off for %s: %d bytes are not part of any message", c.Spool, junkBytes(d))
		}
		return md.loginCopy(lk, nil)
	}
	pad, err := boundaryPad(lk.spool, d.End)
	if err != nil {
		return newErr(ErrIO, "read spool", c.Spool, err)
	}
	// The session keeps the lock's descriptor of the spool (fcntl locks
	// die with any close of the file, so one descriptor serves throughout).
	sp := lk.spool
	lk.owned = false
	md.inPlace = true
	md.spool = sp
	md.src = sp
	md.spoolEnd = d.End
	md.spoolID = platform.IDOf(fi)
	md.openEnd = pad != ""
	md.setDrop(d, t)
	return nil
}

// setDrop makes d, with its messages t (nil: d.Msgs, moved into a
// table), the session's drop.
func (md *Maildrop) setDrop(d *Drop, t *msgTable) {
	if t == nil {
		t = tableOf(d.Msgs).done()
		d.Msgs = nil
	}
	md.d, md.msgs = d, t
	// The UW kluge hides the first message only; a list of the visible
	// ones, 4 bytes a message, is made only should another be hidden.
	md.skip, md.vis = 0, nil
	for md.skip < t.len() && t.flagsOf(md.skip)&flagHidden != 0 {
		md.skip++
	}
	for i := md.skip; i < t.len(); i++ {
		if t.flagsOf(i)&flagHidden != 0 {
			md.vis = make([]int32, 0, t.len())
			for i := range t.len() {
				if t.flagsOf(i)&flagHidden == 0 {
					md.vis = append(md.vis, int32(i))
				}
			}
			break
		}
	}
}

// abandon closes a half-opened maildrop: the temp drop is removed when it
// holds nothing (a copy failed before the spool was truncated).
func (md *Maildrop) abandon() {
	if md.spool != nil {
		md.spool.Close()
	}
	if fi, err := md.drop.Stat(); err == nil && fi.Size() == 0 && !md.cfg.KeepTempDrop {
		platform.Remove(md.cfg.TempDrop)
	}
	md.drop.Close()
	md.done = true
}

// Len is the number of visible messages.
func (md *Maildrop) Len() int {
	if md.vis != nil {
		return len(md.vis)
	}
	return md.msgs.len() - md.skip
}

// Hidden is the number of hidden messages (UW kluge).
func (md *Maildrop) Hidden() int { return md.msgs.len() - md.Len() }

// index is the index in md.msgs of visible message i.
func (md *Maildrop) index(i int) int {
	if md.vis != nil {
		return int(md.vis[i])
	}
	return i + md.skip
}

// msg is visible message i.
func (md *Maildrop) msg(i int) Msg { return md.msgs.at(md.index(i)) }

// Size is the qpopper octet count of visible message i.
func (md *Maildrop) Size(i int) int64 { return md.msgs.size(md.index(i)) }

// UID is the unique id of visible message i.
func (md *Maildrop) UID(i int) string { return md.msgs.uidOf(md.index(i)) }

// AppendUID appends message i's UID to dst, without making a string of
// it (pop3.UIDAppender).
func (md *Maildrop) AppendUID(dst []byte, i int) []byte { return md.msgs.appendUID(dst, md.index(i)) }

// Retrieved reports whether message i was marked read (Status: R) before
// the session.
func (md *Maildrop) Retrieved(i int) bool {
	return md.msgs.flagsOf(md.index(i))&flagRetrieved != 0
}

// WriteMessage writes message i as RETR/TOP send it (before CRLF and
// byte-stuffing).
func (md *Maildrop) WriteMessage(w io.Writer, i int, bodyLines int) error {
	k := md.index(i)
	m := md.msgs.fields(k)
	var buf [32]byte
	uid := md.msgs.appendUID(buf[:0], k)
	return writeWire(w, md.src.OS(), &m, uid, bodyLines)
}

// marks maps visible-index changes onto all messages. When every message
// is visible, as it is but for qpopper's UW kluge, it marks in deleted
// and retrieved themselves: at 200,000 messages copies would be 0.4 MB
// more at QUIT.
func (md *Maildrop) marks(deleted, retrieved []bool) (del, retr []bool) {
	n := md.msgs.len()
	if md.Len() == n && len(deleted) == n && len(retrieved) == n {
		for i := range n {
			retrieved[i] = retrieved[i] || md.msgs.flagsOf(i)&flagRetrieved != 0
		}
		return deleted, retrieved
	}
	del = make([]bool, n)
	retr = make([]bool, n)
	for vi := range md.Len() {
		i := md.index(vi)
		if vi < len(deleted) {
			del[i] = deleted[vi]
		}
		if vi < len(retrieved) {
			retr[i] = retrieved[vi] || md.msgs.flagsOf(i)&flagRetrieved != 0
		}
	}
	for i := range n {
		if fl := md.msgs.flagsOf(i); fl&flagHidden != 0 {
			retr[i] = fl&flagRetrieved != 0
		}
	}
	return del, retr
}

// Commit is Update with plain slices, for callers outside pop3. It may
// mark retrieved too the messages read before the session.
func (md *Maildrop) Commit(deleted, retrieved []bool) error {
	if md.done {
		return errors.New("maildrop already closed")
	}
	defer md.finish()
	del, retr := md.marks(deleted, retrieved)
	if md.inPlace {
		return md.updateInPlace(del, retr)
	}
	return md.updateCopy(del, retr, false)
}

// Rollback ends the session leaving every message in place (qpopper's
// pop_restore, used on abort when update-on-abort is off).
func (md *Maildrop) Rollback() error {
	if md.done {
		return nil
	}
	defer md.finish()
	if md.inPlace {
		// Nothing was written; the temp drop is empty.
		return md.removeTempDrop(false)
	}
	del := make([]bool, md.msgs.len())
	retr := make([]bool, md.msgs.len())
	return md.updateCopy(del, retr, true)
}

func (md *Maildrop) finish() {
	if md.spool != nil {
		md.spool.Close()
	}
	md.drop.Close()
	md.done = true
}

// removeTempDrop ends the temp drop's life: unlinked (or emptied with
// keep-temp-drop), and when durable is set the removal is synced.
func (md *Maildrop) removeTempDrop(durable bool) error {
	c := md.cfg
	if c.KeepTempDrop {
		if err := md.drop.Truncate(0); err != nil {
			return newErr(ErrIO, "truncate temp drop", c.TempDrop, err)
		}
		if durable {
			if err := md.drop.Sync(); err != nil {
				return newErr(ErrIO, "sync temp drop", c.TempDrop, err)
			}
		}
		return nil
	}
	if err := platform.Remove(c.TempDrop); err != nil {
		return newErr(ErrIO, "remove temp drop", c.TempDrop, err)
	}
	if durable {
		if err := platform.SyncParent(c.TempDrop); err != nil {
			return newErr(ErrIO, "sync temp drop directory", c.TempDrop, err)
		}
	}
	return nil
}

// updateCopy writes the kept messages of a copy and the mail that
// arrived during the session back into the spool. raw writes the
// messages unchanged (restore).
func (md *Maildrop) updateCopy(del, retr []bool, raw bool) error {
	c := md.cfg
	if md.msgs.len() == 0 {
		// The temp drop is empty: nothing to put back, and nothing lost if
		// its removal is not durable.
		return md.removeTempDrop(false)
	}
	allDeleted := true
	for i := range del {
		allDeleted = allDeleted && del[i]
	}
	lk, err := lockSpool(c, updateDotTries, nil, !allDeleted)
	if err != nil {
		return err
	}
	defer lk.release()
	platform.Failpoint("update.locked")

	if allDeleted {
		// New mail, if any, is already in the spool and stays there. The
		// spool was emptied at login without a sync; it must be durably
		// without the deleted messages before their last copy goes, or a
		// power cut could bring them back after the +OK.
		if lk.spool != nil {
			if err := lk.spool.Sync(); err != nil {
				return newErr(ErrIO, "sync spool", c.Spool, err)
			}
			platform.Failpoint("update.spool-synced")
		}
		if err := md.removeTempDrop(true); err != nil {
			return err
		}
		platform.Failpoint("update.done")
		return nil
	}

	sp := lk.spool
	fi, err := sp.Stat()
	if err != nil {
		return newErr(ErrIO, "stat spool", c.Spool, err)
	}
	newLen := fi.Size()
	var newMail *platform.File
	if newLen > 0 {
		// Mail delivered during the session is about to be overwritten in
		// place: keep a durable copy first.
		newMail, err = saveNewMail(c, sp, newLen, lk)
		if err != nil {
			return err
		}
		defer newMail.Close()
		platform.Failpoint("update.newmail-saved")
	}
	// From here the spool is overwritten: only while the lock is ours and
	// the spool holds exactly what was saved.
	if err := lk.guard(c, sp, newLen); err != nil {
		return err
	}
	if err := sp.Truncate(0); err != nil {
		return newErr(ErrIO, "truncate spool", c.Spool, err)
	}
	platform.Failpoint("update.spool-truncated")
	if _, err := sp.Seek(0, io.SeekStart); err != nil {
		return newErr(ErrIO, "seek spool", c.Spool, err)
	}
	bw := newBoundaryWriter(&guardedWriter{c: c, f: sp, lk: lk}, md.d.Format)
	if err := md.writeKept(bw, md.drop.OS(), 0, del, retr, raw, lk); err != nil {
		return spoolWriteErr(c, "Error updating primary drop", err)
	}
	if newMail != nil {
		if err := bw.copyRaw(io.NewSectionReader(newMail.OS(), 0, newLen)); err != nil {
			return spoolWriteErr(c, "copy new mail to spool", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return spoolWriteErr(c, "write spool", err)
	}
	platform.Failpoint("update.spool-written")
	if err := sp.Sync(); err != nil {
		return newErr(ErrIO, "sync spool", c.Spool, err)
	}
	platform.Failpoint("update.spool-synced")
	if newMail != nil {
		if err := platform.Remove(c.newPath()); err != nil {
			return newErr(ErrIO, "remove", c.newPath(), err)
		}
	}
	if err := md.removeTempDrop(true); err != nil {
		return err
	}
	platform.Failpoint("update.done")
	return nil
}

// saveNewMail copies the first n bytes of the spool into TEMP.new and makes
// it durable.
func saveNewMail(c *Config, sp *platform.File, n int64, lk *spoolLock) (*platform.File, error) {
	p := c.newPath()
	f, err := platform.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0660)
	if errors.Is(err, fs.ErrExist) {
		// Only a crash between its creation and the end of an update can
		// leave it, and login recovery would have merged it: it is stale
		// scratch of ours only if the temp drop holds everything, which it
		// does while we hold the session. Replace it.
		if err = platform.Remove(p); err == nil {
			f, err = platform.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0660)
		}
	}
	if err != nil {
		return nil, newErr(ErrIO, "create", p, err)
	}
	w := &refreshWriter{w: f, lk: lk}
	if _, err := io.Copy(w, io.NewSectionReader(sp.OS(), 0, n)); err != nil {
		f.Close()
		platform.Remove(p)
		return nil, newErr(ErrIO, "Error copying new messages", p, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, newErr(ErrIO, "sync", p, err)
	}
	if err := platform.SyncParent(p); err != nil {
		f.Close()
		return nil, newErr(ErrIO, "sync directory of", p, err)
	}
	return f, nil
}

// writeKept writes every message from first on that is not deleted,
// hidden ones included, in order, with qpopper's X-UIDL/Status
// write-back unless raw.
func (md *Maildrop) writeKept(bw *boundaryWriter, src io.ReaderAt, first int, del, retr []bool, raw bool, lk *spoolLock) error {
	check := md.cfg.LockCheck
	if check <= 0 {
		check = 5000
	}
	opt := md.cfg.Parse
	for i := first; i < md.msgs.len(); i++ {
		if del[i] {
			continue
		}
		m := md.msgs.at(i)
		if err := bw.startMessage(); err != nil {
			return err
		}
		var err error
		if raw {
			_, err = WriteRaw(bw, src, &m)
		} else {
			_, err = WriteUpdated(bw, src, &m, retr[i], opt)
		}
		if err != nil {
			return err
		}
		if i%check == check-1 {
			lk.refresh()
		}
	}
	return nil
}

// dirty reports whether an in-place update must write.
//
// Server mode: a deletion, a Status change to persist, or a generated
// UID to persist. Normal mode: whenever the write-back qpopper's normal
// mode did would change a byte: a deletion, a message not stored as
// WriteUpdated writes it, a newly retrieved one, or new mail after a
// last message that does not end in a blank line (the write-back puts
// one between). That last test reads the spool's size without the lock:
// mail that lands after it joins the last message, as it would with no
// session running.
func (md *Maildrop) dirty(del, retr []bool) bool {
	server := md.cfg.ServerMode
	for i := range md.msgs.len() {
		fl := md.msgs.flagsOf(i)
		uidFound, retrieved, canonical := fl&flagUIDFound != 0, fl&flagRetrieved != 0, fl&flagCanonical != 0
		switch {
		case del[i]:
			return true
		case server && md.cfg.Parse.UpdateStatusHeaders && (!uidFound || retr[i] != retrieved):
			return true
		case !server && (!canonical || retr[i] != retrieved):
			return true
		}
	}
	if !server && md.openEnd {
		fi, err := md.spool.Stat()
		return err != nil || fi.Size() != md.spoolEnd
	}
	return false
}

// firstChange is the first message an in-place update must write, and
// where it starts: every message before it is kept and stored as the
// write-back would write it (Canonical, its Status unchanged), so the new
// content begins with the spool's own bytes up to there. A canonical
// message that another follows ends in a blank line, so no boundary is
// written between it and the next.
func (md *Maildrop) firstChange(del, retr []bool) (int, int64) {
	for i := range md.msgs.len() {
		fl := md.msgs.flagsOf(i)
		if del[i] || fl&flagCanonical == 0 || retr[i] != (fl&flagRetrieved != 0) {
			return i, md.msgs.start(i)
		}
	}
	return md.msgs.len(), md.spoolEnd
}

// deletedFrom reports whether message first and every one after it are
// deleted (false when there are none).
func (md *Maildrop) deletedFrom(first int, del []bool) bool {
	if first >= len(del) {
		return false
	}
	for _, d := range del[first:] {
		if !d {
			return false
		}
	}
	return true
}

// updateInPlace commits a session served in place.
func (md *Maildrop) updateInPlace(del, retr []bool) error {
	c := md.cfg
	if !md.dirty(del, retr) {
		// Nothing to write: the spool is untouched and the empty temp drop
		// needs no durable removal (an empty leftover is harmless).
		return md.removeTempDrop(false)
	}
	lk, err := lockSpool(c, updateDotTries, md.spool, false)
	if err != nil {
		return err
	}
	defer lk.release()
	platform.Failpoint("update.locked")
	sp := md.spool
	fi, err := sp.Stat()
	if err != nil {
		return newErr(ErrIO, "stat spool", c.Spool, err)
	}
	if err := md.verifySpool(fi); err != nil {
		md.removeTempDrop(false)
		return err
	}
	size := fi.Size()
	first, from := md.firstChange(del, retr)
	if md.deletedFrom(first, del) && size == md.spoolEnd {
		// Every message from the first change on is deleted and no mail
		// came: the update is a truncate, and nothing needs a copy (before
		// its sync the messages are there or gone, both allowed before
		// the +OK).
		if err := lk.guard(c, sp, size); err != nil {
			return err
		}
		if err := sp.Truncate(from); err != nil {
			return newErr(ErrIO, "truncate spool", c.Spool, err)
		}
		if err := sp.Sync(); err != nil {
			return newErr(ErrIO, "sync spool", c.Spool, err)
		}
		platform.Failpoint("update.spool-synced")
		if err := md.removeTempDrop(false); err != nil {
			return err
		}
		platform.Failpoint("update.done")
		return nil
	}

	// 1. The spool's bytes from the first message that changes, durable
	// in the temp drop with what the rewrite will write (undo.go).
	h, err := md.writeUndo(first, from, size, del, retr, lk)
	if err != nil {
		md.drop.Truncate(0)
		return err
	}

	// 2. The spool rewritten in place from there, while the lock is ours
	// and the spool holds what it held. The truncate needs no sync of its
	// own: the old bytes a lost truncate leaves showing are the undo
	// copy's own at the same offsets, as a login copy's are to a copy's
	// update (recover.go).
	if err := lk.guard(c, sp, size); err != nil {
		return err
	}
	if err := sp.Truncate(from); err != nil {
		return newErr(ErrIO, "truncate spool", c.Spool, err)
	}
	platform.Failpoint("update.spool-truncated")
	if _, err := sp.Seek(from, io.SeekStart); err != nil {
		return newErr(ErrIO, "seek spool", c.Spool, err)
	}
	written := newSummer()
	w := io.MultiWriter(&guardedWriter{c: c, f: sp, lk: lk, off: from}, written)
	if _, err := md.writeTail(w, undoView{md.drop, from}, first, from, size, del, retr, lk); err != nil {
		return spoolWriteErr(c, "Error updating primary drop", err)
	}
	if written.sum() != h.Tail || written.n != h.TailLen {
		// The undo drop stays: recovery puts the old content back.
		return newErr(ErrIO, "the rewrite differs from what its undo copy says", c.Spool, nil)
	}
	platform.Failpoint("update.spool-written")
	if err := sp.Sync(); err != nil {
		return newErr(ErrIO, "sync spool", c.Spool, err)
	}
	platform.Failpoint("update.spool-synced")

	// 3. The undo drop removed. The removal is not synced: if a power cut
	// loses it, recovery finds the rewrite whole and removes it then.
	if err := md.removeTempDrop(false); err != nil {
		return err
	}
	platform.Failpoint("update.done")
	return nil
}

// copySpoolFrom replaces the spool's content, in place, with src's (a
// recovery's merge), and syncs it; the first from bytes of both are the
// same and are not written. The truncate is made durable before the
// first write: what is written is a byte copy of src, so a power cut
// that kept the writes and lost the truncate would leave src followed by
// old spool bytes, which recovery could not tell from a temp drop cut
// short while the spool was intact (recover.go).
func copySpoolFrom(c *Config, sp, src *platform.File, from int64, lk *spoolLock) error {
	fi, err := src.Stat()
	if err != nil {
		return newErr(ErrIO, "stat", src.Name(), err)
	}
	if err := sp.Truncate(from); err != nil {
		return newErr(ErrIO, "truncate spool", c.Spool, err)
	}
	if err := sp.Sync(); err != nil {
		return newErr(ErrIO, "sync spool", c.Spool, err)
	}
	platform.Failpoint("spool.truncated")
	if _, err := sp.Seek(from, io.SeekStart); err != nil {
		return newErr(ErrIO, "seek spool", c.Spool, err)
	}
	w := bufio.NewWriterSize(&guardedWriter{c: c, f: sp, lk: lk, off: from}, 64<<10)
	if _, err := io.Copy(w, io.NewSectionReader(src.OS(), from, fi.Size()-from)); err != nil {
		return spoolWriteErr(c, "Error updating primary drop", err)
	}
	if err := w.Flush(); err != nil {
		return spoolWriteErr(c, "Error updating primary drop", err)
	}
	platform.Failpoint("spool.written")
	if err := sp.Sync(); err != nil {
		return newErr(ErrIO, "sync spool", c.Spool, err)
	}
	return nil
}

// verifySpool checks, in server mode, that the spool still holds what the
// session served: same file, not shorter, every message's separator where
// it was. A mail reader that rewrote the spool meanwhile makes the update
// refuse rather than write back stale offsets.
func (md *Maildrop) verifySpool(fi os.FileInfo) error {
	c := md.cfg
	if !platform.IDOf(fi).SameFile(md.spoolID) || fi.Size() < md.spoolEnd {
		return newErr(ErrChanged, "spool changed during the session", c.Spool, nil)
	}
	sep := []byte("From ")
	if md.d.Format == MMDF {
		sep = []byte(md.d.Sep)
	}
	buf := make([]byte, len(sep))
	for i := range md.msgs.len() {
		if _, err := md.spool.ReadAt(buf, md.msgs.start(i)); err != nil || string(buf) != string(sep) {
			return newErr(ErrChanged, "spool changed during the session", c.Spool, err)
		}
	}
	return nil
}

// spoolWriteErr keeps a guardedWriter's refusal as it is.
func spoolWriteErr(c *Config, op string, err error) error {
	var e *Error
	if errors.As(err, &e) && e.Kind == ErrLockLost {
		return e
	}
	return newErr(ErrIO, op, c.Spool, err)
}

// refreshWriter refreshes the dotlock as bytes flow through it, so a long
// copy never lets the lock go stale (maillock's touchlock).
type refreshWriter struct {
	w  io.Writer
	lk *spoolLock
	n  int64
}

func (r *refreshWriter) Write(p []byte) (int, error) {
	n, err := r.w.Write(p)
	r.n += int64(n)
	if r.n >= refreshBytes {
		r.n = 0
		r.lk.refresh()
	}
	return n, err
}

// boundaryWriter writes messages one after another and keeps mbox
// boundaries intact: a "From " line only separates messages after a blank
// line, so when a message does not end in one (the last message of a file
// often lacks it) the missing newlines are added before the next message.
// It deliberately has no WriteString or ReadFrom, so every byte passes
// through Write and is seen.
type boundaryWriter struct {
	bw     *bufio.Writer
	format Format
	tail   [2]byte // last two bytes written (or, after follow, before)
	n      int64   // bytes written
	prior  bool    // bytes precede the first written (follow)
}

func newBoundaryWriter(w io.Writer, format Format) *boundaryWriter {
	return &boundaryWriter{bw: bufio.NewWriterSize(w, 64<<10), format: format}
}

func (b *boundaryWriter) Write(p []byte) (int, error) {
	n, err := b.bw.Write(p)
	switch {
	case n >= 2:
		b.tail = [2]byte{p[n-2], p[n-1]}
	case n == 1:
		b.tail = [2]byte{b.tail[1], p[0]}
	}
	b.n += int64(n)
	return n, err
}

// Flush writes out buffered bytes.
func (b *boundaryWriter) Flush() error { return b.bw.Flush() }

// follow says that the bytes written continue a file whose last two
// bytes so far are prev: the boundary before the first message is
// judged on them.
func (b *boundaryWriter) follow(prev [2]byte) { b.tail, b.prior = prev, true }

// written is the number of bytes written.
func (b *boundaryWriter) written() int64 { return b.n }

// startMessage is called before each message.
func (b *boundaryWriter) startMessage() error {
	if b.n == 0 && !b.prior || b.format == MMDF {
		return nil
	}
	var pad string
	switch {
	case b.tail[1] != '\n':
		pad = "\n\n"
	case b.tail[0] != '\n':
		pad = "\n"
	}
	if pad == "" {
		return nil
	}
	_, err := b.Write([]byte(pad))
	return err
}

// copyRaw appends r as one more run of messages (new mail), keeping the
// boundary before it.
func (b *boundaryWriter) copyRaw(r io.Reader) error {
	first := true
	buf := make([]byte, 64<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if first {
				if err := b.startMessage(); err != nil {
					return err
				}
				first = false
			}
			if _, werr := b.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// quarantinePath names a file for unparseable bytes.
func (c *Config) quarantinePath() string {
	prefix := c.Quarantine
	if prefix == "" {
		prefix = c.TempDrop + ".unparsed"
	}
	return fmt.Sprintf("%s-%s-%d", prefix, time.Now().UTC().Format("20060102T150405"), os.Getpid())
}

// dirOf is the directory holding the temp drop.
func (c *Config) dirOf() string { return filepath.Dir(c.TempDrop) }
