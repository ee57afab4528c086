package crashtest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// File is one regular file of a snapshot or crash state.
type File struct {
	Data []byte
	Mode fs.FileMode // permission bits
}

// Snapshot is a directory tree before the recorded operations: regular
// files by slash-separated path relative to Root. Root is the absolute
// directory the op log's paths are interpreted under; operations outside
// it are ignored.
type Snapshot struct {
	Root  string
	Files map[string]File
}

// TakeSnapshot reads every regular file under root. Other kinds of file
// (symbolic links, sockets) are not part of the model and are skipped.
func TakeSnapshot(root string) (Snapshot, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return Snapshot{}, err
	}
	s := Snapshot{Root: abs, Files: map[string]File{}}
	err = filepath.WalkDir(abs, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(abs, p)
		s.Files[filepath.ToSlash(rel)] = File{Data: data, Mode: fi.Mode().Perm()}
		return nil
	})
	return s, err
}

// State is one possible on-disk result of a crash.
type State struct {
	Name        string          // how it arose: prefix length, family, files
	Family      string          // the family that first produced it (Fam*)
	Prefix      int             // how many ops of the log given to Enumerate it includes
	AfterCommit bool            // the crash came after the commit reply (Options.CommitAt)
	Files       map[string]File // by slash path relative to the snapshot root; nil for a lazy state
	load        func() map[string]File
}

// Contents returns the state's files, building them for a lazy state
// (Options.Lazy) each time it is called.
func (s State) Contents() map[string]File {
	if s.Files == nil && s.load != nil {
		return s.load()
	}
	return s.Files
}

// Materialize writes the state's files under dir (which should be empty),
// creating parent directories as needed.
func (s State) Materialize(dir string) error {
	files := s.Contents()
	for _, name := range sortedNames(files) {
		f := files[name]
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o600
		}
		if err := os.WriteFile(p, f.Data, mode); err != nil {
			return err
		}
		if err := os.Chmod(p, mode); err != nil { // WriteFile's mode is masked by umask
			return err
		}
	}
	return nil
}

// Hash identifies the state's contents (names, data and modes).
func (s State) Hash() string { return hashFiles(s.Contents()) }

