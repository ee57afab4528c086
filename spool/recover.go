package spool

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"

	"github.com/popperd/popper/platform"
)

// Crash recovery: a temp drop left behind by a crashed session (popper's
// or qpopper's) is merged back into the spool before anything else.
//
// Whatever popper's crash point, a leftover temp drop (with TEMP.new, the
// mail saved during an update) holds a durable copy of every message the
// spool is meant to hold; the spool itself may be intact, truncated,
// partly rewritten (possibly torn at the end), or hold new mail appended
// after the crash. qpopper's leftovers add two cases: a short or
// NUL-filled temp drop (its W1/W2 windows) and a spool holding a partial
// rewrite of the temp drop's messages (W3).
//
// The merge keeps, in order, the leftover's messages (oldest first) and
// then every spool message that is not a copy of one of them.
//
// Two messages are the same message when their bytes are equal after
// removing what qpopper and popper themselves change when they write a
// message back: X-UIDL:, Status: and Content-Length: header lines (and their continuation
// lines), NUL bytes (qpopper's copy turned them into spaces), and the
// newlines at the very end (the blank line that separates mbox messages).
// Matching is one-to-one, so a message that really arrived twice stays
// twice. A spool message whose normalised bytes are a proper prefix of a
// leftover message (the torn last message of an interrupted rewrite) is a
// partial copy and is dropped, and the reverse for a torn leftover
// message. Bytes that are not part of any message are never dropped: they
// go to a quarantine file beside the spool.

// RecoverResult tells what recovery of one temp drop did.
type RecoverResult struct {
	Found          bool   // a leftover existed
	Skipped        bool   // a live session holds it; nothing was touched
	Messages       int    // messages the spool holds from the leftover after the merge
	Bytes          int64  // bytes of those messages
	Quarantined    int64  // bytes moved to the quarantine file
	QuarantineFile string // its name, when Quarantined > 0
}

// Recover merges the leftover temp drop(s) of one maildrop back into its
// spool: the boot-time sweep. It is safe while popper serves (a drop held
// by a live session is skipped) and idempotent.
func Recover(c *Config) (RecoverResult, error) {
	var total RecoverResult
	paths := []string{c.TempDrop}
	if c.OldTempDrop != "" && c.OldTempDrop != c.TempDrop {
		paths = append(paths, c.OldTempDrop)
	}
	if !leftoverExists(paths) {
		return total, nil
	}
	lk, err := lockSpool(c, updateDotTries, nil, false)
	if err != nil {
		return total, err
	}
	defer lk.release()
	for _, p := range paths {
		cc := *c
		cc.TempDrop = p
		f, err := openLeftover(p)
		var e *Error
		switch {
		case errors.As(err, &e) && e.Kind == ErrInUse:
			total.Found, total.Skipped = true, true
			continue
		case errors.Is(err, fs.ErrNotExist):
			f = nil // maybe an orphaned TEMP.new
			if _, serr := os.Lstat(cc.newPath()); serr != nil {
				continue
			}
		case err != nil:
			return total, err
		case f == nil:
			continue
		}
		res, err := recoverLocked(&cc, lk, f)
		if f != nil {
			f.Close()
		}
		if err != nil {
			return total, err
		}
		total.Found = true
		total.Messages += res.Messages
		total.Bytes += res.Bytes
		total.Quarantined += res.Quarantined
		if res.QuarantineFile != "" {
			total.QuarantineFile = res.QuarantineFile
		}
	}
	return total, nil
}

func leftoverExists(paths []string) bool {
	for _, p := range paths {
		for _, q := range []string{p, p + ".new"} {
			if _, err := os.Lstat(q); err == nil {
				return true
			}
		}
	}
	return false
}

