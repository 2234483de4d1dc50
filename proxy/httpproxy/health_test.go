package httpproxy

import (
	"bufio"
	"fmt"
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
