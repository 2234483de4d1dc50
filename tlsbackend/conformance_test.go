package tlsbackend_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/monolake-go/monolake/tlsbackend"
	"github.com/monolake-go/monolake/tlsbackend/tlstest"
)

// pairCase is one handshake of the conformance table: a server config, a
// client config and what both ends must see. Every case runs for every
// server backend against every client backend.
type pairCase struct {
	name       string
	server     func(p *pki) *tlsbackend.Config // nil: p.serverConfig()
	client     func(p *pki) *tlsbackend.Config // nil: p.clientConfig()
	serverName string                          // per-conn override; "" keeps the config's
	// fail: the client's handshake or first round trip must fail, and so
	// must the server's handshake when serverFails.
	fail, serverFails bool
	errHas            string // a substring of the client's error (lower case)
	check             func(t *testing.T, p *pki, cli tlsbackend.ConnectionState, srv result)
}

func leafIs(t *testing.T, st tlsbackend.ConnectionState, want *tlstest.Leaf) {
	t.Helper()
	if len(st.PeerCertificates) == 0 {
		t.Fatal("no peer certificates")
	}
	if !st.PeerCertificates[0].Equal(want.Cert) {
		t.Errorf("peer leaf %v %v, want %v %v", st.PeerCertificates[0].Subject, st.PeerCertificates[0].DNSNames, want.Cert.Subject, want.Cert.DNSNames)
	}
}

func alpn(t *testing.T, cli tlsbackend.ConnectionState, srv result, want string) {
	t.Helper()
	if cli.NegotiatedProtocol != want || srv.st.NegotiatedProtocol != want {
		t.Errorf("ALPN: client %q, server %q, want %q", cli.NegotiatedProtocol, srv.st.NegotiatedProtocol, want)
	}
}

