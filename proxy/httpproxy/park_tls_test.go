package httpproxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/monolake-go/monolake/proxy/netio"
	"github.com/monolake-go/monolake/proxy/server"
	"github.com/monolake-go/monolake/proxy/tlsproxy"
	"github.com/monolake-go/monolake/tlsbackend"
	"github.com/monolake-go/monolake/tlsbackend/tlstest"
)

// parkTLSServer is parkServer behind a TLS layer of the named backend.
func parkTLSServer(t *testing.T, backend string, keepAlive, parkAfter time.Duration) (*server.Server, string) {
	t.Helper()
	ca, err := tlstest.NewCA("park test CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Leaf(tlstest.LeafOptions{}, "park.test")
	if err != nil {
		t.Fatal(err)
	}
	b, err := tlsbackend.Get(backend)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := b.NewServerConfig(&tlsbackend.Config{Certificates: []tlsbackend.Certificate{leaf.Certificate()}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := ServerConfig{KeepAliveTimeout: keepAlive, ParkAfter: parkAfter, TLS: true}
	return parkServerUnder(t, cfg, tlsproxy.Layer(sc, 0, slog.New(slog.DiscardHandler)))
}

func dialParkTLS(t *testing.T, addr string) *parkClient {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, ServerName: "park.test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &parkClient{t: t, c: c, br: bufio.NewReader(c)}
}

// goroutinesIn counts the goroutines with fn on their stack.
func goroutinesIn(fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return bytes.Count(buf[:n], []byte(fn))
		}
		buf = make([]byte, 2*len(buf))
	}
}

// TestParkedTLSConnections: TLS keep-alive connections park as plain ones
// do (the TLS layer lets the HTTP server detach its conn): after ParkAfter
// no goroutine serves them, on the io_uring runtime with OpenSSL none
// waits for them either, and each resumes for its next requests, single
// and pipelined; the keep-alive timeout, a graceful stop and a forced
// close end a parked one.
func TestParkedTLSConnections(t *testing.T) {
	for _, backend := range tlsbackend.Available() {
		t.Run(backend, func(t *testing.T) {
			_, addr := parkTLSServer(t, backend, 10*time.Second, 20*time.Millisecond)
			const n = 20
			ps := make([]*parkClient, n)
			for i := range ps {
				ps[i] = dialParkTLS(t, addr)
				ps[i].send("/x")
				ps[i].expect("/x")
			}
			time.Sleep(200 * time.Millisecond)
			if got := goroutinesIn("httpproxy.(*Server).serve("); got > n/5 {
				t.Errorf("%d idle TLS connections: %d goroutines still serve them, want about none (parked)", n, got)
			}
			if testDriver(t).Name() == netio.RuntimeIOUring && backend == "openssl" {
				if got := goroutinesIn("httpproxy.(*Server).resume("); got > n/5 {
					t.Errorf("%d parked OpenSSL connections on io_uring: %d goroutines wait for them, want about none", n, got)
				}
			}
			for i, p := range ps {
				if i%2 == 0 {
					p.send("/y")
					p.expect("/y")
				} else {
					p.send("/y", "/z")
					p.expect("/y")
					p.expect("/z")
				}
			}
			time.Sleep(100 * time.Millisecond) // parked again
			ps[0].send("/again")
			ps[0].expect("/again")
		})
		t.Run(backend+"/stop", func(t *testing.T) {
			stopParked(t, func() (*server.Server, string) {
				return parkTLSServer(t, backend, time.Minute, 20*time.Millisecond)
			}, dialParkTLS)
		})
		t.Run(backend+"/keepalive", func(t *testing.T) {
			_, addr := parkTLSServer(t, backend, 400*time.Millisecond, 50*time.Millisecond)
			dialParkTLS(t, addr).keepAliveEnds()
		})
	}
}
