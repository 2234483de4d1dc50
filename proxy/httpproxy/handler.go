package httpproxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"

	"github.com/monolake-go/monolake/proxy/http1"
)

// HandlerService returns a terminal Service that answers requests with a
// net/http Handler, for Options.Terminal or behind a user Layer.
//
// The handler runs on a goroutine of its own and its response streams: the
// head goes out once the handler first writes, flushes or returns, and
// each Write is handed to the client connection (and flushed) before it
// returns, so nothing is buffered whole. A Content-Length the handler sets
// frames the body; otherwise it is chunked (close-delimited for HTTP/1.0
// clients). Writes beyond that length fail with http.ErrContentLength; a
// handler that writes less gets the client connection closed. Writes to
// a HEAD, 204 or 304 response are discarded. Response trailers,
// Hijack and 1xx responses are not supported.
//
// This is the convenience path, not the hot one: each request costs an
// *http.Request, its header map and a goroutine.
func HandlerService(h http.Handler) Service {
	return handlerService{h: h}
}

type handlerService struct{ h http.Handler }

var errHandlerAborted = errors.New("httpproxy: response aborted (client gone)")

func (s handlerService) Call(ctx context.Context, req *Request) (*Response, error) {
	hctx, cancel := context.WithCancel(ctx)
	hr, err := newHTTPRequest(hctx, req)
	if err != nil {
		cancel()
		return nil, &StatusError{Status: 400, Err: err}
	}
	x := &handlerExchange{header: http.Header{}, ready: make(chan struct{}), done: make(chan struct{}), cancel: cancel}
	x.pr, x.pw = io.Pipe()
	h := req.Head
	x.head = string(h.Method) == "HEAD"
	go x.serve(s.h, hr)
	select {
	case <-x.ready:
	case <-ctx.Done():
		x.Release(false)
		return nil, ctx.Err()
	}
	if x.panicked != nil && x.status == 0 {
		x.Release(false)
		return nil, &StatusError{Status: 500, Err: fmt.Errorf("handler panic: %v", x.panicked)}
	}
	resp := req.resp()
	resp.Status = x.status
	for k, vs := range x.snapshot {
		if !http1.ValidFieldName([]byte(k)) {
			continue // as net/http: a name that is no token is not sent
		}
		for _, v := range vs {
			if val, ok := handlerFieldValue(v); ok {
				resp.Headers = append(resp.Headers, http1.Header{Name: []byte(k), Value: val})
			}
		}
	}
	resp.Releaser = x
	switch {
	case x.discard || x.finished && x.written == 0:
		// The declared length stays for the layers (gzip's choice on a
		// HEAD); the framing is none.
		resp.BodyKind, resp.ContentLength = http1.BodyNone, x.length
	case x.length >= 0:
		resp.Body, resp.BodyKind, resp.ContentLength = x.pr, http1.BodyLength, x.length
	default:
		resp.Body, resp.BodyKind, resp.ContentLength = x.pr, http1.BodyChunked, -1
	}
	return resp, nil
}

// newHTTPRequest converts req for a net/http handler, as the upstream would
// get it: the rewritten target (normalized path, rewrite_path), the fields
// the layers dropped and added (X-Forwarded-*, Via, X-Request-Id), the
// rewritten Host. The result copies what it needs and owns it, except Body,
// which reads req.Body until the response is released.
func newHTTPRequest(ctx context.Context, req *Request) (*http.Request, error) {
	h := req.Head
	target := req.OutTarget
	if target == nil {
		target = h.Target
	}
	u, err := url.ParseRequestURI(string(target))
	if err != nil {
		return nil, fmt.Errorf("parsing the request target: %w", err)
	}
	hdr := make(http.Header, len(h.Headers)+len(req.Add))
	hop := h.Headers.HopByHop() // not for the handler, as not for an upstream
	for _, f := range h.Headers {
		k := http.CanonicalHeaderKey(string(f.Name))
		if k == "Host" || hop.Has(f.Name) || dropped(req.Drop, f.Name) {
			continue
		}
		hdr[k] = append(hdr[k], string(f.Value))
	}
	for _, f := range req.Add {
		k := http.CanonicalHeaderKey(string(f.Name))
		hdr[k] = append(hdr[k], string(f.Value))
	}
	host := h.Host
	if req.OutHost != nil {
		host = req.OutHost
	}
	r := (&http.Request{
		Method:     string(h.Method),
		URL:        u,
		Proto:      h.Version.String(),
		ProtoMajor: 1,
		ProtoMinor: int(h.Version) % 10,
		Header:     hdr,
		Host:       string(host),
		RequestURI: string(target),
		Close:      !h.KeepAlive,
		Body:       http.NoBody,
	}).WithContext(ctx)
	if req.Conn != nil && req.Conn.RemoteAddr != nil {
		r.RemoteAddr = req.Conn.RemoteAddr.String()
	}
	if req.Conn != nil && req.Conn.TLS {
		// The handshake's details stay with the TLS backend; handlers
		// that only ask whether the request came over TLS get their yes.
		r.TLS = &tls.ConnectionState{HandshakeComplete: true}
	}
	switch h.BodyKind {
	case http1.BodyLength:
		r.ContentLength = h.ContentLength
		r.Body = io.NopCloser(req.Body)
	case http1.BodyChunked:
		r.ContentLength = -1
		r.TransferEncoding = []string{"chunked"}
		r.Body = io.NopCloser(req.Body)
	}
	return r, nil
}

