//go:build uring && cgo

package netio

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/monolake-go/monolake/proxy/netio/internal/thread"
	"github.com/monolake-go/monolake/uring"
)

// UringBuilt reports that this build has the io_uring driver (the "uring"
// tag with cgo); UringAvailable says whether the kernel lets it run.
const UringBuilt = true

// ErrUringClosed is returned by calls on a closed driver.
var ErrUringClosed = errors.New("netio: io_uring driver closed")

// Kinds of operation, the low 3 bits of a user_data; the rest is the
// owning object's ID. User data 0 marks completions nobody waits for
// (cancels).
const (
	kindRecvMulti = 1 // a conn's multishot recv into the buffer ring
	kindRead      = 2 // a conn's read-side one-shot op: recv into p, splice in
	kindWrite     = 3 // a conn's write-side op: send, SEND_ZC, splice out, connect, shutdown
	kindAccept    = 4 // a listener's multishot accept
	kindBits      = 3
)

// ringObject is a connection or listener with operations on the ring.
type ringObject interface {
	// completeLocked handles one CQE of the object; d.mu is held.
	completeLocked(kind uint64, c uring.CQE)
	Close() error
}

// Uring is the io_uring driver of one worker process: one ring shared by
// every listener and connection it creates.
//
// Goroutines calling Read, Write, Accept, Dial... queue their operations
// under the driver's lock and park on their connection's channel. A single
// loop goroutine enters the ring once per scheduling round for everything
// queued (batched submission and completion) and wakes the owners of the
// completions. The loop never blocks its thread in io_uring_enter(2): it
// submits without waiting, and when there is nothing to do it parks on a
// channel fed by a goroutine polling the ring's descriptor through Go's
// netpoller. An idle driver therefore uses no CPU, and goroutines that do
// not touch the ring (timers, TLS handshakes) run as usual, even with
// GOMAXPROCS=1.
//
// The ring is set up without SINGLE_ISSUER/DEFER_TASKRUN, which would tie
// the loop to one OS thread (LockOSThread, and a thread switch for every
// hand-off to another goroutine). The kernel then finishes a receive that
// had to wait for data in task work of the thread that submitted it; a
// parked Read re-arms its multishot recv when Go has moved the loop to
// another thread since (see rearmIfMovedLocked), which halved the echo
// latency when it happened.
//
// A Uring is safe for concurrent use.
type Uring struct {
	// ringf is a duplicate of the ring's descriptor in Go's netpoller:
	// the kernel wakes its pollers each time it posts completions (see
	// watchRing).
	ringf *os.File
	zcMin int // smallest SEND_ZC write; 0 is off
	// zcLocal allows SEND_ZC to loopback and Unix peers (tests only): their
	// notification waits for the peer application to read the bytes.
	zcLocal bool
	// spliceCopy: ReadFrom / WriteTo splice between this driver's conns.
	spliceCopy bool
	bufSize    int
	maxQueued  int // received buffers a conn may hold before its recv pauses

	kick     chan struct{} // an operation was queued
	evch     chan struct{} // the ring posted completions
	quit     chan struct{}
	loopDone chan struct{}
	evDone   chan struct{}

	mu sync.Mutex
	// Everything below is guarded by mu: the ring and the buffer ring are
	// used by callers under mu and by the loop under mu.
	ring   *uring.Ring
	br     *uring.BufRing
	objs   objTable
	closed bool
	// gone, while Close waits for objects other goroutines are closing,
	// is closed when the last one leaves objs (see forgetLocked).
	gone  chan struct{}
	pipes []pipePair
	// tid is the thread that entered the ring last; armed lists the
	// conns whose multishot recv the next Enter submits (see armLocked).
	tid   uintptr
	armed []*uringConn
	// armedLn lists the listeners whose multishot accept was queued since.
	armedLn []*uringListener
	// wbufs are free write buffers (see copyWriteMax).
	wbufs [][]byte
	// cancelling holds the user data of the operations a cancel was
	// queued for, until their last completion; the retry timer queues
	// the cancel again for those that outlive cancelRetry (see
	// cancelLocked).
	cancelling    map[uint64]cancelWait
	retryAt       int64 // monoNow when the retry timer fires; 0 when it is not armed
	retryTimer    *time.Timer
	cancelRetries atomic.Uint64
}

