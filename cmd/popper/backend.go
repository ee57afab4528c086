package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/popperd/popper/auth"
	"github.com/popperd/popper/compat"
	"github.com/popperd/popper/internal/narrow"
	"github.com/popperd/popper/platform"
	"github.com/popperd/popper/pop3"
	"github.com/popperd/popper/spool"
)

// backend is the pop3.Backend of one session: it asks the login policy
// who the user is, switches to the user's identity and opens the
// maildrop.
type backend struct {
	opts       *compat.Options
	policy     *auth.Policy
	log        platform.Logger
	clientHost string
	clientIP   string
	user       string // authenticated user, for log lines
	// signalsCaught, when not nil, is closed once SIGHUP and SIGTERM end
	// the session in order (runInetd).
	signalsCaught <-chan struct{}
}

// normalize applies qpopper's user-name options; noMIME reports a
// "-no-mime" suffix, which asks for every message as plain text.
func (b *backend) normalize(name string) (user string, noMIME bool) {
	u := compat.NormalizeUser(name, b.opts)
	return u.Name, u.NoMIME
}

// Name is the name qpopper keeps for a USER, APOP or AUTH argument; a
// name cut to 64 bytes is logged, as pop_user.c does.
func (b *backend) Name(arg string) string {
	u := compat.NormalizeUser(arg, b.opts)
	if u.Cut != "" {
		b.log.Notice(compat.UserNameTruncated(len(u.Cut), u.Cut))
	}
	return u.Name
}

// User accepts every name the clear-text rule allows: whether it exists
// is only told after PASS, with the same text as a wrong password.
func (b *backend) User(name string) error {
	user, _ := b.normalize(name)
	if compat.ValidUser(user) != nil {
		return nil
	}
	return reply(b.policy.User(user))
}

func (b *backend) Pass(name, password string) (pop3.Mailbox, error) {
	user, noMIME := b.normalize(name)
	if compat.ValidUser(user) != nil {
		return nil, reply(b.policy.Unknown(name))
	}
	a, err := b.policy.Pass(user, password)
	if err != nil {
		return nil, reply(err)
	}
	return b.open(a, noMIME)
}

func (b *backend) APOP(name, timestamp, digest string) (pop3.Mailbox, error) {
	user, noMIME := b.normalize(name)
	if compat.ValidUser(user) != nil {
		return nil, reply(b.policy.Unknown(name))
	}
	a, err := b.policy.APOP(user, timestamp, digest)
	if err != nil {
		return nil, reply(err)
	}
	return b.open(a, noMIME)
}

// reply turns the policy's refusal into the -ERR the client gets, and the
// records logged after it.
func reply(err error) error {
	var r *auth.Refusal
	if errors.As(err, &r) {
		return &pop3.Error{Code: r.Code, Text: r.Text, Close: r.Close, Log: r.Log}
	}
	return err
}

