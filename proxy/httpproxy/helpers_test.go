package httpproxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/monolake-go/monolake/proxy/config"
	"github.com/monolake-go/monolake/proxy/netio"
	"github.com/monolake-go/monolake/proxy/porttest"
	"github.com/monolake-go/monolake/proxy/server"
)

// testProxy is a proxy built from a config server table and served by
// proxy/server on a loopback listener.
type testProxy struct {
	Addr string
	Srv  *Server
	Logs *logBuffer
}

// serverTOML returns a config with one http server "p": extra are keys of
// the server table, routes its [[servers.p.routes]] tables.
func serverTOML(extra, routes string) string {
	return "[servers.p]\nname = \"test\"\nlistener = { type = \"socket\", value = \"127.0.0.1:1\" }\n" +
		extra + "\n" + routes
}

// routeTOML returns one routes table: path, upstream socket addresses, and
// extra keys.
func routeTOML(path string, extra string, upstreams ...string) string {
	var ups []string
	for _, u := range upstreams {
		ups = append(ups, fmt.Sprintf("{ endpoint = { type = \"socket\", value = %q } }", u))
	}
	return fmt.Sprintf("[[servers.p.routes]]\npath = %q\nupstreams = [%s]\n%s\n", path, strings.Join(ups, ", "), extra)
}

func parseServer(t testing.TB, text string) *config.Server {
	t.Helper()
	c, err := config.Parse("test.toml", []byte(text))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, text)
	}
	return c.Servers["p"]
}

// startProxy builds the proxy for the config text and serves it.
func startProxy(t testing.TB, text string, o Options) *testProxy {
	t.Helper()
	return startProxyOn(t, testDriver(t), text, o)
}

// startProxyOn is startProxy on the driver drv.
func startProxyOn(t testing.TB, drv netio.Driver, text string, o Options) *testProxy {
	t.Helper()
	return startProxyWrapped(t, drv, text, o, nil)
}

// startProxyWrapped is startProxyOn serving on wrap(the listener), when wrap
// is not nil.
func startProxyWrapped(t testing.TB, drv netio.Driver, text string, o Options, wrap func(net.Listener) net.Listener) *testProxy {
	t.Helper()
	logs := &logBuffer{}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	if o.Dial == nil {
		o.Dial = drv.Dial
	}
	h, err := New(parseServer(t, text), o)
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(h, nil)
	ln, err := drv.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if wrap != nil {
		ln = wrap(ln)
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		srv.Close()
		select {
		case <-srv.Drained():
		case <-time.After(5 * time.Second):
			t.Errorf("proxy connections did not end")
		}
		h.Close()
	})
	return &testProxy{Addr: ln.Addr().String(), Srv: h, Logs: logs}
}

// upstreamPool returns the pool of the proxy's Upstream terminal.
func (p *testProxy) upstreamPool(t testing.TB) *Upstream {
	t.Helper()
	ca, ok := p.Srv.svc.(closeAll)
	if !ok {
		t.Fatalf("stack is %T", p.Srv.svc)
	}
	u, ok := ca.closers[0].(*Upstream)
	if !ok {
		t.Fatalf("terminal is %T", ca.closers[0])
	}
	return u
}

// logBuffer collects log output safely across goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// Lines returns the log lines so far.
func (l *logBuffer) Lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := strings.TrimSpace(l.b.String())
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// waitLines waits (generously) for at least n log lines and returns all.
func (l *logBuffer) waitLines(n int) []string {
	deadline := time.Now().Add(5 * time.Second)
	for {
		lines := l.Lines()
		if len(lines) >= n || time.Now().After(deadline) {
			return lines
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// echo is what the echo upstream reports about a request it received.
type echo struct {
	Name   string
	Method string
	Target string
	Host   string
	Proto  string
	Header http.Header
	Body   int
	Remote string
}

// echoUpstream is a net/http origin that answers every request with an
// echo as JSON; it counts the connections it accepted.
type echoUpstream struct {
	*httptest.Server
	Name  string
	conns atomic.Int64
}

func newEchoUpstream(t testing.TB, name string) *echoUpstream {
	t.Helper()
	u := &echoUpstream{Name: name}
	u.Server = httptest.NewUnstartedServer(http.HandlerFunc(u.serve))
	u.Server.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			u.conns.Add(1)
		}
	}
	u.Start()
	t.Cleanup(u.Close)
	return u
}

func (u *echoUpstream) addr() string { return u.Listener.Addr().String() }

func (u *echoUpstream) serve(w http.ResponseWriter, r *http.Request) {
	n, _ := io.Copy(io.Discard, r.Body)
	e := echo{Name: u.Name, Method: r.Method, Target: r.RequestURI, Host: r.Host, Proto: r.Proto, Header: r.Header, Body: int(n), Remote: r.RemoteAddr}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Upstream", u.Name)
	json.NewEncoder(w).Encode(e)
}

// client returns an http.Client that reuses connections and does not ask
// for compression on its own.
func client(t testing.TB) *http.Client {
	tr := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 4}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// get does a request through the proxy with host and returns the response
// with its body read.
func do(t testing.TB, c *http.Client, method, url, host string, hdr http.Header, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return resp, b
}

func decodeEcho(t testing.TB, b []byte) echo {
	t.Helper()
	var e echo
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("not an echo: %v: %q", err, b)
	}
	return e
}

// rawConn is a client connection for hand-written requests.
type rawConn struct {
	net.Conn
	br *bufio.Reader
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return &rawConn{Conn: c, br: bufio.NewReader(c)}
}

func (c *rawConn) send(t testing.TB, s string) {
	t.Helper()
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatal(err)
	}
}

// response reads one response (for a request with method) and its body.
func (c *rawConn) response(t testing.TB, method string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading response body: %v", err)
	}
	return resp, b
}

// expectClosed checks the server closed the connection (EOF, or a reset).
func (c *rawConn) expectClosed(t testing.TB) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := c.br.ReadByte()
	if err == nil {
		t.Fatalf("connection still open: read %q", b)
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("connection still open after 5s")
	}
}

// refusedAddr is a loopback address nothing listens on: a connect to it
// is refused. (Not a port a listener just closed: a bind to port 0 may
// hand that to the next listener, an upstream of the same test.)
func refusedAddr(t *testing.T) string { return porttest.Free(t) }

// rawUpstream accepts connections and runs serve on each.
func rawUpstream(t testing.TB, serve func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// rawRequests is a rawUpstream that reads each request of a connection
// (its body too) and has answer write the response, until the proxy ends
// the connection or a request does not parse.
func rawRequests(t testing.TB, answer func(c net.Conn, r *http.Request, body []byte)) string {
	t.Helper()
	return rawUpstream(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			r, body, err := readRequest(br)
			if err != nil {
				return
			}
			answer(c, r, body)
		}
	})
}

// readRequest reads one request from br and its body.
func readRequest(br *bufio.Reader) (*http.Request, []byte, error) {
	r, err := http.ReadRequest(br)
	if err != nil {
		return nil, nil, err
	}
	b, err := io.ReadAll(r.Body)
	return r, b, err
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// readResponseHead reads a response head only (for a 101, after which the
// connection carries another protocol).
func readResponseHead(br *bufio.Reader) (*http.Response, error) {
	return http.ReadResponse(br, &http.Request{Method: "GET"})
}
