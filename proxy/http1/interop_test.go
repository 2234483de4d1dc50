package http1

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// echoServer serves HTTP/1.1 with this package on a loopback listener: it
// answers each request with its method, target and body, chunked, with a
// trailer carrying the body length. It counts connections.
func echoServer(t *testing.T) (addr string, conns *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	conns = new(atomic.Int32)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go serveEcho(c)
		}
	}()
	return ln.Addr().String(), conns
}

func serveEcho(c net.Conn) {
	defer c.Close()
	r := NewReader(c)
	var (
		req  Request
		body Body
		cw   ChunkedWriter
		head []byte
	)
	cw.Reset(c)
	for {
		if err := r.ReadRequest(&req); err != nil {
			if pe, ok := err.(*ProtocolError); ok {
				head = AppendStatusLine(head[:0], HTTP11, pe.Status, nil)
				c.Write(append(AppendHeader(AppendContentLength(head, 0), "Connection", "close"), "\r\n"...))
			}
			return
		}
		if req.ExpectContinue {
			c.Write(append(AppendStatusLine(head[:0], HTTP11, 100, nil), "\r\n"...))
		}
		body.Reset(r, req.BodyKind, req.ContentLength)
		data, err := io.ReadAll(&body)
		if err != nil {
			return
		}
		head = AppendStatusLine(head[:0], HTTP11, 200, nil)
		head = AppendHeader(head, "Transfer-Encoding", "chunked")
		head = AppendHeader(head, "Trailer", "X-Echo-Len")
		if tr := body.Trailers().Get("x-sum"); tr != nil {
			head = AppendHeader(head, "X-Got-Trailer", tr)
		}
		if !req.KeepAlive {
			head = AppendHeader(head, "Connection", "close")
		}
		c.Write(append(head, "\r\n"...))
		fmt.Fprintf(&cw, "%s %s ", req.Method, req.Target)
		cw.Write(data)
		cw.Finish(Headers{{Name: []byte("X-Echo-Len"), Value: fmt.Append(nil, len(data))}})
		if !req.KeepAlive {
			return
		}
	}
}

// net/http's client talks to a server built on this package: chunked
// request bodies with trailers, Expect: 100-continue, keep-alive reuse, and
// chunked responses with trailers.
func TestInteropNetHTTPClient(t *testing.T) {
	addr, conns := echoServer(t)
	client := &http.Client{Transport: &http.Transport{
		DisableCompression:    true,
		ExpectContinueTimeout: 5 * time.Second,
	}}
	defer client.CloseIdleConnections()
	for _, tt := range []struct {
		name     string
		newReq   func() *http.Request
		want     string
		trailer  string
		received string // X-Got-Trailer
	}{
		{name: "get", newReq: func() *http.Request {
			req, _ := http.NewRequest("GET", "http://"+addr+"/a?b=c", nil)
			return req
		}, want: "GET /a?b=c ", trailer: "0"},
		{name: "content-length", newReq: func() *http.Request {
			req, _ := http.NewRequest("POST", "http://"+addr+"/p", strings.NewReader("hello"))
			return req
		}, want: "POST /p hello", trailer: "5"},
		{name: "chunked with trailer", newReq: func() *http.Request {
			req, _ := http.NewRequest("PUT", "http://"+addr+"/c", io.MultiReader(strings.NewReader("chunk"), strings.NewReader("ed")))
			req.ContentLength = -1
			req.Trailer = http.Header{"X-Sum": {"7"}}
			return req
		}, want: "PUT /c chunked", trailer: "7", received: "7"},
		{name: "expect continue", newReq: func() *http.Request {
			req, _ := http.NewRequest("POST", "http://"+addr+"/e", strings.NewReader("body"))
			req.Header.Set("Expect", "100-continue")
			return req
		}, want: "POST /e body", trailer: "4"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := client.Do(tt.newReq())
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want || resp.Trailer.Get("X-Echo-Len") != tt.trailer ||
				resp.Header.Get("X-Got-Trailer") != tt.received {
				t.Fatalf("body %q trailer %q got-trailer %q", got, resp.Trailer.Get("X-Echo-Len"), resp.Header.Get("X-Got-Trailer"))
			}
		})
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections, want 1 (keep-alive)", n)
	}
}

// A malformed request over a real connection gets its status and a close.
func TestInteropBadRequest(t *testing.T) {
	addr, _ := echoServer(t)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"))
	got, _ := io.ReadAll(c)
	if !bytes.HasPrefix(got, []byte("HTTP/1.1 400 Bad Request\r\n")) {
		t.Fatalf("got %q", got)
	}
}

// This package's client side against net/http's server: pipelined requests
// on one connection, responses parsed in order, with every framing.
func TestInteropNetHTTPServer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/length":
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "hello")
		case "/chunked":
			w.Header().Set("Trailer", "X-T")
			io.WriteString(w, "chun")
			w.(http.Flusher).Flush()
			io.WriteString(w, "ked")
			w.Header().Set("X-T", "done")
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/notmod":
			w.WriteHeader(http.StatusNotModified)
		}
	}))
	defer srv.Close()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	reqs := []struct{ method, path, body, trailer string }{
		{"GET", "/length", "hello", ""},
		{"GET", "/chunked", "chunked", "done"},
		{"HEAD", "/length", "", ""},
		{"GET", "/empty", "", ""},
		{"GET", "/notmod", "", ""},
		{"GET", "/length", "hello", ""},
	}
	var out []byte
	for _, rq := range reqs {
		out = AppendRequestLine(out, []byte(rq.method), []byte(rq.path), HTTP11)
		out = append(AppendHeader(out, "Host", "test"), "\r\n"...)
	}
	if _, err := c.Write(out); err != nil { // all pipelined in one write
		t.Fatal(err)
	}
	r := NewReader(c)
	var resp Response
	var body Body
	for i, rq := range reqs {
		if err := r.ReadResponse(&resp, []byte(rq.method)); err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		body.Reset(r, resp.BodyKind, resp.ContentLength)
		got, err := io.ReadAll(&body)
		if err != nil {
			t.Fatalf("response %d body: %v", i, err)
		}
		if string(got) != rq.body || string(body.Trailers().Get("x-t")) != rq.trailer || !resp.KeepAlive {
			t.Fatalf("response %d (%s %s): status %d body %q trailer %q keep-alive %v",
				i, rq.method, rq.path, resp.Status, got, body.Trailers().Get("x-t"), resp.KeepAlive)
		}
	}
}
