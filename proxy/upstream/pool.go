// Package upstream keeps per-worker pools of idle keep-alive connections to
// upstreams and dials new ones with a connect timeout.
//
// A pooled connection the upstream has closed (or sent unexpected bytes on)
// is detected when it is taken from the pool and never used for a request:
// bytes there would be read as the next request's response, maybe another
// client's. The io_uring driver's connections know without a system call
// (their multishot receive sees bytes and the end as they come) and are
// checked every time. Sockets of the epoll driver take one non-blocking
// MSG_PEEK, spared for a connection back in the pool for less than 100 ms
// (see Get).
package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/monolake-go/monolake/proxy/netio"
)

// Defaults for a zero PoolConfig.
const (
	DefaultMaxIdlePerHost = 256
	DefaultIdleTimeout    = 60 * time.Second
	DefaultConnectTimeout = 5 * time.Second
)

// PoolConfig sets a Pool's limits; zero fields take the defaults.
type PoolConfig struct {
	MaxIdlePerHost int           // idle connections kept per address
	IdleTimeout    time.Duration // an idle connection older than this is closed
	ConnectTimeout time.Duration
	// Dial, when set, replaces net.Dialer (tests, other drivers).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Key names an upstream address: network and address.
type Key struct{ Network, Addr string }

func (k Key) String() string { return k.Network + "://" + k.Addr }

type idleConn struct {
	c      net.Conn
	since  time.Time
	verify bool // peek before reuse, however short its idle time (PutVerify)
}

// Pool is a set of idle connections by Key. It is safe for concurrent use.
type Pool struct {
	cfg    PoolConfig
	dialer net.Dialer

	mu     sync.Mutex
	idle   map[Key][]idleConn // newest last
	closed bool
	stop   chan struct{}
}

// NewPool returns an empty pool and starts its idle reaper.
func NewPool(cfg PoolConfig) *Pool {
	if cfg.MaxIdlePerHost == 0 {
		cfg.MaxIdlePerHost = DefaultMaxIdlePerHost
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	p := &Pool{cfg: cfg, idle: map[Key][]idleConn{}, stop: make(chan struct{})}
	p.dialer.Timeout = cfg.ConnectTimeout
	go p.reap()
	return p
}

// checkAfter is how long a connection may sit idle before Get peeks at it.
const checkAfter = 100 * time.Millisecond

// ErrClosed is returned by Get on a closed pool.
var ErrClosed = errors.New("upstream: pool closed")

// Get returns an idle connection to k that is still good, or dials a new
// one. reused tells which. A dial error wraps the cause with the address.
//
// An epoll socket back in the pool for less than checkAfter is handed out
// without its peek (a system call on each reuse cost a tenth of an epoll
// worker's keep-alive requests per CPU-second): the caller retries on a
// fresh connection when a reused one fails before any response byte, which
// covers a close in that window; bytes an upstream sent past its
// response's length, later than the response and within that window, are
// not seen (on io_uring they are). GetVerified and PutVerify check always.
func (p *Pool) Get(ctx context.Context, k Key) (c net.Conn, reused bool, err error) {
	return p.get(ctx, k, false)
}

// GetVerified is Get that always checks an idle connection with the peek,
// for requests that cannot be retried once sent (their body is consumed).
func (p *Pool) GetVerified(ctx context.Context, k Key) (c net.Conn, reused bool, err error) {
	return p.get(ctx, k, true)
}

func (p *Pool) get(ctx context.Context, k Key, verify bool) (c net.Conn, reused bool, err error) {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, false, ErrClosed
		}
		list := p.idle[k]
		if len(list) == 0 {
			p.mu.Unlock()
			break
		}
		ic := list[len(list)-1]
		list[len(list)-1] = idleConn{} // the array keeps no conn handed out
		p.idle[k] = list[:len(list)-1]
		p.mu.Unlock()
		idle := netio.Now().Sub(ic.since)
		always := idle >= checkAfter || verify || ic.verify
		if idle < p.cfg.IdleTimeout && usable(ic.c, always) {
			return ic.c, true, nil
		}
		ic.c.Close()
	}
	c, err = p.dial(ctx, k)
	return c, false, err
}

