package httpproxy

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/monolake-go/monolake/proxy"
	"github.com/monolake-go/monolake/proxy/netio"
	"github.com/monolake-go/monolake/proxy/server"
)

// recordingUpstream answers every request with "ok" and records what it
// received, request by request, on each connection.
type recordingUpstream struct {
	addr string
	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	method, target, contentLength string
	body                          string
}

func newRecordingUpstream(t *testing.T) *recordingUpstream {
	u := &recordingUpstream{}
	u.addr = rawUpstream(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			r, body, err := readRequest(br)
			if err != nil {
				return
			}
			u.mu.Lock()
			u.reqs = append(u.reqs, recorded{r.Method, r.RequestURI, strings.Join(r.Header.Values("Content-Length"), "|"), string(body)})
			u.mu.Unlock()
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	return u
}

func (u *recordingUpstream) received() []recorded {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]recorded(nil), u.reqs...)
}

// TestFramingIsOurs: the request's framing fields are written by the
// proxy, not copied: a client cannot take Content-Length off its body by
// listing it in Connection (the upstream would read the body as a second
// request), and a repeated length goes out once.
func TestFramingIsOurs(t *testing.T) {
	up := newRecordingUpstream(t)
	p := startProxy(t, serverTOML("", routeTOML("/{*p}", "", up.addr)), Options{})
	smuggled := "GET /admin HTTP/1.1\r\nHost: a\r\n\r\n"
	for _, tc := range []struct{ name, req, body, length string }{
		{"connection lists content-length",
			"POST /form HTTP/1.1\r\nHost: a\r\nConnection: content-length\r\nContent-Length: 32\r\n\r\n" + smuggled, smuggled, "32"},
		{"repeated length",
			"POST /form HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello", "hello", "5"},
		{"empty body",
			"POST /form HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", "", "0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(up.received())
			c := dialRaw(t, p.Addr)
			c.send(t, tc.req)
			if resp, body := c.response(t, "POST"); resp.StatusCode != 200 || string(body) != "ok" {
				t.Fatalf("response %d %q", resp.StatusCode, body)
			}
			time.Sleep(100 * time.Millisecond) // a smuggled request would arrive meanwhile
			got := up.received()[before:]
			if len(got) != 1 {
				t.Fatalf("upstream received %d requests: %+v", len(got), got)
			}
			if r := got[0]; r.method != "POST" || r.target != "/form" || r.body != tc.body || r.contentLength != tc.length {
				t.Fatalf("upstream received %+v; want POST /form, Content-Length %s, body %q", r, tc.length, tc.body)
			}
		})
	}
}

