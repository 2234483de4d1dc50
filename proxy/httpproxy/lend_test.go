package httpproxy

import (
	"bufio"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/monolake-go/monolake/proxy/netio"
)

// TestHeadsInPlace: on io_uring, request and response heads that arrive
// whole are parsed in the buffer the kernel received them in (counted by
// lentRequestHeads and lentResponseHeads; none on epoll), including the
// first request after a parked wait; heads that arrive in pieces,
// pipelined ones and chunked bodies past the lent buffer are served as
// well; and once the clients are gone every received buffer is back in
// the driver's ring (its own driver here, so that other tests' buffers do
// not count).
func TestHeadsInPlace(t *testing.T) {
	drv := testDriver(t)
	var ud interface{ BuffersOut() int } // *netio.Uring
	if drv.Name() != netio.RuntimeEpoll {
		d, fallback := netio.NewDriver(netio.RuntimeIOUring, netio.UringParams{})
		if fallback != "" {
			t.Fatal(fallback)
		}
		t.Cleanup(func() { d.Close() })
		drv, ud = d, d.(interface{ BuffersOut() int })
	}
	addr := rawUpstream(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			r, body, err := readRequest(br)
			if err != nil {
				return
			}
			echo := r.Method + " " + r.URL.Path + " " + string(body) + " " + r.Header.Get("X-Seq")
			head := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Up: %s\r\n\r\n", len(echo), r.URL.Path)
			if r.URL.Path == "/split" {
				// The response head in two pieces: the proxy's reader
				// cannot parse it in the first buffer.
				c.Write([]byte(head[:20]))
				time.Sleep(50 * time.Millisecond)
				c.Write([]byte(head[20:] + echo))
				continue
			}
			c.Write([]byte(head + echo))
		}
	})
	p := startProxyOn(t, drv, serverTOML("timeout = { server_keepalive_park_ms = 100 }", routeTOML("/{*p}", "", addr)), Options{})
	reqBefore, respBefore := lentRequestHeads.Load(), lentResponseHeads.Load()

	c := dialRaw(t, p.Addr)
	expect := func(method, want string) {
		t.Helper()
		resp, body := c.response(t, method)
		if resp.StatusCode != 200 || string(body) != want {
			t.Fatalf("got %d %q, want 200 %q", resp.StatusCode, body, want)
		}
	}
	// Whole.
	c.send(t, "GET /one HTTP/1.1\r\nHost: a\r\nX-Seq: 1\r\n\r\n")
	expect("GET", "GET /one  1")
	// Pipelined: the second head comes in the first's buffer.
	c.send(t, "GET /two HTTP/1.1\r\nHost: a\r\nX-Seq: 2\r\n\r\nGET /three HTTP/1.1\r\nHost: a\r\nX-Seq: 3\r\n\r\n")
	expect("GET", "GET /two  2")
	expect("GET", "GET /three  3")
	// A head in two pieces.
	c.send(t, "GET /fo")
	time.Sleep(50 * time.Millisecond)
	c.send(t, "ur HTTP/1.1\r\nHost: a\r\nX-Seq: 4\r\n\r\n")
	expect("GET", "GET /four  4")
	// A chunked body that goes on past the head's buffer: the head must
	// outlive the lent buffer's bytes (X-Seq is read after the body).
	c.send(t, "POST /five HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nX-Seq: 5\r\n\r\n5\r\nhel")
	time.Sleep(50 * time.Millisecond)
	c.send(t, "lo\r\n6\r\n world\r\n0\r\n\r\n")
	expect("POST", "POST /five hello world 5")
	// After the connection parked (100 ms).
	time.Sleep(300 * time.Millisecond)
	c.send(t, "GET /six HTTP/1.1\r\nHost: a\r\nX-Seq: 6\r\n\r\n")
	expect("GET", "GET /six  6")
	// A response head in two pieces.
	c.send(t, "GET /split HTTP/1.1\r\nHost: a\r\nX-Seq: 7\r\n\r\n")
	expect("GET", "GET /split  7")
	c.send(t, "GET /eight HTTP/1.1\r\nHost: a\r\nX-Seq: 8\r\nConnection: close\r\n\r\n")
	expect("GET", "GET /eight  8")
	c.expectClosed(t)

	reqs, resps := lentRequestHeads.Load()-reqBefore, lentResponseHeads.Load()-respBefore
	if ud == nil {
		if reqs != 0 || resps != 0 {
			t.Errorf("epoll: %d request and %d response heads parsed in lent buffers, want 0", reqs, resps)
		}
		return
	}
	// In place for certain: requests one, two, five, six (after the park),
	// split and eight; responses but split's. The rest may or may not be.
	t.Logf("io_uring: %d request heads, %d response heads in place", reqs, resps)
	if reqs < 6 || resps < 7 {
		t.Errorf("io_uring: %d of 8 request heads and %d of 8 response heads parsed in place, want at least 6 and 7", reqs, resps)
	}
	// The pooled upstream connection holds no buffer, nor the closed
	// client's.
	deadline := time.Now().Add(5 * time.Second)
	for ud.BuffersOut() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := ud.BuffersOut(); n != 0 {
		t.Errorf("%d received buffers not given back to the ring", n)
	}
}
