//go:build uring && cgo

package netio

import (
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/monolake-go/monolake/uring"
	"golang.org/x/sys/unix"
)

// uringConn is a connection on the ring.
//
// Reads: one multishot recv per connection, armed by the first Read that
// finds nothing queued, fills buffers of the driver's shared buffer ring;
// the loop queues the completions on the connection and wakes the reader,
// which copies into p and gives the buffers back. An idle connection holds
// no buffer. When the buffer ring runs dry (ENOBUFS) the next Read is a
// one-shot recv into p, after which the multishot recv is re-armed. A
// connection holding maxQueued unread buffers pauses its recv (cancels it)
// until it is read.
//
// Writes: a Write of up to 16 KiB is copied into a buffer of the driver's
// and queued, and Write returns (writeBehind); the next Write waits for
// that send and returns its failure. A larger one is sent from the
// caller's slice, pinned, and the writer parks until the completion: the
// caller may reuse p as soon as Write returns. From ZCThreshold bytes, on
// TCP to another host and without a write deadline, the send is a SEND_ZC
// and the writer waits for its notification too.
//
// Deadlines are Go timers that wake the parked goroutine, which cancels its
// operation in flight; the multishot recv is not cancelled by a read
// deadline, the data it brings stays queued for the next Read.
type uringConn struct {
	d       *Uring
	id      uint64
	fd      int
	network string

	addrOnce     sync.Once
	laddr, raddr net.Addr

	closed   atomic.Bool
	nonblock atomic.Bool // O_NONBLOCK set (see setNonblock)

	rmu   sync.Mutex // held by Read, ReadBorrow, SpliceTo, WriteTo
	cur   []byte     // rmu: unread rest of buffer curID
	curID int        // rmu to read; rmu and d.mu to change (Stale reads it under d.mu): -1 for none
	rpin  runtime.Pinner

	wmu  sync.Mutex // held by Write, CloseWrite, and SpliceTo into this conn
	wpin runtime.Pinner
	zcOK int8 // wmu: 0 unknown, 1 SEND_ZC allowed, -1 not (local peer, or refused)

	tmu          sync.Mutex // guards the timers and the instants they are armed for
	rArmed       int64      // tmu: the deadline rtimer is armed for (monoOf), 0 when it is not
	wArmed       int64      // tmu: the same for wtim
	rdl, wdl     deadline
	rtimer, wtim *time.Timer

	// Guarded by d.mu.
	rq       []uring.CQE // received buffers not yet read
	rerr     error       // io.EOF or the errno that ended the stream
	armed    bool        // the multishot recv is in flight
	armTid   uintptr     // the thread that submitted it (thread.ID; 0: not yet submitted)
	mcancel  bool        // its cancel is queued
	nobufs   bool        // it ended with ENOBUFS: next Read is one-shot
	rs, ws   slot        // the read-side and write-side one-shot ops
	inflight int         // operations whose result is to come (not counting SEND_ZC notifications)
	drained  chan struct{}
	// closeDue: Close has returned while operations it does not wait for
	// were in flight; the last completion closes the socket
	// (finishCloseLocked).
	closeDue bool
	orphan   bool   // closed while a SEND_ZC notification is due: leave the table at it
	notify   func() // NotifyReadable's callback, pending
	behind   []byte // the buffer of a write-behind's send in flight (see writeBehind)
	linger   int8   // 1: Close let that send go on, until its completion (endLingerLocked)
	lingerT  *time.Timer
	lingerQ  int // the socket's unsent bytes at the last lingerCheck (-1: none yet)

	// Guarded by wmu: a write-behind's send whose result the next write
	// has to look at, and its length.
	wpend bool
	wlen  int
}

// slot is one one-shot operation at a time and the goroutine waiting for it.
type slot struct {
	ch        chan struct{} // wakes the waiter: completion, deadline, close (cap 1)
	busy      bool          // an operation is in flight
	cancelled bool          // its cancel is queued
	timedOut  bool          // for its deadline, which may have been moved since
	zc        bool          // SEND_ZC: done at the notification
	notif     bool          // SEND_ZC: the result came, the notification is due
	res       int32
}

var (
	_ net.Conn      = (*uringConn)(nil)
	_ Borrower      = (*uringConn)(nil)
	_ BufferGauge   = (*uringConn)(nil)
	_ SpliceToer    = (*uringConn)(nil)
	_ io.ReaderFrom = (*uringConn)(nil)
	_ io.WriterTo   = (*uringConn)(nil)
	_ ReadNotifier  = (*uringConn)(nil)
)