// TestUpstreamExtraBytes: an upstream connection with bytes after the
// response goes back to no pool: the next request, maybe another client's,
// must not read them as its response.
func TestUpstreamExtraBytes(t *testing.T) {
	const evil = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil"
	for _, tc := range []struct {
		name, method, first string
		late                bool // the extra bytes come 10 ms after the response
	}{
		{"past content-length", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", false},
		// A body larger than the reader's buffer is read from the socket
		// up to its length: the extra bytes stay in the socket (epoll) or
		// in the driver's queue (io_uring), not in the reader.
		{"past content-length of a large body", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 30000\r\n\r\n" + strings.Repeat("x", 30000), false},
		{"body after 204", "GET", "HTTP/1.1 204 No Content\r\n\r\n", false},
		{"body after HEAD response", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", false},
		// Later than the response, but before the pooled connection's
		// reuse: the pool checks it first.
		{"late body after 204", "GET", "HTTP/1.1 204 No Content\r\n\r\n", true},
		{"late body after HEAD response", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 45\r\n\r\n", true},
		// An upstream that sends more than its Content-Length in a later
		// write: the io_uring driver's conns are checked however soon
		// they are reused (the epoll driver's are not, within the pool's
		// no-peek window: see upstream.Pool.Get).
		{"late bytes past content-length", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "late bytes past content-length" && testDriver(t).Name() == netio.RuntimeEpoll {
				t.Skip("the epoll driver's pool does not peek at a connection back for less than 100 ms")
			}
			var conns atomic.Int32
			addr := rawUpstream(t, func(c net.Conn) {
				first := conns.Add(1) == 1 // only the first connection misbehaves
				br := bufio.NewReader(c)
				for i := 0; ; i++ {
					if _, _, err := readRequest(br); err != nil {
						return
					}
					if i == 0 && !first {
						io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood")
					} else if i == 0 && tc.late {
						io.WriteString(c, tc.first)
						time.Sleep(10 * time.Millisecond)
						io.WriteString(c, evil)
					} else if i == 0 {
						io.WriteString(c, tc.first+evil) // one write: the extra bytes arrive with the response
					} else {
						io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood")
					}
				}
			})
			p := startProxy(t, serverTOML("", routeTOML("/{*p}", "", addr)), Options{})
			c := dialRaw(t, p.Addr)
			c.send(t, tc.method+" /1 HTTP/1.1\r\nHost: a\r\n\r\n")
			c.response(t, tc.method)
			time.Sleep(50 * time.Millisecond) // the extra bytes are in by now
			c.send(t, "GET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
			if _, body := c.response(t, "GET"); string(body) == "evil" {
				t.Fatal("the second request got the bytes the upstream sent after the first response")
			}
			if n := conns.Load(); n != 2 {
				t.Fatalf("the upstream saw %d connections, want 2 (the first one not reused)", n)
			}
		})
	}
}

// TestUnrequestedSwitch: a 101 to a request that asked for no upgrade is a
// bad response (502), not a tunnel past the proxy's layers.
func TestUnrequestedSwitch(t *testing.T) {
	addr := rawUpstream(t, func(c net.Conn) {
		if _, _, err := readRequest(bufio.NewReader(c)); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: raw\r\n\r\n")
		io.Copy(io.Discard, c)
	})
	p := startProxy(t, serverTOML("", routeTOML("/{*p}", "", addr)), Options{})
	c := dialRaw(t, p.Addr)
	c.send(t, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, body := c.response(t, "GET"); resp.StatusCode != 502 {
		t.Fatalf("status %d %q, want 502", resp.StatusCode, body)
	}
}

// TestInterimResponses: a few 1xx before the response go on to an
// HTTP/1.1 client (103 Early Hints, without hop-by-hop fields) and not to
// an HTTP/1.0 one (RFC 9110 15.2); an upstream that sends them without end
// gets a 502 instead of holding the request (each one renews the read
// timeout).
func TestInterimResponses(t *testing.T) {
	for _, tc := range []struct {
		n       int
		version string
		status  int
	}{{3, "HTTP/1.1", 200}, {3, "HTTP/1.0", 200}, {maxInterim + 1, "HTTP/1.1", 502}} {
		addr := rawUpstream(t, func(c net.Conn) {
			if _, _, err := readRequest(bufio.NewReader(c)); err != nil {
				return
			}
			io.WriteString(c, strings.Repeat("HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\nConnection: x-hop\r\nX-Hop: 1\r\n\r\n", tc.n)+
				"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		})
		p := startProxy(t, serverTOML("", routeTOML("/{*p}", "", addr)), Options{})
		c := dialRaw(t, p.Addr)
		c.send(t, "GET /x "+tc.version+"\r\nHost: a\r\n\r\n")
		hints := 0
		for {
			resp, body := c.response(t, "GET")
			if resp.StatusCode != 103 {
				if resp.StatusCode != tc.status {
					t.Fatalf("%d interim responses, %s: status %d %q, want %d", tc.n, tc.version, resp.StatusCode, body, tc.status)
				}
				break
			}
			hints++
			if resp.Header.Get("Link") != "</s.css>" || resp.Header.Get("X-Hop") != "" || resp.Header.Get("Connection") != "" {
				t.Errorf("103 forwarded with fields %v", resp.Header)
			}
		}
		want := min(tc.n, maxInterim)
		if tc.version == "HTTP/1.0" {
			want = 0
		}
		if hints != want {
			t.Errorf("%d interim responses, %s: the client got %d, want %d", tc.n, tc.version, hints, want)
		}
	}
}

// TestContinueAfterIdle: "100 Continue" to a request that comes after the
// connection sat idle longer than the write timeout goes out (the timeout
// bounds each write from its start, not from the previous response).
func TestContinueAfterIdle(t *testing.T) {
	h := HandlerService(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	}))
	addr, _ := serveHandler(t, ServerConfig{WriteTimeout: 200 * time.Millisecond}, h)
	c := dialRaw(t, addr)
	c.send(t, "GET /first HTTP/1.1\r\nHost: a\r\n\r\n")
	c.response(t, "GET")
	time.Sleep(500 * time.Millisecond)
	c.send(t, "PUT /u HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	line, err := c.br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
		t.Fatalf("after idle, interim line %q, %v; want 100 Continue", line, err)
	}
	c.br.ReadString('\n') // the blank line ending the interim response
	c.send(t, "hello")
	if resp, body := c.response(t, "PUT"); resp.StatusCode != 200 || string(body) != "hello" {
		t.Fatalf("response %d %q", resp.StatusCode, body)
	}
}

// TestErrorBeforeBody: a failed exchange's error response does not wait
// for a body the client has not sent yet, with Expect: 100-continue (no
// 100 was sent) or without (it waited for a chunked body's first size
// line, up to the body timeout); the connection then closes.
func TestErrorBeforeBody(t *testing.T) {
	p := startProxy(t, serverTOML("", routeTOML("/{*p}", "", refusedAddr(t))), Options{})
	for _, expect := range []string{"Expect: 100-continue\r\n", ""} {
		for _, framing := range []string{"Transfer-Encoding: chunked", "Content-Length: 5"} {
			c := dialRaw(t, p.Addr)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			start := time.Now()
			c.send(t, "POST /u HTTP/1.1\r\nHost: a\r\n"+expect+framing+"\r\n\r\n")
			resp, body := c.response(t, "POST")
			if resp.StatusCode != 502 || !resp.Close {
				t.Fatalf("%q%s: status %d (close %v) %q, want 502 and close", expect, framing, resp.StatusCode, resp.Close, body)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("%q%s: the 502 came after %v", expect, framing, d)
			}
		}
	}
}

// TestEarlyResponse: an upstream that answers before it has read the
// request body (413 here) and resets the connection: the client gets that
// answer, not a 502 for the failed body write.
func TestEarlyResponse(t *testing.T) {
	addr := rawUpstream(t, func(c net.Conn) {
		bufio.NewReader(c).ReadString('\n')
		io.WriteString(c, "HTTP/1.1 413 Content Too Large\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbig")
		time.Sleep(50 * time.Millisecond)
		c.(*net.TCPConn).SetLinger(0) // the close resets
	})
	p := startProxy(t, serverTOML("", routeTOML("/{*p}", "", addr)), Options{})
	c := dialRaw(t, p.Addr)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.send(t, "POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 33554432\r\n\r\n")
	go func() {
		buf := make([]byte, 64<<10)
		for range 512 {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}()
	if resp, body := c.response(t, "POST"); resp.StatusCode != 413 || string(body) != "big" || !resp.Close {
		t.Fatalf("status %d %q (close %v), want the upstream's 413 \"big\" and close", resp.StatusCode, body, resp.Close)
	}
}

// TestEarlyResponseUnread: an upstream that answers before it has read the
// request body and then neither reads nor closes (a server that refuses an
// upload and waits for the client to go): the client gets that answer at
// once, as from nginx, not after the proxy's write to the upstream timed
// out (60 s), and its connection ends after it.
func TestEarlyResponseUnread(t *testing.T) {
	for _, status := range earlyStatuses {
		hold := make(chan struct{})
		addr := rawUpstream(t, answerUnread(status, hold))
		t.Cleanup(func() { close(hold) }) // before the upstream's cleanup waits for its conns
		expectEarlyAnswer(t, serverTOML("", routeTOML("/{*p}", "", addr)))
	}
}

// earlyStatuses are the answers an upstream gives before it reads a body:
// one that closes the connection and one that keeps it.
var earlyStatuses = []string{"413 Content Too Large\r\nConnection: close", "401 Unauthorized"}

// answerUnread serves a request by answering status "no!" after its first
// line, then neither reading nor closing until hold is closed.
func answerUnread(status string, hold <-chan struct{}) func(c net.Conn) {
	return func(c net.Conn) {
		bufio.NewReader(c).ReadString('\n')
		io.WriteString(c, "HTTP/1.1 "+status+"\r\nContent-Length: 3\r\n\r\nno!")
		<-hold
	}
}

// expectEarlyAnswer sends a 1 GiB upload through a proxy of config text
// (to an answerUnread upstream) and expects that upstream's answer and a
// close well within the client's 10 s.
func expectEarlyAnswer(t *testing.T, text string) {
	t.Helper()
	p := startProxy(t, text, Options{})
	c := dialRaw(t, p.Addr)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.send(t, "POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 1073741824\r\n\r\n")
	go func() {
		buf := make([]byte, 64<<10)
		for range 16384 {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}()
	if resp, body := c.response(t, "POST"); resp.StatusCode != 413 && resp.StatusCode != 401 || string(body) != "no!" || !resp.Close {
		t.Fatalf("status %d %q (close %v), want the upstream's answer \"no!\" and close", resp.StatusCode, body, resp.Close)
	}
}

// TestEarlyInterimNotAnswer: an upstream that sends 100 Continue before it
// reads the body, and reads it only after a pause, gets the body whole: an
// interim response is no early answer. The connection then serves a
// request without a body.
func TestEarlyInterimNotAnswer(t *testing.T) {
	addr := rawUpstream(t, continueLate)
	expectWholeBody(t, serverTOML("", routeTOML("/{*p}", "", addr)))
}

// continueLate serves requests on c: to one with a body it sends 100
// Continue and reads the body only after a pause; it answers each with the
// length of the body it read.
func continueLate(c net.Conn) {
	br := bufio.NewReader(c)
	for {
		r, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		if r.ContentLength > 0 {
			io.WriteString(c, "HTTP/1.1 100 Continue\r\n\r\n")
			time.Sleep(300 * time.Millisecond) // the proxy's send stalls meanwhile
		}
		n, _ := io.Copy(io.Discard, r.Body)
		body := strconv.FormatInt(n, 10)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body)
	}
}

// expectWholeBody sends a 16 MiB upload through a proxy of config text (to
// a continueLate upstream) and expects it whole upstream, then a request
// without a body answered on the same client connection.
func expectWholeBody(t *testing.T, text string) {
	t.Helper()
	const size = 16 << 20
	p := startProxy(t, text, Options{})
	c := dialRaw(t, p.Addr)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.send(t, "POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: "+strconv.Itoa(size)+"\r\n\r\n")
	go c.Write(make([]byte, size))
	if resp, body := c.response(t, "POST"); resp.StatusCode != 200 || string(body) != strconv.Itoa(size) {
		t.Fatalf("status %d %q, want 200 %q: the body was cut", resp.StatusCode, body, strconv.Itoa(size))
	}
	c.send(t, "GET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
	if resp, body := c.response(t, "GET"); resp.StatusCode != 200 || string(body) != "0" {
		t.Fatalf("second request: status %d %q, want 200 \"0\"\n%s", resp.StatusCode, body, strings.Join(p.Logs.Lines(), "\n"))
	}
}

// capturingUpstream answers every request 200 "ok" and hands it over,
// its body read (so its trailers are in).
func capturingUpstream(t *testing.T) (string, <-chan *http.Request) {
	got := make(chan *http.Request, 4)
	return rawRequests(t, func(c net.Conn, r *http.Request, body []byte) {
		got <- r
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	}), got
}

// TestRequestTrailersKeepProxyFields: a client's request trailer cannot
// add a value to a field the proxy set in the head (X-Forwarded-For and
// the like, a second value an upstream may take for the real one), nor
// bring a name with "_" the server drops from heads; other trailers go
// through, also behind an Expect: 100-continue (whose body took another
// path, which dropped the trailers).
func TestRequestTrailersKeepProxyFields(t *testing.T) {
	for _, expect := range []bool{false, true} {
		t.Run(fmt.Sprint("expect=", expect), func(t *testing.T) { requestTrailersKeepProxyFields(t, expect) })
	}
}

func requestTrailersKeepProxyFields(t *testing.T, expect bool) {
	addr, got := capturingUpstream(t)
	p := startProxy(t, serverTOML("", routeTOML("/{*p}", "", addr)), Options{})
	c := dialRaw(t, p.Addr)
	head := "POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
	if expect {
		c.send(t, head+"Expect: 100-continue\r\n\r\n")
		if resp, _ := c.response(t, "POST"); resp.StatusCode != 100 {
			t.Fatalf("status %d, want 100 first", resp.StatusCode)
		}
	} else {
		c.send(t, head+"\r\n")
	}
	c.send(t, "3\r\nabc\r\n0\r\n"+
		"X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: admin.internal\r\n"+
		"X-Request-Id: evil\r\nX_Forwarded_For: 7.7.7.7\r\nX-Checksum: abc\r\n\r\n")
	if resp, body := c.response(t, "POST"); resp.StatusCode != 200 {
		t.Fatalf("status %d %q", resp.StatusCode, body)
	}
	tr := (<-got).Trailer
	for _, name := range []string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Request-Id", "X_Forwarded_For"} {
		if v := tr.Get(name); v != "" {
			t.Errorf("the upstream got the client's trailer %s: %s", name, v)
		}
	}
	if tr.Get("X-Checksum") != "abc" {
		t.Errorf("trailers %v: X-Checksum did not go through", tr)
	}
}

// TestNoH2CUpgrade: a request offering an h2c upgrade is passed on without
// it (and without HTTP2-Settings): an HTTP/2 tunnel to the upstream would
// carry requests past the proxy's routes and layers.
func TestNoH2CUpgrade(t *testing.T) {
	addr, got := capturingUpstream(t)
	p := startProxy(t, serverTOML("", routeTOML("/public", "", addr)), Options{})
	c := dialRaw(t, p.Addr)
	c.send(t, "GET /public HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
	if resp, body := c.response(t, "GET"); resp.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("status %d %q", resp.StatusCode, body)
	}
	h := (<-got).Header
	for _, name := range []string{"Upgrade", "Http2-Settings", "Connection"} {
		if v := h.Get(name); v != "" {
			t.Errorf("the upstream got %s: %s", name, v)
		}
	}
}

// TestBodyTimeoutPerRead: the body read timeout bounds each wait for the
// client's next bytes, not the whole upload; a client that stops sending
// for longer still fails.
func TestBodyTimeoutPerRead(t *testing.T) {
	h := HandlerService(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusRequestTimeout)
			return
		}
		w.Write(b)
	}))
	addr, _ := serveHandler(t, ServerConfig{ReadBodyTimeout: 300 * time.Millisecond}, h)

	c := dialRaw(t, addr)
	c.send(t, "PUT /slow HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\n")
	for _, b := range []string{"s", "l", "o", "w", "l", "y"} { // 6 x 150 ms: twice the timeout in all
		time.Sleep(150 * time.Millisecond)
		c.send(t, b)
	}
	if resp, body := c.response(t, "PUT"); resp.StatusCode != 200 || string(body) != "slowly" {
		t.Fatalf("slow upload: %d %q, want 200 \"slowly\"", resp.StatusCode, body)
	}

	c = dialRaw(t, addr)
	c.send(t, "PUT /stalled HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\nst")
	start := time.Now()
	resp, _ := c.response(t, "PUT")
	if resp.StatusCode == 200 {
		t.Fatal("a stalled upload succeeded")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("a stalled upload failed after %v", d)
	}
}

// TestMessageTimeout: MessageTimeout (server_message_timeout_sec) bounds a
// whole request body that trickles in under the per-read timeout. It
// counts from the first read of the body: a service that takes longer than
// it before reading (an upstream slow to connect), with a client waiting
// for 100 Continue, is unaffected; so is the next request on the
// connection, after longer than it.
func TestMessageTimeout(t *testing.T) {
	h := HandlerService(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/late" {
			time.Sleep(1500 * time.Millisecond)
		}
		b, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusRequestTimeout)
			return
		}
		w.Write(b)
	}))
	addr, _ := serveHandler(t, ServerConfig{ReadBodyTimeout: 5 * time.Second, MessageTimeout: time.Second}, h)

	c := dialRaw(t, addr)
	c.send(t, "PUT /late HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
	if line, err := c.br.ReadString('\n'); err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("waiting for 100 Continue: %q, %v", line, err)
	}
	c.br.ReadString('\n') // the empty line
	c.send(t, "late")
	if resp, body := c.response(t, "PUT"); resp.StatusCode != 200 || string(body) != "late" {
		t.Fatalf("upload after a slow start: %d %q, want 200 \"late\"", resp.StatusCode, body)
	}
	time.Sleep(1200 * time.Millisecond)
	c.send(t, "PUT /fast HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nfast")
	if resp, body := c.response(t, "PUT"); resp.StatusCode != 200 || string(body) != "fast" {
		t.Fatalf("next upload: %d %q, want 200 \"fast\"", resp.StatusCode, body)
	}

	c = dialRaw(t, addr)
	c.send(t, "PUT /trickle HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n")
	sent := 0
	for range 10 { // 10 x 300 ms: three times the message timeout, each read well under 5 s
		time.Sleep(300 * time.Millisecond)
		if _, err := c.Write([]byte("x")); err != nil {
			break // the proxy gave up and closed
		}
		sent++
	}
	if resp, body := c.response(t, "PUT"); resp.StatusCode == 200 {
		t.Fatalf("a trickled upload of %d bytes succeeded: %q", sent, body)
	}
}

