package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/popperd/popper/auth"
	"github.com/popperd/popper/compat"
	"github.com/popperd/popper/platform"
)

// sourceName is the account source the options choose: auth-source, or
// by default the userdb when one is named and the system otherwise.
func sourceName(opts *compat.Options) string {
	if opts.AuthSource != "default" {
		return opts.AuthSource
	}
	if opts.UserDB != "" {
		return "userdb"
	}
	return "system"
}

// accountSource builds the configured source of accounts and passwords.
func accountSource(opts *compat.Options, client auth.Client) (auth.Source, error) {
	switch name := sourceName(opts); name {
	case "userdb":
		if opts.UserDB == "" {
			return nil, fmt.Errorf("auth-source userdb needs popper-userdb (or --userdb)")
		}
		return auth.OpenUserDB(opts.UserDB)
	case "system":
		return &auth.System{Files: auth.DefaultSystemFiles(), CheckPasswordExpired: opts.CheckPasswordExpired}, nil
	case "pam":
		return auth.NewPAM(opts.PAMService, client, auth.LookupSystem)
	case "checkpassword":
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("checkpassword: cannot find popper's own path: %v", err)
		}
		return &auth.Checkpassword{Argv: strings.Fields(opts.Checkpassword),
			Reporter: []string{exe, auth.IdentityFlag}, Client: client}, nil
	default:
		return nil, fmt.Errorf("unknown auth-source %q", name)
	}
}

// apopOpener opens the APOP database at each use, or is nil when apop-db
// is empty.
func apopOpener(opts *compat.Options) func() (auth.Secrets, error) {
	if opts.APOPDB == "" {
		return nil
	}
	path := opts.APOPDB
	return func() (auth.Secrets, error) {
		db, err := auth.OpenAPOPDB(path)
		if err != nil {
			return nil, err
		}
		return db, nil
	}
}

// apopOffered tells whether the greeting carries an APOP timestamp:
// only while the database exists (clients such as curl use APOP whenever
// they see one, and could not log in otherwise).
func apopOffered(opts *compat.Options) bool {
	if opts.APOPDB == "" {
		return false
	}
	_, err := os.Lstat(opts.APOPDB)
	return err == nil
}

// loginPolicy is qpopper's login policy for one connection.
func loginPolicy(opts *compat.Options, src auth.Source, client auth.Client, log platform.Logger) *auth.Policy {
	return &auth.Policy{
		Source:      src,
		OpenAPOP:    apopOpener(opts),
		ClearText:   opts.ClearTextPassword,
		AuthFile:    opts.AuthFile,
		NonauthFile: opts.NonauthFile,
		Delay:       opts.AuthDelay,
		MaxFailures: opts.MaxAuthFailures,
		Client:      client,
		Notice:      log.Notice,
		Info:        log.Info,
		Debug:       log.Debug,
	}
}

// authProblems lists what would make logins fail, for --check-config: a
// source that cannot be built or reports problems, and an APOP database
// that is there but cannot be used.
func authProblems(opts *compat.Options) []string {
	var out []string
	src, err := accountSource(opts, auth.Client{})
	if err != nil {
		out = append(out, err.Error())
	} else {
		for _, p := range src.Problems() {
			out = append(out, p.Error())
		}
	}
	if opts.APOPDB != "" {
		// A missing file only means no APOP, unless qpopper's database
		// lies beside it (popauth -import carries it over).
		_, err := auth.OpenAPOPDB(opts.APOPDB)
		if err != nil && (!errors.Is(err, fs.ErrNotExist) || errors.Is(err, auth.ErrQpopperAPOPDB)) {
			out = append(out, fmt.Sprintf(compat.LogAPOPDatabase, err))
		}
	}
	return out
}
