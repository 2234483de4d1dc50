package httpproxy

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/monolake-go/monolake/proxy/server"
	"github.com/monolake-go/monolake/proxy/upstream"
)

// slowUpstream answers each request after delay, unless the proxy closes
// the connection first; closed receives how long after the request that
// happened.
func slowUpstream(t *testing.T, delay time.Duration, arrived chan<- struct{}, closed chan<- time.Duration) (string, *atomic.Int64) {
	var conns atomic.Int64
	addr := rawUpstream(t, func(c net.Conn) {
		conns.Add(1)
		br := bufio.NewReader(c)
		for {
			r, _, err := readRequest(br)
			if err != nil {
				return
			}
			start := time.Now()
			arrived <- struct{}{}
			eof := make(chan struct{})
			if r.URL.Path != "/fast" {
				go func() {
					br.Peek(1) // returns when the proxy closes (or sends more)
					close(eof)
				}()
				select {
				case <-eof:
					closed <- time.Since(start)
					return
				case <-time.After(delay):
				}
			}
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow")
			if r.URL.Path != "/fast" {
				<-eof // Peek done: the next request (or EOF) is buffered
			}
		}
	})
	return addr, &conns
}

// waitCancelled waits for slowUpstream to see the proxy close a request's
// connection, soon after its client went away.
func waitCancelled(t *testing.T, closed <-chan time.Duration) {
	t.Helper()
	select {
	case d := <-closed:
		if d > 3*time.Second {
			t.Fatalf("upstream saw the close after %v", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("upstream request not cancelled")
	}
}

// TestClientGone: a client that disconnects while its request waits on a
// slow upstream gets the upstream request cancelled, and the upstream
// connection is closed, not pooled.
func TestClientGone(t *testing.T) {
	arrived := make(chan struct{}, 10)
	closed := make(chan time.Duration, 10)
	addr, conns := slowUpstream(t, 10*time.Second, arrived, closed)
	p := startProxy(t, serverTOML("", routeTOML("/{*p}", "", addr)), Options{})

	c := dialRaw(t, p.Addr)
	c.send(t, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	<-arrived
	time.Sleep(100 * time.Millisecond) // past the watch delay
	c.Close()
	waitCancelled(t, closed)
	pool := p.upstreamPool(t).Pool()
	if n := pool.Idle(upstream.Key{Network: "tcp", Addr: addr}); n != 0 {
		t.Fatalf("%d idle connections in the pool", n)
	}
	// The next request gets a new connection and is answered.
	resp, body := do(t, client(t), "GET", "http://"+p.Addr+"/fast", "", nil, nil)
	<-arrived
	if resp.StatusCode != 200 || string(body) != "slow" {
		t.Fatalf("status %d %q", resp.StatusCode, body)
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("upstream saw %d connections, want 2", n)
	}
	lines := p.Logs.waitLines(1)
	if len(lines) != 1 || !strings.Contains(lines[0], "status=499") {
		t.Fatalf("want one log line, got %q", lines)
	}
}

// TestClientGoneAfterHeadDeadline: the read deadline set for a request's
// head (here the park timeout, 200 ms, on a new connection) passes while
// the exchange waits; a client that leaves after that still gets its
// request cancelled (on epoll the watch parked on the client until that
// deadline, then stopped watching).
func TestClientGoneAfterHeadDeadline(t *testing.T) {
	arrived := make(chan struct{}, 10)
	closed := make(chan time.Duration, 10)
	addr, _ := slowUpstream(t, 10*time.Second, arrived, closed)
	p := startProxy(t, serverTOML("", routeTOML("/{*p}", "", addr)), Options{})
	for _, first := range []bool{true, false} {
		c := dialRaw(t, p.Addr)
		if !first {
			// A keep-alive request within the park timeout.
			c.send(t, "GET /fast HTTP/1.1\r\nHost: a\r\n\r\n")
			if resp, _ := c.response(t, "GET"); resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			<-arrived
		}
		c.send(t, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
		<-arrived
		time.Sleep(600 * time.Millisecond) // past the head's deadline
		c.Close()
		waitCancelled(t, closed)
	}
}

// TestClientGoneAfterFastOne: the watch of an upstream connection whose
// previous request was answered within the watch delay (its timer still
// set for that one) watches the next request from that request's own
// start: a client that leaves it gets it cancelled.
func TestClientGoneAfterFastOne(t *testing.T) {
	arrived := make(chan struct{}, 10)
	closed := make(chan time.Duration, 10)
	addr, conns := slowUpstream(t, 10*time.Second, arrived, closed)
	p := startProxy(t, serverTOML("", routeTOML("/{*p}", "", addr)), Options{})

	c := dialRaw(t, p.Addr)
	c.send(t, "GET /fast HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, body := c.response(t, "GET"); resp.StatusCode != 200 || string(body) != "slow" {
		t.Fatalf("status %d %q", resp.StatusCode, body)
	}
	<-arrived
	time.Sleep(30 * time.Millisecond) // within the first request's watch delay
	c.send(t, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	<-arrived
	time.Sleep(100 * time.Millisecond) // past the second one's
	c.Close()
	waitCancelled(t, closed)
	if n := conns.Load(); n != 1 {
		t.Fatalf("upstream saw %d connections, want the first one reused", n)
	}
}

// TestClientStays: a client that waits past the watch delay, and one that
// pipelines its next request meanwhile, are answered normally, in order.
func TestClientStays(t *testing.T) {
	arrived := make(chan struct{}, 10)
	closed := make(chan time.Duration, 10)
	addr, conns := slowUpstream(t, 300*time.Millisecond, arrived, closed)
	p := startProxy(t, serverTOML("", routeTOML("/{*p}", "", addr)), Options{})
	c := dialRaw(t, p.Addr)
	for i := range 2 {
		c.send(t, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
		resp, body := c.response(t, "GET")
		<-arrived
		if resp.StatusCode != 200 || string(body) != "slow" {
			t.Fatalf("request %d: status %d %q", i, resp.StatusCode, body)
		}
	}
	// Pipelined: the second request arrives while the first waits.
	c.send(t, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	<-arrived
	time.Sleep(100 * time.Millisecond)
	c.send(t, "GET /fast HTTP/1.1\r\nHost: a\r\n\r\n")
	for i := range 2 {
		resp, body := c.response(t, "GET")
		if resp.StatusCode != 200 || string(body) != "slow" {
			t.Fatalf("pipelined %d: status %d %q", i, resp.StatusCode, body)
		}
	}
	<-arrived
	select {
	case d := <-closed:
		t.Fatalf("upstream connection closed after %v", d)
	default:
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("upstream saw %d connections, want 1", n)
	}
	if lines := p.Logs.Lines(); len(lines) != 0 {
		t.Fatalf("logged %q", lines)
	}
	_ = io.EOF
}

// TestForcedClose: closing the server aborts requests waiting upstream.
func TestForcedClose(t *testing.T) {
	arrived := make(chan struct{}, 10)
	closed := make(chan time.Duration, 10)
	addr, _ := slowUpstream(t, 10*time.Second, arrived, closed)
	up := parseServer(t, serverTOML("", routeTOML("/{*p}", "", addr)))
	h, err := New(up, Options{Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	srv := server.New(h, nil)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	c := dialRaw(t, ln.Addr().String())
	c.send(t, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	<-arrived
	srv.Close()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("upstream request not aborted")
	}
	select {
	case <-srv.Drained():
	case <-time.After(5 * time.Second):
		t.Fatal("connection did not end")
	}
}

// TestUpstreamConnectionClose: a response with Connection: close is
// passed on, and its connection is not pooled.
func TestUpstreamConnectionClose(t *testing.T) {
	var conns atomic.Int64
	addr := rawUpstream(t, func(c net.Conn) {
		conns.Add(1)
		br := bufio.NewReader(c)
		if _, _, err := readRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
		io.WriteString(c, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
	})
	p := startProxy(t, serverTOML("", routeTOML("/{*p}", "", addr)), Options{})
	cl := client(t)
	for i := range 3 {
		resp, body := do(t, cl, "GET", "http://"+p.Addr+"/x", "", nil, nil)
		if resp.StatusCode != 200 || string(body) != "ok" || resp.Close {
			t.Fatalf("request %d: status %d %q close %v", i, resp.StatusCode, body, resp.Close)
		}
	}
	if n := conns.Load(); n != 3 {
		t.Fatalf("upstream saw %d connections", n)
	}
}