// newConn wraps a connected socket and registers it with the driver.
func (d *Uring) newConn(fd int, network string) (*uringConn, error) {
	c := &uringConn{d: d, fd: fd, network: network, curID: -1,
		rs: slot{ch: make(chan struct{}, 1)}, ws: slot{ch: make(chan struct{}, 1)}}
	d.mu.Lock()
	id, err := d.registerLocked(c)
	c.id = id
	d.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (c *uringConn) ud(kind uint64) uint64 { return c.id<<kindBits | kind }

func (c *uringConn) slotKind(s *slot) uint64 {
	if s == &c.rs {
		return kindRead
	}
	return kindWrite
}

// startLocked records that an operation was queued in s.
func (c *uringConn) startLocked(s *slot) {
	s.busy, s.cancelled, s.timedOut, s.notif, s.res = true, false, false, false, 0
	c.inflight++
	c.d.kickLocked()
}

func (c *uringConn) completeLocked(kind uint64, cqe uring.CQE) {
	d := c.d
	switch kind {
	case kindRecvMulti:
		if id, ok := cqe.BufID(); ok {
			if c.closed.Load() {
				d.br.Release(id)
			} else {
				c.rq = append(c.rq, cqe)
			}
		}
		if !cqe.More() {
			c.armed, c.mcancel = false, false
			c.inflight--
			switch e := syscall.Errno(-cqe.Res); {
			case cqe.Res == 0:
				c.rerr = io.EOF
			case cqe.Res > 0, e == syscall.ECANCELED:
			case e == syscall.ENOBUFS:
				c.nobufs = true
				d.br.RanDry()
			default:
				c.rerr = os.NewSyscallError("recv", e)
			}
		} else if len(c.rq) >= d.maxQueued && !c.mcancel {
			d.cancelLocked(c.ud(kindRecvMulti))
			c.mcancel = true
		}
		wake(c.rs.ch)
		if len(c.rq) > 0 || !c.armed {
			c.fireLocked()
		}
	case kindRead:
		c.rs.res, c.rs.busy = cqe.Res, false
		c.inflight--
		wake(c.rs.ch)
	case kindWrite:
		if cqe.Notif() {
			c.ws.busy, c.ws.notif = false, false
			wake(c.ws.ch)
			if c.orphan {
				d.forgetLocked(c.id)
			}
			return
		}
		c.ws.res = cqe.Res
		c.inflight--
		if c.behind != nil {
			d.putWBufLocked(c.behind)
			c.behind = nil
			if c.linger != 0 {
				c.endLingerLocked()
			}
		}
		if cqe.More() {
			// SEND_ZC: the kernel holds the buffer until the
			// notification, and so does the writer. Close does not
			// wait for it (see Close).
			c.ws.notif = true
		} else {
			c.ws.busy = false
			wake(c.ws.ch)
		}
	}
	c.signalDrainedLocked()
	c.finishCloseLocked()
}

// signalDrainedLocked wakes a Close waiting for the last operation in flight
// once there is none but those it does not wait for (see unwaitedLocked).
func (c *uringConn) signalDrainedLocked() {
	if c.drained != nil && c.inflight == c.unwaitedLocked() {
		close(c.drained)
		c.drained = nil
	}
}

// unwaitedLocked counts the operations in flight that Close does not wait
// for: the multishot recv, whose buffers are the driver's, and a
// write-behind's send it lets go on. Every other one works on its
// caller's memory until its completion.
func (c *uringConn) unwaitedLocked() int {
	n := c.lingeringLocked()
	if c.armed {
		n++
	}
	return n
}

// finishCloseLocked closes the socket and forgets the conn once Close has
// returned (closeDue) and the last operation it left in flight has
// completed, and returns close(2)'s error.
func (c *uringConn) finishCloseLocked() error {
	if !c.closeDue || c.inflight > 0 {
		return nil
	}
	c.closeDue = false
	if c.ws.notif {
		// A SEND_ZC whose bytes the peer has not acknowledged: the
		// socket can be closed (the kernel keeps sending them), but the
		// writer still waits for the notification before its buffer is
		// free. The driver's Close does not wait for that.
		c.orphan = true
		c.d.checkGoneLocked()
	} else {
		c.d.forgetLocked(c.id)
	}
	return closeRaw(c.fd)
}

// waitLocked waits until the operation in s completes and returns its
// result. A deadline passing (dl) or Close while it waits queues a cancel of
// the operation, and it still waits for the completion: the kernel may use
// the operation's buffer until then. d.mu is held on entry and released on
// return.
//
// The exception is a write-behind's send that Close let go on (see Close):
// it is Close's now, neither to cancel nor to wait for; the waiter (a
// CloseWrite or Write settling it) returns at once with ECANCELED, which
// after Close reads as net.ErrClosed. Cancelling it lost its bytes: a relay
// closed as idle while its last write waited for a slow reader sent FIN
// without them.
func (c *uringConn) waitLocked(s *slot, dl *deadline) int32 {
	d := c.d
	for s.busy {
		if s == &c.ws && c.closed.Load() && c.lingeringLocked() == 1 {
			d.mu.Unlock()
			return -int32(syscall.ECANCELED)
		}
		if !s.cancelled && (c.closed.Load() || expired(dl)) {
			d.cancelLocked(c.ud(c.slotKind(s)))
			s.cancelled, s.timedOut = true, !c.closed.Load()
		}
		d.mu.Unlock()
		<-s.ch
		d.mu.Lock()
	}
	res := s.res
	d.mu.Unlock()
	return res
}

// resultErr turns a failed one-shot result of the operation in s into
// Read's or Write's error. An operation cancelled because its deadline
// passed fails with os.ErrDeadlineExceeded even if the deadline was moved
// later before the cancel completed, as on net.TCPConn, where the wait has
// ended by then.
func (c *uringConn) resultErr(op, call string, s *slot, res int32, dl *deadline) error {
	switch {
	case c.closed.Load():
		return c.opErr(op, net.ErrClosed)
	case interrupted(res) && (s.timedOut || expired(dl)):
		return c.opErr(op, os.ErrDeadlineExceeded)
	}
	return c.opErr(op, os.NewSyscallError(call, syscall.Errno(-res)))
}

// interrupted reports whether res is how a cancelled operation ends:
// ECANCELED, or for one a kernel worker was running (a splice), EINTR or
// the kernel-internal ERESTARTSYS family leaking out of io-wq.
func interrupted(res int32) bool {
	switch syscall.Errno(-res) {
	case syscall.ECANCELED, syscall.EINTR, 512, 513, 514: // ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND
		return true
	}
	return false
}

// deadline is one of a conn's deadlines. Waiters look at passed, not at
// the clock: it is set when a deadline is set in the past, and when the
// deadline's timer finds it due, which then wakes them (as Go's netpoller
// marks a deadline that passed). Both are changed under the conn's tmu.
type deadline struct {
	at     atomic.Int64 // monoOf the deadline, 0 for none
	passed atomic.Bool
}

func expired(dl *deadline) bool { return dl != nil && dl.passed.Load() }

// armLocked arms the multishot recv if it is not in flight.
func (c *uringConn) armLocked() {
	if c.armed {
		return
	}
	c.d.ring.RecvMultishot(c.ud(kindRecvMulti), c.fd, c.d.br, 0)
	c.armed, c.armTid = true, 0
	c.inflight++
	c.d.armed = append(c.d.armed, c)
	c.d.kickLocked()
}

// rearmIfMovedLocked re-arms the multishot recv when it was submitted from
// another thread than the one now entering the ring. Without
// DEFER_TASKRUN the kernel completes a recv that had to wait for data in
// task work of the submitting thread: if Go has since moved the loop to
// another thread, every completion first wakes the old, idle thread, which
// then wakes the netpoller's, doubling the wake-up cost. A Read about to
// park re-arms from the current thread instead (a cancel and one SQE).
func (c *uringConn) rearmIfMovedLocked() {
	if c.armed && !c.mcancel && c.armTid != 0 && c.armTid != c.d.tid {
		c.d.cancelLocked(c.ud(kindRecvMulti))
		c.mcancel = true
	}
}

// errOneShot tells a reader to do a one-shot recv: the buffer ring ran dry.
var errOneShot = errors.New("netio: buffer ring exhausted")

// waitDataLocked waits until a received buffer is queued, with d.mu held
// (released while parked). It returns errOneShot when the buffer ring ran
// dry, or the error that ends the read.
func (c *uringConn) waitDataLocked() error {
	d := c.d
	for len(c.rq) == 0 {
		switch {
		case c.closed.Load():
			return c.opErr("read", net.ErrClosed)
		case c.rerr == io.EOF:
			return io.EOF
		case c.rerr != nil:
			return c.opErr("read", c.rerr)
		case expired(&c.rdl):
			return c.opErr("read", os.ErrDeadlineExceeded)
		case c.nobufs:
			c.nobufs = false
			return errOneShot
		}
		c.armLocked()
		c.rearmIfMovedLocked()
		d.mu.Unlock()
		<-c.rs.ch
		d.mu.Lock()
	}
	return nil
}

// popLocked takes the first queued buffer.
func (c *uringConn) popLocked() ([]byte, int) {
	cqe := c.rq[0]
	copy(c.rq, c.rq[1:])
	c.rq = c.rq[:len(c.rq)-1]
	buf, id, _ := c.d.br.Get(cqe)
	return buf, int(id)
}

// Read copies received bytes into p: first the rest of a partly read
// buffer, then every buffer already queued that fits, waiting only when
// there is none. It makes no syscall when data is queued.
func (c *uringConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.unlockReader()
	if c.closed.Load() {
		return 0, c.opErr("read", net.ErrClosed)
	}
	if expired(&c.rdl) {
		return 0, c.opErr("read", os.ErrDeadlineExceeded)
	}
	if len(p) == 0 {
		return 0, nil
	}
	n := 0
	if c.curID >= 0 {
		n = copy(p, c.cur)
		c.cur = c.cur[n:]
		if len(c.cur) > 0 {
			return n, nil
		}
	}
	d := c.d
	d.mu.Lock()
	if c.curID >= 0 {
		d.br.Release(uint16(c.curID))
		c.cur, c.curID = nil, -1
	}
	for n < len(p) {
		if len(c.rq) == 0 {
			if n > 0 {
				break
			}
			err := c.waitDataLocked()
			if err == errOneShot {
				return c.recvIntoLocked(p)
			}
			if err != nil {
				d.mu.Unlock()
				return 0, err
			}
		}
		buf, id := c.popLocked()
		k := copy(p[n:], buf)
		n += k
		if k < len(buf) {
			c.cur, c.curID = buf[k:], id
			break
		}
		d.br.Release(uint16(id))
	}
	d.mu.Unlock()
	return n, nil
}

// recvIntoLocked is the one-shot recv into p used while the buffer ring is
// dry. d.mu is held on entry and released on return.
func (c *uringConn) recvIntoLocked(p []byte) (int, error) {
	d := c.d
	c.rpin.Pin(unsafe.SliceData(p))
	defer c.rpin.Unpin()
	d.ring.Recv(c.ud(kindRead), c.fd, p, 0)
	c.startLocked(&c.rs)
	res := c.waitLocked(&c.rs, &c.rdl)
	switch {
	case res > 0:
		return int(res), nil
	case res == 0:
		d.mu.Lock()
		c.rerr = io.EOF
		d.mu.Unlock()
		return 0, io.EOF
	}
	return 0, c.resultErr("read", "recv", &c.rs, res, &c.rdl)
}

// ReadBorrow implements Borrower: it returns the next received buffer (or
// the rest of a partly read one) in place. See Borrower for the contract.
func (c *uringConn) ReadBorrow() ([]byte, func(), error) {
	c.rmu.Lock()
	defer c.unlockReader()
	if c.closed.Load() {
		return nil, noRelease, c.opErr("read", net.ErrClosed)
	}
	if expired(&c.rdl) {
		return nil, noRelease, c.opErr("read", os.ErrDeadlineExceeded)
	}
	d := c.d
	if c.curID >= 0 {
		buf, id := c.cur, c.curID
		d.mu.Lock() // Stale reads curID under d.mu alone
		c.cur, c.curID = nil, -1
		d.mu.Unlock()
		return buf, c.releaser(id), nil
	}
	d.mu.Lock()
	err := c.waitDataLocked()
	if err == errOneShot {
		p := make([]byte, d.bufSize)
		n, err := c.recvIntoLocked(p)
		return p[:n], noRelease, err
	}
	if err != nil {
		d.mu.Unlock()
		return nil, noRelease, err
	}
	buf, id := c.popLocked()
	d.mu.Unlock()
	return buf, c.releaser(id), nil
}

func noRelease() {}

// Buffered reports how many received bytes the next Read returns without
// waiting: the rest of a partly read buffer and the buffers queued. See
// netio.Buffered. While a Read is at work (another goroutine's) it reports
// 0 rather than wait for it.
func (c *uringConn) Buffered() int {
	if !c.rmu.TryLock() {
		return 0
	}
	defer c.unlockReader() // a Close meanwhile leaves cur to us
	n := len(c.cur)
	d := c.d
	d.mu.Lock()
	for _, cqe := range c.rq {
		n += max(int(cqe.Res), 0)
	}
	d.mu.Unlock()
	return n
}

// Peek copies the first received bytes into p without consuming them (see
// netio.Peek): the rest of a partly read buffer and the buffers queued, or,
// while the multishot receive is not armed (before the first Read, after
// a splice), what the socket holds. While a Read is at work it reports 0.
func (c *uringConn) Peek(p []byte) int {
	if len(p) == 0 || !c.rmu.TryLock() {
		return 0
	}
	defer c.unlockReader()
	n := 0
	if c.curID >= 0 {
		n = copy(p, c.cur)
	}
	d := c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, cqe := range c.rq {
		if n == len(p) {
			return n
		}
		buf, _, _ := d.br.Get(cqe)
		n += copy(p[n:], buf)
	}
	if n == 0 && !c.armed && c.rerr == nil && !c.closed.Load() {
		// Not closed, with d.mu held: the descriptor is still c's.
		if k, _, err := unix.Recvfrom(c.fd, p, unix.MSG_PEEK|unix.MSG_DONTWAIT); err == nil && k > 0 {
			n = k
		}
	}
	return n
}

// BuffersScarce implements BufferGauge.
func (c *uringConn) BuffersScarce() bool {
	d := c.d
	d.mu.Lock()
	scarce := 2*d.br.Out() >= d.br.Len()
	d.mu.Unlock()
	return scarce
}

func (c *uringConn) releaser(id int) func() {
	d := c.d
	return func() {
		d.mu.Lock()
		d.br.Release(uint16(id))
		d.mu.Unlock()
	}
}

// unlockReader releases rmu, first giving back the partly read buffer if c
// is closed. Close gives it back itself only when it can take rmu; if it
// closed c after the check here but tried rmu before the unlock, the check
// after the unlock sees c closed and does it.
func (c *uringConn) unlockReader() {
	c.dropCurIfClosed()
	c.rmu.Unlock()
	if c.closed.Load() && c.rmu.TryLock() {
		c.dropCurIfClosed()
		c.rmu.Unlock()
	}
}

// dropCurIfClosed gives back the partly read buffer of a closed conn; rmu
// is held.
func (c *uringConn) dropCurIfClosed() {
	if c.curID < 0 || !c.closed.Load() {
		return
	}
	c.d.mu.Lock()
	c.d.br.Release(uint16(c.curID))
	c.cur, c.curID = nil, -1
	c.d.mu.Unlock()
}

// Write sends p with as many sends as it takes (each one asks the kernel for
// all of the rest, MSG_WAITALL), parking until each completes. p is pinned
// meanwhile and is the caller's again when Write returns.
//
// From ZCThreshold bytes it uses SEND_ZC, which also waits for the kernel's
// notification that it no longer references p: on a network that is once
// the peer's kernel acknowledged the bytes. Only when no write deadline is
// set (a deadline could not end the wait for the notification) and only to
// peers on other hosts (see zcAllowed).
func (c *uringConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(p)
}

func (c *uringConn) writeLocked(p []byte) (int, error) {
	if err := c.settleBehind(&c.wdl); err != nil {
		return 0, err
	}
	if len(p) == 0 {
		switch {
		case c.closed.Load():
			return 0, c.opErr("write", net.ErrClosed)
		case expired(&c.wdl):
			return 0, c.opErr("write", os.ErrDeadlineExceeded)
		}
		return 0, nil
	}
	d := c.d
	if len(p) <= copyWriteMax && !c.zcFor(len(p)) {
		return c.writeBehind(p)
	}
	n := 0
	var buf []byte // what the kernel sends from: p, or a copy of it
	if len(p) <= copyWriteMax {
		// A small write goes through a buffer of the driver's, outside
		// the Go heap: copying it costs less than pinning p.
		d.mu.Lock()
		buf = d.getWBufLocked()[:len(p)]
		d.mu.Unlock()
		copy(buf, p)
		defer func() {
			d.mu.Lock()
			d.putWBufLocked(buf)
			d.mu.Unlock()
		}()
	} else {
		buf = p
		c.wpin.Pin(unsafe.SliceData(p))
		defer c.wpin.Unpin()
	}
	for n < len(p) {
		d.mu.Lock()
		if c.closed.Load() {
			d.mu.Unlock()
			return n, c.opErr("write", net.ErrClosed)
		}
		if expired(&c.wdl) {
			d.mu.Unlock()
			return n, c.opErr("write", os.ErrDeadlineExceeded)
		}
		chunk := buf[n:]
		if c.ws.zc = c.zcFor(len(chunk)); c.ws.zc {
			d.ring.SendZC(c.ud(kindWrite), c.fd, chunk, syscall.MSG_WAITALL)
		} else {
			d.ring.Send(c.ud(kindWrite), c.fd, chunk, syscall.MSG_WAITALL)
		}
		c.startLocked(&c.ws)
		res := c.waitLocked(&c.ws, &c.wdl)
		switch {
		case res > 0:
			n += int(res)
		case res == -int32(syscall.EOPNOTSUPP) && c.ws.zc:
			// Sockets without SOCK_SUPPORT_ZC (on Linux 6.18, those
			// accepted by io_uring's accept) refuse SEND_ZC before
			// sending anything: send normally from now on.
			c.zcOK = -1
		case res == 0:
			return n, c.opErr("write", io.ErrShortWrite)
		default:
			return n, c.resultErr("write", "send", &c.ws, res, &c.wdl)
		}
	}
	return n, nil
}

// zcFor reports whether a send of n bytes is a SEND_ZC. wmu is held.
func (c *uringConn) zcFor(n int) bool {
	return c.d.zcMin > 0 && n >= c.d.zcMin && c.wdl.at.Load() == 0 && c.zcAllowed()
}

// writeBehind queues the send of a copy of p, in a buffer of the driver's,
// and returns without waiting for it, as write(2) returns once the bytes
// are in the socket's send buffer: the writer does not park and wake once
// per write (3 % of the requests per CPU-second of the HTTP/1.1 proxy at
// 0 B and 1 KiB). The next write, CloseWrite or splice into the
// connection first waits for that send and returns its failure
// (settleBehind). No deadline cancels it: its bytes were reported written,
// and cutting it short would leave a hole in the stream, which the writer
// would not know of.
// Close returns without waiting for it and lets it finish while the peer
// takes bytes (see lingerCheck). wmu is held.
func (c *uringConn) writeBehind(p []byte) (int, error) {
	d := c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case c.closed.Load():
		return 0, c.opErr("write", net.ErrClosed)
	case expired(&c.wdl):
		return 0, c.opErr("write", os.ErrDeadlineExceeded)
	}
	buf := d.getWBufLocked()[:len(p)]
	copy(buf, p)
	d.ring.Send(c.ud(kindWrite), c.fd, buf, syscall.MSG_WAITALL)
	c.ws.zc = false
	c.startLocked(&c.ws)
	c.behind, c.wpend, c.wlen = buf, true, len(buf)
	return len(p), nil
}

