package compat

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func parseArgs(t *testing.T, args ...string) (*Options, *Invocation, error) {
	t.Helper()
	o := DefaultOptions()
	inv, err := ParseArgs(args, o, func(path string) []*ConfigError {
		return LoadConfig(path, osOpen, o, Init)
	})
	return o, inv, err
}

// TestEveryFlag checks the effect of each qpopper letter, glued and
// separate.
func TestEveryFlag(t *testing.T) {
	tests := []struct {
		args  []string
		check func(o *Options, inv *Invocation) bool
	}{
		{[]string{"-b", "/var/spool/bulls"}, func(o *Options, inv *Invocation) bool {
			return o.BullDir == "/var/spool/bulls" && len(inv.Unsupported) == 0
		}},
		{[]string{"-B"}, func(o *Options, inv *Invocation) bool { return o.BullDBNonfatal && len(inv.Unsupported) == 1 }},
		{[]string{"-c"}, func(o *Options, _ *Invocation) bool { return o.DowncaseUser }},
		{[]string{"-C"}, func(o *Options, _ *Invocation) bool { return o.TrimDomain }},
		{[]string{"-d"}, func(o *Options, _ *Invocation) bool { return o.Debug }},
		{[]string{"-Ddrac.example.org"}, func(o *Options, inv *Invocation) bool {
			return o.DracHost == "drac.example.org" && len(inv.Unsupported) == 1
		}},
		{[]string{"-e", "login_delay=300,expire=30"}, func(o *Options, _ *Invocation) bool {
			return o.AnnounceLoginDelay == 300 && o.AnnounceExpire == 30
		}},
		{[]string{"-eexpire"}, func(o *Options, _ *Invocation) bool { return o.AnnounceExpire == -1 && o.AnnounceLoginDelay == 0 }},
		{[]string{"-e", "login_delay,expire=0"}, func(o *Options, _ *Invocation) bool {
			return o.AnnounceLoginDelay == -1 && o.AnnounceExpire == 0
		}},
		{[]string{"-F"}, func(o *Options, _ *Invocation) bool { return o.FastUpdate }},
		{[]string{"-k"}, func(o *Options, inv *Invocation) bool { return o.Kerberos && len(inv.Unsupported) == 1 }},
		{[]string{"-K", "pop3"}, func(o *Options, inv *Invocation) bool {
			return o.KerberosService == "pop3" && len(inv.Unsupported) == 1
		}},
		{[]string{"-l0"}, func(o *Options, inv *Invocation) bool { return o.TLSSupport == "none" && len(inv.ConfigErrors) == 0 }},
		{[]string{"-l", "1", "-f", "testdata/tls.config"}, func(o *Options, inv *Invocation) bool {
			return o.TLSSupport == "STLS" && len(inv.ConfigErrors) == 0
		}},
		{[]string{"-l2", "-p", "4"}, func(o *Options, inv *Invocation) bool {
			return o.TLSSupport == "alternate-port" && o.ClearTextPassword == "TLS" && len(inv.ConfigErrors) == 1 &&
				strings.Contains(inv.ConfigErrors[0].Text, "neither tls-server-cert-file nor tls-identity-file is set")
		}},
		{[]string{"-L", "100"}, func(o *Options, _ *Invocation) bool { return o.MailLockCheck == 100 }},
		{[]string{"-p0"}, func(o *Options, _ *Invocation) bool { return o.ClearTextPassword == "default" }},
		{[]string{"-p1"}, func(o *Options, _ *Invocation) bool { return o.ClearTextPassword == "never" }},
		{[]string{"-p2"}, func(o *Options, _ *Invocation) bool { return o.ClearTextPassword == "always" }},
		{[]string{"-p", "3"}, func(o *Options, _ *Invocation) bool { return o.ClearTextPassword == "local" }},
		{[]string{"-R"}, func(o *Options, _ *Invocation) bool { return o.NoReverseLookup }},
		{[]string{"-s"}, func(o *Options, _ *Invocation) bool { return o.Statistics }},
		{[]string{"-S"}, func(o *Options, _ *Invocation) bool { return o.ServerMode }},
		{[]string{"-sS"}, func(o *Options, _ *Invocation) bool { return o.Statistics && o.ServerMode }},
		{[]string{"-t", "/tmp/trace"}, func(o *Options, _ *Invocation) bool { return o.TraceFile == "/tmp/trace" && o.Debug }},
		{[]string{"-T600"}, func(o *Options, _ *Invocation) bool { return o.Timeout == 600*time.Second }},
		{[]string{"-T", "600"}, func(o *Options, inv *Invocation) bool { return o.Timeout == 600*time.Second && inv.Address == "" }},
		{[]string{"-sT", "30"}, func(o *Options, _ *Invocation) bool { return o.Statistics && o.Timeout == 30*time.Second }},
		{[]string{"-u"}, func(o *Options, _ *Invocation) bool { return o.UserOptions }},
		{[]string{"-U"}, func(o *Options, _ *Invocation) bool { return o.SpoolOptions }},
		{[]string{"-v"}, func(_ *Options, inv *Invocation) bool { return inv.Version }},
		{[]string{"-y", "local4"}, func(o *Options, _ *Invocation) bool { return o.LogFacility == "local4" }},
		{[]string{"-ymail"}, func(o *Options, _ *Invocation) bool { return o.LogFacility == "mail" }},
		{[]string{"-V"}, func(_ *Options, inv *Invocation) bool {
			return reflect.DeepEqual(inv.Unsupported, []string{"flag -V (qpopper 4.1) ignored"})
		}},
		{[]string{"-x", "-s"}, func(o *Options, inv *Invocation) bool { return o.Statistics && len(inv.Unsupported) == 1 }},
		{[]string{"-f", "testdata/qpopper.config"}, func(o *Options, inv *Invocation) bool {
			return o.Timeout == 600*time.Second && o.Statistics && len(inv.ConfigErrors) == 0 &&
				reflect.DeepEqual(inv.ConfigFiles, []string{"testdata/qpopper.config"})
		}},
		// Left to right: -f overrides earlier flags, later flags override -f.
		{[]string{"-T30", "-ftestdata/qpopper.config"}, func(o *Options, _ *Invocation) bool { return o.Timeout == 600*time.Second }},
		{[]string{"-f", "testdata/qpopper.config", "-T30", "-S"}, func(o *Options, _ *Invocation) bool {
			return o.Timeout == 30*time.Second && o.ServerMode
		}},
		{[]string{"-f", "testdata/missing.config"}, func(_ *Options, inv *Invocation) bool {
			return len(inv.ConfigErrors) == 1 && strings.HasPrefix(inv.ConfigErrors[0].Text, "Unable to open configuration file testdata/missing.config")
		}},
	}
	for _, tt := range tests {
		o, inv, err := parseArgs(t, tt.args...)
		if err != nil {
			t.Errorf("%q: %v", tt.args, err)
			continue
		}
		if !tt.check(o, inv) {
			t.Errorf("%q: wrong effect: %+v\n%+v", tt.args, o, inv)
		}
	}
}

func TestFlagErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-Z"}, `unknown option -- "Z"`},
		{[]string{"-sZ"}, `unknown option -- "Z"`},
		{[]string{"-T"}, `option requires an argument -- "T"`},
		{[]string{"-T", "abc"}, `-T needs a number, found "abc"`},
		{[]string{"-T", "-5"}, `bad value for -T: "-5"`},
		{[]string{"-l3"}, `-l needs 0 to 2, found "3"`},
		{[]string{"-p5"}, `-p needs 0 to 4, found "5"`},
		{[]string{"-y", "kern"}, `-y: unrecognized log facility "kern"`},
		{[]string{"-e", "delay=3"}, `-e: unknown key "delay"`},
		{[]string{"-e", "expire=x"}, `-e expire: "x" is not a number`},
		{[]string{"--nosuch"}, `unknown option --nosuch`},
		{[]string{"--listen"}, `option --listen needs a value`},
		{[]string{"--demo=1"}, `option --demo takes no value`},
		{[]string{"--print-config=xml"}, `--print-config=xml: the format is qpopper or toml`},
		{[]string{"8110", "8111"}, `more than one address argument`},
		{[]string{"not/an/address"}, `bad address argument "not/an/address"`},
		{[]string{"::1"}, `bad address argument "::1"`},
	}
	for _, tt := range tests {
		_, _, err := parseArgs(t, tt.args...)
		var ue *UsageError
		if !errors.As(err, &ue) {
			t.Errorf("%q: error %v, want a usage error", tt.args, err)
			continue
		}
		if !strings.HasPrefix(ue.Msg, tt.want) {
			t.Errorf("%q: %q, want %q", tt.args, ue.Msg, tt.want)
		}
		if !strings.Contains(err.Error(), "Usage: popper [ [address][:][port] ]") {
			t.Errorf("%q: no usage text in %q", tt.args, err.Error())
		}
	}
}

