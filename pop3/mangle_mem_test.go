package pop3

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// bigMIME writes a message of about text+attach octets, never holding
// it: a base64 text/plain part of text octets and a base64 attachment of
// attach octets.
func bigMIME(text, attach int64) func(w io.Writer) error {
	// 3648 = 64 lines of 57 octets: each block encodes to whole lines.
	plain := bytes.Repeat([]byte("All work and no play makes Jack a dull boy.\n"), 3648/44+1)[:3648]
	random := make([]byte, 3648)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	encode := func(b []byte) []byte {
		var out bytes.Buffer
		for ; len(b) > 0; b = b[57:] {
			out.WriteString(base64.StdEncoding.EncodeToString(b[:57]) + "\n")
		}
		return out.Bytes()
	}
	textBlock, binBlock := encode(plain), encode(random)
	blocks := func(w io.Writer, block []byte, n int64) error {
		for ; n > 0; n -= int64(len(block)) {
			if _, err := w.Write(block); err != nil {
				return err
			}
		}
		return nil
	}
	return func(w io.Writer) error {
		io.WriteString(w, "From: a@example.org\nSubject: big\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b\"\n\n"+
			"--b\nContent-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: base64\n\n")
		if err := blocks(w, textBlock, text); err != nil {
			return err
		}
		io.WriteString(w, "--b\nContent-Type: application/octet-stream; name=\"big.bin\"\nContent-Transfer-Encoding: base64\n\n")
		if err := blocks(w, binBlock, attach); err != nil {
			return err
		}
		_, err := io.WriteString(w, "--b--\n")
		return err
	}
}

// heapGrowth runs f and returns how far the heap in use grew above what
// it was before, sampled every millisecond.
//
// The collector runs at GOGC=10 meanwhile, so that the figure is what is
// held, give or take a tenth, not the collector's slack (at least 4 MB).
func heapGrowth(f func()) uint64 {
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	stop, peak := make(chan struct{}), make(chan uint64)
	go func() {
		max := base
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			max = maxOf(max, ms.HeapInuse)
			select {
			case <-stop:
				peak <- max - base
				return
			case <-tick.C:
			}
		}
	}()
	f()
	close(stop)
	return <-peak
}