// cancelRetry is how long a cancelled operation may go without its last
// completion before the cancel is queued again, and the first wait of the
// retry timer; the wait doubles per retry up to maxCancelRetry.
const (
	cancelRetry    = 20 * time.Millisecond
	maxCancelRetry = time.Second
)

// cancelWait is when a cancelled operation's cancel is due to be queued
// again (monoNow), and the wait before the one after.
type cancelWait struct {
	due  int64
	wait time.Duration
}

// NewUring sets up a ring and its provided-buffer ring, and starts the
// loop goroutine and the ring's watcher. Close releases them.
func NewUring(p UringParams) (*Uring, error) {
	p = p.withDefaults()
	r, err := uring.New(uring.Params{Entries: p.Entries, SQPollIdle: p.SQPollIdle})
	if err != nil {
		return nil, fmt.Errorf("netio: setting up io_uring: %w", err)
	}
	br, err := r.NewBufRing(1, p.BufCount, p.BufSize)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("netio: setting up the receive buffer ring: %w", err)
	}
	ringf, err := pollableDup(r.Fd(), "io_uring")
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("netio: setting up io_uring: %w", err)
	}
	d := &Uring{
		ringf:      ringf,
		zcMin:      max(p.ZCThreshold, 0),
		bufSize:    p.BufSize,
		spliceCopy: p.SpliceCopy,
		maxQueued:  max(2, min(8, p.BufCount/16)),
		kick:       make(chan struct{}, 1),
		evch:       make(chan struct{}, 1),
		quit:       make(chan struct{}),
		loopDone:   make(chan struct{}),
		evDone:     make(chan struct{}),
		ring:       r,
		br:         br,
		cancelling: make(map[uint64]cancelWait),
	}
	go d.loop()
	go d.watchRing()
	return d, nil
}

// Flags returns the ring's setup flags, for logs.
func (d *Uring) Flags() uring.SetupFlags {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ring.Flags()
}

// Stats returns the ring's counters: Enters per completion shows the
// batching.
func (d *Uring) Stats() uring.Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ring.Stats()
}

// RecvBuffers is the number of buffers in the receive buffer ring
// (UringParams.BufCount).
func (d *Uring) RecvBuffers() int { return d.br.Len() }

// RecvBufferSize is the size of each buffer in the receive buffer ring.
func (d *Uring) RecvBufferSize() int { return d.br.Size() }

// BuffersOut counts the received buffers out of the buffer ring: queued
// on connections for their readers, or lent (ReadBorrow). With no bytes
// received and unread, a count above zero is a buffer never given back.
func (d *Uring) BuffersOut() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.br.Out()
}

// Close closes every listener and connection of the driver (cancelling
// their operations and waiting for the kernel to finish with them), stops
// the loop and tears the ring down. Buffers borrowed with ReadBorrow should
// be released before Close; those that are not (or that a reader is still
// copying from) stay mapped, and are leaked, so that their reader does not
// fault.
func (d *Uring) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return ErrUringClosed
	}
	d.closed = true
	objs := slices.AppendSeq(make([]ringObject, 0, d.objs.len()), d.objs.all())
	d.mu.Unlock()
	for _, o := range objs {
		o.Close()
		if c, ok := o.(*uringConn); ok {
			c.cancelBehind() // a send its Close let go on
		}
	}
	// A conn or listener that another goroutine was closing already is
	// still waiting for its last completions: the loop must run until
	// they come. (A SEND_ZC writer still waiting for its notification is
	// left parked: the kernel may use its buffer until then.)
	d.mu.Lock()
	if d.liveLocked() > 0 {
		gone := make(chan struct{})
		d.gone = gone
		d.mu.Unlock()
		<-gone
	} else {
		d.mu.Unlock()
	}
	close(d.quit)
	<-d.loopDone
	d.mu.Lock()
	d.cancelling = nil // every operation has ended: no retry is due
	if d.retryTimer != nil {
		d.retryTimer.Stop()
	}
	d.mu.Unlock()
	d.ringf.Close()
	<-d.evDone
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range d.pipes {
		p.close()
	}
	d.pipes = nil
	for _, b := range d.wbufs {
		unix.Munmap(b)
	}
	d.wbufs = nil
	return d.ring.Close()
}

