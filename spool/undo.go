package spool

import (
	"bufio"
	"encoding/binary"
	"errors"
	"hash"
	"hash/crc32"
	"io"
	"sync"

	"github.com/popperd/popper/platform"
)

// The undo drop: what an in-place update writes into the temp drop before
// it rewrites the spool from the first message that changes (offset
// From). It holds the spool's bytes from From to the end as they were
// before the update, after a header that says where they belong and what
// the rewrite will write:
//
//	[0, undoHeaderLen)                     the header (undoHeader.encode)
//	[undoHeaderLen, +OldSize-From)         the spool's bytes [From, OldSize)
//
// Only the tail is written, once here and once into the spool, and two
// fsyncs make an update durable: the undo drop's (and its directory's
// where a file's fsync does not make its new name durable:
// platform.NameDurableWithSync), then the spool's.
// Recovery (resolveUndo) reads the leftover as follows:
//
//   - A header or undo copy that does not check: the drop's fsync never
//     returned, so the spool was never touched. The drop goes.
//   - The spool holds the rewrite whole (its bytes from From check
//     against the header's sums, and its head is the one the update
//     saw): the update was done and only the drop's unlink, which is not
//     synced, was lost. The drop goes; the spool is kept as it is.
//   - Otherwise the drop, with the spool's bytes before From put back in
//     front, is the spool as it was before the update, at the same
//     offsets: the picture of a login copy whose rewrite was cut short,
//     which the merge in recover.go resolves: the rewrite's copies pair
//     with the messages they copy, and old bytes that a lost truncate
//     left showing are the leftover's own at the same offsets. It is
//     written out as a plain temp drop and merged.
//
// The header begins with a NUL, which no mbox or MMDF file does, so a
// qpopper leftover is never taken for an undo drop. The spool's bytes
// before From are not copied: the update never writes there, and the
// header's head sum (of the up to 64 KiB before From) tells recovery
// whether something else rewrote the spool since. When something did,
// the undo copy is merged as a leftover of its own: nothing is lost, but
// its messages may come back.

const (
	undoMagic     = "\x00popper-undo 1\n"
	undoHeaderLen = 128
	undoHeadMax   = 64 << 10
)

// sum64 is a file range's CRC-32C and CRC-32 (IEEE) together: a 64-bit
// check, fast enough to run over a whole tail (hardware CRC on amd64 and
// arm64), for telling a rewrite that reached the disk whole from one
// that lost writes.
type sum64 struct{ c, i uint32 }

// summer computes a sum64 of what is written to it.
type summer struct {
	c, i hash.Hash32
	n    int64
}

// castagnoli is the CRC-32C table, made when an update first needs it.
var castagnoli = sync.OnceValue(func() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) })

func newSummer() *summer {
	return &summer{c: crc32.New(castagnoli()), i: crc32.NewIEEE()}
}

func (s *summer) Write(p []byte) (int, error) {
	s.c.Write(p)
	s.i.Write(p)
	s.n += int64(len(p))
	return len(p), nil
}

func (s *summer) sum() sum64 { return sum64{s.c.Sum32(), s.i.Sum32()} }

// sumRange is the sum64 of [off, off+n) of r.
func sumRange(r io.ReaderAt, off, n int64) (sum64, error) {
	s := newSummer()
	if _, err := io.Copy(s, io.NewSectionReader(r, off, n)); err != nil {
		return sum64{}, err
	}
	if s.n != n {
		return sum64{}, io.ErrUnexpectedEOF
	}
	return s.sum(), nil
}

// undoHeader says what an undo drop holds and what the rewrite wrote.
type undoHeader struct {
	From    int64 // where the rewrite starts in the spool
	OldSize int64 // the spool's size before it: the undo copy is [From, OldSize)
	TailLen int64 // bytes the rewrite writes from From
	HeadLen int64 // bytes before From that Head covers
	Head    sum64 // the spool's [From-HeadLen, From)
	Tail    sum64 // the rewrite's bytes
	Undo    sum64 // the undo copy
}