func TestLongOptionsAndAddress(t *testing.T) {
	o, inv, err := parseArgs(t, "8110", "-S", "-T600", "--userdb", "/etc/popper.users", "--list-uids=bob",
		"--print-config=toml", "--check-config", "--recover", "--version", "--demo", "--listen=127.0.0.1:1110")
	if err != nil {
		t.Fatal(err)
	}
	want := &Invocation{
		Address: ":8110", ChildArgs: []string{"-S", "-T600", "--userdb", "/etc/popper.users", "--list-uids=bob",
			"--print-config=toml", "--check-config", "--recover", "--version", "--demo", "--listen=127.0.0.1:1110"},
		Recover: true, CheckConfig: true, PrintConfig: "toml", Version: true, Demo: true,
		Listen: "127.0.0.1:1110", UserDB: "/etc/popper.users", ListUIDs: "bob",
	}
	if !reflect.DeepEqual(inv, want) {
		t.Errorf("got  %+v\nwant %+v", inv, want)
	}
	if !o.ServerMode || o.UserDB != "/etc/popper.users" {
		t.Errorf("options %+v", o)
	}
	_, inv, _ = parseArgs(t, "--print-config")
	if inv.PrintConfig != "qpopper" {
		t.Errorf("--print-config: %q", inv.PrintConfig)
	}
	_, inv, err = parseArgs(t, "-s", "--", "8110")
	if err != nil || inv.Address != ":8110" {
		t.Errorf("after --: address %v %+v", err, inv)
	}
	if _, _, err = parseArgs(t, "--", "-5"); err == nil {
		t.Error("-5 after -- taken as an address")
	}
}

