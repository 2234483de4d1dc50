package httpproxy

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
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/monolake-go/monolake/proxy/http1"
	"github.com/monolake-go/monolake/proxy/netio"
	"github.com/monolake-go/monolake/proxy/route"
	"github.com/monolake-go/monolake/proxy/server"
)

// ServerConfig sets the HTTP server's limits; zero fields take defaults.
type ServerConfig struct {
	// Name is the configured server's name, for logs and ConnInfo.
	Name string
	// TLS marks connections as TLS (X-Forwarded-Proto: https).
	TLS bool
	// KeepAliveTimeout closes a connection idle between requests
	// (default 75s, nginx's keepalive_timeout).
	KeepAliveTimeout time.Duration
	// ReadHeaderTimeout bounds reading a request head once it started
	// (default 60s, nginx's client_header_timeout).
	ReadHeaderTimeout time.Duration
	// ReadBodyTimeout bounds each read of a request body (default 60s).
	ReadBodyTimeout time.Duration
	// MessageTimeout bounds the reading of a request's whole body, from
	// its first read (default none; the proxy reads it once the upstream
	// is connected, and only then sends 100 Continue): an upload that
	// trickles in under ReadBodyTimeout still ends.
	MessageTimeout time.Duration
	// WriteTimeout bounds each write to the client (default 60s, nginx's
	// send_timeout): a client that stops reading is dropped instead of
	// holding the connection and its upstream forever.
	WriteTimeout time.Duration
	// MaxHeadSize caps a request head (default 16 KiB; larger: 431).
	MaxHeadSize int
	// MaxBodySize caps a request body (default none, nginx's
	// client_max_body_size): a larger Content-Length is refused with 413
	// before the body is read, and a chunked body that grows past it is
	// cut off there: the upstream's connection is dropped and the client
	// gets 413 if no response has started.
	MaxBodySize int64
	// MaxDiscard is how much of an unread request body the server reads
	// to keep the connection; a larger rest closes it (default 256 KiB).
	MaxDiscard int64
	// UnderscoresInHeaders keeps request fields whose names hold an
	// underscore (nginx's underscores_in_headers). By default they are
	// dropped, as nginx drops them: an upstream that maps names to CGI
	// variables (X_Forwarded_For and X-Forwarded-For both become
	// HTTP_X_FORWARDED_FOR) would take one for a field the proxy sets.
	UnderscoresInHeaders bool
	// ParkAfter parks a keep-alive connection that has waited this long
	// for its next request (default 200ms; negative: never): its buffers
	// go back to pools and the goroutine that served it ends; a goroutine
	// with a small stack waits for the client's next byte and serves on.
	// An idle connection then costs a few KiB instead of tens. Parking
	// needs the connection as a proxy/server.Server accepted it, or as a
	// layer between them stood its own in for it (see server.Detach and
	// server.Wrap: the TLS layer does).
	ParkAfter time.Duration
	// Refused, when set, is told of each request the server answered
	// itself before the stack saw it: a malformed head (400, 414, 431,
	// 501, 505), a head that did not arrive in time (408), a body over
	// MaxBodySize (413). line is the request line as received (what came
	// of it), valid during the call; sent is the error body's length. The
	// access log writes a line for each, as nginx logs them.
	Refused func(c *ConnInfo, line []byte, status int, sent int64)
}

func (c *ServerConfig) defaults() {
	if c.KeepAliveTimeout == 0 {
		c.KeepAliveTimeout = 75 * time.Second
	}
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = 60 * time.Second
	}
	if c.ReadBodyTimeout == 0 {
		c.ReadBodyTimeout = 60 * time.Second
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 60 * time.Second
	}
	if c.MaxHeadSize == 0 {
		c.MaxHeadSize = http1.DefaultMaxHeadSize
	}
	if c.MaxDiscard == 0 {
		c.MaxDiscard = 256 << 10
	}
	if c.ParkAfter == 0 {
		c.ParkAfter = 200 * time.Millisecond
	}
}

// Server is the HTTP/1.1 server: a connection Service (one call per client
// connection) that reads requests, passes each to the request Service and
// writes its response, keeping the connection alive as HTTP allows.
type Server struct {
	cfg ServerConfig
	svc Service
	log *slog.Logger
}

// NewServer returns a Server that answers with svc.
func NewServer(cfg ServerConfig, svc Service, log *slog.Logger) *Server {
	cfg.defaults()
	if log == nil {
		log = slog.Default()
	}
	return &Server{cfg: cfg, svc: svc, log: log}
}

// Close closes the request service if it holds resources (pools).
func (s *Server) Close() error {
	if c, ok := s.svc.(interface{ Close() error }); ok {
		return c.Close()
	}
	return nil
}

