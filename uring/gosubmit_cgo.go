//go:build uring && cgo

package uring

/*
#include "../csrc/mlk_uring.h"
*/
import "C"

import (
	"sync/atomic"
	"unsafe"
)

// A round that does not wait is prepared, published and harvested in Go,
// on the rings liburing mapped, without a cgo call: a cgo call is a system
// call for Go's scheduler, and the first one after the worker's only P was
// idle wakes the sysmon thread, which then polls every 20 us for a
// millisecond or more (perf on the worker at 50 keep-alive connections:
// sysmon used 15% of the CPU, woken from mlk_ring_prep). liburing still
// sets the ring up, registers, probes, and prepares what Go does not:
// connect, splice and the timeouts, whose SQEs point into per-slot side
// memory, and everything under SQPOLL. TestGoPrepMatchesLiburing checks
// that Go writes the bytes liburing's io_uring_prep_* would.

// goSQE is struct io_uring_sqe (64 bytes, without SQE128), by the fields
// the prepared operations use.
type goSQE struct {
	opcode      uint8
	flags       uint8
	ioprio      uint16
	fd          int32
	off         uint64 // off, addr2
	addr        uint64 // addr, splice_off_in
	len         uint32
	opFlags     uint32 // msg_flags, accept_flags, cancel_flags, poll32_events...
	userData    uint64
	bufIndex    uint16 // buf_index, buf_group
	personality uint16
	fileIndex   int32 // file_index, splice_fd_in
	addr3       uint64
	pad2        uint64
}

var (
	_ [unsafe.Sizeof(goSQE{}) - C.sizeof_struct_io_uring_sqe]byte
	_ [C.sizeof_struct_io_uring_sqe - unsafe.Sizeof(goSQE{})]byte
	_ [unsafe.Sizeof(CQE{}) - C.sizeof_struct_io_uring_cqe]byte
)

// ringView points into the SQ and CQ rings and liburing's state.
type ringView struct {
	sqHead, sqTail, sqFlags *uint32 // the kernel's
	sqeHead, sqeTail        *uint32 // liburing's
	sqMask, sqEntries       uint32
	sqes                    unsafe.Pointer
	cqHead, cqTail          *uint32
	cqMask                  uint32
	cqes                    unsafe.Pointer
}

// initView fills r.v, or leaves it empty under SQPOLL (the poller thread
// owns the SQ head; liburing handles its wake-ups) and the setups below.
func (r *Ring) initView() {
	// Go writes 64-byte SQEs and reads 16-byte CQEs, and never enters to
	// poll: rings set up otherwise go through C.
	const sqe128, cqe32 = 1 << 10, 1 << 11
	if r.flags&(SetupSQPoll|SetupIOPoll|sqe128|cqe32) != 0 {
		return
	}
	sq, cq := &r.c.ring.sq, &r.c.ring.cq
	r.v = ringView{
		sqHead: (*uint32)(unsafe.Pointer(sq.khead)), sqTail: (*uint32)(unsafe.Pointer(sq.ktail)),
		sqFlags: (*uint32)(unsafe.Pointer(sq.kflags)),
		sqeHead: (*uint32)(unsafe.Pointer(&sq.sqe_head)), sqeTail: (*uint32)(unsafe.Pointer(&sq.sqe_tail)),
		sqMask: uint32(sq.ring_mask), sqEntries: uint32(sq.ring_entries), sqes: unsafe.Pointer(sq.sqes),
		cqHead: (*uint32)(unsafe.Pointer(cq.khead)), cqTail: (*uint32)(unsafe.Pointer(cq.ktail)),
		cqMask: uint32(cq.ring_mask), cqes: unsafe.Pointer(cq.cqes),
	}
}

// goPreps reports whether Go prepares the op (see goPrep).
func goPreps(op *C.struct_mlk_op) bool {
	switch op.opcode {
	case C.MLK_OP_CONNECT, C.MLK_OP_SPLICE, C.MLK_OP_TIMEOUT, C.MLK_OP_LINK_TIMEOUT:
		return false
	}
	return op.opcode < C.MLK_OP_LAST
}

