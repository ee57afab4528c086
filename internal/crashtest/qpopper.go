package crashtest

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"strings"
)

// Fixture is a spool directory as qpopper 4.0.5 leaves it after a crash,
// with the manifest recovery must meet.
type Fixture struct {
	Name     string            // e.g. "W3-partial-rewrite+mda"
	Files    map[string][]byte // by file name in the spool directory
	Manifest Manifest
	Note     string // what qpopper did and what is still recoverable
}

// qpopperSim holds a spool's messages and what a qpopper session did to
// them: the first message is DELEd and every message RETRieved, and one
// message arrives during the session.
type qpopperSim struct {
	user    string
	orig    []byte   // spool at login
	msgs    [][]byte // its messages
	deleted []bool
	newMail []byte // delivered to the spool during the session
	manif   Manifest
}

// mdaMessage builds a message as a delivery agent would append it.
func mdaMessage(id string) []byte {
	return []byte("From mda@example.org Sat Nov 28 22:00:00 2026\n" +
		"From: mda@example.org\nTo: user\nSubject: " + id + "\n" +
		"Message-ID: <" + id + "@crashtest>\n\nbody of " + id + "\nsecond line\n\n")
}

// mdaAppend appends msg to spool the way a careful MDA does: a blank line
// first when the spool does not end with one, so that its From_ line is
// a separator even after a torn rewrite.
func mdaAppend(spool, msg []byte) []byte {
	out := append([]byte(nil), spool...)
	switch {
	case len(out) == 0, bytes.HasSuffix(out, []byte("\n\n")):
	case bytes.HasSuffix(out, []byte("\n")):
		out = append(out, '\n')
	default:
		out = append(out, '\n', '\n')
	}
	return append(out, msg...)
}

// nulToSpace is qpopper's mfgets: NUL bytes become spaces in the copy.
func nulToSpace(b []byte) []byte {
	return bytes.ReplaceAll(b, []byte{0}, []byte{' '})
}

// rewriteMessage is qpopper's update copy of one kept message
// (doc/qpopper.md, "Update at QUIT"): separator, X-UIDL: line, the header without X-UIDL: lines,
// Status: RO when retrieved, then the rest.
func rewriteMessage(m []byte, retrieved bool) []byte {
	nl := bytes.IndexByte(m, '\n')
	sep, rest := m[:nl+1], m[nl+1:]
	sum := md5.Sum(m)
	var b bytes.Buffer
	b.Write(sep)
	b.WriteString("X-UIDL: " + hex.EncodeToString(sum[:])[:24] + "\n")
	hadStatus := false
	inHeader, skipping := true, false
	for len(rest) > 0 {
		i := bytes.IndexByte(rest, '\n')
		line := rest
		if i >= 0 {
			line = rest[:i+1]
		}
		rest = rest[len(line):]
		if !inHeader {
			b.Write(line)
			continue
		}
		if string(line) == "\n" {
			if !hadStatus {
				if retrieved {
					b.WriteString("Status: RO\n")
				} else {
					b.WriteString("Status: U\n")
				}
			}
			inHeader = false
			b.Write(line)
			continue
		}
		if skipping && (line[0] == ' ' || line[0] == '\t') {
			continue
		}
		skipping = false
		lower := strings.ToLower(string(line))
		switch {
		case strings.HasPrefix(lower, "x-uidl:"):
			skipping = true
			continue
		case strings.HasPrefix(lower, "status:") && retrieved:
			hadStatus = true
			b.WriteString("Status: RO\n")
			skipping = true
			continue
		case strings.HasPrefix(lower, "status:"):
			hadStatus = true
		}
		b.Write(line)
	}
	return b.Bytes()
}

// kept is the rewrite of every non-deleted message, in order.
func (q *qpopperSim) kept() []byte {
	var b bytes.Buffer
	for i, m := range q.msgs {
		if !q.deleted[i] {
			kept := mdaAppend(b.Bytes(), rewriteMessage(m, true))
			b.Reset()
			b.Write(kept)
		}
	}
	return b.Bytes()
}

