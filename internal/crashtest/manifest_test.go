package crashtest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testMbox = "From a@example.org Sat Nov 28 10:00:00 2026\n" +
	"From: a@example.org\nMessage-ID: <1@t>\nSubject: one\n\nbody one\n\n" +
	"From b@example.org Sat Nov 28 10:01:00 2026\n" +
	"From: b@example.org\nMessage-ID: <2@t>\nStatus: U\nSubject: two\n\nbody two\nFrom the text, not a separator\n\n" +
	"From c@example.org Sat Nov 28 10:02:00 2026\n" +
	"From: c@example.org\nMessage-ID: <3@t>\nSubject: three\n\nbody three\n\n"

func kinds(ps []Problem) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.Kind+" "+p.MessageID)
	}
	return strings.Join(s, "; ")
}

func checkFiles(t *testing.T, files map[string]string, m Manifest) []Problem {
	t.Helper()
	dir := t.TempDir()
	for n, d := range files {
		os.WriteFile(filepath.Join(dir, n), []byte(d), 0o600)
	}
	ps, err := Check(dir, m)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

func TestSplitMbox(t *testing.T) {
	msgs, junk := SplitMbox("x", []byte(testMbox))
	if junk != 0 || len(msgs) != 3 {
		t.Fatalf("%d messages, %d junk", len(msgs), junk)
	}
	if msgs[1].MessageID != "<2@t>" || msgs[2].End != int64(len(testMbox)) {
		t.Errorf("%+v", msgs)
	}
	_, junk = SplitMbox("x", []byte("\x00\x00\x00\x00"))
	if junk != 4 {
		t.Errorf("NUL file: junk %d", junk)
	}
}

func TestCheckClean(t *testing.T) {
	m, err := ManifestOf([]byte(testMbox), MustSurvive)
	if err != nil {
		t.Fatal(err)
	}
	// Rewritten as qpopper does (X-UIDL added, Status changed) and split
	// over spool and temp drop: still clean.
	msgs, _ := SplitMbox("", []byte(testMbox))
	var spool, temp string
	for i, msg := range msgs {
		b := rewriteMessage([]byte(testMbox[msg.Start:msg.End]), true)
		if i == 0 {
			temp += string(b)
		} else {
			spool += string(b)
		}
	}
	if ps := checkFiles(t, map[string]string{"u": spool, ".u.pop": temp, "u.lock": "123@host"}, m); len(ps) != 0 {
		t.Errorf("clean drop: %v", ps)
	}
}

func TestCheckFindsEachProblem(t *testing.T) {
	m, _ := ManifestOf([]byte(testMbox), MustSurvive)
	msgs, _ := SplitMbox("", []byte(testMbox))
	one := testMbox[msgs[0].Start:msgs[0].End]
	two := testMbox[msgs[1].Start:msgs[1].End]
	three := testMbox[msgs[2].Start:msgs[2].End]

	ps := checkFiles(t, map[string]string{"u": one + three}, m)
	if kinds(ps) != "lost <2@t>" {
		t.Errorf("lost: %v", ps)
	}
	ps = checkFiles(t, map[string]string{"u": one + two + three, ".u.pop": one}, m)
	if kinds(ps) != "duplicated <1@t>" || !strings.Contains(ps[0].String(), ".u.pop@0") {
		t.Errorf("duplicated: %v", ps)
	}
	ps = checkFiles(t, map[string]string{"u": one + strings.Replace(two, "body two", "body 2", 1) + three}, m)
	if kinds(ps) != "corrupted <2@t>; lost <2@t>" {
		t.Errorf("corrupted: %v", ps)
	}
	ps = checkFiles(t, map[string]string{"u": one + two + three}, m.Set("<3@t>", MustGo))
	if kinds(ps) != "resurrected <3@t>" {
		t.Errorf("resurrected: %v", ps)
	}
	if ps = checkFiles(t, map[string]string{"u": one + two}, m.Set("<3@t>", MayGo)); len(ps) != 0 {
		t.Errorf("may-go message gone: %v", ps)
	}
	ps = checkFiles(t, map[string]string{"u": one + two, ".u.pop.unparsed-1": three}, m)
	if kinds(ps) != "quarantined <3@t>" {
		t.Errorf("quarantined: %v", ps)
	}
	ps = checkFiles(t, map[string]string{"u": "garbage\n\n" + one + two + three}, m)
	if kinds(ps) != "junk " {
		t.Errorf("junk: %v", ps)
	}
	ps = checkFiles(t, map[string]string{"u": one + two + three + strings.Replace(one, "<1@t>", "<9@t>", 1)}, m)
	if kinds(ps) != "unexpected <9@t>" {
		t.Errorf("unexpected: %v", ps)
	}
}

func TestQpopperFixtures(t *testing.T) {
	fx, err := QpopperFixtures([]byte(testMbox), "u")
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Fixture{}
	for _, f := range fx {
		byName[f.Name] = f
	}
	check := func(name string) []Problem {
		f, ok := byName[name]
		if !ok {
			t.Fatalf("no fixture %s", name)
		}
		files := map[string]string{}
		for n, d := range f.Files {
			files[n] = string(d)
		}
		return checkFiles(t, files, f.Manifest)
	}
	// Each fixture is as bad as its window says, before any recovery.
	if ps := check("W0-session-leftover"); len(ps) != 0 {
		t.Errorf("W0: %v", ps)
	}
	if ps := check("W1-empty-tempdrop+mda"); len(ps) != 0 {
		t.Errorf("W1-empty: everything already lost, nothing to find: %v", ps)
	}
	if ps := check("W1-zero-tempdrop+mda"); kinds(ps) != "junk " {
		t.Errorf("W1-zero: %v", ps)
	}
	if ps := check("W3-full-rewrite"); !strings.Contains(kinds(ps), "duplicated <2@t>") || !strings.Contains(kinds(ps), "duplicated <3@t>") {
		t.Errorf("W3-full-rewrite: %v", ps)
	}
	if ps := check("W3-partial-rewrite+mda"); !strings.Contains(kinds(ps), "corrupted") {
		t.Errorf("W3-partial: torn copy not seen: %v", ps)
	}
	short := byName["W1-short-tempdrop+mda"]
	// The short copy ends inside message 2: message 1 is whole (but was
	// DELEd), 2 is torn, 3 is gone; the mail that came after survives.
	var fates []string
	for _, e := range short.Manifest {
		fates = append(fates, fmt.Sprintf("%s %s %v", e.MessageID, e.Fate, e.MayBeDamaged))
	}
	want := "<1@t> may-go false|<2@t> may-go true|<3@t> may-go false|<after-crash@crashtest> must-survive false"
	if len(short.Manifest) > 4 {
		t.Errorf("a fragment allowance without a nameless fragment: %+v", short.Manifest[4])
	}
	if strings.Join(fates, "|") != want {
		t.Errorf("W1-short manifest:\n%s\nwant\n%s", strings.Join(fates, "|"), want)
	}
	if _, err := QpopperFixtures([]byte("not an mbox"), "u"); err == nil {
		t.Error("garbage spool accepted")
	}
}
