package httpproxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/monolake-go/monolake/proxy/config"
	"github.com/monolake-go/monolake/tlsbackend"
	"github.com/monolake-go/monolake/tlsbackend/tlstest"
)

// tlsBackends lists the TLS backends to test: both in a cgo build with the
// openssl tag; gotls alone otherwise, saying why openssl is skipped.
func tlsBackends(t *testing.T) []string {
	out := []string{config.TLSGo}
	if _, err := tlsbackend.Get(config.TLSOpenSSL); err == nil {
		out = append(out, config.TLSOpenSSL)
	} else {
		t.Logf("openssl backend not tested: %v", err)
	}
	return out
}

// tlsOrigin is an HTTPS origin that reports what its TLS connections
// negotiated and counts them.
type tlsOrigin struct {
	*httptest.Server
	conns atomic.Int64
}

// newTLSOrigin starts an HTTPS origin with a certificate for localhost and
// 127.0.0.1 signed by ca; clientCAs, when set, makes it require a client
// certificate verifying against them.
func newTLSOrigin(t *testing.T, ca *tlstest.CA, clientCAs *x509.CertPool) *tlsOrigin {
	t.Helper()
	crt := localhostPair(t, ca)
	o := &tlsOrigin{}
	o.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client := "-"
		if len(r.TLS.PeerCertificates) > 0 {
			client = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		fmt.Fprintf(w, "sni=%s alpn=%s client=%s", r.TLS.ServerName, r.TLS.NegotiatedProtocol, client)
	}))
	o.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			o.conns.Add(1)
		}
	}
	o.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the point
	o.TLS = &tls.Config{Certificates: []tls.Certificate{crt}}
	if clientCAs != nil {
		o.TLS.ClientAuth = tls.RequireAndVerifyClientCert
		o.TLS.ClientCAs = clientCAs
	}
	o.StartTLS()
	t.Cleanup(o.Close)
	return o
}

func (o *tlsOrigin) port() string { _, p, _ := net.SplitHostPort(o.Listener.Addr().String()); return p }

