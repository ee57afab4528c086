package spool

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkIndexPoll is issue 12's repeated poll in process: a login on a
// spool in use (its UIDs written back), listing and leaving without a
// change, with the index beside the spool and without it; and the first
// login after a delivery of 10 messages (the index proves the old bytes
// by their checksums, parses the new mail and grows).
//
//	go test -run XXX -bench IndexPoll ./spool
func BenchmarkIndexPoll(b *testing.B) {
	for _, sz := range []struct {
		name string
		n    int
	}{{"1k", 1000}, {"50k", 50000}} {
		for _, mode := range []string{"no-index", "index", "index-after-delivery"} {
			b.Run(mode+"/"+sz.name, func(b *testing.B) {
				c := benchSpoolInUse(b, sz.n, mode != "no-index")
				var size int64
				if mode == "index-after-delivery" {
					fi, err := os.Stat(c.Spool)
					if err != nil {
						b.Fatal(err)
					}
					size = fi.Size()
				}
				ix, _ := os.ReadFile(c.Cache)
				delivery := tableSpool(10)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if size > 0 {
						// The spool as it was when indexed, then the
						// MDA's append.
						b.StopTimer()
						if err := os.Truncate(c.Spool, size); err != nil {
							b.Fatal(err)
						}
						if err := os.WriteFile(c.Cache, ix, 0o600); err != nil {
							b.Fatal(err)
						}
						appendFile(b, c.Spool, string(delivery))
						b.StartTimer()
					}
					md, err := Open(c)
					if err != nil {
						b.Fatal(err)
					}
					var total int64
					for j := 0; j < md.Len(); j++ {
						total += md.Size(j)
						_ = md.UID(j)
					}
					if err := md.Rollback(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

var indexBenchSpools = map[int][]byte{}

// indexBenchSpool is tableSpool(n), made once per benchmark run.
func indexBenchSpool(n int) []byte {
	if indexBenchSpools[n] == nil {
		indexBenchSpools[n] = tableSpool(n)
	}
	return indexBenchSpools[n]
}

// benchSpoolInUse makes a spool of n messages as a first session leaves
// it (X-UIDL written back) and, with index, the index a login saves for
// it once the spool's last change is older than racyWindow.
func benchSpoolInUse(b *testing.B, n int, index bool) *Config {
	b.Helper()
	dir := b.TempDir()
	c := &Config{
		Spool:       filepath.Join(dir, "u"),
		TempDrop:    filepath.Join(dir, ".u.pop"),
		ServerMode:  true,
		Parse:       ParseOptions{UpdateStatusHeaders: true},
		LockTimeout: time.Second,
		Logf:        b.Logf,
	}
	settledSpool(b, c, indexBenchSpool(n))
	if index {
		c.Cache = filepath.Join(dir, ".u.cache")
		// Believed on stat alone at once, as it is from racyWindow after
		// the spool's last change on.
		old, fine := racyWindow, fineRacyWindow
		racyWindow, fineRacyWindow = 0, 0
		b.Cleanup(func() { racyWindow, fineRacyWindow = old, fine })
		time.Sleep(20 * time.Millisecond)
		md, err := Open(c)
		if err != nil {
			b.Fatal(err)
		}
		md.Rollback()
		if _, err := os.Stat(c.Cache); err != nil {
			b.Fatal(err)
		}
	}
	return c
}

// BenchmarkIndexDecode is the index read of a login on an unchanged
// spool of 50,000 messages, without the rest of the login.
func BenchmarkIndexDecode(b *testing.B) {
	c := benchSpoolInUse(b, 50000, true)
	data, err := os.ReadFile(c.Cache)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeIndex(bytes.NewReader(data), int64(len(data))); err != nil {
			b.Fatal(err)
		}
	}
}
