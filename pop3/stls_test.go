package pop3

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"
)

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "pop.example.org"},
		DNSNames:     []string{"pop.example.org"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// Commands pipelined in the clear after STLS must not run inside TLS
// (CVE-2011-0411), and a second STLS is refused.
func TestSTLSDiscardsInjectedCommands(t *testing.T) {
	cfg := &Config{Hostname: "pop.example.org", Version: "4.0.5", Expire: -1, LoginDelay: -1,
		UpdateOnAbort: true, TLS: &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}}}
	c, r, _ := start(t, cfg, newMailbox())
	fmt.Fprint(c, "STLS\r\nUSER mallory\r\n")
	if l := readLine(t, r); !strings.HasPrefix(l, "+OK") {
		t.Fatalf("STLS: %q", l)
	}
	// Let the injected line reach the server's buffer before the handshake.
	time.Sleep(50 * time.Millisecond)
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, ServerName: "pop.example.org"})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	tr := bufio.NewReader(tc)
	// Had "USER mallory" run, PASS would now be accepted as the next step.
	fmt.Fprint(tc, "PASS secret word \r\n")
	if l := readLine(t, tr); !strings.HasPrefix(l, "-ERR Unknown command") {
		t.Fatalf("PASS after injected USER: %q", l)
	}
	fmt.Fprint(tc, "STLS\r\nCAPA\r\n")
	if l := readLine(t, tr); !strings.HasPrefix(l, "-ERR") {
		t.Fatalf("second STLS: %q", l)
	}
	readLine(t, tr)
	// qpopper lists STLS whenever tls-support is STLS (pop_extend.c).
	if capa := readMulti(t, tr); !slices.Contains(capa, "STLS") {
		t.Fatalf("CAPA inside TLS: %q", capa)
	}
	fmt.Fprint(tc, "QUIT\r\n")
	if l := readLine(t, tr); !strings.HasPrefix(l, "+OK Pop server") {
		t.Fatalf("QUIT: %q", l)
	}
}

// With clear-text-password TLS, AUTH PLAIN is refused and not offered
// until STLS; inside TLS it is offered, listed and works.
func TestSTLSEnablesAuthPlain(t *testing.T) {
	cfg := &Config{Hostname: "pop.example.org", Version: "4.0.5", Expire: -1, LoginDelay: -1,
		ClearText: "TLS", ClientIP: "127.0.0.1", TLS: &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}}}
	b := &fakeBackend{mb: newMailbox()}
	c, r, _ := startBackend(t, cfg, b)
	if capa := capaLines(t, c, r); slices.Contains(capa, "SASL PLAIN") || !slices.Contains(capa, "STLS") {
		t.Fatalf("CAPA before STLS: %q", capa)
	}
	if mechs := probe(t, c, r); len(mechs) != 0 {
		t.Fatalf("AUTH before STLS lists %q", mechs)
	}
	talk(t, c, r, []exchange{{"AUTH PLAIN", errTLS}, {"STLS", "+OK STLS"}})
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, ServerName: "pop.example.org"})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	tr := bufio.NewReader(tc)
	if capa := capaLines(t, tc, tr); !slices.Contains(capa, "SASL PLAIN") || !slices.Contains(capa, "STLS") {
		t.Fatalf("CAPA inside TLS: %q", capa)
	}
	if mechs := probe(t, tc, tr); !slices.Equal(mechs, []string{"PLAIN"}) {
		t.Fatalf("AUTH inside TLS lists %q", mechs)
	}
	talk(t, tc, tr, []exchange{{"AUTH PLAIN", "+ "}, {alicePlain, aliceOK}})
	if capa := capaLines(t, tc, tr); slices.Contains(capa, "SASL PLAIN") {
		t.Fatalf("CAPA in TRANSACTION: %q", capa)
	}
	if calls := b.called(); !slices.Equal(calls, []string{`User["alice"]`, `Pass["alice" "secret word "]`}) {
		t.Fatalf("Backend calls %q", calls)
	}
}
