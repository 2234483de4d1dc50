package httpproxy

import (
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/monolake-go/monolake/proxy/http1"
)

// minimalUpstream answers every request with a fixed response, parsing
// with http1 so that it does not allocate either (allocations are counted
// for the whole process).
func minimalUpstream(b *testing.B, bodySize int) string {
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + strconv.Itoa(bodySize) + "\r\n\r\n" + strings.Repeat("x", bodySize))
	return rawUpstream(b, func(c net.Conn) {
		rd := http1.NewReader(c)
		var req http1.Request
		var body http1.Body
		var buf [4 << 10]byte
		for {
			if err := rd.ReadRequest(&req); err != nil {
				return
			}
			body.Reset(rd, req.BodyKind, req.ContentLength)
			for {
				if _, err := body.Read(buf[:]); err != nil {
					break
				}
			}
			if _, err := c.Write(resp); err != nil {
				return
			}
		}
	})
}

// BenchmarkProxy drives keep-alive GETs through the whole proxy stack
// (server, route, rewrite, upstream pool) on loopback, one request at a
// time; allocs/op counts every goroutine, the proxy's and the test's.
func BenchmarkProxy(b *testing.B) {
	for _, size := range []int{0, 1 << 10} {
		name := "body=0"
		if size > 0 {
			name = "body=1k"
		}
		b.Run(name, func(b *testing.B) {
			up := minimalUpstream(b, size)
			p := startProxy(b, serverTOML("", routeTOML("/{*p}", "", up)), Options{Log: slog.New(slog.DiscardHandler)})
			c, err := net.Dial("tcp", p.Addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			req := []byte("GET /bench HTTP/1.1\r\nHost: bench.example\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
			rd := http1.NewReader(c)
			var resp http1.Response
			var body http1.Body
			buf := make([]byte, 8<<10)
			method := []byte("GET")
			roundTrip := func() {
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				if err := rd.ReadResponse(&resp, method); err != nil {
					b.Fatal(err)
				}
				if resp.Status != 200 {
					b.Fatalf("status %d", resp.Status)
				}
				body.Reset(rd, resp.BodyKind, resp.ContentLength)
				n := 0
				for {
					m, err := body.Read(buf)
					n += m
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				if n != size {
					b.Fatalf("body %d bytes", n)
				}
			}
			for range 100 { // warm up pools and buffers
				roundTrip()
			}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				roundTrip()
			}
		})
	}
}
