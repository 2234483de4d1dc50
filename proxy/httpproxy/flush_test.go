package httpproxy

import (
	"bufio"
	"bytes"
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
// it flushes (http1.Reader.Ready). It used to flush after the reader's
// share, and the client got each response in two writes (two TCP segments).
func TestResponseOneWrite(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 12<<10/16) // well past the reader's 4 KiB
	up := rawRequests(t, func(c net.Conn, r *http.Request, _ []byte) {
		// One write, so the proxy receives it at once.
		c.Write(append(fmt.Appendf(nil, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", len(body)), body...))
	})
	var ln *writeCounter
	p := startProxyWrapped(t, testDriver(t), serverTOML("", routeTOML("/{*p}", "", up)), Options{}, func(l net.Listener) net.Listener {
		ln = &writeCounter{Listener: l}
		return ln
	})
	c := dialRaw(t, p.Addr)
	const n = 5
	for i := range n {
		c.send(t, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
		resp, got := c.response(t, "GET")
		if resp.StatusCode != 200 || !bytes.Equal(got, body) {
			t.Fatalf("response %d: status %d, %d bytes", i, resp.StatusCode, len(got))
		}
	}
	if w := ln.writes.Load(); w != n {
		t.Errorf("%d responses took %d writes to the client, want one each", n, w)
	}
}

// TestTrickleFlushed: a body part is passed on as soon as nothing more has
// arrived, in both directions, also when it filled the reader's buffer
// exactly (so the reader must ask its connection whether more is there).
// The sender sends the rest only once the receiver has seen the first part;
// a proxy that held the part for the rest would hang here.
func TestTrickleFlushed(t *testing.T) {
	const first = 4 << 10 // the reader's buffer, filled by head and part
	t.Run("response", func(t *testing.T) {
		seen := make(chan struct{})
		up := rawRequests(t, func(c net.Conn, r *http.Request, _ []byte) {
			head := "HTTP/1.1 200 OK\r\nContent-Length: 8192\r\n\r\n"
			c.Write([]byte(head + strings.Repeat("a", first-len(head))))
			select {
			case <-seen:
			case <-time.After(10 * time.Second):
				return
			}
			c.Write([]byte(strings.Repeat("b", 8192-(first-len(head)))))
		})
		p := startProxy(t, serverTOML("", routeTOML("/{*p}", "", up)), Options{})
		c := dialRaw(t, p.Addr)
		c.send(t, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(c.br, nil)
		if err != nil {
			t.Fatal(err)
		}
		part := make([]byte, first-len("HTTP/1.1 200 OK\r\nContent-Length: 8192\r\n\r\n"))
		if _, err := io.ReadFull(resp.Body, part); err != nil {
			t.Fatalf("the first part did not come before the rest was sent: %v", err)
		}
		close(seen)
		rest, err := io.ReadAll(resp.Body)
		if err != nil || len(part)+len(rest) != 8192 {
			t.Fatalf("rest: %d bytes, %v", len(rest), err)
		}
	})
	t.Run("request", func(t *testing.T) {
		var mu sync.Mutex
		var once sync.Once
		got := 0
		seen := make(chan struct{})
		const size = 3 * first
		up := rawUpstream(t, func(c net.Conn) {
			br := bufio.NewReader(c)
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			buf := make([]byte, size)
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
		head := fmt.Sprintf("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", size)
		c.send(t, head+strings.Repeat("a", first))
		select {
		case <-seen:
		case <-time.After(5 * time.Second):
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("the upstream had %d bytes of the first %d before the rest was sent", got, first)
		}
		c.send(t, strings.Repeat("b", size-first))
		resp, b := c.response(t, "POST")
		if resp.StatusCode != 200 || string(b) != fmt.Sprint(size) {
			t.Fatalf("status %d: %q", resp.StatusCode, b)
		}
	})
}