// dropMsg is one message of one of the files being merged.
type dropMsg struct {
	file   int // index into merge.files
	m      *Msg
	sep    string   // separator line, for finding torn-copy candidates
	key    [32]byte // hash of the normalised bytes
	length int64    // length of the normalised bytes
	pair   int      // index of the matching message on the other side, or -1
	drop   bool     // a partial copy of a message kept elsewhere
	// staleFrom, when not 0, is where stale bytes after a whole copy of
	// the paired message begin.
	staleFrom int64
}

type mergeFile struct {
	f *platform.File
	d *Drop
}

// recoverLocked merges the locked leftover d (nil when only TEMP.new is
// left) into the spool; the caller holds the spool locks.
func recoverLocked(c *Config, lk *spoolLock, d *platform.File) (RecoverResult, error) {
	var res RecoverResult
	res.Found = true
	if err := lk.ensureSpool(c); err != nil {
		return res, err
	}
	// A scratch file from a merge that crashed before its rename holds
	// nothing that is not also in the files it was built from.
	if err := platform.Remove(c.tmpPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return res, newErr(ErrIO, "remove", c.tmpPath(), err)
	}

	var old []*mergeFile
	if d != nil {
		old = append(old, &mergeFile{f: d})
	}
	newMail, err := platform.OpenFile(c.newPath(), os.O_RDWR, 0)
	switch {
	case err == nil:
		defer newMail.Close()
		old = append(old, &mergeFile{f: newMail})
	case !errors.Is(err, fs.ErrNotExist):
		return res, newErr(ErrIO, "open", c.newPath(), err)
	}
	cur := &mergeFile{f: lk.spool}

	opt := c.Parse
	opt.FromSpool = false
	all := append(append([]*mergeFile{}, old...), cur)
	for _, mf := range all {
		fi, err := mf.f.Stat()
		if err != nil {
			return res, newErr(ErrIO, "stat", mf.f.Name(), err)
		}
		mf.d, err = Parse(bufio.NewReaderSize(io.NewSectionReader(mf.f.OS(), 0, fi.Size()), 64<<10), opt)
		if err != nil {
			return res, newErr(ErrIO, "parse", mf.f.Name(), err)
		}
	}

	olds, curs, err := matchMessages(old, cur)
	if err != nil {
		return res, err
	}

	// Bytes that are no message, from any of the files, are kept aside
	// first: every later step may make them unreachable.
	var junk int64
	for _, mf := range all {
		junk += junkBytes(mf.d)
	}
	if junk > 0 {
		name, err := quarantineFiles(c, all)
		if err != nil {
			return res, err
		}
		res.Quarantined, res.QuarantineFile = junk, name
		c.logf("Quarantined %d bytes that are not mail from %s in %s", junk, c.Spool, name)
	}

	// The merged content, made durable under the temp drop's name (the
	// leftover itself when it already is exactly that).
	plan := make([]*dropMsg, 0, len(olds)+len(curs))
	for _, om := range olds {
		if om.drop {
			continue
		}
		if om.pair >= 0 && curs[om.pair].staleFrom == 0 && curs[om.pair].m.UIDFound && !om.m.UIDFound {
			// The spool's copy carries the UID clients were shown.
			plan = append(plan, curs[om.pair])
		} else {
			plan = append(plan, om)
		}
	}
	for _, cm := range curs {
		if cm.pair < 0 && !cm.drop {
			plan = append(plan, cm)
		}
	}
	for _, pm := range plan {
		if pm.file < len(old) {
			res.Messages++
			res.Bytes += pm.m.Next - pm.m.Start
		}
	}
	var src *platform.File
	if d != nil && len(old) == 1 && junkBytes(old[0].d) == 0 && planIsFile(plan, 0, old[0].d) {
		src = d
	} else {
		src, err = writePlan(c, all, plan, lk)
		if err != nil {
			return res, err
		}
		defer src.Close()
		platform.Failpoint("recover.tempdrop-replaced")
		if newMail != nil {
			if err := platform.Remove(c.newPath()); err != nil {
				return res, newErr(ErrIO, "remove", c.newPath(), err)
			}
		}
	}

	// The spool rewritten in place from it, then the temp drop removed.
	if err := copySpoolFrom(c, lk.spool, src, lk); err != nil {
		return res, err
	}
	platform.Failpoint("recover.spool-synced")
	if err := platform.Remove(c.TempDrop); err != nil {
		return res, newErr(ErrIO, "remove temp drop", c.TempDrop, err)
	}
	if err := platform.SyncParent(c.TempDrop); err != nil {
		return res, newErr(ErrIO, "sync temp drop directory", c.TempDrop, err)
	}
	platform.Failpoint("recover.done")
	return res, nil
}

