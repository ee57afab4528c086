package pop3

import (
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestPlainHeaderFast: wherever the allocation-free decision decides, it
// decides as the mangler's parse of the header does, on headers made of
// the fields and spellings that matter to it, folded, repeated, empty,
// in any case, with CRLF or LF.
func TestPlainHeaderFast(t *testing.T) {
	fields := []string{
		"From: a@example.org", "Subject: hello", " folded continuation", "\tfolded tab",
		"Content-Type: text/plain", "Content-Type: text/plain; charset=us-ascii", "content-type: TEXT/PLAIN;charset=\"utf-8\"; format=flowed",
		"Content-Type: text/html", "Content-Type: multipart/mixed; boundary=b", "Content-Type:", "Content-Type: text/plain; charset",
		"Content-Type: text/plain;;", "Content-Type : text/plain", " Content-Type: text/html", "Content-Type: text/plainx",
		"Content-Type: text/ plain", "Content-Type: \"text/plain\"", "Content-Type: text/plain (comment)",
		"Content-Transfer-Encoding: 7bit", "Content-Transfer-Encoding: 8BIT", "Content-Transfer-Encoding: binary",
		"Content-Transfer-Encoding: quoted-printable", "Content-Transfer-Encoding: base64", "Content-Transfer-Encoding:",
		"CONTENT-TRANSFER-ENCODING: 7bit ", "MIME-Version: 1.0", "no colon here", "X-Content-Type: text/html",
	}
	rng := rand.New(rand.NewPCG(7, 7))
	decided := 0
	for n := range 20000 {
		var b strings.Builder
		nl := "\n"
		if n%3 == 0 {
			nl = "\r\n"
		}
		for range 1 + rng.IntN(6) {
			b.WriteString(fields[rng.IntN(len(fields))] + nl)
		}
		if n%5 != 0 {
			b.WriteString(nl)
		}
		h := []byte(b.String())
		plain, ok := plainHeaderFast(h)
		if !ok {
			continue
		}
		decided++
		if want := plainHeaderParsed(h); plain != want {
			t.Fatalf("header %q: fast %v, the parse %v", h, plain, want)
		}
	}
	if decided < 2000 {
		t.Errorf("the fast path decided only %d of 20000 headers", decided)
	}
	h := "From: a@example.org\nMIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: 7bit\n\n"
	if plain, ok := plainHeaderFast([]byte(h)); !plain || !ok {
		t.Errorf("the usual MIME text/plain header: plain %v, decided %v", plain, ok)
	}
	hb := []byte(h)
	write := func(w io.Writer) error { _, err := w.Write(hb); return err }
	if n := testing.AllocsPerRun(100, func() { plainHeader(write) }); n > 0 {
		t.Errorf("plainHeader allocates %v times on it", n)
	}
}
