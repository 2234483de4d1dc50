// Package server runs the accept loop every proxy type shares: it accepts
// connections on one or more listeners, hands each to a ConnService on a
// goroutine of its own (pooled: see workers.go), keeps track of them, and
// drains them on Shutdown.
//
// A Server knows nothing of protocols. The service it runs decides what a
// connection carries (an L4 relay, HTTP/1.1, TLS then HTTP, ...); the server
// only owns the connection's lifetime: its context, its place in the drain,
// and its forced close.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/monolake-go/monolake/proxy"
)

// ConnService handles one accepted connection.
//
// Call owns conn: it reads and writes it and should close it when done.
// Call must not use conn after it returns; the server closes conn then in
// case the service did not (a second Close is harmless). ctx is cancelled
// when the server force-closes the connection (Close, or Shutdown whose
// context ended), at the same moment conn is closed under the service.
type ConnService = proxy.Service[net.Conn, struct{}]

// ErrServerClosed is returned by Serve when it is called after Shutdown or
// Close.
var ErrServerClosed = errors.New("server: closed")

// Server accepts connections and runs a ConnService on each. Its methods
// may be called from any goroutine.
type Server struct {
	log    *slog.Logger
	closed chan struct{} // closed by the first Shutdown or Close

	drainCtx    context.Context // cancelled with closed; see Draining
	drainCancel context.CancelFunc

	mu        sync.Mutex
	gen       *generation // service for new connections
	listeners map[*net.Listener]struct{}
	conns     map[*conn]struct{}
	stopping  bool          // Shutdown or Close was called
	drained   chan struct{} // closed once stopping and conns is empty
	isDrained bool
	limit     *ConnLimit // nil: no limit

	workers workers // the goroutines serving connections
}

// generation is one service set by New or SetService, with the number of
// connections still running on it. Fields after svc are guarded by
// Server.mu.
type generation struct {
	svc     ConnService
	active  int
	retired bool          // replaced by SetService
	idle    chan struct{} // closed once retired and active == 0
}

// conn is one accepted connection in flight.
type conn struct {
	nc  net.Conn
	ctx connCtx // the context Call gets
	gen *generation
	srv *Server
	// refs is 1 while Call runs, plus 1 from Detach until its done is
	// called; the connection is finished when it drops to 0.
	refs     atomic.Int32
	detached atomic.Bool
	// top is the conn the services serve nc through, when a layer wrapped
	// it (see Wrap); nil means nc itself.
	top atomic.Pointer[net.Conn]
}

// served is the conn the services see: nc, or what a layer wrapped it in.
func (c *conn) served() net.Conn {
	if t := c.top.Load(); t != nil {
		return *t
	}
	return c.nc
}

// New returns a Server that runs svc on every accepted connection. svc must
// not be nil. log receives accept errors and recovered panics; nil discards
// them.
func New(svc ConnService, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	drainCtx, drainCancel := context.WithCancel(context.Background())
	s := &Server{
		drainCtx:    drainCtx,
		drainCancel: drainCancel,
		log:         log,
		closed:      make(chan struct{}),
		gen:         &generation{svc: svc, idle: make(chan struct{})},
		listeners:   map[*net.Listener]struct{}{},
		conns:       map[*conn]struct{}{},
		drained:     make(chan struct{}),
	}
	s.workers.serve = s.serveConn
	return s
}

// SetService makes svc the service for connections accepted from now on.
// Connections in flight finish on the service they started with. It returns
// the previous service and a channel closed once no connection runs on it
// any more, after which the caller may close it (proxy.CloseService).
func (s *Server) SetService(svc ConnService) (prev ConnService, prevIdle <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.gen
	s.gen = &generation{svc: svc, idle: make(chan struct{})}
	old.retired = true
	if old.active == 0 {
		close(old.idle)
	}
	return old.svc, old.idle
}