var pairCases = []pairCase{
	{
		name: "handshake/tls13",
		check: func(t *testing.T, p *pki, cli tlsbackend.ConnectionState, srv result) {
			if cli.Version != tls.VersionTLS13 || srv.st.Version != tls.VersionTLS13 {
				t.Errorf("version: client %#x, server %#x, want TLS 1.3", cli.Version, srv.st.Version)
			}
			if cli.CipherSuite == 0 || cli.CipherSuite != srv.st.CipherSuite {
				t.Errorf("cipher suite: client %#x, server %#x", cli.CipherSuite, srv.st.CipherSuite)
			}
			if srv.st.ServerName != "a.test" || cli.ServerName != "a.test" {
				t.Errorf("server name: server saw %q, client sent %q", srv.st.ServerName, cli.ServerName)
			}
			if cli.DidResume || srv.st.DidResume || !cli.HandshakeComplete || !srv.st.HandshakeComplete {
				t.Errorf("state: client %+v server %+v", cli, srv.st)
			}
			if len(srv.st.PeerCertificates) != 0 {
				t.Errorf("server got %d client certificates, want none", len(srv.st.PeerCertificates))
			}
			leafIs(t, cli, p.a)
		},
	},
	{
		name:   "handshake/tls12",
		client: func(p *pki) *tlsbackend.Config { c := p.clientConfig(); c.MaxVersion = tls.VersionTLS12; return c },
		check: func(t *testing.T, p *pki, cli tlsbackend.ConnectionState, srv result) {
			if cli.Version != tls.VersionTLS12 || srv.st.Version != tls.VersionTLS12 {
				t.Errorf("version: client %#x, server %#x, want TLS 1.2", cli.Version, srv.st.Version)
			}
			if !slices.Contains(tlsbackend.DefaultCipherSuites, cli.CipherSuite) || cli.CipherSuite != srv.st.CipherSuite {
				t.Errorf("cipher suite: client %s, server %s", tls.CipherSuiteName(cli.CipherSuite), tls.CipherSuiteName(srv.st.CipherSuite))
			}
			leafIs(t, cli, p.a)
		},
	},
	{
		name: "handshake/tls12-cipher-policy",
		server: func(p *pki) *tlsbackend.Config {
			c := p.serverConfig()
			c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}
			return c
		},
		client: func(p *pki) *tlsbackend.Config { c := p.clientConfig(); c.MaxVersion = tls.VersionTLS12; return c },
		check: func(t *testing.T, p *pki, cli tlsbackend.ConnectionState, srv result) {
			if want := tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256; cli.CipherSuite != want || srv.st.CipherSuite != want {
				t.Errorf("cipher suite: client %s, server %s, want %s", tls.CipherSuiteName(cli.CipherSuite), tls.CipherSuiteName(srv.st.CipherSuite), tls.CipherSuiteName(want))
			}
		},
	},
	{
		name:   "handshake/tls13-only-server-tls12-client",
		server: func(p *pki) *tlsbackend.Config { c := p.serverConfig(); c.MinVersion = tls.VersionTLS13; return c },
		client: func(p *pki) *tlsbackend.Config { c := p.clientConfig(); c.MaxVersion = tls.VersionTLS12; return c },
		fail:   true, serverFails: true,
	},
	{
		name: "alpn/server-preference",
		server: func(p *pki) *tlsbackend.Config {
			c := p.serverConfig()
			c.NextProtos = []string{"h2", "http/1.1"}
			return c
		},
		client: func(p *pki) *tlsbackend.Config {
			c := p.clientConfig()
			c.NextProtos = []string{"http/1.1", "h2"}
			return c
		},
		check: func(t *testing.T, p *pki, cli tlsbackend.ConnectionState, srv result) { alpn(t, cli, srv, "h2") },
	},
	{
		name: "alpn/single-overlap",
		server: func(p *pki) *tlsbackend.Config {
			c := p.serverConfig()
			c.NextProtos = []string{"h2", "http/1.1"}
			return c
		},
		client: func(p *pki) *tlsbackend.Config {
			c := p.clientConfig()
			c.NextProtos = []string{"x-foo", "http/1.1"}
			return c
		},
		check: func(t *testing.T, p *pki, cli tlsbackend.ConnectionState, srv result) { alpn(t, cli, srv, "http/1.1") },
	},
	{
		name: "alpn/no-overlap",
		server: func(p *pki) *tlsbackend.Config {
			c := p.serverConfig()
			c.NextProtos = []string{"h2", "http/1.1"}
			return c
		},
		client: func(p *pki) *tlsbackend.Config { c := p.clientConfig(); c.NextProtos = []string{"x-foo"}; return c },
		fail:   true, serverFails: true,
	},
	{
		name:   "alpn/http11-client-of-h2-server",
		server: func(p *pki) *tlsbackend.Config { c := p.serverConfig(); c.NextProtos = []string{"h2"}; return c },
		client: func(p *pki) *tlsbackend.Config { c := p.clientConfig(); c.NextProtos = []string{"http/1.1"}; return c },
		check:  func(t *testing.T, p *pki, cli tlsbackend.ConnectionState, srv result) { alpn(t, cli, srv, "") },
	},
	{
		name: "alpn/client-offers-none",
		server: func(p *pki) *tlsbackend.Config {
			c := p.serverConfig()
			c.NextProtos = []string{"h2", "http/1.1"}
			return c
		},
		check: func(t *testing.T, p *pki, cli tlsbackend.ConnectionState, srv result) { alpn(t, cli, srv, "") },
	},
	{
		name:   "alpn/server-has-none",
		client: func(p *pki) *tlsbackend.Config { c := p.clientConfig(); c.NextProtos = []string{"h2"}; return c },
		check:  func(t *testing.T, p *pki, cli tlsbackend.ConnectionState, srv result) { alpn(t, cli, srv, "") },
	},
	{
		name:       "sni/second-certificate",
		serverName: "b.test",
		check: func(t *testing.T, p *pki, cli tlsbackend.ConnectionState, srv result) {
			leafIs(t, cli, p.b)
			if srv.st.ServerName != "b.test" {
				t.Errorf("server saw SNI %q", srv.st.ServerName)
			}
		},
	},
	{
		name:       "sni/wildcard",
		serverName: "x.wild.test",
		check:      func(t *testing.T, p *pki, cli tlsbackend.ConnectionState, srv result) { leafIs(t, cli, p.b) },
	},
	{
		name:       "sni/unknown-name-gets-default",
		client:     func(p *pki) *tlsbackend.Config { c := p.clientConfig(); c.InsecureSkipVerify = true; return c },
		serverName: "unknown.test",
		check: func(t *testing.T, p *pki, cli tlsbackend.ConnectionState, srv result) {
			leafIs(t, cli, p.a)
			if srv.st.ServerName != "unknown.test" {
				t.Errorf("server saw SNI %q", srv.st.ServerName)
			}
		},
	},
	{
		name:       "sni/ip-no-sni-gets-default",
		serverName: "127.0.0.1",
		check:      defaultWithoutSNI,
	},
	{
		name:       "sni/ipv6-literal-in-brackets",
		serverName: "[::1]",
		check:      defaultWithoutSNI,
	},
	{
		name:       "bad/wrong-name",
		serverName: "wrong.test",
		fail:       true, serverFails: true,
	},
	{
		// As crypto/tls since Go 1.15: names come from SANs only.
		name: "bad/common-name-only",
		server: func(p *pki) *tlsbackend.Config {
			return &tlsbackend.Config{Certificates: []tlsbackend.Certificate{p.cnOnly.Certificate()}}
		},
		fail: true, serverFails: true,
	},
	{
		name: "bad/untrusted-ca",
		server: func(p *pki) *tlsbackend.Config {
			return &tlsbackend.Config{Certificates: []tlsbackend.Certificate{p.untrusted.Certificate()}}
		},
		fail: true, serverFails: true,
	},
	{
		name: "bad/expired",
		server: func(p *pki) *tlsbackend.Config {
			return &tlsbackend.Config{Certificates: []tlsbackend.Certificate{p.expired.Certificate()}}
		},
		serverName: "expired.test",
		fail:       true, serverFails: true,
		errHas: "expired",
	},
	{
		name:   "bad/system-roots-refuse-test-ca",
		client: func(p *pki) *tlsbackend.Config { return &tlsbackend.Config{ServerName: "a.test"} },
		fail:   true, serverFails: true,
	},
	{
		name: "bad/insecure-skip-verify-accepts-untrusted",
		server: func(p *pki) *tlsbackend.Config {
			return &tlsbackend.Config{Certificates: []tlsbackend.Certificate{p.untrusted.Certificate()}}
		},
		client: func(p *pki) *tlsbackend.Config { c := p.clientConfig(); c.InsecureSkipVerify = true; return c },
		check:  func(t *testing.T, p *pki, cli tlsbackend.ConnectionState, srv result) { leafIs(t, cli, p.untrusted) },
	},
	{
		name:   "mtls/verified",
		server: mtlsServer(tlsbackend.RequireAndVerifyClientCert),
		client: func(p *pki) *tlsbackend.Config {
			c := p.clientConfig()
			c.Certificates = []tlsbackend.Certificate{p.client.Certificate()}
			return c
		},
		check: func(t *testing.T, p *pki, cli tlsbackend.ConnectionState, srv result) { leafIs(t, srv.st, p.client) },
	},
	{
		name:   "mtls/missing",
		server: mtlsServer(tlsbackend.RequireAndVerifyClientCert),
		fail:   true, serverFails: true,
	},
	{
		name:   "mtls/untrusted",
		server: mtlsServer(tlsbackend.RequireAndVerifyClientCert),
		client: func(p *pki) *tlsbackend.Config {
			c := p.clientConfig()
			c.Certificates = []tlsbackend.Certificate{p.bad.Certificate()}
			return c
		},
		fail: true, serverFails: true,
	},
	{
		name:   "mtls/optional-none-given",
		server: mtlsServer(tlsbackend.VerifyClientCertIfGiven),
		check: func(t *testing.T, p *pki, cli tlsbackend.ConnectionState, srv result) {
			if len(srv.st.PeerCertificates) != 0 {
				t.Errorf("server got %d client certificates", len(srv.st.PeerCertificates))
			}
		},
	},
}

