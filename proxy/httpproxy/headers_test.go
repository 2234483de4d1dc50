package httpproxy

import (
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// TestHopByHop: hop-by-hop fields, and those a Connection field names, are
// dropped both ways; end-to-end ones pass.
func TestHopByHop(t *testing.T) {
	seen := make(chan http.Header, 1)
	addr := rawRequests(t, func(c net.Conn, r *http.Request, _ []byte) {
		seen <- r.Header
		c.Write([]byte("HTTP/1.1 200 OK\r\nConnection: X-Resp-Hop, keep-alive\r\nX-Resp-Hop: 1\r\nKeep-Alive: timeout=5\r\n" +
			"Proxy-Authenticate: Basic\r\nUpgrade: foo\r\nX-End: 2\r\nContent-Length: 2\r\n\r\nok"))
	})
	p := startProxy(t, serverTOML("", routeTOML("/{*p}", "", addr)), Options{})
	c := dialRaw(t, p.Addr)
	c.send(t, "GET /x HTTP/1.1\r\nHost: a\r\nConnection: X-Custom-Hop, keep-alive\r\nX-Custom-Hop: 1\r\nKeep-Alive: timeout=5\r\n"+
		"Proxy-Connection: keep-alive\r\nProxy-Authorization: Basic eA==\r\nTE: trailers\r\nUpgrade: foo\r\nX-End: 1\r\n\r\n")
	resp, body := c.response(t, "GET")
	if resp.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("status %d %q", resp.StatusCode, body)
	}
	h := <-seen
	for _, name := range []string{"Connection", "X-Custom-Hop", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "Te", "Upgrade"} {
		if v, ok := h[name]; ok {
			t.Errorf("upstream saw %s: %q", name, v)
		}
	}
	if h.Get("X-End") != "1" {
		t.Errorf("upstream lost X-End: %v", h)
	}
	for _, name := range []string{"X-Resp-Hop", "Keep-Alive", "Proxy-Authenticate", "Upgrade"} {
		if v, ok := resp.Header[name]; ok {
			t.Errorf("client saw %s: %q", name, v)
		}
	}
	if v := resp.Header.Values("Connection"); len(v) != 0 {
		t.Errorf("client saw Connection %q", v)
	}
	if resp.Header.Get("X-End") != "2" {
		t.Errorf("client lost X-End: %v", resp.Header)
	}
}

var hex32 = regexp.MustCompile(`^[0-9a-f]{32}$`)

