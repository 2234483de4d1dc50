//go:build uring && cgo

package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/monolake-go/monolake/tlsbackend/tlstest"
	"github.com/monolake-go/monolake/uring"
)

// TestProbeProxies: the probe forwards keep-alive GETs with the fields the
// suite's proxies add, and returns Content-Length responses whole (one of
// them larger than a receive buffer) with the request's ID, on both ways of
// sleeping.
func TestProbeProxies(t *testing.T) {
	if err := uring.Check(); err != nil {
		tlstest.Unavailable(t, "io_uring unusable: %v", err)
	}
	for _, epoll := range []bool{false, true} {
		t.Run(fmt.Sprintf("epoll=%v", epoll), func(t *testing.T) {
			origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
				w.Header().Set("Content-Length", strconv.Itoa(n))
				w.Header().Set("Seen", r.Header.Get("X-Forwarded-For")+"|"+r.Header.Get("X-Forwarded-Proto")+"|"+r.Header.Get("X-Forwarded-Host")+"|"+r.Header.Get("X-Request-Id"))
				w.Write([]byte(strings.Repeat("a", n)))
			}))
			defer origin.Close()
			up, err := inet4(origin.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			lfd, err := listenFd(&syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}})
			if err != nil {
				t.Fatal(err)
			}
			defer syscall.Close(lfd)
			sa, _ := syscall.Getsockname(lfd)
			addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)

			stop, done := make(chan struct{}), make(chan error, 1)
			ready := make(chan error, 1)
			go func() {
				runtime.LockOSThread()
				p, err := newProbe(lfd, up, false, epoll)
				ready <- err
				if err == nil {
					err = p.serve(stop)
					if cerr := p.Close(); err == nil {
						err = cerr
					}
					done <- err
				}
			}()
			if err := <-ready; err != nil {
				t.Fatal(err)
			}
			defer func() {
				close(stop)
				if err := <-done; err != nil {
					t.Error(err)
				}
			}()

			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			ids := map[string]bool{}
			for _, n := range []int{0, 1024, 40000, 5} {
				fmt.Fprintf(c, "GET /%d HTTP/1.1\r\nHost: probe.test\r\n\r\n", n)
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("/%d: %v", n, err)
				}
				body, err := io.ReadAll(resp.Body)
				if err != nil || len(body) != n {
					t.Fatalf("/%d: %d bytes, %v", n, len(body), err)
				}
				id := resp.Header.Get("X-Request-Id")
				if len(id) != 32 || ids[id] {
					t.Fatalf("/%d: X-Request-Id %q (seen before: %v)", n, id, ids[id])
				}
				ids[id] = true
				if want := "127.0.0.1|http|probe.test|" + id; resp.Header.Get("Seen") != want {
					t.Errorf("/%d: the origin saw %q, want %q", n, resp.Header.Get("Seen"), want)
				}
			}
			// A request with a body is not the probe's: it closes.
			fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: probe.test\r\nContent-Length: 2\r\n\r\nhi")
			if _, err := br.ReadByte(); err != io.EOF {
				t.Errorf("after a request with a body: %v, want EOF", err)
			}
			// Nor are pipelined requests.
			c2, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c2.Close()
			fmt.Fprintf(c2, "GET /1 HTTP/1.1\r\nHost: probe.test\r\n\r\nGET /2 HTTP/1.1\r\nHost: probe.test\r\n\r\n")
			if b, err := io.ReadAll(c2); err != nil || len(b) != 0 {
				t.Errorf("after pipelined requests: %q, %v; want the connection closed", b, err)
			}
		})
	}
}
