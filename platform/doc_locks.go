package platform

// Per-OS defaults for spool locking: doc/platforms.md, "Spool locks", says
// which locks each system's delivery agents take and why.
//
// A reader of /var/mail must take the same locks, in the same order, as the
// local delivery agent, or the two can write the mailbox at the same time:
//
//	OS                        outer lock            inner lock on the open mbox (DefaultSpoolLocks)
//	illumos, Oracle Solaris   dotlock USER.lock     fcntl F_SETLK write lock, whole file
//	Linux                     dotlock USER.lock     fcntl (open file description lock, see below)
//	FreeBSD, DragonFly        dotlock USER.lock     flock(LOCK_EX)
//	OpenBSD, NetBSD, macOS    dotlock USER.lock     flock(LOCK_EX)
//
// The temp drop's session lock (TryLockSession) is flock(LOCK_EX|LOCK_NB) as
// in qpopper everywhere except Oracle Solaris, whose libc has no flock; there
// it is an fcntl write lock.
//
// Rules the code enforces:
//   - unix.Flock is only called from files built with `!solaris || illumos`;
//     LockFlock on Oracle Solaris is an error, not a silent no-op.
//   - On illumos flock is implemented with the same lock manager as fcntl,
//     so LockMailbox refuses to take both on one descriptor there.
//   - Kernel locks are taken without blocking and retried until a timeout,
//     releasing everything taken so far between tries, so a deliverer that
//     takes the same locks in another order cannot deadlock with us.
//   - On Linux the fcntl lock is an open file description (OFD) lock. It
//     conflicts with the classic POSIX locks procmail and Postfix take, but,
//     unlike them, it belongs to the descriptor rather than the process, so
//     closing another descriptor of the same file does not drop it and two
//     sessions in one process exclude each other. Other systems use classic
//     POSIX locks: there, a process must not open and close a second
//     descriptor of a locked mailbox, and goroutines of one process do not
//     exclude each other.
//
// Dotlocks (LockDot) are made by link(2) from a unique file, so that they
// never exist empty, and are stale after 300 s without a touch on the
// spool filesystem's clock (maillock, liblockfile), or at once when they
// name a dead process on this host, or were written before this host
// booted and name this host or no one. A lock naming another host is
// judged by its age alone.
