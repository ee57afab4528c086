package spool

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/popperd/popper/platform"
)

func TestUndoHeader(t *testing.T) {
	h := undoHeader{From: 1 << 40, OldSize: 1<<40 + 77, TailLen: 12, HeadLen: 65536,
		Head: sum64{1, 2}, Tail: sum64{3, 4}, Undo: sum64{5, 6}}
	b := h.encode()
	if len(b) != undoHeaderLen || b[0] != 0 {
		t.Fatalf("header of %d bytes starting with %q", len(b), b[0])
	}
	got, isUndo, ok := decodeUndoHeader(b)
	if !isUndo || !ok || got != h {
		t.Fatalf("decoded %+v (undo %v, ok %v), want %+v", got, isUndo, ok, h)
	}
	for i := range b {
		c := append([]byte(nil), b...)
		c[i] ^= 0x20
		if _, _, ok := decodeUndoHeader(c); ok {
			t.Fatalf("a header with byte %d changed checks", i)
		}
	}
	if _, isUndo, _ := decodeUndoHeader(b[:len(undoMagic)+3]); !isUndo {
		t.Error("a header cut short is not known for an undo drop")
	}
	for _, other := range []string{"", "From a@b Sat Nov 28 10:00:00 2026\n", "\x01\x01\x01\x01\n", strings.Repeat("\x00", 200)} {
		if _, isUndo, _ := decodeUndoHeader([]byte(other)); isUndo {
			t.Errorf("%q taken for an undo drop", other)
		}
	}
}