// Dial always opens a new connection (for a retry after a stale one).
func (p *Pool) dial(ctx context.Context, k Key) (net.Conn, error) {
	var c net.Conn
	var err error
	if p.cfg.Dial != nil {
		ctx, cancel := context.WithTimeout(ctx, p.cfg.ConnectTimeout)
		defer cancel()
		c, err = p.cfg.Dial(ctx, k.Network, k.Addr)
	} else {
		c, err = p.dialer.DialContext(ctx, k.Network, k.Addr)
	}
	if err != nil {
		return nil, fmt.Errorf("upstream: dialing %s: %w", k, err)
	}
	return c, nil
}

// Dial opens a new connection to k, bypassing the idle list.
func (p *Pool) Dial(ctx context.Context, k Key) (net.Conn, error) { return p.dial(ctx, k) }

// Put returns c to the pool for reuse. The caller must only Put a
// connection whose last exchange ended cleanly (response read whole, no
// Connection: close). Over the cap, or on a closed pool, c is closed.
func (p *Pool) Put(k Key, c net.Conn) { p.put(k, c, false) }

// PutVerify is Put for a connection whose peer may still send something
// unasked (a response that declared a body it was not to send, as to HEAD):
// the next Get peeks at it first, whenever that is, and closes it if bytes
// arrived meanwhile, which would be read as the next response.
func (p *Pool) PutVerify(k Key, c net.Conn) { p.put(k, c, true) }

func (p *Pool) put(k Key, c net.Conn, verify bool) {
	p.mu.Lock()
	if p.closed || len(p.idle[k]) >= p.cfg.MaxIdlePerHost {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.idle[k] = append(p.idle[k], idleConn{c: c, since: netio.Now(), verify: verify})
	p.mu.Unlock()
}

// Idle returns the number of idle connections to k.
func (p *Pool) Idle(k Key) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle[k])
}

// Close closes every idle connection; connections in use are closed by
// their users (Put after Close closes them).
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	close(p.stop)
	for _, list := range idle {
		for _, ic := range list {
			ic.c.Close()
		}
	}
	return nil
}

func (p *Pool) reap() {
	t := time.NewTicker(max(p.cfg.IdleTimeout/4, 50*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			var dead []net.Conn
			p.mu.Lock()
			for k, list := range p.idle {
				keep := list[:0]
				for _, ic := range list {
					if now.Sub(ic.since) >= p.cfg.IdleTimeout {
						dead = append(dead, ic.c)
					} else {
						keep = append(keep, ic)
					}
				}
				clear(list[len(keep):])
				p.idle[k] = keep
			}
			p.mu.Unlock()
			for _, c := range dead {
				c.Close()
			}
		}
	}
}

// usable reports whether an idle connection may carry a request: alive's
// answer when always is set, else what the conn knows without a system
// call (the io_uring driver's, see Stale).
func usable(c net.Conn, always bool) bool {
	if always {
		return alive(c)
	}
	s, ok := c.(interface{ Stale() bool })
	return !ok || !s.Stale()
}

// alive peeks at an idle connection without blocking: no data and no EOF
// means it is still good. Data on an idle HTTP connection is a protocol
// error, so that counts as dead too. One recvfrom syscall.
func alive(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true // cannot tell; the caller retries a failed first write
	}
	rc, err := sc.SyscallConn()
	if errors.Is(err, errors.ErrUnsupported) {
		// A driver without fds to peek at (io_uring): its conns know
		// without a syscall whether they went bad.
		if s, ok := c.(interface{ Stale() bool }); ok {
			return !s.Stale()
		}
		return true // cannot tell, as above
	}
	if err != nil {
		return false
	}
	var pk peek
	return rc.Control(pk.peek) == nil && pk.empty
}

// peek is a non-blocking recv with MSG_PEEK of one byte, as a raw system
// call: it never blocks, and one through the scheduler's syscall hooks
// would wake an idle worker's sysmon thread.
type peek struct{ empty bool }

func (pk *peek) peek(fd uintptr) {
	var b [1]byte
	_, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	pk.empty = e == syscall.EAGAIN || e == syscall.EWOULDBLOCK
}
