package spool

import (
	"bytes"
	"math/rand"
	"strings"
	"testing"
)

// writeBack writes d's messages back as an update that keeps them all
// does (boundaryWriter, WriteUpdated with each message's own Retrieved
// state) and returns the output and where each message's bytes start.
func writeBack(t *testing.T, d *Drop, src []byte, opt ParseOptions) (string, []int) {
	t.Helper()
	var out bytes.Buffer
	bw := newBoundaryWriter(&out, d.Format)
	starts := make([]int, len(d.Msgs)+1)
	for i := range d.Msgs {
		if err := bw.startMessage(); err != nil {
			t.Fatal(err)
		}
		bw.Flush()
		starts[i] = out.Len()
		if _, err := WriteUpdated(bw, bytes.NewReader(src), &d.Msgs[i], d.Msgs[i].Retrieved, opt); err != nil {
			t.Fatal(err)
		}
	}
	bw.Flush()
	starts[len(d.Msgs)] = out.Len()
	return out.String(), starts
}

// randomDrop builds a drop from header and body variants that each take
// a different path through WriteUpdated.
func randomDrop(rng *rand.Rand, mmdf bool) string {
	const sep = "\x01\x01\x01\x01\n"
	pick := func(v ...string) string { return v[rng.Intn(len(v))] }
	var b strings.Builder
	n := 1 + rng.Intn(4)
	for i := 0; i < n; i++ {
		if mmdf {
			b.WriteString(sep)
		} else {
			b.WriteString("From alice@example.com Mon Jan  1 00:00:0" + string(rune('0'+i)) + " 2024\n")
		}
		uid := pick("keep-me-please-1", "keep-me-please-2", "another-uid-value-x")
		b.WriteString(pick("", "X-UIDL: "+uid+"\n", "X-UIDL:\t "+uid+"\n", "x-uidl: "+uid+"\n",
			"X-UIDL: "+uid+"\nX-UIDL: second-second-second\n", "X-UIDL: "+uid+"\r\n", "X-UIDL:\x00"+uid+"\n", "X-UIDL: short\n"))
		b.WriteString("Subject: s" + string(rune('a'+i)) + "\n")
		if rng.Intn(3) == 0 {
			b.WriteString("X-UIDL: late-late-late-late\n")
		}
		b.WriteString(pick("", "Status: RO\n", "Status: R\n", "Status: O\n", "Status: U\n", "status: RO\n",
			"Status: RO\nStatus: RO\n", "Status: RO\r\n", "Status: O\nStatus: RO\n", "Status:\x00RO\n"))
		b.WriteString(pick("", "Content-Length: 5\n", "Content-Length: 999\n"))
		last := i == n-1
		switch rng.Intn(6) {
		case 0:
			if last {
				b.WriteString("Subject: headers only")
				continue
			}
			b.WriteString("\nbody\n\n")
		case 1:
			b.WriteString("\r\nbody\r\n\r\n")
		case 2:
			b.WriteString("\nFrom inside the body\nbody\n\n")
		case 3:
			if last {
				b.WriteString("\nno newline at the end")
				continue
			}
			b.WriteString("\nbody\n\n")
		default:
			b.WriteString("\nbody\n\n")
		}
		if mmdf {
			b.WriteString(sep)
		}
	}
	return b.String()
}

// TestCanonical holds Msg.Canonical to what it promises: a canonical
// message is written back byte for byte, so an update may skip it, and
// after one write-back every message is canonical, so the next session
// that changes nothing writes nothing.
func TestCanonical(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	opts := []ParseOptions{
		{UpdateStatusHeaders: true, UIDCounter: 5, FromSpool: true},
		{UpdateStatusHeaders: true, UIDCounter: 5},
		{FromSpool: true},
		{UpdateStatusHeaders: true, ContentLength: true, UIDCounter: 9, FromSpool: true},
	}
	canonical, total := 0, 0
	for iter := 0; iter < 3000; iter++ {
		opt := opts[iter%len(opts)]
		content := randomDrop(rng, iter%5 == 0)
		d, err := Parse(strings.NewReader(content), opt)
		if err != nil {
			t.Fatal(err)
		}
		out, starts := writeBack(t, d, []byte(content), opt)
		for i := range d.Msgs {
			m := &d.Msgs[i]
			total++
			if !m.Canonical {
				continue
			}
			canonical++
			if got, want := out[starts[i]:starts[i+1]], content[m.Start:m.Next]; got != want {
				t.Fatalf("%+v: message %d is Canonical but is written back as\n%q\nnot\n%q\nin\n%q", opt, i, got, want, content)
			}
		}
		// The written-back drop, parsed again: canonical throughout.
		d2, err := Parse(strings.NewReader(out), opt)
		if err != nil {
			t.Fatal(err)
		}
		for i := range d2.Msgs {
			m := &d2.Msgs[i]
			if !m.Canonical {
				t.Fatalf("%+v: message %d not canonical after a write-back:\n%q\nfrom\n%q", opt, i, out[m.Start:m.Next], content)
			}
		}
	}
	if canonical == 0 || canonical == total {
		t.Fatalf("%d of %d messages canonical: the generator does not cover both cases", canonical, total)
	}
	t.Logf("%d of %d generated messages canonical", canonical, total)
}
