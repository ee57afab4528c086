package pop3

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"strings"
	"sync/atomic"
	"testing"
)

// The protocol's share of RETR (issue 12's "RETR all" rows): a session
// over loopback TCP on an in-memory mailbox, so that what is measured is
// the reply path — byte-stuffing, CRLF, buffering — and not the spool.
// Reported: MB/s of wire bytes, and the server's write calls per
// message (writes/msg). Run: go test -run XXX -bench Retr ./pop3

// lognormalMessages are n messages of scripts/bench's size distribution
// (median 2 KiB, sigma 1.342), the same every run, with a body line
// that needs byte-stuffing now and then.
func lognormalMessages(n int) []string {
	rng := rand.New(rand.NewPCG(12, 0x5EED))
	msgs := make([]string, n)
	for i := range msgs {
		want := int(math.Exp(math.Log(2048) + 1.342*rng.NormFloat64()))
		want = min(max(want, 700), 8<<20)
		var b strings.Builder
		fmt.Fprintf(&b, "Received: from mx.example.org by mail.example.net; Mon, 4 Mar 2024 05:06:07 +0000\n"+
			"Date: Mon, 4 Mar 2024 05:06:07 +0000\nFrom: sender%d@example.org\nTo: popbench@example.net\n"+
			"Subject: message %d\nMessage-ID: <%d@example.org>\n\n", i, i, i)
		for j := 0; b.Len() < want; j++ {
			if j%53 == 7 {
				b.WriteString(".a line that starts with a dot\n")
			} else {
				b.WriteString("the body of a message in the benchmark spool, words and words\n")
			}
		}
		msgs[i] = b.String()
	}
	return msgs
}

// retrWriteCounter counts the server's writes to the connection.
type retrWriteCounter struct {
	net.Conn
	writes *atomic.Int64
}

func (c retrWriteCounter) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

func benchRetr(b *testing.B, pipelined bool) {
	msgs := lognormalMessages(2000)
	mb := &fakeMailbox{msgs: msgs}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	cfg := &Config{Hostname: "pop.example.org", Version: "4.0.5", Expire: -1, LoginDelay: -1}
	var writes atomic.Int64
	var wire int64
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		client, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		server, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			done <- Serve(retrWriteCounter{server, &writes}, &fakeBackend{mb: mb}, cfg)
			server.Close()
		}()
		r := bufio.NewReaderSize(client, 256<<10)
		w := bufio.NewWriter(client)
		expect := func() {
			line, err := r.ReadString('\n')
			if err != nil || !strings.HasPrefix(line, "+OK") {
				b.Fatalf("%q %v", line, err)
			}
		}
		expect()
		fmt.Fprintf(w, "USER alice\r\nPASS secret word \r\n")
		w.Flush()
		expect()
		expect()
		writes.Store(0)
		sent := make(chan error, 1)
		if pipelined {
			go func() {
				bw := bufio.NewWriterSize(client, 64<<10)
				for m := 1; m <= len(msgs); m++ {
					fmt.Fprintf(bw, "RETR %d\r\n", m)
				}
				sent <- bw.Flush()
			}()
		}
		var n int64
		for m := 1; m <= len(msgs); m++ {
			if !pipelined {
				fmt.Fprintf(w, "RETR %d\r\n", m)
				w.Flush()
			}
			expect()
			for {
				line, err := r.ReadSlice('\n')
				n += int64(len(line))
				if err == bufio.ErrBufferFull {
					continue
				}
				if err != nil {
					b.Fatal(err)
				}
				if string(line) == ".\r\n" {
					break
				}
			}
		}
		if pipelined {
			if err := <-sent; err != nil {
				b.Fatal(err)
			}
		}
		fmt.Fprintf(w, "QUIT\r\n")
		w.Flush()
		io.Copy(io.Discard, r)
		client.Close()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		wire = n
	}
	b.SetBytes(wire)
	// the QUIT reply is one write more; the RETRs alone:
	b.ReportMetric(float64(writes.Load()-1)/float64(len(msgs)), "writes/msg")
}

func BenchmarkRetr(b *testing.B) {
	b.Run("one-at-a-time", func(b *testing.B) { benchRetr(b, false) })
	b.Run("pipelined", func(b *testing.B) { benchRetr(b, true) })
}
