package httpproxy

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

var gzipText = strings.Repeat("The quick brown fox jumps over the lazy dog. ", 200)

func gzipUpstream(t *testing.T, streamGo <-chan struct{}) string {
	mux := http.NewServeMux()
	text := func(ct, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", ct)
			w.Header().Set("Content-Length", itoa64(len(body)))
			io.WriteString(w, body)
		}
	}
	mux.HandleFunc("/text", text("text/plain; charset=utf-8", gzipText))
	mux.HandleFunc("/json", text("application/json", `{"a":"`+gzipText+`"}`))
	mux.HandleFunc("/small", text("text/plain", "tiny"))
	mux.HandleFunc("/image", text("image/png", gzipText))
	mux.HandleFunc("/events", text("text/event-stream", gzipText))
	mux.HandleFunc("/etag", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Vary", "Accept-Encoding, Cookie")
		io.WriteString(w, gzipText)
	})
	mux.HandleFunc("/notransform", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Cache-Control", "public, no-transform")
		io.WriteString(w, gzipText)
	})
	mux.HandleFunc("/encoded", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Encoding", "br")
		io.WriteString(w, gzipText)
	})
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		for range 4 {
			io.WriteString(w, gzipText)
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, gzipText)
		w.(http.Flusher).Flush()
		select {
		case <-streamGo:
		case <-time.After(10 * time.Second):
			return // the test failed: cut the body short
		}
		io.WriteString(w, gzipText)
	})
	return startHTTP(t, mux)
}

func itoa64(n int) string { return strconv.Itoa(n) }

func TestGzip(t *testing.T) {
	streamGo := make(chan struct{})
	up := gzipUpstream(t, streamGo)
	p := startProxy(t, serverTOML("http_opt_handlers = { content_handler = true }", routeTOML("/{*p}", "", up)), Options{})
	c := client(t)
	gz := http.Header{"Accept-Encoding": {"br;q=0.5, gzip"}}
	for _, tc := range []struct {
		name, method, path string
		hdr                http.Header
		compressed         bool
		want               string
	}{
		{"text", "GET", "/text", gz, true, gzipText},
		{"json", "GET", "/json", gz, true, `{"a":"` + gzipText + `"}`},
		{"chunked upstream", "GET", "/chunked", gz, true, strings.Repeat(gzipText, 4)},
		{"no accept-encoding", "GET", "/text", nil, false, gzipText},
		{"identity only", "GET", "/text", http.Header{"Accept-Encoding": {"identity"}}, false, gzipText},
		{"q-values", "GET", "/text", http.Header{"Accept-Encoding": {"identity; q=0.5", "gzip;q=1.0"}}, true, gzipText},
		{"gzip refused", "GET", "/text", http.Header{"Accept-Encoding": {"gzip;q=0, *"}}, false, gzipText},
		{"any coding", "GET", "/text", http.Header{"Accept-Encoding": {"*;q=0.1"}}, true, gzipText},
		{"strong etag", "GET", "/etag", gz, true, gzipText},
		{"no-transform", "GET", "/notransform", gz, false, gzipText},
		{"event stream", "GET", "/events", gz, false, gzipText},
		{"small", "GET", "/small", gz, false, "tiny"},
		{"not text", "GET", "/image", gz, false, gzipText},
		{"already encoded", "GET", "/encoded", gz, false, gzipText},
		{"HEAD", "HEAD", "/text", gz, true, ""},
		{"HEAD without accept-encoding", "HEAD", "/text", nil, false, ""},
		{"HEAD strong etag", "HEAD", "/etag", gz, true, ""},
		{"HEAD small", "HEAD", "/small", gz, false, ""},
		{"HEAD not text", "HEAD", "/image", gz, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, c, tc.method, "http://"+p.Addr+tc.path, "", tc.hdr, nil)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			ce := resp.Header.Get("Content-Encoding")
			// Whether this client got gzip or not, a response that would
			// be compressed for another varies on Accept-Encoding, once.
			eligible := tc.path == "/text" || tc.path == "/json" || tc.path == "/chunked" || tc.path == "/etag"
			if n := strings.Count(strings.Join(resp.Header.Values("Vary"), ","), "Accept-Encoding"); eligible && n != 1 {
				t.Errorf("Vary %q: Accept-Encoding %d times", resp.Header.Values("Vary"), n)
			}
			if !tc.compressed {
				if ce == "gzip" {
					t.Fatalf("compressed")
				}
				if string(body) != tc.want {
					t.Fatalf("body changed: %d bytes", len(body))
				}
				if cl := resp.Header.Get("Content-Length"); tc.method == "HEAD" && tc.path != "/etag" && cl == "" {
					t.Errorf("HEAD lost the upstream's Content-Length")
				}
				return
			}
			if ce != "gzip" || !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
				t.Fatalf("Content-Encoding %q Vary %q", ce, resp.Header.Get("Vary"))
			}
			if resp.Header.Get("Content-Length") != "" {
				t.Errorf("Content-Length %q on a compressed body", resp.Header.Get("Content-Length"))
			}
			if et := resp.Header.Get("ETag"); tc.path == "/etag" && et != `W/"v1"` {
				t.Errorf("ETag %q on a compressed body, want the weak W/\"v1\"", et)
			}
			if tc.method == "HEAD" {
				if len(body) != 0 {
					t.Fatalf("a body of %d bytes to HEAD", len(body))
				}
				return
			}
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			plain, err := io.ReadAll(zr)
			if err != nil || string(plain) != tc.want {
				t.Fatalf("decompressed %d bytes, %v", len(plain), err)
			}
			if len(body) >= len(plain)/2 {
				t.Errorf("compressed %d to %d", len(plain), len(body))
			}
		})
	}

	t.Run("HTTP/1.0", func(t *testing.T) {
		c := dialRaw(t, p.Addr)
		c.send(t, "GET /text HTTP/1.0\r\nAccept-Encoding: gzip\r\n\r\n")
		resp, body := c.response(t, "GET")
		if resp.Header.Get("Content-Encoding") != "" || string(body) != gzipText {
			t.Fatalf("an HTTP/1.0 client got Content-Encoding %q", resp.Header.Get("Content-Encoding"))
		}
	})

	t.Run("streaming", func(t *testing.T) {
		req, _ := http.NewRequest("GET", "http://"+p.Addr+"/stream", nil)
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.Header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("not compressed")
		}
		// The first half arrives, and decompresses, before the upstream
		// sends the rest.
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		first := make([]byte, len(gzipText))
		if _, err := io.ReadFull(zr, first); err != nil || string(first) != gzipText {
			t.Fatalf("first half: %v", err)
		}
		close(streamGo)
		rest, err := io.ReadAll(zr)
		if err != nil || string(rest) != gzipText {
			t.Fatalf("rest: %d bytes, %v", len(rest), err)
		}
	})
}

