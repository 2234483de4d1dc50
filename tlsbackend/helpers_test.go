package tlsbackend_test

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/monolake-go/monolake/tlsbackend"
	_ "github.com/monolake-go/monolake/tlsbackend/all"
	"github.com/monolake-go/monolake/tlsbackend/tlstest"
)

// backendNames are every backend the project has, built in or not.
var backendNames = []string{"gotls", "openssl"}

// forBackends runs f under "backend=NAME" for each backend; one not in this
// build is skipped with the registry's reason.
func forBackends(t *testing.T, f func(t *testing.T, b tlsbackend.Backend)) {
	for _, name := range backendNames {
		t.Run("backend="+name, func(t *testing.T) {
			b, err := tlsbackend.Get(name)
			if err != nil {
				tlstest.Unavailable(t, "%v", err)
			}
			f(t, b)
		})
	}
}

// forPairs runs f for every server backend against every client backend,
// which covers cross-backend interop.
func forPairs(t *testing.T, f func(t *testing.T, srv, cli tlsbackend.Backend)) {
	for _, sn := range backendNames {
		for _, cn := range backendNames {
			t.Run("server="+sn+",client="+cn, func(t *testing.T) {
				srv, err := tlsbackend.Get(sn)
				if err != nil {
					tlstest.Unavailable(t, "%v", err)
				}
				cli, err := tlsbackend.Get(cn)
				if err != nil {
					tlstest.Unavailable(t, "%v", err)
				}
				f(t, srv, cli)
			})
		}
	}
}

// pki is the certificates every test uses.
type pki struct {
	ca, otherCA                                   *tlstest.CA
	a, b, expired, untrusted, client, bad, cnOnly *tlstest.Leaf
	caFile                                        string
}

var (
	pkiOnce sync.Once
	pkiVal  *pki
	pkiErr  error
)

func testPKI(t testing.TB) *pki {
	pkiOnce.Do(func() { pkiVal, pkiErr = makePKI() })
	if pkiErr != nil {
		t.Fatal(pkiErr)
	}
	return pkiVal
}

func makePKI() (*pki, error) {
	p := &pki{}
	var err error
	leaf := func(ca *tlstest.CA, o tlstest.LeafOptions, names ...string) *tlstest.Leaf {
		if err != nil {
			return nil
		}
		var l *tlstest.Leaf
		l, err = ca.Leaf(o, names...)
		return l
	}
	if p.ca, err = tlstest.NewCA("Monolake Test CA"); err != nil {
		return nil, err
	}
	if p.otherCA, err = tlstest.NewCA("Untrusted Test CA"); err != nil {
		return nil, err
	}
	p.a = leaf(p.ca, tlstest.LeafOptions{}, "a.test", "localhost", "127.0.0.1", "::1")
	p.b = leaf(p.ca, tlstest.LeafOptions{}, "b.test", "*.wild.test")
	p.expired = leaf(p.ca, tlstest.LeafOptions{Expired: true}, "expired.test")
	p.untrusted = leaf(p.otherCA, tlstest.LeafOptions{}, "a.test")
	p.client = leaf(p.ca, tlstest.LeafOptions{Client: true}, "client")
	p.bad = leaf(p.otherCA, tlstest.LeafOptions{Client: true}, "intruder")
	p.cnOnly = leaf(p.ca, tlstest.LeafOptions{CommonNameOnly: true}, "a.test")
	return p, err
}

// serverConfig is the default server: a.test (the default) and b.test.
func (p *pki) serverConfig() *tlsbackend.Config {
	return &tlsbackend.Config{Certificates: []tlsbackend.Certificate{p.a.Certificate(), p.b.Certificate()}}
}

// clientConfig trusts the test CA and expects a.test.
func (p *pki) clientConfig() *tlsbackend.Config {
	return &tlsbackend.Config{RootCAPEM: p.ca.CertPEM, ServerName: "a.test"}
}

// result is a server conn's handshake outcome.
type result struct {
	st  tlsbackend.ConnectionState
	err error
}

// server is a loopback TLS server running handle on every conn that
// completes its handshake; each handshake's result goes to results.
type server struct {
	addr    string
	results chan result
}

func startServer(t testing.TB, b tlsbackend.Backend, cfg *tlsbackend.Config, handle func(tlsbackend.Conn)) *server {
	t.Helper()
	sc, err := b.NewServerConfig(cfg)
	if err != nil {
		t.Fatalf("%s: NewServerConfig: %v", b.Name(), err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{addr: ln.Addr().String(), results: make(chan result, 64)}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		sc.Close()
	})
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				c := sc.Server(nc)
				defer c.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				err := c.Handshake(ctx)
				cancel()
				select {
				case s.results <- result{c.ConnectionState(), err}:
				default:
				}
				if err == nil && handle != nil {
					c.SetDeadline(time.Now().Add(10 * time.Second))
					handle(c)
				}
			})
		}
	})
	return s
}

func (s *server) result(t testing.TB) result {
	t.Helper()
	select {
	case r := <-s.results:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no server handshake result within 5s")
		return result{}
	}
}

// echo copies what the peer sends back to it until EOF.
func echo(c tlsbackend.Conn) { io.Copy(c, c) }

// dial connects a client conn made by cc to addr and runs its handshake.
func dial(t testing.TB, cc tlsbackend.ClientConfig, addr, name string) (tlsbackend.Conn, error) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := cc.Client(nc, name)
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c, c.Handshake(ctx)
}

func newClient(t testing.TB, b tlsbackend.Backend, cfg *tlsbackend.Config) tlsbackend.ClientConfig {
	t.Helper()
	cc, err := b.NewClientConfig(cfg)
	if err != nil {
		t.Fatalf("%s: NewClientConfig: %v", b.Name(), err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// roundTrip writes msg and reads it back from an echoing server.
func roundTrip(c tlsbackend.Conn, msg string) error {
	if _, err := io.WriteString(c, msg); err != nil {
		return err
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != msg {
		return errors.New("echo mismatch: " + string(buf))
	}
	return nil
}

// errRawEOF replaces a socket's io.EOF, so that a TLS conn's io.EOF can only
// come from the peer's close_notify.
var errRawEOF = errors.New("socket EOF (no close_notify seen)")

type noEOF struct{ net.Conn }

func (c noEOF) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err == io.EOF {
		err = errRawEOF
	}
	return n, err
}

var noDeadline time.Time
