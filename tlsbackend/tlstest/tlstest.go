// Package tlstest makes certificates for tests of TLS code: a CA and leaf
// certificates signed by it (ECDSA P-256), as PEM ready for a
// tlsbackend.Config, and loopback TCP pairs to run TLS over. It is for
// tests only.
package tlstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/monolake-go/monolake/tlsbackend"
)

// CA is a certificate authority for tests.
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	key     *ecdsa.PrivateKey
}

// Leaf is a certificate signed by a CA.
type Leaf struct {
	Cert    *x509.Certificate
	CertPEM []byte // the leaf only
	KeyPEM  []byte
}

// Certificate is the leaf as a tlsbackend.Certificate.
func (l *Leaf) Certificate() tlsbackend.Certificate {
	return tlsbackend.Certificate{CertPEM: l.CertPEM, KeyPEM: l.KeyPEM}
}

var serial = big.NewInt(time.Now().UnixNano())

func nextSerial() *big.Int {
	serial = new(big.Int).Add(serial, big.NewInt(1))
	return serial
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// NewCA makes a self-signed CA valid from an hour ago for a year.
func NewCA(name string) (*CA, error) { return newCA(name, nil, 365*24*time.Hour) }

// Intermediate makes a CA signed by ca, valid from an hour ago for 180
// days. Its CertPEM goes after a leaf's in a server's chain.
func (ca *CA) Intermediate(name string) (*CA, error) { return newCA(name, ca, 180*24*time.Hour) }

// newCA makes a CA signed by parent, or self-signed when parent is nil.
func newCA(name string, parent *CA, validity time.Duration) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          nextSerial(),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	issuer, signer := tmpl, key
	if parent != nil {
		issuer, signer = parent.Cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, &key.PublicKey, signer)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, CertPEM: pemBlock("CERTIFICATE", der), key: key}, nil
}

// LeafOptions shape a leaf; the zero value is a server certificate valid
// now.
type LeafOptions struct {
	Expired bool // valid for a day, ending an hour ago
	// NotBefore, when set, is when the certificate becomes valid (for
	// 90 days).
	NotBefore time.Time
	Client    bool // client authentication instead of server
	// CommonNameOnly puts the first name in the subject's common name
	// only, with no subject alternative names: a legacy certificate,
	// which verifiers matching names from SANs alone refuse.
	CommonNameOnly bool
}

// Leaf makes a certificate for names (DNS names or IP addresses; the first
// is also the common name).
func (ca *CA) Leaf(opts LeafOptions, names ...string) (*Leaf, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: nextSerial(),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(90 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if opts.Client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	if !opts.NotBefore.IsZero() {
		tmpl.NotBefore, tmpl.NotAfter = opts.NotBefore, opts.NotBefore.Add(90*24*time.Hour)
	}
	if opts.Expired {
		tmpl.NotBefore = time.Now().Add(-25 * time.Hour)
		tmpl.NotAfter = time.Now().Add(-time.Hour)
	}
	if len(names) > 0 {
		tmpl.Subject.CommonName = names[0]
	}
	for _, n := range names {
		if opts.CommonNameOnly {
			break
		}
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	k8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &Leaf{Cert: cert, CertPEM: pemBlock("CERTIFICATE", der), KeyPEM: pemBlock("PRIVATE KEY", k8)}, nil
}

// WriteFile writes data to dir/name and returns the path.
func WriteFile(dir, name string, data []byte) (string, error) {
	p := filepath.Join(dir, name)
	return p, os.WriteFile(p, data, 0o600)
}

// TCPPair returns the two ends of a loopback TCP connection, closed at the
// end of the test.
func TCPPair(t testing.TB) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		client.Close()
		t.Fatal("accept failed")
	}
	t.Cleanup(func() {
		server.Close()
		client.Close()
	})
	return server, client
}

// StrictEnv, set by make test's cgo runs, makes Unavailable fail a test
// instead of skipping it: CI must run the tests that need OpenSSL and the
// real clients, not skip them.
const StrictEnv = "MONOLAKE_TEST_STRICT"

// Unavailable skips t for a facility this build or machine lacks (a
// backend, a client program), or fails it when StrictEnv is set.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv(StrictEnv) != "" {
		t.Fatalf(format+" (%s is set: this run must have it)", append(args, StrictEnv)...)
	}
	t.Skipf(format, args...)
}