// settleBehind waits for the send of the last writeBehind, if its result
// is still to be looked at, and returns its failure. When dl passes first
// it returns os.ErrDeadlineExceeded and leaves the send in flight, to be
// settled by the next call (see writeBehind); with dl nil it waits for the
// send however long it takes, as long as the conn is open. After Close it
// only reports net.ErrClosed: Close sees to that send. wmu is held.
func (c *uringConn) settleBehind(dl *deadline) error {
	if !c.wpend {
		return nil
	}
	d := c.d
	d.mu.Lock()
	if c.closed.Load() {
		d.mu.Unlock()
		return c.opErr("write", net.ErrClosed)
	}
	for c.ws.busy && !c.closed.Load() {
		if expired(dl) {
			d.mu.Unlock()
			return c.opErr("write", os.ErrDeadlineExceeded)
		}
		d.mu.Unlock()
		<-c.ws.ch
		d.mu.Lock()
	}
	res := c.waitLocked(&c.ws, nil) // done, or closed meanwhile
	c.wpend = false
	switch {
	case res == int32(c.wlen):
		return nil
	case res < 0:
		return c.resultErr("write", "send", &c.ws, res, nil)
	case c.closed.Load():
		return c.opErr("write", net.ErrClosed)
	}
	return c.opErr("write", io.ErrShortWrite)
}

