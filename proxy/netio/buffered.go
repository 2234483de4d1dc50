package netio

import (
	"net"
	"syscall"

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

// inQueue is SIOCINQ on c's socket; 0 when that fails.
func inQueue(c syscall.Conn) int {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	rc.Control(func(fd uintptr) {
		if v, err := unix.IoctlGetInt(int(fd), unix.SIOCINQ); err == nil {
			n = v
		}
	})
	return n
}
