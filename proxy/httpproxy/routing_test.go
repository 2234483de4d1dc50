package httpproxy

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
)

func TestRouting(t *testing.T) {
	names := []string{"exact-root", "exact-catch", "wild", "param", "static", "static-catch", "exact-path"}
	ups := map[string]*echoUpstream{}
	for _, n := range names {
		ups[n] = newEchoUpstream(t, n)
	}
	routes := routeTOML("/", `host = ["example.com"]`, ups["exact-root"].addr()) +
		routeTOML("/{*rest}", `host = ["example.com"]`, ups["exact-catch"].addr()) +
		routeTOML("/{*rest}", `host = ["*.example.com"]`, ups["wild"].addr()) +
		routeTOML("/api/users/{id}", "", ups["param"].addr()) +
		routeTOML("/api/users/me", "", ups["static"].addr()) +
		routeTOML("/static/{*file}", "", ups["static-catch"].addr()) +
		routeTOML("/exact", "", ups["exact-path"].addr())
	p := startProxy(t, serverTOML("", routes), Options{})
	c := client(t)
	for _, tc := range []struct {
		host, path string
		want       string // upstream name, "" for 404
	}{
		{"example.com", "/", "exact-root"},
		{"example.com", "/foo/bar", "exact-catch"},
		{"EXAMPLE.com:8080", "/foo", "exact-catch"},
		{"example.com", "/api/users/me", "exact-catch"}, // an exact host beats any-host routes
		{"a.example.com", "/x", "wild"},
		{"a.b.example.com", "/x/y", "wild"},
		{"other.org", "/api/users/42", "param"},
		{"other.org", "/api/users/me", "static"}, // static beats {param}
		{"other.org", "/static/css/a.css", "static-catch"},
		{"other.org", "/exact", "exact-path"},
		{"other.org", "/exact?q=1", "exact-path"},
		{"other.org", "/exact/more", ""},
		{"other.org", "/nothing", ""},
		{"other.org", "/", ""},
		{"example.org", "/api/users", ""},
	} {
		t.Run(tc.host+tc.path, func(t *testing.T) {
			resp, body := do(t, c, "GET", "http://"+p.Addr+tc.path, tc.host, nil, nil)
			if tc.want == "" {
				if resp.StatusCode != 404 {
					t.Fatalf("status %d, want 404; body %q", resp.StatusCode, body)
				}
				return
			}
			if resp.StatusCode != 200 {
				t.Fatalf("status %d; body %q", resp.StatusCode, body)
			}
			e := decodeEcho(t, body)
			if e.Name != tc.want {
				t.Fatalf("routed to %s, want %s", e.Name, tc.want)
			}
			if e.Target != tc.path {
				t.Errorf("upstream saw target %q, want %q", e.Target, tc.path)
			}
		})
	}
}

func TestRewrite(t *testing.T) {
	up := newEchoUpstream(t, "up")
	for _, tc := range []struct {
		name     string
		extra    string // server keys
		route    string // route keys
		target   string
		wantHost string // "" means the upstream's address
		want     string // target the upstream sees
	}{
		{"preserve host", "preserve_host = true", "", "/a?x=1", "client.example", "/a?x=1"},
		{"replace host", "preserve_host = false", "", "/a", "", "/a"},
		{"default keeps host", "", "", "/a", "client.example", "/a"},
		{"rewrite path keeps query", "", `rewrite_path = "/new/place"`, "/old/thing?a=1&b=%20", "client.example", "/new/place?a=1&b=%20"},
		{"rewrite path no query", "", `rewrite_path = "/new"`, "/old", "client.example", "/new"},
		{"rewrite with the rest", "", `rewrite_path = "/v2/{p}"`, "/users/42?x=1", "client.example", "/v2/users/42?x=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startProxy(t, serverTOML(tc.extra, routeTOML("/{*p}", tc.route, up.addr())), Options{})

			resp, body := do(t, client(t), "GET", "http://"+p.Addr+tc.target, "client.example", nil, nil)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			e := decodeEcho(t, body)
			want := tc.wantHost
			if want == "" {
				want = up.addr()
			}
			if e.Host != want {
				t.Errorf("upstream saw Host %q, want %q", e.Host, want)
			}
			if e.Target != tc.want {
				t.Errorf("upstream saw target %q, want %q", e.Target, tc.want)
			}
			if got := e.Header.Get("X-Forwarded-Host"); got != "client.example" {
				t.Errorf("X-Forwarded-Host %q", got)
			}
		})
	}
}