// ensureSpool creates and locks a missing spool (recovery writes into it).
func (l *spoolLock) ensureSpool(c *Config) error {
	if l.spool != nil {
		return nil
	}
	f, err := platform.OpenFile(c.Spool, os.O_RDWR|os.O_CREATE, 0660)
	if err != nil {
		return newErr(ErrIO, "create spool", c.Spool, err)
	}
	l.spool, l.owned = f, true
	if err := platform.SyncParent(c.Spool); err != nil {
		return newErr(ErrIO, "sync spool directory", c.Spool, err)
	}
	unlock, err := platform.LockMailbox(f, c.locks(), c.lockTimeout())
	if err != nil {
		return newErr(ErrLock, "lock spool", c.Spool, err)
	}
	l.unlock = unlock
	return nil
}

// planIsFile reports whether the plan is exactly file fi's messages in
// order.
func planIsFile(plan []*dropMsg, fi int, d *Drop) bool {
	if len(plan) != len(d.Msgs) {
		return false
	}
	for i, pm := range plan {
		if pm.file != fi || pm.m != &d.Msgs[i] {
			return false
		}
	}
	return true
}

// writePlan writes the merged messages into TEMP.tmp, syncs it and renames
// it over the temp drop, so the temp drop is, durably, the merge result.
func writePlan(c *Config, all []*mergeFile, plan []*dropMsg, lk *spoolLock) (*platform.File, error) {
	tmp := c.tmpPath()
	f, err := platform.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0660)
	if err != nil {
		return nil, newErr(ErrIO, "create", tmp, err)
	}
	format := MBox
	for _, mf := range all {
		if len(mf.d.Msgs) > 0 {
			format = mf.d.Format
			break
		}
	}
	bw := newBoundaryWriter(&refreshWriter{w: f, lk: lk}, format)
	for _, pm := range plan {
		if err := bw.startMessage(); err != nil {
			f.Close()
			return nil, newErr(ErrIO, "write", tmp, err)
		}
		if _, err := WriteRaw(bw, all[pm.file].f.OS(), pm.m); err != nil {
			f.Close()
			return nil, newErr(ErrIO, "write", tmp, err)
		}
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return nil, newErr(ErrIO, "write", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, newErr(ErrIO, "sync", tmp, err)
	}
	if err := platform.Rename(tmp, c.TempDrop); err != nil {
		f.Close()
		return nil, newErr(ErrIO, "rename", tmp, err)
	}
	if err := platform.SyncParent(c.TempDrop); err != nil {
		f.Close()
		return nil, newErr(ErrIO, "sync temp drop directory", c.TempDrop, err)
	}
	return f, nil
}

