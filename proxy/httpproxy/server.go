package httpproxy

import (
	"bufio"
	"bytes"
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
	// WriteTimeout bounds each write to the client (default 60s, nginx's
	// send_timeout): a client that stops reading is dropped instead of
	// holding the connection and its upstream forever.
	WriteTimeout time.Duration
	// MaxHeadSize caps a request head (default 16 KiB; larger: 431).
	MaxHeadSize int
	// MaxDiscard is how much of an unread request body the server reads
	// to keep the connection; a larger rest closes it (default 256 KiB).
	MaxDiscard int64
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
	c    net.Conn
	rd   *http1.Reader
	bw   *bufio.Writer
	head http1.Request
	body http1.Body
	cont continueReader
	req  Request
	resp Response
	info ConnInfo
	cp   http1.Copier
	cw   http1.ChunkedWriter
	sw   streamWriter
	hb   []byte
	// writeTimeout is renewed before each write to c (see clientWriter).
	writeTimeout time.Duration
	// idle: waiting for a request with nothing buffered; draining: the
	// server is stopping (set from the drain callback).
	idle, draining atomic.Bool
	drain          context.Context // server.Draining, nil outside a Server
}

// stopping reports whether the server started to drain.
func (cs *conn) stopping() bool {
	return cs.draining.Load() || cs.drain != nil && cs.drain.Err() != nil
}

// clientWriter writes to the client connection with the write timeout
// renewed for each write; the connection's bufio.Writer writes through it.
type clientWriter struct{ cs *conn }

func (w clientWriter) Write(p []byte) (int, error) {
	w.cs.c.SetWriteDeadline(time.Now().Add(w.cs.writeTimeout))
	return w.cs.c.Write(p)
}

var connPool = sync.Pool{New: func() any {
	c := &conn{rd: http1.NewReader(nil), bw: bufio.NewWriterSize(nil, 16<<10)}
	c.cp.Buf = make([]byte, 32<<10)
	return c
}}

// Call serves one client connection until it closes, the keep-alive ends,
// or ctx is done. It always closes c.
func (s *Server) Call(ctx context.Context, c net.Conn) (struct{}, error) {
	cs := connPool.Get().(*conn)
	cs.c = c
	cs.rd.Reset(c)
	cs.rd.MaxHeadSize = s.cfg.MaxHeadSize
	cs.writeTimeout = s.cfg.WriteTimeout
	cs.bw.Reset(clientWriter{cs})
	cs.info = ConnInfo{Conn: c, RemoteAddr: c.RemoteAddr(), LocalAddr: c.LocalAddr(), TLS: s.cfg.TLS, ServerName: s.cfg.Name}
	cs.info.RemoteIP = hostOnly(cs.info.RemoteAddr)
	forced := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(forced)
		// A forced close: wake whatever this connection waits on.
		c.SetDeadline(aLongTimeAgo)
		if u := cs.info.upstream.Load(); u != nil {
			u.abort()
		}
	})
	// On a drain, an idle keep-alive connection is closed at once and a
	// busy one after its response, so a stop does not wait on idle clients.
	stopDrain := func() bool { return true }
	drained := make(chan struct{})
	cs.drain = server.Draining(ctx)
	if d := cs.drain; d != nil {
		stopDrain = context.AfterFunc(d, func() {
			defer close(drained)
			cs.draining.Store(true)
			if cs.idle.Load() {
				c.SetReadDeadline(aLongTimeAgo)
			}
		})
	} else {
		close(drained)
	}
	err := s.serve(ctx, cs)
	if !stop() {
		<-forced // it reads cs.info: let it finish before cs is reused
	}
	if !stopDrain() {
		<-drained
	}
	cs.idle.Store(false)
	cs.draining.Store(false)
	cs.drain = nil
	c.Close()
	cs.c = nil
	cs.rd.Reset(nil)
	cs.bw.Reset(nil)
	cs.info = ConnInfo{}
	cs.req = Request{Add: cs.req.Add[:0], Drop: cs.req.Drop[:0], scratch: cs.req.scratch[:0], Params: cs.req.Params[:0]}
	connPool.Put(cs)
	return struct{}{}, err
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
		// Idle between requests: the keep-alive timeout; once a request
		// has started, the header timeout.
		if cs.rd.Buffered() == 0 {
			// Order matters against the drain callback: mark idle and set
			// the deadline, then look at draining. A drain that starts
			// after the look sees idle and cuts the read short.
			cs.idle.Store(true)
			c.SetReadDeadline(time.Now().Add(s.cfg.KeepAliveTimeout))
			if cs.stopping() {
				return nil
			}
		} else {
			c.SetReadDeadline(time.Now().Add(s.cfg.ReadHeaderTimeout))
		}
		err := cs.rd.ReadRequest(&cs.head)
		cs.idle.Store(false)
		if err != nil {
			if cs.stopping() && cs.rd.Buffered() == 0 {
				return nil
			}
			return s.readError(cs, err)
		}
		cs.info.Requests++
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
		s.writeError(cs, pe.Status, pe.Reason)
		lingerClose(cs.c)
		return nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		if cs.rd.Buffered() > 0 {
			s.log.Info("request head timeout", "client", cs.info.RemoteIP)
			s.writeError(cs, 408, "request head not received in time")
			lingerClose(cs.c)
		}
		return nil
	case errors.Is(err, io.ErrUnexpectedEOF):
		s.log.Info("client closed inside a request head", "client", cs.info.RemoteIP)
		return nil
	}
	return nil // reset by peer and the like: nothing to answer
}

