package spool

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/textproto"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// wireBytes sends message m through WriteWire and net/textproto's
// DotWriter as the protocol layer does, and returns what a client reads
// and how many stuffing dots it holds.
func wireBytes(t testing.TB, src io.ReaderAt, m *Msg, bodyLines int) (string, int) {
	t.Helper()
	var plain bytes.Buffer
	if err := WriteWire(&plain, src, m, bodyLines); err != nil {
		t.Fatal(err)
	}
	stuffed := 0
	for _, l := range strings.SplitAfter(plain.String(), "\n") {
		if strings.HasPrefix(l, ".") {
			stuffed++
		}
	}
	var out bytes.Buffer
	bw := bufio.NewWriter(&out)
	dw := textproto.NewWriter(bw).DotWriter()
	if _, err := dw.Write(plain.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := dw.Close(); err != nil {
		t.Fatal(err)
	}
	bw.Flush()
	return out.String(), stuffed
}

// patternReader yields n bytes of a line without newline, generated on
// the fly so the test input itself takes no memory.
type patternReader struct{ n int64 }

func (r *patternReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.n {
		p = p[:r.n]
	}
	for i := range p {
		p[i] = 'a' + byte(i%26)
	}
	r.n -= int64(len(p))
	return len(p), nil
}

func allocated(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// TestLongLineBoundedMemory parses and renders a message with a 5 MB line
// (in the header and in the body) and checks that memory allocated stays
// far below the line length.
func TestLongLineBoundedMemory(t *testing.T) {
	const long = 5 << 20
	head := from1 + "Subject: "
	mid := "\n\n" + "body: "
	tail := "\n\n" + from2 + "Subject: after\n\nx\n"
	input := func() io.Reader {
		return io.MultiReader(strings.NewReader(head), &patternReader{long},
			strings.NewReader(mid), &patternReader{long}, strings.NewReader(tail))
	}
	var d *Drop
	var err error
	n := allocated(func() { d, err = Parse(input(), ParseOptions{UpdateStatusHeaders: true}) })
	if err != nil {
		t.Fatal(err)
	}
	if n > 1<<20 {
		t.Errorf("Parse allocated %d bytes for a %d-byte line", n, long)
	}
	if len(d.Msgs) != 2 {
		t.Fatalf("%d msgs", len(d.Msgs))
	}
	m := d.Msgs[0]
	if want := int64(len("Subject: ")+long+2) + 2 + int64(len("body: ")+long+2) + 2 + 30; m.Size != want {
		t.Errorf("size %d want %d", m.Size, want)
	}

	// Render from a real file.
	p := filepath.Join(t.TempDir(), "drop")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.Copy(f, input()); err != nil {
		t.Fatal(err)
	}
	var cw countWriter
	n = allocated(func() { err = WriteWire(&cw, f, &m, -1) })
	if err != nil {
		t.Fatal(err)
	}
	if n > 1<<20 {
		t.Errorf("WriteWire allocated %d bytes", n)
	}
	if want := m.Size - 5; cw.n != want { // 5 lines, CR not added here
		t.Errorf("WriteWire wrote %d want %d", cw.n, want)
	}
	cw.n = 0
	n = allocated(func() { _, err = WriteUpdated(&cw, f, &m, true, ParseOptions{UpdateStatusHeaders: true}) })
	if err != nil {
		t.Fatal(err)
	}
	if n > 1<<20 {
		t.Errorf("WriteUpdated allocated %d bytes", n)
	}
	n = allocated(func() { err = WriteWire(&cw, f, &m, 0) })
	if n > 1<<20 || err != nil {
		t.Errorf("TOP 0 allocated %d bytes, err %v", n, err)
	}
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// FuzzParse checks that any input parses without panic into messages and
// junk that tile the file, that every message renders, and that a
// write-back parses into the same number of messages with their UIDs.
func FuzzParse(f *testing.F) {
	f.Add([]byte(from1+"Subject: a\n\nb\n\n"+from2+"X-UIDL: abcdefghijklmnopqrst\n\nc"), uint8(0))
	f.Add([]byte("\x01\x01\x01\x01\nSubject: a\n\nb\n\x01\x01\x01\x01\n"), uint8(1))
	f.Add([]byte(from1+"Content-Length: 9999\n\nx\n\n"+from2+"\nFrom "), uint8(2))
	f.Add([]byte("junk\n\n"+from3+"\r\n\r\n.\r\n"), uint8(3))
	f.Add([]byte(from1+"Status: R\nX-IMAP: 1\nSubject: FOLDER INTERNAL DATA\n"), uint8(7))
	f.Fuzz(func(t *testing.T, data []byte, flags uint8) {
		opt := ParseOptions{
			ContentLength:       flags&1 != 0,
			UWKluge:             flags&2 != 0,
			UpdateStatusHeaders: flags&4 != 0,
			OldStyleUID:         flags&8 != 0,
			FromSpool:           flags&16 != 0,
			UIDCounter:          int64(flags),
		}
		d, err := Parse(bytes.NewReader(data), opt)
		if err != nil {
			t.Fatal(err)
		}
		checkDrop(t, d, int64(len(data)))
		src := bytes.NewReader(data)
		var out bytes.Buffer
		for i := range d.Msgs {
			m := &d.Msgs[i]
			if m.Size < uidLineSize(m.UID) {
				t.Fatalf("msg %d: size %d", i, m.Size)
			}
			if err := WriteWire(io.Discard, src, m, -1); err != nil {
				t.Fatalf("msg %d: %v", i, err)
			}
			if err := WriteWire(io.Discard, src, m, 1); err != nil {
				t.Fatalf("msg %d: %v", i, err)
			}
			if _, err := WriteUpdated(&out, src, m, i%2 == 0, opt); err != nil {
				t.Fatalf("msg %d: %v", i, err)
			}
		}
		if len(d.Msgs) == 0 {
			return
		}
		d2, err := Parse(bytes.NewReader(out.Bytes()), opt)
		if err != nil {
			t.Fatal(err)
		}
		checkDrop(t, d2, int64(out.Len()))
		if len(d2.Msgs) != len(d.Msgs) {
			// A write-back may only change what lies outside the
			// messages' own lines when the input is already damaged
			// (junk is not written back); messages themselves keep
			// their count.
			t.Fatalf("write-back has %d msgs, was %d\n%q\n%q", len(d2.Msgs), len(d.Msgs), data, out.Bytes())
		}
		for i := range d.Msgs {
			if opt.OldStyleUID && opt.FromSpool && d.Msgs[i].BadContentLength {
				// Old-style UIDs are never taken from the spool
				// (qpopper's window), so they are regenerated, and
				// the dropped Content-Length was part of the digest.
				continue
			}
			if d2.Msgs[i].UID != d.Msgs[i].UID {
				t.Fatalf("msg %d: UID %q then %q\n%q\n%q", i, d.Msgs[i].UID, d2.Msgs[i].UID, data, out.Bytes())
			}
		}
	})
}

// BenchmarkParse parses a generated 50 MB mbox of 10 000 messages.
func BenchmarkParse(b *testing.B) {
	var sb strings.Builder
	for i := 0; sb.Len() < 50<<20; i++ {
		fmt.Fprintf(&sb, "From user%d@example.com Wed Dec  2 05:53:22 1992\n", i)
		fmt.Fprintf(&sb, "Received: from x by y; Wed, 2 Dec 1992 05:53:22 +0000\nDate: Wed, 2 Dec 1992 05:53:22 +0000\n")
		fmt.Fprintf(&sb, "Message-Id: <%d@example.com>\nSubject: message %d\nFrom: a@example.com\nTo: b@example.com\n", i, i)
		if i%3 == 0 {
			fmt.Fprintf(&sb, "X-UIDL: uid-%016d\nStatus: RO\n", i)
		}
		sb.WriteString("\n")
		for j := 0; j < 70; j++ {
			sb.WriteString("The quick brown fox jumps over the lazy dog, again and again and again.\n")
		}
		sb.WriteString("\n")
	}
	data := []byte(sb.String())
	p := filepath.Join(b.TempDir(), "drop")
	if err := os.WriteFile(p, data, 0600); err != nil {
		b.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d, err := Parse(bufio.NewReaderSize(io.NewSectionReader(f, 0, int64(len(data))), 64<<10),
			ParseOptions{UpdateStatusHeaders: true, UIDCounter: 1})
		if err != nil {
			b.Fatal(err)
		}
		if len(d.Msgs) < 1000 {
			b.Fatalf("%d msgs", len(d.Msgs))
		}
	}
}