// forgetLocked removes an object whose last completion has come.
func (d *Uring) forgetLocked(id uint64) {
	d.objs.remove(id)
	d.checkGoneLocked()
}

// checkGoneLocked lets a Close waiting for the objects that still expect
// completions go on once none is left (SEND_ZC orphans do not count).
func (d *Uring) checkGoneLocked() {
	if d.gone != nil && d.liveLocked() == 0 {
		close(d.gone)
		d.gone = nil
	}
}

// liveLocked counts the objects that still wait for completions, other
// than SEND_ZC notifications of closed conns.
func (d *Uring) liveLocked() int {
	n := 0
	for o := range d.objs.all() {
		if c, ok := o.(*uringConn); !ok || !c.orphan {
			n++
		}
	}
	return n
}

// cancelLocked queues a cancel of the operation with user data ud (a
// conn's or listener's, with its kind) and wakes the loop.
//
// The cancel is queued again while the operation has not ended. On this
// project's machines (Linux 6.18), now and then a multishot recv cancelled
// just as data arrived posted neither the data nor its -ECANCELED
// completion, though the cancel's own completion said it was found, until
// the socket's next event (the peer's next bytes, its FIN), which may never
// come: a keep-alive request stalled until its client gave up, and a Close
// waiting for the recv would hang. (Up to three stalls in 60,000 keep-alive
// requests under the race detector and two CPU hogs; in 16 of the 17
// traced, the cancel came from another thread than the recv's submitter,
// see rearmIfMovedLocked.) The retry does not depend on why a cancel went
// unanswered. Each cancelled operation is followed until its last
// completion (one without IORING_CQE_F_MORE), so a retry cannot hit a later
// operation with the same user data: that one is queued only once the last
// completion has been handled.
func (d *Uring) cancelLocked(ud uint64) {
	d.ring.Cancel(0, ud, false)
	d.followLocked(ud)
	d.kickLocked()
}

// followLocked notes that the operation with user data ud was cancelled,
// for the retry timer, and arms the timer for its retry.
func (d *Uring) followLocked(ud uint64) {
	if d.cancelling == nil { // the driver is closed
		return
	}
	w, ok := d.cancelling[ud]
	if !ok {
		w = cancelWait{monoNow() + int64(cancelRetry), 2 * cancelRetry}
		d.cancelling[ud] = w
	}
	d.armRetryLocked(w.due)
}

// armRetryLocked makes the retry timer fire by at (monoNow), unless it is
// armed to fire earlier already.
func (d *Uring) armRetryLocked(at int64) {
	if d.retryAt != 0 && d.retryAt <= at {
		return
	}
	d.retryAt = at
	wait := time.Duration(max(at-monoNow(), 0))
	if d.retryTimer == nil {
		d.retryTimer = time.AfterFunc(wait, d.retryCancels)
	} else {
		d.retryTimer.Reset(wait)
	}
}

// retryCancels runs on the retry timer: it queues the cancel again for each
// operation whose retry is due, waiting twice as long before the next, and
// re-arms the timer for the next due while any operation is left.
func (d *Uring) retryCancels() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.retryAt = 0
	if len(d.cancelling) == 0 {
		return
	}
	now := monoNow()
	next := now + int64(maxCancelRetry)
	retried := false
	for ud, w := range d.cancelling {
		if w.due <= now {
			d.ring.Cancel(0, ud, false)
			d.cancelRetries.Add(1)
			retried = true
			w = cancelWait{now + int64(w.wait), min(2*w.wait, maxCancelRetry)}
			d.cancelling[ud] = w
		}
		next = min(next, w.due)
	}
	d.armRetryLocked(next)
	if retried {
		d.kickLocked()
	}
}