// localhostPair is a key pair for localhost and 127.0.0.1 signed by ca.
func localhostPair(t *testing.T, ca *tlstest.CA) tls.Certificate {
	t.Helper()
	leaf, err := ca.Leaf(tlstest.LeafOptions{}, "localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	crt, err := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return crt
}

// TestHTTPSUpstream runs requests through the proxy to HTTPS origins with
// each backend: verification against a configured CA with SNI and ALPN,
// refusal of an untrusted certificate, skipping verification (with its
// warning), a client certificate for an mTLS origin, and reuse of one TLS
// connection for many requests.
func TestHTTPSUpstream(t *testing.T) {
	ca, err := tlstest.NewCA("upstream CA")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	caFile, _ := tlstest.WriteFile(dir, "ca.pem", ca.CertPEM)
	clientLeaf, err := ca.Leaf(tlstest.LeafOptions{Client: true}, "proxy-client")
	if err != nil {
		t.Fatal(err)
	}
	clientCert, _ := tlstest.WriteFile(dir, "client.pem", clientLeaf.CertPEM)
	clientKey, _ := tlstest.WriteFile(dir, "client-key.pem", clientLeaf.KeyPEM)
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(ca.Cert)

	origin := newTLSOrigin(t, ca, nil)
	mtls := newTLSOrigin(t, ca, clientCAs)

	for _, backend := range tlsBackends(t) {
		t.Run("backend="+backend, func(t *testing.T) {
			tests := []struct {
				name     string
				origin   *tlsOrigin
				host     string // in the upstream URI
				tls      string // upstream_tls keys
				status   int
				body     string
				warnings int
			}{
				{"verified", origin, "localhost", fmt.Sprintf("ca = %q", caFile), 200, "sni=localhost alpn=http/1.1 client=-", 0},
				{"verified by IP", origin, "127.0.0.1", fmt.Sprintf("ca = %q", caFile), 200, "sni= alpn=http/1.1 client=-", 0},
				{"untrusted", origin, "localhost", "", 502, "", 0},
				{"wrong name", origin, "localhost", fmt.Sprintf("ca = %q, server_name = \"other.test\"", caFile), 502, "", 0},
				{"skip verify", origin, "localhost", "insecure_skip_verify = true", 200, "sni=localhost alpn=http/1.1 client=-", 1},
				{"mtls", mtls, "localhost", fmt.Sprintf("ca = %q, cert = %q, key = %q", caFile, clientCert, clientKey), 200, "sni=localhost alpn=http/1.1 client=proxy-client", 0},
				{"mtls without cert", mtls, "localhost", fmt.Sprintf("ca = %q", caFile), 502, "", 0},
			}
			for _, tt := range tests {
				t.Run(strings.ReplaceAll(tt.name, " ", "_"), func(t *testing.T) {
					keys := fmt.Sprintf("stack = %q", backend)
					if tt.tls != "" {
						keys = tt.tls + ", " + keys
					}
					routes := fmt.Sprintf("[[servers.p.routes]]\npath = \"/{*p}\"\nupstreams = [{ endpoint = { type = \"uri\", value = \"https://%s:%s\" } }]\nupstream_tls = { %s }\n",
						tt.host, tt.origin.port(), keys)
					p := startProxy(t, serverTOML("", routes), Options{})
					warned := 0
					for _, l := range p.Logs.Lines() {
						if strings.Contains(l, "level=WARN") && strings.Contains(l, "insecure_skip_verify") {
							warned++
						}
					}
					if warned != tt.warnings {
						t.Errorf("%d insecure_skip_verify warnings at build, want %d: %q", warned, tt.warnings, p.Logs.Lines())
					}
					c := client(t)
					before := tt.origin.conns.Load()
					for i := range 20 {
						resp, body := do(t, c, "GET", "http://"+p.Addr+"/x", "", nil, nil)
						if resp.StatusCode != tt.status {
							t.Fatalf("request %d: status %d, want %d: %s", i, resp.StatusCode, tt.status, body)
						}
						if tt.status != 200 {
							return
						}
						if string(body) != tt.body {
							t.Fatalf("origin saw %q, want %q", body, tt.body)
						}
					}
					// Twenty requests, one after another: one TLS connection.
					if n := tt.origin.conns.Load() - before; n != 1 {
						t.Errorf("origin saw %d TLS connections for 20 sequential requests, want 1", n)
					}
					if got := p.Logs.Lines(); len(got) > tt.warnings {
						t.Logf("logs: %q", got)
					}
				})
			}
		})
	}
}

// TestHTTPSUpstreamPoolKeys: a plain and an https upstream at one address,
// and https upstreams of two routes with different TLS settings, never
// share an idle list; two routes with the same settings (/a's https one
// and /c) do.
func TestHTTPSUpstreamPoolKeys(t *testing.T) {
	s := parseServer(t, serverTOML("", `
[[servers.p.routes]]
path = "/a"
load_balancer = "round_robin"
upstreams = [{ endpoint = { type = "uri", value = "http://127.0.0.1:8443" } },
             { endpoint = { type = "uri", value = "https://127.0.0.1:8443" } }]
[[servers.p.routes]]
path = "/b"
upstreams = [{ endpoint = { type = "uri", value = "https://127.0.0.1:8443" } }]
upstream_tls = { insecure_skip_verify = true }
[[servers.p.routes]]
path = "/c"
upstreams = [{ endpoint = { type = "uri", value = "https://127.0.0.1:8443" } }]
`))
	var keys []string
	for i := range s.Routes {
		r, err := NewRoute(&s.Routes[i], nil)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		for range 8 {
			tg, done := r.bal.Pick()
			done()
			if k := tg.key.String(); !contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	if len(keys) != 3 {
		t.Fatalf("pool keys %q, want 3 distinct", keys)
	}
	for _, k := range keys {
		if !strings.HasSuffix(k, "://127.0.0.1:8443") {
			t.Errorf("key %q does not name the address", k)
		}
	}
}

// TestHTTPSUpstreamSharedByRoutes: two routes to one https upstream with
// the same upstream_tls settings (the usual "/" and "/{*p}") share its
// idle connections: requests alternating between them use one TLS
// connection, on each backend.
func TestHTTPSUpstreamSharedByRoutes(t *testing.T) {
	ca, err := tlstest.NewCA("upstream CA")
	if err != nil {
		t.Fatal(err)
	}
	caFile, _ := tlstest.WriteFile(t.TempDir(), "ca.pem", ca.CertPEM)
	origin := newTLSOrigin(t, ca, nil)
	for _, backend := range tlsBackends(t) {
		t.Run("backend="+backend, func(t *testing.T) {
			var routes string
			for _, path := range []string{"/", "/{*p}"} {
				routes += fmt.Sprintf("[[servers.p.routes]]\npath = %q\nupstreams = [{ endpoint = { type = \"uri\", value = \"https://localhost:%s\" } }]\nupstream_tls = { ca = %q, stack = %q }\n",
					path, origin.port(), caFile, backend)
			}
			p := startProxy(t, serverTOML("", routes), Options{})
			c := client(t)
			before := origin.conns.Load()
			for i := range 6 {
				path := []string{"/", "/x"}[i%2]
				if resp, body := do(t, c, "GET", "http://"+p.Addr+path, "", nil, nil); resp.StatusCode != 200 {
					t.Fatalf("GET %s: status %d: %s", path, resp.StatusCode, body)
				}
			}
			if n := origin.conns.Load() - before; n != 1 {
				t.Errorf("origin saw %d TLS connections for 6 sequential requests over two routes, want 1", n)
			}
		})
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// TestHTTPSUpstreamResponseOneWrite: a response that arrived whole from an
// HTTPS upstream leaves in one write to the client, as from a plain one
// (TestResponseOneWrite), with the openssl backend, which tells the proxy
// what it holds. (crypto/tls cannot tell, so with gotls such a response may
// leave in two.) The origin is gotls, which sends a Write's records at once.
func TestHTTPSUpstreamResponseOneWrite(t *testing.T) {
	if !slices.Contains(tlsBackends(t), config.TLSOpenSSL) {
		tlstest.Unavailable(t, "openssl backend not in this build")
	}
	ca, err := tlstest.NewCA("one-write CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Leaf(tlstest.LeafOptions{}, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	be, err := tlsbackend.Get(config.TLSGo)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := be.NewServerConfig(&tlsbackend.Config{Certificates: []tlsbackend.Certificate{leaf.Certificate()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sc.Close() })
	body := bytes.Repeat([]byte("0123456789abcdef"), 12<<10/16) // past the reader's 4 KiB
	up := rawUpstream(t, func(c net.Conn) {
		tc := sc.Server(c)
		defer tc.Close()
		br := bufio.NewReader(tc)
		for {
			if _, _, err := readRequest(br); err != nil {
				return
			}
			tc.Write(append(fmt.Appendf(nil, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", len(body)), body...))
		}
	})
	routes := fmt.Sprintf("[[servers.p.routes]]\npath = \"/{*p}\"\nupstreams = [{ endpoint = { type = \"uri\", value = \"https://%s\" } }]\nupstream_tls = { insecure_skip_verify = true, stack = %q }\n",
		up, config.TLSOpenSSL)
	var ln *writeCounter
	p := startProxyWrapped(t, testDriver(t), serverTOML("", routes), Options{}, func(l net.Listener) net.Listener {
		ln = &writeCounter{Listener: l}
		return ln
	})
	const n = 5
	if w := getWrites(t, dialRaw(t, p.Addr), ln, n, body); w != n {
		t.Errorf("%d responses from an HTTPS upstream took %d writes to the client, want one each", n, w)
	}
}

// holdConn queues its writes while hold is set, so that several TLS
// records go out in one TCP write.
type holdConn struct {
	net.Conn
	mu   sync.Mutex
	hold bool
	buf  bytes.Buffer
}

func (h *holdConn) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.hold {
		return h.buf.Write(p)
	}
	return h.Conn.Write(p)
}

func (h *holdConn) flush() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hold = false
	h.Conn.Write(h.buf.Bytes())
	h.buf.Reset()
}

// TestHTTPSUpstreamExtraBytes: an HTTPS upstream's bytes after a response,
// in a record of their own that arrives with it, close the connection as
// over plain HTTP. Under crypto/tls they sat in the TLS layer's buffer,
// seen neither by the HTTP reader nor by the pool's peek, and the next
// request (maybe another client's) read them as its response.
func TestHTTPSUpstreamExtraBytes(t *testing.T) {
	ca, caFile := upstreamCA(t)
	crt := localhostPair(t, ca)
	const evil = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil"
	for _, backend := range tlsBackends(t) {
		for _, tc := range []struct{ name, first string }{
			{"past content-length", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"},
			{"body after 204", "HTTP/1.1 204 No Content\r\n\r\n"},
		} {
			t.Run(backend+"/"+tc.name, func(t *testing.T) {
				var conns atomic.Int32
				addr := rawUpstream(t, func(raw net.Conn) {
					first := conns.Add(1) == 1
					hc := &holdConn{Conn: raw}
					c := tls.Server(hc, &tls.Config{Certificates: []tls.Certificate{crt}})
					br := bufio.NewReader(c)
					for i := 0; ; i++ {
						if _, _, err := readRequest(br); err != nil {
							return
						}
						if i == 0 && first {
							hc.mu.Lock()
							hc.hold = true
							hc.mu.Unlock()
							io.WriteString(c, tc.first) // two records,
							io.WriteString(c, evil)
							hc.flush() // one TCP write
						} else {
							io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood")
						}
					}
				})
				_, port, _ := net.SplitHostPort(addr)
				routes := fmt.Sprintf("[[servers.p.routes]]\npath = \"/{*p}\"\nupstreams = [{ endpoint = { type = \"uri\", value = \"https://localhost:%s\" } }]\nupstream_tls = { ca = %q, stack = %q }\n", port, caFile, backend)
				p := startProxy(t, serverTOML("", routes), Options{})
				c := dialRaw(t, p.Addr)
				c.send(t, "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n")
				c.response(t, "GET")
				time.Sleep(50 * time.Millisecond)
				c.send(t, "GET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
				if _, body := c.response(t, "GET"); string(body) != "good" {
					t.Fatalf("the second request got %q, want \"good\" from a new connection (upstream connections: %d)", body, conns.Load())
				}
			})
		}
	}
}

// upstreamCA makes a CA for test upstreams and writes its certificate to
// a file, for upstream_tls's ca.
func upstreamCA(t *testing.T) (*tlstest.CA, string) {
	t.Helper()
	ca, err := tlstest.NewCA("Monolake Test Upstream CA")
	if err != nil {
		t.Fatal(err)
	}
	caFile, err := tlstest.WriteFile(t.TempDir(), "ca.pem", ca.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	return ca, caFile
}

// rawTLSUpstream is rawUpstream under TLS (crypto/tls, a certificate for
// localhost from a new CA): it returns the routes of a proxy in front of
// it through the TLS backend named.
func rawTLSUpstream(t *testing.T, backend string, serve func(c net.Conn)) string {
	t.Helper()
	ca, caFile := upstreamCA(t)
	cfg := &tls.Config{Certificates: []tls.Certificate{localhostPair(t, ca)}}
	addr := rawUpstream(t, func(raw net.Conn) {
		c := tls.Server(raw, cfg)
		defer c.Close()
		serve(c)
	})
	_, port, _ := net.SplitHostPort(addr)
	return fmt.Sprintf("[[servers.p.routes]]\npath = \"/{*p}\"\nupstreams = [{ endpoint = { type = \"uri\", value = \"https://localhost:%s\" } }]\nupstream_tls = { ca = %q, stack = %q }\n", port, caFile, backend)
}

// TestHTTPSEarlyResponseUnread is TestEarlyResponseUnread with an HTTPS
// upstream, on each backend: the answer of an upstream that stopped
// reading the body reaches the client at once, although the TLS conn
// cannot be peeked at (and the socket beneath holds the session tickets
// a TLS 1.3 server sends first, which are no answer).
func TestHTTPSEarlyResponseUnread(t *testing.T) {
	for _, backend := range tlsBackends(t) {
		for _, status := range earlyStatuses {
			t.Run(backend+"/"+status[:3], func(t *testing.T) {
				hold := make(chan struct{})
				routes := rawTLSUpstream(t, backend, answerUnread(status, hold))
				t.Cleanup(func() { close(hold) }) // before the upstream's cleanup waits for its conns
				expectEarlyAnswer(t, serverTOML("", routes))
			})
		}
	}
}

// TestHTTPSEarlyInterimNotAnswer is TestEarlyInterimNotAnswer with an HTTPS
// upstream, on each backend: a 100 Continue, and a pause before the
// upstream reads, do not cut the body, and the connection (its read-ahead
// drained) serves the next request.
func TestHTTPSEarlyInterimNotAnswer(t *testing.T) {
	for _, backend := range tlsBackends(t) {
		t.Run(backend, func(t *testing.T) {
			expectWholeBody(t, serverTOML("", rawTLSUpstream(t, backend, continueLate)))
		})
	}
}
