package crashtest

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

// statesOf returns the rendered states of one family.
func statesOf(states []State, family string) map[string]bool {
	m := map[string]bool{}
	for _, s := range states {
		if s.Family == family {
			m[render(s)] = true
		}
	}
	return m
}

// A truncate that does not reach the disk while the writes after it do:
// the file's old bytes show past the new ones (all the writes kept, or
// the first j, or the last one torn), per file and for all files.
func TestTruncateLostWritesKept(t *testing.T) {
	init := Snapshot{Root: root, Files: map[string]File{
		"f": {Data: []byte("old mail, longer"), Mode: 0o600},
		"g": {Data: []byte("0123456789"), Mode: 0o600},
	}}
	ops := logOps(t, root,
		Op{Kind: OpTruncate, Path: "f", Off: 0},
		Op{Kind: OpWrite, Path: "f", Off: 0, Data: []byte("ab")},
		Op{Kind: OpWrite, Path: "f", Off: 2, Data: []byte("cd")},
		Op{Kind: OpTruncate, Path: "g", Off: 0},
		Op{Kind: OpWrite, Path: "g", Off: 0, Data: []byte("xy")},
	)
	states, st := Enumerate(init, ops, Options{})
	got := statesOf(states, FamDropTrunc)
	for _, want := range []string{
		"{f=abcdmail, longer g=0123456789}", // k=3: f's truncate lost, both writes kept
		"{f=abd mail, longer g=0123456789}", // k=3: only the first write kept
		"{f=abc mail, longer g=0123456789}", // k=3: the last write torn
		"{f=abcd g=xy23456789}",             // k=5: g's truncate lost, f's kept
	} {
		if !got[want] {
			t.Errorf("missing %q; drop-trunc states: %v", want, got)
		}
	}
	if all := statesOf(states, FamDropTruncAll); !all["{f=abcdmail, longer g=xy23456789}"] {
		t.Errorf("no drop-trunc-all state with both truncates lost: %v", all)
	}
	if st.GenByFamily[FamDropTrunc] == 0 || st.RetByFamily[FamDropTrunc] == 0 || !strings.Contains(st.Families(), FamDropTrunc+"=") {
		t.Errorf("per-family stats: %s", st.Families())
	}
}

// Two unsynced operations lost while a later one persists.
func TestOmitTwo(t *testing.T) {
	init := Snapshot{Root: root, Files: map[string]File{"a": {Mode: 0o600}, "b": {Mode: 0o600}, "c": {Mode: 0o600}}}
	ops := logOps(t, root,
		Op{Kind: OpWrite, Path: "a", Data: []byte("1")},
		Op{Kind: OpWrite, Path: "b", Data: []byte("2")},
		Op{Kind: OpWrite, Path: "c", Data: []byte("3")},
	)
	states, _ := Enumerate(init, ops, Options{})
	if got := statesOf(states, FamOmitTwo); !got["{a= b= c=3}"] {
		t.Errorf("omit-two states: %v", got)
	}
	// The cap holds per prefix.
	var many []Op
	for i := 0; i < 40; i++ {
		many = append(many, Op{Kind: OpWrite, Path: "f", Off: int64(i), Data: []byte{'a' + byte(i%26)}})
	}
	many = logOps(t, root, many...)
	_, st := Enumerate(Snapshot{Root: root, Files: map[string]File{"f": {Mode: 0o600}}}, many, Options{})
	if n := st.GenByFamily[FamOmitTwo]; n == 0 || n > (len(many)+1)*DefaultMaxPairs {
		t.Errorf("%d omit-two states for %d prefixes", n, len(many)+1)
	}
}

// A write that spans pages tears at a page boundary; torn-tail keeps its
// second half and not its first.
func TestTornPages(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 10000/16+1)[:10000]
	init := Snapshot{Root: root, Files: map[string]File{"f": {Mode: 0o600}}}
	ops := logOps(t, root, Op{Kind: OpWrite, Path: "f", Data: data})
	states, _ := Enumerate(init, ops, Options{})
	want := map[string]string{
		FamTornHalf: string(data[:4096]),
		FamTornTail: string(make([]byte, 4096)) + string(data[4096:]),
	}
	for fam, w := range want {
		found := false
		for _, s := range states {
			if s.Family == fam && string(s.Files["f"].Data) == w {
				found = true
			}
		}
		if !found {
			t.Errorf("no %s state cut at 4096", fam)
		}
	}
}

