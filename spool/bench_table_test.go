package spool

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The in-process parts of issue 12's table, on spools of scripts/bench's
// kind (lognormal message sizes, median 2 KiB, mean about 5 KiB; the
// same bytes every run): parsing, rendering for RETR, the write-back
// render, and the bytes and fsyncs a session's update costs, per mode
// and per kind of session.
//
//	go test -run XXX -bench Table ./spool
//	go test -run XXX -bench 'TableSession/.*/10k' -benchtime 3x ./spool

// tableSpool returns an mbox of n messages.
func tableSpool(n int) []byte {
	rng := rand.New(rand.NewPCG(12, 0x5EED))
	var sb strings.Builder
	base := time.Date(2024, 3, 4, 5, 6, 7, 0, time.UTC)
	for i := 0; i < n; i++ {
		want := int(math.Exp(math.Log(2048) + 1.342*rng.NormFloat64()))
		want = min(max(want, 700), 8<<20)
		d := base.Add(time.Duration(i) * 37 * time.Second)
		start := sb.Len()
		fmt.Fprintf(&sb, "From sender%d@example.org %s\n", i%997, d.Format(time.ANSIC))
		fmt.Fprintf(&sb, "Received: from mx.example.org by mail.example.net; %s\n", d.Format(time.RFC1123Z))
		fmt.Fprintf(&sb, "Date: %s\nFrom: sender%d@example.org\nTo: popbench@example.net\n", d.Format(time.RFC1123Z), i%997)
		fmt.Fprintf(&sb, "Subject: message %d\nMessage-ID: <%d.%08x@example.org>\n\n", i, i, rng.Uint32())
		for j := 0; sb.Len()-start < want; j++ {
			if j%53 == 7 {
				sb.WriteString(".a line that starts with a dot\n")
			} else {
				sb.WriteString("the body of a message in the benchmark spool, words and words\n")
			}
		}
		sb.WriteString("\n")
	}
	return []byte(sb.String())
}

var tableSizes = []struct {
	name string
	n    int
}{{"1k", 1000}, {"10k", 10000}}

// tableDrop writes a spool of n messages to a file and parses it.
func tableDrop(b *testing.B, n int) (*os.File, *Drop, int64) {
	b.Helper()
	data := tableSpool(n)
	p := filepath.Join(b.TempDir(), "drop")
	if err := os.WriteFile(p, data, 0600); err != nil {
		b.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	d, err := Parse(bufio.NewReaderSize(io.NewSectionReader(f, 0, int64(len(data))), 64<<10),
		ParseOptions{UpdateStatusHeaders: true, UIDCounter: 1})
	if err != nil {
		b.Fatal(err)
	}
	if len(d.Msgs) != n {
		b.Fatalf("parsed %d messages, want %d", len(d.Msgs), n)
	}
	return f, d, int64(len(data))
}

// BenchmarkTableParse is what every login pays today: the whole spool
// parsed (offsets, sizes, UIDs).
func BenchmarkTableParse(b *testing.B) {
	for _, sz := range tableSizes {
		b.Run(sz.name, func(b *testing.B) {
			f, _, size := tableDrop(b, sz.n)
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(bufio.NewReaderSize(io.NewSectionReader(f, 0, size), 64<<10),
					ParseOptions{UpdateStatusHeaders: true, UIDCounter: 1}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkTableRender renders every message: "wire" as RETR sends it
// (before byte-stuffing), "updated" as the write-back at QUIT writes it
// (X-UIDL and Status headers).
func BenchmarkTableRender(b *testing.B) {
	f, d, size := tableDrop(b, 10000)
	opt := ParseOptions{UpdateStatusHeaders: true}
	b.Run("wire/10k", func(b *testing.B) {
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			for i := range d.Msgs {
				if err := WriteWire(io.Discard, f, &d.Msgs[i], -1); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("updated/10k", func(b *testing.B) {
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			for i := range d.Msgs {
				if _, err := WriteUpdated(io.Discard, f, &d.Msgs[i], true, opt); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// BenchmarkTableSession is one session's durable cost on a spool in use
// (its UIDs written back by an earlier session), reported as fsyncs/op,
// written-B/op and written/spool (bytes written over the spool's size).
func BenchmarkTableSession(b *testing.B) {
	kinds := []struct {
		name     string
		del, ret func(n int) []bool
	}{
		{"poll-no-change", nil, nil},
		{"retr-all-no-dele", nil, func(n int) []bool { return all(n) }},
		{"delete-one-mid", func(n int) []bool { d := make([]bool, n); d[n/2] = true; return d }, nil},
		{"delete-newest", func(n int) []bool { d := make([]bool, n); d[n-1] = true; return d }, nil},
	}
	for _, mode := range []struct {
		name   string
		server bool
	}{{"normal", false}, {"server", true}} {
		for _, k := range kinds {
			for _, sz := range tableSizes {
				b.Run(mode.name+"/"+k.name+"/"+sz.name, func(b *testing.B) {
					tableSession(b, mode.server, sz.n, k.del, k.ret)
				})
			}
		}
	}
}

func all(n int) []bool {
	v := make([]bool, n)
	for i := range v {
		v[i] = true
	}
	return v
}

func tableSession(b *testing.B, server bool, n int, del, ret func(int) []bool) {
	c := testConfig(b, server)
	c.Logf = nil
	content := settledSpool(b, c, tableSpool(n))
	written := sessionCost(b, c, content, del, ret)
	b.ReportMetric(written/float64(len(content)), "written/spool")
}