// CancelRetries counts the cancels queued again because the operation
// had not ended cancelRetry after the first (see cancelLocked).
func (d *Uring) CancelRetries() uint64 { return d.cancelRetries.Load() }

// kickLocked wakes the loop to submit what was queued.
func (d *Uring) kickLocked() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// registerLocked gives o an ID and routes its completions to it.
func (d *Uring) registerLocked(o ringObject) (uint64, error) {
	if d.closed {
		return 0, ErrUringClosed
	}
	return d.objs.add(o)
}

// objTable maps IDs to the ring objects with operations in flight. An ID
// is a slot's index in its low slotBits and the slot's generation above,
// one more at each use of the slot: IDs are not reused, so a completion
// that came late for an object that left (it cannot, by the driver's
// rules) would find no object rather than another. A lookup is an index
// and a compare, not a map probe (once per completion).
type objTable struct {
	slots []objSlot
	free  []uint32 // indexes of empty slots
	n     int      // objects in the table
}

type objSlot struct {
	gen uint64
	o   ringObject // nil: empty
}

// slotBits is the width of an ID's slot index: up to 16M objects at once.
// With kindBits, 37 bits are left for a slot's generation.
const slotBits = 24

var errTableFull = errors.New("netio: io_uring driver: too many connections and listeners")

func (t *objTable) add(o ringObject) (uint64, error) {
	var i uint32
	if n := len(t.free); n > 0 {
		i, t.free = t.free[n-1], t.free[:n-1]
	} else {
		if len(t.slots) == 1<<slotBits {
			return 0, errTableFull
		}
		i = uint32(len(t.slots))
		t.slots = append(t.slots, objSlot{})
	}
	s := &t.slots[i]
	s.gen++
	s.o = o
	t.n++
	return s.gen<<slotBits | uint64(i), nil
}

// get returns the object with ID id, nil if none (any more).
func (t *objTable) get(id uint64) ringObject {
	i := id & (1<<slotBits - 1)
	if i >= uint64(len(t.slots)) {
		return nil
	}
	if s := &t.slots[i]; s.gen == id>>slotBits {
		return s.o
	}
	return nil
}

// remove takes the object with ID id out of the table, if it is there.
func (t *objTable) remove(id uint64) {
	if t.get(id) == nil {
		return
	}
	i := uint32(id & (1<<slotBits - 1))
	t.slots[i].o = nil
	t.free = append(t.free, i)
	t.n--
}

func (t *objTable) len() int { return t.n }

// all yields the objects in the table.
func (t *objTable) all() iter.Seq[ringObject] {
	return func(yield func(ringObject) bool) {
		for _, s := range t.slots {
			if s.o != nil && !yield(s.o) {
				return
			}
		}
	}
}

// loop is the only goroutine that enters the ring.
func (d *Uring) loop() {
	defer close(d.loopDone)
	for {
		select {
		case <-d.kick:
		case <-d.evch:
		case <-d.quit:
			return
		}
		d.run()
	}
}

