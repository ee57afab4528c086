package spool

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/popperd/popper/platform"
)

// The durable cost of one session: fsyncs and bytes written, per mode and
// per kind of session, reported as custom benchmark metrics
// (fsyncs/op, written-B/op). Run: go test -run XXX -bench Session ./spool
//
// The spool holds 200 messages of about 5 KB (1 MB); its UIDs have been
// written back by an earlier session, as on a server in use.

func benchSpool(b *testing.B, server bool) (*Config, []byte) {
	b.Helper()
	c := testConfig(b, server)
	c.Logf = nil
	var sb strings.Builder
	for i := 0; i < 200; i++ {
		sb.WriteString(testMsg(fmt.Sprintf("m%d", i), strings.Repeat("body text line\n", 330)))
	}
	return c, settledSpool(b, c, []byte(sb.String()))
}

// settledSpool writes mbox as c's spool and runs one session on it, which
// writes the UIDs back as on a spool in use; it returns what that left.
func settledSpool(b *testing.B, c *Config, mbox []byte) []byte {
	b.Helper()
	if err := os.WriteFile(c.Spool, mbox, 0660); err != nil {
		b.Fatal(err)
	}
	md, err := Open(c)
	if err != nil {
		b.Fatal(err)
	}
	if err := md.Commit(nil, nil); err != nil {
		b.Fatal(err)
	}
	content, err := os.ReadFile(c.Spool)
	if err != nil {
		b.Fatal(err)
	}
	return content
}

// sessionCost runs b.N sessions, each on a fresh copy of content,
// committing the deletions and retrievals del and ret choose (nil: none),
// reports fsyncs/op and written-B/op and returns the bytes written per
// session.
func sessionCost(b *testing.B, c *Config, content []byte, del, ret func(n int) []bool) float64 {
	var fsyncs, written int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if err := os.WriteFile(c.Spool, content, 0660); err != nil {
			b.Fatal(err)
		}
		platform.ResetCounters()
		b.StartTimer()
		md, err := Open(c)
		if err != nil {
			b.Fatal(err)
		}
		var d, r []bool
		if del != nil {
			d = del(md.Len())
		}
		if ret != nil {
			r = ret(md.Len())
		}
		if err := md.Commit(d, r); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		cnt := platform.ReadCounters()
		fsyncs += cnt.Fsyncs
		written += cnt.BytesWritten
		b.StartTimer()
	}
	b.ReportMetric(float64(fsyncs)/float64(b.N), "fsyncs/op")
	perOp := float64(written) / float64(b.N)
	b.ReportMetric(perOp, "written-B/op")
	return perOp
}

func benchSession(b *testing.B, server bool, del func(n int) []bool) {
	c, content := benchSpool(b, server)
	sessionCost(b, c, content, del, nil)
}

func BenchmarkSession(b *testing.B) {
	kinds := []struct {
		name string
		del  func(n int) []bool
	}{
		{"poll-no-change", func(n int) []bool { return nil }},
		{"delete-all", func(n int) []bool {
			d := make([]bool, n)
			for i := range d {
				d[i] = true
			}
			return d
		}},
		{"delete-one-of-many", func(n int) []bool {
			d := make([]bool, n)
			d[n/2] = true
			return d
		}},
	}
	for _, mode := range []struct {
		name   string
		server bool
	}{{"normal", false}, {"server", true}} {
		for _, k := range kinds {
			b.Run(mode.name+"/"+k.name, func(b *testing.B) { benchSession(b, mode.server, k.del) })
		}
	}
}
