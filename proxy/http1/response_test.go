package http1

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

type respWant struct {
	version   Version
	status    int
	reason    string
	kind      BodyKind
	length    int64
	keepAlive bool
}

var responseTests = []struct {
	name   string
	method string
	in     string
	status int // expected ProtocolError status; 0: valid
	want   respWant
}{
	{name: "content-length", method: "GET", in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		want: respWant{HTTP11, 200, "OK", BodyLength, 5, true}},
	{name: "chunked", method: "GET", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		want: respWant{HTTP11, 200, "OK", BodyChunked, -1, true}},
	{name: "close-delimited", method: "GET", in: "HTTP/1.1 200 OK\r\n\r\nuntil close",
		want: respWant{HTTP11, 200, "OK", BodyClose, -1, false}},
	{name: "zero length", method: "GET", in: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		want: respWant{HTTP11, 200, "OK", BodyNone, 0, true}},
	{name: "head", method: "HEAD", in: "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",
		want: respWant{HTTP11, 200, "OK", BodyNone, 100, true}},
	{name: "head chunked", method: "HEAD", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
		want: respWant{HTTP11, 200, "OK", BodyNone, -1, true}},
	{name: "204", method: "GET", in: "HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n",
		want: respWant{HTTP11, 204, "No Content", BodyNone, 7, true}},
	{name: "204 without length", method: "DELETE", in: "HTTP/1.1 204 No Content\r\n\r\n",
		want: respWant{HTTP11, 204, "No Content", BodyNone, -1, true}},
	{name: "304", method: "GET", in: "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n",
		want: respWant{HTTP11, 304, "Not Modified", BodyNone, -1, true}},
	{name: "100", method: "POST", in: "HTTP/1.1 100 Continue\r\n\r\n",
		want: respWant{HTTP11, 100, "Continue", BodyNone, -1, true}},
	{name: "101", method: "GET", in: "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
		want: respWant{HTTP11, 101, "Switching Protocols", BodyNone, -1, false}},
	{name: "connect 200", method: "CONNECT", in: "HTTP/1.1 200 Connection Established\r\n\r\n",
		want: respWant{HTTP11, 200, "Connection Established", BodyNone, -1, false}},
	{name: "connect 407", method: "CONNECT", in: "HTTP/1.1 407 Proxy Auth\r\nContent-Length: 2\r\n\r\nno",
		want: respWant{HTTP11, 407, "Proxy Auth", BodyLength, 2, true}},
	{name: "no reason", method: "GET", in: "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
		want: respWant{HTTP11, 200, "", BodyNone, 0, true}},
	{name: "empty reason", method: "GET", in: "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n",
		want: respWant{HTTP11, 200, "", BodyNone, 0, true}},
	{name: "http10", method: "GET", in: "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
		want: respWant{HTTP10, 200, "OK", BodyLength, 2, false}},
	{name: "http10 keep-alive", method: "GET", in: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
		want: respWant{HTTP10, 200, "OK", BodyLength, 2, true}},
	{name: "connection close", method: "GET", in: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
		want: respWant{HTTP11, 200, "OK", BodyLength, 2, false}},

	{name: "short status", method: "GET", in: "HTTP/1.1 20 OK\r\n\r\n", status: 502},
	{name: "status letters", method: "GET", in: "HTTP/1.1 2x0 OK\r\n\r\n", status: 502},
	{name: "status zero", method: "GET", in: "HTTP/1.1 099 OK\r\n\r\n", status: 502},
	{name: "no space after code", method: "GET", in: "HTTP/1.1 2000\r\n\r\n", status: 502},
	{name: "version 2", method: "GET", in: "HTTP/2.0 200 OK\r\n\r\n", status: 502},
	{name: "garbage", method: "GET", in: "hello\r\n\r\n", status: 502},
	{name: "empty line first", method: "GET", in: "\r\nHTTP/1.1 200 OK\r\n\r\n", status: 502},
	{name: "CL and TE", method: "GET", in: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n", status: 502},
	{name: "TE gzip", method: "GET", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", status: 502},
	{name: "TE in http10", method: "GET", in: "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", status: 502},
	{name: "differing CL", method: "GET", in: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n", status: 502},
	{name: "bad CL", method: "GET", in: "HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\n", status: 502},
	{name: "obs-fold", method: "GET", in: "HTTP/1.1 200 OK\r\nX: a\r\n\tb\r\n\r\n", status: 502},
	{name: "space before colon", method: "GET", in: "HTTP/1.1 200 OK\r\nX : a\r\n\r\n", status: 502},
	{name: "bare LF", method: "GET", in: "HTTP/1.1 200 OK\nContent-Length: 0\n\n", status: 502},
	{name: "control in reason", method: "GET", in: "HTTP/1.1 200 O\x01K\r\n\r\n", status: 502},
}

func TestReadResponse(t *testing.T) {
	for _, tt := range responseTests {
		for rname, rd := range readers(tt.in) {
			t.Run(tt.name+"/"+rname, func(t *testing.T) {
				var resp Response
				err := NewReader(rd).ReadResponse(&resp, []byte(tt.method))
				if tt.status != 0 {
					var pe *ProtocolError
					if !errors.As(err, &pe) || pe.Status != tt.status {
						t.Fatalf("err = %v, want *ProtocolError %d", err, tt.status)
					}
					return
				}
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				got := respWant{resp.Version, resp.Status, string(resp.Reason), resp.BodyKind, resp.ContentLength, resp.KeepAlive}
				if got != tt.want {
					t.Fatalf("got  %+v\nwant %+v", got, tt.want)
				}
			})
		}
	}
}

// TestResponseBareCRNoWait: a status line with a bare CR is refused as
// soon as the byte after the CR is in, not after the upstream's read
// timeout (it waited for an LF that cannot make the line valid).
func TestResponseBareCRNoWait(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go io.WriteString(b, "HTTP/1.1 200 OK\rContent-Length: 0") // and nothing more
	a.SetReadDeadline(time.Now().Add(5 * time.Second))
	var resp Response
	err := NewReader(a).ReadResponse(&resp, []byte("GET"))
	var pe *ProtocolError
	if !errors.As(err, &pe) || pe.Status != 502 {
		t.Fatalf("err = %v, want *ProtocolError 502 at once", err)
	}
}

func TestResponseHeadTooLarge(t *testing.T) {
	r := NewReader(strings.NewReader("HTTP/1.1 200 OK\r\nX: " + strings.Repeat("x", 100) + "\r\n\r\n"))
	r.MaxHeadSize = 64
	var resp Response
	err := r.ReadResponse(&resp, []byte("GET"))
	var pe *ProtocolError
	if !errors.As(err, &pe) || pe.Status != 502 {
		t.Fatalf("err = %v, want 502", err)
	}
}

func TestResponseHasBody(t *testing.T) {
	for _, tt := range []struct {
		method string
		status int
		want   bool
	}{
		{"GET", 200, true}, {"HEAD", 200, false}, {"GET", 100, false}, {"GET", 101, false},
		{"GET", 204, false}, {"GET", 304, false}, {"GET", 404, true}, {"HEAD", 404, false},
		{"CONNECT", 200, false}, {"CONNECT", 407, true}, {"POST", 205, true},
	} {
		if got := ResponseHasBody([]byte(tt.method), tt.status); got != tt.want {
			t.Errorf("ResponseHasBody(%s, %d) = %v, want %v", tt.method, tt.status, got, tt.want)
		}
	}
}
