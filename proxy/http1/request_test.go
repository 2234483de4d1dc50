package http1

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// reqWant is what a valid request parses to.
type reqWant struct {
	method, target string
	version        Version
	headers        int
	host           string
	kind           BodyKind
	length         int64
	keepAlive      bool
	expect         bool
	upgrade        bool
}

var requestTests = []struct {
	name   string
	in     string
	status int // 0: valid
	want   reqWant
}{
	{name: "get", in: "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		want: reqWant{method: "GET", target: "/", version: HTTP11, headers: 1, host: "a", length: -1, keepAlive: true}},
	{name: "http10", in: "GET /x?y=1 HTTP/1.0\r\n\r\n",
		want: reqWant{method: "GET", target: "/x?y=1", version: HTTP10, length: -1}},
	{name: "http10 keep-alive", in: "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
		want: reqWant{method: "GET", target: "/", version: HTTP10, headers: 1, length: -1, keepAlive: true}},
	{name: "http10 keep-alive and close", in: "GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n",
		want: reqWant{method: "GET", target: "/", version: HTTP10, headers: 2, length: -1}},
	{name: "http11 close", in: "GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive, CLOSE\r\n\r\n",
		want: reqWant{method: "GET", target: "/", version: HTTP11, headers: 2, host: "a", length: -1}},
	{name: "content-length", in: "POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
		want: reqWant{method: "POST", target: "/p", version: HTTP11, headers: 2, host: "a", kind: BodyLength, length: 5, keepAlive: true}},
	{name: "content-length zero", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
		want: reqWant{method: "POST", target: "/", version: HTTP11, headers: 2, host: "a", length: 0, keepAlive: true}},
	{name: "content-length repeated", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\nabc",
		want: reqWant{method: "POST", target: "/", version: HTTP11, headers: 3, host: "a", kind: BodyLength, length: 3, keepAlive: true}},
	{name: "content-length list", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc",
		want: reqWant{method: "POST", target: "/", version: HTTP11, headers: 2, host: "a", kind: BodyLength, length: 3, keepAlive: true}},
	{name: "chunked", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n",
		want: reqWant{method: "POST", target: "/", version: HTTP11, headers: 2, host: "a", kind: BodyChunked, length: -1, keepAlive: true}},
	{name: "expect", in: "PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\nx",
		want: reqWant{method: "PUT", target: "/", version: HTTP11, headers: 3, host: "a", kind: BodyLength, length: 1, keepAlive: true, expect: true}},
	{name: "expect ignored in 1.0", in: "PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n",
		want: reqWant{method: "PUT", target: "/", version: HTTP10, headers: 1, length: -1}},
	{name: "upgrade", in: "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n",
		want: reqWant{method: "GET", target: "/ws", version: HTTP11, headers: 3, host: "a", length: -1, keepAlive: true, upgrade: true}},
	{name: "upgrade not in connection", in: "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n",
		want: reqWant{method: "GET", target: "/ws", version: HTTP11, headers: 2, host: "a", length: -1, keepAlive: true}},
	{name: "leading empty lines", in: "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
		want: reqWant{method: "GET", target: "/", version: HTTP11, headers: 1, host: "a", length: -1, keepAlive: true}},
	{name: "absolute form", in: "GET http://a.example/x HTTP/1.1\r\nHost: a.example\r\n\r\n",
		want: reqWant{method: "GET", target: "http://a.example/x", version: HTTP11, headers: 1, host: "a.example", length: -1, keepAlive: true}},
	{name: "absolute form wins over host", in: "GET HTTP://b.example:8080?q HTTP/1.1\r\nHost: a.example\r\n\r\n",
		want: reqWant{method: "GET", target: "HTTP://b.example:8080?q", version: HTTP11, headers: 1, host: "b.example:8080", length: -1, keepAlive: true}},
	{name: "absolute form in 1.0 without host", in: "GET http://b.example/ HTTP/1.0\r\n\r\n",
		want: reqWant{method: "GET", target: "http://b.example/", version: HTTP10, host: "b.example", length: -1}},
	{name: "absolute form without authority", in: "GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "absolute form with userinfo", in: "GET http://u@b.example/ HTTP/1.1\r\nHost: b.example\r\n\r\n", status: 400},
	{name: "authority form", in: "CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n",
		want: reqWant{method: "CONNECT", target: "a.example:443", version: HTTP11, headers: 1, host: "a.example:443", length: -1, keepAlive: true}},
	{name: "asterisk form", in: "OPTIONS * HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
		want: reqWant{method: "OPTIONS", target: "*", version: HTTP11, headers: 1, host: "[::1]:8080", length: -1, keepAlive: true}},
	{name: "whitespace trimmed", in: "GET / HTTP/1.1\r\nHost:a\r\nX-A: \t b c \t\r\nX-Empty:\r\nX-Obs: caf\xc3\xa9\r\n\r\n",
		want: reqWant{method: "GET", target: "/", version: HTTP11, headers: 4, host: "a", length: -1, keepAlive: true}},
	{name: "empty host", in: "GET / HTTP/1.1\r\nHost: \r\n\r\n", status: 400},
	{name: "empty host in 1.0", in: "GET / HTTP/1.0\r\nHost:\r\n\r\n", status: 400},
	{name: "empty host beside absolute form", in: "GET http://a.example/ HTTP/1.1\r\nHost: \r\n\r\n", status: 400},
	{name: "host without name", in: "GET / HTTP/1.1\r\nHost: :80\r\n\r\n", status: 400},
	{name: "host only a dot", in: "GET / HTTP/1.1\r\nHost: .\r\n\r\n", status: 400},
	{name: "host with empty label", in: "GET / HTTP/1.1\r\nHost: a..example\r\n\r\n", status: 400},
	{name: "host with empty last label", in: "GET / HTTP/1.1\r\nHost: a..\r\n\r\n", status: 400},
	{name: "host only dots", in: "GET / HTTP/1.1\r\nHost: ..:80\r\n\r\n", status: 400},
	{name: "ip literal not closed", in: "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", status: 400},
	{name: "absolute form without host", in: "GET http://:80/ HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "host with trailing dot", in: "GET / HTTP/1.1\r\nHost: a.example.:8080\r\n\r\n",
		want: reqWant{method: "GET", target: "/", version: HTTP11, headers: 1, host: "a.example.:8080", length: -1, keepAlive: true}},
	{name: "extension method", in: "M-SEARCH /a|b{c} HTTP/1.1\r\nHost: a\r\n\r\n",
		want: reqWant{method: "M-SEARCH", target: "/a|b{c}", version: HTTP11, headers: 1, host: "a", length: -1, keepAlive: true}},

	{name: "double space", in: "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "lower-case method", in: "head / HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "mixed-case method", in: "Get / HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "trailing space", in: "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", status: 400},
	{name: "http09", in: "GET /\r\n\r\n", status: 400},
	{name: "lower-case version", in: "GET / http/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "short version", in: "GET / HTTP/2\r\nHost: a\r\n\r\n", status: 400},
	{name: "http2 version", in: "GET / HTTP/2.0\r\nHost: a\r\n\r\n", status: 505},
	{name: "http12 version", in: "GET / HTTP/1.2\r\nHost: a\r\n\r\n",
		want: reqWant{method: "GET", target: "/", version: HTTP11, headers: 1, host: "a", length: -1, keepAlive: true}},
	{name: "http09 version", in: "GET / HTTP/0.9\r\n\r\n", status: 505},
	{name: "bad method", in: "G@T / HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "space in target", in: "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "fragment in target", in: "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "control in target", in: "GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "non-ascii target", in: "GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "relative target", in: "GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "asterisk not options", in: "GET * HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "connect origin form", in: "CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "connect without port", in: "CONNECT a.example HTTP/1.1\r\nHost: a\r\n\r\n", status: 400},
	{name: "space before colon", in: "GET / HTTP/1.1\r\nHost : a\r\n\r\n", status: 400},
	{name: "obs-fold", in: "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", status: 400},
	{name: "leading whitespace", in: "GET / HTTP/1.1\r\n Host: a\r\n\r\n", status: 400},
	{name: "bare LF", in: "GET / HTTP/1.1\nHost: a\n\n", status: 400},
	{name: "bare LF in field", in: "GET / HTTP/1.1\r\nHost: a\n\r\n", status: 400},
	{name: "bare LF in request line", in: "GET / HTTP/1.1\nHost: a\r\n\r\n", status: 400},
	{name: "CR in value", in: "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", status: 400},
	{name: "NUL in value", in: "GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", status: 400},
	{name: "DEL in value", in: "GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n", status: 400},
	{name: "bad name", in: "GET / HTTP/1.1\r\nHost: a\r\nX(y): z\r\n\r\n", status: 400},
	{name: "empty name", in: "GET / HTTP/1.1\r\nHost: a\r\n: z\r\n\r\n", status: 400},
	{name: "no colon", in: "GET / HTTP/1.1\r\nHost: a\r\nXyz\r\n\r\n", status: 400},
	{name: "CL and TE", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", status: 400},
	{name: "TE and CL", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n", status: 400},
	{name: "differing CL", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", status: 400},
	{name: "differing CL list", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n", status: 400},
	{name: "CL not digits", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n", status: 400},
	{name: "CL negative", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", status: 400},
	{name: "CL plus", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", status: 400},
	{name: "CL empty", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", status: 400},
	{name: "CL overflow", in: "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", status: 400},
	{name: "TE gzip", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", status: 400},
	{name: "TE chunked then gzip", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", status: 400},
	{name: "TE gzip then chunked", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", status: 501},
	{name: "TE gzip line then chunked line", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", status: 501},
	{name: "TE chunked twice", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", status: 400},
	{name: "TE chunked with params", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n", status: 400},
	{name: "TE empty", in: "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", status: 400},
	{name: "TE in http10", in: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", status: 400},
	{name: "missing host", in: "GET / HTTP/1.1\r\n\r\n", status: 400},
	{name: "two hosts", in: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", status: 400},
	{name: "two hosts http10", in: "GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", status: 400},
	{name: "bad host", in: "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", status: 400},
	{name: "host with path", in: "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", status: 400},
	{name: "host with userinfo", in: "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", status: 400},
}

// readers returns ways to feed s to a Reader: whole, and a byte at a time
// (every refill path).
func readers(s string) map[string]io.Reader {
	return map[string]io.Reader{
		"whole":   strings.NewReader(s),
		"onebyte": iotest.OneByteReader(strings.NewReader(s)),
	}
}

func TestReadRequest(t *testing.T) {
	for _, tt := range requestTests {
		for rname, rd := range readers(tt.in) {
			t.Run(tt.name+"/"+rname, func(t *testing.T) {
				var req Request
				err := NewReader(rd).ReadRequest(&req)
				if tt.status != 0 {
					var pe *ProtocolError
					if !errors.As(err, &pe) {
						t.Fatalf("err = %v, want *ProtocolError %d", err, tt.status)
					}
					if pe.Status != tt.status {
						t.Fatalf("status = %d (%v), want %d", pe.Status, err, tt.status)
					}
					return
				}
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				got := reqWant{
					method: string(req.Method), target: string(req.Target), version: req.Version,
					headers: len(req.Headers), host: string(req.Host), kind: req.BodyKind,
					length: req.ContentLength, keepAlive: req.KeepAlive,
					expect: req.ExpectContinue, upgrade: req.Upgrade,
				}
				if got != tt.want {
					t.Fatalf("got  %+v\nwant %+v", got, tt.want)
				}
				// The helpers agree with what ReadRequest derived.
				if KeepAlive(req.Version, req.Headers) != req.KeepAlive {
					t.Error("KeepAlive helper disagrees")
				}
				if ExpectsContinue(req.Version, req.Headers) != req.ExpectContinue {
					t.Error("ExpectsContinue helper disagrees")
				}
				if IsUpgrade(req.Version, req.Headers) != req.Upgrade {
					t.Error("IsUpgrade helper disagrees")
				}
			})
		}
	}
}

func TestReadRequestFields(t *testing.T) {
	in := "GET / HTTP/1.1\r\nHost:a\r\nX-A: \t b c \t\r\nX-Empty:\r\nx-obs: caf\xc3\xa9\r\n\r\n"
	var req Request
	if err := NewReader(strings.NewReader(in)).ReadRequest(&req); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, want string }{
		{"host", "a"}, {"x-a", "b c"}, {"x-empty", ""}, {"x-obs", "caf\xc3\xa9"},
	} {
		if got := string(req.Headers.Get(tt.name)); got != tt.want {
			t.Errorf("Get(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
	if string(req.Headers.Get("X-A")) != "b c" || !req.Headers.HasToken("X-A", "B C") {
		t.Error("Get/HasToken not case-insensitive in the name asked for")
	}
	if req.Headers.Get("missing") != nil || req.Headers.Has("missing") || !req.Headers.Has("x-empty") {
		t.Error("Get/Has of absent or empty field wrong")
	}
}

func TestReadRequestEOF(t *testing.T) {
	for _, tt := range []struct {
		name, in string
		want     error
	}{
		{"empty", "", io.EOF},
		{"only empty lines", "\r\n\r\n", io.EOF},
		{"partial line", "GET / HT", io.ErrUnexpectedEOF},
		{"partial head", "GET / HTTP/1.1\r\nHost: a\r\n", io.ErrUnexpectedEOF},
		{"partial end", "GET / HTTP/1.1\r\nHost: a\r\n\r", io.ErrUnexpectedEOF},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var req Request
			err := NewReader(iotest.OneByteReader(strings.NewReader(tt.in))).ReadRequest(&req)
			if err != tt.want {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestHeadTooLarge(t *testing.T) {
	head := "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: " + strings.Repeat("p", 40) + "\r\n\r\n"
	for _, tt := range []struct {
		name string
		in   string
		max  int
		want error
	}{
		{"at limit", head, len(head), nil},
		{"over limit", head, len(head) - 1, ErrHeadTooLarge},
		{"never ends", "GET / HTTP/1.1\r\nX: " + strings.Repeat("p", 200), 64, ErrHeadTooLarge},
		{"empty line flood", strings.Repeat("\r\n", 100) + head, len(head), ErrHeadTooLarge},
		{"default", "GET / HTTP/1.1\r\nX: " + strings.Repeat("p", DefaultMaxHeadSize), 0, ErrHeadTooLarge},
	} {
		for rname, rd := range readers(tt.in) {
			t.Run(tt.name+"/"+rname, func(t *testing.T) {
				r := NewReader(rd)
				r.MaxHeadSize = tt.max
				var req Request
				if err := r.ReadRequest(&req); err != tt.want {
					t.Fatalf("err = %v, want %v", err, tt.want)
				}
				if tt.want == ErrHeadTooLarge && ErrHeadTooLarge.Status != 431 {
					t.Fatal("ErrHeadTooLarge is not 431")
				}
			})
		}
	}
}

func TestTooManyHeaders(t *testing.T) {
	fields := func(n int) string { return strings.Repeat("a:\r\n", n) }
	for _, tt := range []struct {
		name string
		max  int
		in   string
		want error
	}{
		{"at default", 0, "GET / HTTP/1.1\r\nHost: a\r\n" + fields(DefaultMaxHeaders-1) + "\r\n", nil},
		{"over default", 0, "GET / HTTP/1.1\r\nHost: a\r\n" + fields(DefaultMaxHeaders) + "\r\n", ErrTooManyHeaders},
		{"over set", 3, "GET / HTTP/1.1\r\nHost: a\r\n" + fields(3) + "\r\n", ErrTooManyHeaders},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(strings.NewReader(tt.in))
			r.MaxHeaders = tt.max
			var req Request
			if err := r.ReadRequest(&req); err != tt.want {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	r := NewReader(strings.NewReader("HTTP/1.1 204 No Content\r\n" + fields(3) + "\r\n"))
	r.MaxHeaders = 2
	var resp Response
	var pe *ProtocolError
	if err := r.ReadResponse(&resp, nil); !errors.As(err, &pe) || pe.Status != 502 {
		t.Fatalf("response: err = %v, want 502", err)
	}
	r = NewReader(strings.NewReader("0\r\n" + fields(3) + "\r\n"))
	r.MaxHeaders = 2
	var b Body
	b.Reset(r, BodyChunked, -1)
	if _, err := io.ReadAll(&b); err != ErrTrailersTooLarge {
		t.Fatalf("trailers: err = %v, want ErrTrailersTooLarge", err)
	}
}

func TestProtocolErrorMessage(t *testing.T) {
	var req Request
	err := NewReader(strings.NewReader("GET / HTTP/1.1\r\n\r\n")).ReadRequest(&req)
	if !errors.Is(err, ErrMissingHost) || !strings.HasPrefix(err.Error(), "http1: ") {
		t.Fatalf("err = %v", err)
	}
}

// A request and its serialized head parse to the same thing.
func TestRequestAppendHeadRoundTrip(t *testing.T) {
	for _, tt := range requestTests {
		if tt.status != 0 {
			continue
		}
		t.Run(tt.name, func(t *testing.T) {
			var a, b Request
			if err := NewReader(strings.NewReader(tt.in)).ReadRequest(&a); err != nil {
				t.Fatal(err)
			}
			out := a.AppendHead(nil)
			if err := NewReader(bytes.NewReader(out)).ReadRequest(&b); err != nil {
				t.Fatalf("reparse %q: %v", out, err)
			}
			if !sameRequest(&a, &b) {
				t.Fatalf("round trip changed the request:\n%q", out)
			}
		})
	}
}

func sameRequest(a, b *Request) bool {
	if !bytes.Equal(a.Method, b.Method) || !bytes.Equal(a.Target, b.Target) || a.Version != b.Version ||
		!bytes.Equal(a.Host, b.Host) || a.BodyKind != b.BodyKind || a.ContentLength != b.ContentLength ||
		a.KeepAlive != b.KeepAlive || a.ExpectContinue != b.ExpectContinue || a.Upgrade != b.Upgrade ||
		len(a.Headers) != len(b.Headers) {
		return false
	}
	for i := range a.Headers {
		if !bytes.Equal(a.Headers[i].Name, b.Headers[i].Name) || !bytes.Equal(a.Headers[i].Value, b.Headers[i].Value) {
			return false
		}
	}
	return true
}

// TestBareCRRejectedWithoutMoreInput: a head with a bare CR is refused
// (400) from what arrived, as a bare LF is; it waited for an LF that would
// not make it valid, until the connection's header timeout (then 408).
func TestBareCRRejectedWithoutMoreInput(t *testing.T) {
	for _, in := range []string{
		"GET / HTTP/1.1\rHost: a\r\r",
		"GET / HTTP/1.1\r\nHost: a\rX: b\r\r",
	} {
		pr, pw := io.Pipe()
		go pw.Write([]byte(in)) // and nothing more: the connection stays open
		done := make(chan error, 1)
		go func() {
			var req Request
			done <- NewReader(pr).ReadRequest(&req)
		}()
		select {
		case err := <-done:
			var pe *ProtocolError
			if !errors.As(err, &pe) || pe.Status != 400 {
				t.Errorf("%q: %v, want a 400", in, err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("%q: still waiting for more input", in)
		}
		pw.Close()
	}
}