// conn is one client connection's reusable state.
type conn struct {
	// The state of requests and responses, with the write and copy
	// buffers: only while the connection is not parked (see park).
	*exchange

	c    net.Conn
	rd   *http1.Reader
	info ConnInfo
	// bodyTimeout, while a request body is read, is renewed before each
	// read of c (see clientReader), up to bodyDeadline: msgTimeout after
	// the first read, when msgTimeout is set.
	bodyTimeout  time.Duration
	msgTimeout   time.Duration
	bodyDeadline time.Time
	// writeTimeout is renewed before each write to c (see clientWriter).
	writeTimeout time.Duration
	// sent counts the bytes written to c past the current response's
	// head (see countBody), for Done.BodySent; negative while the head
	// is going out.
	sent int64
	// idle: waiting for a request with nothing buffered; draining: the
	// server is stopping (set from the drain callback).
	idle, draining atomic.Bool
	// aborted: a forced close began (see watchForced).
	aborted atomic.Bool
	// inCall: the service is at work on a request (SendInterim).
	inCall atomic.Bool
	drain  context.Context // server.Draining, nil outside a Server

	// Set up by Call, undone by end.
	stopForced, stopDrain func() bool
	forced, drained       chan struct{}

	// Parking (see park): idleAt is when the connection last went idle;
	// done ends a detached connection (nil before the first park); noPark
	// is set once parking turned out impossible; one receives the byte
	// that wakes a parked connection.
	idleAt time.Time
	done   func()
	noPark bool
	one    [1]byte
}

// stopping reports whether the server started to drain.
func (cs *conn) stopping() bool {
	return cs.draining.Load() || cs.drain != nil && cs.drain.Err() != nil
}

// clientWriter writes to the client connection with the write timeout
// renewed for each write; the connection's bufio.Writer writes through it.
type clientWriter struct{ cs *conn }

// clientReader is the request reader's source: the client connection, its
// read deadline renewed before each read while a body is read, so that
// ReadBodyTimeout bounds each read of the body, as nginx's
// client_body_timeout, not the whole upload; MessageTimeout bounds that
// (bodyDeadline). Heads are read under the deadline set before them
// (keep-alive, ReadHeaderTimeout).
type clientReader struct{ cs *conn }

func (r clientReader) Read(p []byte) (int, error) {
	if err := r.renew(); err != nil {
		return 0, err
	}
	return r.cs.c.Read(p)
}

// Buffered implements http1.BufferedSource (see streamWriter).
func (r clientReader) Buffered() int { return netio.Buffered(r.cs.c) }

// renew sets the read deadline for the next read of a body.
func (r clientReader) renew() error {
	if d := r.cs.bodyTimeout; d > 0 {
		now := netio.Now()
		dl := now.Add(d)
		if m := r.cs.msgTimeout; m > 0 {
			if r.cs.bodyDeadline.IsZero() {
				r.cs.bodyDeadline = now.Add(m)
			}
			if r.cs.bodyDeadline.Before(dl) {
				dl = r.cs.bodyDeadline
			}
		}
		r.cs.c.SetReadDeadline(dl)
		if r.cs.aborted.Load() { // as in clientWriter
			return os.ErrDeadlineExceeded
		}
	}
	return nil
}

// lentRequestHeads counts the request heads parsed in the buffers the
// connection received them in, for tests.
var lentRequestHeads atomic.Int64

// clientLender is clientReader over a connection that lends the buffers it
// received into (http1.Lender: the io_uring runtime's), so that the request
// reader parses heads where they arrived.
type clientLender struct{ clientReader }

func (r clientLender) ReadBorrow() ([]byte, func(), error) {
	return lendHead(r.cs.c, r.renew)
}

// KeepLent implements http1.Keeper: see keepLent.
func (r clientLender) KeepLent() bool { return keepLent(r.cs.c) }

// lendHead borrows c's next received buffer for a head, after renew. When
// c's driver runs short of receive buffers it lends nothing and the reader
// reads into its own buffer (the driver may then be receiving without its
// ring, and a lent buffer would be one allocated to be copied).
func lendHead(c net.Conn, renew func() error) ([]byte, func(), error) {
	if err := renew(); err != nil {
		return nil, noRelease, err
	}
	if !keepLent(c) {
		return nil, noRelease, nil
	}
	return c.(http1.Lender).ReadBorrow()
}

// keepLent reports whether a reader of c may keep a buffer c lent it for
// the head parsed in it, which lives as long as its exchange (a tunnel's,
// a long response's, hours maybe): not once c's driver has half of its
// receive buffers out, so that kept heads cannot starve the receives.
func keepLent(c net.Conn) bool {
	g, ok := c.(netio.BufferGauge)
	return !ok || !g.BuffersScarce()
}

func noRelease() {}