// TestGzipOff: without content_handler nothing is compressed.
func TestGzipOff(t *testing.T) {
	up := gzipUpstream(t, nil)
	p := startProxy(t, serverTOML("", routeTOML("/{*p}", "", up)), Options{})
	resp, body := do(t, client(t), "GET", "http://"+p.Addr+"/text", "", http.Header{"Accept-Encoding": {"gzip"}}, nil)
	if resp.Header.Get("Content-Encoding") != "" || string(body) != gzipText {
		t.Fatalf("Content-Encoding %q", resp.Header.Get("Content-Encoding"))
	}
}

// TestGzipLevelChecked: a level compress/gzip refuses fails when the layer
// is built, not as a nil writer at the first compressed response.
func TestGzipLevelChecked(t *testing.T) {
	for _, level := range []int{10, -3} {
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "want -2 to 9") {
					t.Errorf("level %d: recovered %v, want a panic naming the range", level, r)
				}
			}()
			GzipLayer(GzipConfig{Level: level})
		}()
	}
	GzipLayer(GzipConfig{Level: gzip.BestCompression}) // fine
}

// TestGzipSmallChunks: a body that arrives as many small chunks at once is
// compressed as a whole, not flushed chunk by chunk (at level 1 that sent
// more bytes than the identity body).
func TestGzipSmallChunks(t *testing.T) {
	line := `{"id":12345,"name":"item","tags":["a","b","c"]}` + "\n" // 48 bytes
	const n = 2000
	up := rawRequests(t, func(c net.Conn, r *http.Request, body []byte) {
		var b strings.Builder
		b.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
		for range n {
			fmt.Fprintf(&b, "%x\r\n%s\r\n", len(line), line)
		}
		b.WriteString("0\r\n\r\n")
		io.WriteString(c, b.String())
	})
	p := startProxy(t, serverTOML("http_opt_handlers = { content_handler = true }", routeTOML("/{*p}", "", up)), Options{})
	c := dialRaw(t, p.Addr)
	c.send(t, "GET /list HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\n\r\n")
	resp, body := c.response(t, "GET")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("status %d, Content-Encoding %q", resp.StatusCode, resp.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil || string(plain) != strings.Repeat(line, n) {
		t.Fatalf("decompressed %d bytes (%v), want %d", len(plain), err, n*len(line))
	}
	if identity := n * len(line); len(body) > identity/10 {
		t.Errorf("compressed body %d bytes for %d: the chunks were compressed one by one", len(body), identity)
	}
}

// TestGzipHeadLikeGet: a HEAD answered by a handler (HandlerService as the
// terminal) gets the Content-Encoding, Vary and Content-Length the same
// GET gets: the handler's declared length decides, as an upstream's does.
func TestGzipHeadLikeGet(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/declared", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", itoa64(len(gzipText)))
		io.WriteString(w, gzipText)
	})
	mux.HandleFunc("/undeclared", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, gzipText)
	})
	mux.HandleFunc("/small", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", "4")
		io.WriteString(w, "tiny")
	})
	p := startProxy(t, serverTOML("http_opt_handlers = { content_handler = true }", routeTOML("/{*p}", "", "127.0.0.1:1")), Options{Terminal: HandlerService(mux)})
	c := client(t)
	gz := http.Header{"Accept-Encoding": {"gzip"}}
	for _, tc := range []struct {
		path       string
		compressed bool
	}{{"/declared", true}, {"/undeclared", true}, {"/small", false}} {
		get, _ := do(t, c, "GET", "http://"+p.Addr+tc.path, "", gz, nil)
		head, body := do(t, c, "HEAD", "http://"+p.Addr+tc.path, "", gz, nil)
		if get.StatusCode != 200 || head.StatusCode != 200 || len(body) != 0 {
			t.Fatalf("%s: GET %d, HEAD %d with %d bytes", tc.path, get.StatusCode, head.StatusCode, len(body))
		}
		if ce := get.Header.Get("Content-Encoding"); (ce == "gzip") != tc.compressed {
			t.Errorf("%s: GET's Content-Encoding %q", tc.path, ce)
		}
		for _, name := range []string{"Content-Encoding", "Vary", "Content-Length"} {
			if g, h := get.Header.Get(name), head.Header.Get(name); g != h {
				t.Errorf("%s: %s %q on GET, %q on HEAD", tc.path, name, g, h)
			}
		}
	}
}
