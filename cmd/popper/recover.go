package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"

	"github.com/popperd/popper/auth"
	"github.com/popperd/popper/compat"
	"github.com/popperd/popper/platform"
	"github.com/popperd/popper/spool"
)

// The boot-time sweep (popper --recover): every leftover temp drop the
// configuration can name is merged back into its spool, each as its own
// user (a child process per user when run as root), before the POP
// service and, ideally, mail delivery start.

// recoverUserEnv tells a child of the sweep which single user to recover.
const (
	recoverUserEnv    = "POPPER_RECOVER_USER"
	recoverHomeEnv    = "POPPER_RECOVER_HOME"
	recoverMailboxEnv = "POPPER_RECOVER_MAILBOX"
)

func runRecover(opts *compat.Options, inv *compat.Invocation, log platform.Logger, out io.Writer) int {
	if name := os.Getenv(recoverUserEnv); name != "" {
		// A child of the sweep, already the user: the parent looked the
		// account up (the account files are root's to read).
		a := &auth.Account{Name: name, UID: os.Getuid(), GID: os.Getgid(),
			Home: os.Getenv(recoverHomeEnv), Mailbox: os.Getenv(recoverMailboxEnv)}
		return recoverUser(opts, fixedAccount(a), name, log, out)
	}
	accounts, err := sweepAccounts(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "popper --recover:", err)
		return 1
	}
	users, err := leftoverUsers(opts, accounts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "popper --recover:", err)
		return 1
	}
	failed := 0
	for _, name := range users {
		var code int
		if platform.IsRoot() {
			code = recoverAsUser(opts, accounts.lookup, name, out)
		} else {
			code = recoverUser(opts, accounts.lookup, name, log, out)
		}
		if code != 0 {
			failed++
		}
	}
	fmt.Fprintf(out, "popper --recover: %d user(s) with leftover temp drops, %d recovered, %d failed\n",
		len(users), len(users)-failed, failed)
	if failed > 0 {
		return 1
	}
	return 0
}

// leftoverUsers finds the users who have a leftover temp drop (or the
// TEMP.new of an interrupted update) in any place the configuration names:
// the temp dir, its hash subdirectories, the spool dir (qpopper's old
// location), and home directories when home-dir-mail is set.
func leftoverUsers(opts *compat.Options, accounts *sweepList) ([]string, error) {
	re, err := tempNameRE(opts.TempName)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	scan := func(dir string) {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return
		}
		for _, e := range ents {
			name := strings.TrimSuffix(e.Name(), ".new")
			if m := re.FindStringSubmatch(name); m != nil && compat.ValidUser(m[1]) == nil {
				seen[m[1]] = true
			}
		}
	}
	dirs := []string{opts.TempDir, opts.SpoolDir}
	if opts.TempDir == "" {
		dirs = dirs[1:]
	}
	for _, d := range dirs {
		scan(d)
		if opts.HashSpool != 0 {
			// Both hash methods use one or two levels of single letters.
			l1, _ := filepath.Glob(filepath.Join(d, "?"))
			l2, _ := filepath.Glob(filepath.Join(d, "?", "?"))
			for _, h := range append(l1, l2...) {
				scan(h)
			}
		}
	}
	if opts.HomeDirMail != "" {
		for _, a := range accounts.all {
			scan(filepath.Dir(filepath.Join(a.Home, opts.HomeDirMail)))
		}
	}
	users := make([]string, 0, len(seen))
	for u := range seen {
		users = append(users, u)
	}
	sort.Strings(users)
	return users, nil
}

// tempNameRE turns a temp-name format (".%s.pop") into a pattern that
// captures the user name.
func tempNameRE(format string) (*regexp.Regexp, error) {
	i := strings.Index(format, "%s")
	if i < 0 || strings.Count(format, "%") != 1 {
		return nil, fmt.Errorf("temp-name %q must contain one %%s", format)
	}
	return regexp.Compile("^" + regexp.QuoteMeta(format[:i]) + "(.+)" + regexp.QuoteMeta(format[i+2:]) + "$")
}

// lookupFunc finds the account of a user with a leftover temp drop.
type lookupFunc func(name string) (*auth.Account, error)

func fixedAccount(a *auth.Account) lookupFunc {
	return func(name string) (*auth.Account, error) {
		if name == a.Name {
			return a, nil
		}
		return nil, auth.ErrUnknownUser
	}
}

// sweepList is every account the sweep may have to recover for: the
// configured source's, and the system's, since a leftover drop holds
// mail whoever may log in today.
type sweepList struct {
	src auth.Source
	all []*auth.Account // for home-dir-mail: the accounts whose homes are scanned
}

