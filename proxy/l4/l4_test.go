package l4_test

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/monolake-go/monolake/proxy/config"
	"github.com/monolake-go/monolake/proxy/l4"
	"github.com/monolake-go/monolake/proxy/netio"
	"github.com/monolake-go/monolake/proxy/porttest"
	"github.com/monolake-go/monolake/proxy/server"
)

// ceiling bounds every wait, so a broken relay fails the test instead of
// hanging it. It is not a performance bound.
const ceiling = 5 * time.Second

// upstream runs handle on every connection accepted on a new loopback
// listener of the given network ("tcp" or "unix") and returns its endpoint.
func upstream(t testing.TB, network string, handle func(net.Conn)) config.Endpoint {
	t.Helper()
	ln := listen(t, network)
	ep := config.Endpoint{Type: config.TypeSocket, Value: ln.Addr().String()}
	if network == "unix" {
		ep.Type = config.TypeUnix
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				handle(c)
			})
		}
	})
	return ep
}

// listen returns a loopback listener: TCP on 127.0.0.1 or a unix socket
// in a short temporary directory (socket paths are limited to 107 bytes).
func listen(t testing.TB, network string) net.Listener {
	t.Helper()
	ln, err := net.Listen(network, loopbackAddr(t, network))
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// loopbackAddr is an address to listen on: 127.0.0.1:0, or a unix socket
// path in a short temporary directory (socket paths are limited to 107
// bytes).
func loopbackAddr(t testing.TB, network string) string {
	t.Helper()
	if network != "unix" {
		return "127.0.0.1:0"
	}
	dir, err := os.MkdirTemp("", "l4")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "s.sock")
}

// proxyListen is listen for the proxy under test: on the I/O driver
// netio.TestRuntimeEnv names (make test runs these tests on epoll and on
// io_uring), which the proxy also dials its upstreams with.
func proxyListen(t testing.TB, p *l4.Proxy, network string) net.Listener {
	t.Helper()
	d, err := netio.DriverForTests()
	if err != nil {
		t.Fatal(err)
	}
	if d.Name() == netio.RuntimeEpoll {
		return listen(t, network)
	}
	p.SetDial(d.Dial)
	addr := loopbackAddr(t, network)
	ln, err := d.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// echo copies what it reads back until EOF, then half-closes.
func echo(c net.Conn) {
	io.Copy(c, struct{ io.Reader }{c}) // no splice on the upstream's side
	closeWrite(c)
}

func closeWrite(c net.Conn) {
	c.(interface{ CloseWrite() error }).CloseWrite()
}

type opts struct {
	listen  string // "tcp" (default) or "unix"
	lb      string
	idle    time.Duration
	connect time.Duration
	log     *slog.Logger
}

func tcpServer(o opts, eps ...config.Endpoint) *config.Server {
	s := &config.Server{
		Key: "l4test", Name: "l4test", ProxyType: config.ProxyTCP,
		Route:   &config.L4Route{LoadBalancer: o.lb},
		Timeout: config.Timeout{ServerKeepalive: o.idle, UpstreamConnect: o.connect},
	}
	for _, ep := range eps {
		s.Route.Upstreams = append(s.Route.Upstreams, config.Upstream{Endpoint: ep, Weight: 1})
	}
	return s
}

// startProxy serves an l4 proxy for s on a loopback listener through
// proxy/server and returns its address.
func startProxy(t testing.TB, o opts, eps ...config.Endpoint) (net.Addr, *server.Server) {
	t.Helper()
	return startServerSrv(t, o, tcpServer(o, eps...))
}

// startServer starts a proxy of the server config s.
func startServer(t testing.TB, o opts, s *config.Server) net.Addr {
	t.Helper()
	addr, _ := startServerSrv(t, o, s)
	return addr
}

func startServerSrv(t testing.TB, o opts, s *config.Server) (net.Addr, *server.Server) {
	t.Helper()
	p, err := l4.New(s, o.log)
	if err != nil {
		t.Fatal(err)
	}
	ln := proxyListen(t, p, cmp.Or(o.listen, "tcp"))
	srv := server.New(p, nil)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		<-served
		<-srv.Drained()
	})
	return ln.Addr(), srv
}

