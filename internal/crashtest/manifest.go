package crashtest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/popperd/popper/platform"
)

// Message is one mbox message found in a file.
type Message struct {
	File      string // path relative to the scanned directory
	Start     int64  // offset of its From_ line
	End       int64  // offset just past it
	MessageID string // Message-ID header value, "" if none
	HeaderSHA string // hex SHA-256 of the From_ line and header, minus X-UIDL:/Status:
	BodySHA   string // hex SHA-256 of the body, trailing newlines trimmed
}

// Key identifies a message: the same Message-ID with the same header and
// body is the same message, wherever and however often it appears.
func (m Message) Key() string { return m.MessageID + " " + m.HeaderSHA + " " + m.BodySHA }

// SplitMbox splits data into messages: a message starts at a line
// beginning "From " that is the first line or follows an empty line, and
// runs to the next such line. Bytes before the first separator are
// returned as junk (a damaged or NUL-filled file).
func SplitMbox(file string, data []byte) (msgs []Message, junk int64) {
	var starts []int
	prevEmpty := true
	for off := 0; off < len(data); {
		nl := bytes.IndexByte(data[off:], '\n')
		end := len(data)
		if nl >= 0 {
			end = off + nl + 1
		}
		line := data[off:end]
		if prevEmpty && bytes.HasPrefix(line, []byte("From ")) {
			starts = append(starts, off)
		}
		prevEmpty = len(line) == 1 && line[0] == '\n'
		off = end
	}
	if len(starts) == 0 {
		return nil, int64(len(data))
	}
	junk = int64(starts[0])
	for i, s := range starts {
		e := len(data)
		if i+1 < len(starts) {
			e = starts[i+1]
		}
		msgs = append(msgs, parseMessage(file, data[s:e], int64(s)))
	}
	return msgs, junk
}

// parseMessage fingerprints one message. X-UIDL: and Status: header
// fields (with their continuation lines) are left out of the header hash
// because qpopper and popper rewrite them; the body's trailing newlines
// are trimmed because the blank line that separates mbox messages may be
// added or removed when a message becomes or stops being the last one.
func parseMessage(file string, m []byte, start int64) Message {
	msg := Message{File: file, Start: start, End: start + int64(len(m))}
	hh := sha256.New()
	off := 0
	first := true
	skipping := false
	body := m[len(m):]
	for off < len(m) {
		nl := bytes.IndexByte(m[off:], '\n')
		end := len(m)
		if nl >= 0 {
			end = off + nl + 1
		}
		line := m[off:end]
		off = end
		if first {
			first = false
			hh.Write(line)
			continue
		}
		if len(line) == 1 && line[0] == '\n' || len(bytes.TrimRight(line, "\r\n")) == 0 {
			body = m[off:]
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if !skipping {
				hh.Write(line)
			}
			continue
		}
		name, value, _ := strings.Cut(string(line), ":")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "x-uidl", "status":
			skipping = true
			continue
		case "message-id":
			if msg.MessageID == "" {
				msg.MessageID = strings.TrimSpace(value)
			}
		}
		skipping = false
		hh.Write(line)
	}
	msg.HeaderSHA = hex.EncodeToString(hh.Sum(nil))
	b := sha256.Sum256(bytes.TrimRight(body, "\n"))
	msg.BodySHA = hex.EncodeToString(b[:])
	return msg
}

// Fate is what may become of a message.
type Fate int

const (
	// MustSurvive: not deleted, or deleted in a session whose QUIT +OK
	// was not received. Exactly one intact copy must remain.
	MustSurvive Fate = iota
	// MayGo: deleted in a session whose QUIT +OK was not received (the
	// client cannot know the outcome), or lost before the test by a
	// program other than popper (qpopper's own windows). At most one
	// intact copy may remain.
	MayGo
	// MustGo: deleted in a session whose QUIT +OK was received. No copy
	// may remain.
	MustGo
)

func (f Fate) String() string {
	switch f {
	case MustSurvive:
		return "must-survive"
	case MayGo:
		return "may-go"
	case MustGo:
		return "must-go"
	}
	return fmt.Sprintf("Fate(%d)", int(f))
}

// Expected is one message of a manifest.
type Expected struct {
	Message
	Fate Fate
	// MayBeDamaged allows copies whose header or body differ: set for a
	// message another program already tore (qpopper's short temp drop),
	// which popper cannot tell from a complete one.
	MayBeDamaged bool
}

// Manifest lists the messages a spool directory is checked against.
type Manifest []Expected

// ManifestOf returns a manifest of every message in an mbox, each with
// fate f. It fails when a message lacks a Message-ID or two messages are
// identical, since the checker could not then tell copies apart.
func ManifestOf(mbox []byte, f Fate) (Manifest, error) {
	msgs, junk := SplitMbox("", mbox)
	if junk != 0 {
		return nil, fmt.Errorf("manifest: %d bytes before the first From_ line", junk)
	}
	seen := map[string]bool{}
	var m Manifest
	for i, msg := range msgs {
		if msg.MessageID == "" {
			return nil, fmt.Errorf("manifest: message %d has no Message-ID", i+1)
		}
		if seen[msg.MessageID] {
			return nil, fmt.Errorf("manifest: Message-ID %s appears twice", msg.MessageID)
		}
		seen[msg.MessageID] = true
		m = append(m, Expected{Message: msg, Fate: f})
	}
	return m, nil
}

