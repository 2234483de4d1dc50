package httpproxy

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/monolake-go/monolake/proxy/netio"
	"github.com/monolake-go/monolake/proxy/server"
)

// parkServer serves a handler that echoes the request path, with the given
// keep-alive and park timeouts, on the test runtime's driver.
func parkServer(t *testing.T, keepAlive, parkAfter time.Duration) (*server.Server, string) {
	t.Helper()
	return parkServerUnder(t, ServerConfig{KeepAliveTimeout: keepAlive, ParkAfter: parkAfter}, nil)
}

// parkServerUnder is parkServer with cfg, behind layer when not nil.
func parkServerUnder(t *testing.T, cfg ServerConfig, layer func(server.ConnService) server.ConnService) (*server.Server, string) {
	t.Helper()
	h := HandlerService(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "path="+r.URL.Path)
	}))
	var svc server.ConnService = NewServer(cfg, h, slog.New(slog.DiscardHandler))
	if layer != nil {
		svc = layer(svc)
	}
	srv := server.New(svc, nil)
	ln, err := testDriver(t).Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return srv, ln.Addr().String()
}

type parkClient struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialPark(t *testing.T, addr string) *parkClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &parkClient{t: t, c: c, br: bufio.NewReader(c)}
}

func (p *parkClient) send(paths ...string) {
	p.t.Helper()
	var b strings.Builder
	for _, path := range paths {
		b.WriteString("GET " + path + " HTTP/1.1\r\nHost: park.test\r\n\r\n")
	}
	if _, err := io.WriteString(p.c, b.String()); err != nil {
		p.t.Fatal(err)
	}
}

