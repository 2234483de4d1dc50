package http1

import (
	"bytes"
	"io"
	"strconv"
	"strings"
	"testing"
)

var (
	typicalRequest = "GET /api/v1/users/12345?fields=name,email HTTP/1.1\r\n" +
		"Host: backend.example.com\r\n" +
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\r\n" +
		"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n" +
		"Accept-Encoding: gzip, deflate, br\r\n" +
		"Accept-Language: en-US,en;q=0.9\r\n" +
		"Connection: keep-alive\r\n" +
		"Cookie: session=abcdef0123456789; theme=dark\r\n" +
		"Cache-Control: no-cache\r\n" +
		"X-Forwarded-For: 10.0.0.1\r\n\r\n"
	minimalRequest  = "GET / HTTP/1.1\r\nHost: localhost:8080\r\n\r\n"
	typicalResponse = "HTTP/1.1 200 OK\r\n" +
		"Server: nginx/1.24.0\r\n" +
		"Date: Sun, 29 Nov 2026 08:00:00 GMT\r\n" +
		"Content-Type: application/json; charset=utf-8\r\n" +
		"Content-Length: 1024\r\n" +
		"Connection: keep-alive\r\n" +
		"Cache-Control: private, max-age=0\r\n" +
		"ETag: \"5f3a-1b2c3d\"\r\n" +
		"Vary: Accept-Encoding\r\n\r\n"
)

var requestBenchmarks = []struct{ name, in string }{
	{"typical", typicalRequest},
	{"minimal", minimalRequest},
}

func BenchmarkParseRequest(b *testing.B) {
	for _, bm := range requestBenchmarks {
		b.Run("req="+bm.name, func(b *testing.B) {
			var src bytes.Reader
			r := NewReader(&src)
			var req Request
			data := []byte(bm.in)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				src.Reset(data)
				r.Reset(&src)
				if err := r.ReadRequest(&req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParseResponse(b *testing.B) {
	var src bytes.Reader
	r := NewReader(&src)
	var resp Response
	data := []byte(typicalResponse)
	get := []byte("GET")
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		src.Reset(data)
		r.Reset(&src)
		if err := r.ReadResponse(&resp, get); err != nil {
			b.Fatal(err)
		}
	}
}

// rewriteRequest is the proxy's head rewrite: end-to-end fields forwarded,
// X-Forwarded-For extended, X-Forwarded-Proto added.
func rewriteRequest(dst []byte, req *Request, clientIP string) []byte {
	dst = AppendRequestLine(dst, req.Method, req.Target, HTTP11)
	var xff []byte
	hop := req.Headers.HopByHop()
	for _, h := range req.Headers {
		switch {
		case hop.Has(h.Name):
		case equalFold(h.Name, "x-forwarded-for"):
			xff = h.Value
		default:
			dst = AppendHeader(dst, h.Name, h.Value)
		}
	}
	dst = append(dst, "X-Forwarded-For: "...)
	if len(xff) > 0 {
		dst = append(append(dst, xff...), ", "...)
	}
	dst = append(append(dst, clientIP...), "\r\n"...)
	dst = AppendHeader(dst, "X-Forwarded-Proto", "http")
	return append(dst, "\r\n"...)
}

// BenchmarkWriteHead parses a head and serializes it rewritten, as the proxy
// does per request and per response.
func BenchmarkWriteHead(b *testing.B) {
	b.Run("msg=request", func(b *testing.B) {
		var src bytes.Reader
		r := NewReader(&src)
		var req Request
		data := []byte(typicalRequest)
		out := make([]byte, 0, 1024)
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			src.Reset(data)
			r.Reset(&src)
			if err := r.ReadRequest(&req); err != nil {
				b.Fatal(err)
			}
			out = rewriteRequest(out[:0], &req, "192.0.2.7")
		}
	})
	b.Run("msg=response", func(b *testing.B) {
		var src bytes.Reader
		r := NewReader(&src)
		var resp Response
		data := []byte(typicalResponse)
		get := []byte("GET")
		out := make([]byte, 0, 1024)
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			src.Reset(data)
			r.Reset(&src)
			if err := r.ReadResponse(&resp, get); err != nil {
				b.Fatal(err)
			}
			out = AppendStatusLine(out[:0], HTTP11, resp.Status, resp.Reason)
			out = append(resp.Headers.AppendEndToEnd(out), "\r\n"...)
		}
	})
}

func BenchmarkCopyChunked(b *testing.B) {
	for _, size := range []int{1 << 10, 16 << 10} {
		b.Run("size="+strconv.Itoa(size), func(b *testing.B) {
			var wire bytes.Buffer
			var cw ChunkedWriter
			cw.Reset(&wire)
			cw.Write(bytes.Repeat([]byte("x"), size))
			cw.Finish(nil)
			data := wire.Bytes()
			var src bytes.Reader
			r := NewReader(&src)
			var body Body
			var c Copier
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				src.Reset(data)
				r.Reset(&src)
				body.Reset(r, BodyChunked, -1)
				if _, err := c.Copy(io.Discard, &body, BodyChunked); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// The hot path does not allocate once buffers are warm. Not a timing test.
func TestZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	var src bytes.Reader
	r := NewReader(&src)
	var req Request
	var resp Response
	var body Body
	var c Copier
	out := make([]byte, 0, 1024)
	chunked := []byte("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"5\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n")
	reqData, respData, get := []byte(typicalRequest), []byte(typicalResponse), []byte("GET")
	for _, tt := range []struct {
		name string
		run  func()
	}{
		{"parse request", func() {
			src.Reset(reqData)
			r.Reset(&src)
			r.ReadRequest(&req)
		}},
		{"parse and rewrite request", func() {
			src.Reset(reqData)
			r.Reset(&src)
			r.ReadRequest(&req)
			out = rewriteRequest(out[:0], &req, "192.0.2.7")
		}},
		{"parse response", func() {
			src.Reset(respData)
			r.Reset(&src)
			r.ReadResponse(&resp, get)
		}},
		{"request with chunked body copied", func() {
			src.Reset(chunked)
			r.Reset(&src)
			r.ReadRequest(&req)
			body.Reset(r, req.BodyKind, req.ContentLength)
			c.Copy(io.Discard, &body, BodyChunked)
		}},
	} {
		tt.run() // warm the buffers
		if n := testing.AllocsPerRun(100, tt.run); n != 0 {
			t.Errorf("%s: %v allocs per run, want 0", tt.name, n)
		}
	}
	if !strings.Contains(string(out), "X-Forwarded-For: 10.0.0.1, 192.0.2.7\r\n") {
		t.Errorf("rewrite lost X-Forwarded-For: %q", out)
	}
}
