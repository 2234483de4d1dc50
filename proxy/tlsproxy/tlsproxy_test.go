package tlsproxy_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/monolake-go/monolake/proxy/config"
	"github.com/monolake-go/monolake/proxy/netio"
	"github.com/monolake-go/monolake/proxy/porttest"
	"github.com/monolake-go/monolake/proxy/server"
	"github.com/monolake-go/monolake/proxy/tlsproxy"
	"github.com/monolake-go/monolake/proxy/worker"
	"github.com/monolake-go/monolake/tlsbackend"
	"github.com/monolake-go/monolake/tlsbackend/tlstest"
)

// backends lists the TLS backends to test: both in a cgo build with the
// openssl tag; gotls alone otherwise, saying why openssl is skipped.
func backends(t *testing.T) []string {
	out := []string{config.TLSGo}
	if _, err := tlsbackend.Get(config.TLSOpenSSL); err == nil {
		out = append(out, config.TLSOpenSSL)
	} else {
		t.Logf("openssl backend not tested: %v", err)
	}
	return out
}

// TestHTTPSAndTLSTermination runs the proxy (one process) with an HTTPS
// server and a TLS-terminating tcp server per backend, and talks to them
// with crypto/tls clients that verify the certificate.
func TestHTTPSAndTLSTermination(t *testing.T) {
	ca, err := tlstest.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Leaf(tlstest.LeafOptions{}, "proxy.test", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	chain, _ := tlstest.WriteFile(dir, "chain.pem", leaf.CertPEM)
	key, _ := tlstest.WriteFile(dir, "key.pem", leaf.KeyPEM)
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)

	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "proto=%s host=%s", r.Header.Get("X-Forwarded-Proto"), r.Host)
	}))
	defer origin.Close()
	echo, _ := net.Listen("tcp", "127.0.0.1:0")
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()

	for _, backend := range backends(t) {
		t.Run("backend="+backend, func(t *testing.T) {
			httpsAddr, tcpAddr := porttest.Free(t), porttest.Free(t)
			text := fmt.Sprintf(`[runtime]
worker_threads = 0
drain_timeout_sec = 2
[servers.https]
name = "https"
listener = { type = "socket", value = %[1]q }
tls = { chain = %[3]q, key = %[4]q, stack = %[5]q }
[[servers.https.routes]]
path = "/{*p}"
upstreams = [{ endpoint = { type = "uri", value = %[6]q } }]
[servers.tcps]
proxy_type = "tcp"
listener = { type = "socket", value = %[2]q }
tls = { chain = %[3]q, key = %[4]q, stack = %[5]q, session_tickets = false }
route = { upstreams = [{ endpoint = { type = "socket", value = %[7]q } }] }
`, httpsAddr, tcpAddr, chain, key, backend, origin.URL, echo.Addr().String())
			startWorker(t, "tls.toml", text)

			tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "proxy.test", NextProtos: []string{"http/1.1"}}}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			for i := range 3 {
				resp, err := c.Get("https://" + httpsAddr + "/x")
				if err != nil {
					t.Fatalf("HTTPS request %d: %v", i, err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if !strings.Contains(string(body), "proto=https") {
					t.Fatalf("origin saw %q, want X-Forwarded-Proto https", body)
				}
				if resp.TLS == nil || resp.TLS.NegotiatedProtocol != "http/1.1" {
					t.Fatalf("ALPN: %+v", resp.TLS)
				}
			}
			// An h2-only client must not be offered h2 (not served yet).
			tc, err := tls.Dial("tcp", httpsAddr, &tls.Config{RootCAs: roots, ServerName: "proxy.test", NextProtos: []string{"h2", "http/1.1"}})
			if err != nil {
				t.Fatal(err)
			}
			if p := tc.ConnectionState().NegotiatedProtocol; p != "http/1.1" {
				t.Errorf("negotiated %q; the server speaks only http/1.1", p)
			}
			tc.Close()

			// TLS termination in front of the L4 proxy.
			lc, err := tls.Dial("tcp", tcpAddr, &tls.Config{RootCAs: roots, ServerName: "proxy.test"})
			if err != nil {
				t.Fatal(err)
			}
			defer lc.Close()
			lc.SetDeadline(time.Now().Add(5 * time.Second))
			fmt.Fprintf(lc, "hello over tls\n")
			line, err := bufio.NewReader(lc).ReadString('\n')
			if err != nil || line != "hello over tls\n" {
				t.Fatalf("echo through TLS-terminating tcp server: %q %v", line, err)
			}

			// Resumption by ticket: on by default (the HTTPS server), off
			// with session_tickets = false (the tcp server).
			resumed := func(addr string, cache tls.ClientSessionCache) bool {
				t.Helper()
				c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: "proxy.test", ClientSessionCache: cache})
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				// A round trip, so that a TLS 1.3 ticket sent after the
				// handshake has been read.
				if addr == httpsAddr {
					fmt.Fprintf(c, "GET /r HTTP/1.1\r\nHost: proxy.test\r\n\r\n")
					resp, err := http.ReadResponse(bufio.NewReader(c), nil)
					if err != nil {
						t.Fatal(err)
					}
					io.Copy(io.Discard, resp.Body)
				} else {
					fmt.Fprintf(c, "ping\n")
					if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
						t.Fatal(err)
					}
				}
				return c.ConnectionState().DidResume
			}
			cache := tls.NewLRUClientSessionCache(4)
			if resumed(httpsAddr, cache) || !resumed(httpsAddr, cache) {
				t.Error("the HTTPS server (session tickets on) did not resume a session on the second connection")
			}
			cache = tls.NewLRUClientSessionCache(4)
			if resumed(tcpAddr, cache) || resumed(tcpAddr, cache) {
				t.Error("the tcp server with session_tickets = false resumed a session")
			}

			// A client that does not trust the certificate is refused.
			if _, err := tls.Dial("tcp", httpsAddr, &tls.Config{ServerName: "proxy.test"}); err == nil {
				t.Error("handshake with an untrusted certificate succeeded")
			}
			// A real client tool: curl with the CA.
			if curl, err := exec.LookPath("curl"); err == nil {
				caFile, _ := tlstest.WriteFile(t.TempDir(), "ca.pem", ca.CertPEM)
				out, err := exec.Command(curl, "-sS", "--cacert", caFile, "--resolve", "proxy.test:"+strings.Split(httpsAddr, ":")[1]+":127.0.0.1",
					"https://proxy.test:"+strings.Split(httpsAddr, ":")[1]+"/curl").CombinedOutput()
				if err != nil || !strings.Contains(string(out), "proto=https") {
					t.Errorf("curl: %v\n%s", err, out)
				}
			}
		})
	}
}