// defaultWithoutSNI checks a connection to an IP address: no SNI sent (RFC
// 6066 forbids a literal), so the server's default certificate.
func defaultWithoutSNI(t *testing.T, p *pki, cli tlsbackend.ConnectionState, srv result) {
	leafIs(t, cli, p.a)
	if srv.st.ServerName != "" {
		t.Errorf("server saw SNI %q for an IP address", srv.st.ServerName)
	}
}

func mtlsServer(auth tlsbackend.ClientAuthType) func(p *pki) *tlsbackend.Config {
	return func(p *pki) *tlsbackend.Config {
		c := p.serverConfig()
		c.ClientAuth = auth
		c.ClientCAPEM = p.ca.CertPEM
		return c
	}
}

// TestConformance runs the table for every server/client pair of backends.
func TestConformance(t *testing.T) {
	p := testPKI(t)
	for _, tc := range pairCases {
		t.Run(tc.name, func(t *testing.T) {
			forPairs(t, func(t *testing.T, sb, cb tlsbackend.Backend) {
				scfg, ccfg := p.serverConfig(), p.clientConfig()
				if tc.server != nil {
					scfg = tc.server(p)
				}
				if tc.client != nil {
					ccfg = tc.client(p)
				}
				srv := startServer(t, sb, scfg, echo)
				c, err := dial(t, newClient(t, cb, ccfg), srv.addr, tc.serverName)
				if err == nil {
					// TLS 1.3 clients finish before the server has checked
					// their certificate: the refusal shows on the first read.
					err = roundTrip(c, "ping")
				}
				r := srv.result(t)
				if tc.fail {
					if err == nil {
						t.Fatalf("client succeeded, want failure (server: %v)", r.err)
					}
					if tc.serverFails && r.err == nil {
						t.Errorf("server handshake succeeded, want failure (client: %v)", err)
					}
					if tc.errHas != "" && !strings.Contains(strings.ToLower(err.Error()), tc.errHas) {
						t.Errorf("client error %q does not mention %q", err, tc.errHas)
					}
					t.Logf("client: %v; server: %v", err, r.err)
					return
				}
				if err != nil || r.err != nil {
					t.Fatalf("client: %v; server: %v", err, r.err)
				}
				if tc.check != nil {
					tc.check(t, p, c.ConnectionState(), r)
				}
			})
		})
	}
}

// TestResumption: a second connection from the same ClientConfig resumes
// by ticket; a rotation keeps old tickets valid while their key is kept,
// and once it is dropped they no longer resume.
func TestResumption(t *testing.T) {
	p := testPKI(t)
	for _, v := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		t.Run(map[uint16]string{tls.VersionTLS13: "tls13", tls.VersionTLS12: "tls12"}[v], func(t *testing.T) {
			forPairs(t, func(t *testing.T, sb, cb tlsbackend.Backend) {
				rot := tlsbackend.NewTicketKeyRotator(2)
				scfg := p.serverConfig()
				scfg.SessionTickets = rot
				srv := startServer(t, sb, scfg, echo)
				ccfg := p.clientConfig()
				ccfg.MaxVersion = v
				cc := newClient(t, cb, ccfg)
				conn := func(wantResume bool) {
					t.Helper()
					c, err := dial(t, cc, srv.addr, "")
					if err == nil {
						err = roundTrip(c, "ticket please") // a TLS 1.3 ticket arrives after the handshake
					}
					r := srv.result(t)
					if err != nil || r.err != nil {
						t.Fatalf("client: %v; server: %v", err, r.err)
					}
					st := c.ConnectionState()
					if st.Version != v {
						t.Errorf("version %#x, want %#x", st.Version, v)
					}
					if st.DidResume != wantResume || r.st.DidResume != wantResume {
						t.Errorf("resumed: client %v, server %v; want %v", st.DidResume, r.st.DidResume, wantResume)
					}
					if wantResume {
						leafIs(t, st, p.a) // the chain survives resumption
					}
					c.Close()
				}
				conn(false)
				conn(true)
				rot.Rotate() // the ticket's key is now the older one, still kept
				conn(true)
				rot.Rotate()
				rot.Rotate() // every key the client's ticket may use is gone
				conn(false)
				conn(true)
			})
		})
	}
}

