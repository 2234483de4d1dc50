// Package rawsock reads and writes the socket of a *net.TCPConn with raw
// system calls, waiting in Go's netpoller as the conn's own Read and Write
// do (deadlines and Close hold the same way).
//
// Why: Go's Read and Write make their system calls through syscall.Syscall,
// which tells the scheduler it is entering a system call. When every P was
// idle, Go's sysmon thread sleeps, and such a call wakes it; it then polls
// every 20 µs for a millisecond or more, each poll a context switch on the
// worker's own CPU (a Monolake worker has one P and is pinned). A worker
// that goes idle between short connections (TLS handshakes) wakes sysmon
// several times per connection: on the epoll runtime that was a fifth of
// the worker's CPU time in handshake-heavy runs. A read or write of a
// non-blocking socket never blocks, so it needs no scheduler hand-off; the
// TLS backends send their sockets' I/O through here on that runtime.
package rawsock

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// Socket is the raw I/O of one *net.TCPConn. Its Read and Write may be
// called concurrently with each other, as the conn's.
type Socket struct {
	c  *net.TCPConn
	rc syscall.RawConn

	rmu   sync.Mutex // one Read at a time: the callback's state below
	rp    []byte
	pool  *sync.Pool // ReadPooled's: rp comes from it once there is input
	lent  *[]byte    // the buffer taken from pool
	rn    int
	rerr  error
	readf func(fd uintptr) bool

	wmu    sync.Mutex // one Write at a time
	wp     []byte
	wn     int
	werr   error
	writef func(fd uintptr) bool
}

// New returns the raw I/O of c, or nil when c is not a *net.TCPConn (or
// gives no syscall.RawConn); the caller uses c itself then.
func New(c net.Conn) *Socket {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	s := &Socket{c: tc, rc: rc}
	s.readf = s.readFD
	s.writef = s.writeFD
	return s
}

// Read reads into p as (*net.TCPConn).Read does, with the same errors.
func (s *Socket) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.rmu.Lock()
	defer s.rmu.Unlock()
	s.rp = p
	n, err := s.read()
	s.rp = nil
	return n, err
}

// ReadPooled is Read into a buffer of pool's (a *[]byte), taken only once
// the socket has input, so that a reader waiting holds none. The caller
// gives back the buffer returned, which is nil when nothing was read.
func (s *Socket) ReadPooled(pool *sync.Pool) (bp *[]byte, n int, err error) {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	s.pool = pool
	n, err = s.read()
	bp = s.lent
	s.pool, s.lent = nil, nil
	if bp != nil && n <= 0 {
		pool.Put(bp)
		bp = nil
	}
	return bp, n, err
}

// read runs the read callback through the RawConn and returns its result
// as the conn's own Read would. rmu is held.
func (s *Socket) read() (int, error) {
	s.rn, s.rerr = 0, nil
	err := s.rc.Read(s.readf)
	if err == nil {
		if s.rerr == nil && s.rn == 0 {
			return 0, io.EOF
		}
		if s.rerr != nil {
			err = os.NewSyscallError("read", s.rerr)
		}
	}
	if err != nil {
		return max(s.rn, 0), s.opErr("read", err)
	}
	return s.rn, nil
}

// readFD is the RawConn's read callback: false asks the netpoller to wait
// for input. With a pool, a buffer is taken from it for each try and kept
// only when the socket had something.
func (s *Socket) readFD(fd uintptr) bool {
	p := s.rp
	var bp *[]byte
	if s.pool != nil {
		bp = s.pool.Get().(*[]byte)
		p = *bp
	}
	s.rn, s.rerr = ReadFD(fd, p)
	if s.rerr == syscall.EAGAIN {
		if bp != nil {
			s.pool.Put(bp)
		}
		s.rerr = nil
		return false
	}
	s.lent = bp
	return true
}

// ReadFD is read(2) of a non-blocking fd with a raw system call, retried
// on EINTR; EAGAIN comes back as such. For a RawConn's read callback.
func ReadFD(fd uintptr, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		if e == 0 {
			return int(n), nil
		}
		if e != syscall.EINTR {
			return -1, e
		}
	}
}

// Write writes all of p, or returns an error saying why not, as
// (*net.TCPConn).Write does.
func (s *Socket) Write(p []byte) (int, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.wp, s.wn, s.werr = p, 0, nil
	err := s.rc.Write(s.writef)
	n := s.wn
	s.wp = nil
	if err == nil && s.werr != nil {
		err = os.NewSyscallError("write", s.werr)
	}
	if err != nil {
		return n, s.opErr("write", err)
	}
	return n, nil
}

// writeFD is the RawConn's write callback: false asks the netpoller to
// wait until the socket takes more.
func (s *Socket) writeFD(fd uintptr) bool {
	for s.wn < len(s.wp) {
		rest := s.wp[s.wn:]
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&rest[0])), uintptr(len(rest)))
		switch e {
		case 0:
			s.wn += int(n)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			s.werr = e
			return true
		}
	}
	return true
}

// opErr wraps err as the conn's own Read and Write do: a RawConn's error is
// already a *net.OpError (for a deadline, a closed conn), named "raw-read"
// or "raw-write".
func (s *Socket) opErr(op string, err error) error {
	if oe, ok := err.(*net.OpError); ok {
		err = oe.Err
	}
	return &net.OpError{Op: op, Net: "tcp", Source: s.c.LocalAddr(), Addr: s.c.RemoteAddr(), Err: err}
}
