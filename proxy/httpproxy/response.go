package httpproxy

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/monolake-go/monolake/proxy/http1"
)

// writeResponse writes resp to the client, head and body, framed for the
// client's HTTP version. It returns whether the body went out whole (ok)
// and an error when writing to the client failed.
func (s *Server) writeResponse(cs *conn, resp *Response) (ok bool, err error) {
	h := &cs.head
	status := cmp.Or(resp.Status, 200)
	headOnly := bytes.Equal(h.Method, []byte("HEAD")) || status == 204 || status == 304 || (status >= 100 && status < 200)
	hop := resp.Headers.HopByHop()

	// Choose the framing the client gets.
	out := resp.BodyKind
	if resp.Body == nil {
		out = http1.BodyNone
	}
	closeAfter := resp.Close || !h.KeepAlive
	if out == http1.BodyClose || out == http1.BodyChunked {
		if h.Version == http1.HTTP11 {
			out = http1.BodyChunked
		} else {
			out, closeAfter = http1.BodyClose, true
		}
	}
	if resp.Tunnel != nil {
		headOnly, out = true, http1.BodyNone
	}

	hb := http1.AppendStatusLine(cs.hb[:0], http1.HTTP11, status, resp.Reason)
	for _, f := range resp.Headers {
		if resp.Tunnel == nil && hop.Has(f.Name) {
			continue
		}
		if !headOnly && (equalFold(f.Name, "Content-Length") || equalFold(f.Name, "Transfer-Encoding")) {
			continue // we write the framing ourselves below
		}
		if (status == 204 || status < 200) && (equalFold(f.Name, "Content-Length") || equalFold(f.Name, "Transfer-Encoding")) {
			continue // RFC 9110 8.6, RFC 9112 6.1: none on 1xx and 204
		}
		if out != http1.BodyChunked && !headOnly && equalFold(f.Name, "Trailer") {
			continue // no trailer section goes out to announce
		}
		hb = http1.AppendHeader(hb, f.Name, f.Value)
	}
	if !headOnly {
		switch out {
		case http1.BodyLength:
			hb = http1.AppendContentLength(hb, resp.ContentLength)
		case http1.BodyNone:
			hb = append(hb, "Content-Length: 0\r\n"...)
		case http1.BodyChunked:
			hb = append(hb, "Transfer-Encoding: chunked\r\n"...)
		}
	}
	switch {
	case resp.Tunnel != nil:
	case closeAfter:
		hb = append(hb, "Connection: close\r\n"...)
		resp.Close = true
	case h.Version == http1.HTTP10:
		hb = append(hb, "Connection: keep-alive\r\n"...)
	}
	hb = append(hb, "\r\n"...)
	cs.hb = hb

	cs.countBody(len(hb))
	if _, err := cs.bw.Write(hb); err != nil {
		return false, err
	}
	if resp.Tunnel != nil {
		if err := cs.bw.Flush(); err != nil {
			return false, err
		}
		tunnel(cs, resp)
		return false, nil
	}
	if headOnly || out == http1.BodyNone {
		// A body the service produced but HTTP forbids is left unread; the
		// upstream connection cannot be reused then. A response without a
		// Releaser holds nothing to reuse, so the client connection stays.
		ok = resp.BodyKind == http1.BodyNone || resp.Body == nil || resp.Releaser == nil
		if ok {
			releaseEarly(resp)
		}
		if err := cs.bw.Flush(); err != nil {
			return ok, err
		}
		return ok, nil
	}
	if b, isBody := resp.Body.(*http1.Body); isBody {
		cs.sw = streamWriter{bw: cs.bw, body: b, remain: -1}
		switch {
		case out == http1.BodyLength && b.Kind() == http1.BodyLength:
			cs.sw.remain = resp.ContentLength
		case out == http1.BodyChunked:
			cs.sw.chunked = true
		}
		var spliced bool
		if out == http1.BodyLength {
			spliced, err = spliceBody(cs, resp, b)
		}
		if !spliced {
			_, err = cs.cp.Copy(&cs.sw, b, out)
		}
	} else {
		err = copyGeneric(cs, resp.Body, out)
	}
	if err != nil {
		var we *http1.WriteError
		if errors.As(err, &we) {
			return false, err // client gone
		}
		// The upstream body broke off: the client cannot be told in
		// band; close after what was sent.
		cs.bw.Flush()
		resp.Close = true
		return false, nil
	}
	releaseEarly(resp)
	if err := cs.bw.Flush(); err != nil {
		return true, err
	}
	return true, nil
}

// spliceMin is the smallest body, past what the upstream's reader holds,
// that goes socket to socket; copying a smaller one costs less than the
// splice's pipe and polls.
const spliceMin = 64 << 10

// spliceIdler is the io_uring driver's conns' SpliceToIdle.
type spliceIdler interface {
	SpliceToIdle(dst net.Conn, n int64, rto, wto time.Duration, stop func() error) (int64, error)
}

// splicedBodies counts the bodies spliceBody took, for tests.
var splicedBodies atomic.Int64