// open switches to the user's identity and opens the maildrop. What may
// be opened as root, and what only as the user, is spool/trust.go's
// table: the admin's option file is read as root before the drop; then
// root moves aside whatever another user planted at the user's names in
// the spool directory; the user's own option file is read after the
// drop, as the user with the user's own group.
func (b *backend) open(a *auth.Account, noMIME bool) (pop3.Mailbox, error) {
	if b.signalsCaught != nil {
		<-b.signalsCaught // a signal must not end the process with a maildrop open
	}
	b.applyGroupServerMode(a)
	// Which files are read is settled before either is: as in qpopper,
	// where the user's came first, the admin's cannot turn it off.
	readUser := b.opts.UserOptions
	var admin []byte // the spool options file, applied again after the user's
	if b.opts.SpoolOptions {
		admin = b.adminOptions(compat.SpoolOptionsPath(b.opts, a.Name), a.Name)
	}
	pre := spoolConfig(b.opts, a, b.log)
	if b.opts.HashSpool != 0 && b.opts.CheckHashDir {
		if err := makeHashDirs(b.opts.SpoolDir, pre.Spool, pre.TempDrop); err != nil {
			b.log.Notice(compat.HashDirFailed(a.Name, err))
			return nil, pop3.Errorf(compat.RespTemp, compat.ReplyHashDirFailed)
		}
	}
	if platform.IsRoot() {
		for _, p := range spool.ClearPlanted(pre, a.UID) {
			b.log.Notice(p.String())
		}
		// The user's uid with the user's own group; the spool directory's
		// group (mail in a 2775 root:mail /var/mail) is kept aside for the
		// maildrop's work there only.
		if err := platform.DropToUser(a.UID, a.GID, spoolGroup(b.opts, pre)); err != nil {
			b.log.Notice(compat.ChangeUserFailed(a.Name, err))
			return nil, pop3.Errorf(compat.RespTemp, compat.ReplyChangeUser, a.Name)
		}
	} else if os.Geteuid() != a.UID {
		// Without root we can only serve our own account (tests, demo).
		b.log.Notice(compat.NotRootLine(a.Name, a.UID, os.Geteuid()))
		return nil, pop3.Errorf(compat.RespTemp, compat.ReplyChangeUser, a.Name)
	}
	narrow.Widen()
	// The user's file is read with the user's privileges only (qpopper
	// read it as root: CVE-2005-1151); the admin's settings then win, as
	// when qpopper read the spool file second.
	if readUser {
		b.userOptions(compat.UserOptionsPath(a.Home), a.Name)
	}
	if admin != nil {
		compat.ParseUserOptions(bytes.NewReader(admin), compat.SpoolOptionsPath(b.opts, a.Name), compat.Connected, b.opts)
	}
	cfg := spoolConfig(b.opts, a, b.log)
	var md *spool.Maildrop
	err := platform.AsSpoolGroup(func() (err error) { md, err = spool.Open(cfg); return err })
	if err != nil {
		return nil, b.dropError(cfg, a.Name, err)
	}
	b.user = a.Name
	line, lerr := compat.LoginLine(b.opts.LogLogin, version, a.Name, b.clientHost, b.clientIP)
	if lerr == nil && line != "" {
		b.log.Notice(line)
	}
	return &mailbox{md: md, b: b, textOnly: noMIME}, nil
}