// proxyTestLeaf returns a new CA and a leaf of it for proxy.test.
func proxyTestLeaf(t *testing.T) (*tlstest.CA, *tlstest.Leaf) {
	t.Helper()
	ca, err := tlstest.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Leaf(tlstest.LeafOptions{}, "proxy.test")
	if err != nil {
		t.Fatal(err)
	}
	return ca, leaf
}

// startWorker runs a worker (one process) on the config text until the
// test ends.
func startWorker(t *testing.T, name, text string) {
	t.Helper()
	cfg, err := config.Parse(name, []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- worker.Run(ctx, worker.Options{Config: cfg, Log: slog.New(slog.DiscardHandler), Ready: ready})
	}()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("proxy did not start: %v", err)
	}
	t.Cleanup(func() { cancel(); <-done })
}

// TestBadTLSFailsAtStart: certificate files that do not exist stop the
// start with an error naming them.
func TestBadTLSFailsAtStart(t *testing.T) {
	text := fmt.Sprintf(`[runtime]
worker_threads = 0
[servers.s]
listener = { type = "socket", value = %q }
tls = { chain = "/nonexistent/chain.pem", key = "/nonexistent/key.pem" }
[[servers.s.routes]]
path = "/"
upstreams = [{ endpoint = { type = "uri", value = "http://127.0.0.1:9" } }]
`, porttest.Free(t))
	cfg, err := config.Parse("bad.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	err = worker.Run(context.Background(), worker.Options{Config: cfg, Log: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "nonexistent") {
		t.Fatalf("want a start error naming the missing file, got %v", err)
	}
}