// zcAllowed reports whether SEND_ZC may be used on this connection: TCP
// to a peer that is not on this host. The notification of a send to a
// loopback peer comes only once the peer application has read the bytes,
// so two peers each writing before reading would deadlock; and zero-copy
// to loopback is a copy anyway. wmu is held.
func (c *uringConn) zcAllowed() bool {
	if c.zcOK == 0 {
		c.zcOK = -1
		if a, ok := c.RemoteAddr().(*net.TCPAddr); ok && (c.d.zcLocal || !a.IP.IsLoopback() && !isLocalAddr(a.IP, c.LocalAddr())) {
			c.zcOK = 1
		}
	}
	return c.zcOK > 0
}

// isLocalAddr reports whether ip is the connection's own address (a
// connection to this host through a non-loopback address).
func isLocalAddr(ip net.IP, local net.Addr) bool {
	la, ok := local.(*net.TCPAddr)
	return ok && la.IP.Equal(ip)
}

// CloseWrite shuts down the sending side (shutdown(2) SHUT_WR on the ring):
// the peer reads EOF and can still send.
func (c *uringConn) CloseWrite() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	// As shutdown(2), which queues the FIN behind what the socket holds, it
	// is not bounded by the write deadline.
	if err := c.settleBehind(nil); err != nil {
		return err
	}
	d := c.d
	d.mu.Lock()
	if c.closed.Load() {
		d.mu.Unlock()
		return c.opErr("close", net.ErrClosed)
	}
	d.ring.Shutdown(c.ud(kindWrite), c.fd, syscall.SHUT_WR)
	c.startLocked(&c.ws)
	if res := c.waitLocked(&c.ws, nil); res < 0 {
		return c.resultErr("close", "shutdown", &c.ws, res, nil)
	}
	return nil
}