func TestListenAddress(t *testing.T) {
	tests := []struct{ in, want string }{
		{"110", ":110"}, {":995", ":995"}, {"199.46.50.7", "199.46.50.7:110"},
		{"199.46.50.7:8110", "199.46.50.7:8110"}, {"[::1]", "[::1]:110"}, {"[::1]:8110", "[::1]:8110"},
		{"[2001:db8::5]:995", "[2001:db8::5]:995"}, {"mail.example.org:110", "mail.example.org:110"},
		{"localhost", "localhost:110"},
		{"", ""}, {"0", ""}, {"70000", ""}, {"1.2.3.4:0", ""}, {"[1.2.3.4]", ""}, {"[::1", ""},
		{"[::1]x", ""}, {"a_b", ""}, {"1.2.3.4:x", ""}, {"-s", ""},
	}
	for _, tt := range tests {
		got, err := listenAddress(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("%q: accepted as %q", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%q: %q, %v; want %q", tt.in, got, err, tt.want)
		}
		if !IsAddressArg(tt.in) {
			t.Errorf("IsAddressArg(%q) false", tt.in)
		}
	}
	if IsAddressArg("-s") {
		t.Error("IsAddressArg(-s)")
	}
}

// TestFlagLoadsConfigWithCallerOpen shows -f goes through the caller's
// callback, not a file opened here.
func TestFlagLoadsConfigWithCallerOpen(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.toml")
	os.WriteFile(p, []byte("statistics = true\n"), 0o600)
	var called []string
	o := DefaultOptions()
	inv, err := ParseArgs([]string{"-f", p}, o, func(path string) []*ConfigError {
		called = append(called, path)
		return LoadConfig(path, osOpen, o, Init)
	})
	if err != nil || !o.Statistics || !reflect.DeepEqual(called, []string{p}) || len(inv.ConfigErrors) != 0 {
		t.Errorf("err %v, called %q, options %+v", err, called, o)
	}
}

// TestUsageIsQpoppers holds the usage text made from the option table
// to qpopper's synopsis (its man page; pop_init.c prints the same flags).
func TestUsageIsQpoppers(t *testing.T) {
	want := `Usage: popper [ [address][:][port] ] [-b bulldir] [-B] [-c] [-C] [-d] [-D drac-host]
              [-e login_delay=nn,expire=nn] [-f config-file] [-F] [-k] [-K service]
              [-l0|1|2] [-L lock-check] [-p0|1|2|3|4] [-R] [-s] [-S] [-t trace-file]
              [-T timeout] [-u] [-U] [-v] [-y log-facility]
`
	if !strings.HasPrefix(Usage(), want) {
		t.Errorf("usage:\n%s\nwant it to start with\n%s", Usage(), want)
	}
	// Every letter of qpopper's getopt string takes an argument exactly
	// when qpopper's does.
	const getopt = "b:BcCdD:e:f:FkK:l:L:p:RsSt:T:uUvy:"
	for i := 0; i < len(getopt); i++ {
		if getopt[i] == ':' {
			continue
		}
		want := i+1 < len(getopt) && getopt[i+1] == ':'
		if needs, ok := takesArg(getopt[i]); !ok || needs != want {
			t.Errorf("-%c: takes an argument %v (known %v), want %v", getopt[i], needs, ok, want)
		}
	}
}

func TestWarnings(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "q.config")
	os.WriteFile(cfg, []byte("set clear-text-password = always\nset reverse-lookup = true\nset tls-cipher-list = HIGH\nset max-bulletins = 3\n"), 0o600)
	o := DefaultOptions()
	inv, err := ParseArgs([]string{"-p", "4", "-f", cfg, "-p", "1"}, o, func(p string) []*ConfigError { return LoadConfig(p, osOpen, o, Init) })
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"clear-text-password TLS (-p 4) is undone by always (line 1 of config file " + cfg + "), which allows more: flags and files apply left to right, as in qpopper",
		"reverse-lookup = true (line 2 of config file " + cfg + ") turns host-name lookups off: the option keeps qpopper 4.0.5's inverted sense, in which true means no lookups, as -R",
	}
	if !reflect.DeepEqual(inv.Warnings, want) {
		t.Errorf("warnings\n got %q\nwant %q", inv.Warnings, want)
	}
	wantNo := []string{
		"tls-cipher-list (line 3 of config file " + cfg + ") has no effect: TLS is not used (tls-support none, clear-text-password not TLS)",
		"max-bulletins (line 4 of config file " + cfg + ") has no effect: no bulletins without bulldir",
	}
	if !reflect.DeepEqual(inv.Ineffective, wantNo) {
		t.Errorf("ineffective\n got %q\nwant %q", inv.Ineffective, wantNo)
	}
	// A stricter later setting, and -R, warn of nothing.
	o = DefaultOptions()
	inv, _ = ParseArgs([]string{"-p", "2", "-p", "1", "-R"}, o, nil)
	if len(inv.Warnings) != 0 || len(inv.Ineffective) != 0 {
		t.Errorf("warnings %q, ineffective %q", inv.Warnings, inv.Ineffective)
	}
}

func TestFailedConfigFiles(t *testing.T) {
	dir := t.TempDir()
	good, bad, nested := filepath.Join(dir, "good"), filepath.Join(dir, "bad"), filepath.Join(dir, "nested")
	os.WriteFile(good, []byte("set statistics\n"), 0o600)
	os.WriteFile(nested, []byte("set nosuch\n"), 0o600)
	os.WriteFile(bad, []byte("set config-file = "+nested+"\n"), 0o600)
	o := DefaultOptions()
	inv, err := ParseArgs([]string{"-f", good, "-f", bad}, o, func(p string) []*ConfigError { return LoadConfig(p, osOpen, o, Init) })
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(inv.FailedConfigFiles, []string{bad}) || len(inv.ConfigErrors) != 1 {
		t.Errorf("failed files %q, errors %v", inv.FailedConfigFiles, inv.ConfigErrors)
	}
}

// A file that spells out a default (qpopper's sample sets tls-version
// default) is not told its setting does nothing.
func TestIneffectiveSkipsDefaults(t *testing.T) {
	o := DefaultOptions()
	ParseConfig(strings.NewReader("set tls-version = default\nset max-bulletins = 1\n"), "f", nil, o, Init)
	if got := o.Ineffective(); len(got) != 0 {
		t.Errorf("%q", got)
	}
}
