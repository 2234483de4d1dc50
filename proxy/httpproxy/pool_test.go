package httpproxy

import (
	"bufio"
	"fmt"
	"net"
	"sync"
	"testing"
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