func dial(t testing.TB, addr net.Addr) net.Conn {
	t.Helper()
	c, err := net.Dial(addr.Network(), addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(ceiling))
	return c
}

// expectEOF asserts that c reads EOF or a reset, not data and not the
// ceiling.
func expectEOF(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(ceiling))
	var b [1]byte
	n, err := c.Read(b[:])
	if n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read: n=%d err=%v; want EOF or reset", n, err)
	}
}

func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(ceiling):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// path is how the client reaches the proxy and the proxy its upstream.
// TCP to TCP and TCP to or from unix relay with splice; unix to unix
// copies through a buffer.
type path struct{ client, up string }

func (p path) String() string { return "client=" + p.client + ",upstream=" + p.up }

var paths = []path{{"tcp", "tcp"}, {"tcp", "unix"}, {"unix", "tcp"}, {"unix", "unix"}}

func TestEcho(t *testing.T) {
	for _, pa := range paths {
		t.Run(pa.String(), func(t *testing.T) {
			addr, _ := startProxy(t, opts{listen: pa.client}, upstream(t, pa.up, echo))
			c := dial(t, addr)
			r := bufio.NewReader(c)
			for i := range 3 {
				msg := fmt.Sprintf("hello %d\n", i)
				io.WriteString(c, msg)
				got, err := r.ReadString('\n')
				if err != nil || got != msg {
					t.Fatalf("echo %d: got %q, %v; want %q", i, got, err, msg)
				}
			}
		})
	}
}

func TestHalfClose(t *testing.T) {
	tests := []struct {
		name string
		// up is the upstream; client drives the client side and returns
		// what the upstream must have received.
		up     func(c net.Conn, got chan<- string)
		client func(t *testing.T, c net.Conn)
	}{
		{
			name: "client closes write first",
			up: func(c net.Conn, got chan<- string) {
				req, _ := io.ReadAll(c) // until the client's FIN
				got <- string(req)
				io.WriteString(c, "reply after your FIN")
				closeWrite(c)
			},
			client: func(t *testing.T, c net.Conn) {
				io.WriteString(c, "request")
				closeWrite(c)
				resp, err := io.ReadAll(c)
				if err != nil || string(resp) != "reply after your FIN" {
					t.Fatalf("client read %q, %v", resp, err)
				}
			},
		},
		{
			name: "upstream closes write first",
			up: func(c net.Conn, got chan<- string) {
				io.WriteString(c, "greeting then FIN")
				closeWrite(c)
				req, _ := io.ReadAll(c)
				got <- string(req)
			},
			client: func(t *testing.T, c net.Conn) {
				greet, err := io.ReadAll(c) // until the upstream's FIN
				if err != nil || string(greet) != "greeting then FIN" {
					t.Fatalf("client read %q, %v", greet, err)
				}
				io.WriteString(c, "sent after your FIN")
				closeWrite(c)
			},
		},
	}
	want := map[string]string{
		"client closes write first":   "request",
		"upstream closes write first": "sent after your FIN",
	}
	for _, pa := range paths {
		for _, tt := range tests {
			t.Run(tt.name+"/"+pa.String(), func(t *testing.T) {
				got := make(chan string, 1)
				addr, srv := startProxy(t, opts{listen: pa.client}, upstream(t, pa.up, func(c net.Conn) { tt.up(c, got) }))
				c := dial(t, addr)
				tt.client(t, c)
				if g := wait(t, got, "the upstream's read"); g != want[tt.name] {
					t.Fatalf("upstream read %q, want %q", g, want[tt.name])
				}
				expectEOF(t, c)
				// Both directions ended: the relay ends, the client's
				// connection still open.
				for deadline := time.Now().Add(ceiling); srv.ActiveConns() != 0; time.Sleep(10 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatal("the relay is still counted after both directions ended")
					}
				}
			})
		}
	}
}