// TestForwardingHeaders: X-Forwarded-*, Forwarded, Via and X-Request-Id.
func TestForwardingHeaders(t *testing.T) {
	up := newEchoUpstream(t, "up")
	for _, tc := range []struct {
		name  string
		extra string
		in    http.Header
		check func(t *testing.T, e echo, resp *http.Response)
	}{
		{"defaults", "", nil, func(t *testing.T, e echo, resp *http.Response) {
			want := map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "example.com"}
			for k, v := range want {
				if got := e.Header.Values(k); len(got) != 1 || got[0] != v {
					t.Errorf("%s %q, want %q", k, got, v)
				}
			}
			for _, k := range []string{"Forwarded", "Via"} {
				if v := e.Header.Values(k); len(v) != 0 {
					t.Errorf("%s %q when off", k, v)
				}
			}
			id := e.Header.Get("X-Request-Id")
			if !hex32.MatchString(id) {
				t.Errorf("generated X-Request-Id %q", id)
			}
			if got := resp.Header.Get("X-Request-Id"); got != id {
				t.Errorf("response X-Request-Id %q, want %q", got, id)
			}
		}},
		{"appended", "", http.Header{"X-Forwarded-For": {"10.0.0.1, 10.0.0.2"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"spoofed"}, "X-Request-Id": {"abc-123"}},
			func(t *testing.T, e echo, resp *http.Response) {
				if got := e.Header.Values("X-Forwarded-For"); len(got) != 1 || got[0] != "10.0.0.1, 10.0.0.2, 127.0.0.1" {
					t.Errorf("X-Forwarded-For %q", got)
				}
				if got := e.Header.Values("X-Forwarded-Proto"); len(got) != 1 || got[0] != "http" {
					t.Errorf("X-Forwarded-Proto %q", got)
				}
				if got := e.Header.Values("X-Forwarded-Host"); len(got) != 1 || got[0] != "example.com" {
					t.Errorf("X-Forwarded-Host %q", got)
				}
				if got := e.Header.Values("X-Request-Id"); len(got) != 1 || got[0] != "abc-123" {
					t.Errorf("X-Request-Id %q", got)
				}
				if got := resp.Header.Values("X-Request-Id"); len(got) != 1 || got[0] != "abc-123" {
					t.Errorf("response X-Request-Id %q", got)
				}
			}},
		{"forwarded and via", "via = true\nforwarded = true", http.Header{"Forwarded": {"for=10.0.0.1", "for=10.0.0.2"}, "Via": {"1.0 other", "1.1 third"}},
			func(t *testing.T, e echo, resp *http.Response) {
				if got := e.Header.Values("Forwarded"); len(got) != 1 || got[0] != `for=10.0.0.1, for=10.0.0.2, for=127.0.0.1;proto=http;host="example.com"` {
					t.Errorf("Forwarded %q", got)
				}
				if got := e.Header.Values("Via"); len(got) != 1 || got[0] != "1.0 other, 1.1 third, 1.1 test" {
					t.Errorf("Via %q", got)
				}
			}},
		{"unfit request id", "", http.Header{"X-Request-Id": {"<script>alert(1)</script> " + strings.Repeat("x", 200)}},
			func(t *testing.T, e echo, resp *http.Response) {
				got := e.Header.Values("X-Request-Id")
				if len(got) != 1 || !hex32.MatchString(got[0]) || resp.Header.Get("X-Request-Id") != got[0] {
					t.Errorf("X-Request-Id upstream %q, to the client %q; want one generated", got, resp.Header.Get("X-Request-Id"))
				}
			}},
		{"request id twice", "", http.Header{"X-Request-Id": {"abc", "def"}},
			func(t *testing.T, e echo, resp *http.Response) {
				if got := e.Header.Values("X-Request-Id"); len(got) != 1 || !hex32.MatchString(got[0]) {
					t.Errorf("X-Request-Id upstream %q; want one generated", got)
				}
			}},
		// Every line of a list counts, not the first (a front proxy may
		// add its own line); a Forwarded the client made up does not pass
		// when the proxy does not add its own.
		{"lines and spoofing", "", http.Header{"X-Forwarded-For": {"10.0.0.1", "10.0.0.2"}, "Forwarded": {"for=6.6.6.6;proto=https;host=admin"}},
			func(t *testing.T, e echo, resp *http.Response) {
				if got := e.Header.Values("X-Forwarded-For"); len(got) != 1 || got[0] != "10.0.0.1, 10.0.0.2, 127.0.0.1" {
					t.Errorf("X-Forwarded-For %q", got)
				}
				if got := e.Header.Values("Forwarded"); len(got) != 0 {
					t.Errorf("Forwarded %q passed with forwarded = false", got)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startProxy(t, serverTOML(tc.extra, routeTOML("/{*p}", "", up.addr())), Options{})
			resp, body := do(t, client(t), "GET", "http://"+p.Addr+"/x", "example.com", tc.in, nil)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			tc.check(t, decodeEcho(t, body), resp)
		})
	}
}

// TestRequestIDsUnique: generated ids differ per request.
func TestRequestIDsUnique(t *testing.T) {
	up := newEchoUpstream(t, "up")
	p := startProxy(t, serverTOML("", routeTOML("/{*p}", "", up.addr())), Options{})
	c := client(t)
	seen := map[string]bool{}
	for range 100 {
		resp, _ := do(t, c, "GET", "http://"+p.Addr+"/x", "", nil, nil)
		id := resp.Header.Get("X-Request-Id")
		if seen[id] || !hex32.MatchString(id) {
			t.Fatalf("id %q repeated or malformed", id)
		}
		seen[id] = true
	}
	_ = strings.Contains
}

