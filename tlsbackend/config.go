package tlsbackend

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
)

// TLS versions, with crypto/tls's values (also the wire values OpenSSL uses).
const (
	VersionTLS12 = tls.VersionTLS12
	VersionTLS13 = tls.VersionTLS13
)

// ClientAuthType is the server's policy for client certificates.
type ClientAuthType int

const (
	// NoClientCert: the server does not ask for a certificate.
	NoClientCert ClientAuthType = iota
	// VerifyClientCertIfGiven: the server asks; a certificate sent must
	// verify against ClientCAs, none at all is accepted.
	VerifyClientCertIfGiven
	// RequireAndVerifyClientCert: a certificate verifying against ClientCAs
	// is required.
	RequireAndVerifyClientCert
)

// Certificate is one certificate chain (leaf first) and its private key, in
// PEM, given inline or by file. Inline bytes win over the file name.
type Certificate struct {
	CertFile, KeyFile string
	CertPEM, KeyPEM   []byte
}

// Config is the backend-neutral TLS configuration. The zero value of every
// field is its default. A Config is read when a ServerConfig or ClientConfig
// is built from it and not after, so it may be reused or changed afterwards.
//
// Fields used only by servers and only by clients are marked so.
type Config struct {
	// Certificates: on a server, the chains offered, chosen per connection
	// by the SNI name the client sent: the first whose leaf certificate is
	// valid for the name (DNS SANs, wildcards) wins, and Certificates[0] is
	// the default when none matches or no name was sent. A server needs at
	// least one. On a client, Certificates[0] (if any) is presented when the
	// server asks for a client certificate (mTLS).
	Certificates []Certificate

	// NextProtos is the ALPN list, most preferred first. A server picks the
	// first of its own protocols the client offered; when the client offered
	// some and none match, the handshake fails ("no application protocol"),
	// except that a client offering http/1.1 to an h2 server gets no
	// protocol, as with crypto/tls. Never list a protocol the server does
	// not speak.
	NextProtos []string

	// MinVersion and MaxVersion bound the TLS version; 0 means TLS 1.2 and
	// TLS 1.3. Versions below TLS 1.2 are refused. TLS 1.3 is preferred
	// whenever both ends allow it.
	MinVersion, MaxVersion uint16

	// CipherSuites is the TLS 1.2 cipher policy in order of preference, as
	// crypto/tls suite IDs, from those listed by CipherSuites(); nil means
	// DefaultCipherSuites. TLS 1.3 suites are not configurable: both
	// backends offer AES-128-GCM, AES-256-GCM and ChaCha20-Poly1305 (the
	// OpenSSL backend in crypto/tls's order for AES hardware).
	CipherSuites []uint16

	// SessionTickets supplies the ticket keys of a server (current key
	// first, older ones still accepted), shared by every ServerConfig built
	// with it and followed as it rotates. Nil means the backend's own keys:
	// crypto/tls rotates them daily; OpenSSL keeps one random key per
	// ServerConfig.
	SessionTickets *TicketKeyRotator

	// SessionTicketsDisabled turns resumption off (server: no tickets
	// issued; client: no session cache).
	SessionTicketsDisabled bool

	// ClientAuth and the client CA pool (PEM, inline or file; both may be
	// given) are the server's client-certificate verification. Server only.
	ClientAuth   ClientAuthType
	ClientCAFile string
	ClientCAPEM  []byte

	// ServerName is the name a client sends as SNI and verifies the
	// server's certificate against, unless overridden per connection.
	// Client only.
	ServerName string

	// RootCAFile and RootCAPEM are the roots a client verifies servers
	// against; when both are empty the system roots are used. Client only.
	RootCAFile string
	RootCAPEM  []byte

	// InsecureSkipVerify makes a client accept any server certificate.
	// Callers should log a warning when they set it. Client only.
	InsecureSkipVerify bool

	// ClientSessionCacheSize bounds a client's session cache (entries, by
	// server name); 0 means 64. Client only.
	ClientSessionCacheSize int
}