// run enters the ring until there is nothing to submit and nothing to
// harvest. Before each entry it yields, so that the goroutines it woke (and
// any others that are runnable) queue their next operations first: with one
// P the loop runs last in a scheduling round and submits the whole round's
// operations in one io_uring_enter(2). After each entry it reads the clock
// for the round (roundClock).
func (d *Uring) run() {
	tick()
	roundClock.loops.Add(1)
	defer roundClock.loops.Add(-1)
	for {
		runtime.Gosched()
		tid := thread.ID()
		d.mu.Lock()
		cqes, err := d.ring.Enter(0, 0)
		tick()
		d.tid = tid
		for _, c := range d.armed {
			c.armTid = tid
		}
		clear(d.armed)
		d.armed = d.armed[:0]
		for _, l := range d.armedLn {
			l.armTid = tid
		}
		clear(d.armedLn)
		d.armedLn = d.armedLn[:0]
		for _, c := range cqes {
			d.dispatchLocked(c)
		}
		// Done when nothing is queued and nothing is to harvest, not
		// even completions another thread's task work is about to post
		// (Ready sees them with TASKRUN_FLAG): the loop enters again
		// rather than park and be woken for them.
		done := len(cqes) == 0 && d.ring.Pending() == 0 && !d.ring.Ready()
		d.mu.Unlock()
		if err != nil && len(cqes) == 0 {
			// The kernel refused the batch (a full CQ ring under
			// overflow, say); the operations stay queued. Back off
			// instead of spinning.
			time.Sleep(time.Millisecond)
		}
		if done {
			return
		}
	}
}

func (d *Uring) dispatchLocked(c uring.CQE) {
	d.br.Claim(c)
	if c.UserData == 0 {
		return
	}
	if !c.More() && len(d.cancelling) > 0 {
		delete(d.cancelling, c.UserData)
	}
	o := d.objs.get(c.UserData >> kindBits)
	if o == nil {
		// Cannot happen: objects leave the table after their last
		// completion. Do not leak a buffer if it does.
		if id, ok := c.BufID(); ok {
			d.br.Release(id)
		}
		return
	}
	o.completeLocked(c.UserData&(1<<kindBits-1), c)
}

// watchRing turns completions into wake-ups of the loop. It waits in Go's
// netpoller on a duplicate of the ring's descriptor, holding no thread:
// the kernel wakes a ring's pollers each time it posts completions, and
// the netpoller watches it edge-triggered, so each posting wakes the
// watcher once.
//
// Not the ring's eventfd, which the driver used before: its signal is
// skipped when io_uring finds its tail where it was at the last signal,
// and with completions posted from several threads a completion was
// sometimes posted with no signal after it (apparently counted by a
// signal sent while it was filled in but not yet posted). The loop went
// idle with the completion in the ring: TestBalancers under -race hung
// about once in 15 runs on Linux 6.18, the eventfd's counter showing no
// signal after the completion. The ring's own wake-up of its pollers has
// no such rule.
func (d *Uring) watchRing() {
	defer close(d.evDone)
	rc, err := d.ringf.SyscallConn()
	if err != nil {
		return
	}
	// Read returns only when the file is closed (Close).
	rc.Read(func(uintptr) bool {
		wake(d.evch)
		return false
	})
}

// pollableDup returns a close-on-exec, non-blocking duplicate of fd as an
// *os.File in Go's netpoller, or an error if the netpoller does not take
// the descriptor.
func pollableDup(fd int, name string) (*os.File, error) {
	nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("fcntl", err)
	}
	if err := unix.SetNonblock(nfd, true); err != nil {
		unix.Close(nfd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	f := os.NewFile(uintptr(nfd), name)
	// Only a file in the netpoller has deadlines.
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		f.Close()
		return nil, fmt.Errorf("watching the %s descriptor in Go's netpoller: %w", name, err)
	}
	return f, nil
}