func hashFiles(files map[string]File) string {
	h := sha256.New()
	for _, name := range sortedNames(files) {
		f := files[name]
		fmt.Fprintf(h, "%q %o %d\n", name, f.Mode, len(f.Data))
		h.Write(f.Data)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// sortedNames returns a map's keys in order.
func sortedNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Options bound the enumeration.
type Options struct {
	// Max is the most states returned; 0 means DefaultMaxStates. When
	// more distinct states exist, the process-kill states and then the
	// strict power-loss states are kept first, up to Keep, and the
	// rest is filled from the other families in turn, each family's
	// states taken in content-hash order: deterministic, and no family
	// crowded out by a bigger one.
	Max int
	// CommitAt, when > 0, is the number of ops (of the log given to
	// Enumerate) known to be done when the client received the commit
	// reply (QUIT +OK). States of prefixes holding at least the first
	// CommitAt ops are marked AfterCommit and deduplicated
	// apart from the others, so that a state possible both before and
	// after the commit is checked against the stricter expectation too.
	CommitAt int
	// Ext4Names adds ext4's rule that fsync of a file also makes the
	// name it was created under durable (doc/crash-model.md); the default
	// is the strict POSIX model, where only a directory fsync does.
	Ext4Names bool
	// From, when > 0, leaves out the prefixes that do not hold all of
	// the first From ops of the log: with a log that is a crashed run
	// followed by the recovery of its state, the states of a second
	// crash, during the recovery.
	From int
	// MaxPrefixes, when > 0, bounds the prefixes whose states are built
	// (a log of several MB has thousands of states per prefix): the
	// first and the last, and the prefixes just before and just after
	// each fsync (the most and the fewest unsynced ops) come first, the
	// others evenly spaced after them.
	MaxPrefixes int
	// MaxPerFamily, when > 0, bounds per prefix and file the states of
	// the families whose size grows with the number of unsynced ops
	// (partial, drop-trunc j=, omit-one, omit-two), chosen evenly.
	// Omit-two is bounded in any case, by DefaultMaxPairs.
	MaxPerFamily int
	// Lazy returns states without their files, built again whenever
	// they are used (Contents, Materialize): for logs of several MB,
	// whose states would not fit in memory together.
	Lazy bool
	// Keep is how many of the Max states, when sampling, go first to the
	// process-kill and strict power-loss states; 0 means half of Max.
	Keep int
}

// DefaultMaxStates is the cap States uses.
const DefaultMaxStates = 400

// DefaultMaxPairs bounds the omit-two states of one prefix.
const DefaultMaxPairs = 64

// Stats counts what an enumeration produced.
type Stats struct {
	Generated   int            // states built, duplicates included
	Unique      int            // distinct resulting trees
	Returned    int            // states returned (≤ Max)
	Sampled     bool           // Unique > Returned
	ByFamily    map[string]int // distinct states by the family that first produced them
	GenByFamily map[string]int // states built, by family
	RetByFamily map[string]int // states returned, by family
}

func (st Stats) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d generated, %d distinct, %d returned", st.Generated, st.Unique, st.Returned)
	if st.Sampled {
		b.WriteString(" (sampled)")
	}
	for _, f := range sortedNames(st.ByFamily) {
		fmt.Fprintf(&b, " %s=%d", f, st.ByFamily[f])
	}
	return b.String()
}

// Add accumulates o into st, for a summary over several enumerations.
func (st *Stats) Add(o Stats) {
	st.Generated += o.Generated
	st.Unique += o.Unique
	st.Returned += o.Returned
	st.Sampled = st.Sampled || o.Sampled
	for _, m := range []*map[string]int{&st.ByFamily, &st.GenByFamily, &st.RetByFamily} {
		if *m == nil {
			*m = map[string]int{}
		}
	}
	for f, n := range o.ByFamily {
		st.ByFamily[f] += n
	}
	for f, n := range o.GenByFamily {
		st.GenByFamily[f] += n
	}
	for f, n := range o.RetByFamily {
		st.RetByFamily[f] += n
	}
}

// Families lists, per family, the states generated/distinct/returned.
func (st Stats) Families() string {
	var parts []string
	for _, f := range sortedNames(st.GenByFamily) {
		parts = append(parts, fmt.Sprintf("%s=%d/%d/%d", f, st.GenByFamily[f], st.ByFamily[f], st.RetByFamily[f]))
	}
	return strings.Join(parts, " ")
}

// States enumerates crash states with the default cap.
func States(initial Snapshot, ops []Op) []State {
	states, _ := Enumerate(initial, ops, Options{})
	return states
}

// Crash-state families (doc/crash-model.md), used in State.Name and
// Stats.ByFamily.
const (
	FamKill         = "kill"       // 1: all k ops applied
	FamPower        = "power"      // 2: only durable ops
	FamDropData     = "drop-data"  // 3: unsynced data ops lost, name ops kept
	FamDropDir      = "drop-dir"   // 4: unsynced name ops lost
	FamDelalloc     = "delalloc"   // 5: truncate kept, later unsynced writes lost
	FamDropTrunc    = "drop-trunc" // 5, the reverse: unsynced truncates lost, later writes kept (all, or the first j)
	FamPartial      = "partial"    // 6: first j unsynced writes of a file kept
	FamTornHalf     = "torn-half"  // 7: last unsynced write half applied
	FamTornZero     = "torn-zero"  // 7: last unsynced write's range zero-filled
	FamTornTail     = "torn-tail"  // 7: last unsynced write's second half applied, not its first
	FamOmitOne      = "omit-one"   // 8: exactly one unsynced op lost
	FamOmitTwo      = "omit-two"   // 8: exactly two unsynced ops lost
	FamDropAllDat   = "drop-data-all"
	FamDropAllDir   = "drop-dir-all"
	FamDelallocAll  = "delalloc-all"
	FamDropTruncAll = "drop-trunc-all"
)

// recipe is how to build one state again: for lazy states, and so that
// only the returned states are ever held whole.
type recipe struct {
	k            int
	family, what string
	drop         map[int]bool
	torn         *tornWrite
	after        bool
	hash         string
}

// Enumerate builds, for every prefix of ops (0 through len(ops)
// operations), the crash states of the families in doc/crash-model.md under
// the strict POSIX persistence model:
//
//   - a write or truncate of file X is durable only if a later fsync of X
//     is in the prefix;
//   - a create, rename or unlink in directory D is durable only if a later
//     fsync of D is in the prefix (a rename needs both directories);
//   - the initial snapshot is durable.
//
// Files are modelled by inode: data operations apply to the file the path
// named when the operation was done, so a rename carries the file's data
// state with it. A write, truncate or fsync recorded under a name that no
// longer exists refers to the file that process last reached under that
// name (a descriptor still open after a rename or unlink).
func Enumerate(initial Snapshot, ops []Op, opt Options) ([]State, Stats) {
	max := opt.Max
	if max <= 0 {
		max = DefaultMaxStates
	}
	m := resolve(initial, ops)
	if opt.Ext4Names {
		m.ext4Names()
	}
	st := Stats{ByFamily: map[string]int{}, GenByFamily: map[string]int{}, RetByFamily: map[string]int{}}
	seen := map[string]bool{}
	var all []recipe
	add := func(k int, family, what string, drop map[int]bool, tweak *tornWrite) {
		s := m.apply(k, drop, tweak)
		st.Generated++
		st.GenByFamily[family]++
		after := opt.CommitAt > 0 && k > 0 && m.ops[k-1].raw+1 >= opt.CommitAt
		h := s.Hash()
		if after {
			h += " after commit"
		}
		if seen[h] {
			return
		}
		seen[h] = true
		st.ByFamily[family]++
		all = append(all, recipe{k: k, family: family, what: what, drop: drop, torn: tweak, after: after, hash: h})
	}
	perFamily := func(n int) []int { return evenly(n, opt.MaxPerFamily) }
	for _, k := range m.prefixes(opt) {
		add(k, FamKill, "", nil, nil)
		uns := m.unsynced(k)
		if len(uns) == 0 {
			continue
		}
		add(k, FamPower, "", set(uns), nil)

		var data, names []int
		dataOf := map[int][]int{}     // inode → its unsynced data ops
		truncOf := map[int]int{}      // inode → its first unsynced truncate
		namesIn := map[string][]int{} // directory → its unsynced name ops
		var inodes []int
		var dirs []string
		for _, i := range uns {
			op := m.ops[i]
			switch op.kind {
			case OpWrite, OpTruncate:
				data = append(data, i)
				if _, ok := dataOf[op.ino]; !ok {
					inodes = append(inodes, op.ino)
				}
				dataOf[op.ino] = append(dataOf[op.ino], i)
				if _, ok := truncOf[op.ino]; !ok && op.kind == OpTruncate {
					truncOf[op.ino] = i
				}
			default:
				names = append(names, i)
				for _, d := range op.dirs() {
					if _, ok := namesIn[d]; !ok {
						dirs = append(dirs, d)
					}
					namesIn[d] = append(namesIn[d], i)
				}
			}
		}
		add(k, FamDropAllDat, "", set(data), nil)
		add(k, FamDropAllDir, "", set(names), nil)
		delallocAll := map[int]bool{}
		var truncsAll []int
		for _, ino := range inodes {
			file := m.inodeName(ino, k)
			add(k, FamDropData, file, set(dataOf[ino]), nil)
			var writes, truncs []int
			for _, i := range dataOf[ino] {
				if m.ops[i].kind == OpWrite {
					writes = append(writes, i)
				} else {
					truncs = append(truncs, i)
				}
			}
			if t, ok := truncOf[ino]; ok {
				drop := map[int]bool{}
				var later []int // the writes after the first unsynced truncate
				for _, i := range writes {
					if i > t {
						drop[i] = true
						delallocAll[i] = true
						later = append(later, i)
					}
				}
				add(k, FamDelalloc, file, drop, nil)
				// The reverse: the truncates lost, the writes after them
				// kept, all of them or the first j, or the last one torn;
				// the file's old bytes show past the new ones.
				truncsAll = append(truncsAll, truncs...)
				add(k, FamDropTrunc, file, set(truncs), nil)
				for _, j := range perFamily(len(later)) {
					if j == 0 {
						continue // drop-data's state, or delalloc's
					}
					add(k, FamDropTrunc, fmt.Sprintf("%s j=%d/%d", file, j, len(later)), set(append(append([]int{}, truncs...), later[j:]...)), nil)
				}
				if len(later) > 0 {
					add(k, FamDropTrunc, file+" torn", set(truncs), &tornWrite{op: later[len(later)-1]})
				}
			}
			for _, j := range perFamily(len(writes)) {
				add(k, FamPartial, fmt.Sprintf("%s j=%d/%d", file, j, len(writes)), set(writes[j:]), nil)
			}
			if len(writes) > 0 {
				last := writes[len(writes)-1]
				add(k, FamTornHalf, file, nil, &tornWrite{op: last})
				add(k, FamTornZero, file, nil, &tornWrite{op: last, zero: true})
				if len(m.ops[last].Data) >= 2 {
					add(k, FamTornTail, file, nil, &tornWrite{op: last, tail: true})
				}
			}
		}
		if len(delallocAll) > 0 {
			add(k, FamDelallocAll, "", delallocAll, nil)
		}
		if len(truncsAll) > 0 {
			add(k, FamDropTruncAll, "", set(truncsAll), nil)
		}
		for _, d := range dirs {
			add(k, FamDropDir, d+"/", set(namesIn[d]), nil)
		}
		for _, j := range perFamily(len(uns)) {
			i := uns[j]
			add(k, FamOmitOne, m.ops[i].String(), map[int]bool{i: true}, nil)
		}
		// Two independent unsynced ops lost: a later op persists while
		// two earlier ones do not (a truncate and a write, two writes of
		// different files, a create and a write).
		pairs := len(uns) * (len(uns) - 1) / 2
		maxPairs := opt.MaxPerFamily
		if maxPairs <= 0 || maxPairs > DefaultMaxPairs {
			maxPairs = DefaultMaxPairs
		}
		for _, p := range evenly(pairs, maxPairs) {
			a, b := pairAt(p, len(uns))
			i, j := uns[a], uns[b]
			add(k, FamOmitTwo, m.ops[i].String()+" + "+m.ops[j].String(), map[int]bool{i: true, j: true}, nil)
		}
	}
	st.Unique = len(all)
	chosen := make([]bool, len(all))
	if len(all) > max {
		st.Sampled = true
		keep := opt.Keep
		if keep <= 0 || keep > max {
			keep = max / 2
		}
		sample(all, chosen, max, keep)
	} else {
		for i := range chosen {
			chosen[i] = true
		}
	}
	var out []State
	for i, r := range all {
		if !chosen[i] {
			continue
		}
		r := r
		s := State{Family: r.family, AfterCommit: r.after, Name: fmt.Sprintf("k=%d %s", r.k, r.family)}
		if r.what != "" {
			s.Name += " " + r.what
		}
		if r.k > 0 {
			s.Prefix = m.ops[r.k-1].raw + 1
		}
		if opt.Lazy {
			s.load = func() map[string]File { return m.apply(r.k, r.drop, r.torn).Files }
		} else {
			s.Files = m.apply(r.k, r.drop, r.torn).Files
		}
		st.RetByFamily[r.family]++
		out = append(out, s)
	}
	st.Returned = len(out)
	return out, st
}

// prefixes lists the prefix lengths whose states are built, in order.
func (m *model) prefixes(opt Options) []int {
	from := 0
	if opt.From > 0 {
		for from < len(m.ops) && m.ops[from].raw < opt.From {
			from++
		}
	}
	var ks []int
	for k := from; k <= len(m.ops); k++ {
		ks = append(ks, k)
	}
	if opt.MaxPrefixes <= 0 || len(ks) <= opt.MaxPrefixes {
		return ks
	}
	// First the ends and the prefixes around each barrier, then the
	// others, each group evenly spaced.
	first := map[int]bool{from: true, len(m.ops): true}
	for k := from; k < len(m.ops); k++ {
		if kind := m.ops[k].kind; kind == OpFsync || kind == OpFsyncDir {
			first[k] = true
			first[k+1] = true
		}
	}
	var a, b []int
	for _, k := range ks {
		if first[k] {
			a = append(a, k)
		} else {
			b = append(b, k)
		}
	}
	pick := map[int]bool{}
	for _, i := range evenly(len(a), opt.MaxPrefixes) {
		pick[a[i]] = true
	}
	if room := opt.MaxPrefixes - len(pick); room > 0 {
		for _, i := range evenly(len(b), room) {
			pick[b[i]] = true
		}
	}
	var out []int
	for _, k := range ks {
		if pick[k] {
			out = append(out, k)
		}
	}
	return out
}

// evenly returns max indices of 0..n-1 spread evenly (all of them when
// max <= 0 or n <= max), in increasing order.
func evenly(n, max int) []int {
	if max <= 0 || n <= max {
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out
	}
	out := make([]int, max)
	for i := range out {
		out[i] = i * n / max
	}
	return out
}

// pairAt returns the p-th pair (a < b) of 0..n-1 in lexicographic order.
func pairAt(p, n int) (int, int) {
	for a := 0; a < n-1; a++ {
		if row := n - 1 - a; p < row {
			return a, a + 1 + p
		} else {
			p -= row
		}
	}
	panic("pairAt: out of range")
}

// sample marks max of the states chosen: the process-kill states, then
// the strict power-loss states, up to keep (evenly spaced over the
// prefixes when there are more); then the other families in turn, in
// sorted order, each family's states in hash order. It is deterministic
// for a given input.
func sample(all []recipe, chosen []bool, max, keep int) {
	n := 0
	for _, fam := range []string{FamKill, FamPower} {
		var idx []int
		for i, r := range all {
			if r.family == fam {
				idx = append(idx, i)
			}
		}
		for _, j := range evenly(len(idx), keep-n) {
			chosen[idx[j]] = true
			n++
		}
	}
	byFam := map[string][]int{}
	for i, r := range all {
		if !chosen[i] {
			byFam[r.family] = append(byFam[r.family], i)
		}
	}
	fams := sortedNames(byFam)
	for _, f := range fams {
		idx := byFam[f]
		sort.Slice(idx, func(a, b int) bool { return all[idx[a]].hash < all[idx[b]].hash })
	}
	for round := 0; n < max; round++ {
		took := false
		for _, f := range fams {
			if idx := byFam[f]; round < len(idx) && n < max {
				chosen[idx[round]] = true
				n++
				took = true
			}
		}
		if !took {
			break
		}
	}
}

func set(idx []int) map[int]bool {
	m := make(map[int]bool, len(idx))
	for _, i := range idx {
		m[i] = true
	}
	return m
}

// resolvedOp is an Op bound to the inodes it touched in the real run.
type resolvedOp struct {
	Op
	kind        string
	name, name2 string // relative to the root
	ino         int    // file written, truncated, synced, created, renamed or unlinked
	nop         bool   // a create of an existing name: nothing changed
	barrier     int    // index of the first later op making it durable; -1: none
	raw         int    // index in the recorded log
}

func (op resolvedOp) dirs() []string {
	d := []string{pathDir(op.name)}
	if op.kind == OpRename && pathDir(op.name2) != d[0] {
		d = append(d, pathDir(op.name2))
	}
	return d
}

func pathDir(name string) string {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		return name[:i]
	}
	return "."
}

