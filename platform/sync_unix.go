package platform

import "os"

// syncDir fsyncs an open directory. Every supported OS allows fsync on a
// directory descriptor; on darwin os.File.Sync issues F_FULLFSYNC.
func syncDir(d *os.File) error { return d.Sync() }
