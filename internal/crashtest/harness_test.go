package crashtest

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// logOps writes ops through OpLogWriter and reads them back, so every
// harness test also exercises the log format.
func logOps(t *testing.T, root string, ops ...Op) []Op {
	t.Helper()
	p := filepath.Join(t.TempDir(), "oplog")
	w, err := OpenOpLogWriter(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range ops {
		op.Path = filepath.Join(root, op.Path)
		if op.Path2 != "" {
			op.Path2 = filepath.Join(root, op.Path2)
		}
		if err := w.Append(op); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	got, err := ReadOpLog(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(ops) {
		t.Fatalf("read %d ops, wrote %d", len(got), len(ops))
	}
	return got
}

func render(s State) string {
	var parts []string
	for _, n := range sortedNames(s.Files) {
		parts = append(parts, n+"="+string(s.Files[n].Data))
	}
	return "{" + strings.Join(parts, " ") + "}"
}

func renders(states []State) map[string]bool {
	m := map[string]bool{}
	for _, s := range states {
		m[render(s)] = true
	}
	return m
}

const root = "/spool"

func TestReadOpLogRejectsTornLine(t *testing.T) {
	p := filepath.Join(t.TempDir(), "log")
	os.WriteFile(p, []byte(`{"seq":1,"pid":2,"op":"write","path":"/a","off":0,"data":"eA=="}`+"\n"+`{"seq":2,"op":"wri`), 0o600)
	if _, err := ReadOpLog(p); err == nil {
		t.Fatal("torn last line accepted")
	}
	os.WriteFile(p, []byte(`{"seq":1,"op":"chmod","path":"/a"}`+"\n"), 0o600)
	if _, err := ReadOpLog(p); err == nil {
		t.Fatal("unknown op accepted")
	}
	ops, err := ReadOpLog(filepath.Join(t.TempDir(), "missing"))
	if err != nil || len(ops) != 0 {
		t.Fatalf("missing log: %v %v", ops, err)
	}
}

func TestUnsyncedWriteCanBeLost(t *testing.T) {
	init := Snapshot{Root: root, Files: map[string]File{"f": {Data: []byte("old"), Mode: 0o600}}}
	ops := logOps(t, root, Op{Kind: OpWrite, Path: "f", Off: 3, Data: []byte("new")})
	got := renders(States(init, ops))
	for _, want := range []string{"{f=old}", "{f=oldnew}", "{f=oldn}", "{f=old\x00\x00\x00}"} {
		if !got[want] {
			t.Errorf("missing state %q; have %v", want, got)
		}
	}
	// Once fsync'd the write is durable: every state of the full log has it.
	ops = logOps(t, root, Op{Kind: OpWrite, Path: "f", Off: 3, Data: []byte("new")}, Op{Kind: OpFsync, Path: "f"})
	m := resolve(init, ops)
	if u := m.unsynced(2); len(u) != 0 {
		t.Errorf("unsynced after fsync: %v", u)
	}
	if s := m.apply(2, nil, nil); render(s) != "{f=oldnew}" {
		t.Errorf("full replay = %s", render(s))
	}
}

func TestRenameWithoutDirSyncKeepsEitherName(t *testing.T) {
	init := Snapshot{Root: root, Files: map[string]File{}}
	ops := logOps(t, root,
		Op{Kind: OpCreate, Path: "tmp"},
		Op{Kind: OpWrite, Path: "tmp", Data: []byte("mail")},
		Op{Kind: OpFsync, Path: "tmp"},
		Op{Kind: OpFsyncDir, Path: "."},
		Op{Kind: OpRename, Path: "tmp", Path2: "spool"},
	)
	m := resolve(init, ops)
	uns := m.unsynced(5)
	if len(uns) != 1 || m.ops[uns[0]].kind != OpRename {
		t.Fatalf("unsynced = %v, want the rename only", uns)
	}
	if s := render(m.apply(5, set(uns), nil)); s != "{tmp=mail}" {
		t.Errorf("power loss: %s, want {tmp=mail}", s)
	}
	got := renders(States(init, ops))
	if !got["{tmp=mail}"] || !got["{spool=mail}"] {
		t.Errorf("states: %v", got)
	}
	// With the directory synced only the new name remains possible.
	ops = logOps(t, root,
		Op{Kind: OpCreate, Path: "tmp"},
		Op{Kind: OpWrite, Path: "tmp", Data: []byte("mail")},
		Op{Kind: OpFsync, Path: "tmp"},
		Op{Kind: OpRename, Path: "tmp", Path2: "spool"},
		Op{Kind: OpFsyncDir, Path: "."},
	)
	m = resolve(init, ops)
	if uns := m.unsynced(5); len(uns) != 0 {
		t.Errorf("unsynced after fsyncdir: %v", uns)
	}
}

func TestRenameCarriesUnsyncedData(t *testing.T) {
	init := Snapshot{Root: root, Files: map[string]File{"spool": {Data: []byte("old"), Mode: 0o600}}}
	ops := logOps(t, root,
		Op{Kind: OpCreate, Path: "tmp"},
		Op{Kind: OpWrite, Path: "tmp", Data: []byte("new")},
		Op{Kind: OpRename, Path: "tmp", Path2: "spool"},
		Op{Kind: OpFsyncDir, Path: "."},
	)
	got := renders(States(init, ops))
	// The rename is durable, the data is not: the zero-length-file case.
	if !got["{spool=}"] {
		t.Errorf("no state with the renamed file empty: %v", got)
	}
	// A write through the old name after the rename reaches the same file.
	ops = logOps(t, root,
		Op{Kind: OpCreate, Path: "tmp"},
		Op{Kind: OpRename, Path: "tmp", Path2: "spool"},
		Op{Kind: OpWrite, Path: "tmp", Data: []byte("late")},
		Op{Kind: OpFsync, Path: "tmp"},
		Op{Kind: OpFsyncDir, Path: "."},
	)
	m := resolve(init, ops)
	if s := m.apply(len(m.ops), nil, nil); render(s) != "{spool=late}" {
		t.Errorf("write via old name: %s", render(s))
	}
}

func TestStateCountOfSmallLog(t *testing.T) {
	init := Snapshot{Root: root, Files: map[string]File{}}
	ops := logOps(t, root, Op{Kind: OpCreate, Path: "a"}, Op{Kind: OpWrite, Path: "a", Data: []byte("x")})
	states, st := Enumerate(init, ops, Options{})
	// k=0: kill. k=1: kill power drop-data-all drop-dir-all drop-dir
	// omit-one. k=2: the same plus drop-data, partial j=0, torn-half,
	// torn-zero, a second omit-one and omit-two (a one-byte write has no
	// torn-tail).
	if st.Generated != 1+6+12 {
		t.Errorf("generated %d states, want 19 (%s)", st.Generated, st)
	}
	var got []string
	for _, s := range states {
		got = append(got, render(s))
	}
	sort.Strings(got)
	want := []string{"{a=\x00}", "{a=x}", "{a=}", "{}"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("states %q, want %q", got, want)
	}
	if st.Unique != 4 || st.Returned != 4 || st.Sampled {
		t.Errorf("stats %s", st)
	}
}

func TestOmitOneAndPartial(t *testing.T) {
	init := Snapshot{Root: root, Files: map[string]File{"f": {Mode: 0o600}}}
	ops := logOps(t, root,
		Op{Kind: OpWrite, Path: "f", Off: 0, Data: []byte("aa")},
		Op{Kind: OpWrite, Path: "f", Off: 2, Data: []byte("bb")},
		Op{Kind: OpWrite, Path: "f", Off: 4, Data: []byte("cc")},
	)
	got := renders(States(init, ops))
	// Omit-one of the middle write: a later write persists, an earlier hole reads as zeros.
	for _, want := range []string{"{f=aa\x00\x00cc}", "{f=aabb}", "{f=aa}", "{f=}", "{f=aabbc}"} {
		if !got[want] {
			t.Errorf("missing state %q", want)
		}
	}
}

func TestTruncateKeptWritesLost(t *testing.T) {
	init := Snapshot{Root: root, Files: map[string]File{"f": {Data: []byte("old mail"), Mode: 0o600}}}
	ops := logOps(t, root,
		Op{Kind: OpTruncate, Path: "f", Off: 0},
		Op{Kind: OpWrite, Path: "f", Data: []byte("rewritten")},
	)
	states, st := Enumerate(init, ops, Options{})
	found := false
	for _, s := range states {
		if render(s) == "{f=}" && strings.Contains(s.Name, FamDelalloc) || render(s) == "{f=}" {
			found = true
		}
	}
	if !found || st.ByFamily[FamKill] == 0 {
		t.Errorf("no empty-file state: %v (%s)", renders(states), st)
	}
}

func TestSamplingIsDeterministicAndCapped(t *testing.T) {
	init := Snapshot{Root: root, Files: map[string]File{}}
	var ops []Op
	ops = append(ops, Op{Kind: OpCreate, Path: "f"})
	for i := 0; i < 30; i++ {
		ops = append(ops, Op{Kind: OpWrite, Path: "f", Off: int64(i), Data: []byte{byte('a' + i%26)}})
	}
	ops = logOps(t, root, ops...)
	a, st := Enumerate(init, ops, Options{Max: 50})
	b, _ := Enumerate(init, ops, Options{Max: 50})
	if len(a) != 50 || !st.Sampled || st.Unique <= 50 {
		t.Fatalf("stats %s, %d states", st, len(a))
	}
	for i := range a {
		if a[i].Hash() != b[i].Hash() {
			t.Fatal("sampling not deterministic")
		}
	}
	kills := 0
	for _, s := range a {
		if strings.Contains(s.Name, " "+FamKill) {
			kills++
		}
	}
	if kills != len(ops)+1 {
		t.Errorf("%d kill states kept, want %d", kills, len(ops)+1)
	}
}

func TestMaterializeAndSnapshot(t *testing.T) {
	dir := t.TempDir()
	s := State{Files: map[string]File{"u": {Data: []byte("x"), Mode: 0o660}, "d/.u.pop": {Data: []byte("yy"), Mode: 0o600}}}
	if err := s.Materialize(dir); err != nil {
		t.Fatal(err)
	}
	snap, err := TakeSnapshot(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !(State{Files: snap.Files}).Equal(s) {
		t.Errorf("snapshot %v != state %v", snap.Files, s.Files)
	}
}

func TestCommitPointSplitsStates(t *testing.T) {
	init := Snapshot{Root: root, Files: map[string]File{"f": {Data: []byte("x"), Mode: 0o600}}}
	ops := logOps(t, root,
		Op{Kind: OpWrite, Path: "/elsewhere/log", Data: []byte("ignored")},
		Op{Kind: OpTruncate, Path: "f", Off: 0},
		Op{Kind: OpFsync, Path: "f"},
	)
	states, _ := Enumerate(init, ops, Options{CommitAt: 3})
	var after, before []string
	for _, s := range states {
		if s.AfterCommit {
			after = append(after, render(s))
		} else {
			before = append(before, render(s))
		}
	}
	// The write to a file the model never saw created is ignored; only
	// the full log is past the commit point, and its state is kept
	// although it equals an earlier one.
	if strings.Join(after, "|") != "{f=}" || strings.Join(before, "|") != "{f=x}|{f=}" {
		t.Errorf("before %q after %q", before, after)
	}
}

func TestExt4NewNameDurableByFileSync(t *testing.T) {
	init := Snapshot{Root: root, Files: map[string]File{}}
	ops := logOps(t, root,
		Op{Kind: OpCreate, Path: "f"},
		Op{Kind: OpWrite, Path: "f", Data: []byte("mail")},
		Op{Kind: OpFsync, Path: "f"},
	)
	strict := renders(States(init, ops))
	if !strict["{}"] {
		t.Errorf("POSIX: the unsynced create can be lost: %v", strict)
	}
	ext4, _ := Enumerate(init, ops, Options{Ext4Names: true})
	for _, s := range ext4 {
		if strings.HasPrefix(s.Name, "k=3 ") && render(s) != "{f=mail}" {
			t.Errorf("ext4: %s: %s", s.Name, render(s))
		}
	}
	m := resolve(init, ops)
	m.ext4Names()
	if u := m.unsynced(3); len(u) != 0 {
		t.Errorf("ext4: unsynced after fsync(f): %v", u)
	}
}
