package spool

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/popperd/popper/platform"
)

// Who may make each file popper opens, and what it checks before it
// believes one. A local user has a shell on the mail host: every path
// that user can write is theirs, and popper must not read, serve or
// write through it with more privilege than that user's.
//
//	file                          made by            believed when
//	configuration (-f), trace     the admin          root's, nobody else may write it or
//	  file (-t), shadow, APOP DB                     replace it (platform.OpenAdminFile)
//	<spool-dir>/.USER.qpopper-    the admin          the same, read as root before the drop
//	  options (-U)
//	~/.qpopper-options (-u)       the user           read as the user, own group only; may
//	                                                 not name paths popper opens as root
//	/var/mail/USER (spool)        the MDA or popper  the user's or root's, a regular file
//	                                                 with one link
//	.USER.pop, .USER.pop.new,     popper as the user the user's, a regular file with one
//	  .USER.pop.tmp (temp drop)                      link, mode 06x0
//	USER.lock (dotlock)           MDAs, popper       the user's or root's, a regular file
//	bulletins (bulldir)           the admin          root's or the user's, regular, one link,
//	                                                 opened as the user, own group only
//	~/.popbull                    popper as the user the user's
//	.USER.cache, .USER.cache.tmp  popper as the user the user's or root's, a regular file
//	  (the index: cache-dir,                         with one link nobody else may write;
//	  cache-name)                                    then only as far as its checksums
//	                                                 prove it (index.go)
//
// The spool directory's layout decides who else can make files there:
// in a 1777 directory (Solaris, illumos) any user can create any name
// that does not exist yet, including another user's spool, temp drop or
// lock; in 2775 root:mail (Debian) or 775 root:mail (the BSDs) only root
// and the mail group can. Before a session drops to its user, ClearPlanted
// looks at every name in the spool directory that belongs to the user; a
// file there that the user (or root, for the spool and the lock) did not
// make, or that is a link, a FIFO or a device, is renamed aside by root
// (sticky bit or not, root may), made root's, and logged with its owner,
// so that it is never read as mail and never locks the user out. Root
// never touches a directory it does not own: a user's home directory
// (home-dir-mail) is the user's own business.
//
// The session then runs as the user with the user's own group only, and
// takes the spool directory's group (mail) just for the maildrop's own
// work there (platform.AsSpoolGroup).

// Planted is a file found at one of a user's names that the user did not
// make.
type Planted struct {
	Path  string // where it was
	Aside string // where it is now; "" if it could not be moved
	Owner uint32
	Why   string // what was wrong with it
	Err   error  // why it could not be moved
}

func (p Planted) String() string {
	owner := strconv.Itoa(int(p.Owner))
	if u, err := user.LookupId(owner); err == nil {
		owner = u.Username + " (uid " + owner + ")"
	} else {
		owner = "uid " + owner
	}
	if p.Err != nil {
		return fmt.Sprintf("Planted file %s (owner %s, %s) could not be moved aside: %v", p.Path, owner, p.Why, p.Err)
	}
	return fmt.Sprintf("Planted file %s (owner %s, %s) moved aside to %s", p.Path, owner, p.Why, p.Aside)
}

// ClearPlanted moves aside, as root, what another user planted at uid's
// names in the spool and temp directories (see the table above). It does
// nothing in a directory root does not own, or when not run as root.
func ClearPlanted(c *Config, uid int) []Planted {
	if !platform.IsRoot() {
		return nil
	}
	type name struct {
		path       string
		rootMayOwn bool
	}
	names := []name{
		{c.Spool, true}, {c.Spool + ".lock", true},
		{c.TempDrop, false}, {c.newPath(), false}, {c.tmpPath(), false}, {c.mergePath(), false},
	}
	if c.OldTempDrop != "" && c.OldTempDrop != c.TempDrop {
		names = append(names, name{c.OldTempDrop, false})
	}
	if c.Cache != "" {
		names = append(names, name{c.Cache, true}, name{c.Cache + ".tmp", true})
	}
	var found []Planted
	for _, n := range names {
		if !rootsDirectory(filepath.Dir(n.path)) {
			continue
		}
		if n.path == c.Spool+".lock" && platform.IsLockerLink(n.path) {
			// A locker killed between link(2) and removing its unique
			// name: a lock with two links, which the dotlock code judges
			// (by owner and age), not a plant.
			if fi, err := os.Lstat(n.path); err == nil {
				if id := platform.IDOf(fi); int(id.Uid) == uid || id.Uid == 0 {
					continue
				}
			}
		}
		if p, ok := clearOne(n.path, uid, n.rootMayOwn); ok {
			found = append(found, p)
		}
	}
	return found
}