// source returns the request reader's source for cs.
func (cs *conn) source() io.Reader {
	if _, ok := cs.c.(http1.Lender); ok {
		return clientLender{clientReader{cs}}
	}
	return clientReader{cs}
}

func (w clientWriter) Write(p []byte) (int, error) {
	w.cs.c.SetWriteDeadline(netio.Now().Add(w.cs.writeTimeout))
	// Checked after renewing: a forced close that set its past deadline
	// before the renewal is seen here, one after it fails the Write.
	if w.cs.aborted.Load() {
		return 0, os.ErrDeadlineExceeded
	}
	n, err := w.cs.c.Write(p)
	w.cs.sent += int64(n)
	return n, err
}

// exchange is the part of a connection's state that serves requests.
type exchange struct {
	bw   *bufio.Writer
	head http1.Request
	body http1.Body
	cont continueReader
	req  Request
	resp Response
	cp   http1.Copier
	cw   http1.ChunkedWriter
	sw   streamWriter
	hb   []byte
}

var connPool = sync.Pool{New: func() any { return &conn{rd: http1.NewReader(nil)} }}

// The buffers a connection holds only while it is not parked.
const (
	readBufSize  = 4 << 10  // the request reader's buffer (it grows for larger heads)
	writeBufSize = 32 << 10 // the response writer's
	copyBufSize  = 32 << 10 // body copies that cannot write in place
)

var (
	readBufs  = sync.Pool{New: func() any { return new([readBufSize]byte) }}
	exchanges = sync.Pool{New: func() any {
		return &exchange{bw: bufio.NewWriterSize(nil, writeBufSize), cp: http1.Copier{Buf: make([]byte, copyBufSize)}}
	}}
)

// takeBuffers gives cs an exchange and a reader buffer from the pools; the
// reader's holds the n bytes of first, when n > 0.
func (cs *conn) takeBuffers(first []byte) {
	rb := readBufs.Get().(*[readBufSize]byte)
	cs.rd.UseBuffer(rb[:], copy(rb[:], first))
	cs.exchange = exchanges.Get().(*exchange)
	cs.bw.Reset(clientWriter{cs})
}

// releaseBuffers gives cs's exchange and reader buffer back to the pools.
// The reader must have nothing buffered and the writer nothing unflushed
// (both hold between requests); a reader buffer grown past readBufSize is
// left to the collector.
func (cs *conn) releaseBuffers() {
	if b := cs.rd.ReleaseBuffer(); len(b) == readBufSize {
		readBufs.Put((*[readBufSize]byte)(b))
	}
	x := cs.exchange
	if x == nil {
		return
	}
	cs.exchange = nil
	x.bw.Reset(nil)
	// Nothing may point into the reader buffer just given back.
	x.head = http1.Request{Headers: x.head.Headers[:0]}
	x.req = Request{Add: x.req.Add[:0], Drop: x.req.Drop[:0], scratch: x.req.scratch[:0], Params: x.req.Params[:0]}
	exchanges.Put(x)
}

// Call serves one client connection until it closes, the keep-alive ends,
// or ctx is done. It always closes c, unless it parked the connection (see
// ServerConfig.ParkAfter): then the goroutine that resumes it does.
func (s *Server) Call(ctx context.Context, c net.Conn) (struct{}, error) {
	cs := connPool.Get().(*conn)
	cs.c = c
	cs.rd.Reset(cs.source())
	cs.rd.MaxHeadSize = s.cfg.MaxHeadSize
	cs.writeTimeout = s.cfg.WriteTimeout
	cs.takeBuffers(nil)
	cs.info = ConnInfo{Conn: c, RemoteAddr: c.RemoteAddr(), LocalAddr: c.LocalAddr(), TLS: s.cfg.TLS, ServerName: s.cfg.Name}
	cs.info.RemoteIP = hostOnly(cs.info.RemoteAddr)
	s.watchForced(ctx, cs)
	// On a drain, an idle keep-alive connection is closed at once and a
	// busy one after its response, so a stop does not wait on idle clients.
	cs.stopDrain = func() bool { return true }
	drained := make(chan struct{})
	cs.drained = drained
	cs.drain = server.Draining(ctx)
	if stop, ok := server.AfterDrain(ctx, func() {
		defer close(drained)
		cs.draining.Store(true)
		if cs.idle.Load() {
			c.SetReadDeadline(aLongTimeAgo)
		}
	}); ok {
		cs.stopDrain = stop
	} else {
		close(drained)
	}
	return s.run(ctx, cs)
}

// watchForced arranges for a forced close (ctx cancelled) to wake whatever
// cs waits on and abort its upstream exchange.
func (s *Server) watchForced(ctx context.Context, cs *conn) {
	forced := make(chan struct{})
	cs.forced = forced
	cs.aborted.Store(false)
	cs.stopForced = server.AfterFunc(ctx, func() {
		defer close(forced)
		cs.aborted.Store(true) // before the deadline: see clientWriter
		cs.c.SetDeadline(aLongTimeAgo)
		if u := cs.info.upstream.Load(); u != nil {
			u.abort()
		}
	})
}

