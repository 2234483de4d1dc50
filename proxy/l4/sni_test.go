package l4_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/monolake-go/monolake/proxy/config"
	"github.com/monolake-go/monolake/proxy/l4"
	"github.com/monolake-go/monolake/proxy/server"
	"github.com/monolake-go/monolake/tlsbackend/tlstest"
)

// tlsOrigin serves TLS with a certificate for names and answers every
// line with "NAME: line".
func tlsOrigin(t *testing.T, ca *tlstest.CA, tag string, names ...string) string {
	t.Helper()
	leaf, err := ca.Leaf(tlstest.LeafOptions{}, names...)
	if err != nil {
		t.Fatal(err)
	}
	crt, err := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ln := listen(t, "tcp")
	tln := tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{crt}})
	t.Cleanup(func() { tln.Close() })
	go func() {
		for {
			c, err := tln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(ceiling))
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					fmt.Fprintf(c, "%s: %s", tag, line)
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// sniProxy parses a tcp server with sni_routes from config text (so the
// keys are checked as users write them) and serves it.
func sniProxy(t *testing.T, text string, log *slog.Logger) net.Addr {
	t.Helper()
	cfg, err := config.Parse("sni.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	p, err := l4.New(cfg.Servers["p"], log)
	if err != nil {
		t.Fatal(err)
	}
	ln := proxyListen(t, p, "tcp")
	srv := server.New(p, nil)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close(); <-srv.Drained() })
	return ln.Addr()
}

// TestSNIPassthrough runs two TLS origins with different certificates and
// a plain default upstream behind one passthrough listener: crypto/tls
// clients reach the origin their SNI names and verify its certificate end
// to end (the proxy holds no key, so it cannot have terminated TLS);
// anything else goes to the default route.
func TestSNIPassthrough(t *testing.T) {
	ca, err := tlstest.NewCA("sni CA")
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	a := tlsOrigin(t, ca, "A", "a.example")
	b := tlsOrigin(t, ca, "B", "*.b.example")
	def := upstream(t, "tcp", func(c net.Conn) {
		io.WriteString(c, "default\n")
		echo(c)
	})
	logs := &syncBuffer{}
	addr := sniProxy(t, fmt.Sprintf(`
[servers.p]
proxy_type = "tcp"
listener = { type = "socket", value = "127.0.0.1:1" }
timeout = { server_read_header_timeout_sec = 1 }
sni_routes = [
  { server_names = ["a.example"], upstreams = [{ endpoint = { type = "socket", value = %q } }] },
  { server_names = ["*.b.example"], load_balancer = "round_robin", upstreams = [{ endpoint = { type = "socket", value = %q } }] },
]
route = { upstreams = [{ endpoint = { type = "socket", value = %q } }] }
`, a, b, def.Value), slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))

	for _, tt := range []struct{ sni, tag string }{
		{"a.example", "A"},
		{"A.Example", "A"},
		{"x.b.example", "B"},
		{"y.b.example", "B"},
	} {
		t.Run("sni="+tt.sni, func(t *testing.T) {
			c, err := tls.DialWithDialer(&net.Dialer{Timeout: ceiling}, "tcp", addr.String(),
				&tls.Config{RootCAs: roots, ServerName: tt.sni})
			if err != nil {
				t.Fatalf("handshake through the proxy: %v", err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(ceiling))
			leaf := c.ConnectionState().PeerCertificates[0]
			if err := leaf.VerifyHostname(strings.ToLower(tt.sni)); err != nil {
				t.Fatalf("served certificate %v: %v", leaf.DNSNames, err)
			}
			fmt.Fprintf(c, "ping\n")
			line, err := bufio.NewReader(c).ReadString('\n')
			if want := tt.tag + ": ping\n"; err != nil || line != want {
				t.Fatalf("got %q %v, want %q", line, err, want)
			}
		})
	}

	// readDefault expects the default upstream's greeting, then the echo.
	readDefault := func(t *testing.T, c net.Conn, sent []byte) {
		t.Helper()
		br := bufio.NewReader(c)
		if line, err := br.ReadString('\n'); err != nil || line != "default\n" {
			t.Fatalf("greeting %q %v, want the default upstream's", line, err)
		}
		got := make([]byte, len(sent))
		if _, err := io.ReadFull(br, got); err != nil || !bytes.Equal(got, sent) {
			t.Fatalf("echo %q %v, want %q", got, err, sent)
		}
	}
	t.Run("not tls", func(t *testing.T) {
		c := dial(t, addr)
		fmt.Fprintf(c, "hello\n")
		readDefault(t, c, []byte("hello\n"))
	})
	t.Run("silent client after the hello timeout", func(t *testing.T) {
		c := dial(t, addr)
		readDefault(t, c, nil)
		fmt.Fprintf(c, "late\n")
		br := bufio.NewReader(c)
		if line, err := br.ReadString('\n'); err != nil || line != "late\n" {
			t.Fatalf("echo %q %v", line, err)
		}
	})
	t.Run("malformed hello", func(t *testing.T) {
		bad := []byte{22, 3, 1, 0, 6, 1, 0, 0, 2, 3, 3} // a 2-byte ClientHello body
		c := dial(t, addr)
		c.Write(bad)
		readDefault(t, c, bad)
	})
	t.Run("unknown sni", func(t *testing.T) {
		// The default upstream is not TLS: the handshake fails, and the
		// default upstream got the ClientHello replayed.
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: ceiling}, "tcp", addr.String(),
			&tls.Config{RootCAs: roots, ServerName: "c.example"})
		if err == nil {
			c.Close()
			t.Fatal("handshake with the plain default upstream succeeded")
		}
		if !strings.Contains(logs.String(), `no sni route for \"c.example\"`) {
			t.Errorf("no log line for the unmatched name:\n%s", logs)
		}
	})
}