// TestSharedTicketKeys: servers that hold no state in common but copies of
// one ticket ratchet (as worker processes do) resume each other's sessions
// while the issuing period's key is kept: from one period behind (a server
// whose clock has not turned yet) to two periods ahead; then, and with
// another ratchet, they do not.
func TestSharedTicketKeys(t *testing.T) {
	p := testPKI(t)
	const period, older = time.Hour, 2
	base := tlsbackend.NewTicketRatchet(period, older)
	t0 := time.Unix(0, base.Index*int64(period)).Add(period / 2)
	// at returns a copy of r advanced n periods past t0's.
	at := func(r *tlsbackend.TicketRatchet, n int) *tlsbackend.TicketRatchet {
		c := r.Clone()
		c.Advance(t0.Add(time.Duration(n) * period))
		return c
	}
	cases := []struct {
		name           string
		issuer, peer   int // periods past t0's
		other, resumes bool
	}{
		{"same-period", 2, 2, false, true},
		{"one-behind", 3, 2, false, true},
		{"one-ahead", 2, 3, false, true},
		{"oldest-kept", 2, 2 + older, false, true},
		{"expired", 2, 3 + older, false, false},
		{"two-behind", 4, 2, false, false},
		{"other-ratchet", 2, 2, true, false},
	}
	forPairs(t, func(t *testing.T, sb, cb tlsbackend.Backend) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				issuerCfg := p.serverConfig()
				issuerCfg.SessionTickets = tlsbackend.NewRatchetTicketKeyRotator(at(base, tc.issuer), "s")
				issuer := startServer(t, sb, issuerCfg, echo)
				pr := base
				if tc.other {
					pr = tlsbackend.NewTicketRatchet(period, older)
					pr.Index = base.Index
				}
				peerCfg := p.serverConfig()
				peerCfg.SessionTickets = tlsbackend.NewRatchetTicketKeyRotator(at(pr, tc.peer), "s")
				peer := startServer(t, sb, peerCfg, echo)
				cc := newClient(t, cb, p.clientConfig()) // an empty session cache
				for i, srv := range []*server{issuer, peer} {
					c, err := dial(t, cc, srv.addr, "")
					if err == nil {
						err = roundTrip(c, "ticket please")
					}
					r := srv.result(t)
					if err != nil || r.err != nil {
						t.Fatalf("client: %v; server: %v", err, r.err)
					}
					want := i == 1 && tc.resumes
					if st := c.ConnectionState(); st.DidResume != want || r.st.DidResume != want {
						t.Errorf("connection %d resumed: client %v, server %v; want %v", i, st.DidResume, r.st.DidResume, want)
					}
					c.Close()
				}
			})
		}
	})
}

// TestTicketKeepsClientAuth: a ticket from a server that asks for no
// client certificate does not let a client without one into a server that
// requires one, though both share the ticket keys: the second refuses the
// connection (crypto/tls checks the session; OpenSSL checks the session ID
// context, which names the client-certificate policy).
func TestTicketKeepsClientAuth(t *testing.T) {
	p := testPKI(t)
	for _, v := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		t.Run(tls.VersionName(v), func(t *testing.T) {
			forPairs(t, func(t *testing.T, sb, cb tlsbackend.Backend) {
				rot := tlsbackend.NewTicketKeyRotator(2)
				openCfg := p.serverConfig()
				openCfg.SessionTickets = rot
				open := startServer(t, sb, openCfg, echo)
				mtlsCfg := mtlsServer(tlsbackend.RequireAndVerifyClientCert)(p)
				mtlsCfg.SessionTickets = rot
				mtls := startServer(t, sb, mtlsCfg, echo)
				ccfg := p.clientConfig() // no client certificate
				ccfg.MaxVersion = v
				cc := newClient(t, cb, ccfg)

				c, err := dial(t, cc, open.addr, "")
				if err == nil {
					err = roundTrip(c, "ticket please")
				}
				if r := open.result(t); err != nil || r.err != nil {
					t.Fatalf("server without client auth: client %v, server %v", err, r.err)
				}
				c.Close()

				c, err = dial(t, cc, mtls.addr, "")
				if err == nil {
					err = roundTrip(c, "let me in")
					c.Close()
				}
				if r := mtls.result(t); err == nil && r.err == nil {
					t.Fatalf("a client without a certificate got in (resumed: %v, peer certificates: %d)", r.st.DidResume, len(r.st.PeerCertificates))
				}
			})
		})
	}
}

// TestResumptionDisabled: no tickets, no resumption.
func TestResumptionDisabled(t *testing.T) {
	p := testPKI(t)
	forPairs(t, func(t *testing.T, sb, cb tlsbackend.Backend) {
		scfg := p.serverConfig()
		scfg.SessionTicketsDisabled = true
		srv := startServer(t, sb, scfg, echo)
		cc := newClient(t, cb, p.clientConfig())
		for range 2 {
			c, err := dial(t, cc, srv.addr, "")
			if err == nil {
				err = roundTrip(c, "x")
			}
			r := srv.result(t)
			if err != nil || r.err != nil {
				t.Fatalf("client: %v; server: %v", err, r.err)
			}
			if c.ConnectionState().DidResume || r.st.DidResume {
				t.Error("resumed with tickets disabled")
			}
			c.Close()
		}
	})
}