// matchMessages pairs the leftover messages with the spool's.
func matchMessages(old []*mergeFile, cur *mergeFile) (olds, curs []*dropMsg, err error) {
	all := append(append([]*mergeFile{}, old...), cur)
	for fi, mf := range all {
		for i := range mf.d.Msgs {
			dm := &dropMsg{file: fi, m: &mf.d.Msgs[i], pair: -1}
			if dm.sep, err = separatorLine(mf.f, dm.m); err != nil {
				return nil, nil, err
			}
			h := sha256.New()
			if dm.length, err = normalize(h, mf.f, dm.m, -1); err != nil {
				return nil, nil, err
			}
			h.Sum(dm.key[:0])
			if fi < len(old) {
				olds = append(olds, dm)
			} else {
				curs = append(curs, dm)
			}
		}
	}
	// One-to-one exact matches, in order.
	byKey := make(map[[32]byte][]int)
	for j, cm := range curs {
		byKey[cm.key] = append(byKey[cm.key], j)
	}
	for i, om := range olds {
		if js := byKey[om.key]; len(js) > 0 {
			om.pair, curs[js[0]].pair = js[0], i
			byKey[om.key] = js[1:]
		}
	}
	// Torn copies: a proper prefix of a message on the other side.
	for _, cm := range curs {
		if cm.pair >= 0 {
			continue
		}
		for _, om := range olds {
			if om.sep == cm.sep && cm.length < om.length {
				if ok, err := isPrefix(cm, om, all); err != nil {
					return nil, nil, err
				} else if ok {
					cm.drop = true
					break
				}
			}
		}
	}
	for i, om := range olds {
		if om.pair >= 0 {
			continue
		}
		for j, cm := range curs {
			if cm.pair < 0 && !cm.drop && om.sep == cm.sep && om.length < cm.length {
				ok, err := isPrefix(om, cm, all)
				if err != nil {
					return nil, nil, err
				}
				if !ok {
					continue
				}
				// Either the leftover's copy is torn (a login copy cut
				// short: the spool's is whole), or the spool's copy is
				// the leftover's followed by stale bytes (a rewrite whose
				// truncate did not reach the disk). A complete-looking
				// leftover message that the spool copy starts with byte
				// for byte is the second case: the extra bytes are not
				// mail and go to quarantine.
				stale, err := staleExtension(om, cm, all)
				if err != nil {
					return nil, nil, err
				}
				if stale {
					om.pair, cm.pair = i, j
					cm.staleFrom = cm.m.Start + (om.m.Next - om.m.Start)
					cur.d.Junk = append(cur.d.Junk, Range{Off: cm.staleFrom, Len: cm.m.Next - cm.staleFrom})
				} else {
					om.drop = true
				}
				break
			}
		}
	}
	return olds, curs, nil
}

