//go:build uring && cgo

package netio

import (
	"net"
	"os"
	"sync/atomic"
	"syscall"

	"github.com/monolake-go/monolake/uring"
)

// uringListener accepts with one multishot accept: one SQE serves every
// connection until an error ends it, and Accept re-arms it then.
type uringListener struct {
	d       *Uring
	id      uint64
	fd      int
	network string
	addr    net.Addr
	unlink  SocketFile // socket file removed by Close (no path for none)
	// nodelay says whether accepted TCP sockets inherit TCP_NODELAY from
	// the listening one (set on it at start): 0 not known yet, 1 they do,
	// -1 they do not and Accept sets it on each.
	nodelay atomic.Int32

	closed atomic.Bool
	ch     chan struct{} // wakes a parked Accept (cap 1)
	done   chan struct{} // closed by Close

	// Guarded by d.mu.
	q        []int32 // accepted descriptors not yet taken
	err      error   // the error that ended the multishot accept, reported once
	armed    bool
	armTid   uintptr // the thread that submitted the accept (0: not yet submitted)
	mcancel  bool    // its cancel is queued
	inflight int
	drained  chan struct{} // closed when inflight drops to 0 after Close
}

var _ net.Listener = (*uringListener)(nil)

func (l *uringListener) ud() uint64 { return l.id<<kindBits | kindAccept }

func (l *uringListener) completeLocked(kind uint64, c uring.CQE) {
	if c.Res >= 0 {
		if l.closed.Load() {
			syscall.Close(int(c.Res))
		} else {
			l.q = append(l.q, c.Res)
		}
	}
	if !c.More() {
		l.armed, l.mcancel = false, false
		l.inflight--
		if c.Res < 0 && c.Res != -int32(syscall.ECANCELED) {
			l.err = os.NewSyscallError("accept", syscall.Errno(-c.Res))
		}
		if l.inflight == 0 && l.drained != nil {
			close(l.drained)
			l.drained = nil
		}
	}
	wake(l.ch)
}

// Accept waits for the next connection. Accepted sockets are blocking (the
// ring polls them itself), close-on-exec, and TCP ones have TCP_NODELAY as
// in package net. An error that ended the multishot accept (EMFILE, say) is
// returned once, as a *net.OpError; the next Accept re-arms.
func (l *uringListener) Accept() (net.Conn, error) {
	d := l.d
	d.mu.Lock()
	for {
		if l.closed.Load() {
			d.mu.Unlock()
			return nil, l.opErr("accept", net.ErrClosed)
		}
		if len(l.q) > 0 {
			fd := int(l.q[0])
			l.q = l.q[1:]
			if len(l.q) > 0 || !l.armed {
				wake(l.ch) // another Accept may be parked, to take or re-arm
			}
			d.mu.Unlock()
			if l.network == "tcp" {
				l.setNoDelay(fd)
			}
			c, err := d.newConn(fd, l.network)
			if err != nil {
				syscall.Close(fd)
				return nil, l.opErr("accept", err)
			}
			c.laddr = l.connLocalAddr()
			return c, nil
		}
		if err := l.err; err != nil {
			l.err = nil
			wake(l.ch) // another parked Accept re-arms
			d.mu.Unlock()
			return nil, l.opErr("accept", err)
		}
		if !l.armed {
			d.ring.AcceptMultishot(l.ud(), l.fd, syscall.SOCK_CLOEXEC)
			l.armed, l.armTid = true, 0
			l.inflight++
			d.armedLn = append(d.armedLn, l)
			d.kickLocked()
		} else if !l.mcancel && l.armTid != 0 && l.armTid != d.tid {
			// As a conn's receive (see rearmIfMovedLocked): the kernel
			// accepts in task work of the thread that submitted the
			// accept, which Go may have left idle since; each connection
			// would first wake it. The cancel's completion wakes this
			// Accept, which re-arms from the loop's thread.
			d.cancelLocked(l.ud())
			l.mcancel = true
		}
		d.mu.Unlock()
		select {
		case <-l.ch:
		case <-l.done:
		}
		d.mu.Lock()
	}
}

// Close cancels the multishot accept, waits for the kernel to let go of the
// socket, closes connections accepted but not taken, and the socket.
func (l *uringListener) Close() error {
	d := l.d
	d.mu.Lock()
	if l.closed.Load() {
		d.mu.Unlock()
		return l.opErr("close", net.ErrClosed)
	}
	l.closed.Store(true)
	close(l.done)
	var drained chan struct{}
	if l.inflight > 0 {
		d.cancelLocked(l.ud())
		drained = make(chan struct{})
		l.drained = drained
	}
	d.mu.Unlock()
	if drained != nil {
		<-drained
	}
	d.mu.Lock()
	for _, fd := range l.q {
		syscall.Close(int(fd))
	}
	l.q = nil
	d.forgetLocked(l.id)
	d.mu.Unlock()
	err := syscall.Close(l.fd)
	l.unlink.Remove()
	if err != nil {
		return l.opErr("close", os.NewSyscallError("close", err))
	}
	return nil
}

func (l *uringListener) Addr() net.Addr { return l.addr }

// setNoDelay gives an accepted TCP socket TCP_NODELAY, as package net does.
// Linux copies it from the listening socket, where fileListener set it:
// the first accepted socket is asked, and the later ones cost no syscall
// when it had it.
func (l *uringListener) setNoDelay(fd int) {
	switch l.nodelay.Load() {
	case 1:
		return
	case 0:
		if v, err := syscall.GetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY); err == nil && v != 0 {
			l.nodelay.Store(1)
			return
		}
		l.nodelay.Store(-1)
	}
	syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
}

// connLocalAddr is the local address of the connections l accepts when it
// is l's own: a Unix socket's path, or a TCP address with a specific IP
// and port. Else (a wildcard address) nil: LocalAddr asks the socket.
func (l *uringListener) connLocalAddr() net.Addr {
	switch a := l.addr.(type) {
	case *net.TCPAddr:
		if a.IP != nil && !a.IP.IsUnspecified() && a.Port != 0 {
			return a
		}
	case *net.UnixAddr:
		return a
	}
	return nil
}

func (l *uringListener) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: l.network, Addr: l.addr, Err: err}
}