func (h *undoHeader) encode() []byte {
	b := make([]byte, undoHeaderLen)
	copy(b, undoMagic)
	le := binary.LittleEndian
	p := b[len(undoMagic):]
	for _, v := range []int64{h.From, h.OldSize, h.TailLen, h.HeadLen} {
		le.PutUint64(p, uint64(v))
		p = p[8:]
	}
	for _, s := range []sum64{h.Head, h.Tail, h.Undo} {
		le.PutUint32(p, s.c)
		le.PutUint32(p[4:], s.i)
		p = p[8:]
	}
	s := newSummer()
	s.Write(b[:len(b)-8])
	sum := s.sum()
	le.PutUint32(b[len(b)-8:], sum.c)
	le.PutUint32(b[len(b)-4:], sum.i)
	return b
}

// decodeUndoHeader reads the header of a would-be undo drop. isUndo is
// false when b does not begin with the magic (any other leftover); ok
// is false when it does but the header does not check (torn).
func decodeUndoHeader(b []byte) (h undoHeader, isUndo, ok bool) {
	if len(b) < len(undoMagic) || string(b[:len(undoMagic)]) != undoMagic {
		return h, false, false
	}
	if len(b) < undoHeaderLen {
		return h, true, false
	}
	b = b[:undoHeaderLen]
	le := binary.LittleEndian
	s := newSummer()
	s.Write(b[:len(b)-8])
	if (s.sum() != sum64{le.Uint32(b[len(b)-8:]), le.Uint32(b[len(b)-4:])}) {
		return h, true, false
	}
	p := b[len(undoMagic):]
	for _, v := range []*int64{&h.From, &h.OldSize, &h.TailLen, &h.HeadLen} {
		*v = int64(le.Uint64(p))
		p = p[8:]
	}
	for _, v := range []*sum64{&h.Head, &h.Tail, &h.Undo} {
		*v = sum64{le.Uint32(p), le.Uint32(p[4:])}
		p = p[8:]
	}
	ok = h.From >= 0 && h.OldSize >= h.From && h.TailLen >= 0 && h.HeadLen >= 0 && h.HeadLen <= h.From
	return h, true, ok
}

// writeTail writes the new spool content from message first (at offset
// from) on: the kept messages as the write-back writes them, then the
// mail that arrived during the session (the spool's [spoolEnd, size)).
// The boundary before the first of them is judged on the spool's bytes
// before from, as if the whole content were written. The messages are
// read from old, which holds the spool's bytes [from, size) at their
// offsets: the spool itself, or the undo copy once the spool is being
// rewritten.
func (md *Maildrop) writeTail(w io.Writer, old io.ReaderAt, first int, from, size int64, del, retr []bool, lk *spoolLock) (int64, error) {
	sp := md.spool
	bw := newBoundaryWriter(w, md.d.Format)
	if from > 0 {
		var prev [2]byte
		k := min(from, 2)
		if _, err := sp.ReadAt(prev[2-k:], from-k); err != nil {
			return 0, err
		}
		bw.follow(prev)
	}
	if err := md.writeKept(bw, old, first, del, retr, false, lk); err != nil {
		return 0, err
	}
	if size > md.spoolEnd {
		if err := bw.copyRaw(io.NewSectionReader(old, md.spoolEnd, size-md.spoolEnd)); err != nil {
			return 0, err
		}
	}
	if err := bw.Flush(); err != nil {
		return 0, err
	}
	return bw.written(), nil
}

