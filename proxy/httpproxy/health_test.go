package httpproxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// resettingUpstream reads a request head on each connection it accepts and
// resets the connection without answering; it counts the connections.
func resettingUpstream(t *testing.T) (string, *atomic.Int64) {
	var n atomic.Int64
	addr := rawUpstream(t, func(c net.Conn) {
		n.Add(1)
		http.ReadRequest(bufio.NewReader(c))
		c.(*net.TCPConn).SetLinger(0)
	})
	return addr, &n
}

// TestNextUpstreamAfterConnect: a GET whose upstream resets it before any
// response byte goes on to the route's next upstream (nothing reached the
// client; an idempotent request may go again), as nginx's
// proxy_next_upstream error does; a POST with a body does not.
func TestNextUpstreamAfterConnect(t *testing.T) {
	bad, _ := resettingUpstream(t)
	up := newEchoUpstream(t, "up")
	route := fmt.Sprintf("[[servers.p.routes]]\npath = \"/{*p}\"\nload_balancer = \"round_robin\"\nmax_fails = 0\n"+
		"upstreams = [{ endpoint = { type = \"socket\", value = %q } }, { endpoint = { type = \"socket\", value = %q } }]\n", bad, up.addr())
	p := startProxy(t, serverTOML("", route), Options{})
	c := client(t)
	for i := range 6 {
		if resp, body := do(t, c, "GET", fmt.Sprintf("http://%s/g%d", p.Addr, i), "", nil, nil); resp.StatusCode != 200 {
			t.Fatalf("GET %d: %d %q", i, resp.StatusCode, body)
		}
	}
	failed := 0
	for i := range 6 {
		resp, _ := do(t, c, "POST", fmt.Sprintf("http://%s/p%d", p.Addr, i), "", nil, strings.NewReader("x"))
		if resp.StatusCode == 502 {
			failed++
		} else if resp.StatusCode != 200 {
			t.Fatalf("POST %d: %d", i, resp.StatusCode)
		}
	}
	if failed != 3 {
		t.Fatalf("%d of 6 POSTs failed, want 3: a POST that reached the resetting upstream must not go again", failed)
	}
}

// TestPassiveHealth: with max_fails, an upstream that failed leaves the
// choice for fail_timeout_sec; a route whose upstreams are all down still
// tries them.
func TestPassiveHealth(t *testing.T) {
	for _, lb := range []string{"round_robin", "random", "least_conn", "first", "weighted_random"} {
		t.Run(lb, func(t *testing.T) {
			bad, hits := resettingUpstream(t)
			up := newEchoUpstream(t, "up")
			route := fmt.Sprintf("[[servers.p.routes]]\npath = \"/{*p}\"\nload_balancer = %q\nmax_fails = 1\nfail_timeout_sec = 60\n"+
				"upstreams = [{ endpoint = { type = \"socket\", value = %q } }, { endpoint = { type = \"socket\", value = %q } }]\n", lb, bad, up.addr())
			p := startProxy(t, serverTOML("", route), Options{})
			c := client(t)
			for i := range 20 {
				if resp, body := do(t, c, "GET", fmt.Sprintf("http://%s/g%d", p.Addr, i), "", nil, nil); resp.StatusCode != 200 {
					t.Fatalf("GET %d: %d %q", i, resp.StatusCode, body)
				}
			}
			if n := hits.Load(); n != 1 {
				t.Fatalf("the failing upstream got %d connections in 20 requests, want 1 (then marked down)", n)
			}
			if l := p.Logs.Lines(); !strings.Contains(strings.Join(l, "\n"), "upstream marked down") {
				t.Fatalf("no log line marks the upstream down:\n%s", strings.Join(l, "\n"))
			}
		})
	}
	// Both down: tried anyway, not refused unheard.
	bad, hits := resettingUpstream(t)
	bad2, hits2 := resettingUpstream(t)
	route := fmt.Sprintf("[[servers.p.routes]]\npath = \"/{*p}\"\nload_balancer = \"round_robin\"\n"+
		"upstreams = [{ endpoint = { type = \"socket\", value = %q } }, { endpoint = { type = \"socket\", value = %q } }]\n", bad, bad2)
	p := startProxy(t, serverTOML("", route), Options{})
	c := client(t)
	for i := range 4 {
		if resp, _ := do(t, c, "GET", fmt.Sprintf("http://%s/g%d", p.Addr, i), "", nil, nil); resp.StatusCode != 502 {
			t.Fatalf("GET %d to two failing upstreams: %d, want 502", i, resp.StatusCode)
		}
	}
	if hits.Load()+hits2.Load() < 4 {
		t.Fatalf("upstreams all down got %d+%d connections in 4 requests: they must still be tried", hits.Load(), hits2.Load())
	}
}

// TestStalePooledNotCounted: a pooled connection the upstream closes as
// the next request arrives (its keep-alive timer ran out just then) does
// not count as the upstream's failure: the GET goes again on a new
// connection, the POST fails, and the upstream stays in the choice.
func TestStalePooledNotCounted(t *testing.T) {
	for _, method := range []string{"GET", "POST"} {
		t.Run(method, func(t *testing.T) {
			var answered atomic.Int64
			a := rawUpstream(t, func(c net.Conn) {
				br := bufio.NewReader(c)
				if _, _, err := readRequest(br); err != nil {
					return
				}
				answered.Add(1)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				br.Peek(1) // the next request comes: reset
				c.(*net.TCPConn).SetLinger(0)
			})
			b := newEchoUpstream(t, "b")
			route := fmt.Sprintf("[[servers.p.routes]]\npath = \"/{*p}\"\nload_balancer = \"round_robin\"\nmax_fails = 1\nfail_timeout_sec = 60\n"+
				"upstreams = [{ endpoint = { type = \"socket\", value = %q } }, { endpoint = { type = \"socket\", value = %q } }]\n", a, b.addr())
			p := startProxy(t, serverTOML("", route), Options{})
			c := client(t)
			do(t, c, "GET", "http://"+p.Addr+"/1", "", nil, nil) // a, pooled
			do(t, c, "GET", "http://"+p.Addr+"/2", "", nil, nil) // b
			var body io.Reader
			want := 200
			if method == "POST" {
				body, want = strings.NewReader("x"), 502
			}
			if resp, _ := do(t, c, method, "http://"+p.Addr+"/3", "", nil, body); resp.StatusCode != want {
				t.Fatalf("%s on a's stale pooled connection: %d, want %d", method, resp.StatusCode, want)
			}
			before := answered.Load()
			for i := range 10 {
				do(t, c, "GET", fmt.Sprintf("http://%s/x%d", p.Addr, i), "", nil, nil)
			}
			if n := answered.Load() - before; n < 4 {
				t.Errorf("a answered %d of the next 10 GETs, want 5: taken out of the choice", n)
			}
			if l := strings.Join(p.Logs.Lines(), "\n"); strings.Contains(l, "marked down") {
				t.Errorf("a stale pooled connection marked its upstream down:\n%s", l)
			}
		})
	}
}