// TestClientMaxBodySize: client_max_body_size lets bodies up to it through;
// a larger Content-Length gets 413 and the connection ends, and a chunked
// body that grows past it gets 413 too once the cut reaches the upstream.
func TestClientMaxBodySize(t *testing.T) {
	up := newEchoUpstream(t, "up")
	p := startProxy(t, serverTOML("client_max_body_size = 10", routeTOML("/{*p}", "", up.addr())), Options{})
	c := dialRaw(t, p.Addr)
	bodyOf := func(t *testing.T) int {
		t.Helper()
		resp, b := c.response(t, "POST")
		var e echo
		if resp.StatusCode != 200 || json.Unmarshal(b, &e) != nil {
			t.Fatalf("%d %q, want 200 and an echo", resp.StatusCode, b)
		}
		return e.Body
	}

	c.send(t, "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789")
	if n := bodyOf(t); n != 10 {
		t.Fatalf("upstream read %d bytes, want 10", n)
	}
	c.send(t, "POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n")
	if n := bodyOf(t); n != 10 {
		t.Fatalf("chunked: upstream read %d bytes, want 10", n)
	}
	c.send(t, "POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n01234567890")
	if resp, _ := c.response(t, "POST"); resp.StatusCode != 413 {
		t.Fatalf("Content-Length over the limit: %d, want 413", resp.StatusCode)
	}
	c.expectClosed(t)

	c = dialRaw(t, p.Addr)
	c.send(t, "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello \r\n6\r\nworld!\r\n0\r\n\r\n")
	if resp, _ := c.response(t, "POST"); resp.StatusCode != 413 {
		t.Fatalf("chunked body over the limit: %d, want 413", resp.StatusCode)
	}
	c.expectClosed(t)
}

