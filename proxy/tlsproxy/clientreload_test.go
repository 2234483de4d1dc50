package tlsproxy_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"
	"time"

	"github.com/monolake-go/monolake/proxy/tlsproxy"
	"github.com/monolake-go/monolake/tlsbackend"
	"github.com/monolake-go/monolake/tlsbackend/tlstest"
)

// TestClientConfigReload: a ClientReloader presents the client certificate
// its files hold now: a renewed pair is used for new connections once it
// is written; an expired one, or files that do not load, leave the pair in
// service; a valid one after them is taken. For each backend.
func TestClientConfigReload(t *testing.T) {
	ca, server := proxyTestLeaf(t)
	pair, err := tls.X509KeyPair(server.CertPEM, server.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	// The origin requires a client certificate and reports its name.
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	seen := make(chan string, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			name := "refused"
			tc := c.(*tls.Conn)
			if tc.Handshake() == nil {
				name = tc.ConnectionState().PeerCertificates[0].Subject.CommonName
			}
			seen <- name
			c.Close()
		}
	}()
	dir := t.TempDir()
	caFile, _ := tlstest.WriteFile(dir, "ca.pem", ca.CertPEM)
	certFile, keyFile := dir+"/client.pem", dir+"/client-key.pem"
	install := func(name string, opts tlstest.LeafOptions) {
		t.Helper()
		opts.Client = true
		l, err := ca.Leaf(opts, name)
		if err != nil {
			t.Fatal(err)
		}
		writePair(t, certFile, keyFile, l)
	}
	for _, backend := range backends(t) {
		t.Run("backend="+backend, func(t *testing.T) {
			b, err := tlsbackend.Get(backend)
			if err != nil {
				t.Fatal(err)
			}
			install("first", tlstest.LeafOptions{})
			r, err := tlsproxy.WatchClientConfig(b, &tlsbackend.Config{RootCAFile: caFile,
				Certificates: []tlsbackend.Certificate{{CertFile: certFile, KeyFile: keyFile}}}, 20*time.Millisecond, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			presented := func() string {
				t.Helper()
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				tc := r.Client(c, "proxy.test")
				defer tc.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				tc.Handshake(ctx)     // a refusal shows at the origin
				tc.Write([]byte("x")) // TLS 1.3: the origin verifies after the client's Finished
				select {
				case name := <-seen:
					return name
				case <-time.After(5 * time.Second):
					t.Fatal("the origin saw no handshake")
					return ""
				}
			}
			if got := presented(); got != "first" {
				t.Fatalf("presented %q, want first", got)
			}
			install("second", tlstest.LeafOptions{})
			waitFor(t, "the reload", func() bool { return r.Reloads() == 1 })
			if got := presented(); got != "second" {
				t.Fatalf("after the reload: presented %q, want second", got)
			}
			install("expired", tlstest.LeafOptions{Expired: true})
			time.Sleep(200 * time.Millisecond) // ten polls
			if n, got := r.Reloads(), presented(); n != 1 || got != "second" {
				t.Fatalf("after an expired pair: %d reloads, presented %q; want 1 and second", n, got)
			}
			install("third", tlstest.LeafOptions{})
			waitFor(t, "the next reload", func() bool { return r.Reloads() == 2 })
			if got := presented(); got != "third" {
				t.Fatalf("after the next reload: presented %q, want third", got)
			}
		})
	}
}