// Listen announces on the local address: "tcp", "tcp4", "tcp6" (bound with
// SO_REUSEPORT, see ListenTCP) or "unix" (see ListenUnix; the socket file
// is removed on Close). Connections are accepted with one multishot accept
// and are io_uring connections.
func (d *Uring) Listen(network, address string) (net.Listener, error) {
	var f *os.File
	var unlink SocketFile
	switch network {
	case "tcp", "tcp4", "tcp6":
		ln, err := ListenTCP(context.Background(), address)
		if err != nil {
			return nil, err
		}
		f, err = ln.(*net.TCPListener).File()
		ln.Close()
		if err != nil {
			return nil, fmt.Errorf("netio: listening on %s: %w", address, err)
		}
	case "unix":
		ln, err := ListenUnix(address)
		if err != nil {
			return nil, err
		}
		ln.SetUnlinkOnClose(false)
		f, err = ln.File()
		ln.Close()
		if err != nil {
			ln.Socket().Remove()
			return nil, fmt.Errorf("netio: listening on %s: %w", address, err)
		}
		unlink = ln.Socket()
	default:
		return nil, fmt.Errorf("netio: io_uring listen on network %q: %w", network, errors.ErrUnsupported)
	}
	defer f.Close()
	l, err := d.fileListener(f)
	if err != nil {
		unlink.Remove()
		return nil, err
	}
	l.unlink = unlink
	return l, nil
}

// FileListener returns an io_uring listener for an inherited listening
// socket (TCP or Unix). The listener holds its own dup of the descriptor;
// f can be closed after. Closing it never removes a Unix socket file: the
// process that created it owns it.
func (d *Uring) FileListener(f *os.File) (net.Listener, error) {
	return d.fileListener(f)
}

func (d *Uring) fileListener(f *os.File) (*uringListener, error) {
	fd, err := dupCloexec(f)
	if err != nil {
		return nil, fmt.Errorf("netio: listener from %s: dup: %w", f.Name(), err)
	}
	if v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || v == 0 {
		syscall.Close(fd)
		return nil, fmt.Errorf("netio: listener from %s: not a listening socket: %w", f.Name(), syscall.EINVAL)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("netio: listener from %s: %w", f.Name(), err)
	}
	network := "tcp"
	if _, ok := sa.(*syscall.SockaddrUnix); ok {
		network = "unix"
	}
	l := &uringListener{d: d, fd: fd, network: network, addr: sockaddrToAddr(network, sa),
		ch: make(chan struct{}, 1), done: make(chan struct{})}
	if network == "tcp" && syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1) != nil {
		l.nodelay.Store(-1)
	}
	d.mu.Lock()
	l.id, err = d.registerLocked(l)
	d.mu.Unlock()
	if err != nil {
		syscall.Close(fd)
		return nil, err
	}
	return l, nil
}

// Dial connects to address on "tcp", "tcp4", "tcp6" or "unix" with the
// ring's connect operation. Host names are resolved with net.DefaultResolver
// and tried in order. ctx bounds the whole dial: its cancellation or deadline
// cancels the connect in flight.
func (d *Uring) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	var targets []syscall.Sockaddr
	var raddrs []net.Addr
	switch network {
	case "tcp", "tcp4", "tcp6":
		host, port, err := net.SplitHostPort(address)
		if err != nil {
			return nil, &net.OpError{Op: "dial", Net: network, Err: err}
		}
		pn, err := net.DefaultResolver.LookupPort(ctx, network, port)
		if err != nil {
			return nil, &net.OpError{Op: "dial", Net: network, Err: err}
		}
		var ips []netip.Addr
		if ip, err := netip.ParseAddr(host); err == nil {
			ips = []netip.Addr{ip}
		} else {
			if host == "" {
				host = "localhost"
			}
			want := map[string]string{"tcp": "ip", "tcp4": "ip4", "tcp6": "ip6"}[network]
			ips, err = net.DefaultResolver.LookupNetIP(ctx, want, host)
			if err != nil {
				return nil, &net.OpError{Op: "dial", Net: network, Err: err}
			}
		}
		for _, ip := range ips {
			ip = ip.Unmap()
			switch {
			case ip.Is4() && network != "tcp6":
				targets = append(targets, &syscall.SockaddrInet4{Port: pn, Addr: ip.As4()})
			case ip.Is6() && network != "tcp4":
				targets = append(targets, &syscall.SockaddrInet6{Port: pn, Addr: ip.As16()})
			default:
				continue
			}
			raddrs = append(raddrs, net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(pn))))
		}
	case "unix":
		targets = []syscall.Sockaddr{&syscall.SockaddrUnix{Name: address}}
		raddrs = []net.Addr{&net.UnixAddr{Name: address, Net: "unix"}}
	default:
		return nil, &net.OpError{Op: "dial", Net: network, Err: fmt.Errorf("netio: io_uring dial on network %q: %w", network, errors.ErrUnsupported)}
	}
	if len(targets) == 0 {
		return nil, &net.OpError{Op: "dial", Net: network, Err: &net.AddrError{Err: "no suitable address", Addr: address}}
	}
	return d.dialEach(ctx, network, targets, raddrs)
}

