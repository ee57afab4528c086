package pop3

import (
	"bufio"
	"bytes"
	"io"
	"net/textproto"
	"strings"
	"testing"
	"time"
)

// textprotoDot is what net/textproto's DotWriter makes of data written
// in the given pieces: the bytes popper's sizes are counted against.
func textprotoDot(pieces [][]byte) []byte {
	var out bytes.Buffer
	bw := bufio.NewWriter(&out)
	dw := textproto.NewWriter(bw).DotWriter()
	for _, p := range pieces {
		dw.Write(p)
	}
	dw.Close()
	return out.Bytes()
}

func popperDot(pieces [][]byte, bufSize int) []byte {
	var out bytes.Buffer
	bw := bufio.NewWriterSize(&out, bufSize)
	dw := newDotWriter(bw)
	for _, p := range pieces {
		if n, err := dw.Write(p); n != len(p) || err != nil {
			panic(err)
		}
	}
	dw.Close()
	bw.Flush()
	return out.Bytes()
}

// split cuts data into pieces at the positions cuts names (mod its
// length), so that line ends, CR runs and dots fall across Writes.
func split(data, cuts []byte) [][]byte {
	var pieces [][]byte
	for _, c := range cuts {
		if len(data) == 0 {
			break
		}
		n := int(c) % (len(data) + 1)
		pieces = append(pieces, data[:n])
		data = data[n:]
	}
	return append(pieces, data)
}

var dotCases = []string{
	"", "\n", ".", ".\n", "..\n", "a", "a\n", "a\r", "a\r\n", "a\r\r\n", "a\r\r\r\n",
	"\r", "\r\n", "\r\r", "\r\r\n.x\n", ".\r\n.\r\n", "x\n.\n..\n\n.", "a\rb\n", "\r.\n",
	"Subject: x\n\nbody\n.dot\n\n.\n", "no newline at the end", "ends in CR\r", "ends in CRs\r\r",
	"\n\n\n", "\r\n\r\n", ".a\r.b\n\r\r\r.c",
}

func TestDotWriterMatchesTextproto(t *testing.T) {
	for _, c := range dotCases {
		data := []byte(c)
		for k := 0; k <= len(data); k++ {
			pieces := [][]byte{data[:k], data[k:]}
			want := textprotoDot(pieces)
			for _, size := range []int{16, 4096} {
				if got := popperDot(pieces, size); !bytes.Equal(got, want) {
					t.Errorf("%q cut at %d (buffer %d): got %q, want %q", c, k, size, got, want)
				}
			}
		}
	}
}

func FuzzDotWriter(f *testing.F) {
	for _, c := range dotCases {
		f.Add([]byte(c), []byte{1, 3})
	}
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		pieces := split(data, cuts)
		want := textprotoDot(pieces)
		if got := popperDot(pieces, 16); !bytes.Equal(got, want) {
			t.Fatalf("%q in pieces %q: got %q, want %q", data, pieces, got, want)
		}
	})
}

// Replies leave in as few writes as the buffer allows: a RETR with its
// +OK line and terminating dot in one, and the replies to commands
// pipelined in one packet together in one.
func TestRetrRepliesShareWrites(t *testing.T) {
	c, server := tcpPair(t)
	cc := &countingConn{Conn: server}
	go Serve(cc, &fakeBackend{mb: newMailbox()}, &Config{Hostname: "h", Version: "4.0.5", Expire: -1, LoginDelay: -1})
	r := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	readLine(t, r)
	loginAny(t, c, r)
	for _, tc := range []struct {
		cmds   string
		writes int64
	}{
		{"RETR 1\r\n", 1},
		{"RETR 1\r\nRETR 2\r\nTOP 3 0\r\nRETR 3\r\n", 1},
	} {
		before := cc.writes.Load()
		io.WriteString(c, tc.cmds)
		for range strings.Count(tc.cmds, "\r\n") {
			if l := readLine(t, r); !strings.HasPrefix(l, "+OK") {
				t.Fatalf("%q: %q", tc.cmds, l)
			}
			readMulti(t, r)
		}
		if got := cc.writes.Load() - before; got != tc.writes {
			t.Errorf("%q: %d writes, want %d", tc.cmds, got, tc.writes)
		}
	}
}