// Close cancels the operations in flight, wakes the goroutines parked on
// them (they return net.ErrClosed), waits for the completions of those that
// use their caller's memory, gives the connection's received buffers back
// and closes the socket, or has the last completion close it when the
// multishot recv's cancel (or a write-behind's send, see below) is still to
// come: the socket stays open until the kernel lets go of it, and the
// caller does not wait for a round of the ring. It does not wait for a
// SEND_ZC notification: a writer waiting for one keeps waiting until the
// kernel has sent (or dropped) the bytes.
func (c *uringConn) Close() error {
	d := c.d
	d.mu.Lock()
	if c.closed.Load() {
		d.mu.Unlock()
		return c.opErr("close", net.ErrClosed)
	}
	c.closed.Store(true)
	if c.armed && !c.mcancel {
		d.cancelLocked(c.ud(kindRecvMulti))
		c.mcancel = true
	}
	for _, s := range []*slot{&c.rs, &c.ws} {
		if s == &c.ws && c.behind != nil && !s.cancelled && !d.closed {
			// A write-behind's send goes on (its bytes were written, as
			// far as the writer knows) while the peer keeps taking bytes,
			// and is cancelled once closeLinger passes without (see
			// lingerCheck); Close does not wait for it, the last
			// completion closes the socket (finishCloseLocked). The
			// write deadline no longer counts, as SO_SNDTIMEO does not
			// after close(2): it was set for a write that has returned
			// (a relay's idle timeout, renewed while it ran, would cut
			// a slow reader's last bytes).
			c.linger, c.lingerQ = 1, -1
			c.lingerT = time.AfterFunc(closeLinger, c.lingerCheck)
			continue
		}
		if s.busy && !s.cancelled {
			d.cancelLocked(c.ud(c.slotKind(s)))
			s.cancelled = true
		}
	}
	d.kickLocked()
	for len(c.rq) > 0 {
		_, id := c.popLocked()
		d.br.Release(uint16(id))
	}
	var drained chan struct{}
	if c.inflight > c.unwaitedLocked() {
		drained = make(chan struct{})
		c.drained = drained
	}
	wake(c.rs.ch)
	wake(c.ws.ch)
	c.fireLocked()
	d.mu.Unlock()

	c.tmu.Lock()
	for _, t := range []*time.Timer{c.rtimer, c.wtim} {
		if t != nil {
			t.Stop()
		}
	}
	c.tmu.Unlock()
	if drained != nil {
		<-drained
	}
	if c.rmu.TryLock() {
		c.dropCurIfClosed()
		c.rmu.Unlock()
	} // else the reader holding rmu drops it on its way out (unlockReader)
	c.addrOnce.Do(func() {}) // addresses asked after Close stay empty, not another socket's
	d.mu.Lock()
	c.closeDue = true
	err := c.finishCloseLocked() // else the last completion does
	d.mu.Unlock()
	if err != nil {
		return c.opErr("close", os.NewSyscallError("close", err))
	}
	return nil
}

// closeLinger is how long Close lets a write-behind's send wait without
// the peer taking any byte (a variable for tests).
var closeLinger = 10 * time.Second

// lingerCheck runs every closeLinger while a write-behind's send that
// Close let go on is in flight: it cancels the send unless the socket's
// queue of unsent bytes (SIOCOUTQ) shrank since the last check.
func (c *uringConn) lingerCheck() {
	d := c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if c.behind == nil || !c.ws.busy || c.ws.cancelled {
		return
	}
	// The socket is open until the send's completion (endLingerLocked).
	q, err := unix.IoctlGetInt(c.fd, unix.SIOCOUTQ)
	if err == nil && (c.lingerQ < 0 || q < c.lingerQ) {
		c.lingerQ = q
		c.lingerT.Reset(closeLinger)
		return
	}
	c.cancelBehindLocked()
}

// lingeringLocked is 1 while a write-behind's send that Close lets go on
// is in flight, else 0.
func (c *uringConn) lingeringLocked() int {
	if c.linger != 0 && c.behind != nil {
		return 1
	}
	return 0
}

// endLingerLocked runs at the completion of a write-behind's send that
// Close let go on. Once Close has returned, the completion then closes the
// socket (finishCloseLocked), unless the multishot recv's is still to come.
func (c *uringConn) endLingerLocked() {
	c.lingerT.Stop()
	c.linger = 0
}

// cancelBehind cancels a write-behind's send that Close let go on.
func (c *uringConn) cancelBehind() {
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	c.cancelBehindLocked()
}

func (c *uringConn) cancelBehindLocked() {
	if c.behind != nil && c.ws.busy && !c.ws.cancelled {
		c.d.cancelLocked(c.ud(kindWrite))
		c.ws.cancelled = true
	}
}

// The per-connection system calls outside the ring (close, getpeername)
// are raw: a system call the scheduler sees is, after the worker's only P
// was idle, a wake-up of Go's sysmon thread, which then polls every 20 us
// for a millisecond (see uring.Ring.Enter). Neither blocks: the driver
// never sets SO_LINGER, and getpeername only reads.

func closeRaw(fd int) error {
	if _, _, e := syscall.RawSyscall(syscall.SYS_CLOSE, uintptr(fd), 0, 0); e != 0 {
		return e
	}
	return nil
}

// peerName is syscall.Getpeername for TCP sockets; other families take
// the ordinary call.
func peerName(fd int) syscall.Sockaddr {
	var rsa syscall.RawSockaddrAny
	n := uint32(syscall.SizeofSockaddrAny)
	if _, _, e := syscall.RawSyscall(syscall.SYS_GETPEERNAME, uintptr(fd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&n))); e != 0 {
		return nil
	}
	switch rsa.Addr.Family {
	case syscall.AF_INET:
		p := (*syscall.RawSockaddrInet4)(unsafe.Pointer(&rsa))
		port := (*[2]byte)(unsafe.Pointer(&p.Port))
		return &syscall.SockaddrInet4{Port: int(port[0])<<8 | int(port[1]), Addr: p.Addr}
	case syscall.AF_INET6:
		p := (*syscall.RawSockaddrInet6)(unsafe.Pointer(&rsa))
		port := (*[2]byte)(unsafe.Pointer(&p.Port))
		return &syscall.SockaddrInet6{Port: int(port[0])<<8 | int(port[1]), ZoneId: p.Scope_id, Addr: p.Addr}
	}
	sa, _ := syscall.Getpeername(fd)
	return sa
}