func TestRoundRobin(t *testing.T) {
	var eps []config.Endpoint
	for _, name := range []string{"a", "b", "c"} {
		eps = append(eps, upstream(t, "tcp", func(c net.Conn) { io.WriteString(c, name) }))
	}
	addr, _ := startProxy(t, opts{lb: config.LBRoundRobin}, eps...)
	counts := map[string]int{}
	var order []string
	for range 9 {
		c := dial(t, addr)
		b, err := io.ReadAll(c)
		if err != nil {
			t.Fatal(err)
		}
		counts[string(b)]++
		order = append(order, string(b))
		c.Close()
	}
	for _, name := range []string{"a", "b", "c"} {
		if counts[name] != 3 {
			t.Fatalf("round robin over 3 upstreams, 9 connections: order %v", order)
		}
	}
}

// closedPort returns a loopback endpoint nothing listens on (from
// porttest: a port a listener just closed may go to the next bind to port
// 0, an upstream of the same test).
func closedPort(t *testing.T) config.Endpoint {
	return config.Endpoint{Type: config.TypeSocket, Value: porttest.Free(t)}
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

func TestUnreachableUpstream(t *testing.T) {
	var logs syncBuffer
	dead := closedPort(t)
	addr, _ := startProxy(t, opts{log: slog.New(slog.NewTextHandler(&logs, nil))}, dead)
	c := dial(t, addr)
	expectEOF(t, c)

	// The log line is written before the client is closed.
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("want one log line, got:\n%s", logs.String())
	}
	for _, want := range []string{"upstream unreachable", "server=l4test", "client=" + c.LocalAddr().String(), dead.Value, "refused"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("log line lacks %q: %s", want, lines[0])
		}
	}
}

func TestRetryNextUpstream(t *testing.T) {
	dead := closedPort(t)
	live := upstream(t, "tcp", func(c net.Conn) { io.WriteString(c, "live") })
	for _, tt := range []struct {
		maxFails     int
		retries, off int // lines: "used another", "marked down"
	}{
		// Round robin alternates, and a retry does not take the next
		// connection's turn: every other connection tries dead first.
		{maxFails: 0, retries: 2, off: 0},
		// With the health check, the first failure takes dead out.
		{maxFails: 1, retries: 1, off: 1},
	} {
		var logs syncBuffer
		o := opts{lb: config.LBRoundRobin, log: slog.New(slog.NewTextHandler(&logs, nil))}
		s := tcpServer(o, dead, live)
		s.Route.Health = config.Health{MaxFails: tt.maxFails, FailTimeout: time.Minute}
		addr := startServer(t, o, s)
		for range 4 {
			c := dial(t, addr)
			b, err := io.ReadAll(c)
			if err != nil || string(b) != "live" {
				t.Fatalf("got %q, %v; want the live upstream", b, err)
			}
		}
		if n, m := strings.Count(logs.String(), "used another"), strings.Count(logs.String(), "marked down"); n != tt.retries || m != tt.off {
			t.Fatalf("max_fails %d: %d retry and %d marked-down lines logged, want %d and %d:\n%s",
				tt.maxFails, n, m, tt.retries, tt.off, logs.String())
		}
	}
}

// TestRetryReachesLive: whatever the balancer (random may repeat the dead
// upstream, first always offers it), the retry reaches the live one.
func TestRetryReachesLive(t *testing.T) {
	dead, dead2 := closedPort(t), closedPort(t)
	live := upstream(t, "tcp", func(c net.Conn) { io.WriteString(c, "live") })
	for _, lb := range []string{config.LBRandom, config.LBFirst, config.LBRoundRobin} {
		// Two of three down: every upstream is tried until one connects.
		addr, _ := startProxy(t, opts{lb: lb, log: slog.New(slog.DiscardHandler)}, dead, dead2, live)
		for i := range 40 {
			c := dial(t, addr)
			if b, err := io.ReadAll(c); err != nil || string(b) != "live" {
				t.Fatalf("%s: connection %d: got %q, %v; want the live upstream", lb, i, b, err)
			}
		}
	}
}