// writeUndo makes the undo drop of an update that rewrites the spool from
// message first (offset from), the spool being size bytes, durable in
// the temp drop, and returns its header. The header goes first, so a
// kill during the copy leaves a drop whose undo copy does not check.
func (md *Maildrop) writeUndo(first int, from, size int64, del, retr []bool, lk *spoolLock) (undoHeader, error) {
	c, sp := md.cfg, md.spool
	h := undoHeader{From: from, OldSize: size, HeadLen: min(from, undoHeadMax)}
	var err error
	if h.Head, err = sumRange(sp.OS(), from-h.HeadLen, h.HeadLen); err != nil {
		return h, newErr(ErrIO, "read spool", c.Spool, err)
	}
	if h.Undo, err = sumRange(sp.OS(), from, size-from); err != nil {
		return h, newErr(ErrIO, "read spool", c.Spool, err)
	}
	tail := newSummer()
	if h.TailLen, err = md.writeTail(tail, sp.OS(), first, from, size, del, retr, lk); err != nil {
		return h, newErr(ErrIO, "read spool", c.Spool, err)
	}
	h.Tail = tail.sum()

	d := md.drop
	if _, err := d.WriteAt(h.encode(), 0); err != nil {
		return h, newErr(ErrIO, "write temp drop", c.TempDrop, err)
	}
	w := bufio.NewWriterSize(&refreshWriter{w: &offsetWriter{f: d, off: undoHeaderLen}, lk: lk}, 64<<10)
	if _, err := io.Copy(w, io.NewSectionReader(sp.OS(), from, size-from)); err != nil {
		return h, newErr(ErrIO, "write temp drop", c.TempDrop, err)
	}
	if err := w.Flush(); err != nil {
		return h, newErr(ErrIO, "write temp drop", c.TempDrop, err)
	}
	platform.Failpoint("update.tempdrop-written")
	if err := d.Sync(); err != nil {
		return h, newErr(ErrIO, "sync temp drop", c.TempDrop, err)
	}
	if !platform.NameDurableWithSync(d) {
		if err := platform.SyncParent(c.TempDrop); err != nil {
			return h, newErr(ErrIO, "sync temp drop directory", c.TempDrop, err)
		}
	}
	platform.Failpoint("update.tempdrop-synced")
	return h, nil
}

// undoView reads an undo drop's copy at the spool offsets it came from
// (those at or after the header's From).
type undoView struct {
	d    *platform.File
	from int64
}

func (u undoView) ReadAt(p []byte, off int64) (int, error) {
	return u.d.ReadAt(p, off-u.from+undoHeaderLen)
}

// offsetWriter writes a file sequentially from off.
type offsetWriter struct {
	f   *platform.File
	off int64
}

func (o *offsetWriter) Write(p []byte) (int, error) {
	n, err := o.f.WriteAt(p, o.off)
	o.off += int64(n)
	return n, err
}

// readUndo returns the header of d when d is an undo drop; isUndo is
// false for any other leftover, ok false for an undo drop whose header
// or undo copy does not check.
func readUndo(d *platform.File) (h undoHeader, isUndo, ok bool, err error) {
	b := make([]byte, undoHeaderLen)
	n, err := d.ReadAt(b, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return h, false, false, newErr(ErrIO, "read", d.Name(), err)
	}
	h, isUndo, ok = decodeUndoHeader(b[:n])
	if !ok {
		return h, isUndo, false, nil
	}
	fi, err := d.Stat()
	if err != nil {
		return h, true, false, newErr(ErrIO, "stat", d.Name(), err)
	}
	if fi.Size() != undoHeaderLen+h.OldSize-h.From {
		return h, true, false, nil
	}
	s, err := sumRange(d.OS(), undoHeaderLen, h.OldSize-h.From)
	if err != nil {
		return h, true, false, newErr(ErrIO, "read", d.Name(), err)
	}
	return h, true, s == h.Undo, nil
}

