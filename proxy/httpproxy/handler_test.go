package httpproxy

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestHandlerService(t *testing.T) {
	step := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Handler", "yes")
		fmt.Fprintf(w, "hello %s %s %s", r.Method, r.Host, r.URL.Query().Get("q"))
	})
	mux.HandleFunc("/length", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "5")
		io.WriteString(w, "12345")
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(w, r.Body)
	})
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first;")
		w.(http.Flusher).Flush()
		select {
		case <-step:
		case <-time.After(10 * time.Second):
			return
		}
		io.WriteString(w, "second")
	})
	mux.HandleFunc("/nocontent", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	mux.HandleFunc("/teapot", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(418) })
	mux.HandleFunc("/panic", func(w http.ResponseWriter, r *http.Request) { panic("boom") })
	mux.HandleFunc("/short", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10")
		io.WriteString(w, "abc")
	})
	p := startProxy(t, serverTOML("", routeTOML("/{*p}", "", "127.0.0.1:1")), Options{Terminal: HandlerService(mux)})

	c := dialRaw(t, p.Addr)
	for _, tc := range []struct {
		req, method string
		status      int
		body        string
		length      int64
		close       bool
	}{
		{"GET /hello?q=1 HTTP/1.1\r\nHost: h.example\r\n\r\n", "GET", 200, "hello GET h.example 1", -1, false},
		{"GET /length HTTP/1.1\r\nHost: a\r\n\r\n", "GET", 200, "12345", 5, false},
		{"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", "POST", 200, "abcde", -1, false},
		{"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nwxyz", "POST", 200, "wxyz", -1, false},
		{"HEAD /hello HTTP/1.1\r\nHost: a\r\n\r\n", "HEAD", 200, "", -1, false},
		{"GET /nocontent HTTP/1.1\r\nHost: a\r\n\r\n", "GET", 204, "", -2, false},
		{"GET /teapot HTTP/1.1\r\nHost: a\r\n\r\n", "GET", 418, "", 0, false},
		{"GET /panic HTTP/1.1\r\nHost: a\r\n\r\n", "GET", 500, "500 Internal Server Error\n", -2, false},
		{"GET /short HTTP/1.1\r\nHost: a\r\n\r\n", "GET", 200, "", -2, true},
	} {
		name := strings.Fields(tc.req)[1]
		t.Run(name, func(t *testing.T) {
			c.send(t, tc.req)
			if tc.close {
				resp, err := http.ReadResponse(c.br, &http.Request{Method: tc.method})
				if err != nil || resp.StatusCode != tc.status {
					t.Fatalf("%v %v", resp, err)
				}
				if _, err := io.ReadAll(resp.Body); err == nil {
					t.Fatal("short body read whole")
				}
				c.expectClosed(t)
				return
			}
			resp, body := c.response(t, tc.method)
			if resp.StatusCode != tc.status || string(body) != tc.body {
				t.Fatalf("status %d %q", resp.StatusCode, body)
			}
			if tc.length != -2 && resp.ContentLength != tc.length {
				t.Errorf("Content-Length %d, want %d", resp.ContentLength, tc.length)
			}
			if resp.Close {
				t.Errorf("connection not kept")
			}
		})
	}

	t.Run("streaming", func(t *testing.T) {
		resp, err := client(t).Get("http://" + p.Addr + "/stream")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		first := make([]byte, len("first;"))
		if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "first;" {
			t.Fatalf("%q %v", first, err)
		}
		close(step)
		rest, _ := io.ReadAll(resp.Body)
		if string(rest) != "second" {
			t.Fatalf("rest %q", rest)
		}
	})
}

// TestClientNotReading: a client that stops reading an endless response is
// dropped after the write timeout, and the handler is stopped.
func TestClientNotReading(t *testing.T) {
	stopped := make(chan struct{})
	h := HandlerService(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(stopped)
		buf := make([]byte, 64<<10)
		for {
			if _, err := w.Write(buf); err != nil {
				return
			}
		}
	}))
	addr, srv := serveHandler(t, ServerConfig{WriteTimeout: 300 * time.Millisecond}, h)
	c := dialRaw(t, addr)
	c.send(t, "GET /endless HTTP/1.1\r\nHost: a\r\n\r\n")
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("handler still writing")
	}
	for deadline := time.Now().Add(5 * time.Second); srv.ActiveConns() != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("connection not dropped")
		}
	}
}

