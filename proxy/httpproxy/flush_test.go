package httpproxy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// writeCounter counts the Write calls on the conns its listener accepted.
type writeCounter struct {
	net.Listener
	writes atomic.Int64
}

func (l *writeCounter) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countedConn{c, &l.writes}, nil
}

type countedConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countedConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// TestResponseOneWrite: a response that reached the proxy whole leaves it in
// one write, although the upstream's reader took only part of it with the
// head: the writer asks the upstream conn what it already received before
// it flushes (http1.Body.Ready). It used to flush after the reader's
// share, and the client got each response in two writes (two TCP segments).
// A small chunked response leaves in one write too: the framing buffered
// after a chunk is not taken for data still to come, nor for its absence.
func TestResponseOneWrite(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 12<<10/16) // well past the reader's 4 KiB
	up := rawRequests(t, func(c net.Conn, r *http.Request, _ []byte) {
		// One write, so the proxy receives it at once.
		switch r.URL.Path {
		case "/chunked": // within the reader's buffer
			c.Write([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"))
			return
		case "/chunked-big": // past it: the framing after the chunk stays in the conn
			c.Write(fmt.Appendf(nil, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(body), body))
			return
		}
		c.Write(append(fmt.Appendf(nil, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", len(body)), body...))
	})
	var ln *writeCounter
	p := startProxyWrapped(t, testDriver(t), serverTOML("", routeTOML("/{*p}", "", up)), Options{}, func(l net.Listener) net.Listener {
		ln = &writeCounter{Listener: l}
		return ln
	})
	c := dialRaw(t, p.Addr)
	const n = 5
	if w := getWrites(t, c, ln, n, body); w != n {
		t.Errorf("%d responses took %d writes to the client, want one each", n, w)
	}
	c.send(t, "GET /chunked HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, got := c.response(t, "GET"); resp.StatusCode != 200 || string(got) != "hello world" {
		t.Fatalf("chunked response: status %d, %q", resp.StatusCode, got)
	}
	if w := ln.writes.Load(); w != n+1 {
		t.Errorf("a chunked response that arrived whole took %d writes to the client, want one", w-n)
	}
	c.send(t, "GET /chunked-big HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, got := c.response(t, "GET"); resp.StatusCode != 200 || !bytes.Equal(got, body) {
		t.Fatalf("chunked response of %d bytes: status %d, %d bytes", len(body), resp.StatusCode, len(got))
	}
	if w := ln.writes.Load(); w != n+2 {
		t.Errorf("a 12 KiB chunked response that arrived whole took %d writes to the client, want one", w-n-1)
	}
}

// getWrites sends n GETs of /x on c, checks each response is body, and
// returns the writes to the client counted on ln so far.
func getWrites(t *testing.T, c *rawConn, ln *writeCounter, n int, body []byte) int64 {
	t.Helper()
	for i := range n {
		c.send(t, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
		resp, got := c.response(t, "GET")
		if resp.StatusCode != 200 || !bytes.Equal(got, body) {
			t.Fatalf("response %d: status %d, %d bytes", i, resp.StatusCode, len(got))
		}
	}
	return ln.writes.Load()
}

// TestTrickleFlushed: a body part is passed on as soon as nothing more has
// arrived, in both directions: also when it filled the reader's buffer
// exactly (so the reader must ask its connection whether more is there),
// and for a chunked body whose part arrived with the CRLF after it (framing,
// not data: it must not count as more to come). The sender sends the rest
// only once the receiver has seen the first part; a proxy that held the
// part for the rest would hang here.
func TestTrickleFlushed(t *testing.T) {
	const first = 4 << 10 // the reader's buffer, filled by head and part
	lengthHead := "HTTP/1.1 200 OK\r\nContent-Length: 8192\r\n\r\n"
	for _, tt := range []struct {
		name          string
		request       string
		part, rest    string // what the upstream sends before and after
		seen, wantAll string // the part and the whole body as the client reads them
	}{
		{
			name:    "length",
			request: "GET /x HTTP/1.1\r\nHost: a\r\n\r\n",
			part:    lengthHead + strings.Repeat("a", first-len(lengthHead)),
			rest:    strings.Repeat("b", 8192-(first-len(lengthHead))),
			seen:    strings.Repeat("a", first-len(lengthHead)),
			wantAll: strings.Repeat("a", first-len(lengthHead)) + strings.Repeat("b", 8192-(first-len(lengthHead))),
		},
		{
			name:    "chunked",
			request: "GET /x HTTP/1.1\r\nHost: a\r\n\r\n",
			part:    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
			rest:    "6\r\n world\r\n0\r\n\r\n",
			seen:    "hello", wantAll: "hello world",
		},
		{
			name:    "chunked to HTTP/1.0",
			request: "GET /x HTTP/1.0\r\nHost: a\r\n\r\n",
			part:    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
			rest:    "0\r\n\r\n",
			seen:    "hello", wantAll: "hello",
		},
	} {
		t.Run("response "+tt.name, func(t *testing.T) {
			seen := make(chan struct{})
			up := rawRequests(t, func(c net.Conn, r *http.Request, _ []byte) {
				c.Write([]byte(tt.part))
				select {
				case <-seen:
				case <-time.After(10 * time.Second):
					return
				}
				c.Write([]byte(tt.rest))
			})
			p := startProxy(t, serverTOML("", routeTOML("/{*p}", "", up)), Options{})
			c := dialRaw(t, p.Addr)
			c.send(t, tt.request)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			resp, err := http.ReadResponse(c.br, nil)
			if err != nil {
				t.Fatalf("no response head before the rest was sent: %v", err)
			}
			part := make([]byte, len(tt.seen))
			if _, err := io.ReadFull(resp.Body, part); err != nil || string(part) != tt.seen {
				t.Fatalf("the first part did not come before the rest was sent: %q, %v", part, err)
			}
			close(seen)
			rest, err := io.ReadAll(resp.Body)
			if err != nil || string(part)+string(rest) != tt.wantAll {
				t.Fatalf("body %q, %v", string(part)+string(rest), err)
			}
		})
	}
	for _, tt := range []struct {
		name       string
		head       string
		part, rest string
		size       int // decoded
	}{
		{"length", fmt.Sprintf("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", 3*first),
			strings.Repeat("a", first), strings.Repeat("b", 2*first), 3 * first},
		{"chunked", "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
			"1000\r\n" + strings.Repeat("a", first) + "\r\n", "5\r\nhello\r\n0\r\n\r\n", first + 5},
	} {
		t.Run("request "+tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var once sync.Once
			got := 0
			seen := make(chan struct{})
			up := rawUpstream(t, func(c net.Conn) {
				br := bufio.NewReader(c)
				r, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				buf := make([]byte, 64<<10)
				for {
					n, err := r.Body.Read(buf)
					mu.Lock()
					got += n
					g := got
					mu.Unlock()
					if g >= first {
						once.Do(func() { close(seen) })
					}
					if err != nil {
						break
					}
				}
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%d", len(fmt.Sprint(got)), got)
			})
			p := startProxy(t, serverTOML("", routeTOML("/{*p}", "", up)), Options{})
			c := dialRaw(t, p.Addr)
			c.send(t, tt.head+tt.part)
			select {
			case <-seen:
			case <-time.After(5 * time.Second):
				mu.Lock()
				defer mu.Unlock()
				t.Fatalf("the upstream had %d bytes of the first %d before the rest was sent", got, first)
			}
			c.send(t, tt.rest)
			resp, b := c.response(t, "POST")
			if resp.StatusCode != 200 || string(b) != fmt.Sprint(tt.size) {
				t.Fatalf("status %d: %q", resp.StatusCode, b)
			}
		})
	}
}

// TestRequestOneWrite: a request body that reached the proxy whole goes to
// the upstream with its head in one write, past the upstream conn's own
// 8 KiB writer (bodies take a larger one from a pool).
func TestRequestOneWrite(t *testing.T) {
	up := rawRequests(t, func(c net.Conn, r *http.Request, body []byte) {
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%d", len(fmt.Sprint(len(body))), len(body))
	})
	drv := testDriver(t)
	var writes atomic.Int64
	o := Options{Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := drv.Dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countedConn{c, &writes}, nil
	}}
	p := startProxyOn(t, drv, serverTOML("", routeTOML("/{*p}", "", up)), o)
	c := dialRaw(t, p.Addr)
	body := strings.Repeat("x", 12<<10)
	const n = 3
	for i := range n {
		c.send(t, fmt.Sprintf("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
		resp, got := c.response(t, "POST")
		if resp.StatusCode != 200 || string(got) != fmt.Sprint(len(body)) {
			t.Fatalf("request %d: status %d, %q", i, resp.StatusCode, got)
		}
	}
	if w := writes.Load(); w != n {
		t.Errorf("%d requests took %d writes to the upstream, want one each", n, w)
	}
}