// QpopperFixtures simulates qpopper 4.0.5 on spool (an mbox whose
// messages all carry distinct Message-IDs) for user and returns the spool
// directory it leaves at each crash window (doc/crash-model.md). In every
// fixture the session DELEd the first message (when there are two or
// more) and never sent QUIT +OK, so that message may go or stay; a
// message arrived during the session, and in the "+mda" fixtures another
// arrived after the crash. Messages qpopper itself destroyed are marked
// MayGo (nothing can bring them back); every other message must survive
// exactly once.
func QpopperFixtures(spool []byte, user string) ([]Fixture, error) {
	manif, err := ManifestOf(spool, MustSurvive)
	if err != nil {
		return nil, err
	}
	msgs, _ := SplitMbox("", spool)
	q := &qpopperSim{user: user, orig: spool, manif: manif, deleted: make([]bool, len(msgs))}
	for _, m := range msgs {
		q.msgs = append(q.msgs, spool[m.Start:m.End])
	}
	if len(msgs) >= 2 {
		q.deleted[0] = true
		manif = manif.Set(msgs[0].MessageID, MayGo)
	}
	q.newMail = mdaMessage("during-session")
	during, _ := ManifestOf(q.newMail, MustSurvive)
	after := mdaMessage("after-crash")
	afterM, _ := ManifestOf(after, MustSurvive)
	allLost := func(m Manifest) Manifest {
		out := append(Manifest(nil), m...)
		for i := range out {
			out[i].Fate = MayGo
		}
		return out
	}
	spoolName, tempName := user, "."+user+".pop"
	var fx []Fixture
	add := func(name, note string, spoolData, temp []byte, m Manifest) {
		files := map[string][]byte{spoolName: spoolData}
		if temp != nil {
			files[tempName] = temp
		}
		fx = append(fx, Fixture{Name: name, Files: files, Manifest: m, Note: note})
	}
	tempFull := nulToSpace(spool) // login copy (doc/qpopper.md, "Login")
	// W0: process kill during the session: the normal leftover.
	add("W0-session-leftover", "login copied the spool and truncated it; session killed",
		mdaAppend(nil, q.newMail), tempFull, append(append(Manifest(nil), manif...), during...))

	// W1: spool truncation durable, temp drop data not.
	add("W1-empty-tempdrop+mda", "power loss after login: temp drop empty, spool truncated, then new mail",
		after, []byte{}, append(allLost(manif), afterM...))
	add("W1-zero-tempdrop+mda", "power loss after login: temp drop size kept but its blocks read as zeros",
		after, make([]byte, len(tempFull)), append(allLost(manif), afterM...))
	short := shortCopy(tempFull)
	shortManif := recoverable(manif, short)
	add("W1-short-tempdrop+mda", "power loss after login: only the first part of the temp drop persisted",
		after, short, append(shortManif, afterM...))
	// W2: a damaged leftover qpopper would refuse forever.
	nulTail := append(append([]byte(nil), short...), make([]byte, len(tempFull)-len(short))...)
	add("W2-nul-tail-tempdrop+mda", "leftover whose tail is NUL-filled; qpopper locks the user out",
		after, nulTail, append(shortManif, afterM...))

	// Update (doc/qpopper.md): new mail appended to the temp drop, spool truncated,
	// kept messages rewritten into the spool.
	// (Joined as a careful MDA would, so that a test spool whose last
	// message lacks the closing blank line keeps its boundaries.)
	tempUpd := mdaAppend(tempFull, q.newMail)
	full := append(append(Manifest(nil), manif...), during...)
	rewritten := mdaAppend(q.kept(), q.newMail)
	// W3: crash while rewriting the spool: cut at a body line end
	// inside the first kept message that has a body line to cut at.
	partial := tornRewrite(q.kept())
	add("W3-empty-spool", "update killed right after truncating the spool", []byte{}, tempUpd, full)
	add("W3-partial-rewrite", "update killed while rewriting the spool: its last message is torn",
		partial, tempUpd, full)
	add("W3-partial-rewrite+mda", "as W3-partial-rewrite, then an MDA appended to the spool",
		mdaAppend(partial, after), tempUpd, append(append(Manifest(nil), full...), afterM...))
	add("W3-full-rewrite", "update killed after rewriting the spool, before truncating the temp drop",
		rewritten, tempUpd, full)
	// W4: server mode: the temp drop holds the rewrite, the spool is
	// truncated before the rename.
	add("W4-server-spool-truncated+mda", "server-mode update killed after truncating the spool, before the rename",
		after, rewritten, append(append(Manifest(nil), full...), afterM...))
	add("W4-server-partial-tempdrop", "server-mode update killed while writing the temp drop; spool intact",
		mdaAppend(spool, q.newMail), tornRewrite(q.kept()), full)
	// W5: write error during the rewrite: spool truncated, temp drop kept.
	add("W5-error-spool-truncated", "update failed writing the spool, truncated it and kept the temp drop",
		[]byte{}, tempUpd, full)
	return fx, nil
}

