package httpproxy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/monolake-go/monolake/proxy/netio"
)

// largeBody is a body well past spliceMin, over three splice rounds (256
// KiB each) and not a multiple of one.
func largeBody(seed uint64) []byte {
	b := make([]byte, 3<<18+12345)
	r := rand.New(rand.NewPCG(seed, seed))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// wantSpliced reports whether bodies are spliced on the driver under test.
func wantSpliced(t *testing.T) bool {
	return testDriver(t).Name() != netio.RuntimeEpoll
}

// TestLargeBodySplice: large bodies with a length arrive whole and in order
// on a keep-alive client connection, spliced on io_uring (copied on epoll).
// The requests come more than the pool's checkAfter (100 ms) apart, so each takes
// the idle upstream connection through the pool's check (Stale, on
// io_uring): one the upstream keeps is reused after each splice, and one
// the upstream closes once the response is sent is noticed, though the
// splice stopped the receive that would have seen the close. They are
// POSTs, which are not retried: a stale connection handed out would fail
// one with a 502.
func TestLargeBodySplice(t *testing.T) {
	for _, closeAfter := range []bool{false, true} {
		t.Run(fmt.Sprintf("upstream closes after each: %v", closeAfter), func(t *testing.T) {
			var conns atomic.Int32
			addr := rawUpstream(t, func(c net.Conn) {
				conns.Add(1)
				br := bufio.NewReader(c)
				for i := uint64(0); ; i++ {
					r, _, err := readRequest(br)
					if err != nil {
						return
					}
					var seed uint64
					fmt.Sscanf(r.URL.Path, "/b%d", &seed)
					body := largeBody(seed)
					// Head and the first bytes in one write: the proxy's
					// reader then holds part of the body when it splices.
					fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body[:1000])
					c.Write(body[1000:])
					if closeAfter {
						return
					}
				}
			})
			p := startProxy(t, serverTOML("", routeTOML("/{*p}", "", addr)), Options{})
			before := splicedBodies.Load()
			c := dialRaw(t, p.Addr)
			const n = 4
			for i := range n {
				if i > 0 {
					time.Sleep(150 * time.Millisecond) // past upstream.Pool's checkAfter (100 ms)
				}
				c.send(t, fmt.Sprintf("POST /b%d HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi", i))
				resp, got := c.response(t, "POST")
				want := largeBody(uint64(i))
				if resp.StatusCode != 200 || !bytes.Equal(got, want) {
					t.Fatalf("response %d: status %d, %d bytes (sha %x), want %d bytes (sha %x)",
						i, resp.StatusCode, len(got), sha256.Sum256(got), len(want), sha256.Sum256(want))
				}
			}
			spliced := splicedBodies.Load() - before
			if wantSpliced(t) && spliced != n {
				t.Errorf("%d of %d bodies spliced on io_uring", spliced, n)
			}
			if !wantSpliced(t) && spliced != 0 {
				t.Errorf("%d bodies spliced on epoll, want 0", spliced)
			}
			wantConns := int32(1)
			if closeAfter {
				wantConns = n
			}
			if got := conns.Load(); got != wantConns {
				t.Errorf("upstream saw %d connections, want %d", got, wantConns)
			}
		})
	}
}

// TestLargeBodyCut: an upstream that ends the stream or stops sending in
// the middle of a large body costs the client its connection after the
// bytes that came, at once or after the upstream read timeout, not a hang;
// the next client is served.
func TestLargeBodyCut(t *testing.T) {
	for _, stall := range []bool{false, true} {
		t.Run(fmt.Sprintf("stall: %v", stall), func(t *testing.T) {
			var mu sync.Mutex
			first := true
			release := make(chan struct{})
			defer close(release)
			addr := rawUpstream(t, func(c net.Conn) {
				br := bufio.NewReader(c)
				for {
					if _, _, err := readRequest(br); err != nil {
						return
					}
					mu.Lock()
					cut := first
					first = false
					mu.Unlock()
					body := largeBody(7)
					fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", len(body))
					if !cut {
						c.Write(body)
						continue
					}
					c.Write(body[:len(body)/2])
					if stall {
						<-release
					}
					return
				}
			})
			p := startProxy(t, serverTOML("timeout = { upstream_read_timeout_sec = 1 }", routeTOML("/{*p}", "", addr)), Options{})
			c := dialRaw(t, p.Addr)
			c.send(t, "GET /cut HTTP/1.1\r\nHost: a\r\n\r\n")
			resp, err := readResponseHead(c.br)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("head: %v, %v", resp, err)
			}
			got, err := io.ReadAll(resp.Body)
			if err == nil || len(got) >= len(largeBody(7)) {
				t.Fatalf("read %d bytes, %v; want the connection closed short of the body", len(got), err)
			}
			if !bytes.Equal(got, largeBody(7)[:len(got)]) {
				t.Fatal("the bytes that came differ from the upstream's")
			}
			c2 := dialRaw(t, p.Addr)
			c2.send(t, "GET /whole HTTP/1.1\r\nHost: a\r\n\r\n")
			if resp, body := c2.response(t, "GET"); resp.StatusCode != 200 || !bytes.Equal(body, largeBody(7)) {
				t.Fatalf("next client: status %d, %d bytes", resp.StatusCode, len(body))
			}
		})
	}
}

// TestLargeBodySlowUpstream: an upstream that sends a large body for longer
// than the upstream read timeout, never pausing that long, is passed on
// whole: the timeout bounds each wait for bytes, spliced or copied, not
// the whole body.
func TestLargeBodySlowUpstream(t *testing.T) {
	body := largeBody(3)
	addr := rawUpstream(t, func(c net.Conn) {
		if _, _, err := readRequest(bufio.NewReader(c)); err != nil {
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", len(body))
		const piece = 64 << 10
		for rest := body; len(rest) > 0; rest = rest[min(piece, len(rest)):] {
			if _, err := c.Write(rest[:min(piece, len(rest))]); err != nil {
				return
			}
			time.Sleep(250 * time.Millisecond) // 13 pieces: over 3 s in all
		}
	})
	p := startProxy(t, serverTOML("timeout = { upstream_read_timeout_sec = 1 }", routeTOML("/{*p}", "", addr)), Options{})
	c := dialRaw(t, p.Addr)
	c.send(t, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, got := c.response(t, "GET")
	if resp.StatusCode != 200 || !bytes.Equal(got, body) {
		t.Fatalf("status %d, %d of %d bytes", resp.StatusCode, len(got), len(body))
	}
}