// handlerExchange is the http.ResponseWriter of one handler call and the
// Releaser of its response. Fields up to ready are the handler's until
// ready is closed, then read-only for the server.
type handlerExchange struct {
	header   http.Header
	snapshot http.Header // header as sent
	status   int
	length   int64 // declared Content-Length, -1 without
	written  int64
	head     bool // a HEAD request
	discard  bool // the response has no body: writes are dropped
	finished bool // the handler returned before the head was sent
	panicked any
	ready    chan struct{}
	isReady  bool

	pr     *io.PipeReader
	pw     *io.PipeWriter
	done   chan struct{} // closed when the handler returned
	cancel context.CancelFunc
	once   sync.Once
}

var (
	_ http.ResponseWriter = (*handlerExchange)(nil)
	_ http.Flusher        = (*handlerExchange)(nil)
	_ Releaser            = (*handlerExchange)(nil)
)

func (x *handlerExchange) Header() http.Header { return x.header }

func (x *handlerExchange) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("httpproxy: invalid WriteHeader code %v", code)) // as net/http
	}
	if x.isReady || code < 200 {
		return // late, or an interim response: not supported
	}
	if x.status == 0 {
		x.status = code
	}
}

// handlerFieldValue is a handler's header value as it may be sent: CR, LF
// and NUL become spaces (as net/http turns line breaks into spaces, so a
// value built from request data cannot add fields or a response), the
// ends are trimmed; ok is false for a value with other control bytes.
func handlerFieldValue(v string) ([]byte, bool) {
	b := []byte(v)
	for i, c := range b {
		if c == '\r' || c == '\n' || c == 0 {
			b[i] = ' '
		}
	}
	b = bytes.Trim(b, " \t")
	return b, http1.ValidFieldValue(b)
}

// sendHead fixes the head and wakes the server.
func (x *handlerExchange) sendHead() {
	if x.isReady {
		return
	}
	x.isReady = true
	if x.status == 0 {
		x.status = 200
	}
	x.snapshot = x.header.Clone()
	x.length = -1
	if v := x.snapshot.Get("Content-Length"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			x.length = n
		} else {
			x.snapshot.Del("Content-Length")
		}
	}
	x.discard = x.head || x.status == 204 || x.status == 304
	close(x.ready)
}

func (x *handlerExchange) Write(p []byte) (int, error) {
	x.sendHead()
	if x.discard {
		return len(p), nil
	}
	if x.length >= 0 && x.written+int64(len(p)) > x.length {
		return 0, http.ErrContentLength
	}
	n, err := x.pw.Write(p)
	x.written += int64(n)
	return n, err
}

// Flush sends the head if it was not sent; body bytes are never held.
func (x *handlerExchange) Flush() { x.sendHead() }

func (x *handlerExchange) serve(h http.Handler, r *http.Request) {
	defer close(x.done)
	defer func() {
		if p := recover(); p != nil {
			if !x.isReady {
				x.panicked = p // Call reads it once ready is closed
				x.finished = true
				x.isReady = true
				close(x.ready)
				return
			}
			x.pw.CloseWithError(fmt.Errorf("httpproxy: handler panic: %v", p))
			return
		}
		if !x.isReady {
			x.finished = true
			x.sendHead()
		}
		if x.length >= 0 && x.written < x.length && !x.discard {
			x.pw.CloseWithError(io.ErrUnexpectedEOF)
			return
		}
		x.pw.Close()
	}()
	h.ServeHTTP(x, r)
}

// Release implements Releaser: it stops the handler's writes if the body
// was not sent whole and waits for the handler to return, so that it no
// longer reads the request.
func (x *handlerExchange) Release(ok bool) {
	x.once.Do(func() {
		if !ok {
			x.cancel()
			x.pr.CloseWithError(errHandlerAborted)
		}
		<-x.done
		x.cancel()
	})
}
