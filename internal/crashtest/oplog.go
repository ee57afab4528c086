// Package crashtest is popper's crash-consistency harness: it reads the
// op log a crash-test build of popper writes (POPPER_OPLOG), enumerates
// the on-disk states a process kill or a power loss could leave after
// every prefix of that log (doc/crash-model.md), materializes them, and
// checks a spool directory against a manifest of the messages that must,
// may or must not be there. It also builds the leftovers qpopper 4.0.5
// itself leaves at its crash windows (doc/crash-model.md), for recovery
// tests.
//
// The tests that drive a real popper binary are in files built only with
// -tags crashtest: go test -tags crashtest ./internal/crashtest/
package crashtest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
)

// Op kinds, as platform's crash-test recorder writes them.
const (
	OpCreate   = "create"   // open with O_CREATE (a no-op when the name exists)
	OpWrite    = "write"    // Data written at Off
	OpTruncate = "truncate" // size set to Off
	OpFsync    = "fsync"    // file data and size made durable
	OpFsyncDir = "fsyncdir" // entries of directory Path made durable
	OpRename   = "rename"   // Path renamed to Path2
	OpUnlink   = "unlink"   // Path removed
)

// Op is one recorded file operation.
type Op struct {
	Seq   int64  `json:"seq"`   // per-process sequence number, from 1
	Pid   int    `json:"pid"`   // process that did it
	Kind  string `json:"op"`    // one of the Op* constants
	Path  string `json:"path"`  // absolute
	Path2 string `json:"path2"` // rename target, absolute
	Off   int64  `json:"off"`   // write offset or truncate size
	Data  []byte `json:"data"`  // bytes written (base64 in the log)
}

func (op Op) String() string {
	switch op.Kind {
	case OpWrite:
		return fmt.Sprintf("%d/%d write %s @%d+%d", op.Pid, op.Seq, op.Path, op.Off, len(op.Data))
	case OpTruncate:
		return fmt.Sprintf("%d/%d truncate %s %d", op.Pid, op.Seq, op.Path, op.Off)
	case OpRename:
		return fmt.Sprintf("%d/%d rename %s %s", op.Pid, op.Seq, op.Path, op.Path2)
	}
	return fmt.Sprintf("%d/%d %s %s", op.Pid, op.Seq, op.Kind, op.Path)
}

// ReadOpLog reads an op log written by a popper built with -tags crashtest
// and run with POPPER_OPLOG=path: one JSON object per line. A missing file
// is an empty log (the process did no file operation). A torn last line
// (the process was killed while appending it) is an error, so a test does
// not silently check fewer operations than were done.
func ReadOpLog(path string) ([]Op, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ops []Op
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<30)
	for line := 1; sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var op Op
		if err := json.Unmarshal(sc.Bytes(), &op); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, line, err)
		}
		if err := op.check(); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, line, err)
		}
		ops = append(ops, op)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return ops, nil
}

func (op Op) check() error {
	switch op.Kind {
	case OpCreate, OpFsync, OpFsyncDir, OpUnlink:
	case OpWrite:
		if op.Off < 0 {
			return fmt.Errorf("write at negative offset %d", op.Off)
		}
	case OpTruncate:
		if op.Off < 0 {
			return fmt.Errorf("truncate to negative size %d", op.Off)
		}
	case OpRename:
		if op.Path2 == "" {
			return fmt.Errorf("rename without a target")
		}
	default:
		return fmt.Errorf("unknown op %q", op.Kind)
	}
	if op.Path == "" {
		return fmt.Errorf("%s without a path", op.Kind)
	}
	return nil
}

// OpLogWriter appends ops in the same format, for tests that change the
// spool themselves (a simulated delivery agent) and want those changes in
// the log too.
type OpLogWriter struct {
	f   *os.File
	seq int64
}

// OpenOpLogWriter opens (creating or appending to) an op log.
func OpenOpLogWriter(path string) (*OpLogWriter, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o666)
	if err != nil {
		return nil, err
	}
	return &OpLogWriter{f: f}, nil
}

// Append writes op, filling in Seq and Pid.
func (w *OpLogWriter) Append(op Op) error {
	if err := op.check(); err != nil {
		return err
	}
	w.seq++
	op.Seq, op.Pid = w.seq, os.Getpid()
	line, err := json.Marshal(op)
	if err != nil {
		return err
	}
	_, err = w.f.Write(append(line, '\n'))
	return err
}

// Close closes the log.
func (w *OpLogWriter) Close() error { return w.f.Close() }