// TestCloseNotify: after the peer's Close, Read returns the data sent
// before it, then io.EOF caused by close_notify (the socket's own EOF is
// turned into an error underneath, so io.EOF cannot come from it). Both
// directions, and CloseWrite as a half-close.
func TestCloseNotify(t *testing.T) {
	p := testPKI(t)
	forPairs(t, func(t *testing.T, sb, cb tlsbackend.Backend) {
		t.Run("server-closes", func(t *testing.T) {
			srv := startServer(t, sb, p.serverConfig(), func(c tlsbackend.Conn) {
				io.WriteString(c, "bye")
				if err := c.Close(); err != nil {
					t.Errorf("server Close: %v", err)
				}
			})
			nc, err := net.Dial("tcp", srv.addr)
			if err != nil {
				t.Fatal(err)
			}
			c := newClient(t, cb, p.clientConfig()).Client(noEOF{nc}, "")
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			b, err := io.ReadAll(c)
			if string(b) != "bye" || err != nil {
				t.Fatalf("ReadAll = %q, %v; want \"bye\", nil (io.EOF)", b, err)
			}
			if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
				t.Errorf("Read after EOF = %d, %v; want 0, io.EOF", n, err)
			}
		})
		t.Run("client-closes", func(t *testing.T) {
			got := make(chan error, 1)
			sc, err := sb.NewServerConfig(p.serverConfig())
			if err != nil {
				t.Fatal(err)
			}
			defer sc.Close()
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				nc, err := ln.Accept()
				if err != nil {
					got <- err
					return
				}
				c := sc.Server(noEOF{nc})
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				b, err := io.ReadAll(c)
				if err == nil && string(b) != "hello" {
					err = errors.New("got " + string(b))
				}
				got <- err
			}()
			c, err := dial(t, newClient(t, cb, p.clientConfig()), ln.Addr().String(), "")
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(c, "hello")
			if err := c.Close(); err != nil {
				t.Errorf("client Close: %v", err)
			}
			if err := <-got; err != nil {
				t.Errorf("server read: %v; want the data then io.EOF", err)
			}
		})
		t.Run("after-fatal-error", func(t *testing.T) {
			// A record that does not decrypt ends the conn with a fatal
			// alert; Close then has no close_notify to send and must not
			// report one as failed (OpenSSL refuses SSL_shutdown there).
			got := make(chan [2]error, 1)
			srv := startServer(t, sb, p.serverConfig(), func(c tlsbackend.Conn) {
				_, rerr := c.Read(make([]byte, 16))
				got <- [2]error{rerr, c.Close()}
			})
			nc, err := net.Dial("tcp", srv.addr)
			if err != nil {
				t.Fatal(err)
			}
			c := newClient(t, cb, p.clientConfig()).Client(nc, "")
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := c.Handshake(ctx); err != nil {
				t.Fatal(err)
			}
			// An application-data record of 32 bytes that is not ciphertext.
			bogus := append([]byte{23, 3, 3, 0, 32}, bytes.Repeat([]byte{0x5a}, 32)...)
			if _, err := nc.Write(bogus); err != nil {
				t.Fatal(err)
			}
			select {
			case errs := <-got:
				if errs[0] == nil {
					t.Error("server Read of a bogus record succeeded")
				}
				if errs[1] != nil {
					t.Errorf("server Close after the fatal error: %v; want nil", errs[1])
				}
			case <-time.After(5 * time.Second):
				t.Fatal("server did not finish")
			}
		})
		t.Run("close-write", func(t *testing.T) {
			srv := startServer(t, sb, p.serverConfig(), func(c tlsbackend.Conn) {
				b, err := io.ReadAll(c) // until the client's close_notify
				if err != nil {
					return
				}
				c.Write(bytes.ToUpper(b))
			})
			c, err := dial(t, newClient(t, cb, p.clientConfig()), srv.addr, "")
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(c, "half")
			if err := c.CloseWrite(); err != nil {
				t.Fatalf("CloseWrite: %v", err)
			}
			if _, err := c.Write([]byte("x")); err == nil {
				t.Error("Write after CloseWrite succeeded")
			}
			b, err := io.ReadAll(c)
			if string(b) != "HALF" || err != nil {
				t.Errorf("ReadAll after CloseWrite = %q, %v", b, err)
			}
		})
	})
}

// TestBulk moves 1 MiB (plus an odd tail) both ways at once through an
// echo server, in writes of assorted sizes: the record path across chunk
// and record boundaries, with one goroutine reading while another writes.
func TestBulk(t *testing.T) {
	p := testPKI(t)
	forPairs(t, func(t *testing.T, sb, cb tlsbackend.Backend) {
		srv := startServer(t, sb, p.serverConfig(), echo)
		c, err := dial(t, newClient(t, cb, p.clientConfig()), srv.addr, "")
		if err != nil {
			t.Fatal(err)
		}
		data := make([]byte, 1<<20+4099)
		rand.Read(data)
		werr := make(chan error, 1)
		go func() {
			rest := data
			for i := 0; len(rest) > 0; i++ {
				n := min(len(rest), []int{1, 100, 16384, 16385, 70000, 200000}[i%6])
				if _, err := c.Write(rest[:n]); err != nil {
					werr <- err
					return
				}
				rest = rest[n:]
			}
			werr <- nil
		}()
		got := make([]byte, len(data))
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatalf("reading echo: %v", err)
		}
		if err := <-werr; err != nil {
			t.Fatalf("writing: %v", err)
		}
		if !bytes.Equal(got, data) {
			t.Fatal("echoed data differs")
		}
	})
}