// goPrep writes op into sqe as mlk_prep in csrc/mlk_uring.c does with
// liburing 2.3's io_uring_prep_* helpers.
func goPrep(sqe *goSQE, op *C.struct_mlk_op) {
	*sqe = goSQE{fd: int32(op.fd), userData: uint64(op.user_data)}
	switch op.opcode {
	case C.MLK_OP_ACCEPT, C.MLK_OP_ACCEPT_MULTI:
		sqe.opcode = C.IORING_OP_ACCEPT
		sqe.opFlags = uint32(op.flags)
		if op.opcode == C.MLK_OP_ACCEPT_MULTI {
			sqe.ioprio = C.IORING_ACCEPT_MULTISHOT
		}
	case C.MLK_OP_RECV, C.MLK_OP_RECV_MULTI:
		sqe.opcode = C.IORING_OP_RECV
		sqe.opFlags = uint32(op.flags)
		if op.opcode == C.MLK_OP_RECV_MULTI {
			sqe.ioprio = C.IORING_RECV_MULTISHOT
			sqe.flags = C.IOSQE_BUFFER_SELECT
			sqe.bufIndex = uint16(op.buf_index)
		} else {
			sqe.addr, sqe.len = uint64(op.addr), uint32(op.len)
		}
	case C.MLK_OP_SEND:
		sqe.opcode = C.IORING_OP_SEND
		sqe.addr, sqe.len, sqe.opFlags = uint64(op.addr), uint32(op.len), uint32(op.flags)
	case C.MLK_OP_SENDMSG:
		sqe.opcode = C.IORING_OP_SENDMSG
		sqe.addr, sqe.len, sqe.opFlags = uint64(op.addr), 1, uint32(op.flags)
	case C.MLK_OP_SEND_ZC:
		sqe.opcode = C.IORING_OP_SEND_ZC
		sqe.addr, sqe.len, sqe.opFlags = uint64(op.addr), uint32(op.len), uint32(op.flags)
		if op.mlk_flags&C.MLK_F_FIXED != 0 {
			sqe.ioprio = C.IORING_RECVSEND_FIXED_BUF
			sqe.bufIndex = uint16(op.buf_index)
		}
	case C.MLK_OP_CLOSE:
		sqe.opcode = C.IORING_OP_CLOSE
	case C.MLK_OP_SHUTDOWN:
		sqe.opcode = C.IORING_OP_SHUTDOWN
		sqe.len = uint32(op.flags)
	case C.MLK_OP_CANCEL:
		sqe.opcode = C.IORING_OP_ASYNC_CANCEL
		sqe.fd, sqe.addr, sqe.opFlags = -1, uint64(op.addr), uint32(op.flags)
	case C.MLK_OP_CANCEL_FD:
		sqe.opcode = C.IORING_OP_ASYNC_CANCEL
		sqe.opFlags = uint32(op.flags) | C.IORING_ASYNC_CANCEL_FD
	case C.MLK_OP_POLL_ADD:
		sqe.opcode = C.IORING_OP_POLL_ADD
		sqe.opFlags = uint32(op.flags) // little-endian: no half-word swap
	default: // MLK_OP_NOP
		sqe.opcode, sqe.fd = C.IORING_OP_NOP, -1
	}
	sqe.flags |= uint8(op.sqe_flags)
}

// goRound is the first half of a round that does not wait, in Go: what
// mlk_ring_prep does. It reports false, having changed nothing, when the
// batch needs C (an op Go does not prepare, a batch larger than the free
// SQ entries, SQPOLL); otherwise the SQEs are published, the CQEs already
// posted harvested, and r.c.enter_submit and enter_flags say whether and
// how to enter.
func (r *Ring) goRound() bool {
	v := &r.v
	if v.sqes == nil {
		return false
	}
	ops := r.ops[:r.n]
	for i := range ops {
		if !goPreps(&ops[i]) {
			return false
		}
	}
	tail := *v.sqeTail
	if v.sqEntries-(tail-atomic.LoadUint32(v.sqHead)) < uint32(len(ops)) {
		return false
	}
	for i := range ops {
		goPrep((*goSQE)(unsafe.Add(v.sqes, uintptr(tail&v.sqMask)*unsafe.Sizeof(goSQE{}))), &ops[i])
		tail++
	}
	r.c.calls++
	r.c.sqes += C.uint64_t(len(ops))
	r.c.consumed = C.uint(len(ops))
	r.c.ncqe = 0
	if *v.sqeHead != tail {
		// The SQ array maps slot i to SQE i (liburing 2.3 fills it once).
		*v.sqeTail, *v.sqeHead = tail, tail
		atomic.StoreUint32(v.sqTail, tail)
	}
	submit := tail - atomic.LoadUint32(v.sqHead)
	r.goHarvest()
	var flags uint32
	if cqNeedsFlush(v.sqFlags) {
		flags |= C.IORING_ENTER_GETEVENTS
	}
	r.c.enter_submit, r.c.enter_flags = C.uint(submit), C.uint(flags)
	if submit != 0 || flags != 0 {
		r.c.enters++
	}
	return true
}

// goHarvest copies the posted CQEs after the r.c.ncqe already in r.cqes,
// as mlk_harvest does.
func (r *Ring) goHarvest() {
	v := &r.v
	head, tail := *v.cqHead, atomic.LoadUint32(v.cqTail)
	n, seen := int(r.c.ncqe), uint32(0)
	for ; head+seen != tail && n < len(r.cqes); seen++ {
		c := (*CQE)(unsafe.Add(v.cqes, uintptr((head+seen)&v.cqMask)*unsafe.Sizeof(CQE{})))
		if c.UserData == ^uint64(0) { // liburing's internal timeout (LIBURING_UDATA_TIMEOUT)
			continue
		}
		r.cqes[n] = *c
		n++
	}
	if seen > 0 {
		atomic.StoreUint32(v.cqHead, head+seen)
	}
	r.c.cqes_seen += C.uint64_t(n - int(r.c.ncqe))
	r.c.ncqe = C.uint(n)
}

// prepBoth prepares the one queued operation both ways, for
// TestGoPrepMatchesLiburing: liburing's SQE (mlk_prep_sqe) and Go's. It
// must be called on a ring that has submitted nothing, and dequeues the op.
func (r *Ring) prepBoth() (c, g goSQE, goPrepares bool) {
	C.mlk_prep_sqe(r.c, (*C.struct_io_uring_sqe)(unsafe.Pointer(&c)))
	goPrep(&g, &r.ops[0])
	goPrepares = goPreps(&r.ops[0])
	r.n = 0
	return c, g, goPrepares
}
