//go:build openssl && cgo

package openssl

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/monolake-go/monolake/tlsbackend"
	"github.com/monolake-go/monolake/tlsbackend/internal/rawsock"
)

const (
	// rbufSize holds one full TLS record (16 KiB plaintext + overhead) so
	// that a Read of a large record is typically one socket read.
	rbufSize = 16384 + 2048
	// writeChunk is the plaintext encrypted per C call and socket write:
	// four full records.
	writeChunk = 4 * 16384
	// wbufSize is writeChunk's ciphertext with room for per-record overhead.
	wbufSize = writeChunk + 4*256
)

var wbufPool = sync.Pool{New: func() any { b := make([]byte, wbufSize); return &b }}

// box holds the C handle so that a cleanup can free it if Close never
// runs; Close frees it and clears h.
type box struct{ h handle }

func (b *box) free() {
	if b.h != nil {
		freeHandle(b.h)
		b.h = nil
	}
}

// conn is a TLS connection on memory BIOs. The SSL is driven by Go: Read
// feeds ciphertext from nc into the SSL's read BIO and asks for plaintext
// in one C call; Write encrypts a chunk and takes the ciphertext out in one
// C call, then writes it to nc. Locks, outermost first: hsMu (handshake),
// wmu (order of ciphertext on nc), mu (the C state); rmu is the reader's.
type conn struct {
	nc      net.Conn
	cfg     any           // *serverConfig or *clientConfig: keeps the C contexts alive
	client  *clientConfig // nil on a server
	sessKey string

	hsMu   sync.Mutex
	hsDone atomic.Bool
	hsErr  error // guarded by hsMu

	mu     sync.Mutex // guards b.h and the C state behind it
	b      *box       // b.h is nil once closed
	st     tlsbackend.ConnectionState
	peer   bool // the peer sent certificates not yet fetched into st
	peerOK bool

	wmu     sync.Mutex      // held while ciphertext is moved from the SSL to nc
	werr    error           // sticky, guarded by wmu
	sock    *rawsock.Socket // nc's raw I/O, for a *net.TCPConn (else nil); see send, recvRaw
	writing atomic.Int32

	rmu     sync.Mutex // held by the one reader
	rbuf    []byte     // ciphertext read from nc; only for conns recv cannot wait on
	lent    *[]byte    // recvRaw's buffer, until the SSL took its bytes
	putLent func()     // gives lent back
	rerr    error      // sticky, guarded by rmu
	more    bool       // the SSL may yield plaintext without reading nc
	partial bool       // part of a record is buffered

	closed atomic.Bool
}

var _ tlsbackend.Conn = (*conn)(nil)

func (c *conn) init(h handle, err error) {
	if err != nil {
		c.hsErr = err
		c.b = &box{}
		return
	}
	c.b = &box{h: h}
	runtime.AddCleanup(c, (*box).free, c.b)
}

func (c *conn) NetConn() net.Conn                  { return c.nc }
func (c *conn) LocalAddr() net.Addr                { return c.nc.LocalAddr() }
func (c *conn) RemoteAddr() net.Addr               { return c.nc.RemoteAddr() }
func (c *conn) SetDeadline(t time.Time) error      { return c.nc.SetDeadline(t) }
func (c *conn) SetReadDeadline(t time.Time) error  { return c.nc.SetReadDeadline(t) }
func (c *conn) SetWriteDeadline(t time.Time) error { return c.nc.SetWriteDeadline(t) }

// Handshake runs the handshake; see tlsbackend.Conn.
func (c *conn) Handshake(ctx context.Context) error {
	if c.hsDone.Load() {
		return nil
	}
	var stop func() bool
	if ctx.Done() != nil {
		// As crypto/tls: an ended context closes the conn, which
		// interrupts the socket I/O of the handshake, whether this call
		// runs it or waits for one under way (a first Read's).
		stop = context.AfterFunc(ctx, func() { c.nc.Close() })
	}
	c.hsMu.Lock()
	defer c.hsMu.Unlock()
	var err error
	switch {
	case c.hsDone.Load():
	case c.hsErr != nil:
		err = c.hsErr
	case c.closed.Load():
		err = net.ErrClosed
	default:
		if err = c.handshake(); err != nil {
			c.hsErr = err
		} else {
			c.hsDone.Store(true)
		}
	}
	if stop != nil && !stop() {
		err = fmt.Errorf("openssl: handshake: %w", ctx.Err())
		if !c.hsDone.Load() {
			c.hsErr = err
		}
	}
	return err
}