// TestAbsoluteFormRoutes: an absolute-form target's authority, not the Host
// field, picks the route and is the Host the upstream gets (RFC 9112
// 3.2.2), so a client cannot reach one route while naming another.
func TestAbsoluteFormRoutes(t *testing.T) {
	a, b := newEchoUpstream(t, "a"), newEchoUpstream(t, "b")
	p := startProxy(t, serverTOML("", routeTOML("/{*p}", `host = ["a.example"]`, a.addr())+routeTOML("/{*p}", `host = ["b.example"]`, b.addr())), Options{})
	c := dialRaw(t, p.Addr)
	c.send(t, "GET http://b.example/x HTTP/1.1\r\nHost: a.example\r\n\r\n")
	resp, body := c.response(t, "GET")
	var e echo
	if resp.StatusCode != 200 || json.Unmarshal(body, &e) != nil {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	if e.Name != "b" || e.Host != "b.example" || e.Target != "/x" {
		t.Errorf("served by %q with Host %q and target %q; want b, b.example and /x", e.Name, e.Host, e.Target)
	}
}

// TestPathNormalized: routes match the normalized path (dot segments
// resolved, unreserved escapes decoded, slashes merged), so
// "/public/../internal/x" does not take the route of "/public/"; the
// upstream gets the target as the client sent it, unless dot segments were
// resolved: then the path that was routed.
func TestPathNormalized(t *testing.T) {
	pub := newEchoUpstream(t, "public")
	p := startProxy(t, serverTOML("", routeTOML("/public/{*p}", "", pub.addr())), Options{})
	c := dialRaw(t, p.Addr)
	for _, tc := range []struct {
		target string
		status int
		want   string // target the upstream got
	}{
		{"/public/a?x=1", 200, "/public/a?x=1"},
		{"/public/../internal/secret", 404, ""},
		{"/public/%2e%2e/internal/secret", 404, ""},
		{"/%70ublic//a%20b?q", 200, "/%70ublic//a%20b?q"},
		{"/%70ublic//a/./b?q", 200, "/public/a/b?q"},
		{"/internal/../public/x", 200, "/public/x"},
		{"/internal/x//../../public/y", 200, "/public/y"}, // as routed, whatever the upstream's rules
	} {
		c.send(t, "GET "+tc.target+" HTTP/1.1\r\nHost: a\r\n\r\n")
		resp, body := c.response(t, "GET")
		if resp.StatusCode != tc.status {
			t.Errorf("%s: status %d, want %d", tc.target, resp.StatusCode, tc.status)
			continue
		}
		var e echo
		if tc.status == 200 && (json.Unmarshal(body, &e) != nil || e.Target != tc.want) {
			t.Errorf("%s: upstream got %q, want %q", tc.target, e.Target, tc.want)
		}
	}
}

// TestPathEscapesRefused: a path with a "%" that is no escape, with an
// encoded slash or backslash, or with a raw backslash, is answered 400 and
// reaches no upstream.
// "%%32%65%%32%65" went through normalizing as "%2e%2e": a ".." segment
// for an upstream that decodes, behind the route's prefix and rewrite.
func TestPathEscapesRefused(t *testing.T) {
	up := newEchoUpstream(t, "static")
	p := startProxy(t, serverTOML("", routeTOML("/static/{*rest}", `rewrite_path = "/files/{rest}"`, up.addr())), Options{})
	for _, target := range []string{
		"/static/%%32%65%%32%65/secret",
		"/static/..%2F..%2Fadmin",
		"/static/a%5Cb",
		"/static/100%",
		"/static\\..\\admin",
		"/static/a\\b?q=1",
	} {
		c := dialRaw(t, p.Addr)
		c.send(t, "GET "+target+" HTTP/1.1\r\nHost: a\r\n\r\n")
		if resp, body := c.response(t, "GET"); resp.StatusCode != 400 {
			t.Errorf("%s: status %d %q, want 400", target, resp.StatusCode, body)
		}
	}
	c := dialRaw(t, p.Addr)
	c.send(t, "GET /static/a%20b/%7e HTTP/1.1\r\nHost: a\r\n\r\n")
	resp, body := c.response(t, "GET")
	var e echo
	if resp.StatusCode != 200 || json.Unmarshal(body, &e) != nil || e.Target != "/files/a%20b/~" {
		t.Errorf("a path with good escapes: %d, upstream got %q", resp.StatusCode, e.Target)
	}
}

// TestReplacedResponseReleased: a layer that replaces a proxied response
// with its own (Request.Response), or fails after the upstream answered,
// gives the upstream connection back (closed): it used to stay open and
// counted by least_conn forever.
func TestReplacedResponseReleased(t *testing.T) {
	var open atomic.Int64
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(500)
		io.WriteString(w, strings.Repeat("x", 100))
	}))
	up.Config.ConnState = func(c net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			open.Add(1)
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
	}
	up.Start()
	defer up.Close()
	replace := func(inner Service) Service {
		return proxy.ServiceFunc[*Request, *Response](func(ctx context.Context, req *Request) (*Response, error) {
			resp, err := inner.Call(ctx, req)
			if err != nil || resp.Status < 500 {
				return resp, err
			}
			if string(req.Path) == "/fail" {
				return resp, &StatusError{Status: 502, Err: errors.New("a layer gave up")}
			}
			r := req.Response()
			r.SetText(503, "maintenance\n")
			return r, nil
		})
	}
	p := startProxy(t, serverTOML("", routeTOML("/{*p}", `load_balancer = "least_conn"`, up.Listener.Addr().String())), Options{Layers: []Middleware{replace}})
	c := client(t)
	for i := range 6 {
		path := "/replace"
		want := 503
		if i%2 == 1 {
			path, want = "/fail", 502
		}
		resp, body := do(t, c, "GET", "http://"+p.Addr+path, "", nil, nil)
		if resp.StatusCode != want {
			t.Fatalf("%s: %d %q, want %d", path, resp.StatusCode, body, want)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for open.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := open.Load(); n > 0 {
		t.Errorf("%d upstream connections still open after their responses were replaced", n)
	}
}

// TestNoContentFraming: a 204 carries no Content-Length or
// Transfer-Encoding to the client, even when the upstream sent one.
func TestNoContentFraming(t *testing.T) {
	addr := rawUpstream(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			if _, _, err := readRequest(br); err != nil {
				return
			}
			io.WriteString(c, "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nX-A: 1\r\n\r\n")
		}
	})
	p := startProxy(t, serverTOML("", routeTOML("/{*p}", "", addr)), Options{})
	c := dialRaw(t, p.Addr)
	c.send(t, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
	head, err := c.br.ReadString('\n')
	for err == nil {
		var line string
		line, err = c.br.ReadString('\n')
		if line == "\r\n" {
			break
		}
		head += line
	}
	if err != nil || !strings.HasPrefix(head, "HTTP/1.1 204") || !strings.Contains(head, "X-A: 1") {
		t.Fatalf("head %q, %v", head, err)
	}
	if h := strings.ToLower(head); strings.Contains(h, "content-length") || strings.Contains(h, "transfer-encoding") {
		t.Errorf("framing on a 204: %q", head)
	}
}