type model struct {
	initial  Snapshot
	initIno  map[string]int // initial name → inode
	initMode map[int]fs.FileMode
	ops      []resolvedOp
	nameAt   map[int]string // inode → a name it had, for state names
}

func (m *model) inodeName(ino, k int) string {
	return m.nameAt[ino]
}

// resolve replays ops as the process saw them, binding every operation to
// inode numbers and finding the barrier that makes it durable.
func resolve(initial Snapshot, ops []Op) *model {
	m := &model{initial: initial, initIno: map[string]int{}, initMode: map[int]fs.FileMode{}, nameAt: map[int]string{}}
	names := map[string]int{}
	next := 1
	for _, n := range sortedNames(initial.Files) {
		names[n] = next
		m.initIno[n] = next
		m.initMode[next] = initial.Files[n].Mode
		m.nameAt[next] = n
		next++
	}
	type handle struct {
		pid  int
		name string
	}
	last := map[handle]int{}
	lookup := func(pid int, name string) int {
		if ino, ok := names[name]; ok {
			last[handle{pid, name}] = ino
			return ino
		}
		return last[handle{pid, name}] // 0: unknown file
	}
	for raw, op := range ops {
		rel, ok := relTo(initial.Root, op.Path)
		if !ok {
			continue
		}
		r := resolvedOp{Op: op, kind: op.Kind, name: rel, barrier: -1, raw: raw}
		switch op.Kind {
		case OpCreate:
			if ino, ok := names[rel]; ok {
				r.ino, r.nop = ino, true
			} else {
				r.ino = next
				next++
				names[rel] = r.ino
				m.nameAt[r.ino] = rel
			}
			last[handle{op.Pid, rel}] = r.ino
		case OpWrite, OpTruncate, OpFsync:
			r.ino = lookup(op.Pid, rel)
			if r.ino == 0 {
				continue // a file outside the model (opened before the snapshot's names)
			}
		case OpFsyncDir:
		case OpRename:
			rel2, ok := relTo(initial.Root, op.Path2)
			if !ok {
				continue
			}
			r.name2 = rel2
			r.ino = lookup(op.Pid, rel)
			if r.ino == 0 {
				continue
			}
			delete(names, rel)
			names[rel2] = r.ino
			last[handle{op.Pid, rel2}] = r.ino
		case OpUnlink:
			r.ino = lookup(op.Pid, rel)
			if r.ino == 0 {
				continue
			}
			delete(names, rel)
		}
		m.ops = append(m.ops, r)
	}
	// Barriers: the first later fsync of the same inode for data ops, the
	// first later fsync of every directory involved for name ops.
	for i := range m.ops {
		op := &m.ops[i]
		switch op.kind {
		case OpWrite, OpTruncate:
			for j := i + 1; j < len(m.ops); j++ {
				if m.ops[j].kind == OpFsync && m.ops[j].ino == op.ino {
					op.barrier = j
					break
				}
			}
		case OpCreate, OpRename, OpUnlink:
			b := -1
			for _, d := range op.dirs() {
				dj := -1
				for j := i + 1; j < len(m.ops); j++ {
					if m.ops[j].kind == OpFsyncDir && m.ops[j].name == d {
						dj = j
						break
					}
				}
				if dj < 0 {
					b = -1
					break
				}
				if dj > b {
					b = dj
				}
			}
			op.barrier = b
		}
	}
	return m
}

