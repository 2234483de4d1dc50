package server_test

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/monolake-go/monolake/proxy"
	"github.com/monolake-go/monolake/proxy/server"
)

// svcFunc adapts a function to a ConnService.
type svcFunc = proxy.ServiceFunc[net.Conn, struct{}]

// start runs srv.Serve on a new loopback listener and returns its address
// and a channel that receives Serve's result.
func start(t *testing.T, srv *server.Server) (string, <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), done
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readLine reads one line with a generous deadline, so a broken test fails
// instead of hanging.
func readLine(t *testing.T, c net.Conn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("reading line: %v (got %q)", err, line)
	}
	return strings.TrimSuffix(line, "\n")
}

// expectClosed asserts that c reads EOF (or a reset) within a generous
// ceiling, not that it does so quickly.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [1]byte
	n, err := c.Read(b[:])
	if n != 0 || err == nil || errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		t.Fatalf("read on a connection the server closed: n=%d err=%v; want EOF or reset", n, err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// gated is a service that says "started", waits for release, then says
// "done" and returns.
type gated struct {
	started chan struct{}
	release chan struct{}
}

func newGated() *gated {
	return &gated{started: make(chan struct{}, 16), release: make(chan struct{})}
}

func (g *gated) Call(ctx context.Context, c net.Conn) (struct{}, error) {
	defer c.Close()
	io.WriteString(c, "started\n")
	g.started <- struct{}{}
	select {
	case <-g.release:
	case <-ctx.Done():
		return struct{}{}, ctx.Err()
	}
	_, err := io.WriteString(c, "done\n")
	return struct{}{}, err
}

func TestGracefulShutdownWaitsForConns(t *testing.T) {
	g := newGated()
	srv := server.New(g, nil)
	addr, served := start(t, srv)
	c := dial(t, addr)
	if got := readLine(t, c); got != "started" {
		t.Fatalf("got %q", got)
	}
	wait(t, g.started, "service start")
	if n := srv.ActiveConns(); n != 1 {
		t.Fatalf("ActiveConns = %d, want 1", n)
	}

	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(context.Background()) }()
	if err := wait(t, served, "Serve to return"); err != nil {
		t.Fatalf("Serve after Shutdown: %v, want nil", err)
	}
	// The listener is closed: no new connection gets served.
	if nc, err := net.Dial("tcp", addr); err == nil {
		nc.Close()
		t.Fatal("dial succeeded after Shutdown closed the listener")
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a connection still in flight", err)
	default:
	}

	close(g.release)
	if got := readLine(t, c); got != "done" {
		t.Fatalf("in-flight connection: got %q, want done", got)
	}
	if err := wait(t, shut, "Shutdown"); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	wait(t, srv.Drained(), "Drained")
	if n := srv.ActiveConns(); n != 0 {
		t.Fatalf("ActiveConns after Shutdown = %d", n)
	}
}

func TestShutdownForceCloses(t *testing.T) {
	tests := []struct {
		name string
		svc  func(ctxDone chan<- struct{}) server.ConnService
	}{
		{"honours ctx", func(ctxDone chan<- struct{}) server.ConnService {
			return svcFunc(func(ctx context.Context, c net.Conn) (struct{}, error) {
				io.WriteString(c, "started\n")
				<-ctx.Done()
				close(ctxDone)
				return struct{}{}, ctx.Err()
			})
		}},
		{"blocked in read", func(ctxDone chan<- struct{}) server.ConnService {
			return svcFunc(func(ctx context.Context, c net.Conn) (struct{}, error) {
				io.WriteString(c, "started\n")
				_, err := c.Read(make([]byte, 1)) // the client never writes
				if ctx.Err() != nil {
					close(ctxDone)
				}
				return struct{}{}, err
			})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctxDone := make(chan struct{})
			srv := server.New(tt.svc(ctxDone), nil)
			addr, served := start(t, srv)
			c := dial(t, addr)
			readLine(t, c)

			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if err := srv.Shutdown(ctx); !errors.Is(err, context.Canceled) {
				t.Fatalf("Shutdown with a done ctx: %v, want context.Canceled", err)
			}
			wait(t, ctxDone, "the service to see its ctx cancelled")
			expectClosed(t, c)
			if err := wait(t, served, "Serve"); err != nil {
				t.Fatalf("Serve: %v", err)
			}
			wait(t, srv.Drained(), "Drained")
		})
	}
}

func TestCloseClosesConns(t *testing.T) {
	g := newGated()
	srv := server.New(g, nil)
	addr, served := start(t, srv)
	c := dial(t, addr)
	readLine(t, c)
	srv.Close()
	expectClosed(t, c)
	if err := wait(t, served, "Serve"); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	wait(t, srv.Drained(), "Drained")
}

