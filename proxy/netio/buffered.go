package netio

import (
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Buffered reports how many received bytes a Read on c returns without
// waiting, as far as that is cheap to learn: the io_uring driver's conns
// count what their ring delivered and no reader took yet (no system call;
// the ring receives for a conn from its first Read on),
// sockets of the epoll driver ask the kernel for their receive queue
// (ioctl SIOCINQ, one system call), other conns (TLS, pipes) report 0.
// Only c's reader may call it, between its reads.
func Buffered(c net.Conn) int {
	switch c := c.(type) {
	case interface{ Buffered() int }:
		return c.Buffered()
	case *net.TCPConn:
		return inQueue(c)
	case *net.UnixConn:
		return inQueue(c)
	}
	return 0
}

// inQueue is SIOCINQ on c's socket; 0 when that fails. The ioctl is a
// raw system call: it never blocks, and a call through the scheduler's
// syscall hooks would wake its sysmon thread on an otherwise idle worker.
func inQueue(c syscall.Conn) int {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	var q inQ
	rc.Control(q.get)
	return int(q.n)
}

type inQ struct{ n int32 }

func (q *inQ) get(fd uintptr) {
	var v int32
	if _, _, e := unix.RawSyscall(unix.SYS_IOCTL, fd, unix.SIOCINQ, uintptr(unsafe.Pointer(&v))); e == 0 {
		q.n = v
	}
}

// Peek copies into p the first received bytes a Read on c would return,
// without consuming them, and reports whether c can tell: the io_uring
// driver's conns look at what their ring delivered (or, before their first
// Read, at the socket), sockets of the epoll driver peek at their receive
// queue (recv with MSG_PEEK, one system call); other conns (TLS, pipes)
// cannot tell. n is 0 when nothing was received yet, and also after the
// peer closed the stream (a Read says which). Unlike a Read, Peek may be
// called while a Write is at work, but not while another Read is.
func Peek(c net.Conn, p []byte) (n int, ok bool) {
	switch c := c.(type) {
	case interface{ Peek([]byte) int }:
		return c.Peek(p), true
	case *net.TCPConn:
		return peekSocket(c, p), true
	case *net.UnixConn:
		return peekSocket(c, p), true
	}
	return 0, false
}

// peekSocket is recv(MSG_PEEK|MSG_DONTWAIT) on c's socket; 0 when nothing
// is queued or the call fails.
func peekSocket(c syscall.Conn, p []byte) int {
	if len(p) == 0 {
		return 0
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	rc.Control(func(fd uintptr) {
		if k, _, err := unix.Recvfrom(int(fd), p, unix.MSG_PEEK|unix.MSG_DONTWAIT); err == nil && k > 0 {
			n = k
		}
	})
	return n
}