// saturated returns a loopback TCP endpoint whose accept queue is full, so
// that a connect to it gets no answer and times out. It skips the test
// when the kernel accepts more than the backlog allows.
func saturated(t *testing.T) config.Endpoint {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil { // never accepted
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	// Connect until connects stop completing: twice in a row, after at
	// least one completed, so a slow scheduler is not mistaken for a full
	// queue.
	established, timeouts := 0, 0
	for range 16 {
		c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
		if err != nil {
			if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
				t.Fatalf("filling the accept queue: %v", err)
			}
			if timeouts++; established > 0 && timeouts == 2 {
				return config.Endpoint{Type: config.TypeSocket, Value: addr}
			}
			continue
		}
		established, timeouts = established+1, 0
		t.Cleanup(func() { c.Close() })
	}
	t.Skip("the kernel kept completing connects to a listener with a full backlog; cannot provoke a connect timeout on loopback")
	panic("unreachable")
}

func TestConnectTimeout(t *testing.T) {
	var logs syncBuffer
	ep := saturated(t)
	addr, _ := startProxy(t, opts{connect: 200 * time.Millisecond, log: slog.New(slog.NewTextHandler(&logs, nil))}, ep)
	c := dial(t, addr)
	expectEOF(t, c)
	if s := logs.String(); !strings.Contains(s, "upstream unreachable") || !strings.Contains(s, "timeout") {
		t.Fatalf("want an unreachable line naming the timeout, got:\n%s", s)
	}
}

func TestIdleTimeoutClosesBothSides(t *testing.T) {
	for _, pa := range paths {
		t.Run(pa.String(), func(t *testing.T) {
			t.Parallel()
			upEOF := make(chan struct{})
			ep := upstream(t, pa.up, func(c net.Conn) {
				io.WriteString(c, "hi\n")
				c.SetReadDeadline(time.Now().Add(ceiling))
				io.Copy(io.Discard, c) // until the proxy closes
				close(upEOF)
			})
			addr, _ := startProxy(t, opts{listen: pa.client, idle: 200 * time.Millisecond}, ep)
			c := dial(t, addr)
			if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || line != "hi\n" {
				t.Fatalf("got %q, %v", line, err)
			}
			expectEOF(t, c)
			wait(t, upEOF, "the upstream to see the relay closed")
		})
	}
}

// TestIdleTimeoutSparesOneWayTraffic checks that bytes flowing one way
// only, inside one long splice, keep the relay open past several idle
// timeouts.
func TestIdleTimeoutSparesOneWayTraffic(t *testing.T) {
	const idle = 500 * time.Millisecond
	const ticks, every = 100, 20 * time.Millisecond // 4 idle timeouts

	// trickle writes ticks dots then a 'q', and returns the longest pause
	// between two writes: if the writer itself stalls for an idle timeout
	// (an overloaded machine), closing the relay is right.
	trickle := func(c net.Conn) (time.Duration, error) {
		var gap time.Duration
		prev := time.Now()
		for range ticks {
			if _, err := io.WriteString(c, "."); err != nil {
				return gap, err
			}
			time.Sleep(every)
			now := time.Now()
			gap, prev = max(gap, now.Sub(prev)), now
		}
		_, err := io.WriteString(c, "q")
		return gap, err
	}
	tests := []struct {
		name   string
		up     func(c net.Conn, gap chan<- time.Duration)
		client func(c net.Conn, gap chan<- time.Duration) error
	}{
		{
			name: "client to upstream",
			up: func(c net.Conn, _ chan<- time.Duration) {
				if _, err := bufio.NewReader(c).ReadString('q'); err == nil {
					io.WriteString(c, "alive\n")
				}
			},
			client: func(c net.Conn, gap chan<- time.Duration) error {
				g, err := trickle(c)
				gap <- g
				if err != nil {
					return err
				}
				if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || line != "alive\n" {
					return fmt.Errorf("after trickling up: got %q, %v", line, err)
				}
				return nil
			},
		},
		{
			name: "upstream to client",
			up: func(c net.Conn, gap chan<- time.Duration) {
				g, _ := trickle(c)
				gap <- g
			},
			client: func(c net.Conn, _ chan<- time.Duration) error {
				got, err := bufio.NewReader(c).ReadString('q')
				if err != nil || len(got) != ticks+1 {
					return fmt.Errorf("after trickling down: got %d bytes, %v", len(got), err)
				}
				return nil
			},
		},
	}
	for _, pa := range paths {
		for _, tt := range tests {
			t.Run(tt.name+"/"+pa.String(), func(t *testing.T) {
				t.Parallel()
				gap := make(chan time.Duration, 1)
				addr, _ := startProxy(t, opts{listen: pa.client, idle: idle}, upstream(t, pa.up, func(c net.Conn) { tt.up(c, gap) }))
				c := dial(t, addr)
				c.SetDeadline(time.Now().Add(10 * ceiling))
				err := tt.client(c, gap)
				if err == nil {
					return
				}
				if g := wait(t, gap, "the trickle to end"); g >= idle/2 {
					t.Skipf("the writer stalled for %v on an overloaded machine, so the relay may well have been idle: %v", g, err)
				}
				t.Fatal(err)
			})
		}
	}
}

