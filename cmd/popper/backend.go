package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/popperd/popper/auth"
	"github.com/popperd/popper/compat"
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
}

// normalize applies qpopper's user-name options; noMIME reports a
// "-no-mime" suffix, which asks for every message as plain text.
func (b *backend) normalize(name string) (user string, noMIME bool) {
	return compat.NormalizeUser(name, b.opts)
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

// reply turns the policy's refusal into the -ERR the client gets.
func reply(err error) error {
	var r *auth.Refusal
	if errors.As(err, &r) {
		return &pop3.Error{Code: r.Code, Text: r.Text, Close: r.Close}
	}
	return err
}

// open switches to the user's identity and opens the maildrop.
func (b *backend) open(a *auth.Account, noMIME bool) (pop3.Mailbox, error) {
	b.applyGroupServerMode(a)
	pre := spoolConfig(b.opts, a, b.log)
	spoolDir := filepath.Dir(pre.Spool)
	if b.opts.HashSpool != 0 && b.opts.CheckHashDir {
		if err := makeHashDirs(b.opts.SpoolDir, pre.Spool, pre.TempDrop); err != nil {
			b.log.Notice(fmt.Sprintf("Unable to create hashed spool directory for %s: %v", a.Name, err))
			return nil, pop3.Errorf("SYS/TEMP", "Unable to create hashed spool directory.")
		}
	}
	if platform.IsRoot() {
		// qpopper: the user's uid with the spool directory's group, so the
		// dotlock and temp drop can be made in a 1777 or 2775 root:mail
		// directory; supplementary groups cleared.
		gid := sessionGID(spoolDir, a)
		if err := platform.DropPrivileges(a.UID, gid); err != nil {
			b.log.Notice(fmt.Sprintf("Unable to change to user %s: %v", a.Name, err))
			return nil, pop3.Errorf("SYS/TEMP", "Unable to change to user %s.", a.Name)
		}
	} else if os.Geteuid() != a.UID {
		// Without root we can only serve our own account (tests, demo).
		b.log.Notice(fmt.Sprintf("Not root: cannot serve %s (uid %d) as uid %d", a.Name, a.UID, os.Geteuid()))
		return nil, pop3.Errorf("SYS/TEMP", "Unable to change to user %s.", a.Name)
	}
	// The per-user option files are read with the user's privileges only
	// (qpopper read them as root: CVE-2005-1151); home file first, so the
	// admin's file in the spool directory can override it.
	if b.opts.UserOptions {
		b.readOptions(compat.UserOptionsPath(a.Home), compat.User, "user", a.Name)
	}
	if b.opts.SpoolOptions {
		b.readOptions(compat.SpoolOptionsPath(b.opts, a.Name), compat.Connected, "spool", a.Name)
	}
	cfg := spoolConfig(b.opts, a, b.log)
	md, err := spool.Open(cfg)
	if err != nil {
		return nil, b.dropError(cfg, err)
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

// sessionGID is the group a session runs with: qpopper's choice, the
// spool directory's group (mail), so the user can make the dotlock and
// temp drop there. A spool directory owned by group root would make that
// gid 0; the user's own group is used instead, never root's.
func sessionGID(spoolDir string, a *auth.Account) int {
	if fi, err := os.Stat(spoolDir); err == nil {
		if g := int(platform.IDOf(fi).Gid); g != 0 {
			return g
		}
	}
	return a.GID
}

// readOptions applies one per-user option file. Problems are logged and
// the session goes on, as qpopper did: a user must not be able to lock
// themselves out with a typo, and restricted options are simply refused.
func (b *backend) readOptions(path string, ctx compat.Context, kind, user string) {
	f, err := os.Open(path)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			b.log.Notice(fmt.Sprintf("Unable to process %s options file for user %s", kind, user))
		}
		return
	}
	defer f.Close()
	for _, e := range compat.ParseUserOptions(f, path, ctx, b.opts) {
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
func (b *backend) dropError(cfg *spool.Config, err error) error {
	var e *spool.Error
	if !errors.As(err, &e) {
		return pop3.Errorf("SYS/TEMP", "%v", err)
	}
	text, num := platform.Strerror(e.Err)
	switch e.Kind {
	case spool.ErrInUse:
		return pop3.Errorf("IN-USE", "%s lock busy!  Is another session active? (%d)", cfg.TempDrop, int(syscall.EWOULDBLOCK))
	case spool.ErrLock:
		var dl *platform.DotLockError
		if errors.As(e.Err, &dl) {
			return pop3.Errorf("SYS/TEMP", "%s", dl.Error())
		}
		text, num := platform.Strerror(e.Err)
		return pop3.Errorf("SYS/TEMP", "flock: '%s': %s (%d)", cfg.Spool, text, num)
	case spool.ErrPerm:
		switch {
		case strings.Contains(e.Op, "not owned"):
			return pop3.Errorf("SYS/PERM", "Temporary drop %s not owned by %s.", e.Path, b.user)
		case strings.Contains(e.Op, "accessible by others"):
			return pop3.Errorf("SYS/PERM", "Your temporary file %s is accessible by others.  This must be fixed", e.Path)
		case strings.Contains(e.Op, "more than one link"):
			return pop3.Errorf("SYS/PERM", "Your temporary file appears to have more than one link.")
		}
		return pop3.Errorf("SYS/PERM", "%s: %s", e.Op, e.Path)
	}
	if errors.Is(e.Err, syscall.EDQUOT) {
		return pop3.Errorf("SYS/TEMP", "Unable to copy mail spool file, quota exceeded (%d)", num)
	}
	return pop3.Errorf("SYS/TEMP", "Unable to copy mail spool file to temp pop dropbox %s: %s (%d)", cfg.TempDrop, text, num)
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
	if a.Mailbox != "" {
		// An explicit mailbox keeps its temp drop beside it.
		c.TempDrop = filepath.Join(filepath.Dir(spoolPath), "."+a.Name+".pop")
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
	if err := m.md.Commit(c.Deleted, c.Retrieved); err != nil {
		m.b.log.Notice(fmt.Sprintf("Update of %s failed: %v", m.b.user, err))
		return err
	}
	return nil
}

func (m *mailbox) Restore() error { return m.md.Rollback() }
