package httpproxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/monolake-go/monolake/proxy"
	"github.com/monolake-go/monolake/proxy/netio"
)

// TestHeadsInPlace: on io_uring, request heads that arrive whole are
// parsed in the buffer the kernel received them in (counted by
// lentRequestHeads; none on epoll), including the first request after a
// parked wait; heads that arrive in pieces, pipelined ones and chunked
// bodies past the lent buffer are served as well, and a response head in
// pieces; and once the clients are gone every received buffer is back in
// the driver's ring (its own driver here, so that other tests' buffers do
// not count).
func TestHeadsInPlace(t *testing.T) {
	drv, ud := ownDriver(t, 0)
	addr := rawRequests(t, func(c net.Conn, r *http.Request, body []byte) {
		echo := r.Method + " " + r.URL.Path + " " + string(body) + " " + r.Header.Get("X-Seq")
		head := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\nX-Up: %s\r\n\r\n", len(echo), r.URL.Path)
		if r.URL.Path == "/split" {
			// The response head in two pieces: the proxy's reader
			// cannot parse it in the first buffer.
			c.Write([]byte(head[:20]))
			time.Sleep(50 * time.Millisecond)
			c.Write([]byte(head[20:] + echo))
			return
		}
		c.Write([]byte(head + echo))
	})
	p := startProxyOn(t, drv, serverTOML("timeout = { server_keepalive_park_ms = 100 }", routeTOML("/{*p}", "", addr)), Options{})
	reqBefore := lentRequestHeads.Load()

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

	reqs := lentRequestHeads.Load() - reqBefore
	if ud == nil {
		if reqs != 0 {
			t.Errorf("epoll: %d request heads parsed in lent buffers, want 0", reqs)
		}
		return
	}
	// In place for certain: requests one, two, five, six (after the park),
	// split and eight. Three and four may or may not be.
	if reqs < 6 {
		t.Errorf("io_uring: %d of 8 request heads parsed in place, want at least 6", reqs)
	}
	// The closed client's connection holds no buffer.
	waitBuffersOut(t, ud, 0)
}

// bufferCounter is *netio.Uring's BuffersOut.
type bufferCounter interface{ BuffersOut() int }

// ownDriver returns the driver under test, for io_uring one of the test's
// own with bufCount receive buffers (0: the default), so that other tests'
// buffers do not count, and its counter (nil on epoll).
func ownDriver(t *testing.T, bufCount int) (netio.Driver, bufferCounter) {
	t.Helper()
	drv := testDriver(t)
	if drv.Name() == netio.RuntimeEpoll {
		return drv, nil
	}
	d, fallback := netio.NewDriver(netio.RuntimeIOUring, netio.UringParams{BufCount: bufCount})
	if fallback != "" {
		t.Fatal(fallback)
	}
	t.Cleanup(func() { d.Close() })
	return d, d.(bufferCounter)
}

// waitBuffersOut waits up to 5 s for at most max buffers out of the ring.
func waitBuffersOut(t *testing.T, ud bufferCounter, max int) {
	t.Helper()
	if ud == nil {
		return
	}
	deadline := time.Now().Add(5 * time.Second)
	for ud.BuffersOut() > max && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := ud.BuffersOut(); n > max {
		t.Errorf("%d received buffers out of the ring, want at most %d", n, max)
	}
}

// TestLentBuffersBounded: the buffers lent for heads cannot starve the
// ring (16 buffers here). A Layer's panic gives back the ones its
// connection held; idle WebSocket tunnels hold none; responses that stall
// after their head hold at most half of the ring, the rest going through
// the readers' own buffers, and other clients are served meanwhile.
func TestLentBuffersBounded(t *testing.T) {
	const ring = 16
	t.Run("panic", func(t *testing.T) {
		drv, ud := ownDriver(t, ring)
		boom := func(inner Service) Service {
			return proxy.ServiceFunc[*Request, *Response](func(ctx context.Context, req *Request) (*Response, error) {
				if string(req.Path) == "/boom" {
					panic("a Layer's bug")
				}
				return inner.Call(ctx, req)
			})
		}
		addr := rawRequests(t, func(c net.Conn, _ *http.Request, _ []byte) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		})
		p := startProxyOn(t, drv, serverTOML("", routeTOML("/{*p}", "", addr)), Options{Layers: []Middleware{boom}})
		for range 3 {
			c := dialRaw(t, p.Addr)
			c.send(t, "GET /ok HTTP/1.1\r\nHost: a\r\n\r\n")
			if resp, body := c.response(t, "GET"); resp.StatusCode != 200 || string(body) != "ok" {
				t.Fatalf("got %d %q", resp.StatusCode, body)
			}
			c.send(t, "GET /boom HTTP/1.1\r\nHost: a\r\n\r\n")
			c.expectClosed(t)
		}
		waitBuffersOut(t, ud, 0)
	})
	t.Run("tunnels", func(t *testing.T) {
		drv, ud := ownDriver(t, ring)
		p := startProxyOn(t, drv, serverTOML("", routeTOML("/{*p}", "", wsEchoUpstream(t))), Options{})
		for i := range ring {
			c := dialRaw(t, p.Addr)
			c.send(t, "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
				"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
			if resp, err := readResponseHead(c.br); err != nil || resp.StatusCode != 101 {
				t.Fatalf("tunnel %d: %v %v", i, resp, err)
			}
			msg := fmt.Sprintf("hello %d", i)
			wsWrite(c, 1, []byte(msg), true)
			if _, got, err := wsRead(c.br); err != nil || string(got) != msg {
				t.Fatalf("tunnel %d: echo %q %v", i, got, err)
			}
		}
		// 16 tunnels open and idle: their heads' buffers are back.
		waitBuffersOut(t, ud, 0)
	})
	t.Run("stalled responses", func(t *testing.T) {
		drv, ud := ownDriver(t, ring)
		release := make(chan struct{})
		addr := rawRequests(t, func(c net.Conn, r *http.Request, _ []byte) {
			if r.URL.Path != "/slow" {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n"+strings.Repeat("a", 1000))
			<-release
			io.WriteString(c, strings.Repeat("b", 1000))
		})
		p := startProxyOn(t, drv, serverTOML("", routeTOML("/{*p}", "", addr)), Options{})
		type stalled struct {
			c    *rawConn
			body io.Reader
		}
		var all []stalled
		for i := range 12 {
			c := dialRaw(t, p.Addr)
			c.send(t, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
			resp, err := readResponseHead(c.br)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("slow %d: %v %v", i, resp, err)
			}
			first := make([]byte, 1000)
			if _, err := io.ReadFull(resp.Body, first); err != nil || first[999] != 'a' {
				t.Fatalf("slow %d: first half: %v", i, err)
			}
			all = append(all, stalled{c, resp.Body})
		}
		// 12 exchanges would keep 24 heads' buffers: at most half the
		// ring is kept.
		waitBuffersOut(t, ud, ring/2)
		c := dialRaw(t, p.Addr)
		c.send(t, "GET /fast HTTP/1.1\r\nHost: a\r\n\r\n")
		if resp, body := c.response(t, "GET"); resp.StatusCode != 200 || string(body) != "ok" {
			t.Fatalf("another client: %d %q", resp.StatusCode, body)
		}
		close(release)
		for i, s := range all {
			rest, err := io.ReadAll(s.body)
			if err != nil || string(rest) != strings.Repeat("b", 1000) {
				t.Fatalf("slow %d: second half: %d bytes, %v", i, len(rest), err)
			}
			s.c.Close()
		}
		c.Close()
		waitBuffersOut(t, ud, 0)
	})
}
