// Command popauth manages popper's APOP secret database, in the shape of
// qpopper's popauth:
//
//	popauth [-f CONFIG | -db PATH] -init
//	popauth [-f CONFIG | -db PATH] -list [NAME]
//	popauth [-f CONFIG | -db PATH] -user NAME [SECRET]
//	popauth [-f CONFIG | -db PATH] -delete NAME
//	popauth [-f CONFIG | -db PATH] -import FILE
//	popauth
//
// It is installed setuid root, as qpopper's was, so that users can set
// their own secret. The real uid decides what a caller may do: root
// anything, anyone else only their own entry, in the database at the
// built-in path. Root may name another database with -db, or a popper
// configuration file whose apop-db option names it with -f. See
// popauth(8).
package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/popperd/popper/auth"
	"github.com/popperd/popper/compat"
	"github.com/popperd/popper/platform"
)

// dbPath is the database a caller who is not root always uses, and root
// unless -db names another. A site or a test may build popauth with
// another: go build -ldflags "-X main.dbPath=/usr/local/etc/popper/pop.auth".
var dbPath = auth.DefaultAPOPDB

const usage = `usage: popauth [-f CONFIG | -db PATH] -init
       popauth [-f CONFIG | -db PATH] -list [NAME]
       popauth [-f CONFIG | -db PATH] -user NAME [SECRET]
       popauth [-f CONFIG | -db PATH] -delete NAME
       popauth [-f CONFIG | -db PATH] -import FILE
       popauth              (set your own APOP secret)
`

func main() {
	// Nothing the caller puts in the environment may matter to a setuid
	// program; Go's runtime has already read what it trusts (its secure
	// mode ignores GODEBUG and the like under setuid).
	os.Clearenv()
	// Files we create are root's alone.
	syscall.Umask(0o077)
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// invocation is a parsed command line.
type invocation struct {
	mode     string // "init", "list", "user", "delete", "import" or "" (own secret)
	db       string // -db PATH, "" if not given
	config   string // -f CONFIG, "" if not given
	name     string // operand of -list, -user, -delete
	secret   string // -user NAME SECRET
	hasSecr  bool
	file     string // -import FILE
	wantHelp bool
}

type usageError string

func (e usageError) Error() string { return string(e) }

// parse reads the options (-db, -f) first, then one mode with its
// operands.
func parse(args []string) (*invocation, error) {
	inv := &invocation{}
	i := 0
	for ; i < len(args); i++ {
		switch opt := args[i]; opt {
		case "-db", "-f":
			if i+1 >= len(args) || args[i+1] == "" {
				return nil, usageError(opt + " needs a path")
			}
			if inv.db != "" || inv.config != "" {
				return nil, usageError("-db and -f name the database; give one of them, once")
			}
			i++
			if opt == "-db" {
				inv.db = args[i]
			} else {
				inv.config = args[i]
			}
			continue
		case "-trace":
			return nil, usageError("-trace is not supported")
		}
		break
	}
	rest := args[i:]
	if len(rest) == 0 {
		return inv, nil
	}
	mode, ops := rest[0], rest[1:]
	for i, op := range ops {
		switch {
		case op == "-db" || op == "-f" || op == "-trace":
			return nil, usageError(op + " must come before -init, -list, -user, -delete or -import")
		case mode == "-user" && i == 1, mode == "-import" && op == "-":
			// A secret may begin with '-'; "-" is standard input.
		case strings.HasPrefix(op, "-"):
			return nil, usageError(fmt.Sprintf("unexpected %s after %s", op, mode))
		}
	}
	arity := func(min, max int) error {
		if len(ops) < min || len(ops) > max {
			return usageError(fmt.Sprintf("wrong number of arguments after %s", mode))
		}
		return nil
	}
	var err error
	switch mode {
	case "-h", "-help", "--help":
		inv.wantHelp = true
		return inv, nil
	case "-init":
		inv.mode, err = "init", arity(0, 0)
	case "-list":
		inv.mode, err = "list", arity(0, 1)
		if len(ops) == 1 {
			inv.name = ops[0]
		}
	case "-user":
		inv.mode, err = "user", arity(1, 2)
		if len(ops) >= 1 {
			inv.name = ops[0]
		}
		if len(ops) == 2 {
			inv.secret, inv.hasSecr = ops[1], true
		}
	case "-delete":
		inv.mode, err = "delete", arity(1, 1)
		if len(ops) == 1 {
			inv.name = ops[0]
		}
	case "-import":
		inv.mode, err = "import", arity(1, 1)
		if len(ops) == 1 {
			inv.file = ops[0]
		}
	case "-db", "-f", "-trace":
		return nil, usageError(mode + " must come before -init, -list, -user, -delete or -import")
	default:
		return nil, usageError(fmt.Sprintf("unknown option %q", mode))
	}
	if err != nil {
		return nil, err
	}
	if inv.name != "" || inv.mode == "user" || inv.mode == "delete" {
		if err := auth.CheckAPOPName(inv.name); err != nil {
			return nil, err
		}
	}
	return inv, nil
}

// caller is who runs popauth: the real uid, whatever the effective one.
type caller struct {
	uid  int
	name string // from the password database; "" when it has none
}

func (c caller) root() bool { return c.uid == 0 }

func whoCalls() caller {
	c := caller{uid: syscall.Getuid()}
	if u, err := user.LookupId(strconv.Itoa(c.uid)); err == nil {
		c.name = u.Username
	}
	return c
}

// env is where run reads and writes, and who called.
type env struct {
	stdin          *os.File
	stdout, stderr io.Writer
	who            caller
}

func run(args []string, stdin *os.File, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, who: whoCalls()}
	inv, err := parse(args)
	if err != nil {
		fmt.Fprintf(stderr, "popauth: %v\n", err)
		if _, ok := err.(usageError); ok {
			fmt.Fprint(stderr, usage)
		}
		return 1
	}
	if inv.wantHelp {
		fmt.Fprint(stdout, usage)
		return 0
	}
	if err := e.allowed(inv); err != nil {
		fmt.Fprintf(stderr, "popauth: %v\n", err)
		return 1
	}
	path := dbPath
	switch {
	case inv.db != "":
		path = inv.db
	case inv.config != "":
		if path, err = configuredDB(inv.config); err != nil {
			fmt.Fprintf(stderr, "popauth: %v\n", err)
			return 1
		}
	}
	if err := e.do(inv, path); err != nil {
		fmt.Fprintf(stderr, "popauth: %v\n", hint(err))
		return 1
	}
	return 0
}