// ext4Names lets the first fsync of a newly created file make its create
// durable, when that comes before the directory fsync.
func (m *model) ext4Names() {
	for i := range m.ops {
		op := &m.ops[i]
		if op.kind != OpCreate || op.nop {
			continue
		}
		for j := i + 1; j < len(m.ops); j++ {
			if m.ops[j].kind == OpFsync && m.ops[j].ino == op.ino {
				if op.barrier < 0 || j < op.barrier {
					op.barrier = j
				}
				break
			}
		}
	}
}

func relTo(root, p string) (string, bool) {
	rel, err := filepath.Rel(root, filepath.Clean(p))
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", false
	}
	return filepath.ToSlash(rel), true
}

// unsynced lists the operations of the first k that change something and
// are not durable at k.
func (m *model) unsynced(k int) []int {
	var u []int
	for i := 0; i < k; i++ {
		op := m.ops[i]
		switch op.kind {
		case OpFsync, OpFsyncDir:
			continue
		}
		if op.nop {
			continue
		}
		if op.barrier < 0 || op.barrier >= k {
			u = append(u, i)
		}
	}
	return u
}

// tornWrite applies only part of one write: its first half, or its
// second half only (a later page persisted, an earlier one not), cut at
// a 4 KiB page boundary when the write spans two pages or more.
type tornWrite struct {
	op   int
	zero bool // the write's range reads as zeros (size extended, data lost)
	tail bool // only the second half is applied
}

