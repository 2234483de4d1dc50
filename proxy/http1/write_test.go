package http1

import (
	"strings"
	"testing"
)

func TestAppendLines(t *testing.T) {
	for _, tt := range []struct {
		name string
		got  []byte
		want string
	}{
		{"request line", AppendRequestLine(nil, []byte("GET"), []byte("/a?b"), HTTP11), "GET /a?b HTTP/1.1\r\n"},
		{"request line 1.0", AppendRequestLine([]byte("x"), []byte("HEAD"), []byte("/"), HTTP10), "xHEAD / HTTP/1.0\r\n"},
		{"status line", AppendStatusLine(nil, HTTP11, 200, []byte("Fine")), "HTTP/1.1 200 Fine\r\n"},
		{"status text", AppendStatusLine(nil, HTTP11, 431, nil), "HTTP/1.1 431 Request Header Fields Too Large\r\n"},
		{"unknown status", AppendStatusLine(nil, HTTP10, 599, nil), "HTTP/1.0 599 Status\r\n"},
		{"header string", AppendHeader(nil, "X-Forwarded-For", "1.2.3.4"), "X-Forwarded-For: 1.2.3.4\r\n"},
		{"header bytes", AppendHeader(nil, []byte("A"), []byte("b")), "A: b\r\n"},
		{"header mixed", AppendHeader(nil, "A", []byte("b")), "A: b\r\n"},
		{"content length", AppendContentLength(nil, 1234), "Content-Length: 1234\r\n"},
	} {
		if string(tt.got) != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

func TestHopByHop(t *testing.T) {
	in := "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Private, Upgrade\r\n" +
		"Keep-Alive: timeout=5\r\nX-Private: secret\r\nUpgrade: websocket\r\nTE: trailers\r\n" +
		"Proxy-Connection: keep-alive\r\nTransfer-Encoding: chunked\r\nAccept: */*\r\nx-private: again\r\n\r\n"
	var req Request
	if err := NewReader(strings.NewReader(in)).ReadRequest(&req); err != nil {
		t.Fatal(err)
	}
	got := string(req.Headers.AppendEndToEnd(nil))
	if want := "Host: a\r\nAccept: */*\r\n"; got != want {
		t.Fatalf("AppendEndToEnd = %q, want %q", got, want)
	}
	for _, tt := range []struct {
		name string
		want bool
	}{
		{"connection", true}, {"KEEP-ALIVE", true}, {"x-private", true}, {"Proxy-Authorization", true},
		{"trailer", false}, {"host", false}, {"x-privat", false}, {"accept", false},
	} {
		if got := req.Headers.IsHopByHop([]byte(tt.name)); got != tt.want {
			t.Errorf("IsHopByHop(%q) = %v, want %v", tt.name, got, tt.want)
		}
		hop := req.Headers.HopByHop()
		if got := hop.Has([]byte(tt.name)); got != tt.want {
			t.Errorf("HopByHop.Has(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// What a proxy does with a request head: forward the end-to-end fields, add
// its own, one buffer.
// More names in Connection than HopByHop holds still all count.
func TestHopByHopOverflow(t *testing.T) {
	hs := Headers{{Name: []byte("Connection"), Value: []byte("a, b, c, d, e, f, g, h, i, j, close, keep-alive")}}
	hop := hs.HopByHop()
	for _, name := range []string{"a", "h", "i", "J", "keep-alive", "upgrade"} {
		if !hop.Has([]byte(name)) {
			t.Errorf("Has(%q) = false", name)
		}
	}
	if hop.Has([]byte("k")) {
		t.Error("Has(k) = true")
	}
}

func TestRewriteHead(t *testing.T) {
	in := "GET /p HTTP/1.1\r\nHost: a\r\nConnection: close\r\nX-Forwarded-For: 10.0.0.1\r\nAccept: */*\r\n\r\n"
	var req Request
	if err := NewReader(strings.NewReader(in)).ReadRequest(&req); err != nil {
		t.Fatal(err)
	}
	out := AppendRequestLine(nil, req.Method, req.Target, HTTP11)
	var xff []byte
	for _, h := range req.Headers {
		switch {
		case req.Headers.IsHopByHop(h.Name):
		case equalFold(h.Name, "x-forwarded-for"):
			xff = h.Value
		default:
			out = AppendHeader(out, h.Name, h.Value)
		}
	}
	out = append(AppendHeader(out, "X-Forwarded-For", append(append(xff, ", "...), "192.0.2.7"...)), "\r\n"...)
	want := "GET /p HTTP/1.1\r\nHost: a\r\nAccept: */*\r\nX-Forwarded-For: 10.0.0.1, 192.0.2.7\r\n\r\n"
	if string(out) != want {
		t.Fatalf("got %q\nwant %q", out, want)
	}
}

func TestResponseAppendHead(t *testing.T) {
	in := "HTTP/1.1 404 Nope\r\nContent-Length: 0\r\nX-A: b\r\n\r\n"
	var resp Response
	if err := NewReader(strings.NewReader(in)).ReadResponse(&resp, []byte("GET")); err != nil {
		t.Fatal(err)
	}
	if got := string(resp.AppendHead(nil)); got != in {
		t.Fatalf("AppendHead = %q, want %q", got, in)
	}
}

func TestValidField(t *testing.T) {
	for _, tt := range []struct {
		name, value   string
		nameOK, valOK bool
	}{
		{"X-A", "b c", true, true},
		{"X A", "b\r\nInjected: 1", false, false},
		{"", " lead", false, false},
		{"X", "trail\t", true, false},
		{"X", "", true, true},
	} {
		if ValidFieldName([]byte(tt.name)) != tt.nameOK || ValidFieldValue([]byte(tt.value)) != tt.valOK {
			t.Errorf("ValidField(%q, %q) wrong", tt.name, tt.value)
		}
	}
}
