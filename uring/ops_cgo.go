//go:build uring && cgo

package uring

/*
#include "../csrc/mlk_uring.h"
*/
import "C"

import (
	"fmt"
	"math"
	"syscall"
	"time"
	"unsafe"
)

// Queueing methods write one descriptor into the batch; they make no cgo
// call and no syscall, and allocate only when the batch outgrows its C
// array. The operation starts at the next Enter. On a closed Ring they do
// nothing (Enter reports ErrClosed).

// Static checks that the opcode numbers match the kernel header.
var (
	_ = [1]struct{}{}[OpSendZC-C.IORING_OP_SEND_ZC]
	_ = [1]struct{}{}[OpSplice-C.IORING_OP_SPLICE]
	_ = [1]struct{}{}[OpShutdown-C.IORING_OP_SHUTDOWN]
	_ = [1]struct{}{}[OpLinkTimeout-C.IORING_OP_LINK_TIMEOUT]
	_ = [1]struct{}{}[OpRecv-C.IORING_OP_RECV]
	_ = [1]struct{}{}[OpClose-C.IORING_OP_CLOSE]
	_ = [1]struct{}{}[OpPollAdd-C.IORING_OP_POLL_ADD]
	_ = [1]struct{}{}[OpSendmsg-C.IORING_OP_SENDMSG]
)

func (r *Ring) push(opcode C.uint8_t, ud uint64, fd int) *C.struct_mlk_op {
	if r.c == nil {
		return &C.struct_mlk_op{} // dropped
	}
	if r.n == len(r.ops) {
		r.grow(r.n + 1)
	}
	op := &r.ops[r.n]
	r.n++
	*op = C.struct_mlk_op{user_data: C.uint64_t(ud), opcode: opcode, fd: C.int32_t(fd)}
	return op
}

func clampLen(n int) C.uint32_t { return C.uint32_t(min(uint64(max(n, 0)), math.MaxUint32)) }

func bufAddr(b []byte) C.uint64_t { return C.uint64_t(uintptr(unsafe.Pointer(unsafe.SliceData(b)))) }

// Nop queues an operation that completes at once with Res 0.
func (r *Ring) Nop(ud uint64) { r.push(C.MLK_OP_NOP, ud, -1) }

// Accept queues a one-shot accept on the listening socket fd; Res is the new
// connection's fd. flags are accept4(2) flags (SOCK_NONBLOCK, SOCK_CLOEXEC).
func (r *Ring) Accept(ud uint64, fd int, flags int) {
	r.push(C.MLK_OP_ACCEPT, ud, fd).flags = C.uint32_t(flags)
}

// AcceptMultishot queues a multishot accept on the listening socket fd: one
// CQE per accepted connection (Res is its fd) with CQE.More set while it
// stays armed. A CQE without More ends it (an error, or a cancel); queue it
// again to continue. Peer addresses are not returned: use getpeername(2).
func (r *Ring) AcceptMultishot(ud uint64, fd int, flags int) {
	r.push(C.MLK_OP_ACCEPT_MULTI, ud, fd).flags = C.uint32_t(flags)
}

// Recv queues a recv(2) of up to len(buf) bytes into buf; Res is the byte
// count, 0 at EOF. The kernel writes buf after Enter returns: buf must stay
// put until the CQE (see the package doc).
func (r *Ring) Recv(ud uint64, fd int, buf []byte, flags int) {
	op := r.push(C.MLK_OP_RECV, ud, fd)
	op.addr, op.len, op.flags = bufAddr(buf), clampLen(len(buf)), C.uint32_t(flags)
}

// RecvMultishot queues a multishot recv on fd into buffers of br: each CQE
// carries one filled buffer (CQE.BufID, Res bytes; read it with br.Get and
// give it back with br.Release) and More while the recv stays armed. No
// memory is tied to the connection while it is idle. The recv ends with a
// CQE without More: Res 0 at EOF, -ENOBUFS when br ran dry (release buffers
// and queue it again), another error, or a cancel.
func (r *Ring) RecvMultishot(ud uint64, fd int, br *BufRing, flags int) {
	op := r.push(C.MLK_OP_RECV_MULTI, ud, fd)
	op.buf_index, op.flags = C.uint16_t(br.group), C.uint32_t(flags)
}