// makeHashDirs creates the missing hash subdirectories of the spool and
// temp drop paths (check-hash-dir) with the mode, owner and group of the
// top spool directory, as qpopper does; it runs before the privilege drop.
func makeHashDirs(top string, paths ...string) error {
	ti, err := os.Stat(top)
	if err != nil {
		return err
	}
	id := platform.IDOf(ti)
	for _, p := range paths {
		var missing []string
		for d := filepath.Dir(p); len(d) > len(top) && strings.HasPrefix(d, top); d = filepath.Dir(d) {
			if _, err := os.Lstat(d); err == nil {
				break
			}
			missing = append([]string{d}, missing...)
		}
		for _, d := range missing {
			if err := os.Mkdir(d, 0700); err != nil && !errors.Is(err, os.ErrExist) {
				return err
			}
			if err := os.Chmod(d, ti.Mode().Perm()|ti.Mode()&os.ModeSticky); err != nil {
				return err
			}
			if platform.IsRoot() {
				if err := os.Chown(d, int(id.Uid), int(id.Gid)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// sessionGID is the group qpopper gave a session, and the boot sweep's
// children still take: the spool directory's (mail), so the user can make
// the dotlock and temp drop there; never root's group.
func sessionGID(spoolDir string, a *auth.Account) int {
	if fi, err := os.Stat(spoolDir); err == nil {
		if g := int(platform.IDOf(fi).Gid); g != 0 {
			return g
		}
	}
	return a.GID
}

// spoolGroup is the group a session keeps aside for the maildrop's work
// in the spool directory: that directory's group when only its group may
// create files there (2775 root:mail, 775 root:mail), none when anyone may
// (1777) or when the mailbox is in the user's home (home-dir-mail).
func spoolGroup(o *compat.Options, c *spool.Config) int {
	if o.HomeDirMail != "" {
		return -1
	}
	for _, dir := range []string{filepath.Dir(c.Spool), filepath.Dir(c.TempDrop)} {
		fi, err := os.Stat(dir)
		if err != nil {
			continue
		}
		perm, g := fi.Mode().Perm(), int(platform.IDOf(fi).Gid)
		if perm&0o020 != 0 && perm&0o002 == 0 && g != 0 {
			return g
		}
	}
	return -1
}

// adminOptions reads the admin's per-user option file in the spool
// directory, as root: believed only when it is root's and nobody else
// can write or replace it (in a 1777 spool directory any user could
// plant one for another). It is applied now, for the paths root works
// on, and its bytes returned to be applied again after the user's file.
func (b *backend) adminOptions(path, user string) []byte {
	f, err := platform.OpenAdminFile(path, os.O_RDONLY, 0)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			b.log.Notice(compat.OptionsFileFailed(true, user, err))
		}
		return nil
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		b.log.Notice(compat.OptionsFileFailed(true, user, err))
		return nil
	}
	for _, e := range compat.ParseUserOptions(bytes.NewReader(data), path, compat.Connected, b.opts) {
		b.log.Notice(e.Error())
	}
	return data
}

// userOptions applies the user's ~/.qpopper-options, read as the user.
// Problems are logged and the session goes on, as qpopper did: a user
// must not be able to lock themselves out with a typo, and restricted
// options are simply refused.
func (b *backend) userOptions(path, user string) {
	// Read with the user's own privileges, so it may be a link; never a
	// FIFO to wait on.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			b.log.Notice(compat.OptionsFileFailed(false, user, nil))
		}
		return
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		b.log.Notice(compat.OptionsFileFailed(false, user, errors.New("not a regular file")))
		return
	}
	for _, e := range compat.ParseUserOptions(io.LimitReader(f, 1<<20), path, compat.User, b.opts) {
		b.log.Notice(e.Error())
	}
}

// applyGroupServerMode turns server mode on or off for members of the
// groups named by group-server-mode and group-no-server-mode.
func (b *backend) applyGroupServerMode(a *auth.Account) {
	if b.opts.GroupServerMode != "" && a.InGroup(b.opts.GroupServerMode) {
		b.opts.ServerMode = true
	}
	if b.opts.GroupNoServerMode != "" && a.InGroup(b.opts.GroupNoServerMode) {
		b.opts.ServerMode = false
	}
}

// dropError turns a maildrop failure into qpopper's reply.
func (b *backend) dropError(cfg *spool.Config, user string, err error) error {
	var e *spool.Error
	if !errors.As(err, &e) {
		return pop3.Errorf(compat.RespTemp, "%v", err)
	}
	text, num := compat.Strerror(e.Err)
	switch e.Kind {
	case spool.ErrInUse:
		return pop3.Errorf(compat.RespInUse, compat.ReplyInUse, cfg.TempDrop, int(syscall.EWOULDBLOCK))
	case spool.ErrLock:
		var dl *platform.DotLockError
		if errors.As(e.Err, &dl) {
			return pop3.Errorf(compat.RespTemp, "%s", dl.Error())
		}
		return pop3.Errorf(compat.RespTemp, "%s", compat.KernelLockError("flock", cfg.Spool, e.Err))
	case spool.ErrLockLost:
		return pop3.Errorf(compat.RespTemp, compat.ReplySpoolChanged, cfg.Spool, e.Op)
	case spool.ErrNotOwned:
		return pop3.Errorf(compat.RespPerm, compat.ReplyNotOwned, e.Path, user)
	case spool.ErrOpenToOthers:
		return pop3.Errorf(compat.RespPerm, compat.ReplyOpenToOthers, e.Path)
	case spool.ErrLinked:
		return pop3.Errorf(compat.RespPerm, compat.ReplyLinked)
	case spool.ErrPerm:
		return pop3.Errorf(compat.RespPerm, "%s: %s", e.Op, e.Path)
	}
	if errors.Is(e.Err, syscall.EDQUOT) {
		return pop3.Errorf(compat.RespTemp, compat.ReplyQuotaExceeded, num)
	}
	return pop3.Errorf(compat.RespTemp, compat.ReplyCopyFailed, cfg.TempDrop, text, num)
}

// spoolConfig derives the maildrop configuration of an account.
func spoolConfig(o *compat.Options, a *auth.Account, log platform.Logger) *spool.Config {
	spoolPath := a.Mailbox
	if spoolPath == "" {
		spoolPath = compat.SpoolPath(o, a.Name, a.Home)
	}
	c := &spool.Config{
		Spool:        spoolPath,
		TempDrop:     compat.TempDropPath(o, a.Name, a.Home),
		ServerMode:   o.ServerMode,
		KeepTempDrop: o.KeepTempDrop,
		Parse: spool.ParseOptions{
			ContentLength:       o.ContentLength,
			UWKluge:             o.UWKluge,
			UpdateStatusHeaders: o.UpdateStatusHeaders,
			OldStyleUID:         o.OldStyleUID,
		},
		LinkDotLock: o.NoAtomicOpen,
		LockCheck:   o.MailLockCheck,
		Logf: func(format string, args ...any) {
			log.Notice(fmt.Sprintf(format, args...))
		},
	}
	if o.BullDir != "" {
		c.Bulletins = &spool.BulletinConfig{
			Dir:       o.BullDir,
			User:      a.Name,
			Host:      myHostname(),
			Max:       o.MaxBulletins,
			Groups:    o.GroupBulletins,
			InGroup:   func(group string) bool { return a.InGroup(group) },
			StatePath: filepath.Join(a.Home, ".popbull"),
		}
	}
	if o.CacheName != "" {
		c.Cache = compat.CachePath(o, a.Name)
	}
	if a.Mailbox != "" {
		// An explicit mailbox keeps its temp drop beside it.
		c.TempDrop = filepath.Join(filepath.Dir(spoolPath), "."+a.Name+".pop")
		if c.Cache != "" && o.CacheDir == "" {
			c.Cache = filepath.Join(filepath.Dir(spoolPath), filepath.Base(c.Cache))
		}
	}
	if o.CheckOldSpoolLoc && (o.HashSpool != 0 || o.HomeDirMail != "") {
		c.OldTempDrop = compat.OldTempDropPath(o, a.Name, a.Home)
	}
	if _, kinds, err := platform.ParseLockKinds(o.SpoolLocks); err == nil && o.SpoolLocks != "" {
		// "dotlock" alone names no kernel lock: take none (not the
		// platform default, which nil would mean).
		c.Locks = append([]platform.LockKind{}, kinds...)
	}
	return c
}

// mailbox adapts a spool.Maildrop to pop3.Mailbox and writes qpopper's
// Stats line at update.
type mailbox struct {
	md       *spool.Maildrop
	b        *backend
	textOnly bool // "-no-mime" login: pop3 mangles every message
}

func (m *mailbox) TextOnly() bool { return m.textOnly }

func (m *mailbox) Len() int         { return m.md.Len() }
func (m *mailbox) Hidden() int      { return m.md.Hidden() }
func (m *mailbox) Size(i int) int64 { return m.md.Size(i) }
func (m *mailbox) UID(i int) string { return m.md.UID(i) }

func (m *mailbox) AppendUID(dst []byte, i int) []byte { return m.md.AppendUID(dst, i) }
func (m *mailbox) WriteMessage(w io.Writer, i int, bodyLines int) error {
	return m.md.WriteMessage(w, i, bodyLines)
}

func (m *mailbox) Update(c pop3.Changes) error {
	if m.b.opts.Statistics {
		// qpopper logs Stats before writing, so it appears even when the
		// update then fails.
		var nd, nl int
		var bd, bl int64
		for i := 0; i < m.md.Len(); i++ {
			if i < len(c.Deleted) && c.Deleted[i] {
				nd++
				bd += m.md.Size(i)
			} else {
				nl++
				bl += m.md.Size(i)
			}
		}
		nl += m.md.Hidden()
		m.b.log.Notice(compat.StatsLine(m.b.user, nd, bd, nl, bl, m.b.clientHost, m.b.clientIP))
	}
	if err := platform.AsSpoolGroup(func() error { return m.md.Commit(c.Deleted, c.Retrieved) }); err != nil {
		m.b.log.Notice(compat.UpdateFailedLine(m.b.user, err))
		return err
	}
	return nil
}

func (m *mailbox) Restore() error { return platform.AsSpoolGroup(m.md.Rollback) }