// TestIdleTimeoutSparesOneWayBulk: an upstream that always has more to
// send than a slow client takes, for several idle timeouts, with nothing
// the other way. The relay's idle check interrupts the busy direction to
// learn that bytes moved (a read deadline in the past); a splice that never
// waits for the source must still notice it, or the relay is closed as
// idle mid-transfer.
func TestIdleTimeoutSparesOneWayBulk(t *testing.T) {
	const idle = 300 * time.Millisecond
	const sendFor = 5 * idle
	for _, pa := range paths {
		t.Run(pa.String(), func(t *testing.T) {
			sent := make(chan int64, 1)
			sendErr := make(chan error, 1)
			ep := upstream(t, pa.up, func(c net.Conn) {
				chunk := make([]byte, 64<<10)
				var n int64
				var err error
				for end := time.Now().Add(sendFor); time.Now().Before(end) && err == nil; {
					var m int
					m, err = c.Write(chunk)
					n += int64(m)
				}
				sent <- n
				sendErr <- err
				closeWrite(c)
			})
			addr, _ := startProxy(t, opts{listen: pa.client, idle: idle}, ep)
			c := dial(t, addr)
			c.SetDeadline(time.Now().Add(4 * ceiling))
			buf := make([]byte, 64<<10)
			var got int64
			for {
				n, err := c.Read(buf)
				got += int64(n)
				if err != nil {
					break
				}
				time.Sleep(500 * time.Microsecond) // slower than the upstream
			}
			if err := wait(t, sendErr, "the upstream to finish sending"); err != nil {
				t.Fatalf("the upstream's write failed after %d bytes: %v (relay closed as idle?)", <-sent, err)
			}
			if want := <-sent; got != want {
				t.Fatalf("client got %d bytes, upstream sent %d", got, want)
			}
		})
	}
}

func TestLargeTransfer(t *testing.T) {
	const size = 8 << 20
	for _, pa := range paths {
		t.Run(pa.String(), func(t *testing.T) {
			upSum := make(chan [32]byte, 1)
			ep := upstream(t, pa.up, func(c net.Conn) {
				h := sha256.New()
				io.Copy(c, io.TeeReader(c, h))
				closeWrite(c)
				upSum <- [32]byte(h.Sum(nil))
			})
			addr, _ := startProxy(t, opts{listen: pa.client}, ep)
			copied := l4.CopiedBytes()
			c := dial(t, addr)
			c.SetDeadline(time.Now().Add(4 * ceiling))
			data := make([]byte, size)
			rand.Read(data)
			want := sha256.Sum256(data)
			go func() {
				c.Write(data)
				closeWrite(c)
			}()
			h := sha256.New()
			n, err := io.Copy(h, c)
			if err != nil || n != size {
				t.Fatalf("read back %d bytes, %v; want %d", n, err, size)
			}
			if got := [32]byte(h.Sum(nil)); got != want {
				t.Fatal("client -> upstream -> client: checksum differs")
			}
			if got := wait(t, upSum, "the upstream's checksum"); got != want {
				t.Fatal("client -> upstream: checksum differs")
			}
			// Bulk skips Go memory (splice, or the io_uring driver's
			// relay), except between two unix sockets on epoll, which
			// the Go runtime does not splice.
			copied = l4.CopiedBytes() - copied
			d, err := netio.DriverForTests()
			if err != nil {
				t.Fatal(err)
			}
			if d.Name() == netio.RuntimeEpoll && pa.client == "unix" && pa.up == "unix" {
				if copied != 2*size {
					t.Errorf("%s: %d bytes through a Go buffer, want %d (both ways)", d.Name(), copied, 2*size)
				}
			} else if copied != 0 {
				t.Errorf("%s: %d bytes went through a Go buffer, want none", d.Name(), copied)
			}
		})
	}
}

