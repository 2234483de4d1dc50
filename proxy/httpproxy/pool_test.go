package httpproxy

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/monolake-go/monolake/proxy/config"
)

// TestPoolReuse: sequential requests, even from different client
// connections, share one upstream connection.
func TestPoolReuse(t *testing.T) {
	up := newEchoUpstream(t, "up")
	p := startProxy(t, serverTOML("", routeTOML("/{*p}", "", up.addr())), Options{})
	c := client(t)
	for i := range 50 {
		resp, body := do(t, c, "GET", fmt.Sprintf("http://%s/r%d", p.Addr, i), "", nil, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
	}
	for range 5 {
		raw := dialRaw(t, p.Addr)
		raw.send(t, "GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
		if resp, _ := raw.response(t, "GET"); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if n := up.conns.Load(); n != 1 {
		t.Fatalf("upstream saw %d connections, want 1", n)
	}
}

// TestStaleConnection: upstreams that close idle keep-alive connections,
// at once or when the next request arrives, never cost the client a 502,
// and no request is lost on a closed connection.
func TestStaleConnection(t *testing.T) {
	for _, tc := range []struct {
		name string
		// serve answers the first request on a connection, then closes
		// it, either at once or after reading the next request.
		readNext bool
	}{
		{"closed after response", false},
		{"closed on next request", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			perConn := []int{}
			addr := rawUpstream(t, func(c net.Conn) {
				mu.Lock()
				i := len(perConn)
				perConn = append(perConn, 0)
				mu.Unlock()
				br := bufio.NewReader(c)
				if _, _, err := readRequest(br); err != nil {
					return
				}
				mu.Lock()
				perConn[i]++
				mu.Unlock()
				// A keep-alive response, then the upstream changes its mind.
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				if tc.readNext {
					readRequest(br) // seen but never answered
				}
			})
			p := startProxy(t, serverTOML("", routeTOML("/{*p}", "", addr)), Options{})
			c := client(t)
			for i := range 20 {
				resp, body := do(t, c, "GET", fmt.Sprintf("http://%s/r%d", p.Addr, i), "", nil, nil)
				if resp.StatusCode != 200 || string(body) != "ok" {
					t.Fatalf("request %d: status %d: %q", i, resp.StatusCode, body)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			for i, n := range perConn {
				if n > 1 {
					t.Fatalf("upstream connection %d answered %d requests", i, n)
				}
			}
			if len(p.Logs.Lines()) != 0 {
				t.Fatalf("logged: %q", p.Logs.Lines())
			}
		})
	}
}

// TestNoRetryNonIdempotent: a POST whose connection the upstream closes
// after reading it is not sent again (the upstream may have acted on it);
// a GET in the same position is retried.
func TestNoRetryNonIdempotent(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	addr := rawUpstream(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if r, _, err := readRequest(br); err == nil {
			mu.Lock()
			seen[r.Method+" "+r.URL.Path]++
			mu.Unlock()
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
		if r, _, err := readRequest(br); err == nil { // read, then closed unanswered
			mu.Lock()
			seen[r.Method+" "+r.URL.Path]++
			mu.Unlock()
		}
	})
	p := startProxy(t, serverTOML("", routeTOML("/{*p}", "", addr)), Options{})
	c := client(t)
	if resp, _ := do(t, c, "GET", "http://"+p.Addr+"/first", "", nil, nil); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if resp, _ := do(t, c, "POST", "http://"+p.Addr+"/post", "", nil, nil); resp.StatusCode != 502 {
		t.Fatalf("POST status %d, want 502", resp.StatusCode)
	}
	if resp, _ := do(t, c, "GET", "http://"+p.Addr+"/again", "", nil, nil); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if resp, _ := do(t, c, "GET", "http://"+p.Addr+"/retried", "", nil, nil); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	mu.Lock()
	defer mu.Unlock()
	if seen["POST /post"] != 1 || seen["GET /retried"] != 2 {
		t.Fatalf("upstream saw %v", seen)
	}
}

// TestNoRetryAfterInterim: a pooled connection the upstream closes after
// an interim response (103) had the request: a GET is not sent again on
// another, as it is when the connection closes before any byte of the
// response.
func TestNoRetryAfterInterim(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	addr := rawUpstream(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for first := true; ; first = false {
			r, _, err := readRequest(br)
			if err != nil {
				return
			}
			mu.Lock()
			seen[r.URL.Path]++
			mu.Unlock()
			if first {
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				continue
			}
			fmt.Fprintf(c, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n")
			return // closed after the interim response
		}
	})
	p := startProxy(t, serverTOML("", routeTOML("/{*p}", "", addr)), Options{})
	c := client(t)
	if resp, _ := do(t, c, "GET", "http://"+p.Addr+"/first", "", nil, nil); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if resp, _ := do(t, c, "GET", "http://"+p.Addr+"/hinted", "", nil, nil); resp.StatusCode != 502 {
		t.Fatalf("status %d, want 502", resp.StatusCode)
	}
	mu.Lock()
	defer mu.Unlock()
	if seen["/hinted"] != 1 {
		t.Fatalf("the upstream got the request %d times, want once: %v", seen["/hinted"], seen)
	}
}

// closingUpstream answers one request per connection with a keep-alive
// response, then closes the connection after a while; it counts the
// connections it accepted.
func closingUpstream(t *testing.T, answerAfter, closeAfter time.Duration) (string, *atomic.Int32) {
	var conns atomic.Int32
	addr := rawUpstream(t, func(c net.Conn) {
		conns.Add(1)
		if _, _, err := readRequest(bufio.NewReader(c)); err != nil {
			return
		}
		time.Sleep(answerAfter)
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		time.Sleep(closeAfter)
	})
	return addr, &conns
}

// TestStalePooledPost: a request that cannot be retried (a POST with a
// body) does not go out on a pooled connection the upstream has closed
// meanwhile, on either runtime (the io_uring driver's connections cannot
// be peeked at: they say whether the peer ended the stream).
func TestStalePooledPost(t *testing.T) {
	addr, conns := closingUpstream(t, 0, 20*time.Millisecond)
	p := startProxy(t, serverTOML("", routeTOML("/{*p}", "", addr)), Options{})
	c := client(t)
	if resp, body := do(t, c, "GET", "http://"+p.Addr+"/first", "", nil, nil); resp.StatusCode != 200 {
		t.Fatalf("GET: %d %q", resp.StatusCode, body)
	}
	time.Sleep(300 * time.Millisecond) // the upstream closed it; the pool's entry is old enough to be checked
	resp, body := do(t, c, "POST", "http://"+p.Addr+"/post", "", nil, strings.NewReader("payload"))
	if resp.StatusCode != 200 {
		t.Fatalf("POST after the upstream closed the pooled connection: %d %q", resp.StatusCode, body)
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("upstream saw %d connections, want 2", n)
	}
}

// TestRetryOnFreshConnection: when the upstream dropped several pooled
// connections at once (a restart), the retry of a request lost on one goes
// out on a new connection, not on the next stale one.
func TestRetryOnFreshConnection(t *testing.T) {
	addr, conns := closingUpstream(t, 100*time.Millisecond, 10*time.Millisecond)
	p := startProxy(t, serverTOML("", routeTOML("/{*p}", "", addr)), Options{})
	// Two requests at once: two upstream connections, pooled together.
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			raw := dialRaw(t, p.Addr)
			raw.send(t, fmt.Sprintf("GET /warm%d HTTP/1.1\r\nHost: a\r\n\r\n", i))
			if resp, _ := raw.response(t, "GET"); resp.StatusCode != 200 {
				t.Errorf("warm-up status %d", resp.StatusCode)
			}
		}()
	}
	wg.Wait()
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d upstream connections after two concurrent requests, want 2", n)
	}
	time.Sleep(40 * time.Millisecond) // both closed by the upstream, still fresh in the pool
	raw := dialRaw(t, p.Addr)
	raw.send(t, "GET /after HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, body := raw.response(t, "GET"); resp.StatusCode != 200 {
		t.Fatalf("GET after the upstream dropped its connections: %d %q", resp.StatusCode, body)
	}
}

// TestFailover: a connect refused by one of a route's upstreams sends the
// request to another (nothing was sent), so no client sees the dead one.
func TestFailover(t *testing.T) {
	dead, dead2 := refusedAddr(t), refusedAddr(t)
	up := newEchoUpstream(t, "up")
	for _, lb := range []string{"round_robin", "random", "least_conn", "first"} {
		// Two of three upstreams down: every request reaches the live one,
		// trying the others first as they come.
		route := fmt.Sprintf("[[servers.p.routes]]\npath = \"/{*p}\"\nload_balancer = %q\nupstreams = [{ endpoint = { type = \"socket\", value = %q } }, { endpoint = { type = \"socket\", value = %q } }, { endpoint = { type = \"socket\", value = %q } }]\n", lb, dead, dead2, up.addr())
		p := startProxy(t, serverTOML("", route), Options{})
		c := client(t)
		for i := range 40 {
			if resp, body := do(t, c, "POST", fmt.Sprintf("http://%s/r%d", p.Addr, i), "", nil, strings.NewReader("x")); resp.StatusCode != 200 {
				t.Fatalf("%s: request %d: %d %q", lb, i, resp.StatusCode, body)
			}
		}
	}
}

// TestUpstreamKeepaliveConfig: upstream_keepalive_timeout_sec ends pooled
// connections idle longer (for an upstream whose own keep-alive is
// shorter than the pool's default minute), and upstream_keepalive caps
// the idle connections kept.
func TestUpstreamKeepaliveConfig(t *testing.T) {
	up := newEchoUpstream(t, "up")
	p := startProxy(t, serverTOML("timeout = { upstream_keepalive_timeout_sec = 1 }", routeTOML("/{*p}", "", up.addr())), Options{})
	c := client(t)
	do(t, c, "GET", "http://"+p.Addr+"/a", "", nil, nil)
	do(t, c, "GET", "http://"+p.Addr+"/b", "", nil, nil)
	if n := up.conns.Load(); n != 1 {
		t.Fatalf("%d upstream connections for two requests in a row, want 1", n)
	}
	time.Sleep(1200 * time.Millisecond)
	do(t, c, "GET", "http://"+p.Addr+"/c", "", nil, nil)
	if n := up.conns.Load(); n != 2 {
		t.Fatalf("%d upstream connections after the pool's idle timeout, want 2 (a new one)", n)
	}

	s := parseServer(t, serverTOML("upstream_keepalive = 3\ntimeout = { upstream_keepalive_timeout_sec = 7 }", routeTOML("/", "", up.addr())))
	if s.UpstreamKeepalive != 3 || s.Timeout.UpstreamKeepalive != 7*time.Second {
		t.Fatalf("upstream_keepalive %d, timeout %v", s.UpstreamKeepalive, s.Timeout.UpstreamKeepalive)
	}
	if _, err := config.Parse("t.toml", []byte(serverTOML("upstream_keepalive = 0", routeTOML("/", "", up.addr())))); err == nil || !strings.Contains(err.Error(), "want 1 to 65536") {
		t.Fatalf("upstream_keepalive = 0: %v", err)
	}
}