// shortCopy returns about the first half of a drop, cut at a line end
// inside a message body when possible.
func shortCopy(b []byte) []byte {
	cut := len(b) / 2
	if i := bytes.IndexByte(b[cut:], '\n'); i >= 0 {
		cut += i + 1
	}
	return append([]byte(nil), b[:cut]...)
}

// tornRewrite cuts a rewrite inside the body of its last message: after
// the first body line when there are more, else in the middle of the
// only one (a stdio buffer flush ends anywhere), so that the torn copy
// still carries its Message-ID.
func tornRewrite(b []byte) []byte {
	msgs, _ := SplitMbox("", b)
	if len(msgs) == 0 {
		return nil
	}
	start := int(msgs[len(msgs)-1].Start)
	last := b[start:]
	i := bytes.Index(last, []byte("\n\n"))
	if i < 0 {
		return append([]byte(nil), b[:start+len(last)/2]...)
	}
	bodyAt := start + i + 2
	body := bytes.TrimRight(b[bodyAt:], "\n")
	if j := bytes.IndexByte(body, '\n'); j >= 0 {
		return append([]byte(nil), b[:bodyAt+j+1]...)
	}
	return append([]byte(nil), b[:bodyAt+len(body)/2]...)
}

// recoverable marks which manifest messages are still intact in a
// short copy: those keep their fate, the torn one may be damaged or
// gone, the missing ones are gone.
func recoverable(m Manifest, short []byte) Manifest {
	got, _ := SplitMbox("", short)
	intact := map[string]bool{}
	present := map[string]bool{}
	torn := false
	for _, g := range got {
		if g.MessageID == "" {
			torn = true // cut inside its header, before the Message-ID
		}
		present[g.MessageID] = true
		for _, e := range m {
			if e.MessageID == g.MessageID && e.HeaderSHA == g.HeaderSHA && e.BodySHA == g.BodySHA {
				intact[g.MessageID] = true
			}
		}
	}
	out := append(Manifest(nil), m...)
	for i := range out {
		switch {
		case intact[out[i].MessageID]:
		case present[out[i].MessageID]:
			out[i].Fate, out[i].MayBeDamaged = MayGo, true
		default:
			out[i].Fate = MayGo
		}
	}
	if torn {
		// Recovery may keep the nameless fragment (it cannot tell it
		// from a message) or quarantine it.
		out = append(out, Expected{Fate: MayGo, MayBeDamaged: true})
	}
	return out
}

// String lists a fixture's files and sizes, for test logs.
func (f Fixture) String() string {
	var parts []string
	for _, n := range sortedByteNames(f.Files) {
		parts = append(parts, fmt.Sprintf("%s=%d", n, len(f.Files[n])))
	}
	return f.Name + " [" + strings.Join(parts, " ") + "]"
}

func sortedByteNames(m map[string][]byte) []string {
	out := make(map[string]File, len(m))
	for k := range m {
		out[k] = File{}
	}
	return sortedNames(out)
}