// unwatchForced undoes watchForced, waiting for the callback if it runs
// (it reads cs.info: let it finish before cs changes).
func (cs *conn) unwatchForced() {
	if cs.stopForced != nil && !cs.stopForced() {
		<-cs.forced
	}
	cs.stopForced, cs.forced = nil, nil
}

// run serves cs until it ends, then cleans up; or until it parks, and then
// it returns nil at once.
func (s *Server) run(ctx context.Context, cs *conn) (struct{}, error) {
	served := false
	defer func() {
		if !served {
			cs.abandon()
		}
	}()
	err := s.serve(ctx, cs)
	served = true
	if err == errParked {
		return struct{}{}, nil
	}
	s.end(cs)
	return struct{}{}, err
}

// abandon gives back what cs holds of its connection's buffers and of its
// upstream exchange when a panic (a Layer's, say) ends serve: the caller
// that recovers drops cs and closes the connection, but a buffer lent by
// the connection (the kernel's, on io_uring) would never go back to its
// ring, nor the upstream connection to its pool. A panic on the way is
// swallowed: the first one is the one to report.
func (cs *conn) abandon() {
	defer func() { recover() }()
	cs.rd.Reset(nil)
	if cs.exchange != nil {
		cs.resp.release(false)
	}
}

// end closes cs's connection and puts cs back in the pool.
func (s *Server) end(cs *conn) {
	cs.unwatchForced()
	if !cs.stopDrain() {
		<-cs.drained
	}
	cs.idle.Store(false)
	cs.draining.Store(false)
	cs.drain = nil
	cs.c.Close()
	done := cs.done
	cs.c, cs.done, cs.noPark = nil, nil, false
	cs.stopDrain, cs.drained = nil, nil
	cs.rd.Reset(nil)
	cs.releaseBuffers()
	cs.info = ConnInfo{}
	connPool.Put(cs)
	if done != nil {
		done()
	}
}

// errParked ends serve when the connection was parked.
var errParked = errors.New("httpproxy: connection parked")

// park hands the idle connection cs over to a new goroutine that waits for
// the client's next byte, after giving cs's buffers back; the caller's
// goroutine, whose stack grew serving requests, then ends. It reports false
// when cs cannot be parked (see ServerConfig.ParkAfter).
func (s *Server) park(ctx context.Context, cs *conn) bool {
	if cs.rd.Buffered() != 0 || cs.bw.Buffered() != 0 {
		return false
	}
	if cs.done == nil {
		done, ok := server.Detach(ctx, cs.c)
		if !ok {
			cs.noPark = true
			return false
		}
		cs.done = done
	}
	cs.releaseBuffers()
	// A parked connection has no upstream exchange to abort, and a forced
	// close closes it under its wait: it needs no callback meanwhile.
	cs.unwatchForced()
	// On the io_uring runtime the connection waits without a goroutine;
	// elsewhere on one with a small stack. Either way the wait ends at the
	// keep-alive's deadline, set here.
	stop := s.restOfKeepAlive(cs)
	if rn, ok := cs.c.(readNotifier); ok && !stop && ctx.Err() == nil && rn.NotifyReadable(func() { s.resume(ctx, cs) }) {
		return true
	}
	go s.resume(ctx, cs)
	return true
}

// restOfKeepAlive sets cs's read deadline to the end of its keep-alive
// and reports whether the server is stopping. Order matters against the
// drain callback, as in serve: cs is marked idle, the deadline is set, then
// draining is looked at.
func (s *Server) restOfKeepAlive(cs *conn) (stopping bool) {
	cs.c.SetReadDeadline(cs.idleAt.Add(s.cfg.KeepAliveTimeout))
	return cs.stopping()
}

// readNotifier is netio.ReadNotifier.
type readNotifier interface{ NotifyReadable(f func()) bool }

// resume waits, on a goroutine of its own, for the first byte of the next
// request on a parked connection, until the keep-alive ends (park set the
// deadline), then serves on; or ends the connection.
func (s *Server) resume(ctx context.Context, cs *conn) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("httpproxy: panic serving a resumed connection", "client", cs.info.RemoteIP, "panic", r)
			cs.rd.Reset(nil) // gives back a lent buffer
			cs.c.Close()
			if cs.done != nil {
				cs.done()
			}
		}
	}()
	if cs.stopping() || ctx.Err() != nil {
		s.end(cs)
		return
	}
	// The first bytes: in place where the connection lends its buffers,
	// else one byte, so that a buffer is taken only once a request comes.
	if l, ok := cs.c.(http1.Lender); ok && keepLent(cs.c) {
		b, release, _ := l.ReadBorrow()
		if len(b) == 0 {
			release()
			s.end(cs) // EOF, the keep-alive's end, a drain, a reset: nothing to answer
			return
		}
		cs.takeBuffers(nil)
		cs.rd.UseLent(b, release)
	} else {
		n, _ := cs.c.Read(cs.one[:])
		if n == 0 {
			s.end(cs)
			return
		}
		cs.takeBuffers(cs.one[:n])
	}
	s.watchForced(ctx, cs)
	s.run(ctx, cs)
}