// resolveUndo settles a leftover undo drop d (see the top of this file).
// It returns the temp drop to merge, or nil when nothing is left to
// merge (the drop is gone).
func resolveUndo(c *Config, lk *spoolLock, d *platform.File, h undoHeader, ok bool) (*platform.File, error) {
	if !ok {
		c.logf("Removed %s: an update's undo copy that was never complete; %s was not touched", c.TempDrop, c.Spool)
		return nil, removeDurably(c.TempDrop)
	}
	sp := lk.spool
	fi, err := sp.Stat()
	if err != nil {
		return nil, newErr(ErrIO, "stat spool", c.Spool, err)
	}
	size := fi.Size()
	headOK := false
	if h.From <= size {
		s, err := sumRange(sp.OS(), h.From-h.HeadLen, h.HeadLen)
		if err != nil {
			return nil, newErr(ErrIO, "read spool", c.Spool, err)
		}
		headOK = s == h.Head
	}
	if headOK && h.From+h.TailLen <= size {
		s, err := sumRange(sp.OS(), h.From, h.TailLen)
		if err != nil {
			return nil, newErr(ErrIO, "read spool", c.Spool, err)
		}
		end := h.From + h.TailLen
		residue := false
		if s == h.Tail && end < h.OldSize && size >= h.OldSize {
			// Old bytes after the rewrite, when its truncate was lost.
			if residue, err = sameBytesAt(sp.OS(), end, d.OS(), undoHeaderLen+end-h.From, h.OldSize-end); err != nil {
				return nil, newErr(ErrIO, "read spool or temp drop", c.Spool, err)
			}
		}
		if s == h.Tail && !residue {
			// A killed update may not have synced its rewrite: it goes
			// to disk before its undo copy goes.
			if err := sp.Sync(); err != nil {
				return nil, newErr(ErrIO, "sync spool", c.Spool, err)
			}
			c.logf("Removed %s: the update it was the undo copy of is complete in %s", c.TempDrop, c.Spool)
			return nil, removeDurably(c.TempDrop)
		}
	}
	if !headOK {
		c.logf("%s changed since the update that left %s: its undo copy is merged as it is", c.Spool, c.TempDrop)
	}
	return materializeUndo(c, lk, d, h, headOK)
}

// materializeUndo writes the spool as it was before the update (the
// spool's head, when it is still the update's, then the undo copy) under
// TEMP.tmp, makes it durable and renames it over the temp drop, which
// from then on is a plain leftover. A crash before the rename leaves the
// undo drop and a scratch file recovery removes.
func materializeUndo(c *Config, lk *spoolLock, d *platform.File, h undoHeader, withHead bool) (*platform.File, error) {
	f, err := writeScratch(c, lk, c.TempDrop, func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 64<<10)
		if withHead {
			if _, err := io.Copy(bw, io.NewSectionReader(lk.spool.OS(), 0, h.From)); err != nil {
				return err
			}
		}
		if _, err := io.Copy(bw, io.NewSectionReader(d.OS(), undoHeaderLen, h.OldSize-h.From)); err != nil {
			return err
		}
		return bw.Flush()
	})
	if err != nil {
		return nil, err
	}
	platform.Failpoint("recover.undo-replaced")
	return f, nil
}

// removeDurably unlinks name and syncs its directory.
func removeDurably(name string) error {
	if err := removeIfExists(name); err != nil {
		return err
	}
	if err := platform.SyncParent(name); err != nil {
		return newErr(ErrIO, "sync directory of", name, err)
	}
	return nil
}

// sameBytesAt reports whether a's n bytes at aOff equal b's at bOff.
func sameBytesAt(a io.ReaderAt, aOff int64, b io.ReaderAt, bOff, n int64) (bool, error) {
	x, y := make([]byte, 32<<10), make([]byte, 32<<10)
	for n > 0 {
		k := min(n, int64(len(x)))
		if _, err := a.ReadAt(x[:k], aOff); err != nil {
			return false, err
		}
		if _, err := b.ReadAt(y[:k], bOff); err != nil {
			return false, err
		}
		if string(x[:k]) != string(y[:k]) {
			return false, nil
		}
		aOff, bOff, n = aOff+k, bOff+k, n-k
	}
	return true, nil
}