// lingerClose half-closes c and reads what the client still sends, for a
// while, before the caller closes it: closing a socket with unread input
// sends a reset, which can destroy the error response before the client
// reads it (nginx's lingering_close).
func lingerClose(c net.Conn) {
	cw, ok := c.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	c.SetReadDeadline(time.Now().Add(lingerTimeout))
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
func (s *Server) writeError(cs *conn, status int, msg string) {
	cs.writeTimeout = 5 * time.Second // the connection ends after this
	body := strconv.Itoa(status) + " " + http1.StatusText(status) + "\n"
	hb := http1.AppendStatusLine(cs.hb[:0], http1.HTTP11, status, nil)
	hb = http1.AppendHeader(hb, "Content-Type", "text/plain; charset=utf-8")
	hb = http1.AppendContentLength(hb, int64(len(body)))
	hb = http1.AppendHeader(hb, "Connection", "close")
	hb = append(hb, "\r\n"...)
	hb = append(hb, body...)
	cs.hb = hb
	cs.bw.Write(hb)
	cs.bw.Flush()
	_ = msg
}

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
	req.Path, req.Query = splitTarget(h.Target)
	if len(h.Target) > 0 && h.Target[0] != '/' && len(req.Path) > 0 && req.Path[0] == '/' {
		// Absolute form: the upstream gets the origin form.
		req.OutTarget = originForm(h.Target)
	}
	cs.body.Reset(cs.rd, h.BodyKind, h.ContentLength)
	req.bodySrc = nil
	if h.BodyKind != http1.BodyNone {
		cs.c.SetReadDeadline(time.Now().Add(s.cfg.ReadBodyTimeout))
	}
	if h.ExpectContinue && h.BodyKind != http1.BodyNone {
		// Answer 100 Continue ourselves when the body is first read, as
		// nginx does; the upstream never sees Expect.
		cs.cont = continueReader{body: &cs.body, cs: cs}
		req.Body = &cs.cont
	} else {
		req.Body = &cs.body
		req.bodySrc = cs.rd
	}
	resp := &cs.resp
	resp.reset()
	req.response = resp

	r, err := s.svc.Call(ctx, req)
	if err == nil && r != nil {
		resp = r
	}
	if err != nil {
		status := statusOf(err)
		if status == StatusClientClosed {
			// Nobody to answer: the connection ends here.
			s.log.Info("client closed the connection before the response", "client", cs.info.RemoteIP, "method", string(h.Method), "target", string(h.Target), "status", status)
			return false, nil
		}
		if ctx.Err() == nil {
			s.log.Warn("request failed", "client", cs.info.RemoteIP, "method", string(h.Method), "target", string(h.Target), "status", status, "err", err)
		}
		resp = &cs.resp
		resp.reset()
		resp.SetText(status, strconv.Itoa(status)+" "+http1.StatusText(status)+"\n")
		resp.Close = !bodyDone(cs)
	}
	if h.ExpectContinue && h.BodyKind != http1.BodyNone && !cs.cont.sent {
		// The client waits for a 100 that will not come and may or may
		// not send the body: the connection cannot be reused safely.
		resp.Close = true
	}
	if cs.stopping() {
		resp.Close = true // the server is stopping: this is the last one
	}
	ok, werr := s.writeResponse(cs, resp)
	if resp.Releaser != nil {
		resp.Releaser.Release(ok)
	}
	if werr != nil {
		return false, nil // client gone; nothing else to do
	}
	if resp.Tunnel != nil {
		return false, nil
	}
	keep := h.KeepAlive && !resp.Close && ok
	if !keep && !bodyDone(cs) {
		// The client may still be sending the body: read some of it
		// before closing, so the response is not lost to a reset.
		lingerClose(cs.c)
		return false, nil
	}
	if keep && !bodyDone(cs) {
		// Read what the service left of the body, within reason.
		cs.c.SetReadDeadline(time.Now().Add(s.cfg.ReadBodyTimeout))
		n, err := io.CopyN(io.Discard, &cs.body, s.cfg.MaxDiscard+1)
		keep = err == io.EOF && n <= s.cfg.MaxDiscard
	}
	return keep, nil
}

// bodyDone reports whether the request body was read to its end.
func bodyDone(cs *conn) bool {
	if cs.head.BodyKind == http1.BodyNone {
		return true
	}
	var b [1]byte
	n, err := cs.body.Read(b[:0])
	return n == 0 && err == io.EOF
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

var continueLine = []byte("HTTP/1.1 100 Continue\r\n\r\n")

// continueReader sends "100 Continue" before the first body read.
type continueReader struct {
	body *http1.Body
	cs   *conn
	sent bool
}

func (r *continueReader) Read(p []byte) (int, error) {
	if !r.sent {
		r.sent = true
		if _, err := r.cs.c.Write(continueLine); err != nil {
			return 0, err
		}
	}
	return r.body.Read(p)
}

// originForm returns the path and query of an absolute-form target
// ("http://host/p?q" gives "/p?q"), and t itself for other forms and for
// an absolute form without a path ("http://host?q"), which is not
// routable.
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
			break
		}
	}
	return t
}
