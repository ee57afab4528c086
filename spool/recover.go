package spool

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"

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
// twice. Bytes that are not part of any message are never dropped: they
// go to a quarantine file beside the spool.
//
// A power cut makes the other copies hard to judge: unsynced writes and
// truncates persist in any order and in part (durability.md §1), so a
// copy may be cut short, have a hole of NULs where a write was lost, or
// run on into bytes an older content left behind. Where each file came
// from, and whether it was durable at that point, decides which copy is
// whole:
//
//   - The login copy (loginCopy) writes the temp drop as a byte copy of
//     the spool; it is not durable until its fsync, and the spool is not
//     touched before then. So a leftover that is cut short or holed means
//     an intact spool: the spool's copy is the whole one, and what the
//     spool holds after the leftover's copy is the rest of that message,
//     beyond the leftover's end. An in-place update's undo drop is
//     settled before the merge (undo.go): removed, or, with the spool's
//     bytes before the update's start put back in front, a login copy of
//     the spool as it was before the update.
//   - Every rewrite of the spool (an update, recovery itself) starts
//     only once its source is durable: the temp drop and TEMP.new (a
//     copy's update), the undo copy (an in-place update), the merge
//     (recovery). A power cut can leave a prefix of the rewrite, holes,
//     and, when the truncate was lost, what the spool held before past
//     (or between) the new bytes. In an update that older content is the
//     login copy's or the undo copy's (or the new mail TEMP.new saved
//     from offset 0): the leftover's own bytes at the same offsets.
//     Recovery writes a byte copy of its merge, whose older content is
//     not in the leftovers at the same offsets; it makes the truncate
//     durable before the first write (copySpoolFrom), so that its
//     rewrites can only leave a prefix of the merge and holes of NULs,
//     never old bytes.
//
//   - Recovery can crash in its turn. Its merge is written to TEMP.tmp
//     (scratch until renamed: removed on sight), made durable and renamed
//     to TEMP.merge; the spool is rewritten from it; only then do
//     TEMP.merge, and after it TEMP.new and the temp drop, go. A
//     TEMP.merge found is therefore complete and holds every message of
//     the files it was made from: it is the only source of messages,
//     and the temp drop and TEMP.new beside it count for their bytes
//     alone (the spool may still show their old content at their
//     offsets, the rules below). Replacing the temp drop with the merge
//     would have lost those bytes, and left TEMP.new's messages twice.
//
// Hence the rules, in this order:
//
//  1. A spool message with the bytes of a leftover message at the same
//     offset (a shadow) is that message, showing through: the spool was
//     intact there, or a lost truncate left it. It pairs with its own
//     leftover message, or is dropped when a rewrite's copy already did
//     (otherwise a rewrite and the old bytes after it would keep it
//     twice). Other exact copies pair one-to-one first.
//  2. A spool message whose normalised bytes are a proper prefix of a
//     leftover message is a rewrite cut short: dropped.
//  3. A leftover message with NULs whose other bytes are the spool's at
//     the same offsets, or whose bytes before the first NUL begin a
//     spool message, is a login copy with a lost write: the spool's copy
//     takes its place.
//  4. A spool message that is nothing but the leftovers' bytes at the
//     same offsets and NULs holds nothing of its own: dropped. One that
//     begins as a leftover message and ends, from some point on, in NULs
//     or in the leftovers' bytes at the same offsets is a rewrite that
//     lost writes or its truncate: the leftover's message is kept, the
//     spool's bytes from that point go to quarantine. So is one that
//     holds, inside, a page or more of the leftovers' bytes at the same
//     offsets (a lost write with its truncate lost: the rewrite goes on
//     after it), cut where they begin, or, when it begins in them (a
//     leftover message showing up to the lost write's end), cut where
//     they end. New mail is never taken for this: it is appended after
//     the crash and does not end in, or hold a page of, the leftover's
//     bytes at the offsets it was written to.
//  5. A leftover message that is a proper prefix of a spool message:
//     when it is the last of its file it is a copy cut short and the
//     spool's copy takes its place (a rewrite cannot have left that
//     spool message, by the above: it would have ended in a hole or in
//     the leftover's own bytes); a message that something follows is
//     whole, and the spool message is quarantined.
//
// The residue these rules cannot judge is old bytes after a byte copy of
// the temp drop whose truncate was lost (qpopper's update does not sync;
// an MDA that does not fsync may leave its append over old bytes): such
// a spool message is taken for the whole copy, as a login copy cut short
// would be, since a copy cut short must never lose its end.

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
			f = nil // maybe an orphaned TEMP.new or TEMP.merge
			if !exists(cc.newPath()) && !exists(cc.mergePath()) {
				// A merge's scratch file holds nothing the files it was
				// built from do not.
				if err := removeIfExists(cc.tmpPath()); err != nil {
					return total, err
				}
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
		for _, q := range []string{p, p + ".new", p + ".merge", p + ".tmp"} {
			if exists(q) {
				return true
			}
		}
	}
	return false
}

