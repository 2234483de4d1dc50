package httpproxy

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// bodyUpstream is a net/http origin with handlers for the body tests.
func bodyUpstream(t *testing.T) string {
	mux := http.NewServeMux()
	// /sum answers with the request body's length, sha256 and framing.
	mux.HandleFunc("/sum", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprintf(w, "%d %x %v %s", n, h.Sum(nil), r.TransferEncoding, r.Trailer.Get("X-Sum"))
	})
	// /echo sends the request body back with its length.
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Length", fmt.Sprint(len(b)))
		w.Write(b)
	})
	// /chunked streams a body with trailers.
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Trailer")
		for i := range 5 {
			fmt.Fprintf(w, "part %d;", i)
			w.(http.Flusher).Flush()
		}
		w.Header().Set("X-Trailer", "done")
	})
	mux.HandleFunc("/len", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		w.Write(bytes.Repeat([]byte("x"), 1000))
	})
	mux.HandleFunc("/204", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	mux.HandleFunc("/304", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		w.WriteHeader(304)
	})
	mux.HandleFunc("/headers", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "expect=%q", r.Header.Get("Expect"))
	})
	return startHTTP(t, mux)
}

func startHTTP(t *testing.T, h http.Handler) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func bodyProxy(t *testing.T) *testProxy {
	up := bodyUpstream(t)
	return startProxy(t, serverTOML("", routeTOML("/{*p}", "", up)), Options{})
}

func TestBodies(t *testing.T) {
	p := bodyProxy(t)
	c := client(t)
	big := make([]byte, 1<<20)
	rand.Read(big)
	sum := sha256.Sum256(big)
	bigSum := hex.EncodeToString(sum[:])

	t.Run("content-length request 1MiB", func(t *testing.T) {
		resp, body := do(t, c, "POST", "http://"+p.Addr+"/sum", "", nil, bytes.NewReader(big))
		if want := fmt.Sprintf("%d %s [] ", len(big), bigSum); resp.StatusCode != 200 || string(body) != want {
			t.Fatalf("status %d: %q, want %q", resp.StatusCode, body, want)
		}
	})
	t.Run("content-length both ways 1MiB", func(t *testing.T) {
		resp, body := do(t, c, "POST", "http://"+p.Addr+"/echo", "", nil, bytes.NewReader(big))
		if resp.StatusCode != 200 || resp.ContentLength != int64(len(big)) || !bytes.Equal(body, big) {
			t.Fatalf("status %d, length %d, body equal %v", resp.StatusCode, resp.ContentLength, bytes.Equal(body, big))
		}
	})
	t.Run("chunked request with trailer", func(t *testing.T) {
		pr, pw := io.Pipe()
		go func() {
			for i := 0; i < len(big); i += 100 << 10 {
				pw.Write(big[i:min(i+100<<10, len(big))])
			}
			pw.Close()
		}()
		req, _ := http.NewRequest("POST", "http://"+p.Addr+"/sum", pr)
		req.Trailer = http.Header{"X-Sum": {bigSum[:8]}}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("%d %s [chunked] %s", len(big), bigSum, bigSum[:8]); string(body) != want {
			t.Fatalf("%q, want %q", body, want)
		}
	})
	t.Run("chunked response with trailers", func(t *testing.T) {
		resp, err := c.Get("http://" + p.Addr + "/chunked")
		if err != nil {
			t.Fatal(err)
		}
		// Announced in the head (the Trailer field is end-to-end).
		if _, ok := resp.Trailer["X-Trailer"]; !ok {
			t.Errorf("no Trailer field announcing X-Trailer (%v)", resp.Trailer)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "part 0;part 1;part 2;part 3;part 4;" {
			t.Fatalf("body %q", body)
		}
		if len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
			t.Errorf("transfer encoding %v", resp.TransferEncoding)
		}
		if got := resp.Trailer.Get("X-Trailer"); got != "done" {
			t.Errorf("trailer %q (%v)", got, resp.Trailer)
		}
	})
	t.Run("empty post", func(t *testing.T) {
		resp, body := do(t, c, "POST", "http://"+p.Addr+"/sum", "", nil, strings.NewReader(""))
		if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "0 ") {
			t.Fatalf("status %d %q", resp.StatusCode, body)
		}
	})
}