func (c *conn) handshake() error {
	var in []byte
	release := noRelease
	defer func() { release() }()
	for step := 0; ; step++ {
		c.mu.Lock()
		h := c.b.h
		if h == nil {
			c.mu.Unlock()
			return net.ErrClosed
		}
		// A server has nothing to do before the ClientHello: no C call
		// (a cgo call costs more than its own time with one P, see
		// uring.Ring.Enter).
		code := mlkWantRead
		if c.client != nil || step > 0 {
			code = cHandshake(h, in)
		}
		in = nil
		release()
		release = noRelease
		wp, more, _ := cPending(h)
		var err error
		switch code {
		case mlkErr:
			err = cErr(h)
		case mlkDone:
			c.st, c.peer = cState(h)
			c.more = more
		}
		c.takeSessionLocked(h)
		c.mu.Unlock()
		runtime.KeepAlive(c)
		// Flush first: on failure the SSL has queued an alert for the peer.
		if wp > 0 {
			if ferr := c.flush(); ferr != nil && err == nil {
				err = ferr
			}
		}
		if code != mlkWantRead {
			return err
		}
		var rerr error
		in, release, rerr = c.recv()
		if len(in) == 0 && rerr != nil {
			if rerr == io.EOF {
				rerr = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("openssl: handshake: %w", rerr)
		}
	}
}

// borrower is the zero-copy read of the io_uring runtime's connections
// (netio.Borrower, which this package cannot import).
type borrower interface {
	ReadBorrow() (buf []byte, release func(), err error)
}

func noRelease() {}

// rbufPool holds the read buffers of conns over TCP sockets of Go's
// netpoller (see recv).
var rbufPool = sync.Pool{New: func() any { b := make([]byte, rbufSize); return &b }}

// recv reads the next ciphertext from nc, and release gives in back once
// the SSL has taken the bytes. The conn holds no read buffer while it
// waits, so an idle one costs no more than its SSL:
//   - nc lends its receive buffers (the io_uring runtime): in is the
//     kernel-filled buffer itself;
//   - nc is a *net.TCPConn (the epoll runtime): recv waits for input in the
//     netpoller through the socket's syscall.RawConn (deadlines hold) and
//     only then takes a buffer from a pool;
//   - any other conn: in is rbuf, allocated at the first read.
//
// As with Read, a read error can come with bytes; it then comes back on
// the next call.
func (c *conn) recv() (in []byte, release func(), err error) {
	if nc, ok := c.nc.(borrower); ok {
		return nc.ReadBorrow()
	}
	if c.sock != nil {
		return c.recvRaw()
	}
	if c.rbuf == nil {
		c.rbuf = make([]byte, rbufSize)
	}
	n, err := c.nc.Read(c.rbuf)
	return c.rbuf[:n], noRelease, err
}

// recvRaw is recv on a TCP socket of Go's netpoller, through sock. The
// callback that gives the buffer back is made once per conn, so a read
// allocates nothing.
func (c *conn) recvRaw() (in []byte, release func(), err error) {
	bp, n, err := c.sock.ReadPooled(&rbufPool)
	if bp == nil {
		return nil, noRelease, err
	}
	if c.putLent == nil {
		c.putLent = func() {
			rbufPool.Put(c.lent)
			c.lent = nil
		}
	}
	c.lent = bp
	return (*bp)[:n], c.putLent, err
}

// takeSessionLocked moves a session the server gave into the client cache.
func (c *conn) takeSessionLocked(h handle) {
	if c.client == nil || c.client.cache == nil {
		return
	}
	if s := cTakeSession(h); s != nil {
		c.client.cache.put(c.sessKey, s)
	}
}

// Read returns plaintext. Typically one C call and one socket read; none of
// the latter when the SSL still holds plaintext or whole records.
func (c *conn) Read(p []byte) (int, error) {
	if err := c.Handshake(context.Background()); err != nil {
		return 0, err
	}
	if len(p) == 0 {
		return 0, nil
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.rerr != nil {
		return 0, c.rerr
	}
	var in []byte
	release := noRelease
	defer func() { release() }()
	try := c.more
	for {
		if !try {
			var err error
			in, release, err = c.recv()
			if len(in) == 0 {
				release()
				release = noRelease
				if err == nil {
					continue
				}
				if err == io.EOF {
					// As crypto/tls: EOF at a record boundary is a
					// clean end, inside a record it is not.
					if c.partial {
						err = io.ErrUnexpectedEOF
					}
					c.rerr = err
				}
				return 0, err
			}
			// A read error with data comes back on the next read.
		}
		try = false
		c.mu.Lock()
		h := c.b.h
		if h == nil {
			c.mu.Unlock()
			return 0, net.ErrClosed
		}
		r := cRead(h, in, p)
		in = nil
		release()
		release = noRelease
		wp, more, partial := cPending(h)
		c.more, c.partial = more, partial
		var err error
		if r == mlkErr {
			err = cErr(h)
		}
		c.takeSessionLocked(h)
		c.mu.Unlock()
		runtime.KeepAlive(c)
		if wp > 0 { // a reply to a post-handshake message (key update)
			if ferr := c.flush(); ferr != nil && err == nil && r <= 0 {
				err = ferr
			}
		}
		switch {
		case r > 0:
			return r, nil
		case r == mlkEOF:
			c.rerr = io.EOF
			return 0, io.EOF
		case r == mlkErr:
			c.rerr = err
			return 0, err
		}
	}
}

// Buffered tells a reader between its Reads whether the next one returns
// without waiting for the network, as the HTTP proxy asks its upstream
// connections before it flushes what it passed on (http1.BufferedSource):
// the plaintext the SSL holds, the ciphertext its read BIO holds, and what
// nc reports received and not yet read (the io_uring runtime's conns, no
// system call). Bytes of ciphertext count as if they were plaintext: the
// count is a guide, and 0 means a Read would wait. 0 also while a Read is
// at work.
func (c *conn) Buffered() int {
	if !c.hsDone.Load() || !c.rmu.TryLock() {
		return 0
	}
	defer c.rmu.Unlock()
	n := 0
	c.mu.Lock()
	if h := c.b.h; h != nil {
		n = max(int(h.plain_pending), 0) + int(h.rpending)
	}
	c.mu.Unlock()
	runtime.KeepAlive(c)
	if nb, ok := c.nc.(interface{ Buffered() int }); ok {
		n += nb.Buffered()
	}
	return n
}

// readNotifier is the io_uring runtime's wait for input without a
// goroutine (netio.ReadNotifier).
type readNotifier interface{ NotifyReadable(f func()) bool }

// NotifyReadable lets an idle conn wait for input without a goroutine when
// nc can (the io_uring runtime): it arranges for f to run once, on a new
// goroutine, when nc has input, and reports whether it did. It does not
// when a Read would not wait for nc (the SSL holds plaintext or whole
// records, or the read side ended), when a Read is at work, or before the
// handshake; the caller reads then. A caller parking the conn calls it on
// every runtime: the SSL's memory BIOs give their buffers back first, so
// that with RELEASE_BUFFERS and recv an idle conn costs only its SSL.
func (c *conn) NotifyReadable(f func()) bool {
	if !c.hsDone.Load() || !c.rmu.TryLock() {
		return false
	}
	defer c.rmu.Unlock()
	if c.more || c.rerr != nil {
		return false
	}
	c.trim()
	rn, ok := c.nc.(readNotifier)
	return ok && rn.NotifyReadable(f)
}

// trim frees the buffers of the SSL's empty memory BIOs. A Read does not
// call it before waiting: that would be a C call more per read.
func (c *conn) trim() {
	c.mu.Lock()
	if h := c.b.h; h != nil {
		cTrim(h)
	}
	c.mu.Unlock()
	runtime.KeepAlive(c)
}

// Write encrypts p in chunks of up to 64 KiB: per chunk one C call and one
// socket write.
func (c *conn) Write(p []byte) (int, error) {
	c.writing.Add(1)
	defer c.writing.Add(-1)
	// Close stores closed before it looks at writing: either it sees this
	// Write and leaves close_notify out, or this Write sees it closed and
	// does not take wmu (Close would wait for it, behind a peer that may
	// have stopped reading).
	if c.closed.Load() {
		return 0, net.ErrClosed
	}
	if err := c.Handshake(context.Background()); err != nil {
		return 0, err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return 0, c.werr
	}
	bp := wbufPool.Get().(*[]byte)
	defer wbufPool.Put(bp)
	buf := *bp
	done := 0
	for done < len(p) {
		chunk := p[done:min(len(p), done+writeChunk)]
		c.mu.Lock()
		h := c.b.h
		if h == nil {
			c.mu.Unlock()
			return done, net.ErrClosed
		}
		n := cWrite(h, chunk, buf)
		wp, _, _ := cPending(h)
		var err error
		if n == mlkErr {
			err = cErr(h)
		}
		c.mu.Unlock()
		runtime.KeepAlive(c)
		if err != nil {
			c.werr = err
			return done, err
		}
		if n > 0 {
			if _, err := c.send(buf[:n]); err != nil {
				c.werr = err
				return done, err
			}
		}
		if wp > 0 {
			if err := c.flushLocked(buf); err != nil {
				return done, err
			}
		}
		done += len(chunk)
	}
	return done, nil
}

// send writes ciphertext to nc; the caller holds wmu. On a *net.TCPConn
// (the epoll runtime) it makes its system calls raw, as recv does (see
// package rawsock).
func (c *conn) send(p []byte) (int, error) {
	if c.sock != nil {
		return c.sock.Write(p)
	}
	return c.nc.Write(p)
}

// flush writes what the SSL queued for the peer.
func (c *conn) flush() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	bp := wbufPool.Get().(*[]byte)
	defer wbufPool.Put(bp)
	return c.flushLocked(*bp)
}

func (c *conn) flushLocked(buf []byte) error {
	if c.werr != nil {
		return c.werr
	}
	for {
		c.mu.Lock()
		h := c.b.h
		if h == nil {
			c.mu.Unlock()
			return net.ErrClosed
		}
		n := cDrain(h, buf)
		wp, _, _ := cPending(h)
		c.mu.Unlock()
		runtime.KeepAlive(c)
		if n > 0 {
			if _, err := c.send(buf[:n]); err != nil {
				c.werr = err
				return err
			}
		}
		if wp == 0 || n == 0 {
			return nil
		}
	}
}

var errShutdown = errors.New("openssl: protocol is shut down")

// closeNotify queues close_notify and sends it, bounded by 5 s as in
// crypto/tls.
func (c *conn) closeNotify() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return c.werr
	}
	c.mu.Lock()
	h := c.b.h
	if h == nil {
		c.mu.Unlock()
		return net.ErrClosed
	}
	code := cShutdown(h)
	var err error
	if code == mlkErr {
		err = cErr(h)
	}
	c.mu.Unlock()
	runtime.KeepAlive(c)
	c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	bp := wbufPool.Get().(*[]byte)
	defer wbufPool.Put(bp)
	if ferr := c.flushLocked(*bp); ferr != nil && err == nil {
		err = ferr
	}
	if c.werr == nil {
		c.werr = errShutdown
	}
	return err
}