// Set returns a copy of m with the fate of the message with id changed.
func (m Manifest) Set(id string, f Fate) Manifest {
	out := append(Manifest(nil), m...)
	for i := range out {
		if out[i].MessageID == id {
			out[i].Fate = f
		}
	}
	return out
}

// Problem kinds. Lost, corrupted, duplicated, resurrected and unexpected
// are failures; Quarantined notes a message whose only intact copy is
// in a quarantine file (the user no longer sees it: also a failure).
const (
	Lost        = "lost"
	Corrupted   = "corrupted"
	Duplicated  = "duplicated"
	Resurrected = "resurrected"
	Unexpected  = "unexpected"
	Quarantined = "quarantined"
	Junk        = "junk" // a mailbox file that does not start with a From_ line
)

// Problem is one violated expectation.
type Problem struct {
	Kind      string
	MessageID string
	Files     []string // where the copies are ("file@offset")
	Detail    string
}

func (p Problem) String() string {
	s := p.Kind + " " + p.MessageID
	if len(p.Files) > 0 {
		s += " in " + strings.Join(p.Files, ", ")
	}
	if p.Detail != "" {
		s += ": " + p.Detail
	}
	return s
}

// IsQuarantine tells whether a spool-directory file name is one of
// popper's quarantine files, which hold bytes recovery could not parse.
func IsQuarantine(name string) bool { return strings.Contains(filepath.Base(name), ".unparsed") }

// IsLock tells whether a file name is a dot-lock, or a dot-locker's unique
// file left by a kill (platform.IsDotLockTemp): never mail.
func IsLock(name string) bool {
	return strings.HasSuffix(name, ".lock") || platform.IsDotLockTemp(name)
}

// IsIndex tells whether a file name is the index beside the spool
// (cache-name, by default .USER.cache) or its temporary name: never mail.
func IsIndex(name string) bool {
	base := filepath.Base(name)
	return strings.HasSuffix(base, ".cache") || strings.HasSuffix(base, ".cache.tmp")
}

// Scan parses every regular file under dir into messages, except
// dot-locks and the index. Junk bytes (not part of any message) are
// reported per file.
func Scan(dir string) (msgs []Message, junk map[string]int64, err error) {
	junk = map[string]int64{}
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() || IsLock(p) || IsIndex(p) {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		ms, j := SplitMbox(filepath.ToSlash(rel), data)
		msgs = append(msgs, ms...)
		if j > 0 {
			junk[rel] = j
		}
		return nil
	})
	return msgs, junk, err
}

// Check scans dir and compares it with the manifest. Copies in mailbox
// files (everything but quarantine files and dot-locks: the spool, temp
// drops and any other leftover) count as the user's mail; copies in
// quarantine files count only to tell "quarantined" from "lost".
func Check(dir string, m Manifest) ([]Problem, error) {
	msgs, junk, err := Scan(dir)
	if err != nil {
		return nil, err
	}
	probs := CheckMessages(msgs, m)
	for _, f := range sortedNames(junk) {
		if !IsQuarantine(f) {
			probs = append(probs, Problem{Junk, "", []string{f}, fmt.Sprintf("%d bytes before the first From_ line", junk[f])})
		}
	}
	return probs, nil
}

// CheckMessages compares scanned messages with the manifest.
func CheckMessages(msgs []Message, m Manifest) []Problem {
	byID := map[string][]Message{}
	for _, msg := range msgs {
		byID[msg.MessageID] = append(byID[msg.MessageID], msg)
	}
	var probs []Problem
	known := map[string]bool{}
	for _, e := range m {
		known[e.MessageID] = true
		var intact, damaged, quarIntact []string
		for _, c := range byID[e.MessageID] {
			where := fmt.Sprintf("%s@%d", c.File, c.Start)
			ok := c.HeaderSHA == e.HeaderSHA && c.BodySHA == e.BodySHA
			switch {
			case IsQuarantine(c.File) && ok:
				quarIntact = append(quarIntact, where)
			case IsQuarantine(c.File):
			case ok:
				intact = append(intact, where)
			default:
				what := "body differs"
				if c.HeaderSHA != e.HeaderSHA {
					what = "header differs"
				}
				damaged = append(damaged, where+" ("+what+")")
			}
		}
		if len(damaged) > 0 && !e.MayBeDamaged {
			probs = append(probs, Problem{Corrupted, e.MessageID, damaged, "fate " + e.Fate.String()})
		}
		switch e.Fate {
		case MustSurvive:
			if len(intact) == 0 && len(quarIntact) > 0 {
				probs = append(probs, Problem{Quarantined, e.MessageID, quarIntact, "only copy is in quarantine"})
			} else if len(intact) == 0 {
				probs = append(probs, Problem{Lost, e.MessageID, nil, "no intact copy"})
			}
		case MustGo:
			if len(intact) > 0 {
				probs = append(probs, Problem{Resurrected, e.MessageID, intact, "deleted in a session whose QUIT +OK was received"})
			}
		}
		if len(intact) > 1 {
			probs = append(probs, Problem{Duplicated, e.MessageID, intact, fmt.Sprintf("%d copies", len(intact))})
		}
	}
	var extra []string
	for id, cs := range byID {
		if known[id] {
			continue
		}
		for _, c := range cs {
			if !IsQuarantine(c.File) {
				extra = append(extra, fmt.Sprintf("%s %s@%d", id, c.File, c.Start))
			}
		}
	}
	sort.Strings(extra)
	for _, x := range extra {
		id, where, _ := strings.Cut(x, " ")
		probs = append(probs, Problem{Unexpected, id, []string{where}, "not in the manifest"})
	}
	return probs
}