// TestHandshakeDeadline: a peer that never speaks makes Handshake return
// an error wrapping context.DeadlineExceeded when the context's deadline
// passes, on either side.
func TestHandshakeDeadline(t *testing.T) {
	p := testPKI(t)
	forBackends(t, func(t *testing.T, b tlsbackend.Backend) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		silent := make(chan net.Conn, 1)
		go func() {
			nc, err := ln.Accept()
			if err == nil {
				silent <- nc
			}
		}()
		check := func(t *testing.T, c tlsbackend.Conn) {
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			start := time.Now()
			err := c.Handshake(ctx)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Handshake = %v; want an error wrapping context.DeadlineExceeded", err)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("Handshake returned after %v", d)
			}
			if err2 := c.Handshake(context.Background()); err2 == nil {
				t.Error("second Handshake succeeded after a failed one")
			}
		}
		t.Run("server", func(t *testing.T) {
			sc, err := b.NewServerConfig(p.serverConfig())
			if err != nil {
				t.Fatal(err)
			}
			defer sc.Close()
			quiet, err := net.Dial("tcp", ln.Addr().String()) // connects, never sends a ClientHello
			if err != nil {
				t.Fatal(err)
			}
			defer quiet.Close()
			check(t, sc.Server(<-silent))
		})
		// dialSilent connects to a peer that accepts and never answers,
		// closed at the end of t.
		dialSilent := func(t *testing.T) net.Conn {
			go func() {
				nc, err := ln.Accept()
				if err == nil {
					silent <- nc
				}
			}()
			nc, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				select {
				case s := <-silent:
					s.Close()
				case <-time.After(time.Second):
				}
			})
			return nc
		}
		t.Run("client", func(t *testing.T) {
			check(t, newClient(t, b, p.clientConfig()).Client(dialSilent(t), ""))
		})
		// A handshake already under way, started by a Read with no
		// deadline: Handshake's context still ends the wait for it.
		t.Run("under-way", func(t *testing.T) {
			nc := dialSilent(t)
			c := newClient(t, b, p.clientConfig()).Client(nc, "")
			defer c.Close()
			read := make(chan struct{})
			go func() {
				defer close(read)
				c.Read(make([]byte, 1))
			}()
			time.Sleep(50 * time.Millisecond) // the Read holds the handshake
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			hs := make(chan error, 1)
			go func() { hs <- c.Handshake(ctx) }()
			select {
			case err := <-hs:
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("Handshake = %v; want an error wrapping context.DeadlineExceeded", err)
				}
			case <-time.After(3 * time.Second):
				nc.Close() // end the Read's handshake, and with it the wait
				t.Error("Handshake waited on past its context for the handshake under way")
			}
			<-read
		})
	})
}

// TestServerNameNUL: a server name with a NUL byte in it is refused, not
// cut at the NUL and verified as the shorter name.
func TestServerNameNUL(t *testing.T) {
	p := testPKI(t)
	forPairs(t, func(t *testing.T, sb, cb tlsbackend.Backend) {
		srv := startServer(t, sb, p.serverConfig(), echo)
		ccfg := p.clientConfig()
		ccfg.ServerName = ""
		c, err := dial(t, newClient(t, cb, ccfg), srv.addr, "a.test\x00.evil")
		if err == nil {
			err = roundTrip(c, "ping")
		}
		c.Close() // the openssl client fails before it sends anything
		srv.result(t)
		if err == nil {
			t.Fatal("handshake with the server name \"a.test\\x00.evil\" succeeded")
		}
	})
}

// TestConfigErrors: configs both backends must refuse when built.
func TestConfigErrors(t *testing.T) {
	p := testPKI(t)
	forBackends(t, func(t *testing.T, b tlsbackend.Backend) {
		for _, tc := range []struct {
			name   string
			server bool
			cfg    *tlsbackend.Config
		}{
			{"server-without-certificate", true, &tlsbackend.Config{}},
			{"tls11", true, &tlsbackend.Config{Certificates: p.serverConfig().Certificates, MinVersion: tls.VersionTLS11}},
			{"unknown-cipher", true, &tlsbackend.Config{Certificates: p.serverConfig().Certificates, CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_128_CBC_SHA}}},
			{"key-mismatch", true, &tlsbackend.Config{Certificates: []tlsbackend.Certificate{{CertPEM: p.a.CertPEM, KeyPEM: p.b.KeyPEM}}}},
			{"missing-file", true, &tlsbackend.Config{Certificates: []tlsbackend.Certificate{{CertFile: "/nonexistent.pem", KeyFile: "/nonexistent.key"}}}},
			{"client-auth-without-cas", true, &tlsbackend.Config{Certificates: p.serverConfig().Certificates, ClientAuth: tlsbackend.RequireAndVerifyClientCert}},
			{"bad-root-pem", false, &tlsbackend.Config{RootCAPEM: []byte("not pem")}},
			{"empty-alpn", false, &tlsbackend.Config{NextProtos: []string{""}}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var err error
				if tc.server {
					_, err = b.NewServerConfig(tc.cfg)
				} else {
					_, err = b.NewClientConfig(tc.cfg)
				}
				if err == nil {
					t.Fatal("accepted")
				}
				t.Log(err)
			})
		}
		t.Run("client-without-server-name", func(t *testing.T) {
			srv := startServer(t, b, p.serverConfig(), echo)
			if _, err := dial(t, newClient(t, b, &tlsbackend.Config{RootCAPEM: p.ca.CertPEM}), srv.addr, ""); err == nil {
				t.Fatal("a verifying client without a server name completed a handshake")
			}
		})
	})
}

// TestCertificateFiles: certificates and CAs given as files.
func TestCertificateFiles(t *testing.T) {
	p := testPKI(t)
	dir := t.TempDir()
	must := func(path string, err error) string {
		if err != nil {
			t.Fatal(err)
		}
		return path
	}
	crt := must(tlstest.WriteFile(dir, "a.crt", p.a.CertPEM))
	key := must(tlstest.WriteFile(dir, "a.key", p.a.KeyPEM))
	ca := must(tlstest.WriteFile(dir, "ca.crt", p.ca.CertPEM))
	forPairs(t, func(t *testing.T, sb, cb tlsbackend.Backend) {
		srv := startServer(t, sb, &tlsbackend.Config{Certificates: []tlsbackend.Certificate{{CertFile: crt, KeyFile: key}}}, echo)
		c, err := dial(t, newClient(t, cb, &tlsbackend.Config{RootCAFile: ca, ServerName: "localhost"}), srv.addr, "")
		if err == nil {
			err = roundTrip(c, "files")
		}
		if r := srv.result(t); err != nil || r.err != nil {
			t.Fatalf("client: %v; server: %v", err, r.err)
		}
	})
}

