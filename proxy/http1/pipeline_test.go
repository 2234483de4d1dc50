package http1

import (
	"io"
	"strings"
	"testing"
)

// Several requests in one buffer come out in order, each with its body, and
// nothing of the next is eaten by the previous body.
func TestPipelined(t *testing.T) {
	bigChunks := strings.Repeat("400\r\n"+strings.Repeat("c", 1024)+"\r\n", 12)
	in := "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n" +
		"POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello" +
		"POST /3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: t\r\n\r\n" +
		"\r\n" + // an empty line between requests is skipped
		"POST /4 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + bigChunks + "0\r\n\r\n" +
		"GET /5 HTTP/1.0\r\n\r\n"
	want := []struct {
		target, body, trailer string
		keepAlive             bool
	}{
		{"/1", "", "", true},
		{"/2", "hello", "", true},
		{"/3", "abc", "t", true},
		{"/4", strings.Repeat("c", 12*1024), "", true},
		{"/5", "", "", false},
	}
	for rname, rd := range readers(in) {
		t.Run(rname, func(t *testing.T) {
			r := NewReader(rd)
			var req Request
			var b Body
			for i, w := range want {
				if err := r.ReadRequest(&req); err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				b.Reset(r, req.BodyKind, req.ContentLength)
				body, err := io.ReadAll(&b)
				if err != nil {
					t.Fatalf("request %d body: %v", i, err)
				}
				// The head is still intact after its body was read.
				if string(req.Target) != w.target || string(req.Host) != hostOf(w.target) {
					t.Fatalf("request %d: target %q host %q, want %q", i, req.Target, req.Host, w.target)
				}
				if string(body) != w.body {
					t.Fatalf("request %d: body %d bytes, want %d", i, len(body), len(w.body))
				}
				if got := string(b.Trailers().Get("x-t")); got != w.trailer {
					t.Fatalf("request %d: trailer %q, want %q", i, got, w.trailer)
				}
				if req.KeepAlive != w.keepAlive {
					t.Fatalf("request %d: keep-alive %v", i, req.KeepAlive)
				}
			}
			if err := r.ReadRequest(&req); err != io.EOF {
				t.Fatalf("after the last request: %v, want io.EOF", err)
			}
		})
	}
}

func hostOf(target string) string {
	if target == "/5" {
		return "" // HTTP/1.0 without Host
	}
	return "a"
}

// Head slices survive body reads that refill and slide the buffer, and a
// buffer that must grow while a head is pinned.
func TestHeadPinnedDuringBody(t *testing.T) {
	pad := strings.Repeat("p", 3500) // head fills most of the first 4 KiB buffer
	in := "POST /x HTTP/1.1\r\nHost: a\r\nX-Pad: " + pad + "\r\nTransfer-Encoding: chunked\r\n\r\n" +
		strings.Repeat("1;"+strings.Repeat("e", 900)+"\r\nz\r\n", 20) + "0\r\nX-T: " + strings.Repeat("t", 2000) + "\r\n\r\n"
	for rname, rd := range readers(in) {
		t.Run(rname, func(t *testing.T) {
			r := NewReader(rd)
			var req Request
			if err := r.ReadRequest(&req); err != nil {
				t.Fatal(err)
			}
			var b Body
			b.Reset(r, req.BodyKind, req.ContentLength)
			body, err := io.ReadAll(&b)
			if err != nil || string(body) != strings.Repeat("z", 20) {
				t.Fatalf("body %q, %v", body, err)
			}
			if string(req.Method) != "POST" || string(req.Target) != "/x" || string(req.Headers.Get("x-pad")) != pad {
				t.Fatal("head overwritten by the body read")
			}
			if len(b.Trailers().Get("x-t")) != 2000 {
				t.Fatal("trailer lost")
			}
		})
	}
}

// An HTTP/1.0 client gets keep-alive only when it asks; HTTP/1.1 unless it
// says close.
func TestKeepAliveRules(t *testing.T) {
	h := func(conn ...string) Headers {
		var hs Headers
		for _, c := range conn {
			hs = append(hs, Header{Name: []byte("Connection"), Value: []byte(c)})
		}
		return hs
	}
	for _, tt := range []struct {
		v    Version
		hs   Headers
		want bool
	}{
		{HTTP10, nil, false},
		{HTTP10, h("keep-alive"), true},
		{HTTP10, h("Keep-Alive"), true},
		{HTTP10, h("keep-alive", "close"), false},
		{HTTP10, h("upgrade"), false},
		{HTTP11, nil, true},
		{HTTP11, h("close"), false},
		{HTTP11, h("foo, Close"), false},
		{HTTP11, h("keep-alive"), true},
		{HTTP11, h("closed"), true},
	} {
		if got := KeepAlive(tt.v, tt.hs); got != tt.want {
			t.Errorf("KeepAlive(%v, %q) = %v, want %v", tt.v, tt.hs.AppendTo(nil), got, tt.want)
		}
	}
}
