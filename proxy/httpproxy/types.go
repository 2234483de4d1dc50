// Package httpproxy is the HTTP/1.1 reverse proxy: a connection service
// (the HTTP server: parse, keep-alive, pipelining, errors) over an onion of
// request Services: route → rewrite → upstream, with optional layers for
// compression and access logs, and any Layer a user inserts.
//
// The hot path does not allocate per request in steady state: a Request and
// a Response live in the connection's state and are reused; heads are parsed
// in place by package http1 and their slices are valid only during the Call
// that receives them. BenchmarkProxy checks it (0 allocs/op).
//
// Bodies stream both ways: the server flushes to the client whenever the
// upstream has nothing more buffered, so slow or endless bodies pass as they
// come. A client that closes its connection while its request waits for the
// upstream's response head has the upstream request cancelled (watch.go);
// the upstream connection is then closed, not pooled.
//
// A plain net/http Handler can be the terminal Service (HandlerService),
// and a user's Layers go into the stack through Options.Layers.
package httpproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/monolake-go/monolake/proxy"
	"github.com/monolake-go/monolake/proxy/http1"
	"github.com/monolake-go/monolake/proxy/route"
)

// Service handles one HTTP request.
type Service = proxy.Service[*Request, *Response]

// Middleware wraps a Service in another of the same types.
type Middleware = proxy.Middleware[*Request, *Response]

// ConnInfo describes the client connection a request came on.
type ConnInfo struct {
	Conn       net.Conn
	RemoteAddr net.Addr
	RemoteIP   string // without port
	LocalAddr  net.Addr
	TLS        bool   // the client connection is TLS
	ServerName string // the configured server's name
	// Requests counts the requests served on this connection so far.
	Requests int

	// upstream is the upstream connection the current request waits on, so
	// that a client that goes away (or a forced close) can abort it.
	upstream atomic.Pointer[upConn]
}

// Request is one request on its way through the stack. It is reused for
// every request of a connection: a Service must not keep it, or any slice
// in it, after Call returns.
type Request struct {
	Head *http1.Request
	// Body reads the request body (decoded from chunked); it is empty when
	// the request has none. Services that do not forward the request need
	// not read it: the server discards what is left.
	Body io.Reader
	Conn *ConnInfo

	// Path is the request-target's path (no query), Query the part after
	// '?' (without it), both borrowed from Head.Target.
	Path, Query []byte

	// Filled in by the route layer.
	Route  *Route
	Params []route.Param

	// Filled in by the rewrite layer for the upstream request: the Host to
	// send, the target to send, header names of the client's request to
	// leave out, and headers to add. Values may point into scratch, which
	// belongs to the request and is reset per request.
	OutHost   []byte
	OutTarget []byte
	// ReplaceHost sends the upstream's own authority as Host instead of
	// the client's (when OutHost is nil).
	ReplaceHost bool
	Drop        []string
	Add         http1.Headers
	scratch     []byte
	requestID   []byte
	// underscored: fields whose names hold "_" are dropped (the server's
	// UnderscoresInHeaders is off), from the head and from trailers.
	underscored bool
	response    *Response  // the connection's reusable Response
	done        []doneHook // OnDone's, in registration order
	cs          *conn      // the client connection, for SendInterim; nil outside a Server
}

// SendInterim sends the client an informational (1xx) response head ahead
// of the final one: an upstream's 103 Early Hints, say. Hop-by-hop and
// framing fields are left out. It sends nothing to an HTTP/1.0 client (RFC
// 9110 15.2), for 100 or 101 (the server answers Expect itself, and a 101
// is a final response here), or once Call returned. Call it from the
// goroutine that runs Call.
func (r *Request) SendInterim(status int, reason []byte, hs http1.Headers) error {
	if r.cs == nil {
		return nil
	}
	return r.cs.sendInterim(status, reason, hs)
}

// Done is how a request ended, for the functions OnDone registers.
type Done struct {
	// Start is when the function was registered: as its layer got the
	// request.
	Start time.Time
	// Status is the response's status, or StatusClientClosed when the
	// client went away before it was written.
	Status int
	// BodySent is what the client connection was sent after the response
	// head, as nginx's $body_bytes_sent: the body as framed on the wire
	// (chunked framing included), and on a 101 what the tunnel passed to
	// the client. A client that went away mid-body got less than the
	// body's length.
	BodySent int64
	// Complete says the response went out whole (a 101: its tunnel ran
	// to its end).
	Complete bool
}

type doneHook struct {
	fn    func(arg any, req *Request, d Done)
	arg   any
	start time.Time
}

// OnDone has fn called with arg once the server is done with req: its
// response written to the end (its body and, for a 101, its tunnel), or
// abandoned. An access log writes its line there, with what the client was
// sent and how long it all took. fn runs on the connection's goroutine,
// before its next request, and must not keep req. A top-level function and
// a pointer arg keep registering free of allocations.
func (r *Request) OnDone(fn func(arg any, req *Request, d Done), arg any) {
	r.done = append(r.done, doneHook{fn, arg, time.Now()})
}