// TestRegistry: Names lists the compiled-in backends with versions; Get of
// a backend left out of the build says so and wraps errors.ErrUnsupported.
func TestRegistry(t *testing.T) {
	names := tlsbackend.Names()
	if len(names) == 0 || !strings.HasPrefix(names[0], "gotls (crypto/tls, go") {
		t.Errorf("Names() = %q", names)
	}
	t.Logf("backends: %s", strings.Join(names, ", "))
	if _, err := tlsbackend.Get("nonesuch"); !errors.Is(err, tlsbackend.ErrUnknownBackend) {
		t.Errorf("Get(nonesuch) = %v", err)
	}
	_, err := tlsbackend.Get("openssl")
	if err == nil {
		if len(names) != 2 || !strings.HasPrefix(names[1], "openssl (OpenSSL ") {
			t.Errorf("openssl built in but Names() = %q", names)
		}
		return
	}
	want := `tlsbackend: backend "openssl" is not in this build (built without cgo/openssl tag); available: gotls`
	if err.Error() != want || !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Get(openssl) = %q (ErrUnsupported: %v); want %q", err, errors.Is(err, errors.ErrUnsupported), want)
	}
}

// TestCloseUnblocks: Close from another goroutine ends a Read waiting for
// data and a Write stuck on a peer that does not read, without deadlock,
// and later calls fail cleanly.
func TestCloseUnblocks(t *testing.T) {
	p := testPKI(t)
	forPairs(t, func(t *testing.T, sb, cb tlsbackend.Backend) {
		hold := make(chan struct{})
		defer close(hold)
		srv := startServer(t, sb, p.serverConfig(), func(c tlsbackend.Conn) { <-hold }) // never reads or writes
		// "write 32k": a Write whose records gotls gathers and sends after
		// *tls.Conn's Write returned; Close must not wait for it.
		for _, op := range []string{"read", "write", "write 32k"} {
			t.Run(op, func(t *testing.T) {
				c, err := dial(t, newClient(t, cb, p.clientConfig()), srv.addr, "")
				if err != nil {
					t.Fatal(err)
				}
				srv.result(t)
				done := make(chan error, 1)
				go func() {
					if op == "read" {
						_, err := c.Read(make([]byte, 10))
						done <- err
						return
					}
					big := make([]byte, 1<<20)
					if op == "write 32k" {
						big = big[:32<<10]
					}
					for {
						if _, err := c.Write(big); err != nil {
							done <- err
							return
						}
					}
				}()
				time.Sleep(100 * time.Millisecond)
				start := time.Now()
				c.Close()
				if d := time.Since(start); d > 3*time.Second {
					t.Errorf("Close took %v", d)
				}
				select {
				case err := <-done:
					if err == nil {
						t.Error("blocked call returned no error after Close")
					}
				case <-time.After(5 * time.Second):
					t.Fatal("Close did not unblock the " + op)
				}
				if _, err := c.Write([]byte("x")); err == nil {
					t.Error("Write after Close succeeded")
				}
				if _, err := c.Read(make([]byte, 1)); err == nil {
					t.Error("Read after Close succeeded")
				}
				if err := c.Close(); err == nil {
					t.Error("second Close returned nil")
				}
			})
		}
	})
}

// TestIntermediateChain: a server sends the chain it is configured with,
// leaf first, and nothing else: with its intermediate a client that trusts
// only the root verifies it and sees both certificates; with the leaf
// alone the same client refuses it (neither backend completes a chain
// from anything else); a client that trusts the intermediate alone
// verifies the full chain.
func TestIntermediateChain(t *testing.T) {
	p := testPKI(t)
	inter, err := p.ca.Intermediate("Monolake Test Intermediate")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := inter.Leaf(tlstest.LeafOptions{}, "chain.test")
	if err != nil {
		t.Fatal(err)
	}
	full := append(append([]byte(nil), leaf.CertPEM...), inter.CertPEM...)
	for _, tc := range []struct {
		name        string
		chain, root []byte
		ok          bool
	}{
		{"leaf+intermediate", full, p.ca.CertPEM, true},
		{"leaf-only", leaf.CertPEM, p.ca.CertPEM, false},
		// Every configured CA is a trust anchor, as in a crypto/x509
		// pool: trusting the intermediate alone is enough.
		{"intermediate-trusted", full, inter.CertPEM, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forPairs(t, func(t *testing.T, sb, cb tlsbackend.Backend) {
				scfg := &tlsbackend.Config{Certificates: []tlsbackend.Certificate{{CertPEM: tc.chain, KeyPEM: leaf.KeyPEM}}}
				ccfg := &tlsbackend.Config{RootCAPEM: tc.root, ServerName: "chain.test"}
				srv := startServer(t, sb, scfg, echo)
				c, err := dial(t, newClient(t, cb, ccfg), srv.addr, "")
				if err == nil {
					err = roundTrip(c, "ping")
				}
				srv.result(t)
				if !tc.ok {
					if err == nil {
						t.Fatal("client verified a leaf sent without its intermediate")
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				certs := c.ConnectionState().PeerCertificates
				if len(certs) != 2 || !certs[0].Equal(leaf.Cert) || !certs[1].Equal(inter.Cert) {
					t.Fatalf("peer chain has %d certificates, want the leaf and the intermediate", len(certs))
				}
			})
		})
	}
}

// TestFirstWriteHandshakes: a Write as the first call on a conn runs the
// handshake, for every size (gotls gathers the records of Writes of 1 to
// 64 KiB, and the handshake must not be held with them).
func TestFirstWriteHandshakes(t *testing.T) {
	p := testPKI(t)
	forPairs(t, func(t *testing.T, sb, cb tlsbackend.Backend) {
		for _, size := range []int{100, 20 << 10, 100 << 10} {
			sc, err := sb.NewServerConfig(p.serverConfig())
			if err != nil {
				t.Fatal(err)
			}
			defer sc.Close()
			srv, cli := tlstest.TCPPair(t)
			tc, ts := newClient(t, cb, p.clientConfig()).Client(cli, ""), sc.Server(srv)
			defer tc.Close()
			defer ts.Close()
			tc.SetDeadline(time.Now().Add(5 * time.Second))
			ts.SetDeadline(time.Now().Add(5 * time.Second))
			data := make([]byte, size)
			rand.Read(data)
			// Both sides write first: each Write must get the
			// handshake through before its records.
			errs := make(chan error, 2)
			for _, w := range []tlsbackend.Conn{tc, ts} {
				go func() { _, err := w.Write(data); errs <- err }()
			}
			for _, r := range []tlsbackend.Conn{ts, tc} {
				got := make([]byte, size)
				if _, err := io.ReadFull(r, got); err != nil || !bytes.Equal(got, data) {
					t.Fatalf("Write(%d) as the first call: read %v, equal %v", size, err, bytes.Equal(got, data))
				}
			}
			for range 2 {
				if err := <-errs; err != nil {
					t.Fatalf("Write(%d) as the first call: %v", size, err)
				}
			}
		}
	})
}

// countWrites counts the writes on a conn under TLS.
type countWrites struct {
	net.Conn
	mu     sync.Mutex
	writes int
}

func (c *countWrites) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes++
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *countWrites) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes
}