// rootsDirectory reports whether dir is owned by root, so that root may
// rename in it without a user swapping its path under root.
func rootsDirectory(dir string) bool {
	fi, err := os.Lstat(dir)
	return err == nil && fi.IsDir() && platform.IDOf(fi).Uid == 0
}

// planted says what is wrong with a file at one of uid's names, or "".
func planted(fi fs.FileInfo, uid int, rootMayOwn bool) string {
	id := platform.IDOf(fi)
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return "a symbolic link"
	case !fi.Mode().IsRegular():
		return "not a regular file (" + fi.Mode().Type().String() + ")"
	case int(id.Uid) != uid && !(rootMayOwn && id.Uid == 0):
		return "not the user's"
	case id.Nlink != 1:
		return fmt.Sprintf("%d links", id.Nlink)
	}
	return ""
}

func clearOne(path string, uid int, rootMayOwn bool) (Planted, bool) {
	fi, err := os.Lstat(path)
	if err != nil {
		return Planted{}, false
	}
	why := planted(fi, uid, rootMayOwn)
	if why == "" {
		return Planted{}, false
	}
	id := platform.IDOf(fi)
	p := Planted{Path: path, Owner: id.Uid, Why: why}
	dir, base := filepath.Split(path)
	aside := filepath.Join(dir, fmt.Sprintf(".%s.planted-%s-%d", trimDot(base), time.Now().UTC().Format("20060102T150405"), os.Getpid()))
	if err := platform.Rename(path, aside); err != nil {
		p.Err = err
		return p, true
	}
	moved, err := os.Lstat(aside)
	if err == nil && !platform.IDOf(moved).SameFile(id) && planted(moved, uid, rootMayOwn) == "" {
		// The user's own file took the name between the look and the
		// rename: give it back (link fails if the name is taken again).
		if os.Link(aside, path) == nil {
			platform.Remove(aside)
		}
		return Planted{}, false
	}
	p.Aside = aside
	platform.SyncDir(dir)
	// What was planted stays for the admin, but no longer the planter's
	// to read: an MDA may have appended the user's mail to it.
	if moved != nil && moved.Mode().IsRegular() && platform.IDOf(moved).Nlink == 1 {
		os.Chown(aside, 0, 0)
		os.Chmod(aside, 0o600)
	} else if moved != nil && moved.Mode()&fs.ModeSymlink != 0 {
		os.Lchown(aside, 0, 0)
	}
	return p, true
}

func trimDot(s string) string {
	for len(s) > 0 && s[0] == '.' {
		s = s[1:]
	}
	return s
}

// ErrNotMailbox is a spool that is not the user's plain file (for
// --list-uids, which reads one without the session's checks).
var ErrNotMailbox = errors.New("not the user's regular mailbox file")

// OpenSpoolForReading opens a user's spool to read it, refusing what the
// session would refuse: a link, a FIFO (never waited on), a device, a
// file with more than one link or owned by anyone but the user or root.
func OpenSpoolForReading(path string, uid int) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if why := planted(fi, uid, true); why != "" {
		f.Close()
		return nil, fmt.Errorf("%s: %w: %s", path, ErrNotMailbox, why)
	}
	return f, nil
}