func TestServeManyListeners(t *testing.T) {
	echo := svcFunc(func(ctx context.Context, c net.Conn) (struct{}, error) {
		_, err := io.Copy(c, c)
		return struct{}{}, err
	})
	srv := server.New(echo, nil)
	var addrs []string
	var serves []<-chan error
	for range 3 {
		a, s := start(t, srv)
		addrs, serves = append(addrs, a), append(serves, s)
	}
	for _, a := range addrs {
		c := dial(t, a)
		io.WriteString(c, "ping\n")
		if got := readLine(t, c); got != "ping" {
			t.Fatalf("echo on %s: got %q", a, got)
		}
		c.Close()
	}
	// The echo service ends when its client closes.
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for i, s := range serves {
		if err := wait(t, s, "Serve"); err != nil {
			t.Fatalf("Serve %d: %v", i, err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(ln); !errors.Is(err, server.ErrServerClosed) {
		t.Fatalf("Serve after Shutdown: %v, want ErrServerClosed", err)
	}
	if nc, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		nc.Close()
		t.Fatal("Serve after Shutdown left its listener open")
	}
}

// named says its name, then waits for its client to close.
type named struct {
	name   string
	closed chan struct{}
}

func (n *named) Call(ctx context.Context, c net.Conn) (struct{}, error) {
	io.WriteString(c, n.name+"\n")
	io.Copy(io.Discard, c)
	n.closed <- struct{}{}
	return struct{}{}, nil
}

func TestSetServiceAffectsOnlyNewConns(t *testing.T) {
	a := &named{"a", make(chan struct{}, 4)}
	b := &named{"b", make(chan struct{}, 4)}
	srv := server.New(a, nil)
	addr, _ := start(t, srv)

	old := dial(t, addr)
	if got := readLine(t, old); got != "a" {
		t.Fatalf("first conn served by %q, want a", got)
	}
	prev, prevIdle := srv.SetService(b)
	if prev != server.ConnService(a) {
		t.Fatalf("SetService returned %v, want the old service", prev)
	}
	c := dial(t, addr)
	if got := readLine(t, c); got != "b" {
		t.Fatalf("conn after SetService served by %q, want b", got)
	}
	select {
	case <-prevIdle:
		t.Fatal("old service reported idle with a connection still on it")
	default:
	}
	if n := srv.ActiveConns(); n != 2 {
		t.Fatalf("ActiveConns = %d, want 2", n)
	}
	old.Close()
	wait(t, a.closed, "the old conn to end on the old service")
	wait(t, prevIdle, "the old service to go idle")
	c.Close()
	wait(t, b.closed, "the new conn to end")

	// Swapping again with nothing in flight reports idle at once.
	_, idle := srv.SetService(a)
	wait(t, idle, "idle of a service with no connections")
}

func TestPanicIsContained(t *testing.T) {
	var logBuf syncBuffer
	log := slog.New(slog.NewTextHandler(&logBuf, nil))
	srv := server.New(svcFunc(func(ctx context.Context, c net.Conn) (struct{}, error) {
		var b [1]byte
		c.Read(b[:])
		if b[0] == 'p' {
			panic("boom")
		}
		io.WriteString(c, "ok\n")
		return struct{}{}, nil
	}), log)
	addr, _ := start(t, srv)
	c := dial(t, addr)
	io.WriteString(c, "p")
	expectClosed(t, c)
	c2 := dial(t, addr)
	io.WriteString(c2, "x")
	if got := readLine(t, c2); got != "ok" {
		t.Fatalf("after a panic: got %q", got)
	}
	if !strings.Contains(logBuf.String(), "panic serving connection") {
		t.Fatalf("panic not logged; log:\n%s", logBuf.String())
	}
}

// flakyListener fails its first n Accepts with a temporary error, as a
// process out of file descriptors would, then accepts for real.
type flakyListener struct {
	net.Listener
	mu    sync.Mutex
	n     int
	errno syscall.Errno // EMFILE if 0
	calls int
}

func (l *flakyListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	fail := l.n > 0
	l.n--
	l.calls++
	errno := cmp.Or(l.errno, syscall.EMFILE)
	l.mu.Unlock()
	if fail {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}
	}
	return l.Listener.Accept()
}

// TestAcceptErrorsInRowBackOff: errors of failed connections are retried
// at once, but a listener that fails every call so (one that is not a
// stream socket answers EOPNOTSUPP) is backed off from, with a log line;
// it spun, half a million calls in 200 ms.
func TestAcceptErrorsInRowBackOff(t *testing.T) {
	var logBuf syncBuffer
	srv := server.New(svcFunc(func(ctx context.Context, c net.Conn) (struct{}, error) { return struct{}{}, nil }),
		slog.New(slog.NewTextHandler(&logBuf, nil)))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &flakyListener{Listener: ln, n: 1 << 30, errno: syscall.EOPNOTSUPP}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(fl) }()
	time.Sleep(200 * time.Millisecond)
	srv.Close()
	wait(t, served, "Serve")
	fl.mu.Lock()
	calls := fl.calls
	fl.mu.Unlock()
	if calls > 200 {
		t.Fatalf("%d accept calls in 200 ms: the loop spins", calls)
	}
	if !strings.Contains(logBuf.String(), "accept failed") {
		t.Fatalf("no log line for the failing listener:\n%s", logBuf.String())
	}
}