func (p *parkClient) expect(path string) {
	p.t.Helper()
	resp, err := http.ReadResponse(p.br, nil)
	if err != nil {
		p.t.Fatalf("reading the response for %s: %v", path, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || string(body) != "path="+path {
		p.t.Fatalf("response for %s: %d %q %v", path, resp.StatusCode, body, err)
	}
}

// closedWithin waits for the server to close the connection and returns
// how long that took from start.
func (p *parkClient) closedWithin(start time.Time) time.Duration {
	p.t.Helper()
	if _, err := p.br.ReadByte(); err != io.EOF {
		p.t.Fatalf("want EOF from the server, got %v", err)
	}
	return time.Since(start)
}

// TestParkedConnectionResumes: a connection idle past ParkAfter is parked
// and serves its next requests, single and pipelined, as before.
func TestParkedConnectionResumes(t *testing.T) {
	_, addr := parkServer(t, 10*time.Second, 20*time.Millisecond)
	p := dialPark(t, addr)
	p.send("/one")
	p.expect("/one")
	for i, paths := range [][]string{{"/two"}, {"/three", "/four", "/five"}} {
		time.Sleep(100 * time.Millisecond) // parked by now
		p.send(paths...)
		for _, path := range paths {
			p.expect(path)
		}
		if i == 0 {
			// The request head in pieces: the first byte wakes the
			// connection, the rest arrives later.
			time.Sleep(100 * time.Millisecond)
			io.WriteString(p.c, "G")
			time.Sleep(30 * time.Millisecond)
			io.WriteString(p.c, "ET /split HTTP/1.1\r\nHost: park.test\r\n\r\n")
			p.expect("/split")
		}
	}
}

// TestParkedConnectionsHoldNoGoroutine: on the io_uring runtime a parked
// connection waits with no goroutine at all; elsewhere each keeps one.
func TestParkedConnectionsHoldNoGoroutine(t *testing.T) {
	_, addr := parkServer(t, 10*time.Second, 20*time.Millisecond)
	const n = 50
	ps := make([]*parkClient, n)
	before := runtime.NumGoroutine()
	for i := range ps {
		ps[i] = dialPark(t, addr)
		ps[i].send("/x")
		ps[i].expect("/x")
	}
	time.Sleep(200 * time.Millisecond)
	grown := runtime.NumGoroutine() - before
	ring := testDriver(t).Name() == netio.RuntimeIOUring
	switch {
	case ring && grown > n/5:
		t.Errorf("%d parked connections on io_uring hold %d goroutines, want about none", n, grown)
	case !ring && grown > n+n/5:
		t.Errorf("%d parked connections hold %d goroutines, want one each", n, grown)
	}
	for _, p := range ps {
		p.send("/y")
		p.expect("/y")
	}
}

// TestParkedKeepAliveTimeout: the keep-alive timeout still closes a parked
// connection, counted from when it went idle.
func TestParkedKeepAliveTimeout(t *testing.T) {
	_, addr := parkServer(t, 400*time.Millisecond, 50*time.Millisecond)
	dialPark(t, addr).keepAliveEnds()
}

// keepAliveEnds makes one request and checks that the server then closes
// the connection after about its keep-alive, 400ms.
func (p *parkClient) keepAliveEnds() {
	p.t.Helper()
	p.send("/a")
	p.expect("/a")
	start := time.Now()
	if d := p.closedWithin(start); d < 300*time.Millisecond || d > 3*time.Second {
		p.t.Fatalf("closed after %v, want about the 400ms keep-alive", d)
	}
}

// TestParkedDrainAndClose: a graceful stop closes parked connections at
// once and returns; a forced close closes them too.
func TestParkedDrainAndClose(t *testing.T) {
	stopParked(t, func() (*server.Server, string) { return parkServer(t, time.Minute, 20*time.Millisecond) }, dialPark)
}

// stopParked parks a connection on a server from start and stops the
// server, gracefully and then (a new one) forced: the parked connection
// must be closed at once and the server drained.
func stopParked(t *testing.T, start func() (*server.Server, string), dial func(*testing.T, string) *parkClient) {
	t.Helper()
	for _, forced := range []bool{false, true} {
		srv, addr := start()
		p := dial(t, addr)
		p.send("/a")
		p.expect("/a")
		time.Sleep(100 * time.Millisecond)
		begin := time.Now()
		if forced {
			srv.Close()
		} else {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := srv.Shutdown(ctx); err != nil {
				t.Fatalf("shutdown with a parked connection: %v", err)
			}
			cancel()
		}
		if d := p.closedWithin(begin); d > 2*time.Second {
			t.Fatalf("forced=%v: parked connection closed after %v", forced, d)
		}
		select {
		case <-srv.Drained():
		case <-time.After(5 * time.Second):
			t.Fatalf("forced=%v: server not drained", forced)
		}
	}
}

// TestParkConfig: the config's server_keepalive_park_ms reaches the server
// (-1: never park), and the default is ParkAfter's.
func TestParkConfig(t *testing.T) {
	up := rawUpstream(t, func(c net.Conn) { c.Close() })
	for _, tt := range []struct {
		extra string
		want  time.Duration
	}{{"", 200 * time.Millisecond}, {"timeout = { server_keepalive_park_ms = 50 }", 50 * time.Millisecond}, {"timeout = { server_keepalive_park_ms = -1 }", -1}} {
		p := startProxy(t, serverTOML(tt.extra, routeTOML("/{*p}", "", up)), Options{Log: slog.New(slog.DiscardHandler)})
		if got := p.Srv.cfg.ParkAfter; got != tt.want {
			t.Errorf("%q: ParkAfter %v, want %v", tt.extra, got, tt.want)
		}
	}
}

// TestHeadSplitAcrossIdleDeadline: a request head whose first part comes
// before the idle (park) deadline and the rest after it is read whole with
// the header timeout, on a new connection and between keep-alive
// requests; it got 408.
func TestHeadSplitAcrossIdleDeadline(t *testing.T) {
	addr := rawRequests(t, func(c net.Conn, r *http.Request, body []byte) {
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	p := startProxy(t, serverTOML("", routeTOML("/{*p}", "", addr)), Options{})
	for _, first := range []bool{true, false} {
		c := dialRaw(t, p.Addr)
		if !first {
			c.send(t, "GET /0 HTTP/1.1\r\nHost: a\r\n\r\n")
			c.response(t, "GET")
		}
		c.send(t, "GET /1 HTTP/1.1\r\n")
		time.Sleep(300 * time.Millisecond) // past the default park_after (200 ms)
		c.send(t, "Host: a\r\n\r\n")
		if resp, body := c.response(t, "GET"); resp.StatusCode != 200 || string(body) != "ok" {
			t.Fatalf("first request %v: %d %q, want 200 \"ok\"", first, resp.StatusCode, body)
		}
	}
}
