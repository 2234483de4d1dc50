package httpproxy

import (
	"bufio"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestUpstreamErrors: each way an upstream fails gives its status, logged
// once.
func TestUpstreamErrors(t *testing.T) {
	refused := refusedAddr
	reset := func(t *testing.T) string {
		return rawUpstream(t, func(c net.Conn) {
			readRequest(bufio.NewReader(c))
			c.(*net.TCPConn).SetLinger(0)
		})
	}
	slow := func(t *testing.T) string {
		return rawUpstream(t, func(c net.Conn) {
			br := bufio.NewReader(c)
			readRequest(br)
			io.Copy(io.Discard, br) // never answers; ends when the proxy gives up
		})
	}
	badHead := func(t *testing.T) string {
		return rawUpstream(t, func(c net.Conn) {
			readRequest(bufio.NewReader(c))
			c.Write([]byte("HTTP/1.1 200 OK\r\nBad Header\r\n\r\n"))
		})
	}
	for _, tc := range []struct {
		name     string
		upstream func(t *testing.T) string
		status   int
		within   time.Duration
	}{
		{"refused", refused, 502, 5 * time.Second},
		{"reset before response", reset, 502, 5 * time.Second},
		{"malformed response", badHead, 502, 5 * time.Second},
		{"read timeout", slow, 504, 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startProxy(t, serverTOML("timeout = { upstream_read_timeout_sec = 1 }", routeTOML("/{*p}", "", tc.upstream(t))), Options{})
			start := time.Now()
			c := dialRaw(t, p.Addr)
			c.send(t, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
			resp, body := c.response(t, "GET")
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %q", resp.StatusCode, tc.status, body)
			}
			if d := time.Since(start); d > tc.within {
				t.Fatalf("answered after %v", d)
			}
			// The client connection stays usable.
			c.send(t, "GET /y HTTP/1.1\r\nHost: a\r\n\r\n")
			if resp, _ := c.response(t, "GET"); resp.StatusCode != tc.status {
				t.Fatalf("second status %d", resp.StatusCode)
			}
			lines := p.Logs.waitLines(2)
			time.Sleep(50 * time.Millisecond)
			lines = p.Logs.Lines()
			if len(lines) != 2 {
				t.Fatalf("want one log line per request, got %q", lines)
			}
			for _, l := range lines {
				if !strings.Contains(l, "status="+strconv.Itoa(tc.status)) {
					t.Errorf("log line without the status: %q", l)
				}
			}
		})
	}
}

// TestRequestErrors: a request the proxy cannot read is answered with its
// status, logged once, and the connection is closed.
func TestRequestErrors(t *testing.T) {
	up := newEchoUpstream(t, "up")
	for _, tc := range []struct {
		name, req string
		status    int
	}{
		{"malformed field", "GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n", 400},
		{"bare LF", "GET / HTTP/1.1\nHost: a\n\n", 400},
		{"no host", "GET / HTTP/1.1\r\n\r\n", 400},
		{"empty host", "GET / HTTP/1.1\r\nHost: \r\n\r\n", 400},
		{"bad content-length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n", 400},
		{"te and cl", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"oversize head", "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("b", 20<<10) + "\r\n\r\n", 431},
		{"oversize request line", "GET /" + strings.Repeat("a", 20<<10) + " HTTP/1.1\r\nHost: a\r\n\r\n", 414},
		{"too many fields", "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X-A: 1\r\n", 200) + "\r\n", 431},
		{"HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
		{"unknown coding", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startProxy(t, serverTOML("", routeTOML("/", "", up.addr())), Options{})
			c := dialRaw(t, p.Addr)
			c.send(t, tc.req)
			resp, _ := c.response(t, "GET")
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if !resp.Close {
				t.Errorf("response without Connection: close")
			}
			c.expectClosed(t)
			lines := p.Logs.waitLines(1)
			time.Sleep(20 * time.Millisecond)
			lines = p.Logs.Lines()
			if len(lines) != 1 || !strings.Contains(lines[0], "status="+strconv.Itoa(tc.status)) {
				t.Fatalf("want one log line with the status, got %q", lines)
			}
		})
	}
}

// TestReadTimeoutPerRead: the upstream read timeout bounds each wait, not
// the whole response: a body that trickles in for longer than the timeout
// is passed on whole.
func TestReadTimeoutPerRead(t *testing.T) {
	addr := rawUpstream(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if _, _, err := readRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
		for range 6 {
			time.Sleep(300 * time.Millisecond)
			io.WriteString(c, "5\r\nchunk\r\n")
		}
		io.WriteString(c, "0\r\n\r\n")
	})
	p := startProxy(t, serverTOML("timeout = { upstream_read_timeout_sec = 1 }", routeTOML("/{*p}", "", addr)), Options{})
	resp, body := do(t, client(t), "GET", "http://"+p.Addr+"/x", "", nil, nil)
	if resp.StatusCode != 200 || string(body) != strings.Repeat("chunk", 6) {
		t.Fatalf("status %d %q", resp.StatusCode, body)
	}
}

// TestUpstreamNotReading: an upstream that stops reading a large request
// body fails the request with 504 after the timeout instead of blocking.
func TestUpstreamNotReading(t *testing.T) {
	done := make(chan struct{})
	addr := rawUpstream(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if _, err := br.ReadString('\n'); err != nil {
			return
		}
		<-done // reads nothing more
	})
	t.Cleanup(func() { close(done) }) // runs before rawUpstream's cleanup waits
	p := startProxy(t, serverTOML("timeout = { upstream_read_timeout_sec = 1 }", routeTOML("/{*p}", "", addr)), Options{})
	c := dialRaw(t, p.Addr)
	const size = 64 << 20
	c.send(t, "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: "+strconv.Itoa(size)+"\r\n\r\n")
	go func() {
		buf := make([]byte, 1<<20)
		for range size / len(buf) {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}()
	start := time.Now()
	resp, _ := c.response(t, "POST")
	if resp.StatusCode != 504 || !resp.Close {
		t.Fatalf("status %d close %v", resp.StatusCode, resp.Close)
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Fatalf("answered after %v", d)
	}
}