func exists(name string) bool {
	_, err := os.Lstat(name)
	return err == nil
}

func removeIfExists(name string) error {
	if err := platform.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return newErr(ErrIO, "remove", name, err)
	}
	return nil
}

// dropMsg is one message of one of the files being merged.
type dropMsg struct {
	file   int // index into merge.files
	m      *Msg
	sep    string   // separator line, for finding torn-copy candidates
	key    [32]byte // hash of the normalised bytes
	length int64    // length of the normalised bytes
	pair   int      // index of the matching message on the other side, or -1
	drop   bool     // a partial or damaged copy of a message kept elsewhere
	last   bool     // the last message of its file
	whole  bool     // of a complete file (a merge): never a copy cut short
	nul    int64    // offset of its first NUL byte (trailing NULs aside), or -1
	// shadow, for a spool message, is the leftover message with the same
	// bytes at the same offset.
	shadow *dropMsg
	// by, for a dropped leftover message, is the spool message that is
	// its whole copy and takes its place, or -1.
	by int
}

type mergeFile struct {
	f *platform.File
	d *Drop
	// ref: only the bytes count (at their offsets), not the messages: a
	// temp drop or TEMP.new whose messages a complete merge holds.
	ref bool
	// complete: durable and whole when written (a merge), never a copy
	// cut short.
	complete bool
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
	if err := removeIfExists(c.tmpPath()); err != nil {
		return res, err
	}
	// The leftover's name, and TEMP.new's, durable before a merge is
	// written beside them (a killed session may not have synced them):
	// a merge is never left without one of them.
	if err := platform.SyncParent(c.TempDrop); err != nil {
		return res, newErr(ErrIO, "sync temp drop directory", c.TempDrop, err)
	}

	if d != nil {
		// An in-place update's undo drop is settled first (undo.go):
		// removed, or turned into a plain temp drop to merge.
		h, isUndo, ok, err := readUndo(d)
		if err != nil {
			return res, err
		}
		if isUndo {
			if d, err = resolveUndo(c, lk, d, h, ok); err != nil {
				return res, err
			}
			if d == nil && !exists(c.newPath()) && !exists(c.mergePath()) {
				platform.Failpoint("recover.done")
				return res, nil
			}
			if d != nil {
				defer d.Close()
			}
		}
	}

	var old, refs []*mergeFile
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
	merge, err := openMerge(c)
	if err != nil {
		return res, err
	}
	if merge != nil {
		// A merge that crashed after making its result durable: that
		// result holds every message of the temp drop and TEMP.new (and
		// the spool's own mail then), so they are kept only for their
		// bytes, which the spool's may still show (the rules above).
		defer merge.Close()
		for _, mf := range old {
			mf.ref = true
		}
		refs, old = old, []*mergeFile{{f: merge, complete: true}}
	}
	cur := &mergeFile{f: lk.spool}

	opt := c.Parse
	opt.FromSpool = false
	all := append(append([]*mergeFile{}, old...), cur)
	for _, mf := range append(append([]*mergeFile{}, all...), refs...) {
		fi, err := mf.f.Stat()
		if err != nil {
			return res, newErr(ErrIO, "stat", mf.f.Name(), err)
		}
		mf.d, err = Parse(bufio.NewReaderSize(io.NewSectionReader(mf.f.OS(), 0, fi.Size()), 64<<10), opt)
		if err != nil {
			return res, newErr(ErrIO, "parse", mf.f.Name(), err)
		}
	}

	olds, curs, err := matchMessages(old, refs, cur)
	if err != nil {
		return res, err
	}

	// The merged content, made durable under the temp drop's name (the
	// leftover itself when it already is exactly that).
	plan := make([]*dropMsg, 0, len(olds)+len(curs))
	placed := make([]bool, len(curs))
	for _, om := range olds {
		if om.drop {
			// A torn or holey leftover copy: the spool's whole copy
			// takes its place.
			if j := om.by; j >= 0 && !placed[j] && curs[j].pair < 0 && !curs[j].drop {
				plan = append(plan, curs[j])
				placed[j] = true
			}
			continue
		}
		if om.pair >= 0 && curs[om.pair].m.UIDFound && !om.m.UIDFound {
			// The spool's copy carries the UID clients were shown.
			plan = append(plan, curs[om.pair])
		} else {
			plan = append(plan, om)
		}
	}
	for j, cm := range curs {
		if cm.pair < 0 && !cm.drop && !placed[j] {
			plan = append(plan, cm)
		}
	}
	// What a lost write left at the end of a message kept is no mail: a
	// NUL tail (the file's size reached the disk, its data did not) and,
	// in a spool message no leftover holds, a run of NULs and everything
	// after it (an append whose first part was lost).
	for _, pm := range plan {
		if err := cutDamage(all[pm.file], pm.m, pm.file == len(old) && pm.pair < 0); err != nil {
			return res, err
		}
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

	for _, pm := range plan {
		if pm.file < len(old) {
			res.Messages++
			res.Bytes += pm.m.Next - pm.m.Start
		}
	}
	// The source of the spool's rewrite, durable first: the leftover
	// itself when it already is exactly the merge, else the merge written
	// under TEMP.merge (the temp drop and TEMP.new stay until the spool
	// holds it, for their bytes).
	var src *platform.File
	if len(old) == 1 && junkBytes(old[0].d) == 0 && planIsFile(plan, 0, old[0].d) && (merge != nil || d != nil && newMail == nil) {
		src = old[0].f
		if merge == nil {
			if err := d.Sync(); err != nil {
				return res, newErr(ErrIO, "sync temp drop", c.TempDrop, err)
			}
		}
	} else {
		src, err = writePlan(c, all, plan, lk)
		if err != nil {
			return res, err
		}
		defer src.Close()
		platform.Failpoint("recover.tempdrop-replaced")
	}

	// The spool rewritten in place from it, then the merge removed, then
	// the leftovers: a merge never outlives both.
	if err := copySpoolFrom(c, lk.spool, src, 0, lk); err != nil {
		return res, err
	}
	platform.Failpoint("recover.spool-synced")
	if src != d {
		if err := removeIfExists(c.mergePath()); err != nil {
			return res, err
		}
		if err := platform.SyncParent(c.TempDrop); err != nil {
			return res, newErr(ErrIO, "sync temp drop directory", c.TempDrop, err)
		}
	}
	for _, p := range []string{c.newPath(), c.TempDrop} {
		if err := removeIfExists(p); err != nil {
			return res, err
		}
	}
	if err := platform.SyncParent(c.TempDrop); err != nil {
		return res, newErr(ErrIO, "sync temp drop directory", c.TempDrop, err)
	}
	platform.Failpoint("recover.done")
	return res, nil
}

// openMerge opens TEMP.merge, a merge's durable result, when it exists,
// with the checks a temp drop gets.
func openMerge(c *Config) (*platform.File, error) {
	f, err := platform.OpenFile(c.mergePath(), os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, newErr(ErrIO, "open", c.mergePath(), err)
	}
	fi, err := f.Stat()
	if err == nil {
		err = checkTempDrop(fi, c.mergePath())
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
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

// nulRunMin is the shortest run of NULs inside a spool message that is
// taken for a lost write rather than for a stray NUL of the message.
const nulRunMin = 16

// cutDamage ends message m (of mf) before a trailing run of NULs and,
// when inner is set, before its first run of nulRunMin NULs or more; the
// bytes cut off become junk of mf.
func cutDamage(mf *mergeFile, m *Msg, inner bool) error {
	cut, err := trimTrailingNUL(mf.f, m.Start, m.End)
	if err != nil {
		return err
	}
	if inner {
		if at, err := nulRun(mf.f, m.Start, cut, nulRunMin); err != nil {
			return err
		} else if at >= 0 {
			cut = at
		}
	}
	if cut >= m.End || cut <= m.HdrStart {
		return nil // nothing to cut, or nothing would be left of it
	}
	mf.d.Junk = append(mf.d.Junk, Range{Off: cut, Len: m.Next - cut})
	m.End, m.Next = cut, cut
	m.BodyStart = min(m.BodyStart, cut)
	return nil
}

// nulRun returns the offset of the first run of at least n NULs in
// [from, to) of f, or -1.
func nulRun(f *platform.File, from, to int64, n int) (int64, error) {
	buf := make([]byte, 32<<10)
	run, start := 0, int64(-1)
	for off := from; off < to; {
		k := min(int64(len(buf)), to-off)
		if _, err := f.ReadAt(buf[:k], off); err != nil {
			return 0, newErr(ErrIO, "read", f.Name(), err)
		}
		for i, b := range buf[:k] {
			if b != 0 {
				run = 0
				continue
			}
			if run == 0 {
				start = off + int64(i)
			}
			if run++; run >= n {
				return start, nil
			}
		}
		off += k
	}
	return -1, nil
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
// it to TEMP.merge, so that the merge result is durable, and known for
// one, before the spool is touched.
func writePlan(c *Config, all []*mergeFile, plan []*dropMsg, lk *spoolLock) (*platform.File, error) {
	format := MBox
	for _, mf := range all {
		if len(mf.d.Msgs) > 0 {
			format = mf.d.Format
			break
		}
	}
	return writeScratch(c, lk, c.mergePath(), func(w io.Writer) error {
		bw := newBoundaryWriter(w, format)
		for _, pm := range plan {
			if err := bw.startMessage(); err != nil {
				return err
			}
			if _, err := WriteRaw(bw, all[pm.file].f.OS(), pm.m); err != nil {
				return err
			}
		}
		return bw.Flush()
	})
}

// writeScratch writes a file under TEMP.tmp (scratch until renamed:
// removed on sight) with fill, which flushes what it buffers, syncs it,
// renames it to name and syncs the directory: name then holds it whole,
// durably, or is what it was.
func writeScratch(c *Config, lk *spoolLock, name string, fill func(w io.Writer) error) (*platform.File, error) {
	tmp := c.tmpPath()
	f, err := platform.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0660)
	if err != nil {
		return nil, newErr(ErrIO, "create", tmp, err)
	}
	if err := fill(&refreshWriter{w: f, lk: lk}); err != nil {
		f.Close()
		return nil, newErr(ErrIO, "write", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, newErr(ErrIO, "sync", tmp, err)
	}
	if err := platform.Rename(tmp, name); err != nil {
		f.Close()
		return nil, newErr(ErrIO, "rename", tmp, err)
	}
	if err := platform.SyncParent(name); err != nil {
		f.Close()
		return nil, newErr(ErrIO, "sync directory of", name, err)
	}
	return f, nil
}

// matchMessages pairs the leftover messages with the spool's and marks
// the copies that are torn or damaged (see the package comment above for
// the rules and why they are right).
func matchMessages(old, refs []*mergeFile, cur *mergeFile) (olds, curs []*dropMsg, err error) {
	all := append(append([]*mergeFile{}, old...), cur)
	for fi, mf := range all {
		for i := range mf.d.Msgs {
			dm := &dropMsg{file: fi, m: &mf.d.Msgs[i], pair: -1, by: -1, last: i == len(mf.d.Msgs)-1, whole: mf.complete}
			if dm.sep, err = separatorLine(mf.f, dm.m); err != nil {
				return nil, nil, err
			}
			h := sha256.New()
			if dm.length, err = normalize(h, mf.f, dm.m, -1); err != nil {
				return nil, nil, err
			}
			h.Sum(dm.key[:0])
			if dm.nul, err = firstNUL(mf.f, dm.m); err != nil {
				return nil, nil, err
			}
			if fi < len(old) {
				olds = append(olds, dm)
			} else {
				curs = append(curs, dm)
			}
		}
	}
	mt := &matcher{all: all, old: append(append([]*mergeFile{}, old...), refs...), refs: refs, cur: cur}
	for _, mf := range mt.old {
		fi, err := mf.f.Stat()
		if err != nil {
			return nil, nil, newErr(ErrIO, "stat", mf.f.Name(), err)
		}
		mt.sizes = append(mt.sizes, fi.Size())
	}
	// Spool messages that are the leftover's own bytes at the same
	// offset: the spool never lost them (the leftover was copied from
	// them) or they are the old content a rewrite's lost truncate let
	// show through. Either way they are the same instance as the
	// leftover's message there, not another one.
	for _, cm := range curs {
		var inRef bool
		if cm.shadow, inRef, err = mt.shadowOf(cm, olds); err != nil {
			return nil, nil, err
		}
		// The bytes of a leftover whose messages a merge holds: the
		// merge has this one.
		cm.drop = inRef
	}
	// One-to-one exact matches, in order: the spool's other copies first
	// (a rewrite's copies), then the shadows, each of which pairs with
	// its own leftover message unless that one already has its copy.
	byKey := make(map[[32]byte][]int)
	for i, om := range olds {
		byKey[om.key] = append(byKey[om.key], i)
	}
	take := func(j int, cm *dropMsg) {
		is := byKey[cm.key]
		for n, i := range is {
			if olds[i].pair < 0 {
				olds[i].pair, cm.pair = j, i
				byKey[cm.key] = append(is[:n:n], is[n+1:]...)
				return
			}
		}
	}
	for j, cm := range curs {
		if cm.shadow == nil && !cm.drop {
			take(j, cm)
		}
	}
	for j, cm := range curs {
		switch {
		case cm.shadow == nil:
		case cm.shadow.pair < 0 && cm.shadow.key == cm.key:
			i := index(olds, cm.shadow)
			cm.shadow.pair, cm.pair = j, i
			is := byKey[cm.key]
			for n, k := range is {
				if k == i {
					byKey[cm.key] = append(is[:n:n], is[n+1:]...)
					break
				}
			}
		default:
			cm.drop = true // a second image of a message already paired
		}
	}
	// Torn copies in the spool: a proper prefix of a leftover message
	// (a rewrite cut short).
	for _, cm := range curs {
		if cm.pair >= 0 || cm.drop {
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
	// Damaged leftover copies: a hole of NULs (a login copy whose middle
	// writes were lost) in a message the spool still holds whole. They
	// are judged first: a spool copy is never taken for a damaged copy
	// of one of them.
	for _, om := range olds {
		if om.pair >= 0 || om.drop || om.nul < 0 || om.whole {
			continue
		}
		if om.drop, om.by, err = mt.holeyCopy(om, curs); err != nil {
			return nil, nil, err
		}
	}
	// Damaged copies in the spool: a leftover message's bytes up to a
	// point, then to its end a hole of NULs or the old bytes of the
	// leftovers at the same offset (a rewrite whose later writes or
	// whose truncate were lost). The message is the leftover's; the rest
	// is kept aside. A spool message that is nothing but the leftovers'
	// bytes at the same offsets and NULs holds nothing of its own.
	for _, cm := range curs {
		if cm.pair >= 0 || cm.drop {
			continue
		}
		cut, err := mt.oldTail(cm)
		if err != nil {
			return nil, nil, err
		}
		if cut == cm.m.Start {
			cm.drop = true
			continue
		}
		if cm.nul >= 0 && cm.nul < cut {
			cut = cm.nul
		}
		// Old bytes inside it: where a write was lost with the truncate
		// before it, the leftovers' bytes at the same offsets show, and
		// the rewrite's go on after them. A message that begins in them
		// is the leftover's there, its rest a rewrite's copy.
		switch start, end, err := mt.oldRun(cm, cut); {
		case err != nil:
			return nil, nil, err
		case start == cm.m.Start:
			cut = end
		case start >= 0:
			cut = start
		}
		for _, om := range olds {
			if om.drop || om.sep != cm.sep {
				continue
			}
			ok, err := mt.headIsPrefix(cm, cut, om)
			if err != nil {
				return nil, nil, err
			}
			if ok {
				cm.drop = true
				cur.d.Junk = append(cur.d.Junk, Range{Off: cut, Len: cm.m.Next - cut})
				break
			}
		}
	}
	// Torn leftover copies: a login copy (or a server-mode temp drop)
	// cut short while the spool was still intact, so the spool's copy is
	// the whole message. Only the last message of a leftover file can be
	// cut short; a message that something follows is whole, and a spool
	// copy that extends it carries bytes that are no mail.
	for _, om := range olds {
		if om.pair >= 0 || om.drop {
			continue
		}
		for j, cm := range curs {
			if cm.pair >= 0 || cm.drop || om.sep != cm.sep || om.length >= cm.length {
				continue
			}
			ok, err := isPrefix(om, cm, all)
			if err != nil {
				return nil, nil, err
			}
			if !ok {
				continue
			}
			if om.last && !om.whole {
				om.drop, om.by = true, j
			} else {
				cm.drop = true
				cur.d.Junk = append(cur.d.Junk, Range{Off: cm.m.Start, Len: cm.m.Next - cm.m.Start})
			}
			break
		}
	}
	return olds, curs, nil
}

func index(ms []*dropMsg, m *dropMsg) int {
	for i := range ms {
		if ms[i] == m {
			return i
		}
	}
	return -1
}

// matcher compares messages of the files being merged.
type matcher struct {
	all   []*mergeFile // the files whose messages are merged, the spool last
	old   []*mergeFile // every file but the spool, refs included
	refs  []*mergeFile
	sizes []int64 // of the old files
	cur   *mergeFile
}

// shadowOf returns the leftover message that starts where spool message
// cm starts and has the same bytes, or nil; inRef tells that a ref file
// has such a message.
func (mt *matcher) shadowOf(cm *dropMsg, olds []*dropMsg) (shadow *dropMsg, inRef bool, err error) {
	for _, om := range olds {
		if om.m.Start != cm.m.Start || om.m.End != cm.m.End {
			continue
		}
		same, err := sameBytes(mt.all[om.file].f, mt.cur.f, om.m.Start, om.m.End)
		if err != nil || same {
			return om, false, err
		}
	}
	for _, mf := range mt.refs {
		for i := range mf.d.Msgs {
			m := &mf.d.Msgs[i]
			if m.Start != cm.m.Start || m.End != cm.m.End {
				continue
			}
			same, err := sameBytes(mf.f, mt.cur.f, m.Start, m.End)
			if err != nil || same {
				return nil, same, err
			}
		}
	}
	return nil, false, nil
}

// sameBytes reports whether a and b hold the same bytes in [from, to).
func sameBytes(a, b *platform.File, from, to int64) (bool, error) {
	same, err := sameBytesAt(a.OS(), from, b.OS(), from, to-from)
	if err != nil {
		return false, newErr(ErrIO, "read", a.Name()+" or "+b.Name(), err)
	}
	return same, nil
}

// firstNUL returns the offset of the first NUL byte of m that is not part
// of a run of NULs reaching its end (normalize trims those), or -1.
func firstNUL(f *platform.File, m *Msg) (int64, error) {
	end, err := trimTrailingNUL(f, m.Start, m.End)
	if err != nil {
		return 0, err
	}
	buf := make([]byte, 32<<10)
	for off := m.Start; off < end; {
		n := min(int64(len(buf)), end-off)
		if _, err := f.ReadAt(buf[:n], off); err != nil {
			return 0, newErr(ErrIO, "read", f.Name(), err)
		}
		if i := bytes.IndexByte(buf[:n], 0); i >= 0 {
			return off + int64(i), nil
		}
		off += n
	}
	return -1, nil
}

// headIsPrefix reports whether the bytes of message a before offset cut
// (past its separator line) are, in normal form, a prefix of message b.
func (mt *matcher) headIsPrefix(a *dropMsg, cut int64, b *dropMsg) (bool, error) {
	if cut >= a.m.End || cut <= a.m.Start+int64(len(a.sep))+1 {
		return false, nil
	}
	head := &dropMsg{file: a.file, m: &Msg{Start: a.m.Start, End: cut}}
	h := sha256.New()
	var err error
	if head.length, err = normalize(h, mt.all[a.file].f, head.m, -1); err != nil {
		return false, err
	}
	h.Sum(head.key[:0])
	if head.length > b.length {
		return false, nil
	}
	return isPrefix(head, b, mt.all)
}

// oldTail returns where the longest run of spool message cm's last bytes
// begins that are NULs or equal, byte by byte, to what one of the
// leftover files holds at the same offset.
func (mt *matcher) oldTail(cm *dropMsg) (int64, error) {
	fc, sizes := mt.cur.f, mt.sizes
	const chunk = 4096
	bc, bo := make([]byte, chunk), make([]byte, chunk)
	end := cm.m.End
	for end > cm.m.Start {
		start := max(cm.m.Start, end-chunk)
		n := end - start
		if _, err := fc.ReadAt(bc[:n], start); err != nil {
			return 0, newErr(ErrIO, "read", fc.Name(), err)
		}
		match := make([]bool, n)
		for i := range match {
			match[i] = bc[i] == 0
		}
		for k, mf := range mt.old {
			if start >= sizes[k] {
				continue
			}
			m := min(n, sizes[k]-start)
			if _, err := mf.f.ReadAt(bo[:m], start); err != nil {
				return 0, newErr(ErrIO, "read", mf.f.Name(), err)
			}
			for i := int64(0); i < m; i++ {
				match[i] = match[i] || bc[i] == bo[i]
			}
		}
		for i := n - 1; i >= 0; i-- {
			if !match[i] {
				return start + i + 1, nil
			}
		}
		end = start
	}
	return cm.m.Start, nil
}

// oldRunMin is the shortest run of a leftover's bytes, at the same
// offsets, inside a spool message that is taken for old bytes a lost
// write left showing rather than for a likeness (messages from one
// sender share their first lines; bodies repeat lines). A lost write
// leaves a page or more (a write is 64 KiB, torn at 4 KiB pages); one
// that ends the message is oldTail's.
const oldRunMin = 4096

// oldRun returns the first run, before offset to, of at least oldRunMin
// bytes of spool message cm that equal what one of the leftover files
// holds at the same offsets and that other bytes follow, as [start,
// end), or start -1 when there is none. A run that reaches to, or the
// end of the leftovers, is none: the whole message's likeness is a
// shadow's and oldTail's business, and past the leftovers' end nothing
// is known to differ.
func (mt *matcher) oldRun(cm *dropMsg, to int64) (start, end int64, err error) {
	fc, sizes := mt.cur.f, mt.sizes
	if len(sizes) > 0 {
		to = min(to, max(slices.Max(sizes), cm.m.Start))
	}
	const chunk = 32 << 10
	bc, bo := make([]byte, chunk), make([]byte, chunk)
	match := make([]bool, chunk)
	run, at := 0, int64(-1)
	for off := cm.m.Start; off < to; {
		n := min(int64(chunk), to-off)
		if _, err := fc.ReadAt(bc[:n], off); err != nil {
			return -1, -1, newErr(ErrIO, "read", fc.Name(), err)
		}
		for i := range match[:n] {
			match[i] = bc[i] == 0 // a hole of the spool's: no bytes of its own
		}
		for k, mf := range mt.old {
			if off >= sizes[k] {
				continue
			}
			m := min(n, sizes[k]-off)
			if _, err := mf.f.ReadAt(bo[:m], off); err != nil {
				return -1, -1, newErr(ErrIO, "read", mf.f.Name(), err)
			}
			for i := int64(0); i < m; i++ {
				// A NUL in the leftover is a hole of its own (a copy's
				// lost write), not a byte the spool could differ from.
				match[i] = match[i] || bc[i] == bo[i] || bo[i] == 0
			}
		}
		for i := int64(0); i < n; i++ {
			switch {
			case match[i]:
				if run == 0 {
					at = off + i
				}
				run++
			case run >= oldRunMin:
				return at, off + i, nil
			default:
				run = 0
			}
		}
		off += n
	}
	return -1, -1, nil
}

// holeyCopy reports whether leftover message om, which holds NUL bytes,
// is a copy of the spool's bytes whose middle was lost: its other bytes
// are the spool's at the same offsets, or its bytes before the first
// hole are a spool message's.
func (mt *matcher) holeyCopy(om *dropMsg, curs []*dropMsg) (bool, int, error) {
	f, sp := mt.all[om.file].f, mt.cur.f
	fi, err := sp.Stat()
	if err != nil {
		return false, -1, newErr(ErrIO, "stat", sp.Name(), err)
	}
	if om.m.End <= fi.Size() {
		bo, bs := make([]byte, 32<<10), make([]byte, 32<<10)
		same := true
		for off := om.m.Start; off < om.m.End && same; {
			n := min(int64(len(bo)), om.m.End-off)
			if _, err := f.ReadAt(bo[:n], off); err != nil {
				return false, -1, newErr(ErrIO, "read", f.Name(), err)
			}
			if _, err := sp.ReadAt(bs[:n], off); err != nil {
				return false, -1, newErr(ErrIO, "read", sp.Name(), err)
			}
			for i := range bo[:n] {
				if bo[i] != 0 && bo[i] != bs[i] {
					same = false
					break
				}
			}
			off += n
		}
		if same {
			for j, cm := range curs {
				if cm.m.Start == om.m.Start && !cm.drop {
					return true, j, nil
				}
			}
			return true, -1, nil
		}
	}
	for j, cm := range curs {
		if cm.drop || om.sep != cm.sep {
			continue
		}
		if ok, err := mt.headIsPrefix(om, om.nul, cm); err != nil || ok {
			return ok, j, err
		}
	}
	return false, -1, nil
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
func normalize(h io.Writer, f *platform.File, m *Msg, limit int64) (int64, error) {
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
	one       [1]byte
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
	w.one[0] = b
	return w.out1(w.one[:])
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