// half is where a write of n bytes is torn.
func half(n int) int {
	const page = 4096
	if n >= 2*page {
		return n / 2 / page * page
	}
	return n / 2
}

// apply replays the first k operations on the initial snapshot, skipping
// the ones in drop and tearing the one named by torn.
func (m *model) apply(k int, drop map[int]bool, torn *tornWrite) State {
	names := map[string]int{}
	data := map[int][]byte{}
	mode := map[int]fs.FileMode{}
	for n, ino := range m.initIno {
		names[n] = ino
		data[ino] = m.initial.Files[n].Data // copied before any change
		mode[ino] = m.initMode[ino]
	}
	owned := map[int]bool{} // inodes whose slice is our own copy
	mutable := func(ino int) []byte {
		if !owned[ino] {
			data[ino] = append([]byte(nil), data[ino]...)
			owned[ino] = true
		}
		return data[ino]
	}
	for i := 0; i < k; i++ {
		if drop[i] {
			continue
		}
		op := m.ops[i]
		switch op.kind {
		case OpCreate:
			if op.nop {
				continue
			}
			if _, ok := data[op.ino]; !ok {
				data[op.ino] = nil
				mode[op.ino] = 0o600
			}
			names[op.name] = op.ino
		case OpWrite:
			b, off := op.Data, op.Off
			if torn != nil && torn.op == i {
				switch h := half(len(b)); {
				case torn.zero:
					b = make([]byte, len(b))
				case torn.tail:
					b, off = b[h:], off+int64(h)
				default:
					b = b[:h]
				}
			}
			d := mutable(op.ino)
			if end := off + int64(len(b)); end > int64(len(d)) {
				d = append(d, make([]byte, end-int64(len(d)))...)
			}
			copy(d[off:], b)
			data[op.ino] = d
		case OpTruncate:
			d := mutable(op.ino)
			if op.Off <= int64(len(d)) {
				d = d[:op.Off]
			} else {
				d = append(d, make([]byte, op.Off-int64(len(d)))...)
			}
			data[op.ino] = d
		case OpRename:
			if names[op.name] == op.ino {
				delete(names, op.name)
			}
			names[op.name2] = op.ino
		case OpUnlink:
			if names[op.name] == op.ino {
				delete(names, op.name)
			}
		}
	}
	s := State{Files: make(map[string]File, len(names))}
	for n, ino := range names {
		md := mode[ino]
		if md == 0 {
			md = 0o600
		}
		s.Files[n] = File{Data: data[ino], Mode: md}
	}
	return s
}

// Equal reports whether two states hold the same files.
func (s State) Equal(t State) bool {
	sf, tf := s.Contents(), t.Contents()
	if len(sf) != len(tf) {
		return false
	}
	for n, f := range sf {
		g, ok := tf[n]
		if !ok || f.Mode != g.Mode || !bytes.Equal(f.Data, g.Data) {
			return false
		}
	}
	return true
}