// CloseWrite sends close_notify; the conn stays readable.
func (c *conn) CloseWrite() error {
	if !c.hsDone.Load() {
		return errors.New("openssl: CloseWrite before the handshake")
	}
	return c.closeNotify()
}

// Close sends close_notify (unless the handshake did not complete or a
// Write is in flight, whose blocking it would share), closes nc and frees
// the SSL.
func (c *conn) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return net.ErrClosed
	}
	var alertErr error
	if c.hsDone.Load() && c.writing.Load() == 0 {
		// Bound the wait for wmu too: a Read may hold it, flushing a
		// reply to the peer's key update.
		c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
		alertErr = c.closeNotify()
		if errors.Is(alertErr, errShutdown) {
			alertErr = nil // CloseWrite already sent it
		}
	}
	err := c.nc.Close()
	c.mu.Lock()
	c.b.free()
	c.mu.Unlock()
	if err != nil {
		return err
	}
	return alertErr
}

// fetchPeerLocked parses the peer's chain into st once.
func (c *conn) fetchPeerLocked() {
	if !c.peer || c.peerOK || c.b.h == nil {
		return
	}
	c.peerOK = true
	if certs, err := cPeerChain(c.b.h); err == nil {
		c.st.PeerCertificates = certs
	}
}

// ConnectionState describes the connection. PeerCertificates are parsed on
// the first call, which must come before Close to see them.
func (c *conn) ConnectionState() tlsbackend.ConnectionState {
	if !c.hsDone.Load() {
		return tlsbackend.ConnectionState{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fetchPeerLocked()
	runtime.KeepAlive(c)
	st := c.st
	st.PeerCertificates = append([]*x509.Certificate(nil), st.PeerCertificates...)
	return st
}
