package httpproxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/monolake-go/monolake/proxy/balance"
	"github.com/monolake-go/monolake/proxy/http1"
	"github.com/monolake-go/monolake/proxy/netio"
	"github.com/monolake-go/monolake/proxy/upstream"
)

// target is one upstream of a route.
type target struct {
	key  upstream.Key
	host []byte // Host to send when the client's is not kept: the URI's authority
	name string // for logs
	// tls is set for an https upstream; serverName is then the name sent
	// as SNI and verified (the URI's host unless configured).
	tls        *upstreamTLS
	serverName string
	health     balance.Health
}

func (t *target) down() bool { return t.health.Down() }

// Upstream is the terminal Service: it forwards the request to one of the
// route's upstreams over a pooled keep-alive connection and returns the
// response streaming from it. An https upstream's connections are TLS,
// handshaken when dialled within the connect timeout and pooled under a
// key of their own (upstreamtls.go).
type Upstream struct {
	pool        *upstream.Pool
	readTimeout time.Duration
	log         *slog.Logger
}

// UpstreamConfig sets an Upstream's timeouts and pool; zero means default.
type UpstreamConfig struct {
	ConnectTimeout time.Duration // default 5s
	ReadTimeout    time.Duration // per read of the response; default 60s
	MaxIdlePerHost int           // default 256
	IdleTimeout    time.Duration // pooled connection idle time; default 60s
	Dial           func(ctx context.Context, network, addr string) (net.Conn, error)
}

// NewUpstream returns the forwarding Service with its own pool.
func NewUpstream(cfg UpstreamConfig, log *slog.Logger) *Upstream {
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = 60 * time.Second
	}
	return &Upstream{
		pool: upstream.NewPool(upstream.PoolConfig{
			MaxIdlePerHost: cfg.MaxIdlePerHost, IdleTimeout: cfg.IdleTimeout,
			ConnectTimeout: cfg.ConnectTimeout, Dial: wrapDial(cfg.Dial),
		}),
		readTimeout: cfg.ReadTimeout,
		log:         log,
	}
}

// Close closes the pool's idle connections.
func (u *Upstream) Close() error { return u.pool.Close() }

// Pool returns the upstream connection pool (for tests and metrics).
func (u *Upstream) Pool() *upstream.Pool { return u.pool }

// upConn is a pooled upstream connection with its reader and writer.
type upConn struct {
	net.Conn
	rd   *http1.Reader
	bw   *bufio.Writer
	head http1.Response
	body http1.Body
	cp   http1.Copier
	sw   streamWriter
	// watch aborts the exchange when the client goes away; bodyWatch
	// stops the send of a body the upstream answered early.
	watch     *clientWatch
	bodyWatch bodyWatch
	sent      atomic.Int64 // bytes written to the connection
	// timeout bounds each read of the exchange in flight (0: none, a
	// tunnel); aborted fails its reads at once (see abort).
	timeout time.Duration
	aborted atomic.Bool

	// lease is odd while the connection is lent to a request, even while
	// it is idle; each lease and each release adds one (see releaseLease).
	lease atomic.Uint64
	// for the request in flight
	u    *Upstream
	key  upstream.Key
	done func()
	info *ConnInfo
	// sending is the request whose body is being sent (for cp's
	// SkipTrailer, setByProxy).
	sending *Request
}

// setByProxy reports whether the request being sent has the field name set
// by the proxy's layers (dropped from the client's head, or added): a
// client's trailer must not add its own value (a second X-Forwarded-For).
// Names the server drops from heads (with "_", unless
// UnderscoresInHeaders) are dropped from trailers too: an upstream that
// merges trailers into its CGI-style variables would read X_Forwarded_For
// as X-Forwarded-For.
func (c *upConn) setByProxy(name []byte) bool {
	r := c.sending
	if r == nil {
		return false
	}
	if dropped(r.Drop, name) || r.underscored && bytes.IndexByte(name, '_') >= 0 {
		return true
	}
	for _, f := range r.Add {
		if bytes.EqualFold(f.Name, name) {
			return true
		}
	}
	return false
}

// socket is the connection under TLS, if any: what the pool looks at.
func (c *upConn) socket() net.Conn {
	if nc, ok := c.Conn.(interface{ NetConn() net.Conn }); ok {
		return nc.NetConn()
	}
	return c.Conn
}