// undoFixture settles a spool of eight messages, then runs a session
// that deletes the third, and returns the spool before that session's
// update, the undo drop it wrote, the spool after it and the offset it
// rewrote from.
func undoFixture(t *testing.T, c *Config) (before, undo, after []byte, from int64) {
	t.Helper()
	var all strings.Builder
	for i := 1; i <= 8; i++ {
		var body strings.Builder
		for l := 0; l < 300*i; l++ {
			fmt.Fprintf(&body, "message %d line %d\n", i, l)
		}
		all.WriteString(testMsg(fmt.Sprintf("m%d", i), body.String()))
	}
	write(t, c.Spool, all.String())
	md, err := Open(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := md.Commit(nil, nil); err != nil {
		t.Fatal(err)
	}
	before, _ = os.ReadFile(c.Spool)

	md, err = Open(c)
	if err != nil {
		t.Fatal(err)
	}
	del, retr := md.marks([]bool{false, false, true}, nil)
	first, from := md.firstChange(del, retr)
	lk, err := lockSpool(c, updateDotTries, md.spool, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := md.writeUndo(first, from, int64(len(before)), del, retr, lk); err != nil {
		t.Fatal(err)
	}
	lk.release()
	undo, _ = os.ReadFile(c.TempDrop)
	if err := md.Commit([]bool{false, false, true}, nil); err != nil {
		t.Fatal(err)
	}
	after, _ = os.ReadFile(c.Spool)
	if from != md.msg(2).Start || len(after) >= len(before) {
		t.Fatalf("the update rewrote from %d (want %d) to %d bytes (from %d)", from, md.msg(2).Start, len(after), len(before))
	}
	return before, undo, after, from
}

// TestUndoRecovery puts a spool and an undo drop as a crash of the update
// could leave them, and checks what recovery makes of them.
func TestUndoRecovery(t *testing.T) {
	c := testConfig(t, false)
	before, undo, after, from := undoFixture(t, c)
	late := testMsg("late", "delivered after the crash")
	allIDs := []string{"m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8"}
	kept := []string{"m1", "m2", "m4", "m5", "m6", "m7", "m8"}
	holed := append([]byte(nil), after...)
	mid := from + (int64(len(after))-from)/2
	copy(holed[mid:], make([]byte, 4096))
	truncated := append(append([]byte(nil), after...), before[len(after):]...)
	// The truncate and the first 64 KiB write lost, the later ones kept:
	// old bytes, then the rewrite's, then old bytes again.
	firstLost := append([]byte(nil), before...)
	copy(firstLost[from+64<<10:], after[from+64<<10:])
	tornUndo := undo[:len(undo)-1]
	badHeader := append([]byte(nil), undo...)
	badHeader[20] ^= 1
	noFirst := before[strings.Index(string(before), "\nFrom sender")+1:]

	for _, tc := range []struct {
		name        string
		spool, drop []byte
		want        []string
		same        []byte // the spool's exact bytes afterwards, if given
		noWrite     bool   // recovery must not write the spool
		quarantine  bool   // damaged bytes may go to a quarantine file
	}{
		{"spool untouched", before, undo, allIDs, before, false, false},
		{"rewrite whole", after, undo, kept, after, true, false},
		{"rewrite whole, new mail after", append(append([]byte(nil), after...), late...), undo, append(kept, "late"), nil, true, false},
		{"rewrite cut short", after[:mid], undo, allIDs, before, false, false},
		{"rewrite with a hole", holed, undo, allIDs, nil, false, true},
		{"rewrite whole, truncate lost", truncated, undo, allIDs, nil, false, true},
		{"truncated, nothing written", before[:from], undo, allIDs, before, false, false},
		{"truncate and first write lost", firstLost, undo, allIDs, nil, false, true},
		{"undo drop torn, spool untouched", before, tornUndo, allIDs, before, true, false},
		{"undo header torn, spool untouched", before, badHeader, allIDs, before, true, false},
		{"spool changed since", noFirst, undo, allIDs[1:], nil, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			write(t, c.Spool, string(tc.spool))
			if err := os.WriteFile(c.TempDrop, tc.drop, 0600); err != nil {
				t.Fatal(err)
			}
			platform.ResetCounters()
			if _, err := Recover(c); err != nil {
				t.Fatal(err)
			}
			wrote := platform.ReadCounters().BytesWritten
			if _, err := os.Lstat(c.TempDrop); err == nil {
				t.Error("the undo drop is still there")
			}
			got := ids(t, c.Spool)
			sorted := append([]string(nil), got...)
			sort.Strings(sorted)
			want := append([]string(nil), tc.want...)
			sort.Strings(want)
			if !equal(sorted, want) {
				t.Errorf("the spool holds %v, want %v once each", got, tc.want)
			}
			if tc.same != nil {
				b, _ := os.ReadFile(c.Spool)
				if string(b) != string(tc.same) {
					t.Errorf("the spool is not what it was before the crash (%d bytes, want %d)", len(b), len(tc.same))
				}
			}
			if tc.noWrite && wrote != 0 {
				t.Errorf("recovery wrote %d bytes, want none", wrote)
			}
			dir := filepath.Dir(c.Spool)
			m, _ := os.ReadDir(dir)
			for _, e := range m {
				switch {
				case e.Name() == "alice":
				case tc.quarantine && strings.HasPrefix(e.Name(), ".alice.pop.unparsed-"):
					os.Remove(filepath.Join(dir, e.Name()))
				default:
					t.Errorf("left in the directory: %s", e.Name())
					os.Remove(filepath.Join(dir, e.Name()))
				}
			}
		})
	}
}

// TestUpdateCost: an update that deletes a message writes its tail twice
// (the undo copy, the rewrite) and syncs three times (the undo copy, the
// spool's truncate, the spool) where a file's fsync makes its name
// durable, four times elsewhere.
func TestUpdateCost(t *testing.T) {
	c := testConfig(t, false)
	before, _, after, from := undoFixture(t, c)
	write(t, c.Spool, string(before))
	md, err := Open(c)
	if err != nil {
		t.Fatal(err)
	}
	f, err := platform.OpenFile(c.TempDrop, os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	syncs := int64(3)
	if platform.NameDurableWithSync(f) {
		syncs = 2
	}
	f.Close()
	platform.ResetCounters()
	if err := md.Commit([]bool{false, false, true}, nil); err != nil {
		t.Fatal(err)
	}
	got := platform.ReadCounters()
	tail := int64(len(after)) - from
	old := int64(len(before)) - from
	if got.Fsyncs != syncs || got.BytesWritten != undoHeaderLen+old+tail {
		t.Errorf("%d fsyncs and %d bytes written, want %d and %d (header, old tail %d, new tail %d)",
			got.Fsyncs, got.BytesWritten, syncs, undoHeaderLen+old+tail, old, tail)
	}
}
