package main

import (
	"bufio"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"time"
)

// The spools are the same bytes on every run: a PCG generator with a
// fixed seed draws each message's size from a lognormal distribution with
// a median of 2 KiB and sigma 1.342, so that the mean is about 5 KiB
// (50,000 messages make about 252 MB, as in issue 12's table).
const (
	medianSize = 2048
	sigma      = 1.342
	maxMsgSize = 8 << 20
	minMsgSize = 700
)

var words = strings.Fields(`the of and to in is was that for on as with by at from his an were are
which this be or has had not but also first one their its new after who they have her she two been other
when there all during into school time may years more most only over city some world would where later up
such used many can state about national out known university united then made three under system well
mail spool server message client session delivery header body lock index update queue host network`)

// lines is a pool of body lines, made once from the same seed.
func bodyLines(rng *rand.Rand) []string {
	pool := make([]string, 997)
	for i := range pool {
		var b strings.Builder
		if i%53 == 0 {
			b.WriteString(".") // a line the server must dot-stuff
		}
		target := 20 + rng.IntN(57)
		for b.Len() < target {
			if b.Len() > 0 && b.String() != "." {
				b.WriteByte(' ')
			}
			b.WriteString(words[rng.IntN(len(words))])
		}
		b.WriteByte('\n')
		pool[i] = b.String()
	}
	return pool
}

type spoolInfo struct {
	msgs  int
	bytes int64
}

// genSpool writes an mbox of msgs messages, or of at least size bytes
// when msgs is 0, deterministically.
func genSpool(path string, msgs int, size int64) (spoolInfo, error) {
	rng := rand.New(rand.NewPCG(12, 0x5EED))
	pool := bodyLines(rng)
	f, err := os.Create(path)
	if err != nil {
		return spoolInfo{}, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	base := time.Date(2024, 3, 4, 5, 6, 7, 0, time.UTC)
	var info spoolInfo
	for i := 0; ; i++ {
		if msgs > 0 && i >= msgs || msgs == 0 && info.bytes >= size {
			break
		}
		want := int(math.Exp(math.Log(medianSize) + sigma*rng.NormFloat64()))
		want = min(max(want, minMsgSize), maxMsgSize)
		d := base.Add(time.Duration(i) * 37 * time.Second)
		var h strings.Builder
		fmt.Fprintf(&h, "From sender%d@example.org %s\n", i%997, d.Format(time.ANSIC))
		fmt.Fprintf(&h, "Return-Path: <sender%d@example.org>\n", i%997)
		fmt.Fprintf(&h, "Received: from mx%d.example.org (mx%d.example.org [192.0.2.%d])\n\tby mail.example.net (Postfix) with ESMTP id %08X\n\tfor <popbench@example.net>; %s\n",
			i%7, i%7, i%250+1, rng.Uint32(), d.Format(time.RFC1123Z))
		fmt.Fprintf(&h, "Date: %s\nFrom: Sender %d <sender%d@example.org>\nTo: popbench@example.net\n", d.Format(time.RFC1123Z), i%997, i%997)
		fmt.Fprintf(&h, "Subject: message %d of the benchmark spool\nMessage-ID: <%d.%08x@example.org>\n", i, i, rng.Uint32())
		h.WriteString("MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\n")
		n := h.Len()
		w.WriteString(h.String())
		for n < want {
			l := pool[rng.IntN(len(pool))]
			w.WriteString(l)
			n += len(l)
		}
		w.WriteString("\n") // the blank line before the next From_ line
		n++
		info.msgs++
		info.bytes += int64(n)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return info, err
	}
	return info, f.Close()
}
