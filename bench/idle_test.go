package bench

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"
)

func TestParseVmRSS(t *testing.T) {
	kb, err := ParseVmRSS([]byte("Name:\tnginx\nVmPeak:\t  20000 kB\nVmRSS:\t   12345 kB\nThreads:\t1\n"))
	if err != nil || kb != 12345 {
		t.Fatalf("got %d, %v", kb, err)
	}
	for _, bad := range []string{"Name:\tkthreadd\n", "VmRSS:\t12 MB\n", "VmRSS:\tx kB\n"} {
		if _, err := ParseVmRSS([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	rss, err := TreeRSS(os.Getpid())
	if err != nil || rss < 1<<20 {
		t.Fatalf("this process's RSS: %d, %v", rss, err)
	}
}

// TestOpenIdle: connections that made their request stay open and are seen
// alive; closed by the server, they are seen closed.
func TestOpenIdle(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	set, err := OpenIdle(context.Background(), srv.Listener.Addr().String(), "/0", 40, 8, nil)
	if err != nil || set.Len() != 40 {
		t.Fatalf("opened %d of 40: %v", set.Len(), err)
	}
	defer set.Close()
	if closed := set.Alive(); closed != 0 {
		t.Fatalf("%d connections closed, want none", closed)
	}
	srv.CloseClientConnections()
	if closed := set.Alive(); closed != 40 {
		t.Fatalf("%d of 40 connections seen closed after the server closed them", closed)
	}
	if _, err := OpenIdle(context.Background(), "127.0.0.1:1", "/0", 3, 2, nil); err == nil {
		t.Fatal("no error from a refused address")
	}
}

// TestOpenIdleTLS: over TLS each connection makes a full handshake (TLS 1.3,
// X25519, the server's certificate verified) and its request, and stays
// open; a server with a certificate the roots do not know is refused.
func TestOpenIdleTLS(t *testing.T) {
	var handshakes atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || r.TLS.Version != tls.VersionTLS13 || r.TLS.DidResume {
			http.Error(w, "want a full TLS 1.3 handshake", http.StatusBadRequest)
			return
		}
		io.WriteString(w, "ok")
	}))
	srv.TLS = &tls.Config{
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			handshakes.Add(1)
			if len(hello.SupportedCurves) != 1 || hello.SupportedCurves[0] != tls.X25519 {
				return nil, errors.New("want X25519 alone")
			}
			return nil, nil
		},
	}
	srv.StartTLS()
	defer srv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	set, err := OpenIdle(context.Background(), srv.Listener.Addr().String(), "/0", 20, 4, IdleTLSConfig(roots))
	if err != nil || set.Len() != 20 {
		t.Fatalf("opened %d of 20: %v", set.Len(), err)
	}
	defer set.Close()
	if n := handshakes.Load(); n != 20 {
		t.Fatalf("%d handshakes for 20 connections", n)
	}
	if closed := set.Alive(); closed != 0 {
		t.Fatalf("%d TLS connections closed, want none", closed)
	}
	if _, err := OpenIdle(context.Background(), srv.Listener.Addr().String(), "/0", 2, 2, IdleTLSConfig(x509.NewCertPool())); err == nil {
		t.Fatal("no error from a server the roots do not know")
	}
}

// TestIdleTargetProbe checks what a failed probe on the idle case is: an
// error for nginx, the comparison's base; a failed result, counted, for a
// Monolake target; never a row of the main table.
func TestIdleTargetProbe(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "no", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	c := Case{Proto: ProtoHTTP1, Conns: 10, Body: "0"}
	var r Runner

	nginx := &live{name: TargetNginx, plain: addr, probed: map[probeKey]string{}}
	if _, err := r.idleTarget(context.Background(), nginx, c, 10); err == nil {
		t.Error("nginx failing the idle probe: no error")
	}

	ours := &live{name: "monolake/epoll", plain: addr, probed: map[probeKey]string{}}
	res, err := r.idleTarget(context.Background(), ours, c, 10)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != StatusFailed || res.Target != ours.name || res.Mode != ModeHTTP || res.Detail == "" {
		t.Errorf("Monolake failing the idle probe: %+v, want a failed http result saying why", res)
	}
	r.idleResult(res)
	r.idleResult(IdleResult{Target: "monolake/uring", Status: StatusUnsupported})
	r.idleResult(IdleResult{Target: TargetNginx, Status: StatusOK})
	if r.Failures != 1 {
		t.Errorf("Failures = %d after a failed, an unsupported and a good idle result; want 1", r.Failures)
	}
	if len(r.Known()) != 0 {
		t.Errorf("idle results in the main table: %+v", r.Known())
	}
}