// DefaultCipherSuites is the TLS 1.2 policy when Config.CipherSuites is nil:
// ECDHE key exchange with AEAD ciphers only, ECDSA first.
var DefaultCipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// cipherSuites maps the TLS 1.2 suites both backends implement to their
// OpenSSL names.
var cipherSuites = map[uint16]string{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256:       "ECDHE-ECDSA-AES128-GCM-SHA256",
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256:         "ECDHE-RSA-AES128-GCM-SHA256",
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384:       "ECDHE-ECDSA-AES256-GCM-SHA384",
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384:         "ECDHE-RSA-AES256-GCM-SHA384",
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: "ECDHE-ECDSA-CHACHA20-POLY1305",
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256:   "ECDHE-RSA-CHACHA20-POLY1305",
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA:          "ECDHE-ECDSA-AES128-SHA",
	tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA:            "ECDHE-RSA-AES128-SHA",
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA:          "ECDHE-ECDSA-AES256-SHA",
	tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA:            "ECDHE-RSA-AES256-SHA",
}

// CipherSuites lists the TLS 1.2 suite IDs a Config may name.
func CipherSuites() []uint16 {
	ids := make([]uint16, 0, len(cipherSuites))
	for id := range cipherSuites {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// CipherSuiteOpenSSLName is the OpenSSL name of a TLS 1.2 suite of
// CipherSuites().
func CipherSuiteOpenSSLName(id uint16) (string, bool) {
	n, ok := cipherSuites[id]
	return n, ok
}

// KeyPair is a loaded Certificate.
type KeyPair struct {
	Chain  [][]byte          // DER, leaf first
	Leaf   *x509.Certificate // parsed Chain[0]
	Key    crypto.PrivateKey // the leaf's key
	PKCS8  []byte            // Key as PKCS#8 DER
	TLSCrt tls.Certificate   // the same, for crypto/tls
}

// Loaded is a validated Config with its files read and PEM parsed: what
// backends build their contexts from.
type Loaded struct {
	Certs        []KeyPair
	MinVersion   uint16
	MaxVersion   uint16
	CipherSuites []uint16

	ClientCAs    *x509.CertPool // nil when none are configured
	ClientCAsDER [][]byte

	Roots    *x509.CertPool // nil: system roots
	RootsDER [][]byte
}

// Load validates c and reads and parses its certificates, keys and CA
// pools, for a server (server=true: a certificate is required) or a client.
// Errors name the file or field at fault.
func (c *Config) Load(server bool) (*Loaded, error) {
	l := &Loaded{MinVersion: c.MinVersion, MaxVersion: c.MaxVersion}
	if l.MinVersion == 0 {
		l.MinVersion = VersionTLS12
	}
	if l.MaxVersion == 0 {
		l.MaxVersion = VersionTLS13
	}
	if l.MinVersion < VersionTLS12 || l.MinVersion > VersionTLS13 ||
		l.MaxVersion < VersionTLS12 || l.MaxVersion > VersionTLS13 || l.MinVersion > l.MaxVersion {
		return nil, fmt.Errorf("tlsbackend: versions %#04x..%#04x: only TLS 1.2 and TLS 1.3 are supported", l.MinVersion, l.MaxVersion)
	}
	// Copies: a backend keeps the list for its handshakes, and the
	// Config (or DefaultCipherSuites) may change afterwards.
	l.CipherSuites = slices.Clone(c.CipherSuites)
	if c.CipherSuites == nil {
		l.CipherSuites = slices.Clone(DefaultCipherSuites)
	}
	for _, id := range l.CipherSuites {
		if _, ok := cipherSuites[id]; !ok {
			return nil, fmt.Errorf("tlsbackend: cipher suite %#04x (%s) is not supported", id, tls.CipherSuiteName(id))
		}
	}
	if len(l.CipherSuites) == 0 && l.MinVersion < VersionTLS13 {
		return nil, errors.New("tlsbackend: empty cipher suite list with TLS 1.2 allowed")
	}
	for _, p := range c.NextProtos {
		if len(p) == 0 || len(p) > 255 {
			return nil, fmt.Errorf("tlsbackend: ALPN protocol %q: length must be 1..255", p)
		}
	}
	for i, cert := range c.Certificates {
		kp, err := loadKeyPair(cert)
		if err != nil {
			return nil, fmt.Errorf("tlsbackend: certificate %d: %w", i, err)
		}
		l.Certs = append(l.Certs, kp)
	}
	if server {
		if len(l.Certs) == 0 {
			return nil, errors.New("tlsbackend: a server needs at least one certificate")
		}
		if c.ClientAuth != NoClientCert {
			var err error
			l.ClientCAs, l.ClientCAsDER, err = loadPool(c.ClientCAFile, c.ClientCAPEM)
			if err != nil {
				return nil, fmt.Errorf("tlsbackend: client CAs: %w", err)
			}
			if l.ClientCAs == nil {
				return nil, errors.New("tlsbackend: client certificate verification needs ClientCAFile or ClientCAPEM")
			}
		}
		return l, nil
	}
	var err error
	l.Roots, l.RootsDER, err = loadPool(c.RootCAFile, c.RootCAPEM)
	if err != nil {
		return nil, fmt.Errorf("tlsbackend: root CAs: %w", err)
	}
	return l, nil
}

func readPEM(file string, inline []byte) ([]byte, error) {
	if inline != nil || file == "" {
		return inline, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading %w", err)
	}
	return b, nil
}

func loadKeyPair(c Certificate) (KeyPair, error) {
	certPEM, err := readPEM(c.CertFile, c.CertPEM)
	if err != nil {
		return KeyPair{}, err
	}
	keyPEM, err := readPEM(c.KeyFile, c.KeyPEM)
	if err != nil {
		return KeyPair{}, err
	}
	tc, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return KeyPair{}, fmt.Errorf("%s: %w", nameOr(c.CertFile, "inline PEM"), err)
	}
	pk8, err := x509.MarshalPKCS8PrivateKey(tc.PrivateKey)
	if err != nil {
		return KeyPair{}, fmt.Errorf("%s: encoding key: %w", nameOr(c.KeyFile, "inline PEM"), err)
	}
	return KeyPair{Chain: tc.Certificate, Leaf: tc.Leaf, Key: tc.PrivateKey, PKCS8: pk8, TLSCrt: tc}, nil
}

func nameOr(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

// loadPool reads the certificates of a CA file and inline PEM; it returns
// a nil pool when both are empty.
func loadPool(file string, inline []byte) (*x509.CertPool, [][]byte, error) {
	var ders [][]byte
	for _, src := range []struct {
		name string
		read func() ([]byte, error)
	}{
		{file, func() ([]byte, error) { return readPEM(file, nil) }},
		{"inline PEM", func() ([]byte, error) { return inline, nil }},
	} {
		b, err := src.read()
		if err != nil {
			return nil, nil, err
		}
		if len(b) == 0 {
			continue
		}
		n := 0
		for len(b) > 0 {
			var blk *pem.Block
			blk, b = pem.Decode(b)
			if blk == nil {
				break
			}
			if blk.Type != "CERTIFICATE" {
				continue
			}
			if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
				return nil, nil, fmt.Errorf("%s: %w", src.name, err)
			}
			ders = append(ders, blk.Bytes)
			n++
		}
		if n == 0 {
			return nil, nil, fmt.Errorf("%s: no PEM certificate found", src.name)
		}
	}
	if len(ders) == 0 {
		return nil, nil, nil
	}
	pool := x509.NewCertPool()
	for _, d := range ders {
		crt, _ := x509.ParseCertificate(d)
		pool.AddCert(crt)
	}
	return pool, ders, nil
}

// SelectCertificate is the SNI rule both backends follow: the index of the
// first certificate whose leaf is valid for name, else 0 (the default).
func (l *Loaded) SelectCertificate(name string) int {
	if name == "" || len(l.Certs) < 2 {
		return 0
	}
	for i, kp := range l.Certs {
		if kp.Leaf.VerifyHostname(name) == nil {
			return i
		}
	}
	return 0
}