// spliceBody sends a body framed by Content-Length from a plain upstream
// connection to a plain client connection, both of the io_uring driver,
// socket to socket (netio.SpliceToer): what the upstream's reader holds
// goes first, after the head in the client's buffered writer, and the
// rest never enters Go memory. It reports false, having done nothing,
// where that does not apply: the epoll driver, TLS on either side, a body
// under spliceMin. Errors are as for Copier.Copy: a failed client write is
// a *http1.WriteError.
func spliceBody(cs *conn, resp *Response, b *http1.Body) (bool, error) {
	left, ok := b.Unread()
	uc, isUp := resp.Releaser.(*upConn)
	if !ok || !isUp || resp.bodySrc == nil || left-int64(resp.bodySrc.Buffered()) < spliceMin {
		return false, nil
	}
	src, ok := uc.Conn.(spliceIdler)
	if !ok {
		return false, nil
	}
	if _, ok := cs.c.(spliceIdler); !ok {
		return false, nil
	}
	splicedBodies.Add(1)
	if len(cs.cp.Buf) < 4<<10 {
		cs.cp.Buf = make([]byte, http1.DefaultCopyBufferSize)
	}
	for rd := resp.bodySrc; rd.Buffered() > 0; {
		n, err := b.Read(cs.cp.Buf[:min(len(cs.cp.Buf), rd.Buffered())])
		if _, werr := cs.bw.Write(cs.cp.Buf[:n]); werr != nil {
			return true, &http1.WriteError{Err: werr}
		}
		if err != nil {
			return true, err // not io.EOF: more than spliceMin is left
		}
	}
	if err := cs.bw.Flush(); err != nil {
		return true, &http1.WriteError{Err: err}
	}
	// The timeouts bound each splice round (up to 256 KiB) as they bound
	// each read and write of a copied body.
	left, _ = b.Unread()
	n, err := src.SpliceToIdle(cs.c, left, uc.timeout, cs.writeTimeout, func() error {
		if uc.aborted.Load() {
			return os.ErrDeadlineExceeded
		}
		if cs.aborted.Load() {
			return &http1.WriteError{Err: os.ErrDeadlineExceeded}
		}
		return nil
	})
	b.Moved(n)
	cs.sent += n // past clientWriter: socket to socket
	switch {
	case err != nil:
		if oe, ok := errors.AsType[*net.OpError](err); ok && oe.Op == "write" {
			return true, &http1.WriteError{Err: err}
		}
		return true, err
	case n < left:
		return true, io.ErrUnexpectedEOF // the upstream ended the stream
	}
	return true, nil
}

// releaseEarly gives back what resp holds once its body was read whole and
// before the last flush to the client, so a client that sends its next
// request (on another connection) as soon as it has the response finds the
// upstream connection back in the pool.
func releaseEarly(resp *Response) {
	resp.release(true)
}

// copyGeneric streams a body that is not an http1.Body (a service's own).
//
// Each read of body is written and flushed at once, so a service that
// streams (a compressor, a handler) reaches the client as it produces.
func copyGeneric(cs *conn, body io.Reader, out http1.BodyKind) error {
	cs.sw = streamWriter{bw: cs.bw, remain: -1}
	switch out {
	case http1.BodyChunked:
		cs.cw.Reset(&cs.sw)
		if _, err := io.CopyBuffer(tagWriter{&cs.cw}, body, cs.cp.Buf); err != nil {
			return err
		}
		var tr http1.Headers
		if t, ok := body.(interface{ Trailers() http1.Headers }); ok {
			tr = t.Trailers()
		}
		if err := cs.cw.Finish(tr); err != nil {
			return &http1.WriteError{Err: err}
		}
		return nil
	default:
		_, err := io.CopyBuffer(tagWriter{&cs.sw}, body, cs.cp.Buf)
		return err
	}
}

// streamWriter writes to a connection's buffered writer and flushes it
// whenever the body it passes on has nothing more ready (http1.Body.Ready:
// buffered, or already received by its connection), or after every write
// when body is nil. A body that arrived whole thus
// leaves with its head in one write, and one that trickles in is passed on
// as it comes instead of waiting for the buffer to fill. It lives in the
// connection's state so passing it as an io.Writer does not allocate.
//
// The last write of a body is not flushed here: the caller releases the
// upstream connection first, then flushes. The last write is the one that
// completes remain (a body copied byte for byte with a known length) or,
// when chunked is set, the last chunk (a chunk-size line never starts with
// '0' otherwise, as sizes have no leading zeros).
type streamWriter struct {
	bw      *bufio.Writer
	body    *http1.Body
	remain  int64 // bytes still to come, -1 when not counted
	chunked bool
}

func (w *streamWriter) Write(p []byte) (int, error) {
	n, err := w.bw.Write(p)
	if err != nil {
		return n, err
	}
	last := false
	if w.remain >= 0 {
		w.remain -= int64(n)
		last = w.remain <= 0
	} else if w.chunked {
		last = len(p) >= 3 && p[0] == '0' && p[1] == '\r'
	}
	if !last && (w.body == nil || !w.body.Ready()) {
		err = w.bw.Flush()
	}
	return n, err
}