// TestHandlerSeesRewrite: a handler as the terminal service gets the
// request as an upstream would: the rewritten path, the forwarding fields
// the layers set (and not the client's made-up ones they drop).
func TestHandlerSeesRewrite(t *testing.T) {
	got := make(chan *http.Request, 1)
	h := HandlerService(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r
		io.WriteString(w, "ok")
	}))
	p := startProxy(t, serverTOML("", routeTOML("/api/{*rest}", `rewrite_path = "/v2/{rest}"`, "127.0.0.1:1")), Options{Terminal: h})
	resp, body := do(t, client(t), "GET", "http://"+p.Addr+"/api/users/7?x=1", "client.example", http.Header{"X-Forwarded-Proto": {"https"}}, nil)
	if resp.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	r := <-got
	if r.URL.Path != "/v2/users/7" || r.URL.RawQuery != "x=1" || r.RequestURI != "/v2/users/7?x=1" {
		t.Errorf("handler saw %q (path %q, query %q), want /v2/users/7?x=1", r.RequestURI, r.URL.Path, r.URL.RawQuery)
	}
	if v := r.Header.Values("X-Forwarded-Proto"); len(v) != 1 || v[0] != "http" {
		t.Errorf("X-Forwarded-Proto %q, want the proxy's http", v)
	}
	if v := r.Header.Get("X-Forwarded-For"); v != "127.0.0.1" {
		t.Errorf("X-Forwarded-For %q", v)
	}
	if r.Header.Get("X-Request-Id") == "" || r.Host != "client.example" || r.TLS != nil {
		t.Errorf("X-Request-Id %q, Host %q, TLS %v", r.Header.Get("X-Request-Id"), r.Host, r.TLS)
	}
}

// TestHandlerHeaderSanitized: line breaks in a handler's header value (say
// one built from request data) become spaces, as in net/http, so they add
// no field and no response; a name that is no token is dropped; a status
// outside 100..999 is the handler's panic (500).
func TestHandlerHeaderSanitized(t *testing.T) {
	h := HandlerService(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/bad-status" {
			w.WriteHeader(1000)
			return
		}
		w.Header().Set("Location", "/x\r\nSet-Cookie: evil=1\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil")
		w.Header()["Bad Name"] = []string{"v"}
		w.WriteHeader(302)
	}))
	addr, _ := serveHandler(t, ServerConfig{}, h)
	c := dialRaw(t, addr)
	c.send(t, "GET /a HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, _ := c.response(t, "GET")
	if resp.StatusCode != 302 || resp.Header.Get("Set-Cookie") != "" || resp.Header.Get("Bad Name") != "" {
		t.Fatalf("status %d, header %v: a field was injected or a bad name sent", resp.StatusCode, resp.Header)
	}
	if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, "/x  Set-Cookie: evil=1") {
		t.Errorf("Location = %q, want its line breaks as spaces", loc)
	}
	c.send(t, "GET /bad-status HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, body := c.response(t, "GET"); resp.StatusCode != 500 {
		t.Errorf("WriteHeader(1000): %d %q, want 500", resp.StatusCode, body)
	}
}

// TestHandlerNoHopByHop: a handler sees the request as an upstream would
// get it: without the hop-by-hop fields, nor those Connection names.
func TestHandlerNoHopByHop(t *testing.T) {
	seen := make(chan http.Header, 1)
	h := HandlerService(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		io.WriteString(w, "ok")
	}))
	addr, _ := serveHandler(t, ServerConfig{}, h)
	c := dialRaw(t, addr)
	c.send(t, "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Internal-Auth\r\nX-Internal-Auth: yes\r\n"+
		"Keep-Alive: 5\r\nTE: gzip\r\nProxy-Authorization: Basic Zm9vOmJhcg==\r\nX-Kept: 1\r\n\r\n")
	if resp, body := c.response(t, "GET"); resp.StatusCode != 200 {
		t.Fatalf("status %d %q", resp.StatusCode, body)
	}
	hd := <-seen
	for _, name := range []string{"Connection", "X-Internal-Auth", "Keep-Alive", "Te", "Proxy-Authorization"} {
		if v, ok := hd[name]; ok {
			t.Errorf("the handler got %s: %v", name, v)
		}
	}
	if hd.Get("X-Kept") != "1" {
		t.Errorf("X-Kept missing from %v", hd)
	}
}

// TestContinueNotAfterFinalHead: a service that answers before it reads
// the body (a handler that writes, then reads) gets its body without a
// "100 Continue" landing inside the response; the 100 went out straight
// to the socket mid-body, breaking the chunked framing (and the flag that
// said so was read and written by two goroutines).
func TestContinueNotAfterFinalHead(t *testing.T) {
	read := make(chan struct{})
	h := HandlerService(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		io.WriteString(w, "start:")
		w.(http.Flusher).Flush()
		<-read // the head and the first chunk are out
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	}))
	p := startProxy(t, serverTOML("", routeTOML("/{*p}", "", "127.0.0.1:1")), Options{Terminal: h})
	c := dialRaw(t, p.Addr)
	c.send(t, "POST /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	resp, err := http.ReadResponse(c.br, &http.Request{Method: "POST"})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	close(read)
	c.send(t, "hello") // the client may send the body without the 100
	b, err := io.ReadAll(resp.Body)
	if err != nil || string(b) != "start:hello" {
		t.Fatalf("body %q, %v: want start:hello", b, err)
	}
}