// copyLayer answers with a copy of the inner Response, as a layer that
// builds its own from the one it got might.
func copyLayer(inner Service) Service {
	return proxy.ServiceFunc[*Request, *Response](func(ctx context.Context, req *Request) (*Response, error) {
		resp, err := inner.Call(ctx, req)
		if err != nil {
			return resp, err
		}
		out := *resp
		return &out, nil
	})
}

// TestCopiedResponse: a layer that returns a copy of the proxied response
// (both copies hold the upstream connection) releases it once: the
// connection goes back to the pool and is reused, nothing panics, and no
// later request loses its connection to a second release.
func TestCopiedResponse(t *testing.T) {
	up := newEchoUpstream(t, "up")
	p := startProxy(t, serverTOML("", routeTOML("/{*p}", `load_balancer = "least_conn"`, up.addr())), Options{Layers: []Middleware{copyLayer}})
	c := dialRaw(t, p.Addr) // one client connection: a panic would end it
	for i := range 20 {
		c.send(t, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
		resp, body := c.response(t, "GET")
		if resp.StatusCode != 200 || decodeEcho(t, body).Name != "up" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	if n := up.conns.Load(); n != 1 {
		t.Errorf("%d upstream connections for 20 sequential requests, want 1 reused", n)
	}
}

// TestCopiedResponseLeaseKept: with a layer answering copies, the
// connection's own Response holds the upstream connection the copy gave
// back; releasing it must not touch the connection once another client
// has it from the pool (here while that client reads a slow response, and
// the first client sends its next request).
func TestCopiedResponseLeaseKept(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			w.Header().Set("Content-Length", "4")
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			time.Sleep(400 * time.Millisecond)
			io.WriteString(w, "slow")
			return
		}
		io.WriteString(w, "fast")
	}))
	defer up.Close()
	p := startProxy(t, serverTOML("", routeTOML("/{*p}", "", up.Listener.Addr().String())), Options{Layers: []Middleware{copyLayer}})
	a, b := dialRaw(t, p.Addr), dialRaw(t, p.Addr)
	get := func(c *rawConn, path, want string) {
		t.Helper()
		c.send(t, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp, body := c.response(t, "GET"); resp.StatusCode != 200 || string(body) != want {
			t.Errorf("%s: %d %q, want %q", path, resp.StatusCode, body, want)
		}
	}
	get(a, "/x", "fast") // a's Response keeps the pooled connection's old lease
	done := make(chan struct{})
	go func() { defer close(done); get(b, "/slow", "slow") }() // b takes it
	time.Sleep(150 * time.Millisecond)
	get(a, "/y", "fast") // resets a's Response while b reads
	<-done
}