// staleExtension reports whether b's bytes begin with all of a's and a
// looks whole (it ends with the blank line that ends an mbox message, or
// its MMDF trailer).
func staleExtension(a, b *dropMsg, all []*mergeFile) (bool, error) {
	fa, fb := all[a.file].f, all[b.file].f
	n := a.m.Next - a.m.Start
	if n < 2 || b.m.Next-b.m.Start <= n {
		return false, nil
	}
	if a.m.Next == a.m.End { // mbox: no trailer
		var end [2]byte
		if _, err := fa.ReadAt(end[:], a.m.Next-2); err != nil {
			return false, newErr(ErrIO, "read", fa.Name(), err)
		}
		if end != [2]byte{'\n', '\n'} {
			return false, nil
		}
	}
	ra := io.NewSectionReader(fa.OS(), a.m.Start, n)
	rb := io.NewSectionReader(fb.OS(), b.m.Start, n)
	ba, bb := make([]byte, 32<<10), make([]byte, 32<<10)
	for {
		na, erra := io.ReadFull(ra, ba)
		nb, errb := io.ReadFull(rb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		if erra != nil || errb != nil {
			return erra == io.EOF || erra == io.ErrUnexpectedEOF, nil
		}
	}
}

// isPrefix reports whether a's normalised bytes are a prefix of b's.
func isPrefix(a, b *dropMsg, all []*mergeFile) (bool, error) {
	h := sha256.New()
	if _, err := normalize(h, all[b.file].f, b.m, a.length); err != nil {
		return false, err
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum == a.key, nil
}

// separatorLine reads a message's first line (at most 1 KiB of it).
func separatorLine(f *platform.File, m *Msg) (string, error) {
	n := m.End - m.Start
	if n > 1024 {
		n = 1024
	}
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, m.Start); err != nil && err != io.EOF {
		return "", newErr(ErrIO, "read", f.Name(), err)
	}
	if i := bytes.IndexByte(buf, '\n'); i >= 0 {
		buf = buf[:i]
	}
	return string(buf), nil
}

// normalize writes the normalised bytes of m (see the package comment
// above) into h, at most limit of them when limit >= 0, and returns how
// many it wrote.
func normalize(h hash.Hash, f *platform.File, m *Msg, limit int64) (int64, error) {
	end, err := trimTrailingNUL(f, m.Start, m.End)
	if err != nil {
		return 0, err
	}
	out := bufio.NewWriterSize(h, 32<<10)
	nw := &normWriter{out: out, limit: limit, first: true, lineStart: true, header: true}
	if _, err := io.Copy(nw, io.NewSectionReader(f.OS(), m.Start, end-m.Start)); err != nil && err != errLimit {
		return 0, newErr(ErrIO, "read", f.Name(), err)
	}
	nw.finish()
	out.Flush()
	return nw.n, nil
}

// trimTrailingNUL returns end moved back over a run of NUL bytes: the
// zero-filled tail a power cut leaves when a file's size reached the disk
// but its data did not.
func trimTrailingNUL(f *platform.File, start, end int64) (int64, error) {
	buf := make([]byte, 4096)
	for end > start {
		n := int64(len(buf))
		if end-start < n {
			n = end - start
		}
		if _, err := f.ReadAt(buf[:n], end-n); err != nil && err != io.EOF {
			return 0, newErr(ErrIO, "read", f.Name(), err)
		}
		i := n - 1
		for i >= 0 && buf[i] == 0 {
			i--
		}
		if i >= 0 {
			return end - n + i + 1, nil
		}
		end -= n
	}
	return end, nil
}

var errLimit = errors.New("normalize: limit reached")

// normWriter turns a message's bytes into its normalised form.
type normWriter struct {
	out       io.Writer
	limit     int64 // stop after this many output bytes; < 0 = no limit
	n         int64
	first     bool // in the separator line, which is always kept
	header    bool // in the header
	lineStart bool
	deciding  []byte // start of a header line that may be X-UIDL:/Status:
	dropping  bool   // inside a dropped header line
	dropCont  bool   // the previous header line was dropped: so are its continuations
	held      []byte // a run of trailing newline bytes, emitted only if more follows
}

// Content-Length is among them because a write-back drops a Content-Length
// that proved false (Msg.BadContentLength).
var droppedHeaders = []string{"x-uidl:", "status:", "content-length:"}

func (w *normWriter) Write(p []byte) (int, error) {
	for _, b := range p {
		if err := w.byte(b); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (w *normWriter) byte(b byte) error {
	switch {
	case w.first:
		if b == '\n' {
			w.first = false
			w.lineStart = true
		}
		return w.emit(b)
	case !w.header:
		return w.emit(b)
	case w.dropping:
		if b == '\n' {
			w.dropping, w.lineStart, w.dropCont = false, true, true
		}
		return nil
	case w.deciding != nil:
		w.deciding = append(w.deciding, b)
		return w.decide()
	case w.lineStart:
		w.lineStart = false
		if (b == ' ' || b == '\t') && w.dropCont {
			w.dropping = true
			return nil
		}
		w.dropCont = false
		if b == '\n' {
			w.header = false
			w.lineStart = true
			return w.emit(b)
		}
		w.deciding = append(make([]byte, 0, 8), b)
		return w.decide()
	default:
		if b == '\n' {
			w.lineStart = true
		}
		return w.emit(b)
	}
}

// decide settles whether the header line being read is one to drop.
func (w *normWriter) decide() error {
	d := bytes.ToLower(w.deciding)
	if string(d) == "\r" {
		return nil // maybe the CRLF of an empty line
	}
	if string(d) == "\r\n" { // an empty line stored with CRLF ends the header
		w.deciding = nil
		w.header = false
		w.lineStart = true
		return w.emitAll(d)
	}
	for _, name := range droppedHeaders {
		if len(d) >= len(name) && string(d[:len(name)]) == name {
			w.deciding = nil
			w.dropping = true
			if d[len(d)-1] == '\n' {
				w.dropping, w.lineStart, w.dropCont = false, true, true
			}
			return nil
		}
		if len(d) < len(name) && name[:len(d)] == string(d) {
			return nil // still undecided
		}
	}
	pending := w.deciding
	w.deciding = nil
	if pending[len(pending)-1] == '\n' {
		w.lineStart = true
	}
	return w.emitAll(pending)
}

func (w *normWriter) emitAll(p []byte) error {
	for _, b := range p {
		if err := w.emit(b); err != nil {
			return err
		}
	}
	return nil
}

func (w *normWriter) emit(b byte) error {
	if b == '\n' || b == '\r' {
		w.held = append(w.held, b)
		if len(w.held) >= 64<<10 {
			return w.flushHeld()
		}
		return nil
	}
	if b == 0 {
		b = ' '
	}
	if err := w.flushHeld(); err != nil {
		return err
	}
	return w.out1([]byte{b})
}

func (w *normWriter) flushHeld() error {
	if len(w.held) == 0 {
		return nil
	}
	h := w.held
	w.held = w.held[:0]
	return w.out1(h)
}

func (w *normWriter) out1(p []byte) error {
	if w.limit >= 0 && w.n+int64(len(p)) > w.limit {
		p = p[:w.limit-w.n]
		w.out.Write(p)
		w.n += int64(len(p))
		return errLimit
	}
	w.out.Write(p)
	w.n += int64(len(p))
	return nil
}

// finish ends the message: a header line cut off while it could still be
// an X-UIDL: or Status: line (a torn write-back) is dropped, and trailing
// newlines are not part of the normal form.
func (w *normWriter) finish() {
	w.deciding = nil
	w.held = w.held[:0]
}

func junkBytes(d *Drop) int64 {
	var n int64
	for _, r := range d.Junk {
		n += r.Len
	}
	return n
}

// quarantine copies the junk ranges of one file into a new quarantine file
// and makes it durable.
func quarantine(c *Config, f *platform.File, junk []Range) (string, error) {
	return quarantineFiles(c, []*mergeFile{{f: f, d: &Drop{Junk: junk}}})
}

func quarantineFiles(c *Config, files []*mergeFile) (string, error) {
	name := c.quarantinePath()
	q, err := platform.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0600)
	if err != nil {
		return "", newErr(ErrIO, "create quarantine file", name, err)
	}
	defer q.Close()
	w := bufio.NewWriter(q)
	for _, mf := range files {
		for _, r := range mf.d.Junk {
			if _, err := io.Copy(w, io.NewSectionReader(mf.f.OS(), r.Off, r.Len)); err != nil {
				return "", newErr(ErrIO, "write quarantine file", name, err)
			}
		}
	}
	if err := w.Flush(); err != nil {
		return "", newErr(ErrIO, "write quarantine file", name, err)
	}
	if err := q.Sync(); err != nil {
		return "", newErr(ErrIO, "sync quarantine file", name, err)
	}
	if err := platform.SyncParent(name); err != nil {
		return "", newErr(ErrIO, "sync quarantine directory", name, err)
	}
	platform.Failpoint("quarantine.synced")
	c.logf("Kept %s: bytes of %s that are not part of any message", name, c.Spool)
	return name, nil
}

// String describes a result for the recovery sweep's report line.
func (r RecoverResult) String() string {
	if r.Skipped {
		return "skipped (live session)"
	}
	s := fmt.Sprintf("%d messages merged, %d bytes", r.Messages, r.Bytes)
	if r.Quarantined > 0 {
		s += fmt.Sprintf(", %d bytes quarantined in %s", r.Quarantined, r.QuarantineFile)
	}
	return s
}