func TestShutdownDrainTimeoutClosesBothSides(t *testing.T) {
	upEOF := make(chan struct{})
	ep := upstream(t, "tcp", func(c net.Conn) {
		io.WriteString(c, "hi\n")
		c.SetReadDeadline(time.Now().Add(ceiling))
		io.Copy(io.Discard, c)
		close(upEOF)
	})
	addr, srv := startProxy(t, opts{}, ep)
	c := dial(t, addr)
	if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || line != "hi\n" {
		t.Fatalf("got %q, %v", line, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the drain timeout has passed
	if err := srv.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown: %v", err)
	}
	expectEOF(t, c)
	wait(t, upEOF, "the upstream to see the relay closed")
	wait(t, srv.Drained(), "the relay to return")
}

func TestClosedProxyRefuses(t *testing.T) {
	p, err := l4.New(tcpServer(opts{}, upstream(t, "tcp", echo)), nil)
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	a, b := net.Pipe()
	defer b.Close()
	if _, err := p.Call(context.Background(), a); !errors.Is(err, l4.ErrClosed) {
		t.Fatalf("Call on a closed proxy: %v, want ErrClosed", err)
	}
	if _, err := b.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("the client conn was not closed: %v", err)
	}
}

func TestNewErrors(t *testing.T) {
	sock := config.Endpoint{Type: config.TypeSocket, Value: "127.0.0.1:1"}
	tests := []struct {
		name string
		s    *config.Server
		want string
	}{
		{"nil", nil, "nil server config"},
		{"http server", &config.Server{Name: "x", ProxyType: config.ProxyHTTP, Route: &config.L4Route{Upstreams: []config.Upstream{{Endpoint: sock, Weight: 1}}}}, "proxy_type"},
		{"no route", &config.Server{Name: "x", ProxyType: config.ProxyTCP}, "no upstreams"},
		{"uri upstream", tcpServer(opts{}, config.Endpoint{Type: config.TypeURI, Value: "http://a"}), "endpoint type"},
		{"bad policy", tcpServer(opts{lb: "fastest"}, sock), "unknown policy"},
		{"all weight zero", &config.Server{Name: "x", Route: &config.L4Route{Upstreams: []config.Upstream{{Endpoint: sock}}}}, "positive weight"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := l4.New(tt.s, nil)
			if err == nil || !strings.HasPrefix(err.Error(), "l4: ") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v; want an l4 error containing %q", err, tt.want)
			}
		})
	}
}

