package platform

// Op kinds recorded by crash-test builds.
const (
	opCreate   = "create"
	opWrite    = "write"
	opTruncate = "truncate"
	opSync     = "fsync"
	opSyncDir  = "fsyncdir"
	opRename   = "rename"
	opUnlink   = "unlink"
)

// Recorder receives every mutating file operation; set only by crash-test
// builds (see record_crashtest.go).
type Recorder interface {
	Record(op, path, path2 string, off int64, data []byte)
}

var recorder Recorder

func record(op, path, path2 string, off int64, data []byte) {
	if recorder != nil {
		recorder.Record(op, path, path2, off, data)
	}
}
