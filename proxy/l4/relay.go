package l4

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/monolake-go/monolake/proxy/netio"
	"github.com/monolake-go/monolake/proxy/server"
)

// The relay runs one goroutine per direction. Each copies its source to
// the other side until the source reads EOF, then half-closes the other
// side (CloseWrite) and stops; the other direction goes on until it ends
// too.
//
// # Splice
//
// Between two *net.TCPConn, and between a TCP and a unix stream socket, a
// direction is one (*net.TCPConn).ReadFrom or WriteTo call, which the Go
// runtime runs as splice(2) through a pipe: the bytes never enter user
// space. Between two conns of the io_uring driver it is one ReadFrom too,
// which relays: small chunks go from the buffers the kernel filled straight
// to the other socket, bulk is spliced (netio.SpliceToer). Anything else (a
// TLS conn, unix to unix) is copied through a pooled 32 KiB buffer.
//
// # Idle timeout
//
// A splice call does not say how many bytes it moved until it returns, so
// the idle timeout cannot be a deadline pushed forward on every read.
// Instead each direction keeps a read deadline on its source and the
// relay keeps the time of the last progress either way (last):
//
//   - When a direction's deadline fires it returns with the bytes moved in
//     this call; any bytes count as progress now. If the last progress is
//     younger than the idle timeout, the direction re-arms its deadline to
//     last+idle and resumes (the splice restarts; no data is lost, since
//     Go's splice pumps what it drained before it waits for more).
//   - If it is older, the other direction may be in the middle of a splice
//     with progress not yet reported. The direction becomes the prober:
//     it moves the other source's read deadline to the past (a poke), so
//     the other splice returns and reports, and checks again after a
//     short grace (idle/2, at most 1s).
//   - At that check, if the other direction has returned since the poke
//     (its return count moved) and still nothing is fresher than the idle
//     timeout, every call of both directions since the last progress
//     moved nothing: the relay is idle and both connections are closed.
//     Unless the other direction's peer resumed in the grace: that
//     direction went back to a call at once, which has not reported what
//     it moves. A TCP source's received count (TCP_INFO) tells of such
//     bytes: progress. A unix socket keeps none: the prober pokes once
//     more and the other direction decides at its next return, when no
//     call of its is under way. If the other direction has not returned
//     yet (not scheduled yet, or blocked writing to a peer that reads
//     slowly or not at all), the prober pokes again and waits another
//     grace, for at most one more idle timeout. Then, if that peer is a
//     TCP peer that acknowledged bytes since the first poke (TCP_INFO), it
//     is reading: that counts as progress and the probing starts over (a
//     splice pushes up to a pipe's worth, 1 MiB, before it can report,
//     which a slow client takes long to read). Otherwise it closes.
//   - A direction whose other side has already ended decides alone.
//   - A direction that ended (its source read EOF) while the other is
//     blocked writing to a peer that does not read has nobody to poke it:
//     the kernel's TCP_USER_TIMEOUT ends a TCP peer's; for a unix socket
//     peer the ended direction stays and watches the bytes it has not
//     read yet (guardStuck).
//
// So an idle relay is closed between idle+grace and about 2*idle+grace
// after its last byte (a splice that moved bytes early in its call reports
// them as fresh when it returns), and one blocked writing to a stuck peer
// after about 2*idle (a unix socket peer that reads slowly too: it has no
// acknowledgement count). Decisions rest on what the directions reported, not
// on how fast the scheduler runs them.

// bufSize is the copy buffer of the non-splice path.
const bufSize = 32 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

// aLongTimeAgo is a deadline in the past, to wake a blocked read.
var aLongTimeAgo = time.Unix(1, 0)

// errIdle ends a direction whose relay was closed as idle.
var errIdle = errors.New("l4: relay idle")