// ownHead copies what r's head, path and query borrow from the client's
// reader into memory of their own: the reader is about to give its buffer
// back (a tunnel's), and OnDone's functions read them at the end.
func (r *Request) ownHead() {
	h := r.Head
	n := len(h.Method) + len(h.Target) + len(h.Host) + len(r.Path) + len(r.Query)
	for _, f := range h.Headers {
		n += len(f.Name) + len(f.Value)
	}
	arena := make([]byte, 0, n)
	own := func(b []byte) []byte {
		if b == nil {
			return nil
		}
		start := len(arena)
		arena = append(arena, b...)
		return arena[start:len(arena):len(arena)]
	}
	h.Method, h.Target, h.Host = own(h.Method), own(h.Target), own(h.Host)
	r.Path, r.Query = own(r.Path), own(r.Query)
	for i := range h.Headers {
		h.Headers[i].Name, h.Headers[i].Value = own(h.Headers[i].Name), own(h.Headers[i].Value)
	}
}

// finish calls the OnDone functions, innermost layer's first (the reverse
// of registration: layers register on their way in).
func (r *Request) finish(d Done) {
	for i := len(r.done) - 1; i >= 0; i-- {
		h := r.done[i]
		r.done[i] = doneHook{}
		d.Start = h.start
		h.fn(h.arg, r, d)
	}
	r.done = r.done[:0]
}

// targetFor returns the request-target of path with the request's query,
// in the scratch arena when there is one.
func (r *Request) targetFor(path []byte) []byte {
	if len(r.Query) == 0 {
		return path
	}
	return r.Scratch(path, []byte("?"), r.Query)
}

// Scratch appends b to the request's scratch arena and returns the copy,
// valid until the next request of the connection.
func (r *Request) Scratch(parts ...[]byte) []byte {
	start := len(r.scratch)
	for _, p := range parts {
		r.scratch = append(r.scratch, p...)
	}
	return r.scratch[start:len(r.scratch):len(r.scratch)]
}

// Response is the answer a Service returns. For a proxied response, Head
// borrows the upstream connection's reader and Body streams from it;
// Release must be called once the body was read (ok: whole and clean) so
// the upstream connection goes back to its pool or is closed.
type Response struct {
	Status  int
	Reason  []byte
	Version http1.Version
	// Headers are the response's end-to-end fields (hop-by-hop ones are
	// dropped by the server when it writes them).
	Headers http1.Headers
	// Body and its framing. BodyKind BodyNone means no body.
	Body          io.Reader
	BodyKind      http1.BodyKind
	ContentLength int64
	// Close asks the server to close the client connection after this
	// response.
	Close bool
	// Tunnel, on a 101 response, is the upstream connection to splice to
	// the client both ways after the head; buffered holds upstream bytes
	// already read past the head.
	Tunnel   net.Conn
	Buffered io.Reader
	// Releaser, when set, is called once the server is done with the
	// response; ok says the body was read whole and written cleanly.
	Releaser Releaser
	// lease is the upstream connection's lease the Releaser belongs to
	// (0: none): a copy of the response released late, or twice, finds
	// the connection on another lease and leaves it alone.
	lease uint64

	// set by Reset; reused storage for simple responses
	headers [4]http1.Header
	body    simpleBody
	// bodySrc is the upstream reader Body reads from, when Body is the
	// upstream's *http1.Body: the server flushes to the client whenever
	// it holds nothing more, so a body trickling in is passed on as it
	// comes.
	bodySrc *http1.Reader
}

// reset clears r for another response. What a response still holds (its
// upstream connection) is released as not reusable: a layer that replaces
// a proxied response with its own (Request.Response) must not leak it.
func (r *Response) reset() {
	r.release(false)
	*r = Response{headers: r.headers}
	r.Headers = r.headers[:0]
}

// SetText makes r a small text response with the given status.
func (r *Response) SetText(status int, text string) {
	r.Status = status
	r.Headers = append(r.headers[:0], http1.Header{Name: []byte("Content-Type"), Value: []byte("text/plain; charset=utf-8")})
	r.body.s, r.body.off = text, 0
	r.Body = &r.body
	r.BodyKind = http1.BodyLength
	r.ContentLength = int64(len(text))
}

type simpleBody struct {
	s   string
	off int
}

func (b *simpleBody) Read(p []byte) (int, error) {
	if b.off >= len(b.s) {
		return 0, io.EOF
	}
	n := copy(p, b.s[b.off:])
	b.off += n
	return n, nil
}

// release gives back what r holds, once: for an upstream connection, only
// if it is still on the lease r was given (see leaseReleaser).
func (r *Response) release(ok bool) {
	rel := r.Releaser
	if rel == nil {
		return
	}
	r.Releaser = nil
	if lr, is := rel.(leaseReleaser); is && r.lease != 0 {
		lr.releaseLease(r.lease, ok)
		return
	}
	rel.Release(ok)
}

// leaseReleaser is a Releaser lent to one request at a time (an upstream
// connection from the pool): releaseLease acts only for the lease given.
type leaseReleaser interface {
	releaseLease(lease uint64, ok bool)
}

// Releaser gives back what a response holds (an upstream connection).
type Releaser interface {
	Release(ok bool)
}

// StatusError is an error that the server answers with Status; Err is the
// cause, logged.
type StatusError struct {
	Status int
	Err    error
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("httpproxy: %d %s: %v", e.Status, http1.StatusText(e.Status), e.Err)
}

func (e *StatusError) Unwrap() error { return e.Err }

// Errorf returns a *StatusError.
func Errorf(status int, format string, args ...any) error {
	return &StatusError{Status: status, Err: fmt.Errorf(format, args...)}
}

// statusOf maps an error from the stack to the status the client gets.
func statusOf(err error) int {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Status
	}
	if errors.Is(err, errClientGone) {
		return StatusClientClosed
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return 504
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return 504
	}
	return 502
}