func sweepAccounts(opts *compat.Options) (*sweepList, error) {
	src, err := accountSource(opts, auth.Client{})
	if err != nil {
		return nil, err
	}
	l := &sweepList{src: src}
	for _, lister := range []any{src, &auth.System{Files: auth.DefaultSystemFiles()}} {
		if al, ok := lister.(interface {
			Accounts() ([]*auth.Account, error)
		}); ok {
			all, err := al.Accounts()
			if err != nil {
				return nil, err
			}
			l.all = append(l.all, all...)
		}
	}
	return l, nil
}

// lookup asks the configured source, then the system.
func (l *sweepList) lookup(name string) (*auth.Account, error) {
	a, err := l.src.Lookup(name)
	if errors.Is(err, auth.ErrUnknownUser) {
		a, err = auth.LookupSystem(name)
	}
	if errors.Is(err, auth.ErrAccountExpired) {
		err = nil // an expired account's mail is still its mail
	}
	return a, err
}

// recoverAsUser runs the recovery of one user in a child process that has
// that user's identity, so every file keeps its owner.
func recoverAsUser(opts *compat.Options, lookup lookupFunc, name string, out io.Writer) int {
	a, err := lookup(name)
	if err != nil {
		fmt.Fprintf(out, "%s: not recovered: no such account (%v)\n", name, err)
		return 1
	}
	if a.UID <= auth.BlockUID {
		fmt.Fprintf(out, "%s: not recovered: uid %d is blocked\n", name, a.UID)
		return 1
	}
	cfg := spoolConfig(opts, a, nopLogger{})
	gid := sessionGID(filepath.Dir(cfg.Spool), a)
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(out, "%s: not recovered: %v\n", name, err)
		return 1
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Env = append(os.Environ(), recoverUserEnv+"="+name, recoverHomeEnv+"="+a.Home, recoverMailboxEnv+"="+a.Mailbox)
	cmd.Stdout, cmd.Stderr = out, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(a.UID), Gid: uint32(gid), Groups: []uint32{uint32(gid)}}}
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			fmt.Fprintf(out, "%s: not recovered: %v\n", name, err)
		}
		return 1
	}
	return 0
}

// recoverUser recovers one user's drops in this process.
func recoverUser(opts *compat.Options, lookup lookupFunc, name string, log platform.Logger, out io.Writer) int {
	a, err := lookup(name)
	if err != nil {
		fmt.Fprintf(out, "%s: not recovered: no such account (%v)\n", name, err)
		return 1
	}
	cfg := spoolConfig(opts, a, log)
	res, err := spool.Recover(cfg)
	if err != nil {
		fmt.Fprintf(out, "%s: not recovered: %v\n", name, err)
		log.Notice(compat.RecoveryFailedLine(cfg.TempDrop, err))
		return 1
	}
	if !res.Found {
		fmt.Fprintf(out, "%s: no leftover temp drop\n", name)
		return 0
	}
	fmt.Fprintf(out, "%s: %s: %s\n", name, cfg.TempDrop, res)
	log.Notice(compat.RecoveredLine(cfg.TempDrop, name, res.String()))
	return 0
}

// runListUIDs prints the UIDL list popper would serve for a user's spool,
// so an admin can compare it with qpopper's before switching. It reads the
// spool without changing it.
func runListUIDs(opts *compat.Options, inv *compat.Invocation, name string, out io.Writer) int {
	accounts, err := sweepAccounts(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "popper --list-uids:", err)
		return 1
	}
	a, err := accounts.lookup(name)
	if err != nil {
		fmt.Fprintln(os.Stderr, "popper --list-uids:", err)
		return 1
	}
	cfg := spoolConfig(opts, a, nopLogger{})
	if platform.IsRoot() {
		// Read the spool as its user: a spool another user replaced by a
		// link to root's files must not be read with root's privileges.
		if err := platform.DropToUser(a.UID, a.GID, spoolGroup(opts, cfg)); err != nil {
			fmt.Fprintln(os.Stderr, "popper --list-uids:", err)
			return 1
		}
	}
	var f *os.File
	err = platform.AsSpoolGroup(func() (err error) { f, err = spool.OpenSpoolForReading(cfg.Spool, a.UID); return err })
	if err != nil {
		fmt.Fprintln(os.Stderr, "popper --list-uids:", err)
		return 1
	}
	defer f.Close()
	popt := cfg.Parse
	popt.FromSpool = !opts.ServerMode
	d, err := spool.Parse(f, popt)
	if err != nil {
		fmt.Fprintln(os.Stderr, "popper --list-uids:", err)
		return 1
	}
	n := 0
	for _, m := range d.Msgs {
		if m.Hidden {
			continue
		}
		n++
		mark := ""
		if !m.UIDFound {
			mark = "  (generated: not yet in the spool, changes until a session writes it back)"
		}
		fmt.Fprintf(out, "%d %s %d%s\n", n, m.UID, m.Size, mark)
	}
	return 0
}