func (c *uringConn) addrs() {
	c.addrOnce.Do(func() {
		if c.laddr == nil {
			sa, _ := syscall.Getsockname(c.fd)
			c.laddr = sockaddrToAddr(c.network, sa)
		}
		if c.raddr == nil {
			c.raddr = sockaddrToAddr(c.network, peerName(c.fd))
		}
	})
}

// LocalAddr returns the local address: one getsockname(2), the first time,
// unless it is the listener's own address.
func (c *uringConn) LocalAddr() net.Addr {
	c.addrs()
	if c.laddr == nil {
		return sockaddrToAddr(c.network, nil)
	}
	return c.laddr
}

// RemoteAddr returns the peer's address (one getpeername(2), the first
// time, for accepted connections).
func (c *uringConn) RemoteAddr() net.Addr {
	c.addrs()
	if c.raddr == nil {
		return sockaddrToAddr(c.network, nil)
	}
	return c.raddr
}

func (c *uringConn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: c.network, Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// SetDeadline sets both deadlines, as on net.TCPConn.
func (c *uringConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// SetReadDeadline bounds Read, ReadBorrow and the receiving side of
// SpliceTo. A past deadline makes them fail at once; one that passes while
// they wait wakes them (cancelling a one-shot recv or splice in flight) and
// they return an error wrapping os.ErrDeadlineExceeded. Data that arrives
// later is kept for the next Read.
func (c *uringConn) SetReadDeadline(t time.Time) error {
	return c.setDeadline(&c.rdl, &c.rtimer, &c.rArmed, true, t)
}

// readDeadlinePassed runs on the read deadline's timer.
func (c *uringConn) readDeadlinePassed() {
	if c.timerDue(&c.rdl, &c.rtimer, &c.rArmed) {
		c.wakeReader()
	}
}

// wakeReader wakes a reader waiting, and the NotifyReadable callback, for
// the read deadline passed.
func (c *uringConn) wakeReader() {
	wake(c.rs.ch)
	c.d.mu.Lock()
	c.fireLocked()
	c.d.mu.Unlock()
}

// NotifyReadable implements ReadNotifier.
func (c *uringConn) NotifyReadable(f func()) bool {
	if !c.rmu.TryLock() {
		return false // a reader is at work
	}
	defer c.unlockReader()
	d := c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if c.curID >= 0 || len(c.rq) > 0 || c.rerr != nil || c.nobufs || c.closed.Load() || expired(&c.rdl) || c.notify != nil {
		return false
	}
	c.armLocked()
	c.notify = f
	return true
}

// fireLocked starts the pending NotifyReadable callback.
func (c *uringConn) fireLocked() {
	if f := c.notify; f != nil {
		c.notify = nil
		go f()
	}
}

// SetWriteDeadline bounds Write and sends into this connection, as
// SetReadDeadline; a Write that times out reports the bytes already sent.
func (c *uringConn) SetWriteDeadline(t time.Time) error {
	return c.setDeadline(&c.wdl, &c.wtim, &c.wArmed, false, t)
}

// writeDeadlinePassed runs on the write deadline's timer.
func (c *uringConn) writeDeadlinePassed() {
	if c.timerDue(&c.wdl, &c.wtim, &c.wArmed) {
		wake(c.ws.ch)
	}
}

// setDeadline stores the deadline and arms the timer that wakes waiters
// only when it is not armed already for an earlier instant: a deadline
// pushed later (the keep-alive or write timeout renewed for every request)
// costs no timer operation and no clock read (roundMono); the earlier
// timer, when it fires, re-arms for the deadline then in force (timerDue).
// A deadline in the past is marked passed at once, so the next operation
// fails without waiting: one before the round's reading at once, one after
// it when arming its timer finds it due.
//
// read picks the timer's callback; the method value is made only when the
// timer is, so a call does not allocate.
func (c *uringConn) setDeadline(dl *deadline, tm **time.Timer, armed *int64, read bool, t time.Time) error {
	if c.closed.Load() {
		return c.opErr("set", net.ErrClosed)
	}
	var ns int64
	if !t.IsZero() {
		ns = monoOf(t)
	}
	if c.armDeadline(dl, tm, armed, read, ns) {
		// Passed: wake the waiters, as the timer would.
		if read {
			c.wakeReader()
		} else {
			wake(c.ws.ch)
		}
	}
	return nil
}

// armDeadline is setDeadline's part under tmu; it reports whether the
// deadline has passed.
func (c *uringConn) armDeadline(dl *deadline, tm **time.Timer, armed *int64, read bool, ns int64) bool {
	c.tmu.Lock()
	defer c.tmu.Unlock()
	dl.at.Store(ns) // 0: a timer still armed finds no deadline and does nothing
	if ns == 0 || ns <= roundMono() {
		dl.passed.Store(ns != 0)
		return ns != 0
	}
	dl.passed.Store(false)
	if *armed != 0 && *armed <= ns {
		return false
	}
	wait := time.Duration(ns - monoNow())
	if wait <= 0 {
		dl.passed.Store(true)
		return true
	}
	if *tm == nil {
		passed := c.writeDeadlinePassed
		if read {
			passed = c.readDeadlinePassed
		}
		*tm = time.AfterFunc(wait, passed)
	} else {
		(*tm).Reset(wait)
	}
	*armed = ns
	return false
}

// timerDue runs when a deadline timer fires: it reports whether the
// deadline in force has passed, marking it so, and re-arms the timer when
// the deadline was moved later meanwhile. The timer is read under tmu: it
// can fire before setDeadline has stored it.
func (c *uringConn) timerDue(dl *deadline, tm **time.Timer, armed *int64) bool {
	c.tmu.Lock()
	defer c.tmu.Unlock()
	*armed = 0
	ns := dl.at.Load()
	if ns == 0 || c.closed.Load() {
		return ns != 0
	}
	if wait := time.Duration(ns - monoNow()); wait > 0 {
		(*tm).Reset(wait)
		*armed = ns
		return false
	}
	dl.passed.Store(true)
	return true
}

// ReadFrom implements io.ReaderFrom: from another connection of the same
// driver (or an io.LimitedReader of one) it relays (see relay), or always
// splices with UringParams.SpliceCopy; otherwise it copies.
func (c *uringConn) ReadFrom(r io.Reader) (int64, error) {
	n, src := int64(-1), r
	lr, limited := r.(*io.LimitedReader)
	if limited {
		n, src = lr.N, lr.R
		if n <= 0 {
			return 0, nil
		}
	}
	if sc, ok := src.(*uringConn); ok && sc.d == c.d && sc != c {
		var m int64
		var err error
		if c.d.spliceCopy {
			m, err = sc.SpliceTo(c, n)
		} else {
			m, err = sc.relay(c, n)
		}
		if limited {
			lr.N -= m
		}
		return m, err
	}
	return io.Copy(writerOnly{c}, r)
}

// WriteTo implements io.WriterTo: it writes the received buffers to w in
// place (ReadBorrow), without copying them first; to another connection of
// the same driver it relays (see relay), or always splices with
// UringParams.SpliceCopy.
func (c *uringConn) WriteTo(w io.Writer) (int64, error) {
	if dc, ok := w.(*uringConn); ok && dc.d == c.d && dc != c {
		if dc.d.spliceCopy {
			return c.SpliceTo(dc, -1)
		}
		return c.relay(dc, -1)
	}
	return c.copyTo(w, -1)
}

// relay moves up to n bytes (n < 0: until EOF) from c to dc: through the
// received buffers while they come in part-filled (requests, small
// responses: no syscall but the ring's), and with SpliceTo from the first
// full one on (bulk: the bytes then skip user memory).
func (c *uringConn) relay(dc *uringConn, n int64) (int64, error) {
	if n >= 0 {
		return c.SpliceTo(dc, n) // a borrowed buffer may hold more than n
	}
	total, full, err := c.copyBorrowed(dc, true)
	if err != nil || !full {
		return total, err
	}
	m, err := c.SpliceTo(dc, -1)
	return total + m, err
}

// writerOnly hides ReadFrom from io.Copy.
type writerOnly struct{ io.Writer }

// SpliceTo implements SpliceToer.
func (c *uringConn) SpliceTo(dst net.Conn, n int64) (int64, error) {
	return c.SpliceToIdle(dst, n, 0, 0, nil)
}

// SpliceToIdle is SpliceTo with the timeouts of a copy loop that renews its
// deadlines before each read and write (as nginx's proxy_read_timeout and
// send_timeout): before each receive, when rto is positive, the read
// deadline is set to rto from now; before each send, when wto is positive,
// dst's write deadline to wto from now. stop, when set, is asked after each
// renewal whether to give up, since the renewal replaced any deadline in
// the past that an abort had set; its non-nil error ends the splice. To a
// conn of another driver it copies, with the deadlines as they are.
func (c *uringConn) SpliceToIdle(dst net.Conn, n int64, rto, wto time.Duration, stop func() error) (int64, error) {
	idle := idleTimeouts{rto, wto, stop}
	dc, ok := dst.(*uringConn)
	if !ok || dc.d != c.d || dc == c {
		return c.copyTo(dst, n)
	}
	c.rmu.Lock()
	defer c.unlockReader()
	dc.wmu.Lock()
	defer dc.wmu.Unlock()
	d := c.d

	// The multishot recv would race the splice for the socket's data.
	d.mu.Lock()
	for c.armed && !c.closed.Load() {
		if !c.mcancel {
			d.cancelLocked(c.ud(kindRecvMulti))
			c.mcancel = true
		}
		d.mu.Unlock()
		<-c.rs.ch
		d.mu.Lock()
	}
	c.nobufs = false // the splice reads the socket itself
	d.mu.Unlock()

	// Bytes already received go first.
	var total int64
	for n < 0 || total < n {
		if c.curID < 0 {
			d.mu.Lock()
			if len(c.rq) == 0 {
				d.mu.Unlock()
				break
			}
			c.cur, c.curID = c.popLocked()
			d.mu.Unlock()
		}
		lim := len(c.cur)
		if n >= 0 && int64(lim) > n-total {
			lim = int(n - total)
		}
		if err := idle.renew(nil, dc); err != nil {
			return total, err
		}
		m, err := dc.writeLocked(c.cur[:lim])
		total += int64(m)
		c.cur = c.cur[m:]
		if len(c.cur) == 0 {
			d.mu.Lock()
			d.br.Release(uint16(c.curID))
			c.cur, c.curID = nil, -1
			d.mu.Unlock()
		}
		if err != nil {
			return total, err
		}
	}
	if n >= 0 && total >= n {
		return total, nil
	}
	d.mu.Lock()
	rerr, closed := c.rerr, c.closed.Load()
	d.mu.Unlock()
	switch {
	case closed:
		return total, c.opErr("read", net.ErrClosed)
	case rerr == io.EOF:
		return total, nil
	case rerr != nil:
		return total, c.opErr("read", rerr)
	}

	// The rest goes socket → pipe → socket with splice(2) on non-blocking
	// sockets, the ring saying when a side is ready (IORING_OP_POLL_ADD).
	// IORING_OP_SPLICE would park each splice that has to wait in a kernel
	// worker thread, a thread switch per round.
	if err := c.setNonblock(); err != nil {
		return total, c.opErr("read", err)
	}
	if err := dc.setNonblock(); err != nil {
		return total, dc.opErr("write", err)
	}
	p, err := d.getPipe()
	if err != nil {
		return total, err
	}
	empty := true
	defer func() { d.putPipe(p, empty) }()
	if err := dc.settleBehind(&dc.wdl); err != nil {
		return total, err
	}
	for n < 0 || total < n {
		want := int64(pipeSize)
		if n >= 0 {
			want = min(want, n-total)
		}
		if err := idle.renew(c, nil); err != nil {
			return total, err
		}
		k, err := c.spliceReady(&c.rs, unix.POLLIN, &c.rdl, "read", c.fd, p.w, int(want))
		if err != nil {
			return total, err
		}
		if k == 0 {
			d.mu.Lock()
			c.rerr = io.EOF
			d.mu.Unlock()
			return total, nil
		}
		empty = false
		for k > 0 {
			if err := idle.renew(nil, dc); err != nil {
				return total, err
			}
			m, err := dc.spliceReady(&dc.ws, unix.POLLOUT, &dc.wdl, "write", p.r, dc.fd, k)
			if err != nil {
				return total, err
			}
			k -= m
			total += int64(m)
		}
		empty = true
	}
	return total, nil
}

// idleTimeouts are SpliceToIdle's rto, wto and stop.
type idleTimeouts struct {
	read, write time.Duration
	stop        func() error
}

// renew sets src's read deadline or dst's write deadline from now, as i
// says, then asks i.stop.
func (i *idleTimeouts) renew(src, dst *uringConn) error {
	switch {
	case src != nil && i.read > 0:
		src.SetReadDeadline(Now().Add(i.read))
	case dst != nil && i.write > 0:
		dst.SetWriteDeadline(Now().Add(i.write))
	}
	if i.stop != nil {
		return i.stop()
	}
	return nil
}

// setNonblock makes the socket non-blocking, once: splice(2) must not block
// the worker. The ring's own send and recv do not mind the flag.
func (c *uringConn) setNonblock() error {
	if c.nonblock.Load() {
		return nil
	}
	if !c.rawRef() {
		return net.ErrClosed
	}
	err := unix.SetNonblock(c.fd, true)
	c.rawUnref()
	if err != nil {
		return os.NewSyscallError("fcntl", err)
	}
	c.nonblock.Store(true)
	return nil
}

// controlNet runs f on c's descriptor, held open meanwhile, if c's
// network starts with prefix ("tcp", "unix"; see withSockFD): ok is false
// for other conns; a closed one is an error.
func (c *uringConn) controlNet(prefix string, f func(fd int) error) (ok bool, err error) {
	if !strings.HasPrefix(c.network, prefix) {
		return false, nil
	}
	if !c.rawRef() {
		return true, c.opErr("set", net.ErrClosed)
	}
	defer c.rawUnref()
	if err := f(c.fd); err != nil {
		return true, c.opErr("set", err)
	}
	return true, nil
}

// rawRef holds c's descriptor open for a system call made outside the
// ring (splice, fcntl, setsockopt): Close waits for rawUnref before it
// closes the descriptor, whose number the kernel would otherwise be free
// to give to a new connection while the call is about to use it. It
// reports false, holding nothing, once c is closed. The call counts as an
// operation in flight; it never blocks.
func (c *uringConn) rawRef() bool {
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	if c.closed.Load() {
		return false
	}
	c.inflight++
	return true
}

func (c *uringConn) rawUnref() {
	c.d.mu.Lock()
	c.inflight--
	c.signalDrainedLocked()
	c.finishCloseLocked()
	c.d.mu.Unlock()
}

// spliceReady splices up to n bytes from fdIn to fdOut, one of them c's
// socket, waiting in slot s of c for events on it (bounded by dl) while it
// is not ready. dl is checked before each splice too, as net.TCPConn checks
// its deadline before each read or write: a socket that is always ready
// (a fast sender) would otherwise never see a deadline, which is also how
// the L4 relay's idle check interrupts a splice (a deadline in the past).
func (c *uringConn) spliceReady(s *slot, events uint32, dl *deadline, op string, fdIn, fdOut, n int) (int, error) {
	for {
		if expired(dl) {
			return 0, c.opErr(op, os.ErrDeadlineExceeded)
		}
		if !c.rawRef() {
			return 0, c.opErr(op, net.ErrClosed)
		}
		k, errno := spliceNonblock(fdIn, fdOut, n)
		c.rawUnref()
		switch errno {
		case 0:
			return k, nil
		case syscall.EAGAIN:
			if err := c.poll(s, events, dl, op); err != nil {
				return 0, err
			}
		default:
			return 0, c.opErr(op, os.NewSyscallError("splice", errno))
		}
	}
}

// spliceNonblock moves up to n bytes from fdIn to fdOut, one of them a
// pipe, both non-blocking. It is a raw system call: it never waits, and
// the worker keeps its P meanwhile.
func spliceNonblock(fdIn, fdOut, n int) (int, syscall.Errno) {
	r, _, e := syscall.RawSyscall6(unix.SYS_SPLICE, uintptr(fdIn), 0, uintptr(fdOut), 0,
		uintptr(n), unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
	return int(r), e
}

// poll waits, in slot s of c, until c's socket has one of events ready.
func (c *uringConn) poll(s *slot, events uint32, dl *deadline, op string) error {
	d := c.d
	d.mu.Lock()
	if c.closed.Load() {
		d.mu.Unlock()
		return c.opErr(op, net.ErrClosed)
	}
	if expired(dl) {
		d.mu.Unlock()
		return c.opErr(op, os.ErrDeadlineExceeded)
	}
	d.ring.PollAdd(c.ud(c.slotKind(s)), c.fd, events)
	c.startLocked(s)
	if res := c.waitLocked(s, dl); res < 0 {
		return c.resultErr(op, "poll", s, res, dl)
	}
	return nil
}

// copyTo is SpliceTo's path to a writer that is not a connection of this
// driver: received buffers are written in place.
func (c *uringConn) copyTo(dst io.Writer, n int64) (int64, error) {
	if n >= 0 {
		return io.Copy(dst, io.LimitReader(readerOnly{c}, n))
	}
	total, _, err := c.copyBorrowed(dst, false)
	return total, err
}

// copyBorrowed writes the received buffers to dst in place until EOF (not
// an error), an error, or, with untilFull, right after the first buffer the
// kernel filled whole (full is then true).
func (c *uringConn) copyBorrowed(dst io.Writer, untilFull bool) (total int64, full bool, err error) {
	for {
		buf, release, rerr := c.ReadBorrow()
		full = len(buf) == c.d.bufSize
		if len(buf) > 0 {
			m, werr := dst.Write(buf)
			release()
			total += int64(m)
			if werr != nil {
				return total, false, werr
			}
			if m < len(buf) {
				return total, false, io.ErrShortWrite
			}
		} else {
			release()
		}
		if rerr == io.EOF {
			return total, false, nil
		}
		if rerr != nil {
			return total, false, rerr
		}
		if untilFull && full {
			return total, true, nil
		}
	}
}

// readerOnly hides WriteTo from io.Copy.
type readerOnly struct{ io.Reader }

// Stale reports whether an idle connection can no longer carry a request
// and response: its peer ended or broke the stream, or sent bytes nobody
// asked for. A connection pool's answer to a MSG_PEEK; no syscall while
// the multishot receive runs, which sees all of that as it happens. A
// splice stops that receive (an upstream connection whose response body
// was spliced); then Stale peeks at the socket, as the epoll driver's pool
// does, and re-arms the receive to watch from here on. After the buffer
// ring ran dry (ENOBUFS) the connection counts as stale.
func (c *uringConn) Stale() bool {
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	if c.rerr != nil || len(c.rq) > 0 || c.curID >= 0 || c.closed.Load() || c.nobufs {
		return true
	}
	if c.armed {
		return false
	}
	// Not closed, with d.mu held: the descriptor is still c's.
	var b [1]byte
	n, _, err := unix.Recvfrom(c.fd, b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	if n > 0 || err != unix.EAGAIN {
		return true // bytes nobody asked for, EOF, or an error
	}
	c.armLocked()
	return false
}

// PeerGone reports whether the receive side has seen the peer end the
// stream (EOF) or fail, without consuming data still queued for Read. The
// multishot receive keeps running while nobody reads, so this costs no
// syscall: it is the io_uring driver's answer to a MSG_PEEK, used by the
// HTTP proxy to cancel upstream requests of clients that went away. When
// no multishot receive runs (the buffer ring ran dry and the last Read
// was a one-shot receive), nothing would see the end: it peeks at the
// socket then.
func (c *uringConn) PeerGone() bool {
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	if c.rerr != nil {
		return true
	}
	if c.armed || c.closed.Load() || len(c.rq) > 0 || c.curID >= 0 {
		return false // the receive will tell; or bytes come first
	}
	// Not closed, with d.mu held: the descriptor is still c's.
	var b [1]byte
	n, _, err := unix.Recvfrom(c.fd, b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	return n == 0 && err == nil || err != nil && err != unix.EAGAIN && err != unix.EINTR
}
