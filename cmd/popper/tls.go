package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/popperd/popper/compat"
	"github.com/popperd/popper/platform"
)

// loadTLS builds the TLS configuration from qpopper's tls-* options when
// TLS is asked for (tls-support STLS or alternate-port); nil when it is
// not. tls-options and tls-workarounds are OpenSSL switches with no
// counterpart in Go's TLS and have no effect.
func loadTLS(opts *compat.Options, log platform.Logger) (*tls.Config, error) {
	if opts.TLSSupport == "none" || opts.TLSSupport == "" {
		return nil, nil
	}
	cert, err := loadCertificate(opts)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	switch opts.TLSVersion {
	case "TLSv1", "SSLv23":
		// The site has clients that only speak TLS 1.0 or 1.1.
		cfg.MinVersion = tls.VersionTLS10
	case "SSLv2", "SSLv3":
		cfg.MinVersion = tls.VersionTLS10
		log.Notice(compat.TLSVersionRefused(opts.TLSVersion))
	}
	if opts.TLSCipherList != "" {
		suites, unknown := parseCipherList(opts.TLSCipherList)
		if len(unknown) > 0 {
			log.Notice(compat.UnknownCiphers(unknown))
		}
		if len(suites) > 0 {
			cfg.CipherSuites = suites
		}
	}
	return cfg, nil
}

// loadCertificate reads the certificate chain and key: tls-server-cert-file
// and tls-private-key-file (the key may be in the certificate file), or
// the one file tls-identity-file names. A key encrypted in the classic
// PEM way is decrypted with tls-passphrase.
func loadCertificate(opts *compat.Options) (tls.Certificate, error) {
	certFile, keyFile := opts.TLSServerCertFile, opts.TLSPrivateKeyFile
	if certFile == "" {
		certFile = opts.TLSIdentityFile
	}
	if keyFile == "" {
		keyFile = certFile
	}
	if certFile == "" {
		return tls.Certificate{}, errors.New("TLS certificate: tls-server-cert-file is not set")
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("TLS certificate: %v", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("TLS private key: %v", err)
	}
	keyPEM, err = decryptKey(keyPEM, opts.TLSPassphrase, keyFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("TLS certificate %s: %v", certFile, err)
	}
	return cert, nil
}

// decryptKey returns the PEM private key of data, decrypted when it is
// encrypted the classic OpenSSL way ("Proc-Type: 4,ENCRYPTED").
func decryptKey(data []byte, passphrase, name string) ([]byte, error) {
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return data, nil // tls.X509KeyPair says what is missing
		}
		switch {
		case block.Type == "ENCRYPTED PRIVATE KEY":
			return nil, fmt.Errorf("TLS private key %s: encrypted PKCS#8 keys are not supported; convert it with: openssl pkey -in %s -out NEWFILE", name, name)
		// x509's PEM decryption is deprecated as weak, but it is the
		// format qpopper sites' keys are in, and what tls-passphrase opens.
		case x509.IsEncryptedPEMBlock(block):
			if passphrase == "" {
				return nil, fmt.Errorf("TLS private key %s is encrypted and tls-passphrase is not set", name)
			}
			der, err := x509.DecryptPEMBlock(block, []byte(passphrase))
			if err != nil {
				return nil, fmt.Errorf("TLS private key %s: %v", name, err)
			}
			return pem.EncodeToMemory(&pem.Block{Type: block.Type, Bytes: der}), nil
		case strings.HasSuffix(block.Type, "PRIVATE KEY"):
			return pem.EncodeToMemory(block), nil
		}
	}
}

// openSSLSuites are OpenSSL's names of the TLS 1.2 suites Go counts as
// secure. RSA key exchange, CBC-SHA256, RC4 and 3DES suites are left out
// on purpose: a list naming them gets them reported, not enabled.
var openSSLSuites = map[string]uint16{
	"ECDHE-ECDSA-AES128-GCM-SHA256": tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	"ECDHE-ECDSA-AES256-GCM-SHA384": tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	"ECDHE-ECDSA-CHACHA20-POLY1305": tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	"ECDHE-ECDSA-AES128-SHA":        tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
	"ECDHE-ECDSA-AES256-SHA":        tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
	"ECDHE-RSA-AES128-GCM-SHA256":   tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	"ECDHE-RSA-AES256-GCM-SHA384":   tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	"ECDHE-RSA-CHACHA20-POLY1305":   tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	"ECDHE-RSA-AES128-SHA":          tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
	"ECDHE-RSA-AES256-SHA":          tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
}

// parseCipherList maps an OpenSSL cipher list ("HIGH:!aNULL:ECDHE-RSA-
// AES128-GCM-SHA256") to the Go suites it names, in its order. OpenSSL's
// keywords and its +, -, ! and @ operators select from OpenSSL's own
// tables; they are skipped, and when no suite is named Go's defaults
// stay. TLS 1.3 suites are not part of such a list, in OpenSSL or Go.
func parseCipherList(list string) (suites []uint16, unknown []string) {
	for _, tok := range strings.FieldsFunc(list, func(r rune) bool { return r == ':' || r == ',' || r == ' ' }) {
		if strings.ContainsAny(tok[:1], "!-+@") || !strings.Contains(tok, "-") {
			continue // an operator or a keyword such as HIGH or aNULL
		}
		if id, ok := openSSLSuites[tok]; ok {
			suites = append(suites, id)
			continue
		}
		unknown = append(unknown, tok)
	}
	return suites, unknown
}