// allowed decides, from the real uid alone, whether the caller may do
// what inv asks. It runs before any file is opened.
func (e *env) allowed(inv *invocation) error {
	if e.who.root() {
		if inv.mode == "" {
			return errors.New("root does not log in by APOP; name a user: popauth -user NAME")
		}
		return nil
	}
	me := e.who.name
	switch {
	case inv.db != "":
		return errors.New("only root may name a database (-db)")
	case inv.config != "":
		return errors.New("only root may name a configuration file (-f)")
	case inv.mode == "init":
		return errors.New("only root may create the database (-init)")
	case inv.mode == "import":
		return errors.New("only root may import secrets (-import)")
	case me == "":
		return fmt.Errorf("your uid %d has no user name in the password database", e.who.uid)
	case inv.hasSecr:
		return errors.New("only root may give a secret on the command line, where every user can see it in ps; " +
			"leave it out and type it, or send it on standard input")
	case inv.name != "" && inv.name != me:
		return fmt.Errorf("you may change or list only your own entry (%s), not %s", me, inv.name)
	}
	if err := auth.CheckAPOPName(me); err != nil {
		return fmt.Errorf("your user name cannot be in the APOP database: %v", err)
	}
	return nil
}

func (e *env) do(inv *invocation, path string) error {
	switch inv.mode {
	case "init":
		return e.init(path)
	case "list":
		return e.list(path, inv.name)
	case "user", "":
		name := inv.name
		if inv.mode == "" {
			name = e.who.name
		}
		secret := inv.secret
		if !inv.hasSecr {
			var err error
			if secret, err = e.readSecret(name); err != nil {
				return err
			}
		}
		if err := auth.CheckAPOPSecret(secret); err != nil {
			return fmt.Errorf("%v; nothing changed", err)
		}
		err := auth.UpdateAPOPDB(path, func(s map[string]string) error {
			s[name] = secret
			return nil
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "popauth: APOP secret of %s set\n", name)
		return nil
	case "delete":
		err := auth.UpdateAPOPDB(path, func(s map[string]string) error {
			if _, ok := s[inv.name]; !ok {
				return fmt.Errorf("%s has no APOP secret in %s", inv.name, path)
			}
			delete(s, inv.name)
			return nil
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "popauth: APOP secret of %s deleted\n", inv.name)
		return nil
	case "import":
		return e.importFile(path, inv.file)
	}
	return fmt.Errorf("internal error: mode %q", inv.mode)
}

// configuredDB reads a popper configuration file (root's choice) for its
// apop-db option, as popper would.
func configuredDB(config string) (string, error) {
	opts := compat.DefaultOptions()
	open := func(p string) (io.ReadCloser, error) { return os.Open(p) }
	if errs := compat.LoadConfig(config, open, opts, compat.Init); len(errs) > 0 {
		var msgs []string
		for _, e := range errs {
			msgs = append(msgs, e.Error())
		}
		return "", fmt.Errorf("%s: %s", config, strings.Join(msgs, "; "))
	}
	if opts.APOPDB == "" {
		return "", fmt.Errorf("%s sets apop-db to empty: popper offers no APOP, so there is no database", config)
	}
	return opts.APOPDB, nil
}

// init creates the database, and its directory when that is missing.
func (e *env) init(path string) error {
	dir := filepath.Dir(path)
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err
		}
		// Mkdir's mode is masked by our umask 077.
		if err := os.Chmod(dir, 0o755); err != nil {
			return err
		}
		if err := platform.SyncParent(dir); err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "popauth: created %s\n", dir)
	}
	created, err := auth.InitAPOPDB(path)
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(e.stderr, "popauth: created %s, empty\n", path)
		return nil
	}
	db, err := auth.OpenAPOPDB(path)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "popauth: %s exists with %d entries; left as it is\n", path, len(db.Names()))
	return nil
}