// TestUnderscoredFieldsDropped: request fields named with an underscore
// are dropped by default, as nginx drops them: an upstream that maps names
// to CGI variables would take X_Forwarded_For for the X-Forwarded-For the
// proxy sets. underscores_in_headers = true keeps them.
func TestUnderscoredFieldsDropped(t *testing.T) {
	up := newEchoUpstream(t, "up")
	for _, keep := range []bool{false, true} {
		extra := ""
		if keep {
			extra = "underscores_in_headers = true"
		}
		p := startProxy(t, serverTOML(extra, routeTOML("/{*p}", "", up.addr())), Options{})
		c := dialRaw(t, p.Addr)
		c.send(t, "GET /x HTTP/1.1\r\nHost: a\r\nX_Forwarded_For: 6.6.6.6\r\nMy_Field: 1\r\nX-Kept: 2\r\n\r\n")
		resp, body := c.response(t, "GET")
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		e := decodeEcho(t, body)
		// net/http canonicalizes X_Forwarded_For to itself (underscores
		// make a name non-canonical); look both ways.
		got := e.Header.Get("X_Forwarded_For") + e.Header.Get("My_Field")
		for k, v := range e.Header {
			if strings.Contains(k, "_") {
				got += v[0]
			}
		}
		if keep != (got != "") || e.Header.Get("X-Kept") != "2" {
			t.Fatalf("underscores_in_headers %v: upstream got %v", keep, e.Header)
		}
	}
}

// TestViaReceivedVersion: Via names the protocol the request was received
// in (RFC 9110 7.6.3): 1.0 for an HTTP/1.0 client.
func TestViaReceivedVersion(t *testing.T) {
	up := newEchoUpstream(t, "up")
	p := startProxy(t, serverTOML("via = true", routeTOML("/{*p}", "", up.addr())), Options{})
	for version, want := range map[string]string{"HTTP/1.0": "1.0 test", "HTTP/1.1": "1.1 test"} {
		c := dialRaw(t, p.Addr)
		c.send(t, "GET /v "+version+"\r\nHost: a\r\n\r\n")
		resp, body := c.response(t, "GET")
		if resp.StatusCode != 200 {
			t.Fatalf("%s: status %d", version, resp.StatusCode)
		}
		if got := decodeEcho(t, body).Header.Values("Via"); len(got) != 1 || got[0] != want {
			t.Errorf("%s: Via %q, want %q", version, got, want)
		}
	}
}

// TestMaxForwards: an OPTIONS or TRACE request goes upstream with one less
// Max-Forwards, and at 0 the proxy answers it itself (RFC 9110 7.6.2); a
// TRACE answer reflects the request without its secrets. Other methods
// pass the field on as it is.
func TestMaxForwards(t *testing.T) {
	up := newEchoUpstream(t, "up")
	p := startProxy(t, serverTOML("", routeTOML("/{*p}", "", up.addr())), Options{})
	c := dialRaw(t, p.Addr)
	forwarded := func(method, mf, want string) {
		t.Helper()
		c.send(t, method+" /m HTTP/1.1\r\nHost: a\r\nMax-Forwards: "+mf+"\r\n\r\n")
		resp, body := c.response(t, method)
		if resp.StatusCode != 200 || resp.Header.Get("X-Upstream") != "up" {
			t.Fatalf("%s Max-Forwards %s: status %d, not from the upstream: %q", method, mf, resp.StatusCode, body)
		}
		if got := decodeEcho(t, body).Header.Values("Max-Forwards"); len(got) != 1 || got[0] != want {
			t.Errorf("%s Max-Forwards %s: upstream got %q, want %q", method, mf, got, want)
		}
	}
	forwarded("OPTIONS", "3", "2")
	forwarded("TRACE", "1", "0")
	forwarded("GET", "0", "0")
	forwarded("OPTIONS", "x", "x")

	c.send(t, "OPTIONS /m HTTP/1.1\r\nHost: a\r\nMax-Forwards: 0\r\n\r\n")
	resp, body := c.response(t, "OPTIONS")
	if resp.StatusCode != 200 || resp.Header.Get("X-Upstream") != "" || len(body) != 0 {
		t.Fatalf("OPTIONS at Max-Forwards 0: status %d, upstream %q, body %q", resp.StatusCode, resp.Header.Get("X-Upstream"), body)
	}
	c.send(t, "TRACE /m HTTP/1.1\r\nHost: a\r\nMax-Forwards: 0\r\nX-A: 1\r\nCookie: secret\r\nAuthorization: secret\r\n\r\n")
	resp, body = c.response(t, "TRACE")
	want := "TRACE /m HTTP/1.1\r\nHost: a\r\nMax-Forwards: 0\r\nX-A: 1\r\n\r\n"
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "message/http" || string(body) != want {
		t.Fatalf("TRACE at Max-Forwards 0: status %d, type %q, body %q, want %q", resp.StatusCode, resp.Header.Get("Content-Type"), body, want)
	}
}
