//go:build uring && cgo

package uring

/*
#cgo CFLAGS: -O2 -Wall
#cgo LDFLAGS: -luring
#include <stdlib.h>
#include "../csrc/mlk_uring.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Available reports that this build has the io_uring binding.
const Available = true

// The Go mirrors must match the C layouts.
var (
	_ [unsafe.Sizeof(CQE{}) - unsafe.Sizeof(C.struct_mlk_cqe{})]byte
	_ [unsafe.Sizeof(C.struct_mlk_cqe{}) - unsafe.Sizeof(CQE{})]byte
	_ [64 - unsafe.Sizeof(C.struct_mlk_op{})]byte
	_ [unsafe.Sizeof(C.struct_mlk_op{}) - 64]byte
)

// ErrClosed is returned by calls on a closed Ring.
var ErrClosed = errors.New("uring: ring closed")

// Ring is one io_uring instance with its batch of queued operations.
//
// A Ring is not safe for concurrent use: the goroutine that owns it (or
// whoever holds the owner's lock) queues operations and calls Enter. With
// Params.SingleIssuer that goroutine must also stay on one OS thread.
type Ring struct {
	c       *C.struct_mlk_ring // C memory: liburing's state, side table, CQE array
	ops     []C.struct_mlk_op  // the batch, over C memory (c.ops)
	addrs   []C.struct_mlk_addr
	n       int   // queued operations in ops[:n]
	cqes    []CQE // over c.cqes
	flags   SetupFlags
	bufs    map[uint16]*BufRing
	v       ringView // for rounds prepared in Go (see goRound)
	cRounds uint64   // see Stats.CRounds
}

// New sets up a ring. It tries the best flags first (see Params) and falls
// back to fewer when the kernel answers EINVAL; Flags tells what it settled
// on. It makes one io_uring_setup(2) per attempt, plus the mmaps of the rings.
func New(p Params) (*Ring, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	c := (*C.struct_mlk_ring)(C.calloc(1, C.sizeof_struct_mlk_ring))
	if c == nil {
		return nil, fmt.Errorf("uring: allocating ring: %w", syscall.ENOMEM)
	}
	idle := C.uint(p.SQPollIdle.Milliseconds())
	if p.SQPollIdle > 0 && idle == 0 {
		idle = 1
	}
	var ret C.int
	var flags SetupFlags
	for _, f := range setupCandidates(p) {
		flags = f
		ret = C.mlk_ring_init(c, C.uint(p.entries()), C.uint(p.CQEntries), C.uint(f), idle, C.uint(max(p.MaxCompletions, 0)))
		if ret != -C.EINVAL {
			break
		}
	}
	if ret < 0 {
		C.free(unsafe.Pointer(c))
		return nil, errnoErr(fmt.Sprintf("setting up ring (entries %d, flags %v)", p.entries(), flags), int(ret))
	}
	r := &Ring{c: c, flags: SetupFlags(C.mlk_ring_flags(c))}
	r.cqes = unsafe.Slice((*CQE)(unsafe.Pointer(c.cqes)), int(c.cqcap))
	r.grow(int(C.mlk_ring_sq_entries(c)))
	r.initView()
	return r, nil
}

// grow makes room for at least n queued operations.
func (r *Ring) grow(n int) {
	n = max(n, 2*len(r.ops), 64)
	ops := C.realloc(unsafe.Pointer(r.c.ops), C.size_t(n)*C.sizeof_struct_mlk_op)
	addrs := C.realloc(unsafe.Pointer(r.c.addrs), C.size_t(n)*C.sizeof_struct_mlk_addr)
	if ops == nil || addrs == nil {
		panic("uring: out of C memory for the operation batch")
	}
	r.c.ops = (*C.struct_mlk_op)(ops)
	r.c.addrs = (*C.struct_mlk_addr)(addrs)
	r.ops = unsafe.Slice(r.c.ops, n)
	r.addrs = unsafe.Slice(r.c.addrs, n)
}

// Close tears the ring down: it unregisters the eventfd, unmaps the rings
// and the Ring's BufRings, and frees the batch. The kernel cancels operations
// still in flight asynchronously, after Close returns: memory given to them
// must stay valid (use Alloc'd memory, or cancel and drain before Close).
// Close makes one close(2) plus the munmaps.
func (r *Ring) Close() error {
	if r.c == nil {
		return ErrClosed
	}
	C.mlk_ring_exit(r.c)
	C.free(unsafe.Pointer(r.c.ops))
	C.free(unsafe.Pointer(r.c.addrs))
	C.free(unsafe.Pointer(r.c))
	r.c, r.ops, r.addrs, r.cqes, r.n, r.v = nil, nil, nil, nil, 0, ringView{}
	var err error
	for _, b := range r.bufs {
		err = errors.Join(err, b.unmap())
	}
	r.bufs = nil
	return err
}

// Fd returns the ring's file descriptor, or -1 after Close.
func (r *Ring) Fd() int {
	if r.c == nil {
		return -1
	}
	return int(r.c.ring.ring_fd)
}

// Flags returns the setup flags New settled on.
func (r *Ring) Flags() SetupFlags { return r.flags }

// Features returns the IORING_FEAT_* bits the kernel reported.
func (r *Ring) Features() Features {
	if r.c == nil {
		return 0
	}
	return Features(C.mlk_ring_features(r.c))
}

// Stats returns the Ring's counters.
func (r *Ring) Stats() Stats {
	if r.c == nil {
		return Stats{}
	}
	return Stats{Enters: uint64(r.c.calls), Syscalls: uint64(r.c.enters),
		SQEs: uint64(r.c.sqes), CQEs: uint64(r.c.cqes_seen), CRounds: r.cRounds}
}

// Pending returns the number of operations Enter has not yet submitted:
// those queued since the last Enter, and SQEs the kernel refused in it
// (EAGAIN, EBUSY), which stay in the SQ ring until the next one.
func (r *Ring) Pending() int {
	n := r.n
	if r.v.sqHead != nil {
		n += int(*r.v.sqeTail - atomic.LoadUint32(r.v.sqHead))
	}
	return n
}

// Enter submits every queued operation, waits until at least minComplete
// completions are ready or timeout passes (timeout <= 0: no limit; ignored
// when minComplete is 0), and returns the completions that are ready, at
// most Params.MaxCompletions; call it again with minComplete 0 to get more.
//
// Without waiting it makes one io_uring_enter(2) if there was anything to
// submit or the kernel asked for a task-work run, and none otherwise (with
// SQPOLL, none while the poller is awake); waiting makes one. A batch larger
// than the SQ ring costs one more per ring-full.
//
// A waiting Enter is one cgo call. One that does not wait makes no cgo
// call: Go prepares and publishes the SQEs and harvests the CQEs on the
// mapped rings (see goRound; a batch with connects, splices or timeouts,
// or under SQPOLL, is prepared by a short cgo call instead), and makes the
// io_uring_enter(2) as a raw system call. A raw system call keeps the
// goroutine's P: a non-waiting enter does not block, but submitting a batch
// of sends runs the TCP stack and can take longer than one sysmon tick, and
// a cgo call that long has its P handed to another thread (two thread
// switches per round with one P).
//
// A waiting Enter blocks its OS thread (Go hands the P to other goroutines
// meanwhile); a driver that must not hold a thread enters with minComplete 0
// and sleeps on RegisterEventfd's file instead.
//
// The returned slice aliases C memory and is valid until the next Enter or
// Close. A timeout or a signal ends the wait without an error: fewer than
// minComplete CQEs come back. On an error the operations not yet turned into
// SQEs stay queued for the next Enter; completions harvested before the
// error are still returned.
func (r *Ring) Enter(minComplete int, timeout time.Duration) ([]CQE, error) {
	if r.c == nil {
		return nil, ErrClosed
	}
	var ret C.int
	if minComplete <= 0 {
		ret = r.submit()
	} else {
		ret = C.mlk_ring_enter(r.c, C.uint(r.n), C.uint(minComplete), C.int64_t(timeout))
	}
	if done := int(r.c.consumed); done < r.n {
		copy(r.ops, r.ops[done:r.n])
		copy(r.addrs, r.addrs[done:r.n])
		r.n -= done
	} else {
		r.n = 0
	}
	cqes := r.cqes[:r.c.ncqe]
	if ret < 0 {
		return cqes, errnoErr("entering ring", int(ret))
	}
	return cqes, nil
}

// submit is Enter without waiting: see Enter.
func (r *Ring) submit() C.int {
	if r.goRound() {
		if r.c.enter_submit == 0 && r.c.enter_flags == 0 {
			return 0
		}
	} else {
		r.cRounds++
		if ret := C.mlk_ring_prep(r.c, C.uint(r.n)); ret <= 0 {
			return ret
		}
	}
	_, _, e := syscall.RawSyscall6(sysIOUringEnter, uintptr(r.c.ring.ring_fd),
		uintptr(r.c.enter_submit), 0, uintptr(r.c.enter_flags), 0, 0)
	if r.v.cqes != nil {
		r.goHarvest()
	} else {
		C.mlk_ring_harvest(r.c)
	}
	if e == 0 || e == syscall.EINTR {
		return 0
	}
	// EAGAIN or EBUSY (short of memory, CQ ring overflowing): the SQEs
	// stay in the SQ ring and go with the next enter.
	return -C.int(e)
}

// sysIOUringEnter is io_uring_enter(2)'s number (426 but on mips).
const sysIOUringEnter = unix.SYS_IO_URING_ENTER

// RegisterEventfd creates a non-blocking eventfd, registers it with the ring
// and returns it as an *os.File, which is in Go's netpoller: a goroutine
// blocked in its Read parks without holding a thread, and wakes when the
// ring posts a completion (a counter, so one wake may stand for many CQEs;
// read 8 bytes to reset it, then Enter with minComplete 0 to harvest).
// The caller owns the file and may close it at any time; a second call
// replaces the registration. Two syscalls (eventfd2, io_uring_register).
//
// With SingleIssuer (DEFER_TASKRUN) the eventfd fires when a completion is
// pending and the CQE itself is posted by the next Enter. TestEventfd checks
// the wake-up with each setup flag set, including the submitting goroutine
// locked to a thread that sleeps meanwhile.
func (r *Ring) RegisterEventfd() (*os.File, error) {
	if r.c == nil {
		return nil, ErrClosed
	}
	fd, _, e := syscall.Syscall(syscall.SYS_EVENTFD2, 0, syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
	if e != 0 {
		return nil, fmt.Errorf("uring: creating eventfd: %w", e)
	}
	if ret := C.mlk_ring_register_eventfd(r.c, C.int(fd)); ret < 0 {
		syscall.Close(int(fd))
		return nil, errnoErr("registering eventfd", int(ret))
	}
	return os.NewFile(fd, "uring-eventfd"), nil
}

// SetEventfdSignals turns the registered eventfd's signals off (on false)
// or back on (IORING_CQ_EVENTFD_DISABLED in the CQ ring's flags). A loop
// that harvests anyway turns them off, so that each completion posted does
// not also signal a file nobody waits on; it turns them on before it
// sleeps and asks Ready then, as a completion posted meanwhile signalled
// nothing. It reports false, doing nothing, where the kernel has no CQ
// flags (before 5.8). No syscall.
//
// Ready cannot see completions held as task work without TaskrunFlag;
// under DeferTaskrun nothing else posts them, so leave the signals on there.
func (r *Ring) SetEventfdSignals(on bool) bool {
	if r.c == nil || r.c.ring.cq.kflags == nil {
		return false
	}
	p := (*uint32)(unsafe.Pointer(r.c.ring.cq.kflags))
	f := atomic.LoadUint32(p)
	if on {
		f &^= C.IORING_CQ_EVENTFD_DISABLED
	} else {
		f |= C.IORING_CQ_EVENTFD_DISABLED
	}
	atomic.StoreUint32(p, f) // an exchange on amd64: later loads wait for it
	return true
}

// Ready reports whether Enter would harvest something: CQEs posted since
// the last Enter, completions held as task work for the ring's thread
// (IORING_SQ_TASKRUN, with TaskrunFlag), or an overflowed CQ ring. No
// syscall.
func (r *Ring) Ready() bool {
	if r.c == nil {
		return false
	}
	cq, sq := &r.c.ring.cq, &r.c.ring.sq
	if atomic.LoadUint32((*uint32)(unsafe.Pointer(cq.ktail))) != atomic.LoadUint32((*uint32)(unsafe.Pointer(cq.khead))) {
		return true
	}
	return cqNeedsFlush((*uint32)(unsafe.Pointer(sq.kflags)))
}

// cqNeedsFlush reports whether the SQ ring's flags (at sqFlags) say the
// kernel holds completions that only an entry posts: an overflowed CQ
// ring, or task work (IORING_SQ_TASKRUN). mlk_cq_needs_flush in csrc is
// the C side's.
func cqNeedsFlush(sqFlags *uint32) bool {
	return atomic.LoadUint32(sqFlags)&(C.IORING_SQ_CQ_OVERFLOW|C.IORING_SQ_TASKRUN) != 0
}

// RegisterBuffers registers bufs as the ring's fixed buffers, index i being
// bufs[i], for SendZCFixed. The kernel pins their pages until Close, so they
// must not be freed or reused for anything else before then: take them from
// Alloc. Pinned pages count against RLIMIT_MEMLOCK. One syscall.
func (r *Ring) RegisterBuffers(bufs [][]byte) error {
	if r.c == nil {
		return ErrClosed
	}
	if len(bufs) == 0 {
		return fmt.Errorf("uring: registering buffers: %w", syscall.EINVAL)
	}
	iov := (*[1 << 20]syscall.Iovec)(C.calloc(C.size_t(len(bufs)), C.size_t(unsafe.Sizeof(syscall.Iovec{}))))[:len(bufs):len(bufs)]
	defer C.free(unsafe.Pointer(&iov[0]))
	for i, b := range bufs {
		iov[i].Base = unsafe.SliceData(b)
		iov[i].SetLen(len(b))
	}
	if ret := C.mlk_ring_register_buffers(r.c, (*C.struct_iovec)(unsafe.Pointer(&iov[0])), C.uint(len(bufs))); ret < 0 {
		return errnoErr("registering buffers", int(ret))
	}
	return nil
}

// Probe reports the opcodes this ring's kernel supports. One syscall.
func (r *Ring) Probe() (*ProbeInfo, error) {
	if r.c == nil {
		return nil, ErrClosed
	}
	p := &ProbeInfo{Flags: r.flags, Features: r.Features()}
	buf := (*[256]C.uchar)(C.calloc(1, 256))
	defer C.free(unsafe.Pointer(buf))
	n := C.mlk_probe(r.c, &buf[0], 256)
	if n < 0 {
		return nil, errnoErr("probing opcodes", int(n))
	}
	p.LastOp = Opcode(n)
	for i := range buf {
		p.ops[i] = buf[i] != 0
	}
	return p, nil
}

// registerBufRing registers ring memory (mmap'd) as buffer group bgid.
func (r *Ring) registerBufRing(mem []byte, entries int, bgid uint16) error {
	if ret := C.mlk_ring_register_buf_ring(r.c, unsafe.Pointer(unsafe.SliceData(mem)), C.uint(entries), C.uint(bgid)); ret < 0 {
		return errnoErr(fmt.Sprintf("registering buffer ring %d", bgid), int(ret))
	}
	return nil
}

func (r *Ring) unregisterBufRing(bgid uint16) error {
	if r.c == nil {
		return nil // the ring's teardown dropped it
	}
	if ret := C.mlk_ring_unregister_buf_ring(r.c, C.uint(bgid)); ret < 0 {
		return errnoErr(fmt.Sprintf("unregistering buffer ring %d", bgid), int(ret))
	}
	return nil
}