// ActiveConns returns the number of connections whose Call has not returned.
func (s *Server) ActiveConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Drained returns a channel closed once the server is stopping (Shutdown or
// Close) and every Call has returned.
func (s *Server) Drained() <-chan struct{} { return s.drained }

// Serve accepts connections on ln until Shutdown or Close, running the
// current service on each in a goroutine of its own. Several Serve calls on
// different listeners may run at once. Serve closes ln before it returns.
//
// Temporary accept errors (EMFILE, ENFILE, ENOBUFS, ENOMEM, ...) are logged
// and retried after a backoff of 5ms doubling up to 1s, as net/http does.
// Serve returns nil when stopped by Shutdown or Close, ErrServerClosed when
// called after them, and the accept error otherwise.
func (s *Server) Serve(ln net.Listener) error {
	key := &ln
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[key] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, key)
		s.mu.Unlock()
		ln.Close()
	}()

	var delay time.Duration
	failedInRow := 0 // connection failures since the last accepted conn
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isStopping() {
				return nil
			}
			if !isTemporary(err) {
				return fmt.Errorf("server: accepting on %s: %w", ln.Addr(), err)
			}
			// That connection's own failure: the next one may be fine.
			// But a listener that fails every call the same way (one
			// that is not a stream socket answers EOPNOTSUPP) would spin
			// here: after a run of them, back off as below.
			if failedInRow++; connectionFailed(err) && failedInRow < maxFailedInRow {
				continue
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Warn("server: accept failed; retrying", "listener", ln.Addr().String(), "retry_in", delay, "error", err)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-s.closed:
				t.Stop()
				return nil
			}
			continue
		}
		delay, failedInRow = 0, 0
		if !s.limit.acquire() {
			s.limit.refused(s.log, ln.Addr())
			nc.Close()
			continue
		}
		c, ok := s.track(nc)
		if !ok {
			s.limit.release()
			nc.Close()
			return nil
		}
		s.workers.run(c)
	}
}

func (s *Server) isStopping() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

// maxFailedInRow is how many accept errors of failed connections in a row
// are retried at once.
const maxFailedInRow = 64

// connectionFailed reports whether an accept error is the failure of the
// one connection it would have returned: accept(2) on Linux passes on the
// network errors of a connection that failed while pending, and EPERM when
// a firewall refused it. The caller retries at once.
func connectionFailed(err error) bool {
	for _, e := range []syscall.Errno{syscall.ECONNABORTED, syscall.EPROTO, syscall.EPERM, syscall.ENETDOWN, syscall.ENOPROTOOPT, syscall.EHOSTDOWN, syscall.ENONET, syscall.EHOSTUNREACH, syscall.EOPNOTSUPP, syscall.ENETUNREACH, syscall.ETIMEDOUT, syscall.ECONNRESET} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// isTemporary reports whether an accept error may go away by itself: a
// failed connection (see connectionFailed), or running out of file
// descriptors or memory for a moment.
func isTemporary(err error) bool {
	if connectionFailed(err) {
		return true
	}
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.EINTR, syscall.EAGAIN} {
		if errors.Is(err, e) {
			return true
		}
	}
	var te interface{ Temporary() bool }
	return errors.As(err, &te) && te.Temporary()
}

type connKey struct{}

// Draining returns a context that is cancelled when the server serving the
// connection of ctx starts to stop (Shutdown or Close), or nil when ctx does
// not come from a Server. A protocol that keeps connections open between
// requests (HTTP keep-alive) closes its idle ones then, and answers the
// requests in flight with "Connection: close", so a drain does not wait on
// idle clients. AfterDrain hangs a callback on it (context.AfterFunc does
// too, at a higher cost per connection); neither costs a goroutine.
func Draining(ctx context.Context) context.Context {
	if c, ok := ctx.Value(connKey{}).(*conn); ok {
		return c.srv.drainCtx
	}
	return nil
}

// Detach lets the ConnService serving nc end its Call while the connection
// goes on, served from elsewhere: a protocol that parks idle connections
// without a goroutine of their own (HTTP keep-alive, see package httpproxy)
// returns from Call and resumes on a new goroutine when the client sends
// again, so an idle connection holds no goroutine stack.
//
// ctx must be the context Call got and nc the very connection the server
// passed it, or the conn a layer in between stood in for it with Wrap (a
// TLS conn); a layer that changed the connection without saying so keeps
// its connections from being detached. When Call returns after a successful Detach the
// server neither closes nc nor forgets it: the connection stays counted
// (Shutdown waits for it, Close cancels ctx and closes nc as before) until
// the returned done is called, exactly once, when the service is finished
// with nc; the server then closes it. done may be called before Call
// returns. A panic on the goroutines that serve a detached connection is
// not recovered by the server; they must recover themselves.
//
// It reports false, and changes nothing, when ctx is not a Server's, nc is
// not its connection, or the connection was detached already.
func Detach(ctx context.Context, nc net.Conn) (done func(), ok bool) {
	c, _ := ctx.Value(connKey{}).(*conn)
	if c == nil || c.served() != nc || !c.detached.CompareAndSwap(false, true) {
		return nil, false
	}
	c.refs.Add(1)
	var once sync.Once
	return func() { once.Do(func() { c.srv.release(c) }) }, true
}