// pair is the state two directions share. Direction d reads conns[d] and
// writes conns[1-d]; conns[0] is the client, conns[1] the upstream.
type pair struct {
	conns [2]net.Conn
	idle  time.Duration
	grace time.Duration
	start time.Time // last and deadlines are offsets from start (monotonic)

	last   atomic.Int64 // offset of the last progress either way
	prober atomic.Int32 // direction probing for progress, or -1
	// final: the prober cannot tell what the other's source received
	// since that direction's return (a unix socket keeps no count) and
	// left the verdict to the other's next return from a poke, where no
	// call of its has bytes in flight.
	final   atomic.Bool
	returns [2]atomic.Uint64 // copy calls of direction d that returned (after storing last)
	ended   [2]atomic.Bool   // direction d read EOF (after storing last)

	// probe[d] is owned by direction d while it is the prober.
	probe [2]struct {
		returns uint64 // the other's return count at the first poke
		at      int64  // offset of the first poke
		acked   uint64 // bytes the peer of conns[d] had acknowledged then
		ackedOK bool   // conns[d] is TCP and told
		recv    uint64 // bytes conns[other] had received then
		recvOK  bool   // conns[other] is TCP and told
	}

	stopOnce sync.Once
	halted   chan struct{} // closed when both conns are (idle, error or ctx)
	// quit[d] is closed once direction d moves no more bytes: its source
	// ended, or it returned (quitOnce[d]).
	quit     [2]chan struct{}
	quitOnce [2]sync.Once

	moved [2]int64 // bytes direction d moved; each its own
}

// relay copies a to b and b to a until both directions end, the relay is
// idle for idle, or ctx is done, and returns the bytes moved from a to b
// and from b to a, and the first I/O error that was not caused by ending
// the relay. It does not close a or b on a normal end; the caller does.
func relay(ctx context.Context, a, b net.Conn, idle time.Duration) (moved [2]int64, err error) {
	p := &pair{conns: [2]net.Conn{a, b}, idle: idle, grace: min(idle/2, time.Second), start: time.Now(),
		halted: make(chan struct{}), quit: [2]chan struct{}{make(chan struct{}), make(chan struct{})}}
	p.prober.Store(-1)
	// The kernel gives up on a peer that stopped reading for the idle
	// timeout. The idle timeout cannot see that case itself: a direction
	// blocked writing reports nothing, the other direction may have ended
	// (a client that half-closed after its request and never reads the
	// response), and a write deadline would cut a splice with bytes still
	// in its pipe. The blocked write then fails and the relay ends. Unix
	// sockets have no such bound: their peers are local.
	netio.SetTCPUserTimeout(a, idle)
	netio.SetTCPUserTimeout(b, idle)
	stop := server.AfterFunc(ctx, p.stop)
	defer stop()

	errc := make(chan error, 1)
	go func() { errc <- p.run(1) }()
	err0 := p.run(0)
	err1 := <-errc
	if errors.Is(err0, errIdle) {
		err0 = nil
	}
	if errors.Is(err1, errIdle) {
		err1 = nil
	}
	return p.moved, errors.Join(err0, err1)
}

func (p *pair) now() int64 { return int64(time.Since(p.start)) }

// touch records progress.
func (p *pair) touch() { p.last.Store(p.now()) }

// stopped reports whether both connections were closed (stop, abort).
func (p *pair) stopped() bool {
	select {
	case <-p.halted:
		return true
	default:
		return false
	}
}

// stop closes both connections; every blocked call returns.
func (p *pair) stop() { p.end(false) }

// abort is stop after an I/O error (a peer reset the stream, or went
// away): a TLS conn is closed without its close_notify, so that its peer
// sees the stream cut short, as it was, rather than ended.
func (p *pair) abort() { p.end(true) }

func (p *pair) end(abort bool) {
	p.stopOnce.Do(func() {
		close(p.halted)
		for _, c := range p.conns {
			if tc, ok := c.(interface{ NetConn() net.Conn }); ok && abort {
				tc.NetConn().Close()
			}
			c.Close()
		}
	})
}