// TestHTTP10NoHost: an HTTP/1.0 request without Host is routed by the
// any-host routes and sent upstream with the upstream's authority.
func TestHTTP10NoHost(t *testing.T) {
	up := newEchoUpstream(t, "up")
	p := startProxy(t, serverTOML("", routeTOML("/{*p}", "", up.addr())), Options{})
	c := dialRaw(t, p.Addr)
	c.send(t, "GET /x HTTP/1.0\r\n\r\n")
	resp, body := c.response(t, "GET")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if e := decodeEcho(t, body); e.Host != up.addr() || !strings.HasPrefix(e.Proto, "HTTP/1.1") {
		t.Fatalf("upstream saw Host %q proto %q", e.Host, e.Proto)
	}
	_ = http.StatusOK
}

// TestAbsoluteForm: a request with an absolute-form target is routed by
// its path and sent upstream in origin form.
func TestAbsoluteForm(t *testing.T) {
	up := newEchoUpstream(t, "up")
	p := startProxy(t, serverTOML("", routeTOML("/api/{*p}", `host = ["example.com"]`, up.addr())), Options{})
	c := dialRaw(t, p.Addr)
	c.send(t, "GET http://example.com/api/x?y=1 HTTP/1.1\r\nHost: example.com\r\n\r\n")
	resp, body := c.response(t, "GET")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d %q", resp.StatusCode, body)
	}
	if e := decodeEcho(t, body); e.Target != "/api/x?y=1" || e.Host != "example.com" {
		t.Fatalf("upstream saw %q host %q", e.Target, e.Host)
	}
}

// TestAbsoluteFormNoPath: an absolute-form target without a path has the
// path "/" (RFC 9110 4.2.3); it was answered 404.
func TestAbsoluteFormNoPath(t *testing.T) {
	up := newEchoUpstream(t, "up")
	p := startProxy(t, serverTOML("", routeTOML("/", "", up.addr())), Options{})
	c := dialRaw(t, p.Addr)
	for target, want := range map[string]string{"http://example.com": "/", "http://example.com?q=1": "/?q=1"} {
		c.send(t, "GET "+target+" HTTP/1.1\r\nHost: example.com\r\n\r\n")
		resp, body := c.response(t, "GET")
		if resp.StatusCode != 200 {
			t.Fatalf("%s: status %d %q", target, resp.StatusCode, body)
		}
		if e := decodeEcho(t, body); e.Target != want {
			t.Fatalf("%s: upstream saw %q, want %q", target, e.Target, want)
		}
	}
}

// TestConnectAndOptionsAsterisk: CONNECT, which names no path, gets 501
// and the connection's end (what follows it may be a tunnel's bytes), not
// 404 with the bytes after it read as requests; OPTIONS * is answered 200
// by the proxy and the connection goes on. Neither reaches the upstream.
func TestConnectAndOptionsAsterisk(t *testing.T) {
	up := newEchoUpstream(t, "up")
	p := startProxy(t, serverTOML("", routeTOML("/{*p}", "", up.addr())), Options{})
	c := dialRaw(t, p.Addr)
	c.send(t, "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, body := c.response(t, "OPTIONS")
	if resp.StatusCode != 200 || resp.ContentLength != 0 || len(body) != 0 || resp.Close {
		t.Fatalf("OPTIONS *: status %d, length %d, body %q, close %v", resp.StatusCode, resp.ContentLength, body, resp.Close)
	}
	c.send(t, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, body := c.response(t, "GET"); resp.StatusCode != 200 || decodeEcho(t, body).Target != "/x" {
		t.Fatalf("GET after OPTIONS *: status %d %q", resp.StatusCode, body)
	}

	c = dialRaw(t, p.Addr)
	c.send(t, "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\nGET /y HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, _ = c.response(t, "CONNECT")
	if resp.StatusCode != 501 || !resp.Close {
		t.Fatalf("CONNECT: status %d, close %v", resp.StatusCode, resp.Close)
	}
	c.expectClosed(t)
	if n := up.conns.Load(); n != 1 {
		t.Errorf("the upstream got %d connections, want 1 (the GET)", n)
	}
}

// TestUnixUpstream: upstreams over Unix sockets.
func TestUnixUpstream(t *testing.T) {
	path := t.TempDir() + "/up.sock"
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	u := &echoUpstream{Name: "unix"}
	srv := &http.Server{Handler: http.HandlerFunc(u.serve)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	r := fmt.Sprintf("[[servers.p.routes]]\npath = \"/{*p}\"\nupstreams = [{ endpoint = { type = \"unix\", value = %q } }]\n", path)
	for _, preserve := range []bool{true, false} {
		p := startProxy(t, serverTOML(fmt.Sprintf("preserve_host = %v", preserve), r), Options{})
		resp, body := do(t, client(t), "GET", "http://"+p.Addr+"/x", "h.example", nil, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d %q", resp.StatusCode, body)
		}
		want := "h.example"
		if !preserve {
			want = "localhost"
		}
		if e := decodeEcho(t, body); e.Name != "unix" || e.Host != want {
			t.Fatalf("upstream %s saw Host %q, want %q", e.Name, e.Host, want)
		}
	}
}