// BenchmarkRelay moves 64 KiB chunks client -> proxy -> echo upstream ->
// proxy -> client over loopback; each op is one chunk there and back.
func BenchmarkRelay(b *testing.B) {
	const chunk = 64 << 10
	for _, pa := range paths {
		b.Run(pa.String(), func(b *testing.B) {
			addr, _ := startProxy(b, opts{listen: pa.client}, upstream(b, pa.up, echo))
			c := dial(b, addr)
			c.SetDeadline(time.Time{})
			out, in := make([]byte, chunk), make([]byte, chunk)
			rand.Read(out)
			b.SetBytes(chunk)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Write(out); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestStuckReaderAfterHalfClose: a client that half-closes after its
// request and then never reads the response cannot hold a relay: the
// direction writing to it is blocked with nothing to report, the other
// has ended, and the kernel's user timeout (the idle timeout) ends it; a
// unix socket client has none, and the ended direction's watch ends it.
func TestStuckReaderAfterHalfClose(t *testing.T) {
	for _, tc := range []struct{ listen, up string }{{"tcp", "tcp"}, {"tcp", "unix"}, {"unix", "tcp"}} {
		t.Run("client="+tc.listen+"/upstream="+tc.up, func(t *testing.T) {
			up := tc.up
			upGone := make(chan error, 1)
			ep := upstream(t, up, func(c net.Conn) {
				bufio.NewReader(c).ReadString('\n')
				c.SetWriteDeadline(time.Now().Add(3 * ceiling))
				buf := make([]byte, 64<<10)
				for {
					if _, err := c.Write(buf); err != nil {
						upGone <- err
						return
					}
				}
			})
			addr, srv := startProxy(t, opts{listen: tc.listen, idle: 300 * time.Millisecond}, ep)
			c := dial(t, addr)
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetReadBuffer(4 << 10)
			}
			io.WriteString(c, "send\n")
			closeWrite(c) // and never read
			select {
			case err := <-upGone:
				if errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatal("the relay kept the upstream blocked until the test's own deadline")
				}
			case <-time.After(3 * ceiling):
				t.Fatal("the relay is still open")
			}
			for deadline := time.Now().Add(ceiling); srv.ActiveConns() != 0; time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the relay's connection is still counted")
				}
			}
		})
	}
}

// TestAccessLog: with access_log, each connection ends with a line giving
// the client, the upstream, the status and the bytes each way; a connection
// whose upstream cannot be reached is a 502.
func TestAccessLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	reply := "0123456789"
	up := upstream(t, "tcp", func(c net.Conn) {
		io.Copy(io.Discard, c)
		io.WriteString(c, reply)
		closeWrite(c)
	})
	// serve runs a proxy for s; the test closes it (flushing the log)
	// once its server has drained.
	serve := func(s *config.Server) (*l4.Proxy, net.Listener, *server.Server) {
		s.AccessLog = path
		p, err := l4.New(s, nil)
		if err != nil {
			t.Fatal(err)
		}
		ln := proxyListen(t, p, "tcp")
		srv := server.New(p, nil)
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		return p, ln, srv
	}
	s := tcpServer(opts{}, up, closedPort(t))
	s.Route.LoadBalancer = "round_robin"
	p, ln, srv := serve(s)
	// Round robin: the live upstream, then the dead one (whose retry
	// reaches the live one), so two relays; then a proxy with only a dead
	// upstream below.
	for range 2 {
		c := dial(t, ln.Addr())
		io.WriteString(c, "hello")
		closeWrite(c)
		if b, err := io.ReadAll(c); err != nil || string(b) != reply {
			t.Fatalf("relay: %q, %v", b, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), ceiling)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	p.Close() // flushes the log

	dp, dln, dsrv := serve(tcpServer(opts{}, closedPort(t)))
	expectEOF(t, dial(t, dln.Addr()))
	if err := dsrv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	dp.Close()

	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	upAddr := regexp.QuoteMeta(up.Value)
	want := []*regexp.Regexp{
		regexp.MustCompile(`^127\.0\.0\.1 - - \[\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] "TCP ` + upAddr + `" 200 10 5 \d+\.\d{6}$`),
		regexp.MustCompile(`^127\.0\.0\.1 - - \[[^]]+\] "TCP ` + upAddr + `" 200 10 5 \d+\.\d{6}$`),
		regexp.MustCompile(`^127\.0\.0\.1 - - \[[^]]+\] "TCP -" 502 0 0 \d+\.\d{6}$`),
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines: %q", len(lines), lines)
	}
	for i, re := range want {
		if !re.MatchString(lines[i]) {
			t.Errorf("line %d %q does not match %s", i, lines[i], re)
		}
	}
}