// run is direction d. It returns nil when its source ended and the other
// side was half-closed, or when the relay was stopped from elsewhere.
func (p *pair) run(d int) error {
	src, dst := p.conns[d], p.conns[1-d]
	defer p.quitting(d)
	defer p.endProbe(d)
	src.SetReadDeadline(p.start.Add(p.idle))
	for {
		n, err := p.copy(dst, src)
		if n > 0 {
			p.touch()
			p.moved[d] += n
		}
		p.returns[d].Add(1)
		if err == nil { // EOF from src
			p.ended[d].Store(true)
			p.quitting(d)
			if cw, ok := dst.(interface{ CloseWrite() error }); ok {
				if cw.CloseWrite() == nil || p.stopped() {
					p.guardStuck(d)
					return nil
				}
			}
			// No half-close: the peer would wait for data forever.
			p.stop()
			return nil
		}
		if p.stopped() {
			return nil
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			p.abort()
			return err
		}
		if p.idleAfterDeadline(d) {
			p.stop()
			return errIdle
		}
	}
}

// quitting marks direction d as moving no more bytes.
func (p *pair) quitting(d int) { p.quitOnce[d].Do(func() { close(p.quit[d]) }) }

// guardStuck is direction d's last duty once its source ended and it
// passed the half-close on, while the other direction goes on (until that
// one ends too, or returns). That one may be blocked writing into conns[d]
// for a peer that does not read (a client that half-closed after its
// request and never reads the response), where no deadline of its own
// fires and nobody is left to poke it. A TCP peer is bounded by
// TCP_USER_TIMEOUT; a unix socket peer is not: d looks at that socket's
// bytes not yet read (UnreadSent) ten times an idle timeout and stops the
// relay once they stayed put, above zero, for two idle timeouts with
// nothing reported moved meanwhile, as a unix peer that stopped reading is
// cut with both directions open. A peer that reads, however slowly, moves
// them between two looks (a writer blocked on it waits until the peer has
// read three quarters of what is queued).
func (p *pair) guardStuck(d int) {
	q, ok := netio.UnreadSent(p.conns[d])
	if !ok {
		return
	}
	t := time.NewTicker(max(p.idle/10, time.Millisecond))
	defer t.Stop()
	since := p.now() // when q was last seen to change
	for {
		select {
		case <-p.quit[1-d]:
			return
		case <-p.halted:
			return
		case <-t.C:
		}
		nq, ok := netio.UnreadSent(p.conns[d])
		if !ok {
			return
		}
		now := p.now()
		if nq != q || nq == 0 {
			q, since = nq, now
			continue
		}
		if now-since >= 2*int64(p.idle) && now-p.last.Load() >= int64(p.idle) {
			p.stop()
			return
		}
	}
}