func maxOf(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

// bigSizes are the text and attachment of the big message: 50 MB, or 10
// under the race detector (far past the bound either way).
func bigSizes() (text, attach int64) {
	if raceEnabled {
		return 3 << 20, 7 << 20
	}
	return 15 << 20, 35 << 20
}

// heapLimit is the correctness bound on what mangling one message may
// hold, whatever its size; the benchmarks track the real figures.
const heapLimit = 8 << 20

// Mangling a 50 MB message holds a few buffers, not the message: the
// first pass (the size) and the second (the text) alike.
func TestMangleMemoryBound(t *testing.T) {
	if testing.Short() {
		t.Skip("50 MB")
	}
	write := bigMIME(bigSizes())
	var size int64
	out := &countWriter{}
	growth := heapGrowth(func() {
		p, n, err := planMangle(write)
		if err != nil {
			t.Fatal(err)
		}
		size = n
		if err := writeMangled(out, write, p); err != nil {
			t.Fatal(err)
		}
	})
	text, attach := bigSizes()
	t.Logf("%d MB message mangled to %d octets; heap grew by %d KB", (text+attach)>>20, out.n, growth>>10)
	if out.n < 2<<20 || size != out.n+out.lf {
		t.Fatalf("mangled to %d octets (%d LFs); size counted %d", out.n, out.lf, size)
	}
	if growth > heapLimit {
		t.Fatalf("the heap grew by %d KB mangling a 50 MB message; limit %d KB", growth>>10, heapLimit>>10)
	}
}

// A "-no-mime" session that logs in (every message sized as mangled),
// lists and retrieves a 50 MB message stays within the bound too.
func TestNoMIMESessionMemoryBound(t *testing.T) {
	if testing.Short() {
		t.Skip("50 MB")
	}
	mb := textOnlyGen{&genMailbox{gen: bigMIME(bigSizes())}}
	c, server := tcpPair(t)
	r := bufio.NewReader(c)
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	var listed, got int64
	growth := heapGrowth(func() {
		done := make(chan error, 1)
		go func() {
			done <- Serve(server, &mailboxBackend{mbox: mb}, &Config{Hostname: "h", Version: "4.0.5", Expire: -1, LoginDelay: -1})
		}()
		io.WriteString(c, "USER alice\r\nPASS secret word \r\nLIST 1\r\nRETR 1\r\n")
		for i := 0; i < 5; i++ { // greeting, USER, PASS, LIST, RETR
			l, _ := r.ReadString('\n')
			if i == 3 {
				if _, err := fmt.Sscanf(l, "+OK 1 %d", &listed); err != nil {
					t.Errorf("LIST 1: %q", l)
				}
			}
		}
		// The text, up to the final dot (the text has no line of a dot).
		for {
			l, err := r.ReadSlice('\n')
			if err != nil {
				t.Errorf("RETR: %v after %d octets", err, got)
				break
			}
			if string(l) == ".\r\n" {
				break
			}
			got += int64(len(l))
		}
		io.WriteString(c, "QUIT\r\n")
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	t.Logf("-no-mime session: LIST said %d, RETR sent %d; heap grew by %d KB", listed, got, growth>>10)
	if listed < 2<<20 || listed != got {
		t.Errorf("LIST said %d octets, RETR sent %d", listed, got)
	}
	if growth > heapLimit {
		t.Fatalf("the heap grew by %d KB in a -no-mime session with a 50 MB message; limit %d KB", growth>>10, heapLimit>>10)
	}
}

// textOnlyGen is a genMailbox of a "-no-mime" login.
type textOnlyGen struct{ *genMailbox }

func (textOnlyGen) TextOnly() bool { return true }

// BenchmarkMangle mangles a 4 MB message (both passes) as RETR does.
func BenchmarkMangle(b *testing.B) {
	write := bigMIME(1<<20, 3<<20)
	b.SetBytes(4 << 20)
	b.ReportAllocs()
	for b.Loop() {
		p, _, err := planMangle(write)
		if err != nil {
			b.Fatal(err)
		}
		if err := writeMangled(io.Discard, write, p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMangleSize is the first pass alone: LIST, and the PASS reply
// of a "-no-mime" login.
func BenchmarkMangleSize(b *testing.B) {
	write := bigMIME(1<<20, 3<<20)
	b.SetBytes(4 << 20)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := planMangle(write); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMangleReference is the in-memory mangler it replaced, on the
// same message, as the session used it: the message read into memory,
// mangled, its size counted.
func BenchmarkMangleReference(b *testing.B) {
	write := bigMIME(1<<20, 3<<20)
	b.SetBytes(4 << 20)
	b.ReportAllocs()
	for b.Loop() {
		var raw bytes.Buffer
		write(&raw)
		m, err := refMangleTextPlain(raw.Bytes())
		if err != nil {
			b.Fatal(err)
		}
		refMangledSize(m)
	}
}

// The bound holds for hostile structure too: parts nested as deep as
// mangling goes, each with a header and a Content-Type just under the
// limits, enclosed messages likewise. (And just under the limits the
// message is mangled exactly as before.)
func TestMangleMemoryBoundHostile(t *testing.T) {
	pad := strings.Repeat("p", 30<<10)
	nestedParts := "Content-Type: text/plain\n\ncore\n"
	for i := maxMIMEDepth; i >= 0; i-- {
		nestedParts = fmt.Sprintf("Content-Type: multipart/mixed; boundary=b%d; x=%q\nX-Pad: %s\n\n--b%d\n%s\n--b%d--\n", i, pad, pad, i, nestedParts, i)
	}
	nestedMsgs := "Subject: core\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\naGk=\n"
	for i := 0; i < maxMIMEDepth+2; i++ {
		nestedMsgs = fmt.Sprintf("Subject: %s\nContent-Type: message/rfc822; x=%q\n\n%s", pad, pad, nestedMsgs)
	}
	for name, msg := range map[string]string{"nested parts": nestedParts, "nested messages": nestedMsgs} {
		if len(msg) < 512<<10 {
			t.Fatalf("%s: only %d octets", name, len(msg))
		}
		want, err := refMangleTextPlain([]byte(msg))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var got bytes.Buffer
		write := func(w io.Writer) error { _, err := io.WriteString(w, msg); return err }
		growth := heapGrowth(func() {
			p, _, err := planMangle(write)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if err := writeMangled(io.Discard, write, p); err != nil {
				t.Fatal(err)
			}
		})
		p, _, _ := planMangle(write)
		writeMangled(&got, write, p)
		if !bytes.Equal(got.Bytes(), want) {
			t.Errorf("%s: mangled differently", name)
		}
		t.Logf("%s (%d KB): heap grew by %d KB", name, len(msg)>>10, growth>>10)
		if growth > heapLimit {
			t.Errorf("%s: the heap grew by %d KB; limit %d KB", name, growth>>10, heapLimit>>10)
		}
	}
}