// AvailableBuffer is the buffered writer's: a body copied byte for byte is
// read straight into it (http1.Copier.Copy), which flushes it to make room.
func (w *streamWriter) AvailableBuffer() []byte { return w.bw.AvailableBuffer() }

// Flush flushes the buffered writer: Copy makes room to read into.
func (w *streamWriter) Flush() error { return w.bw.Flush() }

// tagWriter marks write errors as *http1.WriteError, so a failed client
// write is told apart from a failed body read; it also hides ReadFrom so
// io.CopyBuffer uses the connection's buffer.
type tagWriter struct{ w io.Writer }

func (t tagWriter) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	if err != nil {
		err = &http1.WriteError{Err: err}
	}
	return n, err
}

func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		x, y := b[i], s[i]
		if x|0x20 != y|0x20 {
			return false
		}
	}
	return true
}

// tunnel relays bytes both ways after a 101 until both directions end, or
// the tunnel idles: nothing moved either way for the upstream read timeout
// (as nginx's proxy_read_timeout ends an idle WebSocket), or a write waited
// that long for a peer that does not read. A side that half-closes ends its
// direction; the other goes on until it ends or idles too.
func tunnel(cs *conn, resp *Response) {
	up := resp.Tunnel
	client := cs.c
	cs.bodyTimeout = 0 // clientReader: the tunnel sets its own deadlines
	client.SetDeadline(time.Time{})
	up.SetDeadline(time.Time{})
	// The heads are written and a tunnel may last for hours: the client's
	// reader keeps no buffer the connection lent it (on io_uring the
	// kernel's, out of a ring the other connections receive into).
	if len(cs.req.done) > 0 {
		cs.req.ownHead() // OnDone's functions read it after the tunnel
	}
	cs.rd.GiveBack()
	t := &tunnelState{conns: [2]net.Conn{client, up}, aborted: cs.aborted.Load}
	if uc, ok := up.(*upConn); ok {
		t.idle = uc.timeout
		uc.timeout = 0 // its reader renews no deadline: the tunnel's own hold
		t.aborted = func() bool { return cs.aborted.Load() || uc.aborted.Load() }
	}
	t.touch()
	src := io.Reader(up)
	if resp.Buffered != nil {
		src = resp.Buffered
	}
	done := make(chan struct{})
	var toClient int64
	go func() {
		defer close(done)
		toClient = t.copy(client, src, up) // upstream to client
	}()
	t.copy(up, cs.rd, client) // client to upstream: first what the client's reader holds
	<-done
	cs.sent += toClient
}

// tunnelState is what a tunnel's two directions share.
type tunnelState struct {
	conns [2]net.Conn // client, upstream
	idle  time.Duration
	// aborted reports a forced close (watchForced, upConn.abort): it sets
	// past deadlines, which the tunnel's renewals must not undo.
	aborted func() bool
	last    atomic.Int64 // the last progress, in nanoseconds since tunnelEpoch
	stopped atomic.Bool
	once    sync.Once
}

var tunnelEpoch = time.Now()

func (t *tunnelState) touch() { t.last.Store(int64(time.Since(tunnelEpoch))) }

func (t *tunnelState) sinceLast() time.Duration {
	return time.Since(tunnelEpoch) - time.Duration(t.last.Load())
}

// stop closes both sides; the other direction's blocked call returns.
func (t *tunnelState) stop() {
	t.once.Do(func() {
		t.stopped.Store(true)
		t.conns[0].Close()
		t.conns[1].Close()
	})
}

// copy moves src (read from srcConn) to dst until src ends, which
// half-closes dst, or the tunnel stops or idles. It returns the bytes
// written to dst.
func (t *tunnelState) copy(dst net.Conn, src io.Reader, srcConn net.Conn) (written int64) {
	bp := tunnelBufs.Get().(*[]byte)
	defer tunnelBufs.Put(bp)
	buf := *bp
	for {
		if t.idle > 0 {
			srcConn.SetReadDeadline(time.Now().Add(t.idle))
		}
		// Checked after each renewal: an abort before it is seen here,
		// one after it set its past deadline over the renewal.
		if t.aborted() {
			t.stop()
			return
		}
		n, err := src.Read(buf)
		if n > 0 {
			t.touch()
			if t.idle > 0 {
				dst.SetWriteDeadline(time.Now().Add(t.idle))
			}
			if t.aborted() {
				t.stop()
				return
			}
			m, werr := dst.Write(buf[:n])
			written += int64(m)
			if werr != nil {
				t.stop()
				return
			}
			t.touch()
		}
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded) && !t.stopped.Load() && t.sinceLast() < t.idle:
			// Quiet this way, but the other direction moved: wait on.
		case err == io.EOF:
			closeWrite(dst)
			return
		default: // idle both ways, stopped, or broken
			t.stop()
			return
		}
	}
}

var tunnelBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	} else {
		c.Close()
	}
}