// SyscallConn lets the pool peek at an idle connection: at the socket
// itself, under TLS too (an idle TLS connection has nothing to read
// either; a close_notify or any record counts as dead, as data would).
func (c *upConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.socket().(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}

// Stale reports whether a pooled connection went bad while it sat idle
// (the upstream ended it or sent bytes unasked), for connections of a
// driver the pool cannot peek at (see SyscallConn): the io_uring driver's
// know it without a syscall, under TLS too. False when it cannot tell.
func (c *upConn) Stale() bool {
	s, ok := c.socket().(interface{ Stale() bool })
	return ok && s.Stale()
}

// CloseWrite passes a half-close on (tunnels).
func (c *upConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

func wrapDial(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := dial
	if d == nil {
		var nd net.Dialer
		d = nd.DialContext
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		tls := isTLSNetwork(network)
		if tls {
			network = "tcp"
		}
		c, err := d(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if tls {
			if c, err = tlsDial(ctx, c, addr); err != nil {
				return nil, err
			}
		}
		uc := &upConn{Conn: c}
		uc.rd = http1.NewReader(upReader{uc})
		uc.bw = bufio.NewWriterSize(upWriter{uc}, 8<<10)
		uc.cp.Buf = make([]byte, 16<<10)
		uc.cp.SkipTrailer = uc.setByProxy
		uc.watch = newClientWatch(uc)
		uc.bodyWatch.up = uc
		return uc, nil
	}
}

// Release implements Releaser: the connection goes back to the pool when
// the exchange ended cleanly, and is closed otherwise.
//
// It acts once per lease: a second call while the connection is idle does
// nothing. The server releases through releaseLease, which also leaves
// alone a connection another request has taken from the pool since.
func (c *upConn) Release(ok bool) {
	if l := c.lease.Load(); l%2 == 1 && c.lease.CompareAndSwap(l, l+1) {
		c.release(ok)
	}
}

// releaseLease is Release for the lease a Response was given: a late or
// second release (a copied Response) finds the connection idle or on
// another lease, and does nothing.
func (c *upConn) releaseLease(lease uint64, ok bool) {
	if c.lease.CompareAndSwap(lease, lease+1) {
		c.release(ok)
	}
}

// release ends the lease its caller won.
func (c *upConn) release(ok bool) {
	if c.info == nil {
		return // the exchange failed and Call closed it
	}
	c.info.upstream.CompareAndSwap(c, nil)
	c.info = nil
	if c.done != nil {
		c.done()
		c.done = nil
	}
	// Bytes after the response (more than its Content-Length, a body
	// after a 204 or a HEAD response) would be read as the next request's
	// response, maybe another client's: such a connection is closed,
	// whether the bytes are in the reader or, past a body read from the
	// connection up to its length, still in the connection (its driver's
	// queue, or the socket's: Ready asks only when the last read filled
	// all the room it was given, one ioctl on epoll).
	reusable := ok && c.head.KeepAlive && c.bodyWatch.ahead == nil
	extra := reusable && c.rd.Ready() > 0
	if extra && c.u.log != nil {
		c.u.log.Warn("upstream sent bytes past its response; connection closed", "upstream", c.key.String())
	}
	if reusable && !extra && !c.tlsHolds() {
		c.SetDeadline(time.Time{})
		if c.head.BodyKind == http1.BodyNone && c.head.ContentLength != 0 {
			// No body by rule (HEAD, 204, 304) but a length or a
			// coding declared, or none: a body sent anyway may still be
			// on its way, later than the window Get does not peek in
			// (on epoll; see upstream.Pool.Get).
			c.u.pool.PutVerify(c.key, c)
			return
		}
		c.u.pool.Put(c.key, c)
		return
	}
	c.Close()
}

// tlsHolds reports whether the TLS layer of an HTTPS upstream connection
// holds bytes past the response. crypto/tls takes what the socket has into
// its own buffer and returns one record per Read: a record sent after the
// response is then neither in the HTTP reader's buffer nor in the socket,
// where the pool peeks. A Read with its deadline in the past returns such
// bytes at once, and otherwise times out, which leaves a TLS conn usable.
// The openssl backend tells what it holds (Buffered).
func (c *upConn) tlsHolds() bool {
	if c.socket() == c.Conn {
		return false // no TLS layer
	}
	if b, ok := c.Conn.(interface{ Buffered() int }); ok {
		return b.Buffered() > 0
	}
	c.Conn.SetReadDeadline(aLongTimeAgo)
	var one [1]byte
	n, err := c.Conn.Read(one[:])
	return n > 0 || !errors.Is(err, os.ErrDeadlineExceeded)
}

// upReader reads an upstream connection with the read timeout renewed on
// each read, so the timeout bounds the wait for each part of the response
// (as nginx's proxy_read_timeout), not the whole response.
type upReader struct{ uc *upConn }

func (r upReader) Read(p []byte) (int, error) {
	if err := r.renew(); err != nil {
		return 0, err
	}
	if ra := r.uc.bodyWatch.ahead; ra != nil {
		// What a read-ahead read while the body went out comes first.
		n, err, done := ra.read(p)
		if done {
			r.uc.bodyWatch.ahead = nil
		}
		if n > 0 || err != nil {
			return n, err
		}
	}
	return r.uc.Conn.Read(p)
}

// Buffered implements http1.BufferedSource (see streamWriter).
func (r upReader) Buffered() int {
	n := netio.Buffered(r.uc.Conn)
	if ra := r.uc.bodyWatch.ahead; ra != nil {
		select {
		case <-ra.done:
			n += len(ra.buf)
		default:
		}
	}
	return n
}

func (r upReader) renew() error {
	uc := r.uc
	if uc.timeout > 0 {
		uc.Conn.SetReadDeadline(netio.Now().Add(uc.timeout))
	}
	// Checked after renewing the deadline: an abort that set its past
	// deadline before the renewal is seen here, one after it wakes Read.
	if uc.aborted.Load() {
		return os.ErrDeadlineExceeded
	}
	return nil
}

// upWriter writes to an upstream connection with the same timeout renewed
// for each write, so an upstream that stops reading a request body fails
// the exchange (504) instead of blocking it forever.
type upWriter struct{ uc *upConn }

func (w upWriter) Write(p []byte) (int, error) {
	uc := w.uc
	if uc.timeout > 0 {
		uc.Conn.SetWriteDeadline(netio.Now().Add(uc.timeout))
	}
	if uc.aborted.Load() {
		return 0, os.ErrDeadlineExceeded
	}
	if uc.bodyWatch.answered.Load() {
		return 0, errAnsweredEarly
	}
	n, err := uc.Conn.Write(p)
	uc.sent.Add(int64(n))
	if err != nil && uc.bodyWatch.answered.Load() {
		err = errAnsweredEarly
	}
	return n, err
}

// abort fails the exchange in flight: its blocked or next read returns
// os.ErrDeadlineExceeded. Any goroutine may call it.
func (c *upConn) abort() {
	c.aborted.Store(true)
	c.Conn.SetDeadline(aLongTimeAgo)
}

// Close closes the connection and stops its client watch.
func (c *upConn) Close() error {
	c.watch.stop()
	c.bodyWatch.stop()
	return c.Conn.Close()
}

// headerRoom is the spare capacity kept after an upstream response's
// fields for layers to append to.
const headerRoom = 4

var errNoRoute = errors.New("httpproxy: no route chosen (is the route layer in the stack?)")

// Call forwards req. It retries once on a fresh connection when a reused
// one turns out to be closed before any byte of the response arrived and
// the request body was not consumed. When connecting to the upstream it
// picked fails (nothing was sent), it tries another one of the route's, as
// nginx's proxy_next_upstream error does; so does a request without a body
// and of an idempotent method that got no response head (a reset, a
// timeout), as proxy_next_upstream error timeout does. Failures count
// toward the route's health check, which leaves an upstream marked down
// out of the choice while others are up.
func (u *Upstream) Call(ctx context.Context, req *Request) (*Response, error) {
	rt := req.Route
	if rt == nil {
		return nil, errNoRoute
	}
	// Upstreams marked down are left out while others are up; when all
	// are down, the balancer's pick is tried (and no other after it).
	t, done := balance.PickAvoiding(rt.bal, (*target).down)
	// A request may go out again on a fresh connection only if it is
	// idempotent (RFC 9110 9.2.2: the upstream may have acted on it
	// before closing) and has no body (it was consumed).
	canRetry := req.Head.BodyKind == http1.BodyNone && idempotent(req.Head.Method)
	fresh := false
	var tried []*target   // upstreams that failed
	next := func() bool { // to the route's next upstream, if one is left
		tried = append(tried, t)
		nt, ndone, ok := balance.PickExceptFunc(rt.bal, tried, (*target).down)
		if ok {
			done()
			t, done, fresh = nt, ndone, false
		}
		return ok
	}
	for {
		var c net.Conn
		var reused bool
		var err error
		dctx := withDialTarget(ctx, t)
		switch {
		case fresh:
			// The retry: another pooled connection may be as stale as
			// the one that failed (the upstream restarted, say).
			c, err = u.pool.Dial(dctx, t.key)
		case canRetry:
			c, reused, err = u.pool.Get(dctx, t.key)
		default:
			c, reused, err = u.pool.GetVerified(dctx, t.key) // peek: it cannot be retried once sent
		}
		if err != nil {
			if ctx.Err() == nil {
				// Nothing was sent: try the route's next upstream, until
				// every one was tried.
				u.failed(rt, t, err)
				if next() {
					continue
				}
			}
			done()
			return nil, dialStatus(err)
		}
		uc := c.(*upConn)
		uc.u, uc.key, uc.done, uc.info = u, t.key, done, req.Conn
		lease := uc.lease.Add(1) // lent: odd; the response carries it
		uc.timeout = u.readTimeout
		uc.aborted.Store(false)
		req.Conn.upstream.Store(uc)
		resp, closed, err := u.exchange(ctx, uc, req, t)
		if err == nil {
			rt.health.Succeeded(&t.health)
			resp.lease = lease
			return resp, nil
		}
		uc.lease.Add(1) // the lease ends here: closed, never pooled
		req.Conn.upstream.Store(nil)
		uc.done, uc.info = nil, nil
		uc.Close()
		if ctx.Err() == nil && upstreamFault(err) {
			if closed && reused && !fresh {
				// A pooled connection the upstream had closed: not its
				// fault. Again on a new one, if the request may go again.
				if canRetry {
					fresh = true
					continue
				}
				done()
				return nil, err
			}
			u.failed(rt, t, err)
			if canRetry && (closed || isStatus(err, 504)) && next() {
				continue
			}
		}
		done()
		return nil, err
	}
}

// upstreamFault tells whether an exchange's error is the upstream's: a
// 502 or 504, not the client's body or departure.
func upstreamFault(err error) bool {
	return isStatus(err, 502) || isStatus(err, 504)
}

func isStatus(err error, status int) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Status == status
}

// failed counts a failure of t toward rt's health check, with a log line
// when it marks t down.
func (u *Upstream) failed(rt *Route, t *target, err error) {
	if rt.health.Failed(&t.health) && u.log != nil {
		u.log.Warn("upstream marked down", "route", rt.Config.Path, "upstream", t.name,
			"for", rt.health.FailTimeout, "failures", rt.health.MaxFails, "error", err)
	}
}

// idempotent reports whether a request method is idempotent (RFC 9110
// 9.2.2).
func idempotent(m []byte) bool {
	switch string(m) {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

func dialStatus(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &StatusError{Status: 504, Err: err}
	}
	return &StatusError{Status: 502, Err: err}
}

// earlyResponseWait is how long a response that came before the request
// body was sent whole may take to be read, once the body's write failed.
const earlyResponseWait = 250 * time.Millisecond

// maxInterim bounds the 1xx responses before the final one.
const maxInterim = 16

// exchange writes the request and reads the response head. closed says
// the exchange failed, before any byte of a response, on a connection the
// upstream had closed or reset: a stale pooled one, or an upstream that
// went away. A request without a body could not have been acted on then.
func (u *Upstream) exchange(ctx context.Context, uc *upConn, req *Request, t *target) (*Response, bool, error) {
	h := req.Head
	bw := uc.bw
	if h.BodyKind != http1.BodyNone {
		// A body goes through a writer as large as the client's, so that
		// one that arrived whole leaves with the head in one send.
		bw = bodyWriters.Get().(*bufio.Writer)
		bw.Reset(upWriter{uc})
		defer func() {
			bw.Reset(nil)
			bodyWriters.Put(bw)
		}()
	}
	hb := writeRequestHead(bw.AvailableBuffer(), req, t)
	if _, err := bw.Write(hb); err != nil {
		return nil, true, &StatusError{Status: 502, Err: err} // nothing went out
	}
	var early error // the body's write failed: a response may have come first
	if h.BodyKind != http1.BodyNone {
		var err error
		uc.bodyWatch.arm()
		if b, ok := req.Body.(*http1.Body); ok {
			uc.sw = streamWriter{bw: bw, body: b, remain: -1}
			uc.sending = req
			_, err = uc.cp.Copy(&uc.sw, b, h.BodyKind)
			uc.sending = nil
		} else {
			uc.sending = req
			err = copyBody(uc, bw, req.Body, h.BodyKind)
			uc.sending = nil
		}
		if err == nil {
			// The watch stays on for the body's last bytes.
			if ferr := bw.Flush(); ferr != nil {
				err = &http1.WriteError{Err: ferr}
			}
		}
		uc.bodyWatch.disarm()
		if err != nil {
			var we *http1.WriteError
			switch {
			case errors.As(err, &we):
				// The upstream stopped taking the body. It may have
				// answered early (a 413, a 401) and closed, or left the
				// body unread (bodyWatch stopped the send): its answer,
				// if one is at hand within earlyResponseWait, is the
				// client's (as net/http's transport gives it), on a
				// connection not reused.
				early = upWriteError(err)
				if uc.aborted.Load() || ctx.Err() != nil {
					return nil, false, early
				}
			case errors.Is(err, http1.ErrBodyTooLarge):
				return nil, false, &StatusError{Status: 413, Err: err}
			case errors.Is(err, os.ErrDeadlineExceeded):
				// server_read_body_timeout_sec or
				// server_message_timeout_sec ran out.
				return nil, false, &StatusError{Status: 408, Err: err}
			default:
				// The client's body broke off: nobody to answer.
				return nil, false, &StatusError{Status: 400, Err: err}
			}
		}
	}
	if early != nil {
		timeout := uc.timeout
		uc.timeout = earlyResponseWait
		defer func() { uc.timeout = timeout }()
	} else if err := bw.Flush(); err != nil {
		return nil, closedByPeer(err), upWriteError(err)
	}
	uc.watch.arm(req.Conn.Conn)
	interim := 0
	for {
		err := uc.rd.ReadResponse(&uc.head, h.Method)
		if err != nil {
			if uc.watch.disarm() {
				return nil, false, &StatusError{Status: StatusClientClosed, Err: errClientGone}
			}
			if early != nil {
				return nil, closedByPeer(early), early
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if ctx.Err() != nil {
					return nil, false, ctx.Err()
				}
				return nil, false, &StatusError{Status: 504, Err: errors.New("upstream read timeout")}
			}
			// After an interim response the upstream had the request:
			// not a stale connection, and not to be sent again.
			return nil, closedByPeer(err) && interim == 0, &StatusError{Status: 502, Err: err}
		}
		if uc.head.Status >= 100 && uc.head.Status < 200 && uc.head.Status != 101 {
			// Interim responses: 100 was answered by us; 103 and the
			// like go on to the client, but not without end (each
			// renews the read timeout).
			if interim++; interim > maxInterim {
				uc.watch.disarm()
				return nil, false, &StatusError{Status: 502, Err: fmt.Errorf("upstream sent over %d interim responses", maxInterim)}
			}
			req.SendInterim(uc.head.Status, uc.head.Reason, uc.head.Headers)
			continue
		}
		break
	}
	if uc.watch.disarm() {
		return nil, false, &StatusError{Status: StatusClientClosed, Err: errClientGone}
	}
	if early != nil {
		uc.head.KeepAlive = false // the body's rest may follow the response
		if uc.head.Status == 101 {
			return nil, false, early
		}
	}
	if uc.head.Status == 101 && !h.Upgrade {
		// Switching protocols is the client's request to make: a tunnel
		// it did not ask for would bypass every layer.
		return nil, false, &StatusError{Status: 502, Err: errors.New("upstream switched protocols without an upgrade request")}
	}
	r := &uc.head
	if cap(r.Headers)-len(r.Headers) < headerRoom {
		// Leave room for the fields layers add to the response
		// (X-Request-Id, Content-Encoding, Vary, a user's), so appending
		// them does not allocate per request; the parser keeps the
		// capacity for the connection's next responses.
		hs := make(http1.Headers, len(r.Headers), len(r.Headers)+2*headerRoom)
		copy(hs, r.Headers)
		r.Headers = hs
	}
	resp := req.resp()
	resp.Status, resp.Reason, resp.Version = r.Status, r.Reason, r.Version
	resp.Headers = r.Headers
	// An early response leaves the client's body unread: its connection
	// ends after it, and says so.
	resp.Close = early != nil
	resp.Releaser = uc // and its lease, set by Call
	if r.Status == 101 {
		resp.Tunnel = uc
		resp.Buffered = uc.rd
		resp.BodyKind = http1.BodyNone
		return resp, false, nil
	}
	uc.body.Reset(uc.rd, r.BodyKind, r.ContentLength)
	resp.Body = &uc.body
	resp.bodySrc = uc.rd
	resp.BodyKind = r.BodyKind
	resp.ContentLength = r.ContentLength
	return resp, false, nil
}

// closedByPeer tells whether err says the upstream closed or reset the
// connection.
func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// upWriteError is the error for a failed write of the request upstream:
// 504 when the upstream stopped reading for the timeout, 502 otherwise.
func upWriteError(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return &StatusError{Status: 504, Err: fmt.Errorf("upstream write timeout: %w", err)}
	}
	return &StatusError{Status: 502, Err: err}
}

// bodyWriters are the writers of requests with a body (an upstream conn's
// own writer is for heads): a conn holds one only while it sends a body.
var bodyWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, writeBufSize) }}

