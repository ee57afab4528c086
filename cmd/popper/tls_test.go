package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// makeCert writes a self-signed ECDSA certificate and its key (encrypted the
// classic OpenSSL way when passphrase is set) and returns the files: the
// certificate alone, the key alone, and both in one file.
func makeCert(t *testing.T, dir, passphrase string) (certFile, keyFile, bothFile string, der []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "every-option.example.org"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	kblock := &pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}
	if passphrase != "" {
		// the classic encrypted PEM is what tls-passphrase opens
		kblock, err = x509.EncryptPEMBlock(rand.Reader, kblock.Type, kder, []byte(passphrase), x509.PEMCipherAES256)
		if err != nil {
			t.Fatal(err)
		}
	}
	certPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	keyPEM := string(pem.EncodeToMemory(kblock))
	certFile = filepath.Join(dir, "eo-cert.pem")
	keyFile = filepath.Join(dir, "eo-key.pem")
	bothFile = filepath.Join(dir, "eo-both.pem")
	writeFile(t, certFile, certPEM, 0644)
	writeFile(t, keyFile, keyPEM, 0600)
	writeFile(t, bothFile, certPEM+keyPEM, 0600)
	return certFile, keyFile, bothFile, der
}

// startTLS upgrades a client with STLS and returns the handshake result.
func (c *client) startTLS(cfg *tls.Config) (tls.ConnectionState, error) {
	c.t.Helper()
	if r := c.do("STLS"); r != "+OK STLS" { // pop_extend.c's reply
		c.t.Fatalf("STLS: %q", r)
	}
	return c.handshake(cfg)
}

func (c *client) handshake(cfg *tls.Config) (tls.ConnectionState, error) {
	cfg.InsecureSkipVerify = true // self-signed test certificate
	tc := tls.Client(c.conn, cfg)
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil {
		return tls.ConnectionState{}, err
	}
	tc.SetDeadline(time.Time{})
	c.conn, c.r = tc, bufio.NewReader(tc)
	return tc.ConnectionState(), nil
}

// The tls-* options' effects are rows of TestEveryOption; these are the
// notices popper logs for what it will not do.
func TestTLSNotices(t *testing.T) {
	t.Run("tls-version SSLv3 is logged and TLS 1.0 offered", func(t *testing.T) {
		s := newSite(t)
		_, _, cert, _ := makeCert(t, s.dir, "")
		s.setOptions(t, "set tls-support = stls", "set tls-server-cert-file = "+cert, "set tls-version = SSLv3")
		c := s.dial(t)
		if _, err := c.startTLS(&tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10}); err != nil {
			t.Fatal(err)
		}
		c.ok("QUIT")
		c.cmd.Wait()
		if tr := eoTrace(t, s.trace); !strings.Contains(tr, "tls-version SSLv3 is not offered (broken, RFC 6176 and RFC 7568); TLS 1.0 and later are") {
			t.Fatalf("no notice in trace:\n%s", tr)
		}
	})
	t.Run("tls-cipher-list names a suite popper does not offer", func(t *testing.T) {
		s := newSite(t)
		_, _, cert, _ := makeCert(t, s.dir, "")
		s.setOptions(t, "set tls-support = stls", "set tls-server-cert-file = "+cert,
			`set tls-cipher-list = "HIGH:!aNULL:!MD5:DHE-RSA-AES256-SHA:ECDHE-ECDSA-CHACHA20-POLY1305"`)
		c := s.dial(t)
		st, err := c.startTLS(&tls.Config{MaxVersion: tls.VersionTLS12})
		if err != nil || st.CipherSuite != tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 {
			t.Fatalf("handshake: %v, suite %s", err, tls.CipherSuiteName(st.CipherSuite))
		}
		c.ok("QUIT")
		c.cmd.Wait()
		if tr := eoTrace(t, s.trace); !strings.Contains(tr, "tls-cipher-list: ciphers not known to popper ignored: DHE-RSA-AES256-SHA") {
			t.Fatalf("unknown cipher not logged:\n%s", tr)
		}
	})
}

func TestParseCipherList(t *testing.T) {
	suites, unknown := parseCipherList("ALL:!EXPORT:+RC4:@STRENGTH:ECDHE-RSA-AES128-SHA,RC4-SHA AES128-SHA ECDHE-RSA-AES256-GCM-SHA384")
	if len(suites) != 2 || suites[0] != tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA || suites[1] != tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 {
		t.Errorf("suites %v", suites)
	}
	if strings.Join(unknown, " ") != "RC4-SHA AES128-SHA" {
		t.Errorf("unknown %q", unknown)
	}
	// Every name maps to a suite Go offers as secure.
	secure := map[uint16]bool{}
	for _, cs := range tls.CipherSuites() {
		secure[cs.ID] = true
	}
	for name, id := range openSSLSuites {
		if !secure[id] {
			t.Errorf("%s maps to %s, not a secure Go suite", name, tls.CipherSuiteName(id))
		}
	}
}