// TestHandshakeTimeout runs the TLS layer on each backend and on the
// runtime the tests run on: a client that stops inside its handshake is
// disconnected once the handshake timeout passes, not before, and a client
// whose handshake finished is not held to that timeout afterwards.
func TestHandshakeTimeout(t *testing.T) {
	d, err := netio.DriverForTests()
	if err != nil {
		t.Fatal(err)
	}
	_, leaf := proxyTestLeaf(t)
	const timeout = 300 * time.Millisecond
	for _, backend := range backends(t) {
		t.Run(backend, func(t *testing.T) {
			b, err := tlsbackend.Get(backend)
			if err != nil {
				t.Fatal(err)
			}
			sc, err := b.NewServerConfig(&tlsbackend.Config{Certificates: []tlsbackend.Certificate{leaf.Certificate()}})
			if err != nil {
				t.Fatal(err)
			}
			srv := server.New(tlsproxy.Layer(sc, timeout, nil)(echoService{}), nil)
			ln, err := d.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			go srv.Serve(ln)
			t.Cleanup(func() {
				srv.Close()
				sc.Close()
			})
			addr := ln.Addr().String()

			// A record header announcing a ClientHello that never comes.
			// (start is taken before the dial: the server's clock may
			// start before the dial returns.)
			start := time.Now()
			stalled, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer stalled.Close()
			if _, err := stalled.Write([]byte{0x16, 0x03, 0x01, 0x00, 0x80}); err != nil {
				t.Fatal(err)
			}
			stalled.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err = io.ReadAll(stalled)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("a stalled handshake was still open after 10s")
			}
			if waited := time.Since(start); waited < timeout {
				t.Errorf("a stalled handshake was closed after %v, before the %v timeout (err %v)", waited, timeout, err)
			}

			tc, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, ServerName: "proxy.test"})
			if err != nil {
				t.Fatal(err)
			}
			defer tc.Close()
			time.Sleep(2 * timeout)
			tc.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := tc.Write([]byte("ping\n")); err != nil {
				t.Fatalf("writing after the handshake timeout passed: %v", err)
			}
			got, err := bufio.NewReader(tc).ReadString('\n')
			if err != nil || got != "ping\n" {
				t.Fatalf("echo after the handshake timeout passed: %q, %v", got, err)
			}
		})
	}
}

// TestTLSTerminationCutShort: behind a TLS-terminating tcp server, an
// upstream that resets the stream leaves the client's TLS stream cut short
// (no close_notify: OpenSSL's client reports an unexpected EOF), and one
// that ends it cleanly ends the client's with close_notify. The client is
// `openssl s_client`: crypto/tls, like the project's backends, takes an EOF
// at a record boundary for a clean end and cannot tell the two apart.
func TestTLSTerminationCutShort(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatalf("openssl (the command) is needed: %v", err)
	}
	ca, leaf := proxyTestLeaf(t)
	dir := t.TempDir()
	chain, _ := tlstest.WriteFile(dir, "chain.pem", leaf.CertPEM)
	key, _ := tlstest.WriteFile(dir, "key.pem", leaf.KeyPEM)
	caFile, _ := tlstest.WriteFile(dir, "ca.pem", ca.CertPEM)

	// The upstream answers a line with "partial", then resets the stream
	// (the line "reset") or closes it.
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	go func() {
		for {
			c, err := up.Accept()
			if err != nil {
				return
			}
			go func() {
				line, _ := bufio.NewReader(c).ReadString('\n')
				io.WriteString(c, "partial\n")
				time.Sleep(100 * time.Millisecond)
				if line == "reset\n" {
					c.(*net.TCPConn).SetLinger(0)
				}
				c.Close()
			}()
		}
	}()

	for _, backend := range backends(t) {
		t.Run("backend="+backend, func(t *testing.T) {
			addr := porttest.Free(t)
			startWorker(t, "cut.toml", fmt.Sprintf(`[runtime]
worker_threads = 0
[servers.tcps]
proxy_type = "tcp"
listener = { type = "socket", value = %q }
tls = { chain = %q, key = %q, stack = %q }
route = { upstreams = [{ endpoint = { type = "socket", value = %q } }] }
`, addr, chain, key, backend, up.Addr().String()))

			for _, tc := range []struct {
				send string
				cut  bool
			}{{"reset\n", true}, {"end\n", false}} {
				ctx, stop := context.WithTimeout(context.Background(), 20*time.Second)
				cmd := exec.CommandContext(ctx, openssl, "s_client", "-connect", addr, "-servername", "proxy.test",
					"-CAfile", caFile, "-verify_return_error", "-quiet", "-ign_eof")
				cmd.Stdin = strings.NewReader(tc.send)
				out, err := cmd.CombinedOutput()
				stop()
				if !strings.Contains(string(out), "partial") {
					t.Fatalf("%q: s_client did not get the upstream's bytes (%v):\n%s", tc.send, err, out)
				}
				cut := strings.Contains(strings.ToLower(string(out)), "unexpected eof")
				if cut != tc.cut {
					t.Errorf("%q: stream cut short %v, want %v (exit %v):\n%s", tc.send, cut, tc.cut, err, out)
				}
			}
		})
	}
}