// TestNilResponseSendsInner: a layer that calls inside and returns no
// Response and no error sends the inner answer, whole.
func TestNilResponseSendsInner(t *testing.T) {
	up := newEchoUpstream(t, "up")
	nilLayer := func(inner Service) Service {
		return proxy.ServiceFunc[*Request, *Response](func(ctx context.Context, req *Request) (*Response, error) {
			_, err := inner.Call(ctx, req)
			return nil, err
		})
	}
	p := startProxy(t, serverTOML("", routeTOML("/{*p}", "", up.addr())), Options{Layers: []Middleware{nilLayer}})
	c := dialRaw(t, p.Addr)
	for range 3 {
		c.send(t, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
		if resp, body := c.response(t, "GET"); resp.StatusCode != 200 || decodeEcho(t, body).Name != "up" {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
	}
}

// serveHandler serves h through an httpproxy Server with cfg on a loopback
// listener, stopped at cleanup, and returns its address and the server.
func serveHandler(t *testing.T, cfg ServerConfig, h Service) (string, *server.Server) {
	t.Helper()
	srv := server.New(NewServer(cfg, h, slog.New(slog.DiscardHandler)), nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), srv
}

// TestUpstreamHTTP2Said: an upstream_http_version the proxy does not speak
// yet is not taken silently.
func TestUpstreamHTTP2Said(t *testing.T) {
	up := newEchoUpstream(t, "up")
	for _, v := range []string{"http2", "auto"} {
		p := startProxy(t, serverTOML(`upstream_http_version = "`+v+`"`, routeTOML("/{*p}", "", up.addr())), Options{})
		if !strings.Contains(strings.Join(p.Logs.Lines(), "\n"), "not implemented yet") {
			t.Fatalf("%s: no warning logged: %q", v, p.Logs.Lines())
		}
	}
}

// TestReleaseAfterFailedExchange: a connection whose exchange failed (Call
// closed it and cleared its request) may still be released by a stale
// holder: nothing happens, no panic.
func TestReleaseAfterFailedExchange(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	uc := &upConn{Conn: a}
	uc.lease.Add(1) // lent, then the exchange failed and Call cleared it
	uc.Release(false)
	uc.releaseLease(1, false)
	if l := uc.lease.Load(); l != 2 {
		t.Errorf("lease %d after a release of a dead connection, want 2 (idle)", l)
	}
}

func TestAnswered(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"", false},
		{"HTTP/1.1 41", false},
		{"HTTP/1.1 413 Content Too Large\r\n", true},
		{"HTTP/1.0 200", true},
		{"HTTP/1.1 101 Switching Protocols\r\n\r\n", true},
		{"HTTP/1.1 100 Continue\r\n", false},
		{"HTTP/1.1 100 Continue\r\n\r\n", false},
		{"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 401", true},
		{"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 2", false},
		{"SSH-2.0-OpenSSH_9.6\r\n", true},
	} {
		if got := answered([]byte(tc.in)); got != tc.want {
			t.Errorf("answered(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestLingerCloseBounded: the lingering close of a connection whose client
// stopped reading ends within its timeout, with a send still in flight
// (on io_uring, CloseWrite waits for that send first; it waited for good).
func TestLingerCloseBounded(t *testing.T) {
	d := testDriver(t)
	ln, err := d.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close() // never reads
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Write until the socket is full: the last write that returned may
	// have left its send in flight.
	chunk := make([]byte, 16<<10)
	c.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
	for i := 0; i < 4096; i++ {
		if _, err := c.Write(chunk); err != nil {
			break
		}
	}
	c.SetWriteDeadline(time.Time{})
	done := make(chan struct{})
	go func() {
		lingerClose(c)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(lingerTimeout + 5*time.Second):
		t.Fatalf("lingerClose still waiting %v after its timeout (%v)", lingerTimeout+5*time.Second, lingerTimeout)
	}
}