// A long log: the prefixes around each fsync and the ends are kept, the
// per-prefix families are bounded, a lazy enumeration returns the same
// states, and From leaves out the prefixes before a point.
func TestBoundedEnumeration(t *testing.T) {
	var ops []Op
	ops = append(ops, Op{Kind: OpCreate, Path: "f"})
	for i := 0; i < 60; i++ {
		ops = append(ops, Op{Kind: OpWrite, Path: "f", Off: int64(i), Data: []byte{'a' + byte(i%26)}})
		if i == 29 {
			ops = append(ops, Op{Kind: OpFsync, Path: "f"})
		}
	}
	ops = logOps(t, root, ops...)
	init := Snapshot{Root: root, Files: map[string]File{}}
	opt := Options{Max: 100000, MaxPrefixes: 6, MaxPerFamily: 3}
	eager, st := Enumerate(init, ops, opt)
	prefixes := map[int]bool{}
	perPrefix := map[int]map[string]int{}
	for _, s := range eager {
		prefixes[s.Prefix] = true
		if perPrefix[s.Prefix] == nil {
			perPrefix[s.Prefix] = map[string]int{}
		}
		perPrefix[s.Prefix][s.Family]++
	}
	if len(prefixes) > 6 {
		t.Errorf("%d prefixes, want at most 6", len(prefixes))
	}
	// 0, the whole log, just before and just after the fsync (op 31);
	// the state after the fsync is the one before it, so it is not
	// returned again.
	for _, k := range []int{0, len(ops), 31} {
		if !prefixes[k] {
			t.Errorf("prefix %d not enumerated: %v", k, prefixes)
		}
	}
	if ks := resolve(init, ops).prefixes(opt); len(ks) != 6 || ks[0] != 0 || ks[len(ks)-1] != len(ops) || !slices.Contains(ks, 31) || !slices.Contains(ks, 32) {
		t.Errorf("prefixes %v", ks)
	}
	for k, fams := range perPrefix {
		for _, f := range []string{FamPartial, FamOmitOne, FamOmitTwo} {
			if fams[f] > 3 {
				t.Errorf("prefix %d: %d %s states, cap 3", k, fams[f], f)
			}
		}
	}
	opt.Lazy = true
	lazy, lst := Enumerate(init, ops, opt)
	if len(lazy) != len(eager) || lst.Unique != st.Unique {
		t.Fatalf("lazy: %d states, eager %d", len(lazy), len(eager))
	}
	for i := range lazy {
		if lazy[i].Files != nil || !lazy[i].Equal(eager[i]) || lazy[i].Name != eager[i].Name {
			t.Fatalf("lazy state %d (%s) differs from %s", i, lazy[i].Name, eager[i].Name)
		}
	}
	from, _ := Enumerate(init, ops, Options{From: 40})
	for _, s := range from {
		if s.Prefix < 40 {
			t.Errorf("state %s has prefix %d < 40", s.Name, s.Prefix)
		}
	}
}

// Sampling gives every family a share: a big family does not crowd out
// a small one.
func TestSamplingKeepsEveryFamily(t *testing.T) {
	init := Snapshot{Root: root, Files: map[string]File{"f": {Data: []byte("old old old"), Mode: 0o600}}}
	var ops []Op
	ops = append(ops, Op{Kind: OpTruncate, Path: "f"})
	for i := 0; i < 30; i++ {
		ops = append(ops, Op{Kind: OpWrite, Path: "f", Off: int64(i), Data: []byte{'a' + byte(i%26)}})
	}
	ops = logOps(t, root, ops...)
	_, all := Enumerate(init, ops, Options{Max: 100000})
	_, st := Enumerate(init, ops, Options{Max: 40})
	if !st.Sampled || st.Returned != 40 {
		t.Fatalf("stats %s", st)
	}
	for f := range all.ByFamily {
		if st.RetByFamily[f] == 0 {
			t.Errorf("family %s (%d distinct) has no state in the sample: %s", f, all.ByFamily[f], st.Families())
		}
	}
}
