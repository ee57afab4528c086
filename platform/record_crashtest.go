//go:build crashtest

package platform

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
)

// With POPPER_OPLOG=path, every mutating file operation that goes through
// this package is appended to path as one JSON object per line (read back
// by internal/crashtest.ReadOpLog):
//
//	{"seq":N,"pid":P,"op":"write","path":"/abs/name","path2":"","off":O,"data":"<base64>"}
//
// seq counts the operations of one process from 1; lines of several
// processes interleave in the order their operations completed. path and
// path2 are absolute; off is the write offset or the truncate size; data
// (base64, as encoding/json writes []byte) is present for writes only.
// Ops: create, write, truncate, fsync, fsyncdir, rename (path to path2),
// unlink.

// OpRecord is one line of the op log.
type OpRecord struct {
	Seq   int64  `json:"seq"`
	Pid   int    `json:"pid"`
	Op    string `json:"op"`
	Path  string `json:"path"`
	Path2 string `json:"path2,omitempty"`
	Off   int64  `json:"off"`
	Data  []byte `json:"data,omitempty"`
}

type opLog struct {
	mu  sync.Mutex
	f   *os.File
	seq int64
	pid int
}

func init() {
	path := os.Getenv("POPPER_OPLOG")
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o666)
	if err != nil {
		// A crash test that asked for a log must not run without one.
		panic("POPPER_OPLOG: " + err.Error())
	}
	// Opened now, while the process may still be root: children that run
	// as the user (the recovery sweep's) append to the same log.
	f.Chmod(0o666)
	recorder = &opLog{f: f, pid: os.Getpid()}
}

func absPath(p string) string {
	if p == "" {
		return ""
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

func (l *opLog) Record(op, path, path2 string, off int64, data []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	line, err := json.Marshal(OpRecord{Seq: l.seq, Pid: l.pid, Op: op,
		Path: absPath(path), Path2: absPath(path2), Off: off, Data: data})
	if err != nil {
		panic("POPPER_OPLOG: " + err.Error())
	}
	// One write per record: O_APPEND keeps records of concurrent
	// processes whole and in completion order.
	if _, err := l.f.Write(append(line, '\n')); err != nil {
		panic("POPPER_OPLOG: " + err.Error())
	}
}
