package spool

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Issue 12's memory row, in process: what a session keeps per message
// and the peak heap on the way, at 10, 1,000 and 50,000 messages of
// scripts/bench's kind: for Parse alone (the Drop), and for a whole Open
// in server and normal mode (the Maildrop a session serves from), parsing
// the spool or, as a login on a spool in steady use does, reading the
// index beside it (open-index).
//
//	go test -run XXX -bench Memory -benchtime 1x ./spool
//
// POPPER_BENCH_1GIB=1 adds a spool of about 1 GiB (210,000 messages).
//
// Reported: live B/msg (heap held by the Drop after a GC), peak-heap-MB
// (the highest heap in use sampled during the parse, with GOGC as set)
// and alloc-B/msg (everything allocated).

// memSpool writes a spool of n messages to a file; the 50,000-message one
// (about 250 MB) is made once per test binary.
func memSpool(tb testing.TB, n int) (*os.File, int64) {
	tb.Helper()
	memSpools.Lock()
	defer memSpools.Unlock()
	p, ok := memSpools.path[n]
	if !ok {
		dir, err := os.MkdirTemp("", "popper-memspool-")
		if err != nil {
			tb.Fatal(err)
		}
		p = filepath.Join(dir, "drop")
		// 5,000 messages at a time: the generator holds its text in memory.
		f, err := os.Create(p)
		if err != nil {
			tb.Fatal(err)
		}
		for done := 0; done < n; done += 5000 {
			data := tableSpool(min(5000, n-done))
			if _, err := f.Write(data); err != nil {
				tb.Fatal(err)
			}
		}
		f.Close()
		memSpools.path[n] = p
	}
	f, err := os.Open(p)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	fi, err := f.Stat()
	if err != nil {
		tb.Fatal(err)
	}
	return f, fi.Size()
}

var memSpools = struct {
	sync.Mutex
	path map[int]string
}{path: map[int]string{}}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, p := range memSpools.path {
		os.RemoveAll(filepath.Dir(p))
	}
	os.Exit(code)
}

// heapPeak samples the heap in use every 100 µs until stop is called.
func heapPeak() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-time.After(100 * time.Microsecond):
			}
		}
	}()
	return func() uint64 { close(done); <-finished; return peak.Load() }
}

// parseMemory parses the spool of n messages and returns the heap the
// Drop holds, the peak heap in use during the parse and the bytes
// allocated.
func parseMemory(tb testing.TB, n int) (live, peak, alloc uint64) {
	f, size := memSpool(tb, n)
	var d *Drop
	live, peak, alloc = measureHeap(tb, func() (err error) {
		d, err = Parse(bufio.NewReaderSize(io.NewSectionReader(f, 0, size), 64<<10),
			ParseOptions{UpdateStatusHeaders: true, UIDCounter: 1})
		return err
	})
	if len(d.Msgs) != n {
		tb.Fatalf("parsed %d messages, want %d", len(d.Msgs), n)
	}
	runtime.KeepAlive(d)
	return live, peak, alloc
}

// measureHeap runs f and returns the heap it left live, the peak heap
// while it ran and the bytes it allocated.
func measureHeap(tb testing.TB, f func() error) (live, peak, alloc uint64) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC() // sync.Pool's victims too
	runtime.ReadMemStats(&before)
	stop := heapPeak()
	err := f()
	peak = stop()
	if err != nil {
		tb.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	alloc = after.TotalAlloc - before.TotalAlloc
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	live = after.HeapAlloc - before.HeapAlloc
	return live, peak, alloc
}

// openMemory is parseMemory for a whole login: Open on a copy of the
// spool of n messages (its UIDs written back by an earlier session, as
// on a spool in use), in server or normal mode, and with index the
// messages read from the index an earlier login saved; live is what the
// open Maildrop holds.
func openMemory(tb testing.TB, n int, server, index bool) (live, peak, alloc uint64) {
	src, _ := memSpool(tb, n)
	c := testConfig(tb, server)
	c.Logf = nil
	if index {
		c.Cache = c.Spool + ".cache"
	}
	dst, err := os.Create(c.Spool)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := io.Copy(dst, io.NewSectionReader(src, 0, 1<<62)); err != nil {
		tb.Fatal(err)
	}
	dst.Close()
	first, err := Open(c)
	if err != nil {
		tb.Fatal(err)
	}
	if err := first.Commit(nil, nil); err != nil {
		tb.Fatal(err)
	}
	first = nil
	if index {
		// The index is believed on stat once written well after the
		// spool last changed (racyWindow): the login that saves it
		// comes after that window, as it does on a spool in use.
		time.Sleep(racyWindow + 100*time.Millisecond)
		md, err := Open(c)
		if err != nil {
			tb.Fatal(err)
		}
		if err := md.Commit(nil, nil); err != nil {
			tb.Fatal(err)
		}
		var how []string
		indexTrace = func(h string) { how = append(how, h) }
		defer func() {
			indexTrace = nil
			if len(how) != 1 || how[0] != "stat" {
				tb.Fatalf("the login was served by %q, want the index alone (stat)", how)
			}
		}()
	}
	var md *Maildrop
	live, peak, alloc = measureHeap(tb, func() (err error) {
		md, err = Open(c)
		return err
	})
	if md.Len() != n {
		tb.Fatalf("opened %d messages, want %d", md.Len(), n)
	}
	if err := md.Commit(nil, nil); err != nil {
		tb.Fatal(err)
	}
	runtime.KeepAlive(md)
	return live, peak, alloc
}

func BenchmarkMemory(b *testing.B) {
	sizes := []int{10, 1000, 50000}
	if os.Getenv("POPPER_BENCH_1GIB") == "1" {
		sizes = append(sizes, 210000)
	}
	for _, kind := range []string{"parse", "open-server", "open-normal", "open-index-server", "open-index-normal"} {
		for _, n := range sizes {
			b.Run(fmt.Sprintf("%s/%d", kind, n), func(b *testing.B) {
				var live, peak, alloc uint64
				for b.Loop() {
					switch kind {
					case "parse":
						live, peak, alloc = parseMemory(b, n)
					default:
						live, peak, alloc = openMemory(b, n, strings.HasSuffix(kind, "-server"), strings.HasPrefix(kind, "open-index"))
					}
				}
				b.ReportMetric(float64(live)/float64(n), "live-B/msg")
				b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
				b.ReportMetric(float64(alloc)/float64(n), "alloc-B/msg")
			})
		}
	}
}

// TestParseMemory holds the Drop to a generous bound per message, so that
// per-message metadata does not grow back unnoticed: the Msg (offsets,
// size, flags), its UID, and the slice's spare capacity.
func TestParseMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("parses a 50 MB spool")
	}
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	const n = 10000
	live, peak, alloc := parseMemory(t, n)
	t.Logf("%d messages: %d B/msg live, peak heap %.1f MB, %d B/msg allocated",
		n, live/n, float64(peak)/(1<<20), alloc/n)
	if live/n > 200 {
		t.Errorf("the Drop holds %d B per message, want at most 200", live/n)
	}
}