// TestPipelined: requests sent in one write are answered in order, bodies
// included.
func TestPipelined(t *testing.T) {
	p := bodyProxy(t)
	c := dialRaw(t, p.Addr)
	var b strings.Builder
	for i := range 5 {
		body := strings.Repeat(fmt.Sprint(i), i*1000)
		fmt.Fprintf(&b, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		fmt.Fprintf(&b, "GET /len HTTP/1.1\r\nHost: a\r\n\r\n")
		fmt.Fprintf(&b, "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab%d\r\n0\r\n\r\n", i)
	}
	c.send(t, b.String())
	for i := range 5 {
		resp, body := c.response(t, "POST")
		if want := strings.Repeat(fmt.Sprint(i), i*1000); resp.StatusCode != 200 || string(body) != want {
			t.Fatalf("response %d: status %d, %d bytes", i, resp.StatusCode, len(body))
		}
		if resp, body := c.response(t, "GET"); resp.StatusCode != 200 || len(body) != 1000 {
			t.Fatalf("response %d: status %d, %d bytes", i, resp.StatusCode, len(body))
		}
		if resp, body := c.response(t, "POST"); string(body) != fmt.Sprintf("ab%d", i) {
			t.Fatalf("response %d: status %d, %q", i, resp.StatusCode, body)
		}
	}
}

// TestHTTP10: an HTTP/1.0 client gets a length or a close-delimited body and
// the keep-alive it asked for.
func TestHTTP10(t *testing.T) {
	p := bodyProxy(t)
	for _, tc := range []struct {
		name, req string
		wantLen   int64 // -1: close-delimited
		wantBody  string
		keepAlive bool
	}{
		{"length", "GET /len HTTP/1.0\r\nHost: a\r\n\r\n", 1000, strings.Repeat("x", 1000), false},
		{"close-delimited", "GET /chunked HTTP/1.0\r\nHost: a\r\n\r\n", -1, "part 0;part 1;part 2;part 3;part 4;", false},
		{"keep-alive", "GET /len HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n", 1000, strings.Repeat("x", 1000), true},
		{"keep-alive close-delimited", "GET /chunked HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", -1, "part 0;part 1;part 2;part 3;part 4;", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, p.Addr)
			c.send(t, tc.req)
			resp, err := http.ReadResponse(c.br, &http.Request{Method: "GET"})
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.ContentLength != tc.wantLen || string(body) != tc.wantBody {
				t.Fatalf("length %d body %q", resp.ContentLength, body)
			}
			if len(resp.TransferEncoding) != 0 {
				t.Fatalf("transfer encoding %v to an HTTP/1.0 client", resp.TransferEncoding)
			}
			if v := resp.Header.Get("Trailer"); v != "" {
				t.Errorf("Trailer %q without a trailer section", v)
			}
			if !tc.keepAlive {
				if !resp.Close {
					t.Errorf("no Connection: close")
				}
				c.expectClosed(t)
				return
			}
			if resp.Header.Get("Connection") != "keep-alive" {
				t.Errorf("Connection %q", resp.Header.Get("Connection"))
			}
			c.send(t, tc.req)
			if resp, body := c.response(t, "GET"); resp.StatusCode != 200 || string(body) != tc.wantBody {
				t.Fatalf("second request: status %d", resp.StatusCode)
			}
		})
	}
}

// TestExpectContinue: the client gets 100 Continue, then the response; the
// upstream never sees Expect.
func TestExpectContinue(t *testing.T) {
	p := bodyProxy(t)
	c := dialRaw(t, p.Addr)
	for range 2 {
		c.send(t, "POST /headers HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
		line, err := c.br.ReadString('\n')
		if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
			t.Fatalf("got %q %v", line, err)
		}
		if l, _ := c.br.ReadString('\n'); l != "\r\n" {
			t.Fatalf("after 100: %q", l)
		}
		c.send(t, "hello")
		resp, body := c.response(t, "POST")
		if resp.StatusCode != 200 || string(body) != `expect=""` {
			t.Fatalf("status %d %q", resp.StatusCode, body)
		}
	}
	// No route: the final status comes without a 100, and the connection
	// is not kept, since the client may or may not send the body.
	c.send(t, "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	resp, _ := c.response(t, "POST")
	if resp.StatusCode != 404 || !resp.Close {
		t.Fatalf("status %d close %v", resp.StatusCode, resp.Close)
	}
}

// TestNoBodyResponses: HEAD, 204 and 304 carry no body and keep the
// connection.
func TestNoBodyResponses(t *testing.T) {
	p := bodyProxy(t)
	c := dialRaw(t, p.Addr)
	for _, tc := range []struct {
		method, path string
		status       int
		length       string
	}{
		{"HEAD", "/len", 200, "1000"},
		{"GET", "/204", 204, ""},
		{"GET", "/304", 304, ""},
		{"HEAD", "/chunked", 200, ""},
		{"HEAD", "/nothing", 404, "19"},
		{"GET", "/len", 200, "1000"},
	} {
		t.Run(tc.method+tc.path, func(t *testing.T) {
			c.send(t, tc.method+" "+tc.path+" HTTP/1.1\r\nHost: a\r\n\r\n")
			resp, body := c.response(t, tc.method)
			if resp.StatusCode != tc.status || resp.Header.Get("Content-Length") != tc.length && tc.method != "GET" {
				t.Fatalf("status %d, Content-Length %q", resp.StatusCode, resp.Header.Get("Content-Length"))
			}
			if tc.method == "HEAD" || tc.status != 200 {
				if len(body) != 0 {
					t.Fatalf("body %q", body)
				}
			}
			if resp.Close {
				t.Fatalf("connection not kept")
			}
		})
	}
	// Nothing stray on the wire: a last request still parses.
	c.send(t, "GET /len HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, body := c.response(t, "GET"); resp.StatusCode != 200 || len(body) != 1000 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	_ = bufio.NewReader
}