// TestWriteGathered: one Write of up to 64 KiB reaches the connection
// under TLS as one write, on both sides of every pairing, although it
// takes several records (16 KiB each at most, smaller early in a
// connection with crypto/tls): one send and one TCP segment, not one per
// record. NetConn is still the conn the TLS conn was made on.
func TestWriteGathered(t *testing.T) {
	p := testPKI(t)
	forPairs(t, func(t *testing.T, sb, cb tlsbackend.Backend) {
		sc, err := sb.NewServerConfig(p.serverConfig())
		if err != nil {
			t.Fatal(err)
		}
		defer sc.Close()
		cc := newClient(t, cb, p.clientConfig())
		rawSrv, rawCli := tlstest.TCPPair(t)
		cw, sw := &countWrites{Conn: rawCli}, &countWrites{Conn: rawSrv}
		cli, srv := cc.Client(cw, ""), sc.Server(sw)
		defer cli.Close()
		defer srv.Close()
		cli.SetDeadline(time.Now().Add(10 * time.Second))
		srv.SetDeadline(time.Now().Add(10 * time.Second))
		if cli.NetConn() != cw || srv.NetConn() != sw {
			t.Fatalf("NetConn is not the conn under TLS")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		herr := make(chan error, 1)
		go func() { herr <- srv.Handshake(ctx) }()
		if err := cli.Handshake(ctx); err != nil {
			t.Fatal(err)
		}
		if err := <-herr; err != nil {
			t.Fatal(err)
		}
		for _, side := range []struct {
			name     string
			from, to tlsbackend.Conn
			raw      *countWrites
		}{{"server", srv, cli, sw}, {"client", cli, srv, cw}} {
			// 200 KiB in the middle (not gathered, over 64 KiB) takes
			// crypto/tls past its small first records: the sizes after
			// it check the conn's later records.
			for _, size := range []int{3000, 3000, 16<<10 + 300, 64 << 10, 200 << 10, 3000, 16<<10 + 300} {
				data := make([]byte, size)
				rand.Read(data)
				got := make([]byte, size)
				rerr := make(chan error, 1)
				go func() { _, err := io.ReadFull(side.to, got); rerr <- err }()
				before := side.raw.count()
				if _, err := side.from.Write(data); err != nil {
					t.Fatalf("%s Write(%d): %v", side.name, size, err)
				}
				writes := side.raw.count() - before
				if err := <-rerr; err != nil || !bytes.Equal(got, data) {
					t.Fatalf("%s Write(%d): peer read %v, equal %v", side.name, size, err, bytes.Equal(got, data))
				}
				if writes != 1 && size <= 64<<10 {
					t.Errorf("%s Write(%d) took %d writes on the connection, want 1", side.name, size, writes)
				}
			}
		}
	})
}

// TestWriteTimeoutBreaks: a Write cut by its deadline may have sent part of
// a record, so the conn stays broken: a later Write fails too, even with
// the deadline lifted, rather than send records the peer cannot decrypt.
func TestWriteTimeoutBreaks(t *testing.T) {
	p := testPKI(t)
	forBackends(t, func(t *testing.T, b tlsbackend.Backend) {
		stalled, resume := make(chan struct{}), make(chan struct{})
		srv := startServer(t, b, p.serverConfig(), func(c tlsbackend.Conn) {
			close(stalled)
			<-resume // reads nothing meanwhile
			io.Copy(io.Discard, c)
		})
		c, err := dial(t, newClient(t, b, p.clientConfig()), srv.addr, "")
		if err != nil {
			t.Fatal(err)
		}
		<-stalled
		c.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
		data := make([]byte, 32<<10)
		var werr error
		for range 1000 { // until the socket buffers are full
			if _, werr = c.Write(data); werr != nil {
				break
			}
		}
		if !errors.Is(werr, os.ErrDeadlineExceeded) {
			t.Fatalf("Write to a peer that does not read: %v, want a deadline error", werr)
		}
		// The server reads again: the socket takes more.
		close(resume)
		time.Sleep(100 * time.Millisecond)
		c.SetWriteDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("more")); err == nil {
			t.Fatal("a Write after a timed-out one succeeded")
		}
	})
}