// dialEach connects to the first of targets that answers, in order. Under
// a deadline each has its share of the time left, as with net.Dialer: an
// address that drops the SYN must not take the whole connect timeout from
// the ones after it.
func (d *Uring) dialEach(ctx context.Context, network string, targets []syscall.Sockaddr, raddrs []net.Addr) (net.Conn, error) {
	var err error
	for i, sa := range targets {
		actx, cancel := ctx, context.CancelFunc(func() {})
		if dl, ok := ctx.Deadline(); ok && i < len(targets)-1 {
			actx, cancel = context.WithDeadline(ctx, shareOf(time.Now(), dl, len(targets)-i))
		}
		var c *uringConn
		c, err = d.dialOne(actx, network, sa, raddrs[i])
		cancel()
		if err == nil {
			return c, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, err
}

// minDialShare is the least time an address gets when several share a
// deadline (net.Dialer's too), unless less is left.
const minDialShare = 2 * time.Second

// shareOf is the deadline of one of n addresses still to try before
// deadline: an equal share of the time left, at least minDialShare.
func shareOf(now, deadline time.Time, n int) time.Time {
	left := deadline.Sub(now)
	share := left / time.Duration(n)
	if share < minDialShare {
		share = min(minDialShare, left)
	}
	return now.Add(share)
}

func (d *Uring) dialOne(ctx context.Context, network string, sa syscall.Sockaddr, raddr net.Addr) (*uringConn, error) {
	opErr := func(err error) error { return &net.OpError{Op: "dial", Net: network, Addr: raddr, Err: err} }
	if err := ctx.Err(); err != nil {
		return nil, opErr(err)
	}
	family := syscall.AF_UNIX
	switch sa.(type) {
	case *syscall.SockaddrInet4:
		family = syscall.AF_INET
	case *syscall.SockaddrInet6:
		family = syscall.AF_INET6
	}
	// A blocking socket: io_uring polls it itself, and splice needs it.
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, opErr(os.NewSyscallError("socket", err))
	}
	c, err := d.newConn(fd, network)
	if err != nil {
		syscall.Close(fd)
		return nil, opErr(err)
	}
	c.raddr = raddr
	d.mu.Lock()
	if c.closed.Load() { // Close of the driver since newConn
		d.mu.Unlock()
		return nil, opErr(net.ErrClosed)
	}
	if err := d.ring.Connect(c.ud(kindWrite), fd, sa); err != nil {
		d.mu.Unlock()
		c.Close()
		return nil, opErr(err)
	}
	c.startLocked(&c.ws)
	d.mu.Unlock()
	stop := context.AfterFunc(ctx, func() { wake(c.ws.ch) })
	res := c.waitConnect(ctx)
	stop()
	if res < 0 {
		closed := c.closed.Load()
		c.Close()
		if err := ctx.Err(); err != nil {
			return nil, opErr(err)
		}
		if closed {
			return nil, opErr(net.ErrClosed)
		}
		return nil, opErr(os.NewSyscallError("connect", syscall.Errno(-res)))
	}
	if family != syscall.AF_UNIX {
		if !c.rawRef() { // the driver closed it as the connect completed
			return nil, opErr(net.ErrClosed)
		}
		syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
		c.rawUnref()
	} else if c.closed.Load() {
		return nil, opErr(net.ErrClosed)
	}
	return c, nil
}

// waitConnect waits for the connect in c's write slot, cancelling it when
// ctx ends.
func (c *uringConn) waitConnect(ctx context.Context) int32 {
	d := c.d
	d.mu.Lock()
	for c.ws.busy {
		if !c.ws.cancelled && ctx.Err() != nil {
			d.cancelLocked(c.ud(kindWrite))
			c.ws.cancelled = true
		}
		d.mu.Unlock()
		<-c.ws.ch
		d.mu.Lock()
	}
	res := c.ws.res
	d.mu.Unlock()
	return res
}

// pipePair is a pipe for splicing socket → pipe → socket.
type pipePair struct{ r, w int }

func (p pipePair) close() {
	syscall.Close(p.r)
	syscall.Close(p.w)
}

const (
	pipeSize  = 256 << 10 // F_SETPIPE_SZ: bytes one splice round moves
	pipesKept = 16        // empty pipes kept for reuse
)

func (d *Uring) getPipe() (pipePair, error) {
	d.mu.Lock()
	if n := len(d.pipes); n > 0 {
		p := d.pipes[n-1]
		d.pipes = d.pipes[:n-1]
		d.mu.Unlock()
		return p, nil
	}
	d.mu.Unlock()
	var fds [2]int
	if err := syscall.Pipe2(fds[:], syscall.O_CLOEXEC); err != nil {
		return pipePair{}, os.NewSyscallError("pipe2", err)
	}
	unix.FcntlInt(uintptr(fds[1]), unix.F_SETPIPE_SZ, pipeSize) // best effort: the default 64 KiB works too
	return pipePair{r: fds[0], w: fds[1]}, nil
}

// putPipe keeps an empty pipe for reuse; a pipe that may still hold bytes
// is closed.
func (d *Uring) putPipe(p pipePair, empty bool) {
	d.mu.Lock()
	if empty && !d.closed && len(d.pipes) < pipesKept {
		d.pipes = append(d.pipes, p)
		d.mu.Unlock()
		return
	}
	d.mu.Unlock()
	p.close()
}

// copyWriteMax is the largest Write that is copied into a buffer of the
// driver's; larger ones are sent from the caller's memory, pinned.
const copyWriteMax = 16 << 10

// wbufsKept is how many free write buffers the driver keeps.
const wbufsKept = 256

// getWBufLocked returns a write buffer of copyWriteMax bytes: mapped
// memory, off the Go heap, which the kernel may read while the writer
// waits, without pinning.
func (d *Uring) getWBufLocked() []byte {
	if n := len(d.wbufs); n > 0 {
		b := d.wbufs[n-1]
		d.wbufs = d.wbufs[:n-1]
		return b
	}
	b, err := unix.Mmap(-1, 0, copyWriteMax, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		// Out of mappings: Go memory, which the caller keeps referenced
		// until the send completes; the heap does not move objects.
		return make([]byte, copyWriteMax)
	}
	return b
}

// putWBufLocked takes a write buffer back.
func (d *Uring) putWBufLocked(b []byte) {
	b = b[:cap(b)]
	if !d.closed && len(d.wbufs) < wbufsKept {
		d.wbufs = append(d.wbufs, b)
		return
	}
	unix.Munmap(b) // fails harmlessly for the Go fallback
}

// sockaddrToAddr converts a socket address; nil gives an empty address of
// the network's type.
func sockaddrToAddr(network string, sa syscall.Sockaddr) net.Addr {
	switch sa := sa.(type) {
	case *syscall.SockaddrInet4:
		return net.TCPAddrFromAddrPort(netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port)))
	case *syscall.SockaddrInet6:
		return net.TCPAddrFromAddrPort(netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port)))
	case *syscall.SockaddrUnix:
		return &net.UnixAddr{Name: sa.Name, Net: "unix"}
	}
	if network == "unix" {
		return &net.UnixAddr{Net: "unix"}
	}
	return &net.TCPAddr{}
}