// Wrap lets a layer between the server and a protocol (TLS) stand its own
// conn w in for the connection nc it was passed: from then on Detach takes
// w instead of nc, and the server closes w (then nc) when the connection
// is finished, after Call returned or, when the protocol detached it,
// after its done; the layer leaves w open. ctx and nc are what the layer's
// Call got. It reports false, and changes nothing, when ctx is not a
// Server's or nc is not the conn its services are served now: the layer
// closes w itself then.
func Wrap(ctx context.Context, nc, w net.Conn) bool {
	c, _ := ctx.Value(connKey{}).(*conn)
	if c == nil || c.served() != nc || c.detached.Load() {
		return false
	}
	c.top.Store(&w)
	return true
}

// track registers a newly accepted connection; it reports false when the
// server started stopping since the accept.
func (s *Server) track(nc net.Conn) (*conn, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return nil, false
	}
	c := &conn{nc: nc, gen: s.gen, srv: s}
	c.refs.Store(1)
	c.ctx.c = c
	s.gen.active++
	s.conns[c] = struct{}{}
	return c, true
}

func (s *Server) serveConn(c *conn) {
	defer s.release(c)
	defer func() {
		if r := recover(); r != nil {
			buf := make([]byte, 64<<10)
			buf = buf[:runtime.Stack(buf, false)]
			s.log.Error("server: panic serving connection", "client", addrString(c.nc.RemoteAddr()), "panic", r, "stack", string(buf))
		}
	}()
	if _, err := c.gen.svc.Call(&c.ctx, c.nc); err != nil {
		// Services log their own failures; this is for debugging only.
		s.log.Debug("server: connection ended with an error", "client", addrString(c.nc.RemoteAddr()), "error", err)
	}
}

// release drops one reference to c and finishes it after the last.
func (s *Server) release(c *conn) {
	if c.refs.Add(-1) == 0 {
		s.finish(c)
	}
}

// finish releases a connection whose Call returned and whose detached part,
// if any, is done.
func (s *Server) finish(c *conn) {
	c.ctx.cancel()
	if t := c.top.Load(); t != nil {
		(*t).Close() // a layer's conn (TLS: close_notify, its SSL freed)
	}
	c.nc.Close()
	s.limit.release()
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	c.gen.active--
	if c.gen.retired && c.gen.active == 0 {
		close(c.gen.idle)
	}
	s.checkDrainedLocked()
}

func (s *Server) checkDrainedLocked() {
	if s.stopping && len(s.conns) == 0 && !s.isDrained {
		s.isDrained = true
		close(s.drained)
	}
}

// stopLocked stops accepting: it closes every listener, so each Serve
// returns nil.
func (s *Server) stopLocked() {
	if !s.stopping {
		s.stopping = true
		close(s.closed)
		s.drainCancel()
		for c := range s.conns {
			c.ctx.drain()
		}
	}
	for ln := range s.listeners {
		(*ln).Close()
	}
	s.workers.stop()
	s.checkDrainedLocked()
}

// forceClose cancels every connection's context and closes the
// connection.
func (s *Server) forceClose() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.ctx.cancel()
		c.nc.Close()
	}
}

// Shutdown stops the server gracefully: it closes the listeners (each Serve
// returns nil), then waits for the connections in flight to end. If ctx
// ends first, it cancels the remaining connections' contexts, closes them
// and returns ctx.Err() without waiting for their Calls to return (see
// Drained for that). A Shutdown whose connections all ended returns nil.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.stopLocked()
	s.mu.Unlock()
	select {
	case <-s.drained:
		return nil
	case <-ctx.Done():
		s.forceClose()
		return ctx.Err()
	}
}

// Close stops the server now: it closes the listeners and every
// connection in flight, cancelling their contexts. It does not wait for
// their Calls to return (see Drained).
func (s *Server) Close() error {
	s.mu.Lock()
	s.stopLocked()
	s.mu.Unlock()
	s.forceClose()
	return nil
}

// addrString is a.String(), or "-" for a missing address (an unnamed unix
// socket peer may have none).
func addrString(a net.Addr) string {
	if a == nil {
		return "-"
	}
	return a.String()
}