// Send queues a send(2) of buf; Res is the byte count, which may be short.
// MSG_NOSIGNAL is always added. buf must stay put until the CQE.
func (r *Ring) Send(ud uint64, fd int, buf []byte, flags int) {
	op := r.push(C.MLK_OP_SEND, ud, fd)
	op.addr, op.len, op.flags = bufAddr(buf), clampLen(len(buf)), C.uint32_t(flags|syscall.MSG_NOSIGNAL)
}

// Sendmsg queues a sendmsg(2) of msg: its iovecs in order, as one write
// to the stream. Res is the byte count, which may be short. MSG_NOSIGNAL
// is always added. msg, its iovec array and the memory they point to must
// stay put until the CQE.
func (r *Ring) Sendmsg(ud uint64, fd int, msg *syscall.Msghdr, flags int) {
	op := r.push(C.MLK_OP_SENDMSG, ud, fd)
	op.addr, op.flags = C.uint64_t(uintptr(unsafe.Pointer(msg))), C.uint32_t(flags|syscall.MSG_NOSIGNAL)
}

// SendZC queues a zero-copy send of buf: the kernel transmits from buf's
// pages without copying them. It posts two CQEs with the same user_data:
// first the result (Res bytes or -errno, More set when a notification
// follows), then the notification (Notif set, Res 0) once the kernel no
// longer references buf. buf must stay put until the notification. It pays
// for large writes only; MSG_NOSIGNAL is always added.
func (r *Ring) SendZC(ud uint64, fd int, buf []byte, flags int) {
	op := r.push(C.MLK_OP_SEND_ZC, ud, fd)
	op.addr, op.len, op.flags = bufAddr(buf), clampLen(len(buf)), C.uint32_t(flags|syscall.MSG_NOSIGNAL)
}

// SendZCFixed is SendZC from registered buffer index (RegisterBuffers): buf
// must lie inside that buffer. The kernel skips pinning the pages per send.
func (r *Ring) SendZCFixed(ud uint64, fd int, buf []byte, index int, flags int) {
	op := r.push(C.MLK_OP_SEND_ZC, ud, fd)
	op.addr, op.len, op.flags = bufAddr(buf), clampLen(len(buf)), C.uint32_t(flags|syscall.MSG_NOSIGNAL)
	op.buf_index, op.mlk_flags = C.uint16_t(index), C.MLK_F_FIXED
}

// Connect queues a connect(2) of socket fd to sa (*syscall.SockaddrInet4,
// *SockaddrInet6 or *SockaddrUnix); Res is 0 or -errno. The address is
// copied: sa may be reused at once. It fails, queueing nothing, only for an
// unsupported address.
func (r *Ring) Connect(ud uint64, fd int, sa syscall.Sockaddr) error {
	var raw C.struct_mlk_addr
	n, err := putSockaddr((*[128]byte)(unsafe.Pointer(&raw.b[0])), sa)
	if err != nil {
		return err
	}
	op := r.push(C.MLK_OP_CONNECT, ud, fd)
	op.len = C.uint32_t(n)
	if r.c != nil {
		r.addrs[r.n-1] = raw
	}
	return nil
}

// Splice queues a splice(2) of up to n bytes from fdIn to fdOut, one of
// which must be a pipe (socket → pipe → socket moves bytes without passing
// through user memory); Res is the byte count, 0 at EOF. flags are
// SPLICE_F_* flags. Splicing from a socket runs in an io_uring worker thread
// while it blocks.
func (r *Ring) Splice(ud uint64, fdIn, fdOut int, n int, flags int) {
	op := r.push(C.MLK_OP_SPLICE, ud, fdIn)
	op.fd2, op.off, op.off2 = C.int32_t(fdOut), -1, -1
	op.len, op.flags = clampLen(n), C.uint32_t(flags)
}

// PollAdd queues a one-shot poll of fd for events (POLLIN, POLLOUT, ...,
// as in poll(2)); it completes with the ready events as Res, or -errno.
// The driver waits for readiness with it before a splice(2) of its own.
func (r *Ring) PollAdd(ud uint64, fd int, events uint32) {
	r.push(C.MLK_OP_POLL_ADD, ud, fd).flags = C.uint32_t(events)
}