var aLongTimeAgo = time.Unix(1, 0)

func hostOnly(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	if a == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

func (s *Server) serve(ctx context.Context, cs *conn) error {
	c := cs.c
	for {
		// Idle between requests: the keep-alive timeout (or first the
		// park timeout); once a request has started, the header timeout.
		park, idle := false, cs.rd.Buffered() == 0
		if idle {
			// Order matters against the drain callback: mark idle and set
			// the deadline, then look at draining. A drain that starts
			// after the look sees idle and cuts the read short.
			cs.idle.Store(true)
			cs.idleAt = netio.Now()
			wait := s.cfg.KeepAliveTimeout
			if park = !cs.noPark && s.cfg.ParkAfter > 0 && s.cfg.ParkAfter < wait; park {
				wait = s.cfg.ParkAfter
			}
			c.SetReadDeadline(cs.idleAt.Add(wait))
			if cs.stopping() {
				return nil
			}
		} else {
			c.SetReadDeadline(netio.Now().Add(s.cfg.ReadHeaderTimeout))
		}
		cs.bodyTimeout, cs.msgTimeout, cs.bodyDeadline = 0, 0, time.Time{}
		err := cs.rd.ReadRequest(&cs.head)
		if park && err != nil && cs.rd.Buffered() == 0 && errors.Is(err, os.ErrDeadlineExceeded) &&
			!cs.stopping() && ctx.Err() == nil {
			if s.park(ctx, cs) {
				return errParked
			}
			// Not parkable: wait out the keep-alive here.
			if s.restOfKeepAlive(cs) {
				return nil
			}
			err = cs.rd.ReadRequest(&cs.head)
		}
		if idle && err != nil && cs.rd.Buffered() > 0 && errors.Is(err, os.ErrDeadlineExceeded) &&
			!cs.stopping() && ctx.Err() == nil {
			// The idle (or park) deadline cut a head that had started
			// meanwhile: from here it has the header timeout, as a head
			// found started when the wait began. What came stays
			// buffered and is parsed again.
			c.SetReadDeadline(netio.Now().Add(s.cfg.ReadHeaderTimeout))
			err = cs.rd.ReadRequest(&cs.head)
		}
		cs.idle.Store(false)
		if err == nil && cs.rd.InPlace() {
			lentRequestHeads.Add(1)
		}
		if err != nil {
			if cs.stopping() && cs.rd.Buffered() == 0 {
				return nil
			}
			return s.readError(cs, err)
		}
		if limit := s.cfg.MaxBodySize; limit > 0 && cs.head.BodyKind == http1.BodyLength && cs.head.ContentLength > limit {
			s.log.Info("request body too large", "client", cs.info.RemoteIP, "content_length", cs.head.ContentLength, "max", limit)
			s.refuse(cs, nil, 413)
			return nil
		}
		keep, err := s.one(ctx, cs)
		if err != nil || !keep {
			return err
		}
	}
}

// readError answers a request that could not be read, once, and ends the
// connection.
func (s *Server) readError(cs *conn, err error) error {
	var pe *http1.ProtocolError
	switch {
	case errors.Is(err, io.EOF):
		return nil // closed between requests
	case errors.As(err, &pe):
		s.log.Info("bad request", "client", cs.info.RemoteIP, "status", pe.Status, "reason", pe.Reason)
		s.refuse(cs, requestLine(cs.rd.Pending()), pe.Status)
		return nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		if cs.rd.Buffered() > 0 {
			s.log.Info("request head timeout", "client", cs.info.RemoteIP)
			s.refuse(cs, requestLine(cs.rd.Pending()), 408)
		}
		return nil
	case errors.Is(err, io.ErrUnexpectedEOF):
		s.log.Info("client closed inside a request head", "client", cs.info.RemoteIP)
		return nil
	}
	return nil // reset by peer and the like: nothing to answer
}

// refuse answers a request the stack will not see with status and closes
// the connection (lingering), after telling ServerConfig.Refused. line is
// the request line as received; nil takes it from the parsed head. The
// reason was logged; the client gets the status's text.
func (s *Server) refuse(cs *conn, line []byte, status int) {
	if s.cfg.Refused != nil && line == nil {
		h := &cs.head
		line = append(cs.req.scratch[:0], h.Method...)
		line = append(append(line, ' '), h.Target...)
		line = append(append(line, ' '), h.Version.String()...)
		cs.req.scratch = line
	}
	sent := s.writeError(cs, status)
	if s.cfg.Refused != nil {
		s.cfg.Refused(&cs.info, line, status, sent)
	}
	lingerClose(cs.c)
}

// requestLine returns the request line at the start of head, as much as
// there is of it, without its line end and cut at maxLoggedLine bytes.
func requestLine(head []byte) []byte {
	if i := bytes.IndexByte(head, '\n'); i >= 0 {
		head = head[:i]
	}
	head = bytes.TrimSuffix(head, []byte("\r"))
	return head[:min(len(head), maxLoggedLine)]
}

// maxLoggedLine caps a refused request's line in the access log.
const maxLoggedLine = 2 << 10

// lingerClose half-closes c and reads what the client still sends, for a
// while, before the caller closes it: closing a socket with unread input
// sends a reset, which can destroy the error response before the client
// reads it (nginx's lingering_close).
//
// The linger is bounded by lingerTimeout: CloseWrite, like shutdown(2),
// queues the FIN behind what was written, and on io_uring it first waits
// for a send still in flight, as long as a client that stopped reading
// makes it; at lingerTimeout c is closed, which ends that wait too. (Under
// TLS, CloseWrite sends close_notify, bounded by its own write deadline.)
func lingerClose(c net.Conn) {
	cw, ok := c.(interface{ CloseWrite() error })
	if !ok {
		return
	}
	end := time.Now().Add(lingerTimeout)
	cut := time.AfterFunc(lingerTimeout, func() { c.Close() })
	defer cut.Stop()
	if cw.CloseWrite() != nil {
		return
	}
	c.SetReadDeadline(end)
	var buf [4 << 10]byte
	for n := 0; n < lingerMax; {
		m, err := c.Read(buf[:])
		n += m
		if err != nil {
			return
		}
	}
}

const (
	lingerTimeout = 2 * time.Second
	lingerMax     = 256 << 10
)

// writeError sends a small error response with Connection: close.
// It returns the bytes of its body the client was sent.
func (s *Server) writeError(cs *conn, status int) int64 {
	cs.writeTimeout = 5 * time.Second // the connection ends after this
	body := strconv.Itoa(status) + " " + http1.StatusText(status) + "\n"
	hb := http1.AppendStatusLine(cs.hb[:0], http1.HTTP11, status, nil)
	hb = http1.AppendHeader(hb, "Content-Type", "text/plain; charset=utf-8")
	hb = http1.AppendContentLength(hb, int64(len(body)))
	hb = http1.AppendHeader(hb, "Connection", "close")
	hb = append(hb, "\r\n"...)
	cs.countBody(len(hb))
	hb = append(hb, body...)
	cs.hb = hb
	cs.bw.Write(hb)
	cs.bw.Flush()
	return cs.bodySent()
}

// countBody starts the count of Done.BodySent before a response head of
// headLen bytes goes into the writer: what the writer holds of earlier
// writes (an interim 100) and the head are not the body.
func (cs *conn) countBody(headLen int) {
	cs.sent = -int64(cs.bw.Buffered()) - int64(headLen)
}

// bodySent is what the client was sent past the head since countBody.
func (cs *conn) bodySent() int64 { return max(cs.sent, 0) }

// one serves the request in cs.head. It returns whether the connection
// may carry another request.
func (s *Server) one(ctx context.Context, cs *conn) (bool, error) {
	h := &cs.head
	req := &cs.req
	req.Head = h
	req.Conn = &cs.info
	req.Route, req.Params = nil, req.Params[:0]
	req.OutHost, req.OutTarget, req.ReplaceHost = nil, nil, false
	req.Drop, req.Add, req.scratch, req.requestID = req.Drop[:0], req.Add[:0], req.scratch[:0], nil
	req.done = req.done[:0]
	req.underscored = !s.cfg.UnderscoresInHeaders
	if req.underscored {
		h.Headers = dropUnderscored(h.Headers)
	}
	req.Path, req.Query = splitTarget(h.Target)
	if len(req.Path) > 0 && req.Path[0] == '/' {
		if err := route.CheckPath(req.Path); err != nil {
			// Refused as a malformed head is: 400, then the end. The
			// head is consumed: the line logged is rebuilt from it, not
			// taken from what follows (the body, or the next request).
			s.log.Info("bad request", "client", cs.info.RemoteIP, "status", 400, "reason", err.Error())
			s.refuse(cs, nil, 400)
			return false, nil
		}
	}
	cs.info.Requests++
	if len(h.Target) > 0 && h.Target[0] != '/' && len(req.Path) > 0 && req.Path[0] == '/' {
		// Absolute form: the upstream gets the origin form.
		req.OutTarget = originForm(h.Target)
	}
	if len(req.Path) > 0 && req.Path[0] == '/' {
		// Routes and layers see the normalized path. The upstream gets
		// the target as sent (as nginx passes it when proxy_pass names no
		// URI, and signed paths keep their bytes) unless dot segments
		// were resolved: upstreams do not all resolve them the same way
		// ("/a//../b"), so it gets the path that was routed.
		if np, changed, dots := route.NormalizePath(req.Path, req.scratch); changed {
			req.scratch = np
			np = np[:len(np):len(np)] // a layer appending to it must not write into the arena
			req.Path = np
			if dots {
				req.OutTarget = req.targetFor(np)
			}
		}
	}
	cs.body.Reset(cs.rd, h.BodyKind, h.ContentLength)
	cs.body.SetLimit(s.cfg.MaxBodySize)
	if h.BodyKind != http1.BodyNone {
		cs.bodyTimeout = s.cfg.ReadBodyTimeout // see clientReader
		cs.msgTimeout = s.cfg.MessageTimeout
	}
	if h.ExpectContinue && h.BodyKind != http1.BodyNone {
		// Answer 100 Continue ourselves when the body is first read, as
		// nginx does; the upstream never sees Expect.
		cs.cont.reset(&cs.body, cs)
		req.Body = &cs.cont
	} else {
		req.Body = &cs.body
	}
	resp := &cs.resp
	resp.reset()
	req.response = resp
	req.cs = cs

	cs.inCall.Store(true)
	r, err := s.svc.Call(ctx, req)
	cs.inCall.Store(false)
	if err == nil && r != nil {
		resp = r
	}
	if err != nil {
		// A layer failed after the one inside it answered: what that
		// answer holds goes back, not reusable (a copy's lease check
		// makes the second of the two releases a no-op).
		if r != nil {
			r.release(false)
		}
		cs.resp.release(false)
		status := statusOf(err)
		if status == StatusClientClosed {
			// Nobody to answer: the connection ends here.
			s.log.Info("client closed the connection before the response", "client", cs.info.RemoteIP, "method", string(h.Method), "target", string(h.Target), "status", status)
			req.finish(Done{Status: status})
			return false, nil
		}
		if ctx.Err() == nil {
			s.log.Warn("request failed", "client", cs.info.RemoteIP, "method", string(h.Method), "target", string(h.Target), "status", status, "err", err)
		}
		resp = &cs.resp
		resp.reset()
		resp.SetText(status, strconv.Itoa(status)+" "+http1.StatusText(status)+"\n")
		resp.Close = !bodyDoneNoWait(cs)
	}
	if h.ExpectContinue && h.BodyKind != http1.BodyNone && !cs.cont.finalHead() {
		// The client waits for a 100 that will not come and may or may
		// not send the body: the connection cannot be reused safely.
		resp.Close = true
	}
	if cs.stopping() {
		resp.Close = true // the server is stopping: this is the last one
	}
	ok, werr := s.writeResponse(cs, resp)
	if len(req.done) > 0 {
		req.finish(Done{Status: cmp.Or(resp.Status, 200), BodySent: cs.bodySent(), Complete: werr == nil && (ok || resp.Tunnel != nil)})
	}
	resp.release(ok)
	if resp != &cs.resp {
		// A layer answered with a Response of its own (or a copy) over
		// the connection's: what that one holds goes back now that the
		// answer was written (not before: the layer's body may read the
		// inner one), holding its balancer slot until then; for a copy,
		// or one a layer's Releaser released, its lease makes this a
		// no-op.
		cs.resp.release(false)
	}
	if werr != nil {
		return false, nil // client gone; nothing else to do
	}
	if resp.Tunnel != nil {
		return false, nil
	}
	keep := h.KeepAlive && !resp.Close && ok
	if !keep && !bodyDoneNoWait(cs) {
		// The client may still be sending the body: read some of it
		// before closing, so the response is not lost to a reset.
		lingerClose(cs.c)
		return false, nil
	}
	if keep && !bodyDone(cs) {
		// Read what the service left of the body, within reason.
		cs.bodyTimeout = s.cfg.ReadBodyTimeout
		n, err := io.CopyN(io.Discard, &cs.body, s.cfg.MaxDiscard+1)
		if keep = err == io.EOF && n <= s.cfg.MaxDiscard; !keep {
			// Too much, too slow or past the message timeout: the
			// client may still be sending; as above.
			lingerClose(cs.c)
		}
	}
	return keep, nil
}

// bodyDone reports whether the request body was read to its end. It
// reads only when the client can be sending: not while it waits for a
// "100 Continue" that was not sent (a chunked body's next size line would
// wait for the read timeout).
func bodyDone(cs *conn) bool {
	if cs.head.BodyKind == http1.BodyNone {
		return true
	}
	if cs.head.ExpectContinue && !cs.cont.wasSent() {
		return false
	}
	var b [1]byte
	n, err := cs.body.Read(b[:0])
	return n == 0 && err == io.EOF
}

// bodyDoneNoWait is bodyDone without waiting for the client: a body whose
// end has not been received counts as not done. An error response must not
// wait for a client that has not started its body (a chunked one whose
// first size line is to come, say).
func bodyDoneNoWait(cs *conn) bool {
	switch {
	case cs.head.BodyKind == http1.BodyNone || cs.body.Ended():
		return true
	case cs.head.ExpectContinue && !cs.cont.wasSent(), !cs.body.Ready():
		return false
	}
	return bodyDone(cs)
}

// splitTarget splits a request-target into path and query. An
// absolute-form target ("http://host/path?q") yields its path and query
// (a reverse proxy routes by them, and Host already holds the authority).
func splitTarget(t []byte) (path, query []byte) {
	t = originForm(t)
	for i, c := range t {
		if c == '?' {
			return t[:i:i], t[i+1:]
		}
	}
	return t, nil
}

// dropUnderscored removes the fields whose names hold an underscore, in
// place.
func dropUnderscored(hs http1.Headers) http1.Headers {
	i := 0
	for i < len(hs) && bytes.IndexByte(hs[i].Name, '_') < 0 {
		i++
	}
	if i == len(hs) {
		return hs // the common case: nothing moves
	}
	out := hs[:i]
	for _, f := range hs[i+1:] {
		if bytes.IndexByte(f.Name, '_') < 0 {
			out = append(out, f)
		}
	}
	return out
}

var continueLine = []byte("HTTP/1.1 100 Continue\r\n\r\n")

// continueReader sends "100 Continue" before the first body read, unless
// the final response's head went out first (a service that answers
// before it reads, in a goroutine of its own: a 1xx after it would land
// in the response's body).
type continueReader struct {
	body *http1.Body
	cs   *conn

	mu    sync.Mutex // the body's reader and the server's goroutine
	sent  bool       // the 100 went out
	final bool       // the final head goes out: no 100 now
}

// reset readies r for a request on cs.
func (r *continueReader) reset(body *http1.Body, cs *conn) {
	r.mu.Lock()
	r.body, r.cs, r.sent, r.final = body, cs, false, false
	r.mu.Unlock()
}

func (r *continueReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	if !r.sent && !r.final {
		r.sent = true
		if _, err := (clientWriter{r.cs}).Write(continueLine); err != nil {
			r.mu.Unlock()
			return 0, err
		}
	}
	r.mu.Unlock()
	return r.body.Read(p)
}

// sendInterim writes an informational response head to the client (see
// Request.SendInterim), under the lock the 100 Continue is written under.
func (cs *conn) sendInterim(status int, reason []byte, hs http1.Headers) error {
	if status <= 101 || status >= 200 || cs.head.Version != http1.HTTP11 || !cs.inCall.Load() {
		return nil
	}
	hop := hs.HopByHop()
	b := http1.AppendStatusLine(nil, http1.HTTP11, status, reason)
	for _, f := range hs {
		if !hop.Has(f.Name) && !equalFold(f.Name, "Content-Length") && !equalFold(f.Name, "Transfer-Encoding") {
			b = http1.AppendHeader(b, f.Name, f.Value)
		}
	}
	b = append(b, "\r\n"...)
	cs.cont.mu.Lock()
	defer cs.cont.mu.Unlock()
	_, err := clientWriter{cs}.Write(b)
	return err
}

// Trailers are the body's trailer fields, once it was read to its end.
func (r *continueReader) Trailers() http1.Headers { return r.body.Trailers() }

// finalHead marks the final response's head as going out, and reports
// whether a 100 was sent before it.
func (r *continueReader) finalHead() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.final = true
	return r.sent
}

// wasSent reports whether the 100 was sent.
func (r *continueReader) wasSent() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sent
}

// originForm returns the path and query of an absolute-form target
// ("http://host/p?q" gives "/p?q"; an empty path is "/", RFC 9110 4.2.3:
// "http://host?q" gives "/?q"), and t itself for other forms.
func originForm(t []byte) []byte {
	if len(t) == 0 || t[0] == '/' {
		return t
	}
	i := bytes.Index(t, []byte("://"))
	if i < 0 {
		return t // authority or asterisk form
	}
	rest := t[i+3:]
	for j, c := range rest {
		if c == '/' {
			return rest[j:]
		}
		if c == '?' {
			return append([]byte{'/'}, rest[j:]...)
		}
	}
	return []byte{'/'}
}