// list prints the names with a secret, or only name.
func (e *env) list(path, name string) error {
	if name == "" && !e.who.root() {
		name = e.who.name
	}
	db, err := auth.OpenAPOPDB(path)
	if err != nil {
		return err
	}
	if name != "" {
		if _, ok := db.Secret(name); !ok {
			return fmt.Errorf("%s has no APOP secret", name)
		}
		fmt.Fprintln(e.stdout, name)
		return nil
	}
	for _, n := range db.Names() {
		fmt.Fprintln(e.stdout, n)
	}
	return nil
}

// importFile merges the entries of file, in the database format, into the
// database: an imported name replaces the entry it has.
func (e *env) importFile(path, file string) error {
	var r io.Reader = e.stdin
	name := "standard input"
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		r, name = f, file
	}
	in, err := auth.ParseAPOPDB(r, name)
	if err != nil {
		return err
	}
	var added, replaced, same int
	err = auth.UpdateAPOPDB(path, func(s map[string]string) error {
		added, replaced, same = 0, 0, 0
		for _, n := range in.Names() {
			secret, _ := in.Secret(n)
			old, ok := s[n]
			switch {
			case !ok:
				added++
			case old == secret:
				same++
			default:
				replaced++
			}
			s[n] = secret
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "popauth: imported %d entries from %s: %d new, %d replaced, %d unchanged\n",
		added+replaced+same, name, added, replaced, same)
	return nil
}

// readSecret reads a secret: twice without echo from a terminal, or one
// line from standard input otherwise.
func (e *env) readSecret(name string) (string, error) {
	fd := int(e.stdin.Fd())
	if !platform.IsTerminal(fd) {
		line, err := readLine(e.stdin)
		if err != nil {
			return "", err
		}
		return line, nil
	}
	first, err := e.prompt(fd, fmt.Sprintf("New APOP secret for %s: ", name))
	if err != nil {
		return "", err
	}
	if err := auth.CheckAPOPSecret(first); err != nil {
		return "", fmt.Errorf("%v; nothing changed", err)
	}
	again, err := e.prompt(fd, "Retype the secret: ")
	if err != nil {
		return "", err
	}
	if first != again {
		return "", errors.New("the two secrets do not match; nothing changed")
	}
	return first, nil
}

// prompt reads one line from the terminal with echo off, and puts the
// terminal back even when a signal ends popauth meanwhile.
func (e *env) prompt(fd int, text string) (string, error) {
	fmt.Fprint(e.stderr, text)
	restore, err := platform.EchoOff(fd)
	if err != nil {
		return "", err
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	done := make(chan struct{})
	go func() {
		select {
		case <-sigs:
			restore()
			fmt.Fprintln(e.stderr)
			os.Exit(1)
		case <-done:
		}
	}()
	line, err := readLine(e.stdin)
	close(done)
	signal.Stop(sigs)
	restore()
	return line, err
}

// readLine reads up to a newline, one byte at a time so that nothing after
// it is consumed. The newline is not part of the line; a line longer than
// any secret is refused.
func readLine(f *os.File) (string, error) {
	var b bytes.Buffer
	one := make([]byte, 1)
	for {
		n, err := f.Read(one)
		if n == 1 {
			if one[0] == '\n' {
				return b.String(), nil
			}
			if b.Len() > auth.MaxAPOPSecret {
				return "", fmt.Errorf("secret longer than %d bytes; nothing changed", auth.MaxAPOPSecret)
			}
			b.WriteByte(one[0])
		}
		if err == io.EOF {
			return b.String(), nil
		}
		if err != nil {
			return "", err
		}
	}
}

// hint adds what to do to the errors an administrator meets first.
func hint(err error) error {
	switch {
	case errors.Is(err, fs.ErrPermission) && os.Geteuid() != 0:
		return fmt.Errorf("%w (popauth must be installed setuid root: install -o root -m 4755)", err)
	}
	return err
}