func TestAcceptBackoff(t *testing.T) {
	var logBuf syncBuffer
	log := slog.New(slog.NewTextHandler(&logBuf, nil))
	srv := server.New(svcFunc(func(ctx context.Context, c net.Conn) (struct{}, error) {
		io.WriteString(c, "ok\n")
		return struct{}{}, nil
	}), log)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(&flakyListener{Listener: ln, n: 3}) }()
	c := dial(t, ln.Addr().String())
	if got := readLine(t, c); got != "ok" {
		t.Fatalf("got %q", got)
	}
	if n := strings.Count(logBuf.String(), "accept failed"); n != 3 {
		t.Fatalf("%d accept failures logged, want 3; log:\n%s", n, logBuf.String())
	}
	srv.Shutdown(context.Background())
	if err := wait(t, served, "Serve"); err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

func TestServeReturnsOtherAcceptErrors(t *testing.T) {
	srv := server.New(svcFunc(func(ctx context.Context, c net.Conn) (struct{}, error) { return struct{}{}, nil }), nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	ln.Close() // closed behind the server's back: not a shutdown
	if err := wait(t, served, "Serve"); err == nil || !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Serve on a listener closed elsewhere: %v, want net.ErrClosed", err)
	}
	srv.Close()
}

// syncBuffer is a bytes.Buffer safe for the logger's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// wrapConn stands for a layer's conn over the server's (a TLS conn).
type wrapConn struct {
	net.Conn
	once   sync.Once
	closed chan struct{}
}

func (w *wrapConn) Close() error {
	w.once.Do(func() { close(w.closed) })
	return w.Conn.Close()
}

// TestWrapAndDetach: once a layer wrapped the connection, Detach takes the
// layer's conn and not the one underneath, and the server keeps the
// connection until the detached part is done and then closes the layer's
// conn; a second Wrap or a Wrap of a stranger is refused.
func TestWrapAndDetach(t *testing.T) {
	type result struct {
		wrapOK, strangerOK, rawDetachOK, detachOK, rewrapOK bool
	}
	results := make(chan result, 1)
	finish := make(chan func(), 1)
	returned := make(chan struct{})
	srv := server.New(svcFunc(func(ctx context.Context, c net.Conn) (struct{}, error) {
		var r result
		w := &wrapConn{Conn: c, closed: make(chan struct{})}
		r.strangerOK = server.Wrap(ctx, &wrapConn{Conn: c, closed: make(chan struct{})}, w)
		r.wrapOK = server.Wrap(ctx, c, w)
		// The protocol served over w detaches it and answers later.
		_, r.rawDetachOK = server.Detach(ctx, c)
		var done func()
		done, r.detachOK = server.Detach(ctx, w)
		r.rewrapOK = server.Wrap(ctx, w, &wrapConn{Conn: w, closed: make(chan struct{})})
		results <- r
		if done != nil {
			// The detached part answers later; the server closes w
			// (the layer's conn, not only the one beneath) once it is
			// done.
			finish <- func() {
				io.WriteString(w, "later\n")
				done()
				wait(t, w.closed, "the server closing the layer's conn")
			}
		}
		close(returned)
		return struct{}{}, nil
	}), nil)
	addr, _ := start(t, srv)
	c := dial(t, addr)
	r := wait(t, results, "the service's result")
	want := result{wrapOK: true, detachOK: true}
	if r != want {
		t.Fatalf("got %+v, want %+v", r, want)
	}
	f := wait(t, finish, "the detached part")
	wait(t, returned, "Call's return")
	time.Sleep(20 * time.Millisecond) // the server has finished its Call by now
	f()
	if got := readLine(t, c); got != "later" {
		t.Fatalf("detached part wrote %q", got)
	}
	expectClosed(t, c)
}

// TestWrapClosesAfterCall: a wrapped connection that is not detached is
// closed by the server, the layer's conn first, once Call returns.
func TestWrapClosesAfterCall(t *testing.T) {
	closed := make(chan *wrapConn, 1)
	srv := server.New(svcFunc(func(ctx context.Context, c net.Conn) (struct{}, error) {
		w := &wrapConn{Conn: c, closed: make(chan struct{})}
		if !server.Wrap(ctx, c, w) {
			t.Error("Wrap refused the server's own connection")
		}
		io.WriteString(w, "served\n")
		closed <- w
		return struct{}{}, nil
	}), nil)
	addr, _ := start(t, srv)
	c := dial(t, addr)
	w := wait(t, closed, "the service")
	wait(t, w.closed, "the server closing the layer's conn")
	if got := readLine(t, c); got != "served" {
		t.Fatalf("got %q", got)
	}
	expectClosed(t, c)
}