// TestSNIWithoutDefault: with sni_routes only, a connection that matches
// none is closed with a log line.
func TestSNIWithoutDefault(t *testing.T) {
	ca, err := tlstest.NewCA("sni CA")
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	a := tlsOrigin(t, ca, "A", "a.example")
	logs := &syncBuffer{}
	addr := sniProxy(t, fmt.Sprintf(`
[servers.p]
proxy_type = "tcp"
listener = { type = "socket", value = "127.0.0.1:1" }
sni_routes = [{ server_names = ["a.example"], upstreams = [{ endpoint = { type = "socket", value = %q } }] }]
`, a), slog.New(slog.NewTextHandler(logs, nil)))

	c, err := tls.DialWithDialer(&net.Dialer{Timeout: ceiling}, "tcp", addr.String(), &tls.Config{RootCAs: roots, ServerName: "a.example"})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()

	for _, tt := range []struct {
		name string
		send []byte
	}{
		{"not tls", []byte("GET / HTTP/1.1\r\n\r\n")},
		{"other name", nil},
		{"malformed", []byte{22, 3, 1, 0, 1, 9}},
	} {
		t.Run(strings.ReplaceAll(tt.name, " ", "_"), func(t *testing.T) {
			before := strings.Count(logs.String(), "no route for the connection")
			if tt.send == nil {
				_, err := tls.DialWithDialer(&net.Dialer{Timeout: ceiling}, "tcp", addr.String(), &tls.Config{RootCAs: roots, ServerName: "z.example"})
				if err == nil {
					t.Fatal("handshake for an unrouted name succeeded")
				}
			} else {
				c := dial(t, addr)
				c.Write(tt.send)
				expectEOF(t, c)
			}
			deadline := time.Now().Add(ceiling)
			for strings.Count(logs.String(), "no route for the connection") == before {
				if time.Now().After(deadline) {
					t.Fatalf("no log line:\n%s", logs)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

// TestSNIEmptyConnection: a connection closed or reset before its first
// byte (a TCP health check) is not relayed to the default route; one that sends
// something that is not TLS is.
func TestSNIEmptyConnection(t *testing.T) {
	var dialed atomic.Int32
	def := upstream(t, "tcp", func(c net.Conn) {
		dialed.Add(1)
		echo(c)
	})
	addr := sniProxy(t, fmt.Sprintf(`
[servers.p]
proxy_type = "tcp"
listener = { type = "socket", value = "127.0.0.1:1" }
sni_routes = [{ server_names = ["a.example"], upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:1" } }] }]
route = { upstreams = [{ endpoint = { type = "socket", value = %q } }] }
`, def.Value), slog.New(slog.DiscardHandler))
	for i := range 6 {
		c := dial(t, addr)
		if i%2 == 1 {
			// Reset, not closed, as some health checkers end theirs.
			c.(*net.TCPConn).SetLinger(0)
		}
		c.Close()
	}
	time.Sleep(200 * time.Millisecond)
	if n := dialed.Load(); n != 0 {
		t.Fatalf("%d empty connections relayed to the default route", n)
	}
	c := dial(t, addr)
	io.WriteString(c, "plain\n")
	closeWrite(c)
	if b, err := io.ReadAll(c); err != nil || string(b) != "plain\n" {
		t.Fatalf("plain client through the default route: %q %v", b, err)
	}
	if n := dialed.Load(); n != 1 {
		t.Fatalf("default route dialled %d times, want 1", n)
	}
}

// TestSNIAccessLogBytesOfBadHello: a connection routed nowhere is logged
// 400 with the bytes read from it, as nginx's $bytes_received counts them
// (it said 0).
func TestSNIAccessLogBytesOfBadHello(t *testing.T) {
	const req = "GET / HTTP/1.1\r\n\r\n"
	testSNIAccessLogBytes(t, func(c net.Conn) int {
		io.WriteString(c, req)
		expectEOF(t, c)
		return len(req)
	}, "400")
}

// TestSNIAccessLogBytesNoUpstream: a ClientHello routed to an upstream that
// refuses is logged 502 with the bytes of the hello (it said 0).
func TestSNIAccessLogBytesNoUpstream(t *testing.T) {
	testSNIAccessLogBytes(t, func(c net.Conn) int {
		cc := &countingConn{Conn: c}
		if err := tls.Client(cc, &tls.Config{ServerName: "a.example", InsecureSkipVerify: true}).Handshake(); err == nil {
			t.Fatal("handshake through a route to a refusing upstream succeeded")
		}
		return int(cc.n.Load())
	}, "502")
}

// countingConn counts the bytes written to it.
type countingConn struct {
	net.Conn
	n atomic.Int64
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.n.Add(int64(n))
	return n, err
}

// testSNIAccessLogBytes sends with send to an SNI router whose one route
// leads to a port that refuses and checks the access log's line: status,
// and as received the bytes send says it sent.
func testSNIAccessLogBytes(t *testing.T, send func(net.Conn) int, status string) {
	path := filepath.Join(t.TempDir(), "access.log")
	addr := sniProxy(t, fmt.Sprintf(`
[servers.p]
proxy_type = "tcp"
listener = { type = "socket", value = "127.0.0.1:1" }
access_log = %q
sni_routes = [{ server_names = ["a.example"], upstreams = [{ endpoint = { type = "socket", value = "127.0.0.1:1" } }] }]
`, path), slog.New(slog.DiscardHandler))
	c := dial(t, addr)
	n := send(c)
	want := fmt.Sprintf(`"TCP -" %s 0 %d `, status, n)
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("access log lacks %q:\n%s", want, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