// CloseFd queues a close(2) of fd. Operations in flight on fd are not
// cancelled by it: cancel them first (CancelFd).
func (r *Ring) CloseFd(ud uint64, fd int) { r.push(C.MLK_OP_CLOSE, ud, fd) }

// Shutdown queues a shutdown(2) of fd; how is syscall.SHUT_WR for CloseWrite.
func (r *Ring) Shutdown(ud uint64, fd int, how int) {
	r.push(C.MLK_OP_SHUTDOWN, ud, fd).flags = C.uint32_t(how)
}

// Cancel queues a cancel of the operation(s) queued with user_data target
// (all of them if all). The cancelled operation completes with -ECANCELED
// (or its own result if it finished first); the cancel itself completes
// with Res 0, -ENOENT (nothing matched) or -EALREADY (too late to stop), or
// with the number cancelled when all is set.
func (r *Ring) Cancel(ud, target uint64, all bool) {
	op := r.push(C.MLK_OP_CANCEL, ud, -1)
	op.addr = C.uint64_t(target)
	if all {
		op.flags = C.IORING_ASYNC_CANCEL_ALL
	}
}

// CancelFd queues a cancel of the operation(s) on fd, as Cancel.
func (r *Ring) CancelFd(ud uint64, fd int, all bool) {
	op := r.push(C.MLK_OP_CANCEL_FD, ud, fd)
	if all {
		op.flags = C.IORING_ASYNC_CANCEL_ALL
	}
}

// Timeout queues a standalone timer: it completes with Res -ETIME after d
// (relative, monotonic clock). Cancel it with Cancel(…, ud, false).
func (r *Ring) Timeout(ud uint64, d time.Duration) {
	r.push(C.MLK_OP_TIMEOUT, ud, -1).off = C.int64_t(d)
}

// LinkTimeout bounds the operation queued just before it: if that one has
// not completed after d, it is cancelled (its CQE has -ECANCELED) and the
// timeout's own CQE has -ETIME; otherwise the timeout's CQE has -ECANCELED.
// Both CQEs always come. It must directly follow the operation it bounds,
// with no Enter in between; without one it is queued as a plain Timeout.
func (r *Ring) LinkTimeout(ud uint64, d time.Duration) {
	if r.n == 0 {
		r.Timeout(ud, d)
		return
	}
	r.ops[r.n-1].sqe_flags |= C.IOSQE_IO_LINK
	r.push(C.MLK_OP_LINK_TIMEOUT, ud, -1).off = C.int64_t(d)
}

// putSockaddr writes sa in its kernel layout into b and returns its length.
func putSockaddr(b *[128]byte, sa syscall.Sockaddr) (int, error) {
	switch sa := sa.(type) {
	case *syscall.SockaddrInet4:
		*(*uint16)(unsafe.Pointer(&b[0])) = syscall.AF_INET
		b[2], b[3] = byte(sa.Port>>8), byte(sa.Port)
		copy(b[4:8], sa.Addr[:])
		return syscall.SizeofSockaddrInet4, nil
	case *syscall.SockaddrInet6:
		*(*uint16)(unsafe.Pointer(&b[0])) = syscall.AF_INET6
		b[2], b[3] = byte(sa.Port>>8), byte(sa.Port)
		copy(b[8:24], sa.Addr[:])
		*(*uint32)(unsafe.Pointer(&b[24])) = sa.ZoneId
		return syscall.SizeofSockaddrInet6, nil
	case *syscall.SockaddrUnix:
		name := sa.Name
		if len(name) == 0 || len(name) >= 108 {
			return 0, fmt.Errorf("uring: connect: unix socket path of %d bytes: %w", len(name), syscall.EINVAL)
		}
		*(*uint16)(unsafe.Pointer(&b[0])) = syscall.AF_UNIX
		copy(b[2:], name)
		n := 2 + len(name)
		if name[0] == '@' { // abstract socket: leading NUL, no trailing one
			b[2] = 0
			return n, nil
		}
		return n + 1, nil
	default:
		return 0, fmt.Errorf("uring: connect: unsupported address %T: %w", sa, syscall.EAFNOSUPPORT)
	}
}