// copyBody sends a body that is not the client's *http1.Body through bw:
// the client's behind a 100 Continue, or a layer's. A chunked one ends with
// the body's trailers, if it has any (a Trailers method), but those the
// proxy sets.
func copyBody(uc *upConn, bw *bufio.Writer, body io.Reader, kind http1.BodyKind) error {
	if kind == http1.BodyChunked {
		var cw http1.ChunkedWriter
		cw.Reset(bw)
		if _, err := io.CopyBuffer(tagWriter{&cw}, body, uc.cp.Buf); err != nil {
			return err
		}
		var trailers http1.Headers
		if t, ok := body.(interface{ Trailers() http1.Headers }); ok {
			trailers = t.Trailers()
		}
		return cw.FinishSkipping(trailers, uc.setByProxy)
	}
	_, err := io.CopyBuffer(tagWriter{bw}, body, uc.cp.Buf)
	return err
}

// writeRequestHead builds the upstream request head into dst.
func writeRequestHead(dst []byte, req *Request, t *target) []byte {
	h := req.Head
	target := req.OutTarget
	if target == nil {
		target = h.Target
	}
	dst = http1.AppendRequestLine(dst, h.Method, target, http1.HTTP11)
	host := req.OutHost
	if host == nil {
		host = h.Host
		if host == nil || req.ReplaceHost {
			host = t.host
		}
	}
	dst = http1.AppendHeader(dst, "Host", host)
	hop := h.Headers.HopByHop()
	for _, f := range h.Headers {
		if hop.Has(f.Name) || equalFold(f.Name, "Host") || equalFold(f.Name, "Expect") || equalFold(f.Name, "Content-Length") || dropped(req.Drop, f.Name) {
			continue
		}
		dst = http1.AppendHeader(dst, f.Name, f.Value)
	}
	for _, f := range req.Add {
		dst = http1.AppendHeader(dst, f.Name, f.Value)
	}
	// The framing is ours, never the client's fields: a Connection field
	// listing Content-Length must not take the length off a body we send
	// (the upstream would read the body as the next request), and a
	// repeated one ("5, 5") goes out once.
	switch {
	case h.BodyKind == http1.BodyChunked:
		dst = append(dst, "Transfer-Encoding: chunked\r\n"...)
	case h.BodyKind == http1.BodyLength:
		dst = http1.AppendContentLength(dst, h.ContentLength)
	case h.ContentLength == 0:
		dst = append(dst, "Content-Length: 0\r\n"...) // a POST's empty body, say
	}
	if h.Upgrade {
		dst = http1.AppendHeader(dst, "Connection", "Upgrade")
		dst = http1.AppendHeader(dst, "Upgrade", h.Headers.Get("Upgrade"))
	}
	return append(dst, "\r\n"...)
}

func dropped(names []string, name []byte) bool {
	for _, n := range names {
		if equalFold(name, n) {
			return true
		}
	}
	return false
}

// Response returns the connection's reusable Response, reset, for a
// Service that answers a request itself (see Response.SetText). It is
// valid until the connection's next request; calling it again resets it.
func (r *Request) Response() *Response { return r.resp() }

// resp returns the connection's reusable Response, reset.
func (r *Request) resp() *Response {
	resp := r.response
	resp.reset()
	return resp
}

var _ Releaser = (*upConn)(nil)