// idleAfterDeadline decides, when direction d's read deadline fired,
// whether the relay is idle; if not it re-arms d's deadline.
func (p *pair) idleAfterDeadline(d int) bool {
	src, other := p.conns[d], 1-d
	// Load what the other side reports before last: it stores last first,
	// so whatever it reported by then is visible in last.
	otherEnded, otherReturns := p.ended[other].Load(), p.returns[other].Load()
	now, last := p.now(), p.last.Load()
	if now-last < int64(p.idle) {
		p.endProbe(d)
		src.SetReadDeadline(p.start.Add(time.Duration(last) + p.idle))
		return false
	}
	if otherEnded {
		return true // the other side reported everything it moved
	}
	switch p.prober.Load() {
	case int32(d):
		if otherReturns != p.probe[d].returns {
			// The other side reported since the poke: nothing moved then.
			// But it went back to its call at once, and what arrived
			// since (a client resuming in the grace) is in a call that
			// has not reported yet: its socket's received count tells.
			if recv, ok := netio.BytesReceived(p.conns[other]); ok && p.probe[d].recvOK && recv != p.probe[d].recv {
				return p.progressed(d)
			}
			if p.probe[d].recvOK || p.final.Load() {
				return true
			}
			// No count to tell (a unix socket): poke again, and the other
			// side decides when it returns (see final).
			p.final.Store(true)
			p.probe[d].returns = otherReturns
			p.conns[other].SetReadDeadline(aLongTimeAgo)
			src.SetReadDeadline(time.Now().Add(p.grace))
			return false
		}
		if now-p.probe[d].at >= int64(p.idle) {
			// The other side is still in its call: writing into
			// src, whose peer reads slowly or not at all. A peer
			// that acknowledged bytes since the poke is reading:
			// that is progress, and the probing starts over.
			if acked, ok := netio.BytesAcked(src); ok && p.probe[d].ackedOK && acked != p.probe[d].acked {
				return p.progressed(d)
			}
			return true // stuck for another idle timeout
		}
		// Not back yet: poke again, in case the poke raced with the other
		// side re-arming its own deadline.
		p.conns[other].SetReadDeadline(aLongTimeAgo)
		src.SetReadDeadline(time.Now().Add(p.grace))
		return false
	case int32(other):
		if p.final.Load() {
			// The prober left the verdict to this return: this call
			// moved nothing and none is under way.
			return true
		}
		// Probably the other side's poke: it decides.
		src.SetReadDeadline(time.Now().Add(p.idle))
		return false
	}
	if !p.prober.CompareAndSwap(-1, int32(d)) {
		src.SetReadDeadline(time.Now().Add(p.idle))
		return false
	}
	p.final.Store(false)
	p.probe[d].returns, p.probe[d].at = otherReturns, now
	p.probe[d].acked, p.probe[d].ackedOK = netio.BytesAcked(src)
	p.probe[d].recv, p.probe[d].recvOK = netio.BytesReceived(p.conns[other])
	p.conns[other].SetReadDeadline(aLongTimeAgo)
	src.SetReadDeadline(time.Now().Add(p.grace))
	return false
}

// endProbe ends direction d's probing, if it is the prober.
func (p *pair) endProbe(d int) {
	if p.prober.CompareAndSwap(int32(d), -1) {
		p.final.Store(false)
	}
}

// progressed records progress the kernel told the prober d of (bytes
// acknowledged or received that no call reported yet): the probing starts
// over, and d's deadline is a whole idle timeout away. It reports false
// (not idle), for idleAfterDeadline to return.
func (p *pair) progressed(d int) bool {
	p.touch()
	p.endProbe(d)
	p.conns[d].SetReadDeadline(time.Now().Add(p.idle))
	return false
}

// copy moves src to dst until src reads EOF (nil error), a read deadline
// fires, or an error. It returns the bytes moved.
func (p *pair) copy(dst, src net.Conn) (int64, error) {
	switch d := dst.(type) {
	case *net.TCPConn:
		switch src.(type) {
		case *net.TCPConn, *net.UnixConn:
			return d.ReadFrom(src) // splice
		}
	case *net.UnixConn:
		if s, ok := src.(*net.TCPConn); ok {
			return s.WriteTo(d) // splice
		}
	case netio.SpliceToer:
		// The io_uring driver's conns: ReadFrom relays between two of
		// them without a copy into Go memory.
		if _, ok := src.(netio.SpliceToer); ok {
			if rf, ok := dst.(io.ReaderFrom); ok {
				return rf.ReadFrom(src)
			}
		}
	}
	return p.copyBuffer(dst, src)
}

// copiedBytes counts the bytes relays moved through copyBuffer, that is
// through Go memory; tests check that bulk between sockets does not.
var copiedBytes atomic.Int64

// copyBuffer is io.Copy with a pooled buffer, recording progress on every
// read and write so the other direction sees it without a poke.
func (p *pair) copyBuffer(dst io.Writer, src io.Reader) (int64, error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	var written int64
	for {
		nr, er := src.Read(buf)
		if nr > 0 {
			p.touch()
			nw, ew := dst.Write(buf[:nr])
			written += int64(nw)
			copiedBytes.Add(int64(nw))
			if ew != nil {
				return written, ew
			}
			if nw != nr {
				return written, io.ErrShortWrite
			}
			p.touch()
		}
		if er == io.EOF {
			return written, nil
		}
		if er != nil {
			return written, er
		}
	}
}
